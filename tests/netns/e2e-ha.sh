#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# A pair of gateways with the real keepalived (VRRP v3) and conntrackd (FTFW) (issue 20,
# docs/ha.md). Namespaces: client, gateway A (NS_GW), gateway B, headend (ocserv emulating
# CSCuh61321: told 444, answering on 443), LAN, and a switch whose bridges give each leg a
# shared segment for VRRP; a dedicated veth between A and B for conntrackd. mtugated and all
# its rules (nat included) run on both nodes; keepalived (net_namespace, its own pid files)
# moves the three virtual addresses as one sync group, its notify runs conf/ha/notify.sh.
#  1. openconnect (relay group, no proxy) with DTLS through A and its port rewrite; a 50 ms
#     ping and a rate-limited download through the tunnel; A dies hard (SIGKILL of all in it,
#     its links down). B takes over within 3 s, the ping gap is at most 3 s, the download is
#     whole, openconnect did not reconnect (same PID, address, MTU, no new "CSTP connected"
#     or "Established DTLS connection"), B carries the synced entry and mark with rising
#     counters and its DTLS queue saw nothing, a new TCP connection is MSS-clamped by B.
#     Failback: A returns as after a reboot, stays backup (nopreempt) while conntrackd
#     resynchronises it, and takes the tunnel back when B stops, again without a reconnect.
#  2. Negative control: UDP left out of conntrackd's filter. B does not know the DTLS flow;
#     the headend speaks first (a ping from the LAN) and the self-repair (dtls_repaired)
#     brings DTLS back on B without a reconnect.
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"
skip_unless_root
# shellcheck source=tests/netns/ha.sh
. "$(dirname "$0")/ha.sh"

progress "1: failover with UDP in conntrackd's sync"
ha_up udp=yes 1
connect_marks 1
check "1: B holds the synced DTLS entry before the failover" wait_until 5 has_dtls_entry b
check "1: with A's mark (0x4d540003)" has_mark b
q0=$(queued b) mss0=$(gstat b relay mss_rewritten)
n_client ping -i 0.05 -c 280 -W 1 "$LAB_LAN4" >"$LAB_DIR/ping1.log" 2>&1 &
ping_pid=$!
n_client curl -s -g --limit-rate 400k --max-time 60 -o "$LAB_DIR/dl1.bin" "http://$LAB_LAN4/$LAB_HTTP_FILE" &
curl_pid=$!
dl_started() { [[ $(stat -c %s "$LAB_DIR/dl1.bin" 2>/dev/null || echo 0) -ge 800000 ]]; }
wait_until 20 dl_started || true
p0=$(entry_packets b)
kill_a
progress "A killed; B holds the virtual addresses after $TAKEOVER_MS ms"
check "1: B takes over within 3 s ($TAKEOVER_MS ms)" le "$TAKEOVER_MS" 3000
check "1: B's notify ran (primary)" wait_until 5 grep -q primary "$LAB_DIR/notify-b.log"
wait "$curl_pid" || true
wait "$ping_pid" || true
check "1: the download completed, SHA-256 right" [ "$(sha256sum <"$LAB_DIR/dl1.bin" | cut -d' ' -f1)" = "$LAB_HTTP_SHA256" ]
gap=$(ping_gap_ms "$LAB_DIR/ping1.log")
check "1: the 50 ms ping's largest gap is at most 3 s ($gap ms, $(ping_answers "$LAB_DIR/ping1.log") answers)" le "$gap" 3000
tunnel_same 1
check "1: B carries the same entry and mark" has_mark b
check "1: its counters rose on B ($p0 -> $(entry_packets b))" ge "$(entry_packets b)" $((${p0:-0} + 20))
check "1: B's DTLS queue saw nothing ($(( $(queued b) - q0 )) queued)" [ "$(( $(queued b) - q0 ))" = 0 ]
check "1: B made no DTLS decision (no rewrite, no repair)" \
	[ "$(gstat b relay dtls_port_rewritten)$(gstat b relay dtls_repaired)" = 00 ]
check "1: a new TCP connection after the failover" lab_http_get 4 30
check "1: ... MSS-clamped by B (mss_rewritten $mss0 -> $(gstat b relay mss_rewritten))" \
	ge "$(gstat b relay mss_rewritten)" $((mss0 + 1))

