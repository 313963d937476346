#!/bin/bash
# The TLS proxy under load: a stub headend (tests/tools/stubheadend) listening
# on 443, which the gateway diverts to mtugated's proxy (TPROXY rules from
# `mtugatectl rules`), and on 444, which it only forwards: the baseline is a
# direct connection to the same stub, measured in the same run. The load
# client is tests/tools/cstpload.
#   client C 198.18.1.2 -- gateway G (mtugated) -- headend H 198.18.2.2
# Prints:
#   bench proxy_bulk       CSTP DATA headend -> client (1400-byte inner packets), Mbit/s
#   bench proxy_bulk_up    the same, client -> headend
#                          Not like with like, and why it could exceed 1: the stub writes
#                          one TLS record per 1.4 KB CSTP packet, and the tools' OpenSSL
#                          reads without read-ahead (two read() per record) and with
#                          SSL_MODE_RELEASE_BUFFERS (a buffer free and malloc per record).
#                          Directly the client pays all that per 1.4 KB; the proxy reads
#                          ahead and writes what it has in one SSL_write, so through it the
#                          client gets 16 KiB records and pays it per 16 KiB. With a CPU to
#                          spare for the proxy the proxied client ran faster (1.54 and 1.89
#                          in issue 21); on a busy machine the sum of CPU decides and it is
#                          below 1. With 16 KB records on both paths (BENCH_PROXY_BULK_SIZE=
#                          16000) the direct rate triples and the ratio is the proxy's own
#                          decryption and encryption. bench-proxy-real.sh compares real
#                          programs (proxy_bulk_real).
#   bench proxy_handshake  tunnels set up per second: TCP, a full TLS handshake (no
#                          resumption), the auth POST and the CONNECT exchange, ended by
#                          DISCONNECT. Through the proxy that is two handshakes: the
#                          client's, full, and the headend's, which resumes a session
#                          the stub sent before (upstream_resume, the default), with
#                          [proxy] workers one per CPU (the default; BENCH_PROXY_WORKERS).
#                          What bounds it on 2 vCPU: the CPU all three parties spend per
#                          tunnel, printed after the line (client + stub + mtugated, from
#                          rusage and /proc, whatever else runs): the proxied path adds a
#                          full server handshake (the proxy's signature and ECDHE), a
#                          resumed client one (ECDHE), two TCP connections and the proxy's
#                          own work, about twice the direct path's CPU, so on two busy
#                          cores the ratio cannot pass about 0.5. Workers let the proxy use
#                          both cores (one process signed on one before); they cannot add
#                          cores. On a machine shared with other load, more runnable
#                          processes get a larger share, and the ratio can pass the bound
#   bench proxy_handshake_resumed  the same with clients that resume an earlier
#                          tunnel's TLS session (cstpload resume): through the proxy
#                          its ticket (proxy_tls.resumed), against the stub's directly
#   measure proxy_upstream_resumed        the share of proxied tunnels that resumed
#   measure proxy_rss_per_idle_tunnel     the RSS growth of mtugated and its proxy processes
#                          per idle tunnel over N (docs/performance.md says where it goes)
#   measure proxy_rss_beyond_openssl      the same less an estimate of OpenSSL's own cost: the
#                          stub's growth per idle TLS connection (a server SSL, as the proxy's
#                          client side) plus cstpload's (a client SSL, as its headend side).
#                          Their SSLs are not the proxy's (two BIOs each, no resumption
#                          toward the stub): since the proxy's cuts it reads below 0
#   measure proxy_concurrent_tunnels      tunnels held at once that all answer a DPD
#   measure proxy_rss_per_tunnel_10k      mtugated's RSS growth (with its proxy processes) per
#                          tunnel over those 10,000, their logins' peak included as far as
#                          the heap keeps it (run alone: after the memory part it reuses the
#                          heap that part freed, and reads lower)
#   measure proxy_setup_10k_s             seconds to set up those 10,000 tunnels (200 at a
#                          time, each a full TLS handshake, the login POST and CONNECT).
#                          What 10,000 need beyond the defaults: max_sessions (10000 per
#                          worker, enough; set here to 10100), login_per_source (64: one
#                          cstpload address opening 200 at a time would evict its own
#                          logins; 256 here) and the file descriptors (two a tunnel in the
#                          worker that holds it: the bench raises RLIMIT_NOFILE as far as
#                          it may, mtugate.service has LimitNOFILE). With one worker and a
#                          hard limit of 20,000 it tops out just below 10,000
# Environment: BENCH_PROXY_SECONDS (bulk run, 3), BENCH_PROXY_ROUNDS (3),
# BENCH_PROXY_BULK_SIZE (inner packet size of the bulk runs, 1400),
# BENCH_PROXY_HS_SECONDS (3), BENCH_PROXY_HS_CONC (16), BENCH_PROXY_IDLE (1000),
# BENCH_PROXY_CONCURRENT (10000), BENCH_PROXY_WORKERS ([proxy] workers, 0: one per online CPU,
# the default), BENCH_PROXY_PARTS (the parts to run, all by default:
# "memory concurrent bulk handshake resume").
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/common.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh

