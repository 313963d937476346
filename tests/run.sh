#!/bin/bash
# Runs every suite, shows each suite's "NAME: N passed, N failed" line (and the
# log of any that failed), and ends with the total. Exit status: 0 only if
# nothing failed.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-5}
logdir=$(mktemp -d /tmp/mtugate-tests.XXXXXX)
pass=0 fail=0 skipped=0
timing="$logdir/timing"

# Sanitized builds (make check SANITIZE=1): every report, also from the daemon
# running as its own user inside a namespace, lands in one folder; any file
# there fails the "sanitizers" suite, so a report lost in a deleted log still counts.
case $B in
*-san)
	chmod 755 "$logdir"
	mkdir -m 1777 "$logdir/san"
	export ASAN_OPTIONS="log_path=$logdir/san/asan:detect_leaks=1:abort_on_error=0"
	export UBSAN_OPTIONS="log_path=$logdir/san/ubsan:print_stacktrace=1:halt_on_error=1"
	export MTUGATE_SANITIZED=1
	;;
esac

suite() {	# suite NAME CMD...: run it, add up its summary line
	local name=$1 log="$logdir/$1.log" rc line p f t0=$SECONDS
	shift
	"$@" >"$log" 2>&1
	rc=$?
	# Each suite's time, so CI's hour can be budgeted suite by suite.
	printf '%s %d s\n' "$name" $((SECONDS - t0)) >>"$timing"
	line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ "$rc" = 77 ]; then
		echo "$name: skipped ($(tail -n 1 "$log"))"
		skipped=$((skipped + 1))
		return
	fi
	if [ -n "$line" ]; then
		p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	else
		p=0 f=0
	fi
	# A crash or a non-zero exit with no failure counted is still a failure.
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
	pass=$((pass + p)) fail=$((fail + f))
	echo "${line:-$name: $p passed, $f failed (exit $rc)}"
	if [ "$f" != 0 ]; then
		echo "---- $name log (last 60 lines) ----"
		tail -n 60 "$log"
		echo "----"
	fi
}

fuzz_smoke() {	# each target over its corpus, then a few seconds of new inputs
	local f n ok=0 bad=0
	for f in build/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		n=$(basename "$f")
		mkdir -p "tests/fuzz/corpus/$n"
		if "$f" -max_total_time="$FUZZ_SMOKE_SECONDS" "$(mktemp -d)" "tests/fuzz/corpus/$n" \
			>"$logdir/$n.fuzz" 2>&1; then
			ok=$((ok + 1)); grep -E '^Done [0-9]+ runs' "$logdir/$n.fuzz" | sed "s/^/$n: /"
		else
			bad=$((bad + 1)); echo "$n: FAILED"; tail -n 30 "$logdir/$n.fuzz"
		fi
	done
	echo "fuzz-smoke: $ok passed, $bad failed"
}

for t in "$B"/tests/test_*; do
	[ -x "$t" ] && suite "$(basename "$t")" "$t"
done
# The fuzz targets are one build (build/fuzz, always under ASan and UBSan):
# once per CI run, in the plain one.
case $B in
*-san) echo "fuzz-smoke: in the unsanitized run (the targets are sanitized builds already)" ;;
*) suite fuzz-smoke fuzz_smoke ;;
esac
if [ "$(id -u)" = 0 ]; then
	for t in tests/netns/e2e-*.sh; do
		[ -f "$t" ] && suite "$(basename "$t" .sh)" env B="$B" bash "$t"
	done
	# The package suites build and test the .deb, never the sanitized
	# binaries: once per CI run, in the plain one.
	case $B in
	*-san) echo "debian, debian-systemd, debian-fresh: in the unsanitized run" ;;
	*)
		[ -f tests/debian/run.sh ] && suite debian bash tests/debian/run.sh
		[ -f tests/debian/systemd.sh ] && suite debian-systemd bash tests/debian/systemd.sh
		[ -f tests/debian/fresh.sh ] && suite debian-fresh env B="$B" bash tests/debian/fresh.sh
		;;
	esac
else
	echo "namespace tests: skipped (need root)"
fi
if [ -d "$logdir/san" ]; then
	sanitizer_reports() {
		local n
		n=$(find "$logdir/san" -type f | wc -l)
		find "$logdir/san" -type f -exec sh -c 'echo "== $1"; head -n 40 "$1"' _ {} \;
		echo "sanitizers: $([ "$n" = 0 ] && echo 1 || echo 0) passed, $([ "$n" = 0 ] && echo 0 || echo 1) failed ($n report files)"
		[ "$n" = 0 ]
	}
	suite sanitizers sanitizer_reports
fi
echo "time per suite (s):" $(sort -k2 -n -r "$timing" | awk '{ printf "%s=%d ", $1, $2 }')
echo "total: $pass passed, $fail failed"
rm -rf "$logdir"
[ "$fail" = 0 ]
