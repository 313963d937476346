# shellcheck shell=bash
# What the benchmarks in tests/bench share, sourced from the top of the tree
# after tests/netns/common.sh: the root check, $tmp and its cleanup, a path
# through a gateway namespace, mtugated's config and start, tool builds and
# medians. run.sh runs bench-*.sh only, so this file never runs on its own.
# Messages start with the script's name, as the scripts' own messages do.
B=${B:-build}
bench_name=$(basename "$0" .sh)
bench_ns=() bench_dirs=()

# bench_start NS...: exit 77 unless root; make $tmp. On exit, stop every job
# still running, delete NS..., then $tmp and whatever is in bench_dirs.
bench_start() {
	[ "$(id -u)" = 0 ] || { echo "$bench_name: needs root (network namespaces)"; exit 77; }
	bench_ns=("$@")
	tmp=$(mktemp -d "/tmp/$bench_name.XXXXXX") || exit 1
	chmod 755 "$tmp"
	bench_dirs=("$tmp")
	trap bench_cleanup EXIT
	trap 'exit 1' INT TERM
}
bench_cleanup() {
	local p
	for p in $(jobs -p); do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	ns_destroy "${bench_ns[@]}"
	rm -rf "${bench_dirs[@]}"
}

# bench_net A NA G B NB: A -- G -- B, A at 198.18.NA.2 and 2001:db8:NA::2, B
# at 198.18.NB.2 and 2001:db8:NB::2, G at .1 / ::1 on both links and routing.
# Returns once A reaches B.
bench_net() {
	local a=$1 na=$2 g=$3 b=$4 nb=$5
	ns_create "$a" "$g" "$b"
	ns_link "$a" "198.18.$na.2/24" "2001:db8:$na::2/64" "$g" "198.18.$na.1/24" "2001:db8:$na::1/64"
	ns_link "$b" "198.18.$nb.2/24" "2001:db8:$nb::2/64" "$g" "198.18.$nb.1/24" "2001:db8:$nb::1/64"
	ns_route "$a" "198.18.$na.1" "2001:db8:$na::1"
	ns_route "$b" "198.18.$nb.1" "2001:db8:$nb::1"
	ns_forwarding "$g"
	wait_until 10 ip netns exec "$a" ping -c1 -W1 "198.18.$nb.2" || { echo "$bench_name: no path"; exit 1; }
}

# bench_conf <SECTIONS: $tmp/mtugate.conf, the [daemon] part (no user to drop
# to, the socket in $tmp, warnings only) and then stdin; groups go in
# $tmp/groups.d.
bench_conf() {
	mkdir -p "$tmp/groups.d"
	{
		printf '[daemon]\nuser =\ncontrol_socket = %s\n' "$tmp/mtugate.sock"
		printf 'groups_dir = groups.d\nlog_level = warning\n'
		cat
	} >"$tmp/mtugate.conf"
}

# bench_daemon NS: mtugated in NS on that config, its pid in $dpid; returns
# once it answers on its socket.
bench_daemon() {
	bench_gw=$1
	ip netns exec "$1" "$B/mtugated" -f -c "$tmp/mtugate.conf" >"$tmp/mtugated.log" 2>&1 &
	# shellcheck disable=SC2034 # the scripts read it
	dpid=$!
	wait_until 10 ctl ping || { echo "$bench_name: mtugated did not start"; cat "$tmp/mtugated.log"; exit 1; }
}
ctl() { ip netns exec "$bench_gw" "$B/mtugatectl" -s "$tmp/mtugate.sock" "$@"; }

# bench_tool NAME [SOURCE|FLAG...]: prints the path of tests/tools/NAME as
# make built it, or builds it into $tmp from its source and the extras given.
bench_tool() {
	local t=$1
	shift
	if [ -x "$B/tools/$t" ]; then echo "$B/tools/$t"; return; fi
	${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -I. "tests/tools/$t.c" "$@" -o "$tmp/$t" && echo "$tmp/$t"
}

# median [low] <NUMBERS: one or more a line. Of an even count, the mean of
# the middle two, or with "low" the lower one, as bench-mss reports it (a
# rate that one round really reached).
# shellcheck disable=SC2120 # "low" is optional
median() {
	tr ' ' '\n' | grep . | sort -n | awk -v low="${1:-}" '{ v[NR] = $1 }
		END { print (NR % 2 || low != "") ? v[int((NR + 1) / 2)] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_line NAME UNIT MTUGATE BASELINE [KEY=VALUE...]: the line of a bench
# whose rounds alternated (ABAB...), from the files MTUGATE and BASELINE (one
# round's figure a line): both medians, the ratio of medians, each side's
# min-max, and the baseline's spread ((max - min) / median). A spread above
# 10 % says so on the line ("noisy"): the machine was busy, compare with care.
# Also paired=: the median of the rounds' own ratios (line i of MTUGATE over
# line i of BASELINE, run next to each other), which a load that comes and
# goes between rounds moves less than either median.
bench_line() {
	local name=$1 unit=$2 m b p
	m=$(stats_of "$3") b=$(stats_of "$4")
	p=$(paste -d' ' "$3" "$4" | awk '$2 > 0 { print $1 / $2 }' | median)
	shift 4
	awk -v n="$name" -v u="$unit" -v extra="$*" -v m="$m" -v b="$b" -v p="$p" 'BEGIN {
		split(m, M, " "); split(b, B, " ")
		s = B[1] ? 100 * (B[3] - B[2]) / B[1] : 0
		printf "bench %s: mtugate=%.6g baseline=%.6g unit=%s ratio=%.3f paired=%.3f mtugate_range=%.6g-%.6g baseline_range=%.6g-%.6g baseline_spread=%.1f%%%s%s\n",
			n, M[1], B[1], u, B[1] ? M[1] / B[1] : 0, p, M[2], M[3], B[2], B[3], s,
			(extra != "") ? " " extra : "", (s > 10) ? " noisy" : "" }'
}
# stats_of FILE: "median min max" of its numbers
stats_of() {
	printf '%s %s\n' "$(median <"$1")" "$(sort -n "$1" | grep . | sed -n '1p;$p' | tr '\n' ' ')"
}

# bench_rule_share PERFDATA COMM: the share of the packet filter's rule
# evaluation (nft_* and the iptables compatibility matches and targets, legacy
# ipt_do_table) in the CPU samples of COMM and of the softirq threads, which
# run the forward path between them, as "rule engine X% of N samples: the
# largest symbols". Not nf_hook_slow (the hooks' dispatch, which conntrack
# and NAT pay too) nor conntrack's and NAT's own functions.
bench_rule_share() {
	perf report -i "$1" --no-children --sort comm,sym -F sample,comm,sym --stdio 2>/dev/null |
		awk -v c="$2" '$1 ~ /^[0-9]+$/ && ($2 == c || $2 ~ /^ksoftirqd\//) {
			n += $1; s = $4
			if (s ~ /^(nft_|ipt_do_table|ip6t_do_table|ip_set_|hash_ip)/ || s ~ /_(mt|mt4|mt6|tg|tg4|tg6)$/ ||
			    s ~ /_(mt|tg)_v[0-9]+$/) { r += $1; by[s] += $1 } }
		END {
			printf "rule engine %.1f%% of %d samples:", n ? 100 * r / n : 0, n
			for (s in by) if (by[s] >= n / 200) printf " %s %.1f%%", s, 100 * by[s] / n
			printf "\n" }'
}
