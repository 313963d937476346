#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# Privilege separation of the TLS proxy (issue 17) and "a dead proxy is never a black hole"
# (issue 22), with the real peers (ocserv, openconnect): the proxy's processes hold no
# capability, run under seccomp and NoNewPrivs; the packet process keeps CAP_NET_ADMIN and can
# neither open the headend's key nor holds it in memory (the proxy's worker does: the control);
# a proxied login, its DTLS and `sessions` work across the split; kill -9 of the worker: a new
# one within 2 s, the listeners never close, the old session forgotten, one warning; kill -9 of
# the master: mtugated stops non-zero (the service manager starts it again, key and all).
# The key in a folder of its own (as shipped: /etc/ssl/private): mtugate.conf edited by rename
# (sed -i) reloads; the key beside mtugate.conf (the old default): that reload fails, saying
# why, and the daemon warns at start (Landlock allows by hierarchy only: the folders on the
# key's path are allowed entry by entry, and a renamed file is a new entry).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root
command -v gdb >/dev/null || { echo "e2e-privsep: gdb missing: skipped"; exit 77; }

mg_log_has() { grep -q -- "$1" "$LAB_DIR/mtugated.log"; }
sessions_has() { sessions_kv mtugatectl | grep -q -- "$1"; }
sessions_ctl() { sessions_kv ip netns exec "$NS_GW" "$B/mtugatectl" -s "$LAB_MG_SOCK"; }
children() { pgrep -P "$1" -x "$2" | head -1; }	# PARENT COMM
# The worker that holds the proxied tunnel (with [proxy] workers above 1, one of them): the
# owner of the accepted connection, whose local address under TPROXY is the headend's.
tunnel_worker() {
	n_gw ss -Htnp state established '( sport = :443 )' |
		sed -n 's/.*"mtugated-pwork",pid=\([0-9]*\),.*/\1/p' | head -1
}
status_is() { grep -Eq "^$2:[[:space:]]+$3\$" "/proc/$1/status"; }	# PID FIELD VALUE
cap_net_admin() { (( (16#$(awk '/^CapEff:/{ print $2 }' "/proc/$1/status") >> 12) & 1 )); }
# gdb has the process call a function: its return value. gdb_call PID EXPR [STRING]: $s in
# EXPR is STRING, copied into the process's heap and freed after (a string literal in EXPR
# would be malloc'ed in the process by gdb and never freed: LeakSanitizer's report at exit).
gdb_call() {
	local pre=() post=()
	if [ $# -gt 2 ]; then
		pre=(-ex 'set $s = (char *) malloc(4096)' -ex "set {char[$((${#3} + 1))]}\$s = \"$3\"")
		post=(-ex 'call (void) free($s)')
	fi
	# An attach can come back empty on a loaded machine (the process mid-syscall,
	# ptrace busy): that is no answer, so it is asked again, never read as one.
	local r _
	for _ in 1 2 3; do
		r=$(gdb -p "$1" -batch "${pre[@]}" -ex "call (int)$2" "${post[@]}" 2>/dev/null |
			sed -n 's/^\$1 = //p' | tail -1)
		[[ -n $r ]] && break
	done
	printf '%s\n' "$r"
}
gdb_ret_ge0() { local r; r=$(gdb_call "$@"); [[ -n $r && $r -ge 0 ]] && gdb_call "$1" "close($r)" >/dev/null; [[ -n $r && $r -ge 0 ]]; }
gdb_ret_neg() { local r; r=$(gdb_call "$@"); [[ -n $r && $r -lt 0 ]]; }
tunnel_ping() { n_client ping -c1 -W3 "$LAB_LAN4"; }
now() { date +%s.%N; }

reloads() { grep -c "$1" "$LAB_DIR/mtugated.log" || true; }
sed_i_reload() { # PATTERN: sed -i a comment into mtugate.conf, SIGHUP; waits for PATTERN's next line
	local pat=$1 n
	n=$(reloads "$pat")
	sed -i "1i ; edited in place ($(date +%s.%N))" "$conf"
	kill -HUP "$pid"
	wait_until 5 eval '[ "$(reloads "$pat")" -gt "$n" ]'
}

lab_up
conf=$(lab_mtugate_conf proxy=yes)
key=$LAB_DIR/private/headend.key
mkdir -p "$LAB_DIR/private"
mv "$LAB_DIR/mtugate/headend.key" "$key"
sed -i "s|^private_key = .*|private_key = $key|" "$conf"
lab_mtugated_start "$conf" || die "mtugated did not start"
pid=$(<"$LAB_DIR/pids/mtugated")
wait_until 5 eval 'master=$(children "$pid" mtugated-proxy); [[ -n $master ]]' || die "no proxy master"
wait_until 5 eval 'worker=$(children "$master" mtugated-pwork); [[ -n $worker ]]' || die "no proxy worker"

progress "the processes and what each may do"
for p in master worker; do
	check "$p (${!p}): CapEff 0" status_is "${!p}" CapEff 0000000000000000
	check "$p: CapPrm 0" status_is "${!p}" CapPrm 0000000000000000
	check "$p: CapAmb 0" status_is "${!p}" CapAmb 0000000000000000
	check "$p: CapBnd 0 (started as root)" status_is "${!p}" CapBnd 0000000000000000
	check "$p: NoNewPrivs 1" status_is "${!p}" NoNewPrivs 1
	check "$p: Seccomp 2 (filter)" status_is "${!p}" Seccomp 2
done
check "worker: its own filter on top of the master's" status_is "$worker" Seccomp_filters 2
check "the packet process ($pid) keeps CAP_NET_ADMIN" cap_net_admin "$pid"
check "the proxy's listener is not the packet process's" \
	sh -c "! ls -l /proc/$pid/fd | grep -q socket: || ! n_gw ss -ltnp | grep ':8443 ' | grep -q 'pid=$pid,'"

progress "the key: the packet process cannot open it nor holds it"
# The control first: the same call opens the configuration.
check "packet process: open(mtugate.conf) works (the control)" gdb_ret_ge0 "$pid" 'open($s, 0)' "$conf"
check "packet process: open(the key) fails (Landlock)" gdb_ret_neg "$pid" 'open($s, 0)' "$key"
check_not "no warning about the key's folder at start" mg_log_has "lies on the way to"
check "mtugate.conf edited by rename (sed -i): the reload reads it" sed_i_reload "reloaded: "
check_not "no reload failed" mg_log_has "reload failed"
check "packet process: open(the new mtugate.conf) works" gdb_ret_ge0 "$pid" 'open($s, 0)' "$conf"
check "packet process: open(the key) still fails" gdb_ret_neg "$pid" 'open($s, 0)' "$key"
check "worker: open(the key) works (the control: it may read)" gdb_ret_ge0 "$worker" 'open($s, 0)' "$key"
check "worker: creating a file outside its folder fails (Landlock)" \
	gdb_ret_neg "$worker" 'open($s, 65, 384)' "$LAB_DIR/privsep-probe"
check_not "worker: ... and nothing was made" test -e "$LAB_DIR/privsep-probe"
check "worker: socket(AF_INET) works (the control)" gdb_ret_ge0 "$worker" "socket(2, 1, 0)"
check "worker: socket(AF_NETLINK) fails (seccomp)" gdb_ret_neg "$worker" "socket(16, 3, 0)"
# The private scalar (P-256), as OpenSSL keeps it (a BIGNUM: little-endian words) and as in
# the file (big-endian); the key file's DER too.
scan() { # PID: which of the key's forms its memory holds
	python3 - "$1" "$key" <<'EOF'
import re, subprocess, sys
pid, key = sys.argv[1], sys.argv[2]
text = subprocess.run(["openssl", "pkey", "-in", key, "-text", "-noout"], capture_output=True, text=True).stdout
hexpriv = "".join(re.search(r"priv:\s*(.*?)\s*pub:", text, re.S).group(1).split()).replace(":", "")
be = bytes.fromhex(hexpriv)[-32:]
der = subprocess.run(["openssl", "pkey", "-in", key, "-outform", "DER"], capture_output=True).stdout
needles = {"scalar-le": be[::-1], "scalar-be": be, "der": der}
found = set()
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        addr, perms = line.split()[:2]
        if perms[0] != "r" or "[vvar" in line or "[vsyscall]" in line:
            continue
        lo, hi = (int(x, 16) for x in addr.split("-"))
        if hi - lo > 1 << 32:   # AddressSanitizer's shadow: terabytes reserved, no key
            continue
        step, tail = 64 << 20, b""
        for at in range(lo, hi, step):
            try:
                mem.seek(at)
                chunk = tail + mem.read(min(step, hi - at))
            except (OSError, ValueError, OverflowError):
                break
            found.update(k for k, v in needles.items() if v in chunk)
            tail = chunk[-len(der):]
print(" ".join(sorted(found)) or "none")
EOF
}
wscan=$(scan "$worker")
pscan=$(scan "$pid")
echo "key material in memory: worker: $wscan; packet process: $pscan"
check "worker: its memory holds the private key (the control)" grep -q scalar <<<"$wscan"
check "packet process: its memory holds no form of the key" test "$pscan" = none

progress "a proxied login across the split"
t=$(now)
lab_connect relay
login=$(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
echo "login took $login s"
wait_until 30 lab_dtls_settled || true
lab_behaviour >/dev/null || true
check "relay: the proxy carried the tunnel" mg_log_has "tunnel up, group relay"
check "relay: ping through the tunnel" tunnel_ping
check "relay: sessions lists it (from the worker's announcement)" sessions_has "group=relay .*dtls="
check "relay: DTLS established (the DTLS path found the group by session id)" \
	grep -q "Established DTLS connection" "$LAB_OC_LOG"
check "relay: sessions shows it established (the packet process's table saw the answer)" \
	wait_until 5 sessions_has "group=relay .*dtls=established"
check "relay: counters reach the packet process" wait_until 3 sh -c \
	"ip netns exec $NS_GW $B/mtugatectl -s $LAB_MG_SOCK stats --json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"groups\"][\"relay\"][\"sessions\"] < 1)'"
old_client=$(sessions_kv mtugatectl | sed -n 's/^session client=\([^ ]*\) group=relay .*/\1/p' | head -1)

progress "kill -9 of the worker"
worker=$(tunnel_worker)
before=$(pgrep -P "$master" -x mtugated-pwork | sort)
echo "the tunnel's worker: ${worker:-none} (of $(echo $before))"
[[ -n $worker ]] || die "no worker holds the tunnel"
kill -KILL "$worker"
t0=$(now)
check "the listener stays open while no worker runs (logins wait in its backlog)" lab_listening "$NS_GW" tcp 8443
new_worker() { w2=$(pgrep -P "$master" -x mtugated-pwork | sort | comm -13 <(echo "$before") - | head -1); [[ -n $w2 ]]; }
check "a new worker within 2 s" wait_until 2 new_worker
echo "worker $worker replaced by ${w2:-none} after $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s"
old_gone() { [[ -n $old_client ]] && ! sessions_ctl | grep -qF "client=$old_client "; }
check "the old session is gone from sessions" wait_until 2 old_gone
check "logged once, at warning" test "$(grep -c "worker process $worker (worker [0-9]*) was killed by signal 9" "$LAB_DIR/mtugated.log")" = 1
check "the new worker is sandboxed too" status_is "${w2:-0}" Seccomp 2
lab_connect relay
t1=$(now)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "a new login $took s after the kill (a login alone: $login s)"
check "a new login within 2 s + the login's time (+1 s margin)" awk -v t="$took" -v l="$login" 'BEGIN { exit !(t <= l + 3) }'
check "the new tunnel carries traffic" tunnel_ping
check "sessions lists the new tunnel" sessions_has "group=relay"
check "the packet process lived on" kill -0 "$pid"
lab_disconnect

progress "kill -9 of the master: mtugated stops, non-zero, for the service manager to restart it"
kill -KILL "$master"
check "the packet process ends within 2 s" wait_until 2 lab_dead "$pid"
check "it says why" mg_log_has "its processes are gone (its master ended): stopping, non-zero"
check "no proxy process is left" sh -c "! pgrep -x mtugated-pwork -P $master"
lab_mtugated_stop

progress "the key beside mtugate.conf (the old default): an edit by rename needs a restart"
beside=$LAB_DIR/mtugate/headend.key
install -m 0600 "$key" "$beside"
sed -i "s|^private_key = .*|private_key = $beside|" "$conf"
lab_mtugated_start "$conf" || die "mtugated did not start (the key beside mtugate.conf)"
pid=$(<"$LAB_DIR/pids/mtugated")
check "it warns at start" mg_log_has "private key $beside lies on the way to $conf"
check "mtugate.conf edited by rename (sed -i): the reload fails" sed_i_reload "reload failed"
check "saying why, and what to do" mg_log_has "is a new file (replaced by a rename.*move the key to a folder of its own"
check "the running policy stays (the daemon answers)" mtugatectl ping
check "packet process: open(the key) fails (Landlock)" gdb_ret_neg "$pid" 'open($s, 0)' "$beside"
lab_mtugated_stop
finish
