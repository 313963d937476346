#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The TLS proxy against hostile and broken peers (issue 9): clients that stall mid-handshake,
# send a megabyte of headers, or close at every byte offset of their first flight and of the
# HTTP exchange, with mtugated's file descriptors and RSS back to where they started; TLS below
# 1.2 refused toward clients and toward the headend; the headend's certificate verified, and
# insecure_upstream = yes never silent. A world-readable private key is refused: e2e-proxy.sh.
# Stub headends (openssl s_server) sit in a fifth namespace behind the gateway (ocserv holds
# port 443 on every address of its own), named in [headend] address next to ocserv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

FAULTS=$LAB_ROOT/tests/netns/proxy-faults.py
NS_STUB=mg$$-stub
STUB11=198.18.4.3	# speaks TLS 1.1 only, with a certificate that verifies
STUBSELF=198.18.4.4	# TLS 1.2, self-signed certificate
STUBNAME=198.18.4.5	# TLS 1.2, the lab CA's certificate for 198.18.2.2 (wrong address)
HS_TIMEOUT=2 IDLE_TIMEOUT=5

mg_log() { cat "$LAB_DIR/mtugated.log"; }
mg_log_has() { grep -q -- "$1" "$LAB_DIR/mtugated.log"; }
# No pipe into grep -q: under pipefail, tail's SIGPIPE after an early match failed the check.
new_log_has() { awk -v n="$log0" -v s="$1" 'NR > n && index($0, s) { f = 1; exit } END { exit !f }' "$LAB_DIR/mtugated.log"; }
mg_pid() { cat "$LAB_DIR/pids/mtugated"; }
fds() { find "/proc/$(mg_pid)/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(mg_pid)/status"; }
fds_le() { (($(fds) <= $1)); }
no_sessions() { (($(sessions_kv mtugatectl | grep -c '^session') == 0)); }
# A proxy-faults.py mode from the client namespace; its summary goes to faults-MODE.log.
faults() { # MODE ARGS...
	n_client python3 "$FAULTS" "$1" "$LAB_HEADEND4" 443 "${@:2}" >"$LAB_DIR/faults-$1.log" 2>&1
}
# How many connections the modes run so far opened (their "N connections" lines).
faults_conns() { cat "$LAB_DIR"/faults-*.log | awk '/: [0-9]+ connections/ { n += $2 } END { print n + 0 }'; }
rss_le() { (($(rss_kib) <= $1)); }

