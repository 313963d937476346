#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check and wait_until
# Issue 22, "Upgrades without dropping tunnels": a restart of mtugated as the unit does it
# (mtugate-rules stop, SIGTERM to the main PID only, a new mtugated, mtugate-rules start) under
# proxied tunnels.
#   client C 198.18.1.2, 2001:db8:1::2 -- gateway G (mtugated, TLS proxy) -- headend H .2.2
# The proxy alone (no queue: this kernel may lack nft's queue statement, lab-notes).
# H is the stub headend (tests/tools/stubheadend: CSTP with DPD); C holds UPGRADE_TUNNELS
# proxied tunnels of the TLS-only group (tests/tools/cstpload), half over IPv4, half over IPv6.
#   1. drain_timeout 3600, iptables: none of the tunnels reconnects (the headend keeps the
#      same TCP connections, every tunnel answers a DPD after the restart), a new login during
#      the drain (IPv4 and IPv6) goes through the new proxy, the old proxy exits when its last
#      tunnel ends.
#   2. drain_timeout 6 (a reload sets it), nft: the tunnels answer DPD after the restart, and
#      the old proxy closes them and exits at the deadline, with a warning.
#   3. drain_timeout 0: the old behaviour, the proxy and its tunnels end with mtugated, and
#      the rules unit's stop leaves nothing behind.
# UPGRADE_TUNNELS: 100 (20 under MTUGATE_SANITIZED).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

N=${UPGRADE_TUNNELS:-$([ -n "${MTUGATE_SANITIZED:-}" ] && echo 20 || echo 100)}
N4=$((N / 2)) N6=$((N - N / 2))
HE=198.18.2.2 HE6=2001:db8:2::2
C=muC$$ G=muG$$ H=muH$$
bench_start $C $G $H
for t in openssl nft iptables-restore ip6tables-restore; do
	command -v $t >/dev/null || { echo "e2e-upgrade: needs $t"; exit 77; }
done
[ -x "$B/mtugated" ] && [ -x "$B/mtugatectl" ] || { echo "e2e-upgrade: build first (make)"; exit 1; }
# shellcheck disable=SC2046 # the linker flags, a word each
tls_tool() { bench_tool "$1" "$B/libmtugate.a" $(pkg-config --libs openssl) -pthread; }
cstpload=$(tls_tool cstpload) && stubheadend=$(tls_tool stubheadend) ||
	{ echo "e2e-upgrade: cannot build the tools"; exit 1; }
ulimit -n "$(ulimit -Hn)"
bin=$(cd "$B" && pwd)

bench_net $C 1 $G $H 2
# The key in a folder of its own: the packet process may not read the key's folder (Landlock),
# and a reload reads mtugate.conf, which sed -i replaces.
mkdir "$tmp/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj "/CN=headend.lab.test" -addext "subjectAltName=DNS:headend.lab.test,IP:$HE,IP:$HE6" \
	-keyout "$tmp/pki/headend.key" -out "$tmp/pki/headend.crt" 2>/dev/null || exit 1
chmod 0600 "$tmp/pki/headend.key"
bench_conf <<CONF
[queues]
mss = off
pmtu = off
dtls = off
[headend]
address = $HE, $HE6
[proxy]
enable = yes
certificate = $tmp/pki/headend.crt
private_key = $tmp/pki/headend.key
upstream_ca = $tmp/pki/headend.crt
idle_timeout = 3600
drain_timeout = 3600
workers = 2
CONF
sed -i 's/^log_level = warning/log_level = info/' "$tmp/mtugate.conf"
cat >"$tmp/groups.d/tlsonly.conf" <<GRP
[group]
name = tlsonly
auth_group = tlsonly
pool = 192.0.2.0/26, 2001:db8:0:c0::/64
clients = 198.18.1.0/24, 2001:db8:1::/64
mtu = 1400
dtls = block
GRP
ip netns exec $H "$stubheadend" "$tmp/pki/headend.crt" "$tmp/pki/headend.key" $HE:443 "[$HE6]:443" \
	>"$tmp/stub.log" 2>&1 &
check "the stub headend listens" wait_until 10 grep -q listening "$tmp/stub.log"

