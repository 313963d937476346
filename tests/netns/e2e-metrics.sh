#!/bin/bash
# Monitoring as an administrator meets it: `mtugatectl stats --prometheus`
# passes Debian's promtool lint, and Debian's prometheus-node-exporter serves
# the textfile that `mtugatectl stats --textfile` writes (what
# mtugate-metrics.service runs every 15 s): mtugate_up 1 while the daemon runs,
# no mtugate_ family once it stopped (stale numbers never look live); a failed
# reload shows in mtugate_config_last_reload_successful.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 77; }
for t in promtool prometheus-node-exporter curl; do
	command -v $t >/dev/null || { echo "needs $t (make deps)"; exit 77; }
done
. tests/netns/common.sh

tmp=$(mktemp -d /tmp/mg-metrics.XXXXXX)
chmod 755 "$tmp"
gw=mgm$$-gw
cleanup() {
	ns_destroy $gw
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
ns_create $gw

mkdir -p "$tmp/groups.d" "$tmp/textfile"
cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user = nobody
control_socket = $tmp/run/mtugate.sock
groups_dir = groups.d
[queues]
mss = 40
pmtu = 42
dtls = 43
[headend]
address = 198.18.3.2, 2001:db8:3::2
CONF
cat >"$tmp/groups.d/alpha.conf" <<GRP
[group]
name = alpha
pool = 192.0.2.0/26, 2001:db8:0:40::/64
mtu = 1300
GRP
ctl() { ip netns exec $gw "$B/mtugatectl" -s "$tmp/run/mtugate.sock" "$@"; }
prom="$tmp/textfile/mtugate.prom"

ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>>"$tmp/daemon.log" &
dpid=$!
check "mtugated answers" wait_until 10 ctl ping

ctl stats --prometheus >"$tmp/scrape" 2>&1
check "promtool check metrics: no lint problem ($(promtool check metrics <"$tmp/scrape" 2>&1 | head -n 3 | tr '\n' ' '))" \
	promtool check metrics <"$tmp/scrape"
check "every family has a HELP line" \
	test "$(grep -c '^# TYPE ' "$tmp/scrape")" = "$(grep -c '^# HELP ' "$tmp/scrape")"
check_not "no boilerplate HELP (\"Per-group counter\")" grep -q 'Per-group counter' "$tmp/scrape"
check "mtugate_up 1" grep -qx 'mtugate_up 1' "$tmp/scrape"
ver=$(cat VERSION)
check "mtugate_build_info carries the version ($ver)" \
	grep -qx "mtugate_build_info{version=\"$ver\"} 1" "$tmp/scrape"
check "mtugate_config_last_reload_successful 1 after the start" \
	grep -qx 'mtugate_config_last_reload_successful 1' "$tmp/scrape"
t0=$(awk '/^mtugate_config_last_reload_success_timestamp_seconds /{ print $2 }' "$tmp/scrape")
now=$(date +%s)
check "the load's timestamp is Unix seconds of this run ($t0, now $now)" \
	test "${t0:-0}" -gt $((now - 120)) -a "${t0:-0}" -le "$now"
check "the JSON names the version" sh -c "ctl() { ip netns exec $gw $B/mtugatectl -s $tmp/run/mtugate.sock \"\$@\"; }; ctl stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d[\"version\"] != \"$ver\")'"

# A reload with an error keeps the policy and says so; a good one clears it.
printf '[group]\nname = broken\nmtu = lots\n' >"$tmp/groups.d/broken.conf"
ctl reload >/dev/null 2>&1
check "a failed reload: mtugate_config_last_reload_successful 0" \
	sh -c "ip netns exec $gw $B/mtugatectl -s $tmp/run/mtugate.sock stats --prometheus | grep -qx 'mtugate_config_last_reload_successful 0'"
check "and the timestamp still names the policy in force ($t0)" \
	sh -c "ip netns exec $gw $B/mtugatectl -s $tmp/run/mtugate.sock stats --prometheus | grep -qx 'mtugate_config_last_reload_success_timestamp_seconds $t0'"
rm "$tmp/groups.d/broken.conf"
check "a good reload" ctl reload
check "mtugate_config_last_reload_successful 1 again" \
	sh -c "ip netns exec $gw $B/mtugatectl -s $tmp/run/mtugate.sock stats --prometheus | grep -qx 'mtugate_config_last_reload_successful 1'"

# The textfile, served by the real node exporter (loopback of the namespace).
check "stats --textfile writes the file" ctl stats --textfile "$prom"
check "mode 0644, readable by node_exporter's user" test "$(stat -c %a "$prom")" = 644
check_not "no temporary file left" sh -c "ls $tmp/textfile | grep -q tmp"
ip netns exec $gw prometheus-node-exporter --web.listen-address=127.0.0.1:19100 \
	--collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$tmp/textfile" >"$tmp/exporter.log" 2>&1 &
scrape() { ip netns exec $gw curl -fsS http://127.0.0.1:19100/metrics >"$tmp/served" 2>/dev/null; }
up1() { scrape && grep -qx 'mtugate_up 1' "$tmp/served"; }
check "node_exporter serves mtugate_up 1 while the daemon runs" wait_until 15 up1
check "and the group counters" grep -q '^mtugate_group_mss_rewritten_total{group="alpha"} 0' "$tmp/served"
check_not "the textfile parsed without error" \
	grep -qx 'node_textfile_scrape_error 1' "$tmp/served"

kill "$dpid"; wait "$dpid"
check_not "stopped: stats --textfile fails" ctl stats --textfile "$prom"
check_not "and removes the file" test -e "$prom"
gone() { scrape && ! grep -q '^mtugate_' "$tmp/served"; }
check "node_exporter serves no mtugate_ family once the daemon stopped" wait_until 15 gone

# The timer and service as shipped: they name the command tested above.
check "mtugate-metrics.service runs stats --textfile into node_exporter's directory" \
	grep -q '^ExecStart=.*mtugatectl stats --textfile /var/lib/prometheus/node-exporter/mtugate.prom' \
	systemd/mtugate-metrics.service
check "mtugate-metrics.timer fires every 15 s" grep -qx 'OnUnitActiveSec=15s' systemd/mtugate-metrics.timer
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify accepts both units" \
		sh -c "cd systemd && systemd-analyze verify --man=no ./mtugate-metrics.timer ./mtugate-metrics.service 2>&1 | grep -v 'mtugatectl\|mtugate.service' | grep -q . && exit 1 || exit 0"
fi
finish e2e-metrics
