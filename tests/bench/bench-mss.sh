#!/bin/bash
# SYNs per second forwarded through a gateway namespace and arriving clamped:
# mtugated (the rules of `mtugatectl rules --iptables`) against the kernel's
# `-j TCPMSS --set-mss` on the same SYNs from the same generator, alternating
# in one run. At the receiver, iptables counters count every SYN, clamped or
# not (lost = sent - arrived), and a capture gives arrival times: the rate
# and, in a paced run, the one-way latency (capture time - the sender's TSval).
#   sender S (pool 192.0.2.0/26) -- gateway G -- receiver R (198.18.3.2)
# Environment: BENCH_MSS_N (SYNs per run, default 300000), BENCH_MSS_ROUNDS
# (default 5: the rates of one run vary by 15 % here), BENCH_MSS_QUEUES (default
# 0 on two CPUs, else 0 to CPUs-2), BENCH_MSS_MAXLEN (65536),
# BENCH_MSS_LAT_RATE / _LAT_N (paced latency run, default 5000/s, 10000),
# BENCH_MSS_PACED_RATE / _PACED_ROUNDS (mss_syn_rate_paced: 150000/s, 3),
# BENCH_MSS_PERF (a path: `perf record -g` of mtugated in its first saturated run).
# Also prints mss_nfqueue_floor_ratio: the same runs with SYNs that need no
# rewrite, i.e. the cost of the queue round trip alone; and the CPU time all
# CPUs spend per SYN in each mode, and the ratio's ceiling that follows from it
# (mss_rate_ceiling, see below).
# What bounds it: the CPUs. The generator's CPU runs the kernel's whole
# forward path; mtugate adds the queue round trip (netlink copy, a context
# switch, the verdict) on mtugated's, about twice the kernel's whole path per
# SYN, so with both CPUs busy the ratio stops at mss_rate_ceiling whatever
# mtugated's own code costs (0.2 us a SYN of about 10).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

N=${BENCH_MSS_N:-300000}
ROUNDS=${BENCH_MSS_ROUNDS:-5}
# One packet thread per core left over by the generator; a queue long enough
# that a flood is absorbed rather than bypassed unclamped (fail-open). Not
# longer: with max_len 300000 the backlog grew to a third of the burst and every
# queued SYN cost the CPUs 13 us instead of 7 (the queue's memory out of cache),
# the clamp's rate fell to 0.34 of the kernel's (0.58 at 65536 in the next run)
# and SYNs still went through unclamped; at 65536 a run that keeps its rate
# bypasses none. A real firewall sizes max_len for its own bursts.
ncpu=$(nproc)
if [ "$ncpu" -le 2 ]; then QUEUES=${BENCH_MSS_QUEUES:-0}; else QUEUES=${BENCH_MSS_QUEUES:-0-$((ncpu - 2))}; fi
MAXLEN=${BENCH_MSS_MAXLEN:-65536}
LAT_RATE=${BENCH_MSS_LAT_RATE:-5000}
PACED_RATE=${BENCH_MSS_PACED_RATE:-150000} PACED_ROUNDS=${BENCH_MSS_PACED_ROUNDS:-3}
LAT_N=${BENCH_MSS_LAT_N:-10000}
MTU=1400 TARGET=1360	# mss = auto: mtu - 40
SRC=192.0.2.1 DST=198.18.3.2 PORT=9
SEQ_BASE=1000000	# synblast's first sequence number (tests/tools/synpkt.h)
S=mbS$$ G=mbG$$ R=mbR$$
bench_start $S $G $R
cap=$(mktemp -d /dev/shm/bench-mss.XXXXXX 2>/dev/null || mktemp -d /tmp/bench-mss-cap.XXXXXX)
bench_dirs+=("$cap")
dump=''

SYNBLAST=$(bench_tool synblast clamp/pkt.c) SYNSINK=$(bench_tool synsink clamp/pkt.c)
[ -x "$B/mtugated" ] && [ -n "$SYNBLAST" ] && [ -n "$SYNSINK" ] || { echo "bench-mss: build first (make tests)"; exit 1; }

