#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check and wait_until
# Issue 17: a DTLS flood from random source ports while proxied tunnels are up.
#   client C 198.18.1.2 -- gateway G (mtugated: DTLS queue, TLS proxy) -- headend H 198.18.2.2
# H is the stub headend (tests/tools/stubheadend). C holds FLOOD_TUNNELS proxied tunnels
# (tests/tools/cstpload) plus one probe tunnel, then sends FLOOD_PPS DTLS records a second
# from its own address, each from a random port (tests/tools/dtlsblast flood): every one is
# a new flow for the DTLS queue, and no ClientHello, so each asks for the group of its
# client address, the tunnels' own. The tunnels keep relaying: the probe's DPD round trip
# stays under FLOOD_RTT_MS (the median of 10, and the worst of them under 4x), every
# held tunnel answers a DPD during the flood, and the daemon decides (nearly) every
# datagram rather than letting the full queue pass them undecided. Environment: FLOOD_TUNNELS (5000),
# FLOOD_PPS (20000), FLOOD_SECONDS (6), FLOOD_RTT_MS (50).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

N=${FLOOD_TUNNELS:-5000}
PPS=${FLOOD_PPS:-20000}
SECS=${FLOOD_SECONDS:-6}
RTT_MS=${FLOOD_RTT_MS:-50}
HE=198.18.2.2 CL=198.18.1.2
C=mfC$$ G=mfG$$ H=mfH$$
bench_start $C $G $H
for t in openssl python3; do
	command -v $t >/dev/null || { echo "e2e-flood: needs $t"; exit 77; }
done
[ -x "$B/mtugated" ] && [ -x "$B/mtugatectl" ] || { echo "e2e-flood: build first (make)"; exit 1; }
# shellcheck disable=SC2046 # the linker flags, a word each
tls_tool() { bench_tool "$1" "$B/libmtugate.a" $(pkg-config --libs openssl) -pthread; }
cstpload=$(tls_tool cstpload) && stubheadend=$(tls_tool stubheadend) &&
	dtlsblast=$(bench_tool dtlsblast clamp/dtls.c) || { echo "e2e-flood: cannot build the tools"; exit 1; }
want=$((2 * N + 1024))
[ "$(ulimit -Hn)" -lt "$want" ] && ulimit -Hn "$want" 2>/dev/null
ulimit -n "$(ulimit -Hn)"

bench_net $C 1 $G $H 2
# The headend's certificate, self-signed: the proxy trusts it as its own CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj "/CN=headend.lab.test" -addext "subjectAltName=DNS:headend.lab.test,IP:$HE" \
	-keyout "$tmp/headend.key" -out "$tmp/headend.crt" 2>/dev/null || exit 1
chmod 0600 "$tmp/headend.key"

bench_conf <<CONF
[queues]
mss = off
pmtu = off
dtls = 3
[headend]
address = $HE
tls_port = 443
dtls_port = 443
advertised_dtls_port = 443
[proxy]
enable = yes
listen_port = 8443
certificate = $tmp/headend.crt
private_key = $tmp/headend.key
upstream_ca = $tmp/headend.crt
idle_timeout = 3600
CONF
cat >"$tmp/groups.d/relay.conf" <<GRP
[group]
name = relay
auth_group = bench
pool = 192.0.2.0/26
clients = 198.18.1.0/24
mtu = 1400
dtls = relay
GRP

ip netns exec $H "$stubheadend" "$tmp/headend.crt" "$tmp/headend.key" $HE:443 $HE:444 \
	>"$tmp/stub.log" 2>&1 &
bench_daemon $G
check "the stub headend listens" wait_until 10 grep -q listening "$tmp/stub.log"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ipset >"$tmp/sets"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --routes >"$tmp/routes"
check "ipset restore takes the sets" ip netns exec $G ipset restore -exist -file "$tmp/sets"
check "iptables-restore takes the rules" ip netns exec $G iptables-restore --noflush "$tmp/rules4"
check "the TPROXY routes apply" ip netns exec $G sh -e "$tmp/routes"