SECS=${BENCH_PROXY_SECONDS:-3}
BULK_SIZE=${BENCH_PROXY_BULK_SIZE:-1400}
ROUNDS=${BENCH_PROXY_ROUNDS:-3}
HS_SECS=${BENCH_PROXY_HS_SECONDS:-3}
HS_CONC=${BENCH_PROXY_HS_CONC:-16}
IDLE=${BENCH_PROXY_IDLE:-1000}
CONC=${BENCH_PROXY_CONCURRENT:-10000}
PARTS=" ${BENCH_PROXY_PARTS:-memory concurrent bulk handshake resume} "
part() { [[ $PARTS == *" $1 "* ]]; }
HE=198.18.2.2
C=mpC$$ G=mpG$$ H=mpH$$
bench_start $C $G $H
die() { echo "bench-proxy: $*"; [ -f "$tmp/mtugated.log" ] && tail -5 "$tmp/mtugated.log"; exit 1; }

[ -x "$B/mtugated" ] && [ -x "$B/mtugatectl" ] || die "build first (make)"
# shellcheck disable=SC2046 # the linker flags, a word each
tls_tool() { bench_tool "$1" "$B/libmtugate.a" $(pkg-config --libs openssl) -pthread; }
cstpload=$(tls_tool cstpload) || die "cannot build cstpload"
stubheadend=$(tls_tool stubheadend) || die "cannot build stubheadend"

# Every tunnel costs the proxy two descriptors, the stub and the client one each.
want=$((2 * CONC + 1024))
[ "$(ulimit -Hn)" -lt "$want" ] && ulimit -Hn "$want" 2>/dev/null
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge "$want" ] || echo "bench-proxy: fd limit $(ulimit -n) < $want: expect failures at $CONC tunnels"

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
bench_net $C 1 $G $H 2

# A throwaway CA and the headend's certificate (its name and address, as the proxy verifies).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj "/CN=bench-proxy CA" -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null &&
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=headend.lab.test" \
	-keyout "$tmp/headend.key" -out "$tmp/headend.csr" 2>/dev/null &&
openssl x509 -req -in "$tmp/headend.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
	-days 1 -out "$tmp/headend.crt" -extfile tests/netns/lab/headend.ext 2>/dev/null || die "openssl"
chmod 0600 "$tmp/headend.key"

bench_conf <<CONF
[queues]
mss = off
pmtu = off
dtls = off
[headend]
address = $HE
tls_port = 443
[proxy]
enable = yes
listen_port = 8443
certificate = $tmp/headend.crt
private_key = $tmp/headend.key
upstream_ca = $tmp/ca.crt
idle_timeout = 3600
workers = ${BENCH_PROXY_WORKERS:-0}
max_sessions = $((CONC + 100))
login_per_source = 256
CONF
# relay: the proxy rewrites every CONNECT answer (X-DTLS-MTU 1418 -> 1380).
cat >"$tmp/groups.d/bench.conf" <<GRP
[group]
name = bench
auth_group = bench
pool = 192.0.2.0/26
clients = 198.18.1.0/24
mtu = 1400
dtls = relay
GRP

ip netns exec $H "$stubheadend" "$tmp/headend.crt" "$tmp/headend.key" $HE:443 $HE:444 \
	>"$tmp/stub.log" 2>&1 &
