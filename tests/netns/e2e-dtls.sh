#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# DTLS relay, port normalisation (CSCuh61321) and block, with the real peers: ocserv as the
# headend (told 444, answering on 443), openconnect as the client, mtugated on the gateway.
#  1. without mtugate the client's DTLS times out;
#  2. mtugate (relay) normalises the port: DTLS comes up on the first attempt and carries the
#     inner traffic, and the kernel carries the flow (<= 2 datagrams per flow queued);
#  3. dtls = block, drop: no DTLS datagram crosses the gateway, the count says so, the client's
#     retransmissions stay in the kernel, and the tunnel works over TLS;
#  4. the same under a stateful gateway ruleset (FORWARD policy DROP, ESTABLISHED,RELATED and
#     the VPN ports accepted), with dtls_block = reject: the client gives DTLS up at once;
#  5. PSK-NEGOTIATE DTLS 1.2 (X-DTLS-App-ID) is normalised as well, 6. over IPv6 too;
#  7. a relay user behind the NAT address of a blocked junk sender still gets DTLS.
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"
skip_unless_root
command -v conntrack >/dev/null || { echo "$LAB_NAME: conntrack is missing (make deps)" >&2; exit 77; }

log_has() { grep -q -- "$1" "$LAB_OC_LOG"; }

# Packets the kernel handed to user space on the DTLS queue (id_sequence, /proc field 8).
queued() { n_gw awk '$1 == 3 { print $8; f = 1 } END { if (!f) print 0 }' /proc/net/netfilter/nfnetlink_queue; }

# Counting rules (no target) in the gateway: UDP from the client toward the headend as it
# arrives (any port), and as it leaves toward the headend (after DNAT).
count_rules() {
	local t
	for t in iptables ip6tables; do
		n_gw "$t" -t raw -A PREROUTING -i g-out -p udp -m comment --comment mg-in
		n_gw "$t" -t mangle -A POSTROUTING -o g-dmz -p udp -m comment --comment mg-out
	done
}
counter() { # TABLE COMMENT: packets of the IPv4 and IPv6 rule
	local t n=0 v
	for t in iptables ip6tables; do
		v=$(n_gw "$t" -t "$1" -nvxL | awk -v c="/* $2 */" 'index($0, c) { s += $1 } END { print s + 0 }')
		n=$((n + v))
	done
	echo "$n"
}
udp_in() { counter raw mg-in; }
udp_out() { counter mangle mg-out; }

