#!/bin/bash
# One fuzz campaign per target, budgeted in CPU seconds rather than wall time,
# so a campaign can be paused (kill -STOP / -CONT) while the machine is needed
# for a benchmark and still gets its full hour of fuzzing.
#   tests/fuzz/campaign.sh SECONDS TARGET...      (e.g. 3600 fuzz_pkt fuzz_dtls)
# Each target: new inputs go to a scratch folder, findings to OUT/TARGET.art/;
# at the end only what adds edge coverage is merged into tests/fuzz/corpus.
# libFuzzer's per-input timeout runs on wall time: a pause longer than
# TIMEOUT seconds (default 1200) would be reported as a hang.
# Prints one summary line per target:
#   campaign TARGET: cpu=S execs=N cov=E ft=F corpus=A->B findings=K ended=budget|finding
set -u
cd "$(dirname "$0")/../.." || exit 1
budget=${1:?usage: campaign.sh SECONDS TARGET...}
shift
OUT=${OUT:-/tmp/mtugate-fuzz}
CPU=${CPU:-1}
TIMEOUT=${TIMEOUT:-1200}
tck=$(getconf CLK_TCK)
mkdir -p "$OUT"

cpu_seconds() {	# utime + stime of PID, in seconds
	local f
	f=$(cut -d' ' -f14,15 "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
	set -- $f
	echo $((($1 + $2) / tck))
}

for t in "$@"; do
	bin=build/fuzz/$t corpus=tests/fuzz/corpus/$t
	[ -x "$bin" ] || { echo "campaign $t: no $bin (make fuzz-build)"; continue; }
	new=$OUT/$t.new art=$OUT/$t.art log=$OUT/$t.log
	rm -rf "$new" && mkdir -p "$new" "$art"
	before=$(ls "$corpus" | wc -l)
	# Wall-time limit far beyond the budget: the CPU budget below ends the run.
	taskset -c "$CPU" "$bin" -max_total_time=$((budget * 20)) -timeout="$TIMEOUT" \
		-report_slow_units="$TIMEOUT" -print_final_stats=1 -artifact_prefix="$art/" "$new" "$corpus" \
		>"$log" 2>&1 &
	pid=$!
	used=0
	while kill -0 "$pid" 2>/dev/null; do
		s=$(cpu_seconds "$pid")
		[ "$s" -ge 0 ] && used=$s
		[ "$used" -ge "$budget" ] && kill -INT "$pid"
		sleep 5
	done
	wait "$pid"
	ended=budget
	grep -q 'ERROR: libFuzzer\|ERROR: AddressSanitizer\|runtime error' "$log" && ended=finding
	execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
	last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	"$bin" -merge=1 -use_counters=0 "$corpus" "$new" >"$OUT/$t.merge.log" 2>&1
	after=$(ls "$corpus" | wc -l)
	found=$(ls "$art" | wc -l)
	echo "campaign $t: cpu=$used execs=${execs:-?} cov=${cov:-?} ft=${ft:-?}" \
		"corpus=$before->$after findings=$found ended=$ended"
done