bench_net $S 1 $G $R 3	# R is $DST
ip -n $G route add 192.0.2.0/26 via 198.18.1.2
rif=v-$G rif=${rif:0:15}
# The receiver answers nothing; its raw table counts clamped and other SYNs.
ip netns exec $R iptables -t raw -A PREROUTING -p tcp --dport $PORT -m tcpmss --mss 1:$TARGET -j DROP
ip netns exec $R iptables -t raw -A PREROUTING -p tcp --dport $PORT -j DROP

bench_conf <<CONF
[queues]
mss = $QUEUES
pmtu = off
dtls = off
max_len = $MAXLEN
fail_open = yes
CONF
printf '[group]\nname = bench\npool = 192.0.2.0/26, 2001:db8:40::/64\nmtu = %s\nmss = auto\npmtu = no\n' \
	$MTU >"$tmp/groups.d/bench.conf"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4" || exit 1
bench_daemon $G

use() {	# use kernel|mtugate: the gateway's clamp
	ip netns exec $G iptables -t mangle -F
	ip netns exec $G iptables -t mangle -X
	if [ "$1" = kernel ]; then
		ip netns exec $G iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN \
			-j TCPMSS --set-mss $TARGET
	else
		ip netns exec $G iptables-restore --noflush "$tmp/rules4"
	fi
}
arrived() {	# clamped and other SYNs the receiver's raw table saw
	ip netns exec $R iptables -t raw -L PREROUTING -vnx | awk '$3 == "DROP" { printf "%s ", $1 }'
}
settled() {	# all arrived, or nothing new since the last look
	local now
	now=$(arrived)
	[ "$now" = "${last_seen:-}" ] && return 0
	last_seen=$now
	set -- $now
	[ $(($1 + $2)) -ge "$n" ]
}

captured() {	# the capture file stopped growing
	local now
	now=$(stat -c %s "$pcap")
	[ "$now" = "${last_seen:-}" ] && return 0
	last_seen=$now
	return 1
}

# run MODE COUNT RATE [MSS]: one generator run; sets rate lost unclamped p50
# p99, and wcpu (every CPU's busy time per SYN: generator, gateway, receiver
# and mtugated together) and ucpu (mtugated's user-space time per SYN)
# At full rate the capture keeps one SYN in EVERY (by sequence number): a full
# capture costs the receiver's CPU per packet, and on a small machine that CPU
# is the one mtugated needs while the kernel's clamp leaves it idle, so the
# measuring tool would weigh on one side of the ratio only. The receiver's
# counters still count every SYN (lost, unclamped).
EVERY=${BENCH_MSS_SAMPLE:-256}
run() {
	local mode=$1 n=$2 pace=$3 mss=${4:-1460} pcap=$cap/$1.pcap out every=1
	local filter="tcp dst port $PORT"
	[ "$pace" = 0 ] || [ "$pace" -gt "$LAT_RATE" ] && every=$EVERY
	[ "$every" -gt 1 ] && filter+=" and ((tcp[4:4] - $SEQ_BASE) % $every) = 0"
	use "$mode"
	ip netns exec $R iptables -t raw -Z
	rm -f "$pcap"
	ip netns exec $R tcpdump -i "$rif" -s 128 -B 262144 --time-stamp-precision=nano -w "$pcap" \
		"$filter" 2>"$tmp/tcpdump.err" &
	dump=$!
	wait_until 10 grep -q "listening on" "$tmp/tcpdump.err"
	t0=$(cputicks) u0=$(userticks) w0=$(busyticks)
	local prof=''
	# BENCH_MSS_PERF=PATH: mtugated's profile during its first saturated run.
	if [ -n "${BENCH_MSS_PERF:-}" ] && [ "$mode" = mtugate ] && [ "$pace" = 0 ] && [ ! -e "$BENCH_MSS_PERF" ]; then
		perf record -q -g -p "$dpid" -o "$BENCH_MSS_PERF" 2>/dev/null &
		prof=$!
	fi
	ip netns exec $S "$SYNBLAST" -n "$n" -r "$pace" -k 16 -p $PORT -m "$mss" $SRC $DST >"$tmp/blast" || true
	[ -n "$prof" ] && { kill -INT "$prof"; wait "$prof"; }
	last_seen=
	while ! settled; do sleep 0.3; done
	dcpu=$(per_syn "$t0" "$(cputicks)" "$n") ucpu=$(per_syn "$u0" "$(userticks)" "$n")
	wcpu=$(per_syn "$w0" "$(busyticks)" "$n")
	gcpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' "$tmp/blast" | awk -v n="$n" '{ printf "%.2f", $1 * 1e6 / n }')
	# tcpdump's ring hands over a partly filled block only after its timeout (1 s).
	last_seen=
	while ! captured; do sleep 1.2; done
	kill -INT $dump; wait $dump 2>/dev/null; dump=
	# shellcheck disable=SC2046 # two numbers
	set -- $(arrived)
	lost=$((n - $1 - $2)) unclamped=$2
	capdrop=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$tmp/tcpdump.err")
	out=$("$SYNSINK" -n "$n" -e "$every" -p $PORT -M $TARGET "$pcap")
	rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$out")
	p50=$(sed -n 's/.* lat_p50_us=\([-0-9]*\).*/\1/p' <<<"$out")
	p99=$(sed -n 's/.* lat_p99_us=\([-0-9]*\).*/\1/p' <<<"$out")
	echo "  $mode: $(cat "$tmp/blast"); CPU per SYN: generator (with the kernel's forwarding) $gcpu us, mtugated $dcpu us (user space $ucpu us), all CPUs $wcpu us; receiver: clamped=$1 other=$2 lost=$lost capture_dropped=${capdrop:-?}; $out"
	rm -f "$pcap"
}