# The held tunnels, and the probe: one tunnel of its own, its DPD timed.
ip netns exec $C "$cstpload" $HE:443 idle "$N" 10 >"$tmp/held.out" 2>"$tmp/held.err" &
held=$!
check "the held tunnels warm up" wait_until 60 grep -q '^warm' "$tmp/held.out"
kill -USR1 $held
check "$N tunnels are up through the proxy" wait_until 120 grep -q "^up up=$N failed=0" "$tmp/held.out"
ip netns exec $C "$cstpload" $HE:443 idle 1 1 >"$tmp/probe.out" 2>"$tmp/probe.err" &
probe=$!
check "the probe tunnel is up" wait_until 30 grep -q '^warm up=1' "$tmp/probe.out"
sessions() { sessions_kv ctl | grep -c '^session'; }
check "the proxy holds $((N + 1)) sessions ($(sessions))" test "$(sessions)" = $((N + 1))

# rtts COUNT: the probe's DPD round trips in ms, one a line: SIGUSR1, then its "dpd" line.
rtts() {
	python3 - "$probe" "$tmp/probe.out" "$1" <<'PY'
import os, signal, sys, time
pid, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for _ in range(count):
    before = open(path).read().count("\ndpd ok=1 ")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGUSR1)
    while open(path).read().count("\ndpd ok=1 ") == before:
        if time.monotonic() - t0 > 5:
            print(5000); break
        time.sleep(0.0005)
    else:
        print("%.1f" % ((time.monotonic() - t0) * 1000))
    time.sleep(0.1)
PY
}
# The probe's first SIGUSR1 ends its warm-up pause (a one-tunnel warm-up is all of it).
kill -USR1 $probe
wait_until 10 grep -q '^up up=1' "$tmp/probe.out"
quiet=$(rtts 10 | median)
echo "  DPD round trip, quiet: median ${quiet} ms" >&2

queued() { ip netns exec $G awk '$1 == 3 { print $8; f = 1 } END { if (!f) print 0 }' /proc/net/netfilter/nfnetlink_queue; }
stat() { ctl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"][sys.argv[1]])' "$1"; }
q0=$(queued) lim0=$(stat lookups_limited) ct0=$(ip netns exec $G cat /proc/sys/net/netfilter/nf_conntrack_count)
ip netns exec $C "$dtlsblast" flood $CL $HE 443 "$SECS" "$PPS" >"$tmp/flood.out" 2>&1 &
flood=$!
flooding() { [ $(( $(queued) - q0 )) -ge $((PPS / 2)) ]; }
check "the flood reaches the DTLS queue" wait_until 5 flooding
during=$(rtts 10)
kill -USR1 $held
dpd_held=$(wait_until 30 grep -q '^dpd' "$tmp/held.out" && sed -n 's/^dpd ok=\([0-9]*\).*/\1/p' "$tmp/held.out" | tail -1)
wait $flood
sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$tmp/flood.out")
med=$(median <<<"$during")
worst=$(sort -n <<<"$during" | tail -1)
echo "  flood: $(cat "$tmp/flood.out"); DTLS queue took $(( $(queued) - q0 )), lookups_limited +$(( $(stat lookups_limited) - lim0 )), conntrack $ct0 -> $(ip netns exec $G cat /proc/sys/net/netfilter/nf_conntrack_count)" >&2
echo "  DPD round trip during the flood (ms): $(tr '\n' ' ' <<<"$during")-> median $med, worst $worst" >&2
check "the flood ran at ${PPS}/s or near it ($(cat "$tmp/flood.out"))" test "${sent:-0}" -ge $((PPS * SECS * 8 / 10))
# Each datagram asked the daemon: a packet thread that scanned the session table for each
# one fell behind (5000 tunnels: 9,400/s) and the full queue let the rest pass undecided.
check "the daemon kept up: it decided $(( $(queued) - q0 )) of ${sent:-0} (80% or more)" \
	test $(( ($(queued) - q0) * 10 )) -ge $(( ${sent:-1} * 8 ))
check "the lookups by client address were limited (+$(( $(stat lookups_limited) - lim0 )))" \
	test $(( $(stat lookups_limited) - lim0 )) -gt 0
check "the probe's DPD round trip stays under $RTT_MS ms during the flood (median $med)" \
	awk -v m="$med" -v l="$RTT_MS" 'BEGIN { exit !(m < l) }'
check "and its worst under $((4 * RTT_MS)) ms ($worst)" awk -v m="$worst" -v l="$((4 * RTT_MS))" 'BEGIN { exit !(m < l) }'
check "all $N held tunnels answered a DPD during the flood (${dpd_held:-none})" test "${dpd_held:-0}" = "$N"
check "the proxy still holds $((N + 1)) sessions" test "$(sessions)" = $((N + 1))
check "mtugated is alive" kill -0 "$dpid"
kill $held $probe 2>/dev/null
finish e2e-flood