stub=$!
bench_daemon $G
mg=$dpid
wait_until 10 grep -q listening "$tmp/stub.log" || die "stub headend did not start"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables | ip netns exec $G iptables-restore --noflush || die "rules"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --routes | ip netns exec $G sh -e || die "routes"
echo "mtugated open files limit: $(awk '/Max open files/ { print $4 }' /proc/$mg/limits)" \
	"(the hard limit it inherits: mtugated raises its soft limit to it; mtugate.service sets LimitNOFILE)"

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# mtugated's RSS with its proxy processes' (the master and its workers, forked:
# what they allocate after the fork is theirs alone, so growth adds up).
tree_pids() { local p; echo "$1"; for p in $(pgrep -P "$1"); do tree_pids "$p"; done; }
tree_rss() { local p s=0; for p in $(tree_pids "$1"); do s=$((s + $(rss "$p" || echo 0))); done; echo $s; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# The user and system time of this shell's waited-for children (times, run in this very shell:
# in a pipeline or $(...) it would be a subshell's).
# Into $ct.
children_times() { times >"$tmp/times"; ct=$(awk 'NR == 2 { print $1 " " $2 }' "$tmp/times"); }
# CPU ticks of mtugated's processes: the packet process, the proxy's master and its workers.
mg_ticks() {
	local p t=0 m
	m=$(pgrep -P "$mg" -x mtugated-proxy)
	for p in $mg $m $([ -n "$m" ] && pgrep -P "$m" -x mtugated-pwork); do
		[ -r "/proc/$p/stat" ] && t=$((t + $(cpu_ticks "$p")))
	done
	echo "$t"
}
sessions() { sessions_kv ctl | grep -c '^session'; }
sessions_are() { [ "$(sessions)" = "$1" ]; }
stub_conns() { ip netns exec $H ss -Htn state established "( sport = :443 or sport = :444 )" | wc -l; }
stub_conns_are() { [ "$(stub_conns)" = "$1" ]; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | tail -1; }

# idle_start NAME PORT N CONC: a cstpload holding N tunnels, paused after its warm-up.
# The memory runs open 10 at a time: freed handshake buffers stay in the heap
# (RSS), and their peak grows with the number of handshakes at once.
idle_start() {
	ip netns exec $C "$cstpload" $HE:$2 idle "$3" "$4" >"$tmp/$1.out" 2>"$tmp/$1.err" &
	idle_pid=$!
	wait_until 30 grep -q '^warm' "$tmp/$1.out" || die "$1: no warm-up: $(cat "$tmp/$1.err")"
}
idle_all_up() {	# NAME TIMEOUT: continue past the warm-up, wait for all
	kill -USR1 "$idle_pid"
	wait_until "$2" grep -q '^up ' "$tmp/$1.out" || die "$1: tunnels not up: $(cat "$tmp/$1.err")"
}
idle_dpd() {	# NAME: prints the number of tunnels that answered
	kill -USR1 "$idle_pid"
	wait_until 60 grep -q '^dpd' "$tmp/$1.out" || die "$1: no DPD round"
	field ok <"$tmp/$1.out"
}
idle_stop() { kill "$idle_pid" 2>/dev/null; wait "$idle_pid" 2>/dev/null; }

if part memory; then
	echo "-- memory: $IDLE idle tunnels, direct to the stub, then through the proxy"
	idle_start direct 444 $((IDLE + 10)) 10
	s0=$(rss $stub)
	idle_all_up direct 120
	s1=$(rss $stub)
	load_per=$(field rss_per_conn_kib <"$tmp/direct.out")
	idle_stop
	wait_until 60 stub_conns_are 0 || die "direct tunnels did not close"
	idle_start proxied 443 $((IDLE + 10)) 10
	m0=$(tree_rss $mg)
	idle_all_up proxied 180
	m1=$(tree_rss $mg)
	n=$(sessions)
	ok=$(idle_dpd proxied)
	grep -q ' dtls_mtu=1380' "$tmp/proxied.out" || die "the proxied tunnels were not rewritten: $(cat "$tmp/proxied.out")"
	idle_stop
	[ "$n" = $((IDLE + 10)) ] && [ "$ok" = $((IDLE + 10)) ] || die "proxy held $n sessions, $ok answered DPD, want $((IDLE + 10))"
	wait_until 60 sessions_are 0 || die "proxied tunnels did not close"
	awk -v m0="$m0" -v m1="$m1" -v s0="$s0" -v s1="$s1" -v l="$load_per" -v n="$IDLE" 'BEGIN {
		mg = (m1 - m0) / n; st = (s1 - s0) / n; own = st + l
		printf "mtugated %d -> %d KiB, stub %d -> %d KiB; per tunnel: mtugated %.1f KiB, OpenSSL own %.1f KiB (server side %.1f + client side %.1f)\n", m0, m1, s0, s1, mg, own, st, l
		printf "measure proxy_rss_per_idle_tunnel: value=%.1f unit=KiB\n", mg
		printf "measure proxy_rss_beyond_openssl: value=%.1f unit=KiB\n", mg - own }'

