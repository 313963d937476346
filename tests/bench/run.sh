#!/bin/bash
# `make bench`: every benchmark in tests/bench (bench-*.sh, mss_insn.sh) and the
# built bench programs, each one's `bench NAME: ...` and `measure NAME: ...`
# lines shown, and its log when it failed. Benchmarks are not pass/fail tests:
# the exit status only says whether each one ran to the end.
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${B:-build}
export B
logdir=$(mktemp -d /tmp/mtugate-bench.XXXXXX)
trap 'rm -rf "$logdir"' EXIT
ran=0 failed=0 skipped=0

bench() {	# bench NAME CMD...
	local name=$1 log=$logdir/$1.log rc start
	shift
	echo "== $name"
	start=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	grep -E '^(bench|measure) [A-Za-z0-9_.-]+: ' "$log"
	if [ "$rc" = 77 ]; then
		echo "$name: skipped ($(tail -n 1 "$log"))"
		skipped=$((skipped + 1))
	elif [ "$rc" != 0 ]; then
		echo "$name: FAILED (exit $rc); last lines of its log:"
		tail -n 20 "$log" | sed 's/^/  /'
		failed=$((failed + 1))
	else
		ran=$((ran + 1))
	fi
	echo "   ($name: $(($(date +%s) - start)) s)"
}

for s in tests/bench/mss_insn.sh tests/bench/bench-*.sh; do
	[ -f "$s" ] && bench "$(basename "$s" .sh)" bash "$s"
done
# Only bench_* programs stand alone; others (mss_insn) are drivers of a script.
for p in "$B"/bench/bench_*; do
	[ -x "$p" ] && bench "$(basename "$p")" "$p"
done
echo "bench: $ran ran, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
