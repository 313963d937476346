#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# Self-repair of a DTLS flow the gateway does not know (issue 20). The CSCuh61321 lab (told 444,
# answering on 443), openconnect in the relay group through mtugated, DTLS up with the port
# rewrite; then `conntrack -F` in the gateway and the headend speaks first (a ping from the LAN
# to the client's tunnel address). Without the repair its datagram would reach the client from
# port 443 and the client's connected socket would drop it until DPD gave DTLS up. With it the
# daemon marks that datagram and nat POSTROUTING sends it from 444: the client's next datagrams
# are the new entry's replies, DTLS keeps working, no new handshake, counted (dtls_repaired).
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"
skip_unless_root
command -v conntrack >/dev/null || { echo "$LAB_NAME: conntrack is missing (make deps)" >&2; exit 77; }

gstat() { # GROUP FIELD
	mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
nlog() { grep -c -- "$1" "$LAB_OC_LOG" || true; }
# The gateway's UDP entries between the client and the headend, one line each.
ct_dtls() { n_gw conntrack -L -p udp 2>/dev/null | grep "$LAB_HEADEND4" | grep "$LAB_SRC4_relay" || true; }
# An entry the headend started from 443 whose replies come to 444: the repaired one.
repaired_entry() {
	ct_dtls | grep -E "^udp .* src=$LAB_HEADEND4 dst=$LAB_SRC4_relay sport=$LAB_DTLS_REAL dport=[0-9]+ .* src=$LAB_SRC4_relay dst=$LAB_HEADEND4 sport=[0-9]+ dport=$LAB_DTLS_ADV "
}
# Replies seen on it (conntrack accounting): the client's datagrams matched it.
reply_packets() { repaired_entry | sed -n 's/.*dport=[0-9]* packets=[0-9]* bytes=[0-9]* .*dport=[0-9]* packets=\([0-9]*\) .*/\1/p' | head -1; }
replies_ge() { local n; n=$(reply_packets); [[ -n $n && $n -ge $1 ]]; }

lab_up cscuh61321 groups=relay
lab_sysctl "$NS_GW" net.netfilter.nf_conntrack_acct=1
lab_mtugated_start "$(lab_mtugate_conf proxy=no)" || die "mtugated did not start"
check "the rules carry the SNAT of a restarted flow" bash -c \
	"ip netns exec $NS_GW iptables -t nat -S MTUGATE_SNAT | grep -q -- '--sport $LAB_DTLS_REAL .* -j SNAT --to-source $LAB_HEADEND4:$LAB_DTLS_ADV'"
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "DTLS established through the gateway (port rewrite)" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "ping the LAN through the tunnel" n_client ping -c 5 -i 0.1 -W 3 "$LAB_LAN4"
pid0=$LAB_OC_PID est0=$(nlog "Established DTLS connection") cstp0=$(nlog "CSTP connected")
mtu0=$(n_client cat /sys/class/net/oc0/mtu)
rep0=$(gstat relay dtls_repaired)

# Flush, and at once let the headend speak first. A keepalive of the client's may win the race
# now and then (then the DNAT path decides the flow, as before): try again, at most 3 times.
for try in 1 2 3; do
	n_gw conntrack -F >/dev/null 2>&1
	n_lan ping -c 1 -W 3 "$LAB_TUN4" >/dev/null 2>&1 || true
	[[ -n $(repaired_entry) ]] && break
	progress "try $try: the client spoke first after the flush; again"
done
progress "after the flush: $(ct_dtls | tr -s ' ' | cut -c1-220)"
check "after conntrack -F the headend's datagram started a repaired entry (443 -> client, replies to 444)" \
	test -n "$(repaired_entry)"
check "the repaired entry carries the normalize mark (0x4d540003)" bash -c \
	"ip netns exec $NS_GW conntrack -L -p udp 2>/dev/null | grep 'src=$LAB_HEADEND4 dst=$LAB_SRC4_relay sport=$LAB_DTLS_REAL' | grep -q 'mark=$((0x4d540003)) '"
repaired_ge() { [[ $(gstat relay dtls_repaired) -gt $1 ]]; }
check "dtls_repaired counted" wait_until 5 repaired_ge "$rep0"
check "LAN -> client tunnel address answers over the repaired flow" n_lan ping -c 10 -i 0.1 -W 3 "$LAB_TUN4"
check "the client's datagrams are the entry's replies ($(reply_packets) so far)" wait_until 5 replies_ge 10
check_not "no second entry from the client to 444 (no DNAT clash)" bash -c \
	"ip netns exec $NS_GW conntrack -L -p udp --orig-port-dst $LAB_DTLS_ADV 2>/dev/null | grep -q 'src=$LAB_SRC4_relay'"
r1=$(reply_packets)
check "HTTP download through the tunnel after the repair" lab_http_get 4 30
check "the download rode DTLS on the repaired entry ($(( $(reply_packets) - r1 )) datagrams)" \
	replies_ge $((r1 + 100))
check "openconnect still the same process" kill -0 "$pid0"
check "no new \"Established DTLS connection\" (no DTLS handshake)" [ "$(nlog "Established DTLS connection")" = "$est0" ]
check "no new \"CSTP connected\" (no reconnect)" [ "$(nlog "CSTP connected")" = "$cstp0" ]
check_not "no DTLS failure logged" grep -Eq "DTLS handshake (timed out|failed)|DTLS Dead Peer Detection" "$LAB_OC_LOG"
check "tun MTU unchanged ($mtu0)" [ "$(n_client cat /sys/class/net/oc0/mtu)" = "$mtu0" ]
lab_disconnect
lab_mtugated_stop
finish
