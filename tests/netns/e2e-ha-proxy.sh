#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The pair of e2e-ha.sh (real keepalived and conntrackd, tests/netns/ha.sh) with the TLS proxy
# on both nodes and one [proxy] ticket_key_file, a copy on each (issue 20, docs/ha.md).
# openconnect's tunnel (relay group, DTLS through the CSCuh61321 port rewrite) runs through
# A's proxy; an OpenSSL client takes a session ticket from A's proxy. A dies hard. Pass:
# openconnect reconnects exactly once, within 15 s, through B's proxy, with its cookie (ocserv
# logs a cookie authentication, no new password login), gets the same tunnel address, MTU and
# group (B derives the group from the tunnel's address in its pool: docs/ha.md), DTLS comes
# back, and the ticket A issued resumes on B (openconnect 9.01 never offers a TLS session
# back, so the OpenSSL client shows it; B counts it in proxy_tls.resumed).
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"
skip_unless_root
# shellcheck source=tests/netns/ha.sh
. "$(dirname "$0")/ha.sh"
HA_MTUGATE=proxy=yes HA_TICKET_KEY=yes

oclog() { grep -c -- "$1" "$LAB_OC_LOG" || true; }
hlog() { grep -c -- "$1" "$LAB_DIR/ocserv.log" || true; }
tls_stat() { # NODE FIELD
	ha_ctl "$1" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxy_tls"][sys.argv[1]])' "$2"
}
sessions_of() { sessions_kv ha_ctl "$1" | grep '^session' || true; }
has_session() { [[ $(sessions_of "$1") == *"$2"* ]]; }
# An OpenSSL client's TLS handshake with the headend's address (diverted to the node's proxy),
# a request, the answer read to its end (the TLS 1.3 ticket comes with it); SESS_ARGS:
# -sess_out FILE or -sess_in FILE. Prints s_client's output.
s_client() { # TLS_VERSION_FLAG SESS_ARGS...
	local v=$1; shift
	printf 'GET / HTTP/1.0\r\nHost: headend.lab.test\r\n\r\n' |
		n_client timeout 10 openssl s_client -connect "$LAB_HEADEND4:443" -servername headend.lab.test \
			-CAfile "$LAB_CA" -ign_eof "$v" "$@" 2>&1 || true
}

progress "the pair with the proxy on both nodes, one ticket key"
ha_up udp=yes 1
check "A's proxy runs with the shared ticket key" grep -q "session tickets: 1 key from" "$LAB_DIR/mtugated-a.log"
check "B's proxy too" grep -q "session tickets: 1 key from" "$LAB_DIR/mtugated-b.log"
check_not "the key is never logged" grep -qF "$(od -An -tx1 "$LAB_DIR/mtugate/ticket.key" | tr -d ' \n' | cut -c1-16)" \
	"$LAB_DIR/mtugated-a.log" "$LAB_DIR/mtugated-b.log"

lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "DTLS established through A" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "the tunnel runs through A's proxy (group relay)" has_session a relay
PID0=$LAB_OC_PID TUN0=$LAB_TUN4 MTU0=$(n_client cat /sys/class/net/oc0/mtu)
CSTP0=$(oclog "CSTP connected") EST0=$(oclog "Established DTLS connection")
# ocserv -d 2: a password login says "using 'plain' authentication"; the session it opens
# (its cookie) is "initiating session for user ... (session: ID)", again at each CONNECT
# with the cookie.
LOGIN0=$(hlog "using 'plain' authentication")
SID=$(sed -n "s/.*using 'plain' authentication to authenticate user (session: \([^)]*\)).*/\1/p" \
	"$LAB_DIR/ocserv.log" | tail -1)
COOKIE0=$(hlog "initiating session for user '$LAB_USER' (session: $SID)")
check "ocserv saw one password login (session $SID)" [ "$LOGIN0" = 1 ]

# Session tickets from A's proxy, TLS 1.2 and 1.3.
for v in 2 3; do
	out=$(s_client "-tls1_$v" -sess_out "$LAB_DIR/sess$v.pem")
	check "TLS 1.$v: a full handshake with A's proxy" grep -q '^New, ' <<<"$out"
	check "TLS 1.$v: its session (the ticket) kept" test -s "$LAB_DIR/sess$v.pem"
