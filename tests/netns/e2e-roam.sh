#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The session cookie decides, not the client address (issue 16): openconnect --authenticate to
# a block group (mtu 1460) from one address, a tunnel with the cookie, kill -9 (no BYE), the
# same cookie from a second address, then once more after mtugated restarted: no DTLS offered,
# the same X-CSTP-MTU and tun MTU all three times, counted for the right group. A relay user
# behind the roamed client's address still gets DTLS. Then the rekeys (openconnect on TLS 1.2:
# a renegotiation through the proxy; a new tunnel with the cookie), and a pool two groups
# share (the login decides the rewrite, the tunnel's address the MSS clamp).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

mg_log_has() { grep -q -- "$1" "$LAB_DIR/mtugated.log"; }
sessions_has() { sessions_kv mtugatectl | grep -q -- "$1"; }
behaviour() { lab_behaviour || true; }
stat_is_now() { # GROUP COUNTER VALUE
	local v
	v=$(mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2")
	[[ $v == "$3" ]]
}
# The proxy's process sends its counters every 100 ms: a count may arrive just after its log line.
stat_is() { wait_until 3 stat_is_now "$@"; }
file_mode() { [[ $(stat -c %a "$1") == "$2" ]]; }
# The state file holds the cookie's SHA-256, never the cookie.
cookie_known() { grep -q "^$cookie_hash " "$LAB_DIR/mtugate/cookies" 2>/dev/null; }


# One tunnel with the cookie from GROUP's source address; its MTUs and DTLS recorded in $1_*.
cookie_round() { # NAME SOURCE_GROUP
	lab_connect "$2" --cookie="$cookie" || return 1
	behaviour
	printf -v "${1}_offered" %s "$AC_DTLS_OFFERED"
	printf -v "${1}_cstp" %s "${AC_CSTP_MTU:-none}"
	printf -v "${1}_tun" %s "${AC_TUN_MTU:-none}"
	check "$1: tunnel works (ping LAN)" n_client ping -c1 -W3 "$LAB_LAN4"
	check "$1: listed as group tlsonly from $(lab_route_src "$2")" sessions_has "client=$(lab_route_src "$2"):.* group=tlsonly"
}
lab_route_src() { local s=LAB_SRC4_$1; echo "${!s}"; }


lab_up
conf=$(lab_mtugate_conf proxy=yes tlsonly.mtu=1460)
lab_mtugated_start "$conf" || die "mtugated did not start"

progress "login only (openconnect --authenticate) to the tlsonly group from $LAB_SRC4_tlsonly"
cookie=$(lab_authenticate tlsonly)
check "a session cookie came back" test -n "$cookie"
# openconnect 9 prints "openconnect_strapkey=...; webvpn=TOKEN": the headend's is TOKEN.
token=$(sed -n 's/.*webvpn=\([^;]*\).*/\1/p' <<<"$cookie")
cookie_hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
check "the proxy bound it to the login's group (state file written)" wait_until 5 cookie_known
check "the state file is the daemon's alone (0600)" file_mode "$LAB_DIR/mtugate/cookies" 600
check_not "the state file holds no cookie in clear" grep -qF -- "$token" "$LAB_DIR/mtugate/cookies"
check "[proxy] certificate compared with the headend's leaf at the first upstream handshake" \
	mg_log_has "certificate is the headend's own (SHA-256 "

progress "1: the cookie's tunnel from the login's address"
cookie_round first tlsonly
check "first: no DTLS offered (the block group's request rewrite)" test "$first_offered" = no
check "first: X-CSTP-MTU is the group's 1460" test "$first_cstp" = 1460
check "first: tun MTU 1460" test "$first_tun" = 1460
lab_kill_client

progress "2: the same cookie from another address ($LAB_SRC4_relay, the relay group's clients)"
cookie_round roamed relay
check "roamed: no DTLS offered" test "$roamed_offered" = no
check "roamed: X-CSTP-MTU as the first time ($roamed_cstp = $first_cstp)" test "$roamed_cstp" = "$first_cstp"
check "roamed: tun MTU as the first time ($roamed_tun = $first_tun)" test "$roamed_tun" = "$first_tun"
check "roamed: the group came from the session cookie, not the address" \
	mg_log_has "$LAB_SRC4_relay:[0-9]*: tunnel up, group tlsonly"
check "tlsonly counted both tunnels" stat_is tlsonly sessions 2
check "relay counted none" stat_is relay sessions 0
lab_kill_client

progress "3: after mtugated restarted"
lab_mtugated_stop
check "the state file outlives the daemon" cookie_known
lab_mtugated_start "$conf" || die "mtugated did not start again"
check "the restarted daemon read the session back" mg_log_has "1 sessions known from"
cookie_round restarted relay
check "restarted: no DTLS offered" test "$restarted_offered" = no
check "restarted: X-CSTP-MTU as the first time ($restarted_cstp = $first_cstp)" test "$restarted_cstp" = "$first_cstp"
check "restarted: tun MTU as the first time ($restarted_tun = $first_tun)" test "$restarted_tun" = "$first_tun"
check "restarted: counted for tlsonly" stat_is tlsonly sessions 1

progress "a relay user behind the same address still gets DTLS (the tlsonly client says BYE)"
lab_connect relay || true
check "the BYE (CSTP DISCONNECT) ended the tlsonly session" wait_until 5 eval '! cookie_known'
wait_until 30 lab_dtls_settled || true
behaviour
check "relay behind $LAB_SRC4_relay: DTLS offered" test "$AC_DTLS_OFFERED" = yes
check "relay behind $LAB_SRC4_relay: Established DTLS connection" grep -q "Established DTLS connection" "$LAB_OC_LOG"
check "relay behind $LAB_SRC4_relay: group relay" wait_until 10 sessions_has "client=$LAB_SRC4_relay:.* group=relay .*dtls=established"
lab_disconnect

# openconnect on TLS 1.2 (GnuTLS's system priority file), for a renegotiation to exist.
tls12() {
	printf '[overrides]\ndisabled-version = tls1.3\n' >"$LAB_DIR/gnutls-tls12.conf"
	export GNUTLS_SYSTEM_PRIORITY_FILE=$LAB_DIR/gnutls-tls12.conf
}
oc_count() { grep -c -- "$1" "$LAB_OC_LOG" || true; }
connects_are() { [[ $(oc_count "CSTP connected") == "$1" ]]; }
rekeyed() { grep -q "CSTP rekey due" "$LAB_OC_LOG"; }
lan_ping() { n_client ping -c1 -W2 "$LAB_LAN4"; }

progress "rekey by TLS renegotiation: ocserv rekey-time = 30, rekey-method = ssl"
lab_down
lab_up rekey=30:ssl
tls12
conf=$(lab_mtugate_conf proxy=yes tlsonly.mtu=1460)
lab_mtugated_start "$conf" || die "mtugated did not start"
lab_connect tlsonly
check "ssl: openconnect's leg is TLS 1.2" grep -q "ciphersuite (TLS1.2)" "$LAB_OC_LOG"
check "ssl: CSTP rekey due (30 s)" wait_until 45 rekeyed
check "ssl: traffic flows after the rekey" wait_until 10 lan_ping
check_not "ssl: no Rehandshake failed" grep -q "Rehandshake failed" "$LAB_OC_LOG"
check "ssl: one CSTP connected" connects_are 1
check "ssl: one tunnel in the proxy" test "$(grep -c "tunnel up" "$LAB_DIR/mtugated.log")" = 1
check "ssl: the renegotiation counted (tls_rekeys)" wait_until 3 stat_is tlsonly tls_rekeys 1
check "ssl: none refused" stat_is tlsonly tls_rekeys_refused 0
lab_disconnect

progress "rekey by a new tunnel: rekey-method = new-tunnel (a cookie reconnect)"
lab_down
lab_up rekey=30:new-tunnel
tls12
conf=$(lab_mtugate_conf proxy=yes tlsonly.mtu=1460)
lab_mtugated_start "$conf" || die "mtugated did not start"
lab_connect tlsonly
check "new-tunnel: CSTP rekey due (30 s)" wait_until 45 rekeyed
check "new-tunnel: a second CONNECT" wait_until 15 connects_are 2
check "new-tunnel: traffic flows after the rekey" wait_until 10 lan_ping
# The CONNECT answers as openconnect logged them (its requests carry X-CSTP-MTU and X-DTLS-*).
answers=$(sed -n '/Got CONNECT response/,/CSTP connected/p' "$LAB_OC_LOG")
mtus=$(sed -n 's/.*X-CSTP-MTU: *\([0-9]*\).*/\1/Ip' <<<"$answers" | tr '\n' ' ')
check "new-tunnel: the same X-CSTP-MTU both times (${mtus% })" test "${mtus% }" = "1460 1460"
check_not "new-tunnel: no DTLS offered either time" grep -qi "X-DTLS-" <<<"$answers"
check "new-tunnel: both tunnels in group tlsonly" test "$(grep -c "tunnel up, group tlsonly" "$LAB_DIR/mtugated.log")" = 2
check "new-tunnel: counted twice for tlsonly" stat_is tlsonly sessions 2
lab_disconnect

# Two ocserv groups on one ipv4-network; in mtugate one relay, one block (mtu 1400 against
# relay's 1434), each setting its auth_group: the login decides, and the packet path takes
# the group of the tunnel the address was given to.
mss_seen() { # GROUP: SYNs of the group clamped or checked
	mtugatectl stats --json | python3 -c 'import json,sys; g=json.load(sys.stdin)["groups"][sys.argv[1]]; sys.exit(0 if g["mss_rewritten"] + g["mss_unchanged"] + g["mss_inserted"] > 0 else 1)' "$1"
}
progress "shared pool: relay and tlsonly on one ipv4-network"
lab_down
lab_up shared_pool
unset GNUTLS_SYSTEM_PRIORITY_FILE
conf=$(lab_mtugate_conf proxy=yes tlsonly.mtu=1400)
lab_mtugated_start "$conf" || die "mtugated did not start"
check "shared pool: the configuration is accepted and says how it resolves" eval \
	"mtugatectl groups | grep -q 'group.relay.pool_shared.*$LAB_POOL4_relay with tlsonly.*counts as tlsonly'"
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "shared pool: relay user offered DTLS" test "$AC_DTLS_OFFERED" = yes
check "shared pool: relay user's group from its login" mg_log_has "tunnel up, group relay (from its login or cookie, in its shared pool)"
check "shared pool: relay's download works" lab_http_get 4 30
check "shared pool: relay's SYNs clamped as relay" mss_seen relay
check_not "shared pool: none as tlsonly" mss_seen tlsonly
lab_connect tlsonly
behaviour
check "shared pool: tlsonly user offered no DTLS" test "$AC_DTLS_OFFERED" = no
check "shared pool: tlsonly user's X-CSTP-MTU is its group's 1400" test "${AC_CSTP_MTU:-}" = 1400
check "shared pool: tlsonly's address is in the shared pool" eval "[[ $LAB_TUN4 == 192.0.2.* ]] && (( ${LAB_TUN4##*.} < 64 ))"
check "shared pool: tlsonly's download works" lab_http_get 4 30
check "shared pool: tlsonly's SYNs clamped as tlsonly" mss_seen tlsonly
lab_disconnect

progress "[proxy] certificate that is not the headend's: warned at start, with both fingerprints"
lab_mtugated_stop
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other \
	-keyout "$LAB_DIR/other.key" -out "$LAB_DIR/other.crt" >/dev/null 2>&1
chmod 600 "$LAB_DIR/other.key"
sed -e "s|^certificate = .*|certificate = $LAB_DIR/other.crt|" \
	-e "s|^private_key = .*|private_key = $LAB_DIR/other.key|" "$conf" >"$LAB_DIR/other.conf"
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
ours=$(fp "$LAB_DIR/other.crt") theirs=$(fp "$LAB_CERT")
lab_mtugated_start "$LAB_DIR/other.conf" || true
check "the warning names the mismatch" wait_until 15 mg_log_has "certificate $LAB_DIR/other.crt is not the headend's own"
check "with the proxy's fingerprint and the headend's" \
	grep -qi -- "SHA-256 is $ours, the headend's $theirs" "$LAB_DIR/mtugated.log"
lab_mtugated_stop
finish