cputicks() { awk '{ print $14 + $15 }' /proc/$dpid/stat; }	# mtugated's user + system time
userticks() { awk '{ print $14 }' /proc/$dpid/stat; }	# mtugated's user time
# Every CPU's busy time (user, nice, system, irq, softirq), whoever runs.
busyticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
per_syn() {	# per_syn TICKS0 TICKS1 N: microseconds per SYN
	awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" -v n="$3" 'BEGIN { printf "%.2f", (b - a) * 1e6 / hz / n }'
}

# rounds COUNT RATE [MSS]: COUNT runs of each clamp, alternating; sets krates
# mrates (rates), kw mw mu (CPU per SYN: all CPUs each mode, mtugated's user
# space), klost (the kernel's lost), mlost munclamped (mtugate's), summed.
rounds() {
	krates='' mrates='' kw='' mw='' mu='' klost=0 mlost=0 munclamped=0
	for _ in $(seq "$1"); do
		run kernel "$N" "${@:2}"; krates+=" $rate" kw+=" $wcpu" klost=$((klost + lost))
		run mtugate "$N" "${@:2}"; mrates+=" $rate" mw+=" $wcpu" mu+=" $ucpu"
		mlost=$((mlost + lost)) munclamped=$((munclamped + unclamped))
	done
}
ratio() { awk -v m="$1" -v k="$2" 'BEGIN { printf "%.3f", k ? m / k : 0 }'; }

echo "bench-mss: $N SYNs per run, $ROUNDS rounds, queues $QUEUES, max_len $MAXLEN, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
rounds "$ROUNDS" 0
k=$(median low <<<"$krates") m=$(median low <<<"$mrates") kwm=$(median <<<"$kw") mwm=$(median <<<"$mw")
kw_all=$kw mw_all=$mw mu_all=$mu
echo "bench-mss: kernel rates$krates; mtugate rates$mrates; kernel lost $klost in all rounds"
tr ' ' '\n' <<<"$mrates" | grep . >"$tmp/m.rates"; tr ' ' '\n' <<<"$krates" | grep . >"$tmp/k.rates"
bench_line mss_syn_rate syn/s "$tmp/m.rates" "$tmp/k.rates"
echo "measure mss_syn_lost: value=$mlost unit=syn"
echo "measure mss_syn_unclamped: value=$munclamped unit=syn"

