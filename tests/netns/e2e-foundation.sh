#!/bin/bash
# The daemon on real NFQUEUEs: client -- gateway (mtugated + the printed rules) -- server.
# TCP and UDP pass and are counted per group; reload keeps the old policy on a
# broken group file; kill -9 leaves traffic flowing (fail-open, --queue-bypass);
# SIGTERM unbinds the queues and removes the socket.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 77; }
. tests/netns/common.sh

tmp=$(mktemp -d /tmp/mg-found.XXXXXX)
chmod 755 "$tmp"	# the daemon re-reads its files as its own user
c=mgf$$-c gw=mgf$$-gw s=mgf$$-s
cleanup() {
	[ -n "${dpid:-}" ] && kill -9 "$dpid" 2>/dev/null
	ns_destroy $c $gw $s
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

ns_create $c $gw $s
ns_link $c 198.18.1.2/24 2001:db8:1::2/64  $gw 198.18.1.1/24 2001:db8:1::1/64
ns_link $s 198.18.3.2/24 2001:db8:3::2/64  $gw 198.18.3.1/24 2001:db8:3::1/64
ns_route $c 198.18.1.1 2001:db8:1::1
ns_route $s 198.18.3.1 2001:db8:3::1
ns_forwarding $gw

mkdir -p "$tmp/groups.d"
cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user = nobody
control_socket = $tmp/run/mtugate.sock
groups_dir = groups.d
log_level = debug
[queues]
mss = 0-1
pmtu = 2
dtls = 3
max_len = 4096
[headend]
address = 198.18.3.2, 2001:db8:3::2
dtls_port = 4443
advertised_dtls_port = 4443
CONF
group() {	# group FILE NAME MTU
	cat >"$tmp/groups.d/$1" <<GRP
[group]
name = $2
pool = 198.18.1.0/24, 2001:db8:1::/64
clients = 198.18.1.0/24, 2001:db8:1::/64
mtu = $3
dtls = relay
GRP
}
group alpha.conf alpha 1300
ctl() { ip netns exec $gw "$B/mtugatectl" -s "$tmp/run/mtugate.sock" "$@"; }

out=$("$B/mtugated" -t -c "$tmp/mtugate.conf" 2>&1)
check "mtugated -t accepts the test configuration" test "$out" = "configuration OK"
check "and so does mtugated --test --config" test "$("$B/mtugated" --test --config "$tmp/mtugate.conf" 2>&1)" = "configuration OK"
# One run shows every error: a wrong value in mtugate.conf does not hide a
# broken group file behind it.
mkdir "$tmp/bad" "$tmp/bad/groups.d"
sed 's/^max_len = .*/max_len = 0/' "$tmp/mtugate.conf" >"$tmp/bad/mtugate.conf"	# groups_dir = groups.d: bad/groups.d
printf '[group]\nname = broken\npool = 192.0.2.0/33\nmtu = 1300\n' >"$tmp/bad/groups.d/broken.conf"
out=$("$B/mtugated" -t -c "$tmp/bad/mtugate.conf" 2>&1)
check "mtugated -t: the config's error" grep -q "bad/mtugate.conf:[0-9]*: invalid max_len '0'" <<<"$out"
check "mtugated -t: and the group file's, in the same run" grep -q "broken.conf:3: invalid pool" <<<"$out"

"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ip6tables >"$tmp/rules6"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ipset | ip netns exec $gw ipset restore -exist
check "iptables-restore takes the printed IPv4 rules" ip netns exec $gw iptables-restore --noflush "$tmp/rules4"
check "ip6tables-restore takes the printed IPv6 rules" ip netns exec $gw ip6tables-restore --noflush "$tmp/rules6"

ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>"$tmp/daemon.log" &
dpid=$!
check "the control socket answers" wait_until 10 ctl ping
# A second daemon on the same queues (or Suricata on its default queue 0): the kernel
# refuses the bind, and the daemon must say so and stop, not report "bound" and see nothing.
sed "s|^control_socket = .*|control_socket = $tmp/run/second.sock|" "$tmp/mtugate.conf" >"$tmp/second.conf"
ip netns exec $gw timeout 10 "$B/mtugated" -f -c "$tmp/second.conf" >"$tmp/second.log" 2>&1
rc=$?
check "a second mtugated on the same queues exits 1 (got $rc)" test "$rc" = 1
check "and says another program has bound the queue" grep -q "cannot bind NFQUEUE 0 (mss): another program has bound it" "$tmp/second.log"
check "the first one still answers" ctl ping
check "mtugatectl --socket ... version: the daemon's version" \
	bash -c "ip netns exec $gw '$B/mtugatectl' --socket '$tmp/run/mtugate.sock' version | grep -Eqx 'version +$(cat VERSION)'"
check "the socket is mode 0660" test "$(stat -c %a "$tmp/run/mtugate.sock")" = 660
check "the daemon runs as its user" wait_until 5 grep -q "^Uid:.*\b$(id -u nobody)\b" /proc/$dpid/status
capeff=$(awk '/^CapEff/ {print $2}' /proc/$dpid/status)
check "only CAP_NET_ADMIN and CAP_NET_RAW remain (CapEff=$capeff)" test "$capeff" = 0000000000003000

# TCP both families through the queue, and UDP to the headend's DTLS port.
ip netns exec $s socat -u TCP4-LISTEN:8080,fork,reuseaddr OPEN:/dev/null 2>/dev/null &
ip netns exec $s socat -u TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=1 OPEN:/dev/null 2>/dev/null &
ip netns exec $s socat -u UDP4-RECVFROM:4443,fork OPEN:"$tmp/udp.out",creat,append 2>/dev/null &
tcp4() { ip netns exec $c bash -c 'echo hello | timeout 3 socat -u - TCP4:198.18.3.2:8080,connect-timeout=2'; }
tcp6() { ip netns exec $c bash -c 'echo hello | timeout 3 socat -u - TCP6:[2001:db8:3::2]:8080,connect-timeout=2'; }
check "IPv4 TCP passes through mtugated" wait_until 10 tcp4
check "IPv6 TCP passes through mtugated" wait_until 10 tcp6
udp() { ip netns exec $c bash -c 'echo dtls-probe | socat -u - UDP4:198.18.3.2:4443'; grep -q dtls-probe "$tmp/udp.out"; }
check "UDP to the DTLS port passes through mtugated" wait_until 10 udp

json=$(ctl stats --json)
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("v=d"+sys.argv[1]); print(v)' "$1" <<<"$json"; }
check "stats --json counts packets seen" test "$(jget '["packets"]["seen"]')" -ge 4
check "every queued packet is accepted" test "$(jget '["packets"]["accepted"]')" = "$(jget '["packets"]["seen"]')"
check "the SYNs count in group alpha" test "$(jget '["groups"]["alpha"]["mss_rewritten"]')" -ge 2
check "the DTLS datagram counts in group alpha" test "$(jget '["groups"]["alpha"]["packets"]')" -ge 5
# Per queue: each configured queue with its kind, and together they make the totals.
jeval() { python3 -c 'import json,sys; d=json.load(sys.stdin); q=d["queues"]; print(eval(sys.argv[1]))' "$1" <<<"$json"; }
kinds=$(jeval '" ".join(k + "=" + v["kind"] for k, v in q.items())')
check "stats --json lists every queue with its kind ($kinds)" test "$kinds" = "0=mss 1=mss 2=pmtu 3=dtls"
check "the queues' seen add up to packets.seen" test "$(jeval 'sum(v["seen"] for v in q.values())')" = "$(jget '["packets"]["seen"]')"
check "the SYNs are seen on the mss queues" test "$(jeval 'q["0"]["seen"] + q["1"]["seen"]')" -ge 2
check "the DTLS datagram is seen on queue 3" test "$(jeval 'q["3"]["seen"]')" -ge 1
prom=$(ctl stats --prometheus)
check "stats --prometheus: the totals by outcome" grep -Eq '^mtugate_packets_total\{outcome="seen"\} [1-9]' <<<"$prom"
check "stats --prometheus: a group's counter" grep -Eq '^mtugate_group_mss_rewritten_total\{group="alpha"\} [1-9]' <<<"$prom"
check "stats --prometheus has queue 3's seen packets" grep -Eq '^mtugate_queue_packets_total\{queue="3",kind="dtls",outcome="seen"\} [1-9]' <<<"$prom"
# The kernel's side of each queue (the daemon opened its table while root): nothing waits now.
check "stats --json: every queue's backlog is 0, nothing dropped by the kernel" \
	test "$(jeval '" ".join("%d/%d/%d" % (v["backlog"], v["kernel_dropped"], v["user_dropped"]) for v in q.values())')" = "0/0/0 0/0/0 0/0/0 0/0/0"
backlog_gauge() {
	grep -q '^# TYPE mtugate_queue_backlog gauge$' <<<"$prom" &&
		test "$(grep -c '^mtugate_queue_backlog{queue="[0-3]",kind="[a-z]*"} 0$' <<<"$prom")" = 4
}
check "stats --prometheus: mtugate_queue_backlog is a gauge per queue" backlog_gauge
check_not "and not an outcome of mtugate_queue_packets_total" grep -q 'outcome="backlog"' <<<"$prom"
check "stats has a row for queue 2 (9 counters, 3 of the kernel's)" bash -c "'$B/mtugatectl' -s '$tmp/run/mtugate.sock' stats | grep -Eq '^2 +pmtu( +[0-9]+){12}\$'"

# The table's columns are as wide as their widest value: a stub socket answers with
# counters longer than their headings.
printf 'uptime_s\t5\npackets.seen\t123456789012\npackets.accepted\t1\nqueue.0.kind\tmss\n%b\n\n' \
	'queue.0.seen\t123456789012\nqueue.1.kind\tpmtu\nqueue.1.seen\t3\ngroup.alpha.packets\t1\ngroup.b.packets\t123456789012345' \
	>"$tmp/stub.reply"
socat UNIX-LISTEN:"$tmp/stub.sock" SYSTEM:"cat $tmp/stub.reply" 2>/dev/null &
stub=$!
wait_until 5 test -S "$tmp/stub.sock"
"$B/mtugatectl" -s "$tmp/stub.sock" stats >"$tmp/stub.table" 2>&1
wait $stub 2>/dev/null
# Each block (totals, queues, groups) is a rectangle: every line of it equally long.
aligned() { awk 'NR > 2 && !/^$/ { if (w[b] && w[b] != length) bad = 1; w[b] = length } /^$/ { b++ } END { exit bad }' "$tmp/stub.table"; }
check "stats table: columns as wide as their widest value" aligned
check "stats table: the 15-digit group counter is whole" grep -Eq '^b +123456789012345$' "$tmp/stub.table"

# A broken group file: SIGHUP keeps the old policy, logs FILE:LINE, and the socket still answers.
printf '[group]\nname = broken\npool = 192.0.2.0/33\nmtu = 1300\n' >"$tmp/groups.d/zz-broken.conf"
kill -HUP $dpid
check "a broken reload is logged as FILE:LINE" wait_until 5 grep -q "zz-broken.conf:3:" "$tmp/daemon.log"
check "the control socket still answers after a broken reload" ctl ping
check "the old policy stays in force" bash -c "'$B/mtugatectl' -s '$tmp/run/mtugate.sock' groups | grep -q 'alpha.*mtu.*1300'"
check "mtugatectl reload reports the error and fails" bash -c "! '$B/mtugatectl' -s '$tmp/run/mtugate.sock' reload"
rm "$tmp/groups.d/zz-broken.conf"
group alpha.conf alpha 1280
reload_says() { "$B/mtugatectl" -s "$tmp/run/mtugate.sock" reload >"$tmp/reload.out" 2>&1; }
check "mtugatectl reload with a valid file succeeds" reload_says
check "the new policy is in force" bash -c "'$B/mtugatectl' -s '$tmp/run/mtugate.sock' groups | grep -q 'alpha.*mtu.*1280'"
# The kernel's rules were printed for mtu 1300 (the pmtu queue's length match).
check "a new mtu needs new rules: reload says to re-apply them" grep -q "re-apply them (mtugatectl rules)" "$tmp/reload.out"
check "and the log says so" grep -q "rules this configuration needs have changed" "$tmp/daemon.log"
reload_says
check "a reload with nothing changed says only ok" test "$(cat "$tmp/reload.out")" = "reload: ok"
check "the log asked once" test "$(grep -c "rules this configuration needs have changed" "$tmp/daemon.log")" = 1
# The packet threads hold the headend they started with: a new one waits for a restart.
sed -i 's/^advertised_dtls_port = .*/advertised_dtls_port = 4444/' "$tmp/mtugate.conf"
reload_says
check "a new headend port: reload says the rules changed" grep -q "re-apply them" "$tmp/reload.out"
check "and the log, that [headend] waits for a restart" grep -q "\[headend\].* take effect only at restart" "$tmp/daemon.log"
# Moved marks: new rules, and the packet threads' marks wait for a restart too.
n_restart=$(grep -c "take effect only at restart" "$tmp/daemon.log")
sed -i 's/^\[queues\]$/[queues]\nmark_mask = 0x7f0000/' "$tmp/mtugate.conf"
reload_says
check "a new mark_mask: reload says the rules changed" grep -q "re-apply them" "$tmp/reload.out"
check "and the log, that [queues] waits for a restart" \
	test "$(grep -c "\[queues\].* take effect only at restart" "$tmp/daemon.log")" -gt "$n_restart"
# A proxy off at start stays off until a restart: turning it on must say so.
printf '[proxy]\nenable = yes\n' >>"$tmp/mtugate.conf"
reload_says
check "proxy turned on: reload says the rules changed" grep -q "re-apply them" "$tmp/reload.out"
check "and the log, that [proxy] waits for a restart" grep -q "\[proxy\] takes effect only at restart" "$tmp/daemon.log"
sed -i '/^\[proxy\]$/,$d' "$tmp/mtugate.conf"	# the restart below runs without it

# SIGTERM: exit 0, queues unbound, socket dead. The daemon made its folder root's (0750)
# before it dropped to nobody, who cannot unlink in it: the file stays for the next start.
kill -TERM $dpid
wait $dpid; rc=$?
check "SIGTERM stops mtugated with exit 0 (got $rc)" test "$rc" = 0
check "the control socket no longer answers" bash -c "! ip netns exec $gw '$B/mtugatectl' -s '$tmp/run/mtugate.sock' ping"
check "its folder is root's (got $(stat -c %U:%a "$tmp/run"))" test "$(stat -c %U:%a "$tmp/run")" = root:750
check "the queues are unbound" bash -c "! ip netns exec $gw cat /proc/net/netfilter/nfnetlink_queue | grep -q ."

# kill -9: the kernel bypasses the unbound queues (fail-open), traffic still flows at once.
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>>"$tmp/daemon.log" &
dpid=$!
check "restarted" wait_until 10 ctl ping
kill -9 $dpid; wait $dpid 2>/dev/null; dpid=
start=$(date +%s%N)
check "IPv4 TCP passes with the daemon killed" tcp4
check "IPv6 TCP passes with the daemon killed" tcp6
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "without delay (${ms} ms for both)" test "$ms" -lt 2000
finish e2e-foundation
