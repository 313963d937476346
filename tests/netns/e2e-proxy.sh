#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The TLS proxy end to end with the real peers: ocserv (legacy DTLS, two groups) behind an
# ASA-style shim announcing unequal MTUs (1380 TLS, 1418 DTLS, the note's case), the gateway
# dropping DTLS from the TLS-only group's clients, mtugated's proxy in between, openconnect.
# Then ocserv in PSK-NEGOTIATE mode: the relay group's client gets legacy DTLS through the proxy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

log_has() { grep -q -- "$1" "$LAB_OC_LOG"; }
mg_log_has() { grep -q -- "$1" "$LAB_DIR/mtugated.log"; }
le() { (($1 <= $2)); }
# The CONNECT response headers openconnect received (--dump-http-traffic).
resp_has() { sed -n '/Got CONNECT response/,/CSTP connected/p' "$LAB_OC_LOG" | grep -qi -- "$1"; }
sessions_has() { sessions_kv mtugatectl | grep -q -- "$1"; }
sessions_count() { [[ $(sessions_kv mtugatectl | grep -c '^session') == "$1" ]]; }
stat_once() { # GROUP COUNTER MIN
	local v
	v=$(mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2")
	(( v >= $3 ))
}
# The proxy's process sends its counters every 100 ms: a count may arrive just after the event.
stat_ge() { wait_until 3 stat_once "$@"; }
headend_sees() { # the headend's own view of the client address (transparency)
	n_headend occtl -s "$LAB_DIR/ocserv/occtl.sock" show users | grep -q -- "$1"
}
# lab_behaviour's DTLS grep finds nothing when no DTLS was offered, which fails under
# pipefail: its variables are set all the same.
behaviour() { lab_behaviour || true; }
bulk() { n_client iperf3 -c "$LAB_LAN4" -p 5201 -n 8M -J >"$LAB_DIR/iperf-$1.json"; }

tunnel_works() { # GROUP
	check "$1: ping LAN over IPv4 through the proxied tunnel" n_client ping -c1 -W3 "$LAB_LAN4"
	check "$1: HTTP download over IPv4, sha256 matches" lab_http_get 4 30
	check "$1: HTTP download over IPv6, sha256 matches" lab_http_get 6 30
	check "$1: bulk transfer (iperf3, 8 MiB)" bulk "$1"
}

lab_up asa_mtus dtls_block=tlsonly:drop
group_mtu=$(lab_tls_mtu)
# One worker where a tunnel resumes the headend session an earlier one left: each worker keeps
# its own cache (docs/proxy.md); e2e-pworkers runs several.
conf=$(lab_mtugate_conf proxy=yes proxy.workers=1)

progress "a world-readable private key is refused with a clear error"
install -m 0644 "$LAB_KEY" "$LAB_DIR/mtugate/open.key"
sed "s|^private_key = .*|private_key = $LAB_DIR/mtugate/open.key|" "$conf" >"$LAB_DIR/mtugate/badkey.conf"
set +e
n_gw timeout 10 "$B/mtugated" -f -c "$LAB_DIR/mtugate/badkey.conf" >"$LAB_DIR/badkey.log" 2>&1
rc=$?
set -e
check "mtugated exits non-zero with a world-readable key" test "$rc" != 0 -a "$rc" != 124
check "the error names the key and the reason" grep -q "private_key $LAB_DIR/mtugate/open.key is readable by everyone" "$LAB_DIR/badkey.log"

install -m 0600 "$LAB_KEY" "$LAB_DIR/mtugate/headend.key"
sed -i "s|^private_key = .*|private_key = $LAB_DIR/mtugate/headend.key|" "$conf"
# Short enough to watch them: the handshake timeout fires below; idle_timeout must not cut a
# tunnel whose headend bounds its silence with DPD.
sed -i '/^\[proxy\]/a handshake_timeout = 2\nidle_timeout = 4' "$conf"
lab_mtugated_start "$conf" || die "mtugated did not start"
check "proxy listening in the gateway" lab_listening "$NS_GW" tcp 8443

progress "relay group: DTLS passes, both MTUs equal"
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "relay: the proxy carried the tunnel" mg_log_has "tunnel up, group relay"
# The tunnel's own address decides, before a group named at authentication (behind NAT,
# an earlier authentication from the same address may be another user's).
check "relay: its group from the address the headend gave it" mg_log_has "group relay (from X-CSTP-Address in its pool)"
check "relay: the headend sees the client's own address" headend_sees "$LAB_SRC4_relay"
check "relay: DTLS offered" [ "$AC_DTLS_OFFERED" = yes ]
check "relay: X-DTLS-MTU = X-CSTP-MTU ($AC_DTLS_MTU = $AC_CSTP_MTU)" [ "$AC_DTLS_MTU" = "$AC_CSTP_MTU" ]
check "relay: X-CSTP-MTU <= group mtu $group_mtu" le "${AC_CSTP_MTU:-99999}" "$group_mtu"
check "relay: Established DTLS connection" log_has "Established DTLS connection"
check "relay: no reconnect predicted" [ "$AC_RECONNECT" = no ]
tunnel_works relay
check "relay: sessions lists it with DTLS established" wait_until 10 sessions_has "group=relay .*dtls=established"
check "relay: connect_rewritten counted" stat_ge relay connect_rewritten 1
check "relay: sessions counted" stat_ge relay sessions 1
# DTLS carries the data: the tunnel's TLS connection is quiet but for the client's DPD, every
# 90 s here (ocserv's dpd). Three of those bound the silence, not idle_timeout (4 s).
check "relay: the idle limit comes from the headend's DPD (3 x 90 s)" mg_log_has "group relay .*idle limit 270 s"
quiet_until=$((SECONDS + 10))
while ((SECONDS < quiet_until)) && sessions_has "group=relay"; do sleep 1; done
check "relay: the quiet tunnel outlives idle_timeout twice over" sessions_has "group=relay"
check_not "relay: no idle timeout in the log" mg_log_has "idle timeout"

progress "both tunnels at once"
relay_pid=$LAB_OC_PID
lab_client_route tlsonly
LAB_DIR=$LAB_DIR ip netns exec "$NS_CLIENT" openconnect --passwd-on-stdin --non-inter \
	--user="$LAB_USER" --authgroup="$(lab_label tlsonly)" --servercert "$LAB_PIN" \
	--script /bin/true -i oc1 "https://$LAB_HEADEND4/" <<<"$LAB_PASS" >"$LAB_DIR/oc1.log" 2>&1 &
echo $! >"$LAB_DIR/pids/oc1"
disown $!
check "sessions lists both tunnels" wait_until 30 sessions_count 2
# Each worker announces its own tunnels: the table may take a moment to settle.
check "sessions: the TLS-only tunnel, DTLS blocked" wait_until 5 sessions_has "client=$LAB_SRC4_tlsonly:[0-9]* group=tlsonly .*dtls=blocked"
check "sessions: the relay tunnel still there" wait_until 5 sessions_has "client=$LAB_SRC4_relay:[0-9]* group=relay"
lab_kill oc1
check "relay tunnel unaffected by the other" n_client ping -c1 -W3 "$LAB_LAN4"
check "relay openconnect still running" kill -0 "$relay_pid"

progress "TLS-only group: never offered DTLS"
lab_connect tlsonly
behaviour
check "tlsonly: the proxy carried the tunnel" mg_log_has "tunnel up, group tlsonly"
check "tlsonly: no X-DTLS-* header reached the client" [ "$AC_DTLS_OFFERED" = no ]
check_not "tlsonly: no X-DTLS12 header either" resp_has '^\(\[[^]]*\] \)\{0,1\}X-DTLS'
check "tlsonly: DTLS disabled" log_has "DTLS disabled"
check "tlsonly: tun MTU ($AC_TUN_MTU) = X-CSTP-MTU sent ($AC_CSTP_MTU)" [ "$AC_TUN_MTU" = "$AC_CSTP_MTU" ]
check "tlsonly: X-CSTP-MTU <= group mtu $group_mtu" le "${AC_CSTP_MTU:-99999}" "$group_mtu"
check "tlsonly: no reconnect predicted" [ "$AC_RECONNECT" = no ]
check "tlsonly: the headend sees the client's own address" headend_sees "$LAB_SRC4_tlsonly"
tunnel_works tlsonly
check "tlsonly: sessions lists it" sessions_has "group=tlsonly .*dtls=blocked"
check "tlsonly: connect_rewritten counted" stat_ge tlsonly connect_rewritten 1
# The relay tunnel's headend connection left a session: this one resumed it.
check "tlsonly: the headend TLS session was resumed (upstream_resumed)" stat_ge tlsonly upstream_resumed 1
# Bytes each way reach the table within its one-second refresh.
check "tlsonly: bytes counted each way" wait_until 5 sessions_has "group=tlsonly .*bytes_in=[1-9][0-9]* bytes_out=[1-9]"

progress "TLS-only group over IPv6 to the headend"
LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect tlsonly
behaviour
check "tlsonly/IPv6: the proxy carried the tunnel" mg_log_has "proxy \[$LAB_SRC6_tlsonly\]:[0-9]*: tunnel up, group tlsonly"
check "tlsonly/IPv6: no X-DTLS-* header reached the client" [ "$AC_DTLS_OFFERED" = no ]
check "tlsonly/IPv6: tun MTU = X-CSTP-MTU sent" [ "$AC_TUN_MTU" = "$AC_CSTP_MTU" ]
check "tlsonly/IPv6: the headend sees the client's own address" headend_sees "$LAB_SRC6_tlsonly"
check "tlsonly/IPv6: HTTP download over IPv4, sha256 matches" lab_http_get 4 30
check "tlsonly/IPv6: sessions shows the IPv6 client" sessions_has "client=\[$LAB_SRC6_tlsonly\]:[0-9]* group=tlsonly"

lab_disconnect
progress "a client that never speaks TLS is closed at handshake_timeout, with the reason"
lab_bg silent "$NS_CLIENT" socat -u TCP:"$LAB_HEADEND4":443 /dev/null
check "silent client closed: TLS handshake timeout" wait_until 10 mg_log_has "closed: TLS handshake timeout (2 s)"
lab_kill silent
check "sessions empty after the clients left" wait_until 10 sessions_count 0
check "every close was logged with a reason" mg_log_has "tunnel closed: client disconnected (CSTP DISCONNECT)"
lab_mtugated_stop

# PSK-NEGOTIATE keys DTLS with the TLS session's exporter, which differs on the proxy's two
# legs: the proxy takes it out of the request, and the headend falls back to legacy DTLS.
# ocserv itself on 443 (the ASA shim cannot be combined with PSK, see lib.sh).
progress "ocserv with dtls-psk = true: the relay group gets legacy DTLS through the proxy"
lab_down
lab_up dtls-psk
# With mtugate's marks moved (mark_mask 0x7f0000): TPROXY's mark is 0x100000,
# its local routes in table 4242 (route_table).
conf=$(lab_mtugate_conf proxy=yes queues.mark_mask=0x7f0000 proxy.route_table=4242 proxy.workers=1)
lab_mtugated_start "$conf" || die "mtugated did not start (PSK lab)"
check "psk: the TPROXY routing rule uses mark_mask's bit (0x100000) and table 4242" bash -c \
	"ip netns exec $NS_GW ip rule | grep -q 'fwmark 0x100000/0x100000 lookup 4242' &&
	 ip netns exec $NS_GW ip route show table 4242 | grep -q '^local default dev lo' &&
	 ip netns exec $NS_GW iptables -t mangle -S MTUGATE_PROXY | grep -q -- '--tproxy-mark 0x100000/0x100000'"
# The client's half of the dump: lines openconnect sent (">").
req_has() { grep -q -- "> $1" "$LAB_OC_LOG"; }
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "psk: the proxy carried the tunnel" mg_log_has "tunnel up, group relay"
check "psk: openconnect offered PSK-NEGOTIATE" req_has "X-DTLS-CipherSuite: PSK-NEGOTIATE"
check "psk: the headend answered with a legacy X-DTLS-Session-ID" resp_has "^\(\[[^]]*\] \)\{0,1\}X-DTLS-Session-ID: [0-9a-f]\{64\}"
check_not "psk: no X-DTLS-App-ID reached the client" resp_has "X-DTLS-App-ID"
check_not "psk: no PSK-NEGOTIATE answer" resp_has "X-DTLS-CipherSuite: PSK-NEGOTIATE"
check "psk: X-DTLS-MTU = X-CSTP-MTU (${AC_DTLS_MTU:-} = ${AC_CSTP_MTU:-})" [ "${AC_DTLS_MTU:-}" = "${AC_CSTP_MTU:-x}" ]
check "psk: Established DTLS connection" log_has "Established DTLS connection"
check_not "psk: DTLS did not fail first" grep -q "DTLS handshake failed" "$LAB_OC_LOG"
check "psk: sessions lists it with DTLS established" wait_until 10 sessions_has "group=relay .*dtls=established"
check "psk: the DTLS path counted relayed datagrams for the group" wait_until 10 stat_ge relay dtls_relayed 1
udp_echo() { [[ $(n_client socat -T 3 - "UDP4:$LAB_LAN4:7" <<<psk-udp) == psk-udp ]]; }
check "psk: UDP echo through the tunnel" udp_echo
check "psk: HTTP download over IPv4, sha256 matches" lab_http_get 4 30
lab_connect relay
# ocserv (GnuTLS) takes the session its first tunnel's connection left too.
check "psk: a second tunnel resumed ocserv's own TLS session (upstream_resumed)" stat_ge relay upstream_resumed 1
lab_disconnect
lab_mtugated_stop

# dtls-legacy = false too: ocserv 1.1.6 still answers a request that carries
# X-DTLS-Master-Secret (and, through the proxy, no PSK-NEGOTIATE) with legacy DTLS.
progress "ocserv with dtls-legacy = false: the proxied relay client still gets DTLS"
lab_down
lab_up dtls-psk-only
conf=$(lab_mtugate_conf proxy=yes)
lab_mtugated_start "$conf" || die "mtugated did not start (PSK-only lab)"
lab_connect relay
wait_until 30 lab_dtls_settled || true
check "psk-only: the proxy carried the tunnel" mg_log_has "tunnel up, group relay"
check_not "psk-only: no PSK-NEGOTIATE answer" resp_has "X-DTLS-CipherSuite: PSK-NEGOTIATE"
check "psk-only: a legacy X-DTLS-Session-ID" resp_has "^\(\[[^]]*\] \)\{0,1\}X-DTLS-Session-ID: [0-9a-f]\{64\}"
check "psk-only: Established DTLS connection" log_has "Established DTLS connection"
lab_disconnect
lab_mtugated_stop
lab_down
lab_up dtls-psk

# A group whose clients authenticate with certificates must never meet the proxy: with
# proxy = no, TCP from its clients passes the TPROXY intake. PSK-NEGOTIATE shows it: the
# proxy takes it out of every request it carries, ocserv answers it only to a direct client.
progress "proxy = no: the relay group's clients reach ocserv directly, tlsonly's are proxied"
conf=$(lab_mtugate_conf proxy=yes relay.proxy=no)
lab_mtugated_start "$conf" || die "mtugated did not start (proxy = no)"
intake_passes() { n_gw "$1" -t mangle -S MTUGATE_PROXY | grep -q -- "-s $2 .*-j RETURN"; }
check "proxy = no: the IPv4 intake passes the relay group's clients" intake_passes iptables "$LAB_CLIENTS4_relay"
check "proxy = no: the IPv6 intake passes them too" intake_passes ip6tables "$LAB_CLIENTS6_relay"
groups_say() { mtugatectl groups | grep -Eq "^group\\.$1\\.proxy +$2\$"; }
check "proxy = no: mtugatectl groups shows it" groups_say relay no
check "proxy = no: and yes for the other group" groups_say tlsonly yes
for fam in 4 6; do
	he=LAB_HEADEND$fam
	LAB_CONNECT_TO=${!he} lab_connect relay
	wait_until 30 lab_dtls_settled || true
	behaviour
	check "proxy = no/IPv$fam: ocserv's own PSK-NEGOTIATE answer reached the client" resp_has "X-DTLS-CipherSuite: PSK-NEGOTIATE"
	check "proxy = no/IPv$fam: Established DTLS connection" log_has "Established DTLS connection"
	check "proxy = no/IPv$fam: no proxied session" sessions_count 0
	check "proxy = no/IPv$fam: HTTP download over IPv4, sha256 matches" lab_http_get 4 30
done
check_not "proxy = no: the proxy carried no tunnel" mg_log_has "tunnel up"
lab_connect tlsonly
check "proxy = no: the tlsonly group's client is still proxied" wait_until 10 mg_log_has "tunnel up, group tlsonly"
check "proxy = no: its session is listed" sessions_has "group=tlsonly"
lab_disconnect
lab_mtugated_stop
finish