stats_json() { mtugatectl stats --json; }
gstat() { # GROUP FIELD
	stats_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
ge() { [[ $1 -ge $2 ]]; }
le() { [[ $1 -le $2 ]]; }

# The blocked-flow sets outlive the daemon in the gateway: each phase starts with them empty.
forget_blocked() {
	local l
	for l in drop4 drop6 reject4 reject6; do
		n_gw ipset flush "mtugate_dtls_$l" 2>/dev/null || true
	done
}
remembered() { # LIST ADDRESS: the flows of ADDRESS in that set, as ADDRESS,udp:PORT lines
	n_gw ipset list "mtugate_dtls_$1" | grep "^$2,udp:" || true
}

start_mtugate() { # lab_mtugate_conf options
	forget_blocked
	n_gw conntrack -F >/dev/null 2>&1 || true
	lab_mtugated_start "$(lab_mtugate_conf proxy=no "$@")" || die "mtugated did not start"
	count_rules
}

# The relay group's DTLS through mtugate: established on the first attempt, the inner traffic
# over DTLS to the real port, and the flow in the kernel.
relay_checks() { # PHASE
	local p=$1 q0 out0 in0
	q0=$(queued)
	lab_connect relay
	wait_until 20 lab_dtls_settled || true
	lab_behaviour
	check "$p: relay: DTLS established on the first attempt" [ "$AC_DTLS_ESTABLISHED" = yes ]
	check "$p: relay: \"Established DTLS connection\" logged" log_has "Established DTLS connection"
	check_not "$p: relay: no DTLS failure logged" grep -Eq "DTLS handshake (timed out|failed)" "$LAB_OC_LOG"
	check "$p: relay: conntrack shows 444 normalised to 443 (${CT_FAMILY:-ipv4})" bash -c \
		"ip netns exec $NS_GW conntrack -L -f ${CT_FAMILY:-ipv4} -p udp --orig-port-dst $LAB_DTLS_ADV 2>/dev/null | grep -q 'sport=$LAB_DTLS_REAL '"
	out0=$(udp_out) in0=$(udp_in)
	check "$p: relay: ping LAN through the tunnel" n_client ping -c 20 -i 0.05 -s 1000 -W 3 "$LAB_LAN4"
	check "$p: relay: HTTP download through the tunnel" lab_http_get 4 20
	# The inner traffic rode DTLS: the UDP counters toward the headend grew with it.
	check "$p: relay: inner traffic over DTLS ($(( $(udp_out) - out0 )) UDP datagrams to the headend)" \
		ge $(( $(udp_out) - out0 )) 20
	check "$p: relay: dtls_relayed counted" ge "$(gstat relay dtls_relayed)" 1
	check "$p: relay: dtls_port_rewritten counted" ge "$(gstat relay dtls_port_rewritten)" 1
	# Thousands of datagrams went through; the daemon saw the first of the flow (or two).
	check "$p: relay: $(( $(queued) - q0 )) of $(( $(udp_in) - in0 )) datagrams queued" \
		le $(( $(queued) - q0 )) 2
}

# The tlsonly group: DTLS blocked; nothing reaches the headend; the tunnel works over TLS.
block_checks() { # PHASE drop|reject
	local p=$1 how=$2 q0 out0 in0 t0 took
	q0=$(queued) out0=$(udp_out) in0=$(udp_in) t0=$SECONDS
	lab_connect tlsonly
	took=$((SECONDS - t0))
	wait_until 20 lab_dtls_settled || true
	lab_behaviour
	check "$p: tlsonly: DTLS not established" [ "$AC_DTLS_ESTABLISHED" = no ]
	if [[ $how == drop ]]; then
		check "$p: tlsonly: \"DTLS handshake timed out\"" log_has "DTLS handshake timed out"
	else
		check_not "$p: tlsonly: no handshake timeout" log_has "DTLS handshake timed out"
		check "$p: tlsonly: tunnel up at once (${took} s; a timeout takes 14)" le "$took" 5
	fi
	check "$p: tlsonly: ping LAN over TLS" n_client ping -c 3 -i 0.2 -W 3 "$LAB_LAN4"
	check "$p: tlsonly: HTTP download over TLS" lab_http_get 4 20
	check "$p: tlsonly: the client sent DTLS ($(( $(udp_in) - in0 )) datagrams)" ge $(( $(udp_in) - in0 )) 1
	check "$p: tlsonly: no DTLS datagram crossed the gateway ($(( $(udp_out) - out0 )))" \
		[ $(( $(udp_out) - out0 )) = 0 ]
	check "$p: tlsonly: dtls_blocked counted" ge "$(gstat tlsonly dtls_blocked)" 1
	check "$p: tlsonly: the headend never heard of its DTLS" [ "$(gstat tlsonly dtls_relayed)" = 0 ]
	if [[ $how == drop ]]; then
		# The retransmissions were blocked in the kernel, not queued again.
		check "$p: tlsonly: retransmissions ($(( $(udp_in) - in0 ))) blocked in the kernel" \
			ge $(( $(udp_in) - in0 )) 3
	fi
	check "$p: tlsonly: $(( $(queued) - q0 )) datagram(s) queued" le $(( $(queued) - q0 )) 2
	check "$p: tlsonly: the client's flow is remembered (ipset ${how}4)" \
		test -n "$(remembered "${how}4" "$LAB_SRC4_tlsonly")"
}

# A firewall's usual FORWARD: default drop, replies by state, the VPN ports by hand.
stateful_firewall() {
	local t h
	for t in iptables ip6tables; do
		h=$LAB_HEADEND4
		[[ $t == ip6tables ]] && h=$LAB_HEADEND6
		n_gw "$t" -P FORWARD DROP
		n_gw "$t" -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
		n_gw "$t" -A FORWARD -i g-out -d "$h" -p tcp --dport 443 -j ACCEPT
		n_gw "$t" -A FORWARD -i g-out -d "$h" -p udp --dport "$LAB_DTLS_REAL" -j ACCEPT
		n_gw "$t" -A FORWARD -i g-dmz -o g-in -j ACCEPT
	done
}

lab_up cscuh61321
check "the headend advertises 444 and answers on 443" [ "$LAB_DTLS_ADV:$LAB_DTLS_REAL" = 444:443 ]

progress "1: without mtugate"
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "1: client told port 444" log_has "X-DTLS-Port: 444"
check "1: \"DTLS handshake timed out\" without mtugate" log_has "DTLS handshake timed out"
check "1: DTLS not established" [ "$AC_DTLS_ESTABLISHED" = no ]
lab_disconnect

progress "2, 3: mtugated, relay normalises, tlsonly blocked (drop)"
start_mtugate tlsonly.dtls_block=drop
relay_checks 2
lab_disconnect
block_checks 3 drop
lab_disconnect
# A junk datagram first, then DTLS on the same socket: the group's block does not rest on
# the payload, so the flow is blocked from its first datagram (it was once let through).
forget_blocked
n_gw conntrack -F >/dev/null 2>&1 || true
in0=$(udp_in) out0=$(udp_out) bad0=$(stats_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"]["malformed"])')
n_client python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0)); s.connect((sys.argv[2], int(sys.argv[3])))
s.send(b"junk, not DTLS")
for i in range(5): s.send(bytes.fromhex("16fefd000000000000000000") + b"\x00\x40" + bytes(64))
' "$LAB_SRC4_tlsonly" "$LAB_HEADEND4" "$LAB_DTLS_ADV"
bad_seen() { [[ $(stats_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"]["malformed"])') -gt $bad0 ]]; }
check "3: tlsonly: a junk first datagram reached the queue (malformed)" wait_until 10 bad_seen
all_in() { ge $(( $(udp_in) - in0 )) 6; }
check "3: tlsonly: all six datagrams reached the gateway" wait_until 10 all_in
check "3: tlsonly: after it, no datagram crossed to the headend ($(( $(udp_out) - out0 )))" \
	[ "$(( $(udp_out) - out0 ))" = 0 ]
lab_mtugated_stop

progress "4: stateful gateway ruleset, its own policy-routing marks, tlsonly blocked (reject)"
stateful_firewall
# mtugate's bits moved out of the way of the firewall's marks (mwan3's 0x3f00):
# decided 0x10000, normalize 0x20000, blocked 0x40000, reject 0x80000, tag 0x400000.
start_mtugate tlsonly.dtls_block=reject queues.mark_mask=0x7f0000
check "4: MTUGATE_FORWARD (the DTLS block in it) comes before the ruleset's accepts" bash -c \
	"ip netns exec $NS_GW iptables -S FORWARD | sed -n 2p | grep -q 'MTUGATE_FORWARD'"
check "4: the printed rules use only mark_mask's bits" bash -c \
	"'$B/mtugatectl' -c '$LAB_MG_CONF' rules --iptables | grep -q -- '--set-xmark 0x4c0000/0x4f0000' &&
	 ! '$B/mtugatectl' -c '$LAB_MG_CONF' rules --iptables | grep -Eq '0x4d54|0xffff|0x200/'"
for t in iptables ip6tables; do
	# The firewall marks every packet in raw, a hook before mangle's (NF_REPEAT re-runs
	# mangle only); counted where it leaves toward the headend: its mark kept through the
	# daemon's verdict, and no bit outside its 0x3f00 and mtugate's 0x7f0000.
	n_gw "$t" -t raw -I PREROUTING -j MARK --set-xmark 0x1100/0x3f00
	n_gw "$t" -t mangle -A POSTROUTING -o g-dmz -p udp -m mark --mark 0x1100/0x3f00 -m comment --comment mg-own
	n_gw "$t" -t mangle -A POSTROUTING -o g-dmz -p udp -m mark ! --mark 0x0/0xff80c0ff -m comment --comment mg-stray
done
relay_checks 4
# The decision's bits on the connection: tag|normalize|decided, nothing else of the packet's.
check "4: relay: the normalised flow's conntrack mark is 0x430000" bash -c \
	"ip netns exec $NS_GW conntrack -L -f ipv4 -p udp --orig-port-dst $LAB_DTLS_ADV 2>/dev/null | grep -q 'mark=$((0x430000)) '"
check "4: relay: every DTLS datagram to the headend kept the firewall's mark ($(udp_out))" \
	[ "$(counter mangle mg-own)" = "$(udp_out)" ]
check "4: relay: none carries a mark bit outside 0x3f00 and 0x7f0000" [ "$(counter mangle mg-stray)" = 0 ]
lab_disconnect
block_checks 4 reject
lab_disconnect
lab_mtugated_stop
lab_down

progress "5: PSK-NEGOTIATE DTLS, relay"
lab_up cscuh61321 dtls-psk groups=relay
start_mtugate
relay_checks 5
check "5: the client was offered an App-ID" log_has "X-DTLS-App-ID"
lab_disconnect

progress "6: the same over IPv6 (ip6tables rules, DNAT to [headend]:443)"
LAB_CONNECT_TO=$LAB_HEADEND6 CT_FAMILY=ipv6 relay_checks 6
lab_disconnect
lab_mtugated_stop
lab_down

# Issue 17: a junk sender and a relay user behind one NAT address (the client namespace
# masquerades as tlsonly's address, a block group by `clients`). The junk datagram is
# blocked; the relay user's DTLS, in its own flow, still comes up (its group from the
# proxied session's ID), where memory by address blocked it for 30 s.
progress "7: a relay user behind the NAT address of a blocked junk sender"
lab_up cscuh61321
n_client iptables -t nat -A POSTROUTING -o c-out -j SNAT --to-source "$LAB_SRC4_tlsonly"
start_mtugate proxy=yes tlsonly.dtls_block=drop
junk() { # PORT: three junk datagrams from that client port (NATed to tlsonly's address)
	n_client python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[4]))); s.connect((sys.argv[2], int(sys.argv[3])))
for i in range(3): s.send(b"junk, not DTLS")
' "$LAB_SRC4_relay" "$LAB_HEADEND4" "$LAB_DTLS_ADV" "$1"
}
q0=$(queued) out0=$(udp_out)
junk 40001
junk_blocked() { [[ -n $(remembered drop4 "$LAB_SRC4_tlsonly") ]]; }
check "7: the junk flow is blocked and remembered by address and port" wait_until 10 junk_blocked
check "7: only that flow: $(remembered drop4 "$LAB_SRC4_tlsonly" | tr '\n' ' ')" \
	test "$(remembered drop4 "$LAB_SRC4_tlsonly" | wc -l)" = 1
check "7: no junk crossed to the headend" [ "$(( $(udp_out) - out0 ))" = 0 ]
q1=$(queued)
junk 40001
sleep 0.5	# nothing to wait on: the point is that nothing is queued
check "7: the junk flow's next datagrams stay in the kernel ($(( $(queued) - q1 )) queued)" \
	[ "$(( $(queued) - q1 ))" = 0 ]
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "7: the relay user's DTLS is established behind the same address" \
	[ "$AC_DTLS_ESTABLISHED" = yes ]
check "7: relay: ping LAN through the tunnel" n_client ping -c 5 -i 0.1 -W 3 "$LAB_LAN4"
lab_disconnect
n_client iptables -t nat -F POSTROUTING
lab_mtugated_stop

finish
