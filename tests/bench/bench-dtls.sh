#!/bin/bash
# Bulk DTLS through a gateway that normalises the port (CSCuh61321: clients
# are told 444, the headend answers on 443): mtugated deciding on the flow's
# first datagram (the rules of `mtugatectl rules --iptables`, DNAT on its
# mark) against a plain kernel DNAT rule doing the same, alternating in one
# run, same generator (tests/tools/dtlsblast: a ClientHello, then DTLS 1.2
# application-data records). The receiver listens on 443 only, so every byte
# it counts was normalised. Also: datagrams per flow that reached user space.
# What bounds it: the generator's CPU, which runs the whole forward path
# (veth, conntrack, DNAT, the receiver's wakeup) in its softirq; mtugate adds
# its hooks and rule walks to that path (docs/performance.md).
#   client C 198.18.1.2 -- gateway G -- headend H 198.18.2.2
# Environment: BENCH_DTLS_SECONDS (per run, default 3), BENCH_DTLS_ROUNDS (5),
# BENCH_DTLS_SIZE (datagram payload, default 1200), BENCH_DTLS_PERF (a path:
# `perf record -a -g` of each run into PATH.mtugate and PATH.baseline),
# BENCH_DTLS_HOOKS (set: a third mode, dtls_bulk_hooks_only: the baseline plus
# the three hooks mtugate's rules use, each jumping to an empty chain).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

SECS=${BENCH_DTLS_SECONDS:-3}
ROUNDS=${BENCH_DTLS_ROUNDS:-5}
SIZE=${BENCH_DTLS_SIZE:-1200}
CLI=198.18.1.2 HE=198.18.2.2 ADV=444 REAL=443
C=mdC$$ G=mdG$$ H=mdH$$
bench_start $C $G $H

BLAST=$(bench_tool dtlsblast clamp/dtls.c) || exit 1
[ -x "$B/mtugated" ] && [ -x "$B/mtugatectl" ] || { echo "bench-dtls: build first (make)"; exit 1; }

bench_net $C 1 $G $H 2

bench_conf <<CONF
[queues]
mss = off
pmtu = off
dtls = 3
[headend]
address = $HE
dtls_port = $REAL
advertised_dtls_port = $ADV
CONF
cat >"$tmp/groups.d/relay.conf" <<GRP
[group]
name = relay
pool = 192.0.2.0/26
clients = 198.18.1.0/24
mtu = 1400
dtls = relay
GRP
bench_daemon $G
# The sets the rules name (flows blocked lately), made once.
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ipset | ip netns exec $G ipset restore -exist || exit 1

gw_flush() {
	local t
	for t in raw mangle nat filter; do
		ip netns exec $G iptables -t $t -F
		ip netns exec $G iptables -t $t -X
	done
	ip netns exec $G conntrack -F >/dev/null 2>&1 || true
}
mode_mtugate() {
	gw_flush
	"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables | ip netns exec $G iptables-restore --noflush
}
mode_baseline() {
	gw_flush
	ip netns exec $G iptables -t nat -A PREROUTING -d $HE -p udp --dport $ADV \
		-j DNAT --to-destination $HE:$REAL
}
# The floor of any iptables rule set in mtugate's place: the baseline's DNAT,
# and the three hooks mtugate uses each jumping to an empty chain.
mode_hooks() {
	mode_baseline
	ip netns exec $G iptables-restore --noflush <<-RULES
	*mangle
	:H_PRE - [0:0]
	:H_FWD - [0:0]
	-I PREROUTING -j H_PRE
	-I FORWARD -j H_FWD
	COMMIT
	*filter
	:H_FLT - [0:0]
	-I FORWARD -j H_FLT
	COMMIT
	RULES
}
queued() { ip netns exec $G awk '$1 == 3 { print $8; f = 1 } END { if (!f) print 0 }' /proc/net/netfilter/nfnetlink_queue; }
listening() { [ -n "$(ip netns exec $H ss -Huln "sport = :$REAL")" ]; }

sport=40000
run() {	# run MODE: prints the receiver's Mbit/s
	local out=$tmp/recv.$1
	sport=$((sport + 1))
	"mode_$1"
	ip netns exec $H "$BLAST" recv $HE $REAL $((SECS + 10)) >"$out" 2>&1 &
	local rpid=$!
	wait_until 5 listening || { echo "bench-dtls: receiver did not start" >&2; return 1; }
	if [ -n "${BENCH_DTLS_PERF:-}" ]; then	# a profile of every CPU per mode, the last round's
		perf record -q -a -g -o "$BENCH_DTLS_PERF.$1" -- \
			ip netns exec $C "$BLAST" send $CLI $sport $HE $ADV "$SECS" "$SIZE" >"$tmp/send.$1" 2>&1
	else
		ip netns exec $C "$BLAST" send $CLI $sport $HE $ADV "$SECS" "$SIZE" >"$tmp/send.$1" 2>&1
	fi
	wait $rpid
	sed -n 's/.* mbit=\([0-9.]*\).*/\1/p' "$out"
}

: >"$tmp/mg" ; : >"$tmp/base"
maxq=0
for r in $(seq "$ROUNDS"); do
	# Alternate which goes first: neither gets a warm cache every time.
	modes="baseline mtugate"; [ -n "${BENCH_DTLS_HOOKS:-}" ] && modes="baseline hooks mtugate"
	[ $((r % 2)) = 1 ] || modes=$(tr ' ' '\n' <<<"$modes" | tac | tr '\n' ' ')
	for m in $modes; do
		q0=$(queued)
		v=$(run $m) || exit 1
		q=$(( $(queued) - q0 ))
		echo "round $r $m: ${v:-0} Mbit/s$( [ $m = mtugate ] && echo ", $q datagram(s) queued")"
		awk -v v="${v:-0}" 'BEGIN { exit !(v > 0) }' ||
			{ echo "bench-dtls: $m: nothing arrived on port $REAL"; cat "$tmp/recv.$m" "$tmp/send.$m"
			  ip netns exec $G iptables-save -c; ip netns exec $G conntrack -L; exit 1; }
		case $m in
		mtugate) echo "$v" >>"$tmp/mg"; [ "$q" -gt "$maxq" ] && maxq=$q ;;
		hooks) echo "$v" >>"$tmp/hooks" ;;
		*) echo "$v" >>"$tmp/base" ;;
		esac
	done
done
rewritten=$(ctl stats --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"]["relay"]["dtls_port_rewritten"])')
[ "$rewritten" -ge "$ROUNDS" ] || { echo "bench-dtls: dtls_port_rewritten=$rewritten, want $ROUNDS"; exit 1; }
bench_line dtls_bulk Mbit/s "$tmp/mg" "$tmp/base"
[ -s "$tmp/hooks" ] && bench_line dtls_bulk_hooks_only Mbit/s "$tmp/hooks" "$tmp/base"
echo "measure dtls_queued_per_flow: value=$maxq unit=packets"
