#!/bin/bash
# Bulk TCP the gateway forwards without deciding anything about it: with
# mtugated running and all of its rules loaded (`mtugatectl rules --iptables`,
# --ip6tables: the MSS, PMTU and DTLS queues on, toward a pool whose MTU the
# path already has, so nothing is rewritten and the segments are the same
# size on both sides), against no rules at all, alternating in one run, same
# iperf3 client and server. Only the SYN and SYN-ACK go to user space; every
# other packet walks mtugate's chains (the resume guard, the settled-DTLS exit,
# the DTLS and MSS matches in PREROUTING, the PMTU length match in FORWARD) and
# nothing else: that walk is what the ratio measures. Except one thing: the
# PMTU rule's length match sees a GSO/GRO super-packet (up to 64 KiB: veth
# and real NICs hand TCP over in those) as oversize, so every super-packet
# toward the pool goes to mtugated and back (pmtu.c passes it: its segments
# fit). "N packet(s) queued" counts them: thousands a second, most of the gap.
# What bounds it: one TCP stream through veth pairs runs the whole forward
# path in the softirq of the sender's CPU, so either side is as fast as that
# CPU (iperf3 -A pins client and server apart); the rules add their walk to it.
#   client C 198.18.1.2 -- gateway G -- server S 198.18.3.2 (in the pool)
# The baseline has no rules, so no connection tracking either: mtugate's
# rules bring conntrack (its lookup, 1 to 2 % of the sampled CPU) with them.
# A gateway's firewall is stateful anyway: BENCH_FORWARD_FIREWALL=1 runs both
# modes behind a stateful filter FORWARD chain (policy drop), and the lines
# say firewall=yes.
# Environment: BENCH_FORWARD_SECONDS (per run, default 3), BENCH_FORWARD_ROUNDS (5),
# BENCH_FORWARD_PERF (a path: `perf record -a -g` of each mode's last run per
# family into PATH.MODE4 and PATH.MODE6, and a "measure
# forward_rule_engine_MODEFAMILY" line: the rule evaluation's share of the
# iperf3 processes' and the softirq threads' samples).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

SECS=${BENCH_FORWARD_SECONDS:-3}
ROUNDS=${BENCH_FORWARD_ROUNDS:-5}
SRV=198.18.3.2 SRV6=2001:db8:3::2
C=mfC$$ G=mfG$$ S=mfS$$
bench_start $C $G $S
command -v iperf3 >/dev/null || { echo "bench-forward: no iperf3 (make deps)"; exit 77; }
[ -x "$B/mtugated" ] && [ -x "$B/mtugatectl" ] || { echo "bench-forward: build first (make)"; exit 1; }

bench_net $C 1 $G $S 3
bench_conf <<CONF
[queues]
mss = 0
pmtu = 2
dtls = 3
[headend]
address = 198.18.2.2
dtls_port = 443
advertised_dtls_port = 444
CONF
# mtu 1500: mss = auto is 1460, what the SYNs carry already; no packet is longer.
printf '[group]\nname = bench\npool = 198.18.3.0/24, 2001:db8:3::/64\nclients = 198.18.1.0/24\nmtu = 1500\nmss = auto\npmtu = yes\ndtls = relay\n' \
	>"$tmp/groups.d/bench.conf"
bench_daemon $G
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ipset | ip netns exec $G ipset restore -exist || exit 1
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4" || exit 1
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ip6tables >"$tmp/rules6" || exit 1

use() {	# use mtugate|baseline
	local t tb
	for t in iptables ip6tables; do
		for tb in raw mangle nat filter; do
			ip netns exec $G $t -t $tb -F
			ip netns exec $G $t -t $tb -X
		done
	done
	for t in iptables ip6tables; do
		ip netns exec $G $t -P FORWARD ACCEPT
		[ -n "${BENCH_FORWARD_FIREWALL:-}" ] || continue
		ip netns exec $G $t-restore --noflush <<-RULES || return 1
		*filter
		-P FORWARD DROP
		-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
		-A FORWARD -p tcp --dport 5201 -j ACCEPT
		COMMIT
		RULES
	done
	[ "$1" = mtugate ] || return 0
	ip netns exec $G iptables-restore --noflush "$tmp/rules4" &&
		ip netns exec $G ip6tables-restore --noflush "$tmp/rules6"
}
queued() { ip netns exec $G awk '{ n += $8 } END { print n + 0 }' /proc/net/netfilter/nfnetlink_queue; }	# all queues

ip netns exec $S iperf3 -s -D -I "$tmp/iperf3.pid" >/dev/null || exit 1
wait_until 5 bash -c "[ -n \"\$(ip netns exec $S ss -Htln 'sport = :5201')\" ]" || { echo "bench-forward: no iperf3 server"; exit 1; }
bench_cleanup_iperf() { [ -f "$tmp/iperf3.pid" ] && kill "$(cat "$tmp/iperf3.pid")" 2>/dev/null; bench_cleanup; }
trap bench_cleanup_iperf EXIT

run() {	# run MODE ADDRESS: prints the receiver's Mbit/s
	local out
	use "$1" || return 1
	local perf=()
	[ -n "${BENCH_FORWARD_PERF:-}" ] && perf=(perf record -q -a -g -o "$BENCH_FORWARD_PERF.$1$fam" --)
	out=$("${perf[@]}" ip netns exec $C iperf3 -c "$2" -t "$SECS" -A 0,1 -J 2>&1) ||
		{ echo "bench-forward: iperf3: $out" >&2; return 1; }
	python3 -c 'import json, sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' <<<"$out"
}

echo "bench-forward: $ROUNDS rounds of ${SECS}s per family and mode, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for fam in 4 6; do
	addr=$SRV; [ $fam = 6 ] && addr=$SRV6
	: >"$tmp/mg$fam"; : >"$tmp/base$fam"
	for r in $(seq "$ROUNDS"); do
		# Alternate which goes first: neither gets a warm cache every time.
		for m in $( [ $((r % 2)) = 1 ] && echo "baseline mtugate" || echo "mtugate baseline"); do
			q0=$(queued)
			v=$(run $m $addr) || exit 1
			echo "round $r IPv$fam $m: $v Mbit/s$( [ $m = mtugate ] && echo ", $(( $(queued) - q0 )) packet(s) queued")"
			if [ $m = mtugate ]; then echo "$v" >>"$tmp/mg$fam"; else echo "$v" >>"$tmp/base$fam"; fi
		done
	done
done
json=$(ctl stats --json)
echo "bench-forward: mtugated: $(python3 -c 'import json, sys; d = json.load(sys.stdin)
print("packets seen=%d" % d["packets"]["seen"])' <<<"$json")"
fw=; [ -n "${BENCH_FORWARD_FIREWALL:-}" ] && fw=firewall=yes
bench_line forward_bulk Mbit/s "$tmp/mg4" "$tmp/base4" $fw
bench_line forward_bulk_v6 Mbit/s "$tmp/mg6" "$tmp/base6" $fw
if [ -n "${BENCH_FORWARD_PERF:-}" ]; then
	for f in baseline4 mtugate4 baseline6 mtugate6; do
		echo "measure forward_rule_engine_$f: $(bench_rule_share "$BENCH_FORWARD_PERF.$f" iperf3 |
			sed 's/^rule engine \([0-9.]*\)% of \([0-9]*\) samples:/value=\1 unit=%_of_samples samples=\2/; s/ \([a-z0-9_]*\) \([0-9.]*%\)/ \1=\2/g')"
	done
fi
