#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The lab itself, without mtugated: real ocserv and openconnect work through the namespaces,
# and the AnyConnect 3.x check predicts the reconnect exactly where the note says it happens.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

in_pool() { # ADDR POOL_VAR: the assigned address lies in the group's pool (prefix match)
	python3 -c 'import ipaddress,sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$1" "$2"
}
log_has() { grep -q -- "$1" "$LAB_OC_LOG"; }
udp_echo() { [[ $(n_client socat -T 3 - "UDP4:$LAB_LAN4:7" <<<"mtugate-lab") == mtugate-lab ]]; }
verdict_is() { [[ $AC_RECONNECT == "$1" ]]; }

tunnel_works() { # GROUP
	local p4=LAB_POOL4_$1 p6=LAB_POOL6_$1
	check "$1: IPv4 address from its pool ($LAB_TUN4)" in_pool "$LAB_TUN4" "${!p4}"
	check "$1: IPv6 address from its pool ($LAB_TUN6)" in_pool "$LAB_TUN6" "${!p6}"
	check "$1: ping LAN over IPv4" n_client ping -c1 -W3 "$LAB_LAN4"
	check "$1: ping LAN over IPv6" n_client ping -6 -c1 -W3 "$LAB_LAN6"
	check "$1: HTTP download over IPv4, sha256 matches" lab_http_get 4 20
	check "$1: HTTP download over IPv6, sha256 matches" lab_http_get 6 20
	# The LAN sees the tunnel address: the traffic went through the headend, not around it.
	check "$1: the LAN server saw the tunnel address" grep -Eq "^(::ffff:)?$LAB_TUN4 .*GET /$LAB_HTTP_FILE" "$LAB_DIR/http.log"
}

progress "lab 1: plain ocserv, legacy DTLS (as an ASA)"
lab_up
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "relay: DTLS offered" [ "$AC_DTLS_OFFERED" = yes ]
check "relay: DTLS established" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "relay: ocserv announces equal MTUs" [ "$AC_CSTP_MTU" = "$AC_DTLS_MTU" ]
check "relay: no reconnect predicted" verdict_is no
tunnel_works relay
check "relay: UDP echo from the LAN" udp_echo
check "relay: iperf3 bulk TCP for 1 s" n_client iperf3 -c "$LAB_LAN4" -t 1 -p 5201
lab_connect tlsonly
lab_behaviour
tunnel_works tlsonly
check "tlsonly: tun MTU is ocserv's link MTU - 66" [ "$AC_TUN_MTU" = 1434 ]
lab_disconnect
check "disconnect removes oc0" lab_tun_gone
lab_down

progress "lab 2: PSK DTLS, outer MTU 1400"
lab_up dtls-psk groups=relay mtu_out=1400 mtu_dmz=1400
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "psk: DTLS established" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "psk: no X-DTLS-MTU, taken as equal" [ -z "$AC_DTLS_MTU" ]
check "psk: X-DTLS-App-ID offered" log_has "X-DTLS-App-ID"
check "psk: no reconnect predicted" verdict_is no
check "psk: ocserv derives X-CSTP-MTU 1334 from outer MTU 1400" [ "$AC_CSTP_MTU" = 1334 ]
check "psk: ping LAN" n_client ping -c1 -W3 "$LAB_LAN4"
lab_down

progress "lab 3: ASA MTUs (shim), DTLS dropped on the path for tlsonly"
lab_up asa_mtus dtls_block=tlsonly:drop
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "asa relay: X-CSTP-MTU 1380 from the shim" [ "$AC_CSTP_MTU" = 1380 ]
check "asa relay: X-DTLS-MTU 1418 from the shim" [ "$AC_DTLS_MTU" = 1418 ]
check "asa relay: DTLS established through the shim" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "asa relay: no reconnect predicted" verdict_is no
check "asa relay: HTTP download over DTLS" lab_http_get 4 20
LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "asa relay, outer IPv6: DTLS established" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "asa relay, outer IPv6: ping LAN over IPv6" n_client ping -6 -c1 -W3 "$LAB_LAN6"
lab_connect tlsonly
lab_behaviour
check "asa tlsonly: DTLS handshake timed out" log_has "DTLS handshake timed out"
check "asa tlsonly: DTLS not established" [ "$AC_DTLS_ESTABLISHED" = no ]
check "asa tlsonly: tun MTU is the DTLS MTU" [ "$AC_TUN_MTU" = 1418 ]
check "asa tlsonly: reconnect predicted" verdict_is yes
check "asa tlsonly: small packets pass over TLS" n_client ping -c1 -W3 "$LAB_LAN4"
# The note's black hole: full-size segments do not fit the TLS tunnel and no ICMP comes back.
check_not "asa tlsonly: HTTP download black-holed" lab_http_get 4 4
lab_down

progress "lab 4: CSCuh61321 (told 444, answered on 443), REJECT for tlsonly"
lab_up asa_mtus cscuh61321 dtls_block=tlsonly:reject
lab_connect tlsonly
lab_behaviour
check "reject tlsonly: DTLS fails at once, tunnel up" [ "$AC_DTLS_ESTABLISHED" = no ]
check "reject tlsonly: reconnect predicted" verdict_is yes
# What an MSS clamp achieves: segments that fit the TLS MTU pass the ASA shim.
n_client ip route change 198.18.3.0/24 dev oc0 advmss 1300
check "reject tlsonly: HTTP over TLS with MSS 1300" lab_http_get 4 20
lab_connect relay
lab_behaviour
check "cscuh61321: client told port 444" log_has "X-DTLS-Port: 444"
check "cscuh61321: DTLS not established" [ "$AC_DTLS_ESTABLISHED" = no ]
check "cscuh61321: reconnect predicted" verdict_is yes
check "cscuh61321: headend answers DTLS on 443" n_headend iptables -t nat -C PREROUTING -p udp --dport 443 -j REDIRECT --to-ports 444
finish
