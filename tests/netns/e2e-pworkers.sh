#!/bin/bash
# shellcheck disable=SC2317,SC2016 # helpers run through check; eval expands its string later
# Proxy workers (issue 21), with the real headend (ocserv): with [proxy] workers = 2 the master
# runs two worker processes, each sandboxed and with a listener of its own (SO_REUSEPORT);
# logins over IPv4 and IPv6 land on both, and every worker knows every session cookie, whichever
# worker took the login (the packet process passes cookie changes on, and a session's reconnects are counted once across them); a client's TLS session (openssl s_client -sess_out) resumes on the other worker (-sess_in:
# one ticket key for all); both workers' tunnels and counters add up in sessions, stats and the
# Prometheus output; kill -9 of one worker leaves the other's tunnels up and a new worker takes
# its place; a stopped worker (SIGSTOP) is named by the watchdog, each worker on its own.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

LOGIN=$LAB_ROOT/tests/netns/login.py
RECONNECTS=6
HELD=${E2E_PWORKERS_HELD:-$([ -n "${MTUGATE_SANITIZED:-}" ] && echo 6 || echo 10)}

mg_log_has() { grep -q -- "$1" "$LAB_DIR/mtugated.log"; }
workers() { pgrep -P "$master" -x mtugated-pwork | sort; }
workers_are() { [[ $(workers | wc -l) == "$1" ]]; }
status_is() { grep -Eq "^$2:[[:space:]]+$3\$" "/proc/$1/status"; }	# PID FIELD VALUE
# Accepted connections in the gateway (TPROXY: their local address is the headend's, port
# 443): "PORT PID" for each, PORT the client's.
accepted() {
	n_gw ss -Htnp state established '( sport = :443 )' |
		sed -n 's/.*[]:.]\([0-9]*\) *users:(("mtugated-pwork",pid=\([0-9]*\),.*/\1 \2/p'
}
owner_of() { accepted | awk -v p="$1" '$1 == p { print $2 }'; }	# CLIENT_PORT
stat_json() { mtugatectl stats --json | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sessions_n() { sessions_kv mtugatectl | grep -c '^session' || true; }
sessions_are() { [[ $(sessions_n) == "$1" ]]; }

lab_up groups=relay
conf=$(lab_mtugate_conf proxy=yes proxy.workers=2)
lab_mtugated_start "$conf" || die "mtugated did not start"
pid=$(<"$LAB_DIR/pids/mtugated") master=''
wait_until 5 eval 'master=$(pgrep -P "$pid" -x mtugated-proxy | head -1); [[ -n $master ]]' ||
	die "no proxy master"

progress "two workers, each sandboxed"
check "two worker processes under the master" wait_until 5 workers_are 2
check "the start says so" mg_log_has "proxy: listening on port 8443 in process $master, 2 workers"
for w in $(workers); do
	check "worker $w: CapEff 0" status_is "$w" CapEff 0000000000000000
	check "worker $w: NoNewPrivs 1" status_is "$w" NoNewPrivs 1
	check "worker $w: Seccomp 2, its own filter on the master's" status_is "$w" Seccomp_filters 2
	# Share nothing: each holds its own listeners and channels, none of the other's.
	check "worker $w: two listeners of its own on 8443 (IPv4, IPv6)" test \
		"$(n_gw ss -Hltnp '( sport = :8443 )' | grep -c "pid=$w,")" = 2
done

# s_client from the client, held open on a fifo until released, so that its worker is seen.
sc_open() { # NAME HOST:PORT ARGS...
	local n=$1 to=$2
	shift 2
	rm -f "$LAB_DIR/$n.in"
	mkfifo "$LAB_DIR/$n.in"
	n_client openssl s_client -connect "$to" -CAfile "$LAB_CA" "$@" <"$LAB_DIR/$n.in" \
		>"$LAB_DIR/$n.out" 2>&1 &
	sc_pid=$!
	exec {sc_fd}>"$LAB_DIR/$n.in"
	wait_until 10 grep -qE '^(New|Reused), ' "$LAB_DIR/$n.out"
}
sc_close() { exec {sc_fd}>&-; wait "$sc_pid" 2>/dev/null || true; }
sc_worker() { # the worker of the one s_client connection open
	local p
	p=$(n_client ss -Htn state established "( dport = :443 )" | awk '{ print $3 }' | sed 's/.*[]:.]//' | head -1)
	owner_of "$p"
}
for fam in 4 6; do
	to=$LAB_HEADEND4:443
	[[ $fam == 6 ]] && to=[$LAB_HEADEND6]:443
	progress "IPv$fam: a TLS session from one worker resumes on the other"
	sess=$LAB_DIR/sess$fam.pem
	sc_open first$fam "$to" -sess_out "$sess" || die "s_client to $to: $(tail -3 "$LAB_DIR/first$fam.out")"
	wait_until 5 test -s "$sess" || true
	first=$(sc_worker)
	sc_close
	check "IPv$fam: a session ticket came (-sess_out)" test -s "$sess"
	check "IPv$fam: the first connection had a worker ($first)" test -n "$first"
	other='' reused_all=1
	for i in $(seq 16); do
		sc_open "again$fam-$i" "$to" -sess_in "$sess" || break
		w=$(sc_worker)
		grep -q '^Reused, ' "$LAB_DIR/again$fam-$i.out" || reused_all=0
		sc_close
		if [[ -n $w && $w != "$first" ]]; then other=$w; break; fi
	done
	echo "IPv$fam: session from worker $first resumed on worker ${other:-none} after $i connection(s)"
	check "IPv$fam: resumed on the other worker ($other)" test -n "$other"
	check "IPv$fam: every -sess_in connection resumed (Reused), on either worker" test "$reused_all" = 1
done

progress "one session, $RECONNECTS tunnels in a row (each lands on either worker): one count of its reconnects"
n_client timeout 60 python3 "$LOGIN" "$LAB_HEADEND4" 443 "$LAB_USER" "$LAB_PASS" relay \
	--connects "$RECONNECTS" >"$LAB_DIR/reconnects.log" 2>&1 || true
check "the session's $RECONNECTS tunnels came up" grep -q '^login ok' "$LAB_DIR/reconnects.log"
counts=$(sed -n 's/.*tunnel up, group relay .*, reconnects \([0-9]*\),.*/\1/p' "$LAB_DIR/mtugated.log" | sort -n | tr '\n' ' ')
echo "reconnects counted per tunnel: $counts"
# A worker that did not hear of the others' tunnels of the session would count from 0 again.
check "counted 0 to $((RECONNECTS - 1)), each once, across the workers" \
	test "$counts" = "$(seq 0 $((RECONNECTS - 1)) | tr '\n' ' ')"
check "stats: both workers' reconnects add up ($((RECONNECTS - 1)))" \
	wait_until 3 eval '[[ $(stat_json "d[\"groups\"][\"relay\"][\"reconnects\"]") == $((RECONNECTS - 1)) ]]'

progress "$HELD logins held open, IPv4 and IPv6 by turns: they land on both workers"
held_pids=()
held_start() { # I: held login I, IPv6 for even I
	local to=$LAB_HEADEND4
	(($1 % 2)) || to=$LAB_HEADEND6
	lab_bg "held$1" "$NS_CLIENT" python3 "$LOGIN" "$to" 443 "$LAB_USER" "$LAB_PASS" relay --hold
	held_pids+=("$(<"$LAB_DIR/pids/held$1")")
}
held_ok() { grep -q '^login ok' "$LAB_DIR/held$1.log"; }
declare -A port_worker=()
held_worker() { # I: the worker of held login I into port_worker
	local p
	p=$(sed -n 's/^login ok.*local port \([0-9]*\).*/\1/p' "$LAB_DIR/held$1.log")
	port_worker[$1]=$(owner_of "$p")
}
workers_seen() { printf '%s\n' "${port_worker[@]}" | sort -u | grep -c .; }
for i in $(seq "$HELD"); do held_start "$i"; done
all_held() { for i in $(seq "$HELD"); do held_ok "$i" || return 1; done; }
check "every held login got its tunnel" wait_until 60 all_held
for i in $(seq "$HELD"); do held_worker "$i"; done
# The kernel spreads by addresses and ports: all on one worker is rare, and then more come.
while [[ $(workers_seen) != 2 ]] && ((HELD < 24)); do
	HELD=$((HELD + 1))
	held_start "$HELD"
	wait_until 20 held_ok "$HELD" || break
	held_worker "$HELD"
done
check "sessions lists all $HELD" wait_until 5 sessions_are "$HELD"
per_worker=$(printf '%s\n' "${port_worker[@]}" | sort | uniq -c | awk '{ printf "%s%s:%s", s, $2, $1; s = " " }')
echo "tunnels per worker (pid:count): $per_worker"
check "the tunnels are on both workers" test "$(workers_seen)" = 2
check "sessions names both workers (worker=0 and worker=1)" sh -c \
	"ip netns exec $NS_GW $B/mtugatectl -s $LAB_MG_SOCK sessions --json | python3 -c 'import json,sys; sys.exit(sorted({s[\"worker\"] for s in json.load(sys.stdin)}) != [0, 1])'"
check "stats: sessions_active adds both workers' up ($HELD)" \
	wait_until 3 eval '[[ $(stat_json "d[\"groups\"][\"relay\"][\"sessions_active\"]") == "$HELD" ]]'
check "stats: the tunnels counted by both workers add up (>= $HELD)" \
	test "$(stat_json 'd["groups"]["relay"]["sessions"]')" -ge "$HELD"
check "Prometheus: the same sum" sh -c "ip netns exec $NS_GW $B/mtugatectl -s $LAB_MG_SOCK stats --prometheus |
	grep -Eq '^mtugate_group_sessions_active\\{group=\"relay\"\\} $HELD\$'"

progress "kill -9 of one worker: the other's tunnels stay up"
victim=${port_worker[1]}
before=$(workers)
keep=() lost=()
for i in $(seq "$HELD"); do
	if [[ ${port_worker[$i]} == "$victim" ]]; then lost+=("$i"); else keep+=("$i"); fi
done
kill -KILL "$victim"
new_worker() { [[ -n $(workers | comm -13 <(echo "$before") -) ]] && workers_are 2; }
check "a new worker takes its place within 2 s" wait_until 2 new_worker
nw=$(workers | comm -13 <(echo "$before") - | head -1)
check "the new worker is sandboxed (Seccomp 2)" status_is "${nw:-0}" Seccomp 2
check "its listeners are back (two per worker)" \
	wait_until 2 eval '[[ $(n_gw ss -Hltn "( sport = :8443 )" | wc -l) == 4 ]]'
check "sessions: the dead worker's ${#lost[@]} gone, the other's ${#keep[@]} stay" \
	wait_until 3 sessions_are "${#keep[@]}"
check "sessions: only the other worker's are left" sh -c "! ip netns exec $NS_GW $B/mtugatectl -s $LAB_MG_SOCK sessions --json |
	python3 -c 'import json,sys; sys.exit(len({s[\"worker\"] for s in json.load(sys.stdin)}) == 1)'"
check "logged once, naming it" test "$(grep -c "worker process $victim (worker [01]) was killed by signal 9" "$LAB_DIR/mtugated.log")" = 1
alive=1
for i in "${keep[@]}"; do lab_dead "${held_pids[$((i - 1))]}" && alive=0; done
check "the other worker's clients are all still connected" test "$alive" = 1
gone=1
for i in "${lost[@]}"; do wait_until 3 lab_dead "${held_pids[$((i - 1))]}" || gone=0; done
check "the dead worker's clients saw their connection end" test "$gone" = 1
check "stats: sessions_active is the survivors' (${#keep[@]})" \
	wait_until 3 eval '[[ $(stat_json "d[\"groups\"][\"relay\"][\"sessions_active\"]") == "${#keep[@]}" ]]'
if lab_bg relogin "$NS_CLIENT" python3 "$LOGIN" "$LAB_HEADEND6" 443 "$LAB_USER" "$LAB_PASS" \
	relay && wait_until 20 grep -q '^login ok' "$LAB_DIR/relogin.log"; then
	pass "a new login after the kill"
else
	fail "a new login after the kill" "$(cat "$LAB_DIR/relogin.log")"
fi

progress "the watchdog watches each worker"
stopped=$(workers | head -1)
kill -STOP "$stopped"
check "a stopped worker is named within 8 s" wait_until 8 mg_log_has "proxy: worker [01] made no progress for 5 s"
kill -CONT "$stopped"
check "... and turns again" wait_until 3 mg_log_has "proxy: worker [01] turns again"
for i in "${keep[@]}"; do lab_kill "held$i" 2>/dev/null || true; done
lab_mtugated_stop
finish
