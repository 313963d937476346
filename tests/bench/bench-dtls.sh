#!/bin/bash
# Bulk DTLS through a gateway that normalises the port (CSCuh61321: clients
# are told 444, the headend answers on 443): mtugated deciding on the flow's
# first datagram (the rules of `mtugatectl rules --iptables`, DNAT on its
# mark) against a plain kernel DNAT rule doing the same, alternating in one
# run, same generator (tests/tools/dtlsblast: a ClientHello, then DTLS 1.2
# application-data records). The receiver listens on 443 only, so every byte
# it counts was normalised. Also: datagrams per flow that reached user space.
# dtls_bulk_nft: the same with `mtugatectl rules --nft` (native nft: ct mark
# compared in the kernel, no rule counters); where the kernel has no nft
# queue (this one: CONFIG_NFT_QUEUE unset) the queue statements become the
# mark mtugated gives a relayed flow (tag, decided, normalize), so the line
# measures the relay path's rules without the one decision.
# What bounds it: the generator's CPU, which runs the whole forward path
# (veth, conntrack, DNAT, the receiver's wakeup) in its softirq; mtugate adds
# its rule evaluation to that path: a settled flow passes two hooks (mangle
# PREROUTING, filter FORWARD) at one to three rules each. With iptables-nft
# that is, per hook, a jump with a counter (nft_do_chain, nft_counter_eval),
# and the connmark match through the xtables compatibility layer
# (nft_match_eval, connmark_mt): 5 to 6.5 % of the sampled CPU over the
# baseline's, the hooks' jumps alone 2 to 2.5. The native nft table adds 4
# to 5 %, where a table with the same two hooks and no rules adds nothing
# measurable: what is left is nft_do_chain running a rule in each hook
# (docs/performance.md). BENCH_DTLS_PERF says it per mode.
#   client C 198.18.1.2 -- gateway G -- headend H 198.18.2.2
# Environment: BENCH_DTLS_SECONDS (per run, default 3), BENCH_DTLS_ROUNDS (5),
# BENCH_DTLS_SIZE (datagram payload, default 1200), BENCH_DTLS_PERF (a path:
# `perf record -a -g` of each mode's last run into PATH.MODE, and a
# "measure dtls_rule_engine_MODE" line: the rule evaluation's share of the
# generator's, the receiver's and the softirq threads' samples),
# BENCH_DTLS_HOOKS (set: one more mode, dtls_bulk_hooks_only: the baseline
# plus the two iptables hooks mtugate's rules use, each jumping to an empty
# chain), BENCH_DTLS_FIREWALL (set: every mode runs behind a stateful filter
# FORWARD chain, policy drop, as a real firewall's: the hooks it registers
# anyway are then no longer mtugate's to pay; the lines say firewall=yes).
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
	ip netns exec $G iptables -P FORWARD ACCEPT
	ip netns exec $G nft delete table inet mtugate 2>/dev/null
	ip netns exec $G conntrack -F >/dev/null 2>&1 || true
	[ -n "${BENCH_DTLS_FIREWALL:-}" ] || return 0
	ip netns exec $G iptables-restore --noflush <<-RULES
	*filter
	-P FORWARD DROP
	-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	-A FORWARD -d $HE -p udp --dport $REAL -j ACCEPT
	COMMIT
	RULES
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
# mtugate's nft table, the queue statements replaced by the relay decision
# where this kernel has no nft queue (marks.h: the default mark layout).
nft_queue=
ip netns exec $G nft -c "add table inet t; add chain inet t c { type filter hook prerouting priority 0; };
	add rule inet t c queue num 3 bypass" 2>/dev/null && nft_queue=1
mode_nft() {
	gw_flush
	if [ -n "$nft_queue" ]; then
		"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --nft | ip netns exec $G nft -f -
	else
		"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --nft |
			sed 's/ queue num [0-9-]* bypass$/ meta mark set meta mark \& 0x0000fff0 | 0x4d540003/' |
			ip netns exec $G nft -f -
	fi
}
# The floor of any iptables rule set in mtugate's place: the baseline's DNAT,
# and the two hooks mtugate uses (mangle PREROUTING, filter FORWARD) each
# jumping to an empty chain.
mode_hooks() {
	mode_baseline
	ip netns exec $G iptables-restore --noflush <<-RULES
	*mangle
	:H_PRE - [0:0]
	-I PREROUTING -j H_PRE
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
	modes="baseline mtugate nft"; [ -n "${BENCH_DTLS_HOOKS:-}" ] && modes="baseline hooks mtugate nft"
	[ $((r % 2)) = 1 ] || modes=$(tr ' ' '\n' <<<"$modes" | tac | tr '\n' ' ')
	for m in $modes; do
		q0=$(queued)
		v=$(run $m) || exit 1
		q=$(( $(queued) - q0 ))
		echo "round $r $m: ${v:-0} Mbit/s$( [ $m = baseline ] || echo ", $q datagram(s) queued")"
		awk -v v="${v:-0}" 'BEGIN { exit !(v > 0) }' ||
			{ echo "bench-dtls: $m: nothing arrived on port $REAL"; cat "$tmp/recv.$m" "$tmp/send.$m"
			  ip netns exec $G iptables-save -c; ip netns exec $G conntrack -L; exit 1; }
		case $m in
		mtugate) echo "$v" >>"$tmp/mg"; [ "$q" -gt "$maxq" ] && maxq=$q ;;
		baseline) echo "$v" >>"$tmp/base" ;;
		*) echo "$v" >>"$tmp/$m" ;;
		esac
	done
done
rewritten=$(ctl stats --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"]["relay"]["dtls_port_rewritten"])')
[ "$rewritten" -ge "$ROUNDS" ] || { echo "bench-dtls: dtls_port_rewritten=$rewritten, want $ROUNDS"; exit 1; }
fw=; [ -n "${BENCH_DTLS_FIREWALL:-}" ] && fw=firewall=yes
bench_line dtls_bulk Mbit/s "$tmp/mg" "$tmp/base" $fw
bench_line dtls_bulk_nft Mbit/s "$tmp/nft" "$tmp/base" $fw \
	"decision=$( [ -n "$nft_queue" ] && echo mtugated || echo emulated)"
[ -s "$tmp/hooks" ] && bench_line dtls_bulk_hooks_only Mbit/s "$tmp/hooks" "$tmp/base" $fw
if [ -n "${BENCH_DTLS_PERF:-}" ]; then
	for m in $modes; do
		echo "measure dtls_rule_engine_$m: $(bench_rule_share "$BENCH_DTLS_PERF.$m" "$(basename "$BLAST")" |
			sed 's/^rule engine \([0-9.]*\)% of \([0-9]*\) samples:/value=\1 unit=%_of_samples samples=\2/; s/ \([a-z0-9_]*\) \([0-9.]*%\)/ \1=\2/g')"
	done
fi
echo "measure dtls_queued_per_flow: value=$maxq unit=packets"