# What NFQUEUE itself allows here: SYNs whose MSS is already at the target, so
# mtugated only reads them and accepts them in batches (no payload verdict),
# against the kernel's TCPMSS on the same SYNs. The clamp's ratio above is
# measured against this floor, not just against the kernel.
rounds "$ROUNDS" 0 $TARGET
kf=$(median low <<<"$krates") mf=$(median low <<<"$mrates") fw=$mw fwm=$(median <<<"$mw")
echo "bench-mss: SYNs already at $TARGET (read and accepted only): kernel rates$krates; mtugate rates$mrates"
echo "measure mss_nfqueue_floor_ratio: value=$(ratio "$mf" "$kf") unit=ratio"
# The clamp's own cost beyond the bare queue: its ratio over the floor's, in
# the same run (the issue's target: 0.95).
echo "measure mss_syn_rate_vs_floor: value=$(awk -v a="$(ratio "$m" "$k")" -v b="$(ratio "$mf" "$kf")" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }') unit=ratio"

# The ratio's ceiling on this machine, from the CPU time all CPUs spend per
# SYN (medians of the rounds). The kernel's clamp runs the whole path on the
# generator's CPU; mtugate's splits it between that CPU and mtugated's, so with
# every CPU busy all the time it reaches at best CPUs / (its time per SYN)
# SYN/s: divided by the kernel's rate, the highest ratio this work allows.
# /proc/stat counts the whole machine: run it quiet, as every benchmark.
echo "bench-mss: CPU time per SYN, all CPUs: kernel$kw_all; mtugate$mw_all; mtugate, SYNs already at $TARGET$fw; of it mtugated in user space$mu_all"
echo "measure mss_cpu_per_syn_kernel: value=$kwm unit=us"
echo "measure mss_cpu_per_syn_mtugate: value=$mwm unit=us"
echo "measure mss_cpu_per_syn_floor: value=$fwm unit=us"
echo "measure mss_cpu_per_syn_userspace: value=$(median <<<"$mu_all") unit=us"
ceiling() { awk -v c="$ncpu" -v w="$1" -v k="$2" 'BEGIN { printf "%.3f", w * k ? c * 1e6 / (w * k) : 0 }'; }
echo "measure mss_rate_ceiling: value=$(ceiling "$mwm" "$k") unit=ratio"
# The same for the SYNs that need no rewrite: the queue's round trip alone,
# with nothing for any consumer to save. Below 0.95, no NFQUEUE consumer can
# reach 0.95 on this machine.
echo "measure mss_nfqueue_ceiling: value=$(ceiling "$fwm" "$kf") unit=ratio"

# The issue's own scale: a generator offering 150,000 SYN/s (one SYN per send,
# on this 2-core machine), which the kernel clamped in full and a naive queue
# consumer did not (R = 0.71, 16 % lost). Paced at that rate, both clamps meet
# the same offered load: the ratio says whether mtugate keeps up with it.
rounds "$PACED_ROUNDS" "$PACED_RATE"
echo "bench-mss: paced at $PACED_RATE SYN/s: kernel rates$krates; mtugate rates$mrates"
tr ' ' '\n' <<<"$mrates" | grep . >"$tmp/m.rates"; tr ' ' '\n' <<<"$krates" | grep . >"$tmp/k.rates"
bench_line mss_syn_rate_paced syn/s "$tmp/m.rates" "$tmp/k.rates" offered=$PACED_RATE
echo "measure mss_syn_lost_paced: value=$mlost unit=syn"
echo "measure mss_syn_unclamped_paced: value=$munclamped unit=syn"

# Latency at a paced rate, where no queue builds up: the added time per SYN.
run kernel "$LAT_N" "$LAT_RATE"; k50=$p50 k99=$p99
run mtugate "$LAT_N" "$LAT_RATE"; m50=$p50 m99=$p99
echo "bench-mss: one-way latency at $LAT_RATE SYN/s: kernel p50 ${k50} us p99 ${k99} us; mtugate p50 ${m50} us p99 ${m99} us"
echo "measure mss_latency_p50: value=$((m50 - k50)) unit=us"
echo "measure mss_latency_p99: value=$((m99 - k99)) unit=us"
echo "bench-mss: mtugated counters: $(ctl stats --json | tr -d '\n ')"
