#!/bin/bash
# Oversize DF packets answered per second: mtugated (the rules of `mtugatectl
# rules`, ICMP from the daemon) against the kernel answering the same packets
# itself (a route toward the pool with `mtu lock`), alternating in one run.
# The sender counts the frag-needed / Packet Too Big messages it really gets
# back (tests/tools/pmtublast), from rotating source addresses so that the
# per-host limit does not cap either side.
#   sender S (sources 198.19.0.0/16, one in each /64 of 2001:db8:19::/48) -- gateway G -- sink H (pool)
# Limits lifted for the benchmark: group pmtu_rate = 100000 (the maximum, burst
# the same); in G net.ipv4.icmp_ratelimit = 0, net.ipv6.icmp.ratelimit = 0 and,
# where the kernel has them per namespace, icmp_msgs_per_sec / icmp_msgs_burst
# raised (Linux exempts frag-needed and Packet Too Big from its limits anyway).
# Environment: BENCH_PMTU_SECONDS (per run, default 3), BENCH_PMTU_ROUNDS
# (default 3), BENCH_PMTU_SIZE (default 1400).
# What bounds it: since the per-sender (10/s per /24) and per-destination
# (20/s per pool address) budgets of clamp/ratelimit.h, which no setting
# lifts, mtugate's figure is those budgets' (all toward one destination:
# about 40/s), not its speed: pmtu_suppressed counts the rest. Without them it
# was one thread answering, a queue round trip and a raw-socket send per
# answer, against the kernel answering in the sender's softirq.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

SECS=${BENCH_PMTU_SECONDS:-3}
ROUNDS=${BENCH_PMTU_ROUNDS:-3}
SIZE=${BENCH_PMTU_SIZE:-1400}
MTU=1300 DST4=192.0.2.130 DST6=2001:db8:0:80::130
S=mpS$$ G=mpG$$ H=mpH$$
bench_start $S $G $H

BLAST=$(bench_tool pmtublast) || exit 1
[ -x "$B/mtugated" ] || { echo "bench-pmtu: build first (make tests)"; exit 1; }

bench_net $S 3 $G $H 2
ip -n $S route add local 198.19.0.0/16 dev lo
ip -n $S -6 route add local 2001:db8:19::/48 dev lo
ip -n $G route add 198.19.0.0/16 via 198.18.3.2
ip -n $G -6 route add 2001:db8:19::/48 via 2001:db8:3::2
# The sink: whatever passes the gateway ends here, unanswered.
ip -n $H route add blackhole 192.0.2.128/26
ip -n $H -6 route add blackhole 2001:db8:0:80::/64
set_sysctl() { ip netns exec $G sysctl -qw "$1" 2>/dev/null && echo "  $G: $1"; }
echo "kernel ICMP limits lifted for the baseline:"
set_sysctl net.ipv4.icmp_ratelimit=0
set_sysctl net.ipv6.icmp.ratelimit=0
set_sysctl net.ipv4.icmp_msgs_per_sec=1000000
set_sysctl net.ipv4.icmp_msgs_burst=1000000

bench_conf <<CONF
[queues]
mss = off
pmtu = 2
dtls = off
CONF
printf '[group]\nname = bench\npool = 192.0.2.128/26, 2001:db8:0:80::/64\nmtu = %s\nmss = off\npmtu = yes\npmtu_rate = 100000\n' \
	$MTU >"$tmp/groups.d/bench.conf"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4" || exit 1
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ip6tables >"$tmp/rules6" || exit 1
bench_daemon $G

use() {	# use mtugate|kernel: who answers
	local t
	for t in iptables ip6tables; do
		ip netns exec $G $t -t mangle -F
		ip netns exec $G $t -t mangle -X
	done
	if [ "$1" = kernel ]; then
		ip -n $G route replace 192.0.2.128/26 via 198.18.2.2 mtu lock $MTU
		ip -n $G -6 route replace 2001:db8:0:80::/64 via 2001:db8:2::2 mtu lock $MTU
	else
		ip -n $G route replace 192.0.2.128/26 via 198.18.2.2
		ip -n $G -6 route replace 2001:db8:0:80::/64 via 2001:db8:2::2
		ip netns exec $G iptables-restore --noflush "$tmp/rules4"
		ip netns exec $G ip6tables-restore --noflush "$tmp/rules6"
	fi
	ip -n $G route flush cache
	ip -n $G -6 route flush cache
}

# run MODE FAMILY: one blast; its answers per second go to $tmp/rate.MODE.FAMILY
run() {
	local out src dst sent icmp mtu
	if [ "$2" = 4 ]; then src=198.19.0.0/16 dst=$DST4; else src=2001:db8:19::/48 dst=$DST6; fi
	use "$1"
	out=$(ip netns exec $S "$BLAST" "$src" "$dst" "$SIZE" "$SECS")
	read -r sent icmp mtu < <(sed -n 's/.*sent=\([0-9]*\) icmp=\([0-9]*\) mtu=\([0-9]*\).*/\1 \2 \3/p' <<<"$out")
	printf '  %-7s IPv%s: sent %8d in %s s, answered %8d (%d/s), mtu %s\n' "$1" "$2" "$sent" "$SECS" \
		"$icmp" $((icmp / SECS)) "$mtu"
	echo $((icmp / SECS)) >>"$tmp/rate.$1.$2"
}

for r in $(seq "$ROUNDS"); do
	echo "round $r"
	for fam in 4 6; do
		run mtugate $fam
		run kernel $fam
	done
done
json=$(ctl stats --json)
echo "mtugated: $(python3 -c 'import json,sys; d=json.load(sys.stdin); g=d["groups"]["bench"]
print("pmtu_sent=%d pmtu_suppressed=%d dropped=%d seen=%d" % (g["pmtu_sent"], g["pmtu_suppressed"],
      d["packets"]["dropped"], d["packets"]["seen"]))' <<<"$json")"
bench_line pmtu_rate_v6 icmp/s "$tmp/rate.mtugate.6" "$tmp/rate.kernel.6"
bench_line pmtu_rate icmp/s "$tmp/rate.mtugate.4" "$tmp/rate.kernel.4"
