#!/bin/sh
# Instructions per SYN of the pure MSS rewrite (mss_clamp), and of the header
# parse before it (pkt_parse), counted by callgrind over N SYNs: only
# instructions inside the named function (and its callees) are collected.
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
N=${MSS_INSN_N:-100000}
command -v valgrind >/dev/null || { echo "mss_insn: skipped, no valgrind"; exit 77; }
tmp=$(mktemp -d /tmp/mss_insn.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

drv=$B/bench/mss_insn
if [ ! -x "$drv" ]; then
	drv=$tmp/mss_insn
	${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -g -I. tests/bench/mss_insn.c clamp/mss.c clamp/pkt.c \
		clamp/csum.c -o "$drv"
fi

# per_syn FUNCTION: instructions collected inside FUNCTION, divided by N.
per_syn() {
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" --toggle-collect="$1" \
		"$drv" "$N" >/dev/null 2>"$tmp/vg.$1" || { cat "$tmp/vg.$1" >&2; exit 1; }
	awk -v n="$N" '/^(summary|totals):/ { t = $2 } END { printf "%.1f\n", t / n }' "$tmp/cg.$1"
}

clamp=$(per_syn mss_clamp)
parse=$(per_syn pkt_parse)
echo "measure mss_parse_instructions_per_syn: value=$parse unit=insn"
echo "measure mss_instructions_per_syn: value=$clamp unit=insn"
awk -v v="$clamp" 'BEGIN { exit !(v > 0 && v <= 300) }' || {
	echo "mss_insn: over the budget of 300 instructions per SYN" >&2; exit 1; }