fi
if part concurrent; then
	echo "-- $CONC concurrent tunnels through the proxy"
	r0=$(tree_rss $mg)
	idle_start many 443 "$CONC" 200
	idle_all_up many 300
	n=$(sessions)
	ok=$(idle_dpd many)
	r1=$(tree_rss $mg)
	secs=$(field seconds <"$tmp/many.out")
	echo "cstpload: $(grep '^up ' "$tmp/many.out"); mtugated sessions $n, RSS $(tree_rss $mg) KiB" \
		"(with its proxy processes); DPD answered by $ok"
	idle_stop
	# Held by the proxy and answering: fewer than asked is what the line says.
	[ "$n" -ge "$ok" ] || ok=$n
	echo "measure proxy_concurrent_tunnels: value=$ok unit=tunnels"
	name=proxy_setup_${CONC}_s; [ "$CONC" = 10000 ] && name=proxy_setup_10k_s
	echo "measure $name: value=$secs unit=s"
	awk -v a="$r0" -v b="$r1" -v n="$n" 'BEGIN { if (n) printf "measure proxy_rss_per_tunnel_%s: value=%.1f unit=KiB\n", n == 10000 ? "10k" : n, (b - a) / n }' 
	grep -E 'max_sessions|accept|Too many' "$tmp/mtugated.log" | head -3
	wait_until 120 sessions_are 0 || die "$CONC tunnels did not close"

fi
if part bulk; then
	echo "-- bulk, $ROUNDS rounds of ${SECS}s per direction and path, alternating"
	: >"$tmp/bulk"
	for r in $(seq "$ROUNDS"); do
		for dir in down up; do
			for path in $( [ $((r % 2)) = 1 ] && echo "direct proxied" || echo "proxied direct"); do
				port=444; [ $path = proxied ] && port=443
				b0=$(busy) m0=$(cpu_ticks $mg)
				out=$(ip netns exec $C "$cstpload" $HE:$port $dir "$SECS" "$BULK_SIZE") || die "bulk $dir $path failed"
				b1=$(busy) m1=$(cpu_ticks $mg)
				v=$(field mbit <<<"$out")
				echo "round $r $dir $path: $v Mbit/s (X-DTLS-MTU $(field dtls_mtu <<<"$out"))"
				echo "$dir $path $v $((b1 - b0)) $((m1 - m0)) $(field bytes <<<"$out") $(field seconds <<<"$out")" >>"$tmp/bulk"
			done
		done
	done
	for dir in down up; do
		name=proxy_bulk; [ $dir = up ] && name=proxy_bulk_up
		awk -v d=$dir '$1 == d && $2 == "direct" { print $3 }' "$tmp/bulk" >"$tmp/bulk.$dir.direct"
		awk -v d=$dir '$1 == d && $2 == "proxied" { print $3 }' "$tmp/bulk" >"$tmp/bulk.$dir.proxied"
		bench_line $name Mbit/s "$tmp/bulk.$dir.proxied" "$tmp/bulk.$dir.direct"
	done
	# Where the CPU goes: the whole machine's busy time (other users' included,
	# hence only indicative) and mtugated's own, per GB carried.
	awk -v hz="$(getconf CLK_TCK)" '{ k = $2; busy[k] += $4; mg[k] += $5; gb[k] += $6 / 1e9; sec[k] += $7 }
		END { printf "CPU per GB carried: direct %.2f s (all processes), proxied %.2f s, of which mtugated %.2f s (%.0f%% of one core while it ran)\n",
			busy["direct"] / hz / gb["direct"], busy["proxied"] / hz / gb["proxied"],
			mg["proxied"] / hz / gb["proxied"], 100 * mg["proxied"] / hz / sec["proxied"] }' "$tmp/bulk"