# Failback: A comes back as after a reboot (no conntrack entries, no rules), stays backup
# (nopreempt) while conntrackd resynchronises it (the backup notify's -n), then B is stopped
# for maintenance (keepalived's SIGTERM: priority 0) and A takes the tunnel back.
progress "1: failback: A returns"
for l in a-out a-dmz a-in a-sync; do ip -n "$NS_GW" link set "$l" up; done
n_gw conntrack -F >/dev/null 2>&1 || true
for t in iptables ip6tables; do
	for tb in mangle nat filter; do n_gw "$t" -t "$tb" -F; n_gw "$t" -t "$tb" -X; done
done
ip -n "$NS_GW" route replace 192.0.2.0/24 via "$LAB_HEADEND4"	# gone with the links
ha_mtugated a
ha_conntrackd a udp=yes
l0=$(wc -l <"$LAB_DIR/keepalived-a.log")
ha_keepalived a 150
check "1: A returns as backup (nopreempt)" wait_until 10 ka_backup a "$l0"
check "1: B keeps the virtual addresses" has_vips b
check "1: A's conntrackd resynchronised the DTLS flow, with its mark" wait_until 10 has_mark a
qa=$(queued a)
n_client ping -i 0.05 -c 160 -W 1 "$LAB_LAN4" >"$LAB_DIR/ping3.log" 2>&1 &
ping_pid=$!
wait_until 5 answered "$LAB_DIR/ping3.log" 10 || true
t0=$(date +%s%N)
kill -TERM "$(<"$LAB_DIR/pids/keepalived-b")"
wait_until 10 has_vips a || true
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$ping_pid" || true
check "1: A takes the addresses back when B stops ($ms ms)" le "$ms" 3000
gap=$(ping_gap_ms "$LAB_DIR/ping3.log")
check "1: failback: the ping's largest gap is at most 3 s ($gap ms, $(ping_answers "$LAB_DIR/ping3.log") answers)" \
	le "$gap" 3000
check "1: failback: A's DTLS queue saw nothing ($(( $(queued a) - qa )) queued)" [ "$(( $(queued a) - qa ))" = 0 ]
check "1: failback: A made no DTLS decision" \
	[ "$(gstat a relay dtls_port_rewritten)$(gstat a relay dtls_repaired)" = 00 ]
check "1: failback: DTLS carries the tunnel on A" n_client ping -c 5 -i 0.1 -W 2 "$LAB_LAN4"
tunnel_same "1 (failback)"
lab_disconnect
ha_down

progress "2: negative control, UDP left out of conntrackd's filter"
ha_up udp=no 2
connect_marks 2
has_tcp_entry() {
	[[ $(n_b conntrack -L -p tcp 2>/dev/null) =~ src=$LAB_SRC4_relay\ dst=$LAB_HEADEND4\ sport=[0-9]+\ dport=443\  ]]
}
check "2: B holds the TLS connection's entry (TCP synced)" wait_until 5 has_tcp_entry
check_not "2: B does not know the DTLS flow (UDP not synced)" has_dtls_entry b
rep0=$(gstat b relay dtls_repaired)
# The LAN pings the client: downstream first, so the headend speaks first after the failover.
n_lan ping -i 0.05 -c 200 -W 1 "$LAB_TUN4" >"$LAB_DIR/ping2.log" 2>&1 &
ping_pid=$!
wait_until 10 answered "$LAB_DIR/ping2.log" 10 || true
kill_a
progress "A killed; B holds the virtual addresses after $TAKEOVER_MS ms"
check "2: B takes over within 3 s ($TAKEOVER_MS ms)" le "$TAKEOVER_MS" 3000
wait "$ping_pid" || true
repaired() { [[ $(gstat b relay dtls_repaired) -gt $rep0 ]]; }
check "2: B repaired the flow the headend restarted (dtls_repaired $(gstat b relay dtls_repaired))" repaired
check "2: B's entry: from 443, replies to 444" test -n "$(repaired_entry b)"
gap=$(ping_gap_ms "$LAB_DIR/ping2.log")
check "2: the ping's largest gap is at most 3 s ($gap ms, $(ping_answers "$LAB_DIR/ping2.log") answers)" le "$gap" 3000
check "2: the LAN still reaches the client over DTLS" n_lan ping -c 5 -i 0.1 -W 2 "$LAB_TUN4"
check "2: the client reaches the LAN" n_client ping -c 5 -i 0.1 -W 2 "$LAB_LAN4"
tunnel_same 2
lab_disconnect
ha_down
finish