# The rules unit's script, as mtugate-rules.service runs it, in the gateway.
rules_unit() { # start|stop|clean BACKEND
	ip netns exec $G env PATH="$bin:$PATH" MTUGATE_CONF="$tmp/mtugate.conf" \
		MTUGATE_RULES_STATE="$tmp/rules-state" MTUGATE_BACKEND="$2" sh debian/mtugate-rules "$1"
}
gen=0
daemon() { # a new mtugated, its own log; its pid in $dpid
	gen=$((gen + 1))
	ip netns exec $G "$B/mtugated" -f -c "$tmp/mtugate.conf" >"$tmp/mtugated.$gen.log" 2>&1 &
	dpid=$!
	bench_gw=$G
	wait_until 10 ctl ping && wait_until 5 listening
}
listening() { ip netns exec $G ss -Hltn 'sport = :8443' | grep -q .; }
child() { pgrep -P "$1" -x "$2" | head -1; }	# PARENT COMM
dead() { local p; for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null || return 1; done; }
log_has() { grep -q -- "$2" "$tmp/mtugated.$1.log"; }
# log_sum GEN PREFIX: the sum of the numbers after PREFIX in that log (one line per worker).
log_sum() { grep -o -- "$2[0-9]*" "$tmp/mtugated.$1.log" | awk -v n=${#2} '{ s += substr($0, n + 1) } END { print s + 0 }'; }
log_count() { grep -c -- "$2" "$tmp/mtugated.$1.log"; }
# The headend's side of the tunnels: their client address and port, sorted.
peers() { ip netns exec $H ss -Htn state established '( sport = :443 )' | awk '{ print $4 }' | sort; }
# hold NAME COUNT DST: COUNT tunnels from C to DST, up and waiting for SIGUSR1 (a DPD round).
hold() {
	ip netns exec $C "$cstpload" -g tlsonly "$3" idle "$2" 10 >"$tmp/$1.out" 2>"$tmp/$1.err" &
	eval "$1=$!"
	wait_until 30 grep -q '^warm' "$tmp/$1.out" || return 1
	kill -USR1 "${!1}"
	wait_until 60 grep -q "^up up=$2 failed=0" "$tmp/$1.out"
}
dpd_more() { [ "$(grep -c '^dpd' "$1")" -gt "$2" ]; }	# FILE COUNT
# dpd NAME: one DPD round on every tunnel of NAME: "ok=N failed=F" of it.
dpd() {
	local before
	before=$(grep -c '^dpd' "$tmp/$1.out")
	kill -USR1 "${!1}"
	wait_until 40 dpd_more "$tmp/$1.out" "$before"
	sed -n 's/^dpd \(ok=[0-9]* failed=[0-9]*\).*/\1/p' "$tmp/$1.out" | tail -1
}
# restart BACKEND: what `systemctl restart mtugate` does, the rules unit's part included.
restart() {
	old=$dpid
	rules_unit stop "$1"
	t0=$(date +%s%N)
	kill -TERM "$old"
	wait "$old"
	orc=$?
	daemon
	drc=$?
	t1=$(date +%s%N)
	rules_unit start "$1"
	echo "  restart: old mtugated exited $orc; the new one listened after $(( (t1 - t0) / 1000000 )) ms" >&2
}

# The file rewritten in place: a new file (sed -i) in a folder on the key's path is one the
# packet process may no longer read (Landlock).
set_drain() { sed "s/^drain_timeout = .*/drain_timeout = $1/" "$tmp/mtugate.conf" >"$tmp/conf.new" &&
	cat "$tmp/conf.new" >"$tmp/mtugate.conf"; }
progress() { printf '  .. %s (%s s)\n' "$*" "$SECONDS" >&2; }
progress "1. drain_timeout 3600, iptables: $N tunnels ($N4 IPv4, $N6 IPv6) across a restart"
check "mtugated starts" daemon
check "mtugate-rules start (iptables)" rules_unit start iptables
check "the hold chain is hooked" sh -c "ip netns exec $G iptables -t mangle -S PREROUTING | grep -q MTUGATE_HOLD"
check "$N4 IPv4 tunnels up through the proxy" hold t4 $N4 $HE:443
check "$N6 IPv6 tunnels up through the proxy" hold t6 $N6 "[$HE6]:443"
sessions() { sessions_kv ctl | grep -c '^session'; }
check "the proxy holds $N sessions ($(sessions))" test "$(sessions)" = $N
check "DPD before the restart: IPv4 all answer" test "$(dpd t4)" = "ok=$N4 failed=0"
check "DPD before the restart: IPv6 all answer" test "$(dpd t6)" = "ok=$N6 failed=0"
peers >"$tmp/peers.before"
master=$(child "$dpid" mtugated-proxy)
mapfile -t workers < <(pgrep -P "${master:-0}" -x mtugated-pwork)
restart iptables
check "the old mtugated exited 0" test "$orc" = 0
check "a new mtugated listens" test "$drc" = 0
check "the old proxy's master ($master) lives on" kill -0 "${master:-0}"
check "its ${#workers[@]} workers (${workers[*]}) live on" test "${#workers[@]}" = 2 -a -n "$(alive "${workers[@]}" && echo y)"
check "each logged its drain with the deadline, $N tunnels held in all ($(log_sum 1 'draining: listeners closed, '))" \
	sh -c "[ $(log_count 1 'kept until they end, at most 3600 s (until ') = 2 ] && [ $(log_sum 1 'draining: listeners closed, ') = $N ]"
d4=$(dpd t4) d6=$(dpd t6)
echo "  DPD after the restart: IPv4 $d4, IPv6 $d6" >&2
check "DPD after the restart: every IPv4 tunnel answers ($d4)" test "$d4" = "ok=$N4 failed=0"
check "DPD after the restart: every IPv6 tunnel answers ($d6)" test "$d6" = "ok=$N6 failed=0"
peers >"$tmp/peers.after"
check "none reconnected: the headend holds the same $N connections" \
	sh -c "[ \$(wc -l <'$tmp/peers.after') = $N ] && cmp -s '$tmp/peers.before' '$tmp/peers.after'"
check "the new proxy is another process" sh -c "[ -n '$(child "$dpid" mtugated-proxy)' ] && [ '$(child "$dpid" mtugated-proxy)' != '$master' ]"
check "a new IPv4 login during the drain" hold n4 1 $HE:443
check "a new IPv6 login during the drain" hold n6 1 "[$HE6]:443"
check "both went through the new proxy (its sessions: $(sessions))" test "$(sessions)" = 2
check "the new tunnels answer DPD" sh -c "[ '$(dpd n4)' = 'ok=1 failed=0' ] && [ '$(dpd n6)' = 'ok=1 failed=0' ]"
kill -TERM "$t4" "$t6"
check "the old proxy exits once its last tunnel has ended" wait_until 10 dead "${master:-0}"
check "its workers too" dead "${workers[@]}"
check "each said so, at info" test "$(log_count 1 'drained: its last tunnel ended after')" = 2
check_not "no tunnel was cut" log_has 1 "drain_timeout .* reached"
kill -TERM "$n4" "$n6"
wait "$t4" "$t6" "$n4" "$n6" 2>/dev/null

progress "2. drain_timeout 6 (by a reload), nft: the deadline"
set_drain 6
kill -HUP "$dpid"
check "reloaded" wait_until 5 log_has $gen "reloaded:"
check "mtugate-rules start (nft, as the reload propagates)" rules_unit start nft
check "the nft hold table" ip netns exec $G nft list table inet mtugate_hold
check "the iptables hold is gone with the backend" sh -c "! ip netns exec $G iptables -t mangle -S | grep -q MTUGATE_HOLD"
M=$((N4 < 10 ? N4 : 10))
check "$M IPv4 tunnels up" hold t4 $M $HE:443
check "$M IPv6 tunnels up" hold t6 $M "[$HE6]:443"
master=$(child "$dpid" mtugated-proxy)
prev=$gen
restart nft
check "DPD after the restart (nft hold): IPv4 all answer" test "$(dpd t4)" = "ok=$M failed=0"
check "DPD after the restart (nft hold): IPv6 all answer" test "$(dpd t6)" = "ok=$M failed=0"
check "the old proxy exits at drain_timeout" wait_until 12 dead "${master:-0}"
check "a warning names the deadline and the tunnels it cut ($(log_sum $prev 'drain_timeout (6 s) reached: closing the '))" \
	test "$(log_sum $prev 'drain_timeout (6 s) reached: closing the ')" = $((2 * M))
check "the cut tunnels no longer answer" sh -c "[ '$(dpd t4)' = 'ok=0 failed=$M' ]"
kill -TERM "$t4" "$t6"
wait "$t4" "$t6" 2>/dev/null

progress "3. drain_timeout 0: the old behaviour"
set_drain 0
kill -HUP "$dpid"
check "reloaded" wait_until 5 log_has $gen "reloaded:"
rules_unit start nft
check "no hold table with drain_timeout 0" sh -c "! ip netns exec $G nft list table inet mtugate_hold"
hold t4 2 $HE:443 || fail "2 tunnels up"
master=$(child "$dpid" mtugated-proxy)
rules_unit stop nft
kill -TERM "$dpid"
wait "$dpid"
check "mtugated exited 0" test $? = 0
check "its proxy ended with it" wait_until 6 dead "${master:-0}"
check "the tunnels were closed" test "$(dpd t4)" = "ok=0 failed=2"
check "the rules unit's stop left no fwmark rule" sh -c "! ip netns exec $G ip rule | grep -q fwmark"
check "... and no table" sh -c "[ -z \"\$(ip netns exec $G nft list tables | grep mtugate)\" ]"
kill -TERM "$t4" 2>/dev/null
[ -n "${E2E_UPGRADE_DEBUG:-}" ] && grep -v "tunnel closed" "$tmp"/mtugated.*.log >&2
finish e2e-upgrade