done
r0=$(tls_stat b resumed)

kill_a
progress "A killed; B holds the virtual addresses after $TAKEOVER_MS ms"
check "B takes over within 3 s ($TAKEOVER_MS ms)" le "$TAKEOVER_MS" 3000
t0=$(date +%s%N)
reconnected() { [[ $(oclog "CSTP connected") -gt $CSTP0 ]]; }
check "openconnect reconnected within 15 s" wait_until 15 reconnected
rc_ms=$((TAKEOVER_MS + ($(date +%s%N) - t0) / 1000000))
progress "openconnect's CSTP back $rc_ms ms after A died"
dtls_back() { [[ $(oclog "Established DTLS connection") -gt $EST0 ]]; }
check "DTLS back within 15 s" wait_until 15 dtls_back
check "the tunnel runs through B's proxy, group relay" wait_until 5 has_session b relay
check "the LAN answers through the tunnel" n_client ping -c 3 -i 0.2 -W 2 "$LAB_LAN4"
check "exactly one reconnect ($(($(oclog "CSTP connected") - CSTP0)))" [ "$(oclog "CSTP connected")" = $((CSTP0 + 1)) ]
check "openconnect is the same process" kill -0 "$PID0"
check "ocserv: the same session again, by its cookie ($COOKIE0 -> $(hlog "initiating session for user '$LAB_USER' (session: $SID)"))" \
	[ "$(hlog "initiating session for user '$LAB_USER' (session: $SID)")" = $((COOKIE0 + 1)) ]
check "ocserv: no new password login" [ "$(hlog "using 'plain' authentication")" = "$LOGIN0" ]
check "same tun address ($TUN0)" bash -c "ip netns exec $NS_CLIENT ip -4 addr show dev oc0 | grep -q ' $TUN0/'"
check "same tun MTU ($MTU0)" [ "$(n_client cat /sys/class/net/oc0/mtu)" = "$MTU0" ]
check "B's proxy took the group from the tunnel's address" \
	grep -q "tunnel up, group relay (from X-CSTP-Address in its pool)" "$LAB_DIR/mtugated-b.log"

for v in 2 3; do
	out=$(s_client "-tls1_$v" -sess_in "$LAB_DIR/sess$v.pem")
	check "TLS 1.$v: A's ticket resumes on B (shared ticket_key_file)" \
		grep -q '^Reused, ' <<<"$out"
done
check "B counted them (proxy_tls.resumed $r0 -> $(tls_stat b resumed))" ge "$(tls_stat b resumed)" $((r0 + 2))

# Rotation on B: a new key first, the old one after, and a reload: the old tickets still
# resume; a short file is refused by the reload (its line named) and the keys stay. The file
# is rewritten in place, as mtugate.conf(5) says (a renamed file is a new one, which a
# sandboxed daemon may not read).
kb=$LAB_DIR/mtugate-b/ticket.key
{ openssl rand 80; cat "$kb"; } >"$LAB_DIR/ticket.new" && cat "$LAB_DIR/ticket.new" >"$kb"
check "reload with a rotated key file" ha_ctl b reload
check "B reads 2 keys" grep -q "session tickets: 2 keys from $kb" "$LAB_DIR/mtugated-b.log"
check "TLS 1.3: the old ticket still resumes on B" grep -q '^Reused, ' <<<"$(s_client -tls1_3 -sess_in "$LAB_DIR/sess3.pem")"
head -c 100 "$LAB_DIR/ticket.new" >"$kb"
check_not "a reload with a short key file fails" ha_ctl b reload
check "... naming the file's line" grep -q "mtugate.conf:[0-9]*: invalid ticket_key_file $kb: 100 bytes" \
	"$LAB_DIR/mtugated-b.log"
check "TLS 1.2: the keys in force stay" grep -q '^Reused, ' <<<"$(s_client -tls1_2 -sess_in "$LAB_DIR/sess2.pem")"
check "ocserv asked no proxy for a client certificate (proxy_tls.upstream_cert_requested 0)" \
	[ "$(tls_stat b upstream_cert_requested)" = 0 ]
lab_disconnect
ha_down
finish
