#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# A headend behind a port forward on this firewall: clients connect to the gateway's own
# outside address (198.18.1.1, 2001:db8:1::1), the admin's own DNAT (NAT66 for IPv6) sends
# tcp/443 and udp/443 to the headend's private address, which the outside cannot reach
# otherwise. mtugate.conf names both: `address` (private) and `public_address`.
#  1. proxy on, equal DTLS ports, IPv4 and IPv6: the login is proxied (TPROXY sees the public
#     address, mtugate's identity DNAT keeps the admin's DNAT off it, the proxy dials the
#     private address), DTLS goes through the admin's DNAT and is relayed, the MSS clamp works;
#     without public_address (the control) nothing is proxied;
#  2. CSCuh61321 (told 444, answering 443), no proxy: mtugate's port-fix DNAT comes before the
#     admin's and sends the marked flows to the private address's real port.
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"
skip_unless_root

PUB4=198.18.1.1 PUB6=2001:db8:1::1

log_has() { grep -q -- "$1" "$LAB_OC_LOG"; }
mg_log_count_ge() { (($(grep -c -- "$1" "$LAB_DIR/mtugated.log") >= $2)); }
gstat() { # GROUP FIELD
	mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
stat_ge_now() { (($(gstat "$1" "$2") >= $3)); }
# The proxy's process sends its counters every 100 ms: a count may arrive just after the event.
stat_ge() { wait_until 3 stat_ge_now "$@"; }
sessions_count() { [[ $(sessions_kv mtugatectl | grep -c '^session') == "$1" ]]; }
rule_pkts() { # TOOL TABLE CHAIN COMMENT-OR-PATTERN: packets of the matching rules
	n_gw "$1" -t "$2" -nvxL "$3" | awk -v c="$4" 'index($0, c) { s += $1 } END { print s + 0 }'
}

# The admin's own port forward, as a firewall with one public address has it, loaded before
# mtugate's rules (lab_mtugated_stop resets the gateway's firewall: called again after it).
admin_portfwd() {
	local t pub he p
	for t in iptables ip6tables; do
		pub=$PUB4 he=$LAB_HEADEND4
		[[ $t == ip6tables ]] && pub=$PUB6 he=$LAB_HEADEND6
		for p in tcp udp; do
			n_gw "$t" -t nat -A PREROUTING -d "$pub" -p "$p" --dport 443 -m comment \
				--comment "admin-fwd-$p" -j DNAT --to-destination "$he"
		done
		# The private address is reachable from outside through the forward only.
		n_gw "$t" -A FORWARD -i g-out -d "$he" -m conntrack ! --ctstate DNAT -j DROP
	done
	# The public address is on the client's own link: leave from the relay group's address.
	ip -n "$NS_CLIENT" route replace "$PUB4/32" dev c-out src "$LAB_SRC4_relay"
	ip -n "$NS_CLIENT" -6 route replace "$PUB6/128" dev c-out src "$LAB_SRC6_relay"
}

portfwd_conf() { # lab_mtugate_conf options: the lab's config plus public_address
	local conf
	conf=$(lab_mtugate_conf "$@")
	sed -i "/^\[headend\]/a public_address = $PUB4, $PUB6" "$conf"
	echo "$conf"
}

lab_up
admin_portfwd
progress "without mtugate: the forward alone carries a login to the private address"
LAB_CONNECT_TO=$PUB4 lab_connect relay || die "no tunnel through the admin's forward alone"
check "no mtugate: the admin's tcp DNAT took the login" [ "$(rule_pkts iptables nat PREROUTING admin-fwd-tcp)" -ge 1 ]
check_not "no mtugate: the private address is closed from outside" \
	n_client curl -sk --max-time 3 -o /dev/null "https://$LAB_HEADEND4/"
lab_disconnect

progress "proxy on, equal DTLS ports: the login is proxied, DTLS uses the admin's forward"
conf=$(portfwd_conf proxy=yes)
lab_mtugated_start "$conf" || die "mtugated did not start"
n_gw conntrack -F >/dev/null 2>&1 || true
n=0
for fam in 4 6; do
	n=$((n + 1)) pub=PUB$fam tool=iptables
	[[ $fam == 6 ]] && tool=ip6tables
	tcp0=$(rule_pkts "$tool" nat PREROUTING admin-fwd-tcp)
	udp0=$(rule_pkts "$tool" nat PREROUTING admin-fwd-udp)
	LAB_CONNECT_TO=${!pub} lab_connect relay || { fail "IPv$fam: tunnel" "no tunnel"; continue; }
	wait_until 30 lab_dtls_settled || true
	lab_behaviour || true
	check "IPv$fam: the proxy carried the login" wait_until 10 mg_log_count_ge "tunnel up, group relay" "$n"
	check "IPv$fam: sessions lists the proxied tunnel" sessions_count 1
	check "IPv$fam: the admin's tcp DNAT never saw it (mtugate's identity DNAT came first)" \
		[ "$(rule_pkts "$tool" nat PREROUTING admin-fwd-tcp)" = "$tcp0" ]
	check "IPv$fam: mtugate's identity DNAT took it" [ "$(rule_pkts "$tool" nat MTUGATE_DNAT "tcp dpt:443")" -ge 1 ]
	check "IPv$fam: Established DTLS connection" log_has "Established DTLS connection"
	check "IPv$fam: DTLS went through the admin's udp DNAT" \
		[ "$(rule_pkts "$tool" nat PREROUTING admin-fwd-udp)" -gt "$udp0" ]
	check "IPv$fam: dtls_relayed counted (the DTLS path matched the public address)" \
		stat_ge relay dtls_relayed "$n"
	mss0=$(gstat relay mss_rewritten)
	check "IPv$fam: HTTP download over IPv4 through the tunnel, sha256 matches" lab_http_get 4 30
	check "IPv$fam: HTTP download over IPv6 through the tunnel, sha256 matches" lab_http_get 6 30
	check "IPv$fam: the MSS clamp rewrote the inner SYNs" stat_ge relay mss_rewritten $((mss0 + 1))
	lab_disconnect
done
lab_connect_tlsonly() { LAB_CONNECT_TO=$PUB4 lab_connect tlsonly; }
check "tlsonly through the forward" lab_connect_tlsonly
lab_behaviour || true
check "tlsonly: the proxy offered no DTLS" [ "$AC_DTLS_OFFERED" = no ]
check "tlsonly: no reconnect predicted" [ "$AC_RECONNECT" = no ]
lab_disconnect
lab_mtugated_stop

# Without public_address mtugate matches the private address only: the login passes it by.
progress "control: the same without public_address: nothing proxied, the admin's DNAT takes all"
admin_portfwd
lab_mtugated_start "$(lab_mtugate_conf proxy=yes)" || die "mtugated did not start (control)"
tcp0=$(rule_pkts iptables nat PREROUTING admin-fwd-tcp)
LAB_CONNECT_TO=$PUB4 lab_connect relay || fail "control: tunnel" "no tunnel"
check "control: no proxied session" sessions_count 0
check "control: the admin's tcp DNAT took the login" [ "$(rule_pkts iptables nat PREROUTING admin-fwd-tcp)" -gt "$tcp0" ]
lab_disconnect
lab_mtugated_stop

progress "CSCuh61321 behind the forward, no proxy: mtugate's port fix before the admin's DNAT"
lab_down
lab_up cscuh61321
admin_portfwd
conf=$(portfwd_conf proxy=no)
lab_mtugated_start "$conf" || die "mtugated did not start (CSCuh61321)"
n_gw conntrack -F >/dev/null 2>&1 || true
n=0
for fam in 4 6; do
	n=$((n + 1)) pub=PUB$fam ct=ipv4
	[[ $fam == 6 ]] && ct=ipv6
	LAB_CONNECT_TO=${!pub} lab_connect relay || { fail "cscuh/IPv$fam: tunnel" "no tunnel"; continue; }
	wait_until 30 lab_dtls_settled || true
	lab_behaviour || true
	check "cscuh/IPv$fam: DTLS established on the first attempt" [ "$AC_DTLS_ESTABLISHED" = yes ]
	check "cscuh/IPv$fam: dtls_port_rewritten counted" stat_ge relay dtls_port_rewritten "$n"
	check "cscuh/IPv$fam: conntrack shows ${!pub}:$LAB_DTLS_ADV sent to the private :$LAB_DTLS_REAL" bash -c \
		"ip netns exec $NS_GW conntrack -L -f $ct -p udp --orig-port-dst $LAB_DTLS_ADV 2>/dev/null | grep -q 'sport=$LAB_DTLS_REAL '"
	check "cscuh/IPv$fam: HTTP download through the tunnel" lab_http_get 4 30
	lab_disconnect
done
lab_mtugated_stop
finish