# openssl s_client from the client namespace: the negotiated protocol, empty on failure.
tls_version() { # HOST PORT OPTIONS...
	local host=$1 port=$2; shift 2
	n_client timeout 10 openssl s_client -brief -connect "$host:$port" "$@" </dev/null 2>&1 \
		| sed -n 's/^Protocol version: //p'
}
tls_is() { local want=$1; shift; [[ $(tls_version "$@") == "$want" ]]; } # WANT HOST PORT OPTIONS...
# A request through the proxy to a stub headend (s_server -www answers any GET).
stub_answers() { # HOST
	printf 'GET / HTTP/1.0\r\n\r\n' | n_client timeout 10 openssl s_client -quiet -connect "$1:443" \
		2>/dev/null | grep -q '^HTTP/1.0 200'
}
stub() { # NAME ADDR CERT KEY OPTIONS...
	local name=$1 addr=$2 cert=$3 key=$4; shift 4
	lab_bg "$name" "$NS_STUB" openssl s_server -accept "$addr:443" -cert "$cert" -key "$key" -www "$@"
	wait_until 10 stub_listening "$addr" || die "stub $name did not start: $(tail -3 "$LAB_DIR/$name.log")"
}
stub_listening() { [[ -n $(ip netns exec "$NS_STUB" ss -Htln "src $1:443") ]]; }
lab_cleanup_hook() {
	local pid
	for pid in $(ip netns pids "$NS_STUB" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	ip netns del "$NS_STUB" 2>/dev/null
	return 0
}

# shellcheck disable=SC2119 # the lab defaults
lab_up
ip netns add "$NS_STUB"
ip -n "$NS_STUB" link set lo up
lab_veth "$NS_GW" g-stub "$NS_STUB" s-dmz 1500
ip -n "$NS_GW" addr add 198.18.4.1/24 dev g-stub
for a in $STUB11 $STUBSELF $STUBNAME; do ip -n "$NS_STUB" addr add "$a/24" dev s-dmz; done
ip -n "$NS_STUB" route add default via 198.18.4.1
ip -n "$NS_CLIENT" route add 198.18.4.0/24 via 198.18.1.1 src "$LAB_SRC4_relay"

progress "stub headends: TLS 1.1 only, self-signed, wrong address"
pki=$LAB_DIR/pki
sed "s/^subjectAltName = .*/subjectAltName = IP:$STUB11, IP:$STUBSELF/" "$LAB_FILES/headend.ext" >"$pki/stub.ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=stub.lab.test" \
	-keyout "$pki/stub.key" -out "$pki/stub.csr" 2>/dev/null
openssl x509 -req -in "$pki/stub.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
	-days 2 -out "$pki/stub.crt" -extfile "$pki/stub.ext" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj "/CN=self.lab.test" -addext "subjectAltName = IP:$STUBSELF" \
	-keyout "$pki/self.key" -out "$pki/self.crt" 2>/dev/null
stub stub11 "$STUB11" "$pki/stub.crt" "$pki/stub.key" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
stub stubself "$STUBSELF" "$pki/self.crt" "$pki/self.key"
stub stubname "$STUBNAME" "$LAB_CERT" "$LAB_KEY"

conf=$(lab_mtugate_conf proxy=yes)
sed -i "s|^address = .*|address = $LAB_HEADEND4, $LAB_HEADEND6, $STUB11, $STUBSELF, $STUBNAME|" "$conf"
sed -i "/^\[proxy\]/a handshake_timeout = $HS_TIMEOUT\nidle_timeout = $IDLE_TIMEOUT" "$conf"

# lab_mtugated_start copies its file to $conf: keep both versions aside.
cp "$conf" "$LAB_DIR/verified.conf"
progress "insecure_upstream = yes: a warning at every start and at reload"
sed 's/^insecure_upstream = .*//; /^\[proxy\]/a insecure_upstream = yes' "$conf" >"$LAB_DIR/insecure.conf"
for start in 1 2; do
	lab_mtugated_start "$LAB_DIR/insecure.conf" || die "mtugated did not start (insecure)"
	check "insecure, start $start: warned that the headend is not verified" \
		mg_log_has "insecure_upstream = yes: the headend's certificate is NOT verified"
	check "insecure, start $start: the listening line says so too" mg_log_has "headend verified NOT AT ALL"
	lab_mtugated_stop
done
lab_mtugated_start "$LAB_DIR/insecure.conf" || die "mtugated did not start (insecure)"
check "insecure: the self-signed headend is let through, as configured" stub_answers "$STUBSELF"
kill -HUP "$(mg_pid)"
check "insecure: reloaded" wait_until 10 mg_log_has "reloaded:"
check "insecure: the warning again at reload" \
	wait_until 5 mg_log_has "insecure_upstream = yes: the headend's certificate is still NOT verified"
lab_mtugated_stop

lab_mtugated_start "$LAB_DIR/verified.conf" || die "mtugated did not start"
check_not "verified: no insecure warning by default" mg_log_has "NOT verified"
check "verified: the listening line says by address" mg_log_has "headend verified by address"

progress "TLS below 1.2 refused toward clients"
check "client TLS 1.3 through the proxy (control)" tls_is TLSv1.3 "$LAB_HEADEND4" 443
check "client TLS 1.2 through the proxy (control)" tls_is TLSv1.2 "$LAB_HEADEND4" 443 -tls1_2
check "client TLS 1.1 refused" tls_is '' "$LAB_HEADEND4" 443 -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
check "client TLS 1.0 refused" tls_is '' "$LAB_HEADEND4" 443 -tls1 -cipher 'DEFAULT@SECLEVEL=0'
check "the log gives the reason (client TLS handshake: version below 1.2)" \
	wait_until 5 mg_log_has "closed: client TLS handshake: TLS version below 1.2 refused (.*unsupported protocol)"

progress "TLS below 1.2 refused toward the headend"
stub_is_tls11() { # straight from the gateway, not through the proxy
	[[ $(n_gw timeout 10 openssl s_client -brief -connect "$STUB11:443" -tls1_1 \
		-cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1 | sed -n 's/^Protocol version: //p') == TLSv1.1 ]]
}
check "the stub really speaks TLS 1.1 (direct from the gateway)" stub_is_tls11
check_not "a TLS 1.1 headend gets no request through the proxy" stub_answers "$STUB11"
check "the log gives the reason (headend TLS handshake: version below 1.2)" \
	wait_until 5 mg_log_has "$STUB11:443: closed: headend TLS handshake: TLS version below 1.2 refused (.*protocol version)"

progress "the headend's certificate is verified"
check_not "a self-signed headend is refused" stub_answers "$STUBSELF"
check "the log gives the reason (self-signed)" \
	wait_until 5 mg_log_has "$STUBSELF:443: closed: headend TLS handshake: certificate verification failed: self-signed certificate"
check_not "a headend certificate for another address is refused" stub_answers "$STUBNAME"
check "the log gives the reason (address mismatch)" \
	wait_until 5 mg_log_has "$STUBNAME:443: closed: headend TLS handshake: certificate verification failed: IP address mismatch"

progress "hostile clients: a first round, then the baseline"
# The first rounds grow malloc's arena and OpenSSL's pools to their working size (about
# 1.5 MiB, once): the next, identical round must then leave nothing behind. Two of them:
# after one, the arena once still grew by 548 KiB in the measured round (a loaded machine).
rss_start=$(rss_kib)
# Under the sanitizers RSS is not compared (below): no warm-up rounds, a third of the time.
warmups=2
[[ -z ${MTUGATE_SANITIZED:-} ]] || warmups=0
for ((w = 0; w < warmups; w++)); do
	for m in firstflight http bigheaders; do faults $m || true; done
	faults stall $((IDLE_TIMEOUT + 5)) || true
done
rm -f "$LAB_DIR"/faults-*.log
wait_until 10 no_sessions || true
sleep_until_quiet() { local a; a=$(fds); sleep 0.5; [[ $(fds) == "$a" ]]; }
wait_until 10 sleep_until_quiet || true
fd0=$(fds) rss0=$(rss_kib) pid0=$(mg_pid)
log0=$(wc -l <"$LAB_DIR/mtugated.log")
progress "mtugated pid $pid0: $fd0 file descriptors, RSS $rss0 KiB (at start $rss_start KiB)"

progress "clients that close at every byte offset of their first flight"
check "firstflight: every offset of the ClientHello" faults firstflight
progress "clients that close at every byte offset of the HTTP exchange"
check "http: every offset of the first POST, and of the answer" faults http
progress "clients that send megabytes of headers"
# The proxy streams a request head (no header count; lines to 256 KiB, a head to
# 2 MiB: real clients send long cookies), so ocserv's own limits, far lower,
# end these: the proxy closes the client's side when the headend resets its
# own. The proxy's limits themselves: test_cstp, test_http, e2e-headends.
check "bigheaders: each closed long before all of it was read" faults bigheaders
closed_by_headend() {
	new_log_has "closed: headend TLS: Connection reset by peer" ||
		new_log_has "closed: headend closed" || new_log_has "closed: client request: a line longer"
}
check "the log: closed as the headend ended it" closed_by_headend
progress "clients that stall mid-handshake, after it, and mid-request"
check "stall: every one closed within idle_timeout" faults stall $((IDLE_TIMEOUT + 5))
check "the log: TLS handshake timeout" new_log_has "closed: TLS handshake timeout ($HS_TIMEOUT s)"
check "the log: idle timeout" new_log_has "closed: idle timeout ($IDLE_TIMEOUT s)"
sed 's/^/    /' "$LAB_DIR"/faults-*.log >&2

progress "nothing left behind"
same_daemon() { [[ $(mg_pid) == "$pid0" && $(cat "/proc/$pid0/comm") == mtugated ]]; }
check "mtugated still the same process" same_daemon
check "every connection gone from sessions" wait_until 10 no_sessions
check "file descriptors back to $fd0 (now $(fds))" wait_until 15 fds_le "$fd0"
rss_max=$((rss0 + 512))
if [[ -n ${MTUGATE_SANITIZED:-} ]]; then
	# ASan keeps freed memory in quarantine: RSS says nothing there, its leak check does.
	progress "RSS not compared under AddressSanitizer (LeakSanitizer checks at exit)"
else
	check "RSS back within 512 KiB of $rss0 KiB (now $(rss_kib) KiB)" wait_until 15 rss_le "$rss_max"
fi
progress "after: $(fds) file descriptors, RSS $(rss_kib) KiB"
# Every connection the clients opened was closed with a logged reason, or
# counted in the once-a-second line that stands for them past 20 a second.
closes_logged() {
	awk -v n="$log0" 'NR > n && /closed:/ { c++ }
		NR > n && / more connections closed before they became tunnels/ {
			for (i = 2; i <= NF; i++) if ($i == "more") c += $(i - 1) }
		END { print c + 0 }' "$LAB_DIR/mtugated.log"
}
closes_ge() { (($(closes_logged) >= $1)); }
conns=$(faults_conns)
check "every close logged with a reason or counted in a summary line" wait_until 5 closes_ge "$conns"
progress "$(closes_logged) closes logged or summarised for $conns connections"
check_not "no close without a reason" mg_log_has "closed: $"
check "a real tunnel still works through the proxy" lab_connect relay
check "ping LAN through it" n_client ping -c1 -W3 "$LAB_LAN4"
lab_disconnect
lab_mtugated_stop
finish