fi
if part handshake; then
	echo "-- handshakes, $ROUNDS rounds of ${HS_SECS}s, $HS_CONC at a time"
	: >"$tmp/hs"
	for r in $(seq "$ROUNDS"); do
		for path in $( [ $((r % 2)) = 1 ] && echo "direct proxied" || echo "proxied direct"); do
			port=444; [ $path = proxied ] && port=443
			# CPU of the three parties, whatever else the machine runs: the
			# client's from its rusage (bash's times), the stub's and
			# mtugated's from /proc.
			s0=$(cpu_ticks $stub) m0=$(mg_ticks) && children_times && c0=$ct
			out=$(ip netns exec $C "$cstpload" $HE:$port handshake "$HS_SECS" "$HS_CONC") || die "handshake $path failed"
			s1=$(cpu_ticks $stub) m1=$(mg_ticks) && children_times && c1=$ct
			echo "round $r $path: $(field rate <<<"$out")/s ($(field failed <<<"$out") failed)"
			echo "$path $(field rate <<<"$out") $(field done <<<"$out") $((s1 - s0)) $((m1 - m0)) $c0 $c1" >>"$tmp/hs"
		done
	done
	awk '$1 == "direct" { print $2 }' "$tmp/hs" >"$tmp/hs.direct"
	awk '$1 == "proxied" { print $2 }' "$tmp/hs" >"$tmp/hs.proxied"
	bench_line proxy_handshake handshakes/s "$tmp/hs.proxied" "$tmp/hs.direct"
	# What bounds it on a saturated machine: the CPU a tunnel costs all three
	# parties on each path; the ratio cannot exceed direct / proxied, however
	# many workers the proxy runs (they only let it use every core).
	awk -v hz="$(getconf CLK_TCK)" 'function sec(v) { sub(/s$/, "", v); split(v, a, "m"); return a[1] * 60 + a[2] }
		{ k = $1; n[k] += $3; stub[k] += $4 / hz; mg[k] += $5 / hz
		  cl[k] += sec($8) + sec($9) - sec($6) - sec($7) }
		END { for (k in n) tot[k] = 1000 * (stub[k] + mg[k] + cl[k]) / n[k]
		printf "CPU per tunnel set up (client + stub + mtugated): direct %.2f ms (%.2f + %.2f), proxied %.2f ms (%.2f + %.2f + %.2f): on two busy cores the ratio cannot pass %.2f\n",
			tot["direct"], 1000 * cl["direct"] / n["direct"], 1000 * stub["direct"] / n["direct"],
			tot["proxied"], 1000 * cl["proxied"] / n["proxied"], 1000 * stub["proxied"] / n["proxied"],
			1000 * mg["proxied"] / n["proxied"], tot["direct"] / tot["proxied"] }' "$tmp/hs"
fi

# Clients that resume (a reconnect after sleep, a roam, a failover): each
# TLS handshake offers the session of an earlier tunnel. Directly the stub
# resumes it; through the proxy the client leg resumes a ticket of the
# proxy's (its ticket key) and the headend leg the stub's session, so both
# sides skip the signatures. Bounded like proxy_handshake by the CPU the
# three processes share (two cores here), no longer by the private-key
# operations.
if part resume; then
	echo "-- resumed handshakes, $ROUNDS rounds of ${HS_SECS}s, $HS_CONC at a time"
	: >"$tmp/rs.direct"
	: >"$tmp/rs.proxied"
	r0=$(ctl stats --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["proxy_tls"]["resumed"])')
	for r in $(seq "$ROUNDS"); do
		for path in $( [ $((r % 2)) = 1 ] && echo "direct proxied" || echo "proxied direct"); do
			port=444; [ $path = proxied ] && port=443
			out=$(ip netns exec $C "$cstpload" $HE:$port resume "$HS_SECS" "$HS_CONC") || die "resume $path failed"
			echo "round $r $path: $(field rate <<<"$out")/s ($(field resumed <<<"$out") of $(field done <<<"$out") resumed, $(field failed <<<"$out") failed)"
			field rate <<<"$out" >>"$tmp/rs.$path"
		done
	done
	r1=$(ctl stats --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["proxy_tls"]["resumed"])')
	echo "client handshakes the proxy resumed during these rounds (proxy_tls.resumed): $((r1 - r0))"
	bench_line proxy_handshake_resumed handshakes/s "$tmp/rs.proxied" "$tmp/rs.direct"
fi
# The headend leg resumes the stub's TLS sessions (upstream_resume = yes):
# the share of tunnels that did, over the whole run.
ctl stats --json | python3 -c 'import json, sys
g = json.load(sys.stdin)["groups"]["bench"]
n, r = g["sessions"], g["upstream_resumed"]
print("tunnels through the proxy: %d, headend session resumed: %d" % (n, r))
print("measure proxy_upstream_resumed: value=%.1f unit=%%" % (100.0 * r / n if n else 0))'
kill -0 "$mg" 2>/dev/null || die "mtugated died"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
