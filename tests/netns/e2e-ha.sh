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
for t in keepalived conntrackd conntrack ipset; do
	command -v "$t" >/dev/null || { echo "$LAB_NAME: $t is missing (make deps)" >&2; exit 77; }
done

NS_B=mg$$-gwb NS_SW=mg$$-sw
n_b() { pretty gwb "$*"; ip netns exec "$NS_B" "$@"; }
VIP_OUT=198.18.1.1 VIP_DMZ=198.18.2.1 VIP_IN=198.18.3.1
ADVERT=0.3	# VRRP advert_int (<= 0.5 s): a dead master is seen in 3 adverts and a skew

ha_ns() { if [[ $1 == a ]]; then echo "$NS_GW"; else echo "$NS_B"; fi; }
ha_kill_ns() { local pid; for pid in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done; }
lab_cleanup_hook() {
	local ns
	for ns in "$NS_B" "$NS_SW"; do ha_kill_ns "$ns"; ip netns del "$ns" 2>/dev/null; done
	return 0
}
ha_down() { lab_cleanup_hook; lab_down; }

# A leg: NS's IF on the switch's bridge BR.
ha_port() { # NS IF BR
	local p=s-$2
	ip link add "$2" netns "$1" type veth peer name "$p" netns "$NS_SW"
	ip -n "$NS_SW" link set "$p" master "$3" up
	ip -n "$1" link set "$2" up
}

ha_topology() {
	local ns n br i
	for ns in "$NS_CLIENT" "$NS_GW" "$NS_B" "$NS_HEADEND" "$NS_LAN" "$NS_SW"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	for br in br-out br-dmz br-in; do
		ip -n "$NS_SW" link add "$br" type bridge mcast_snooping 0
		ip -n "$NS_SW" link set "$br" up
	done
	ha_port "$NS_CLIENT" c-out br-out
	ha_port "$NS_HEADEND" h-dmz br-dmz
	ha_port "$NS_LAN" l-in br-in
	lab_addr "$NS_CLIENT" c-out "$LAB_SRC4_relay/24" "$LAB_SRC6_relay/64"
	lab_addr "$NS_HEADEND" h-dmz "$LAB_HEADEND4/24" "$LAB_HEADEND6/64"
	lab_addr "$NS_LAN" l-in "$LAB_LAN4/24" "$LAB_LAN6/64"
	for n in a b; do
		ns=$(ha_ns "$n") i=11
		[[ $n == b ]] && i=12
		ha_port "$ns" "$n-out" br-out
		ha_port "$ns" "$n-dmz" br-dmz
		ha_port "$ns" "$n-in" br-in
		lab_addr "$ns" "$n-out" "198.18.1.$i/24" "2001:db8:1::$i/64"
		lab_addr "$ns" "$n-dmz" "198.18.2.$i/24" "2001:db8:2::$i/64"
		lab_addr "$ns" "$n-in" "198.18.3.$i/24" "2001:db8:3::$i/64"
		lab_sysctl "$ns" net.ipv4.ip_forward=1
		lab_sysctl "$ns" net.ipv6.conf.all.forwarding=1
		lab_sysctl "$ns" net.netfilter.nf_conntrack_acct=1 2>/dev/null || true
		ip -n "$ns" route add 192.0.2.0/24 via "$LAB_HEADEND4"
	done
	# conntrackd's dedicated link.
	ip link add a-sync netns "$NS_GW" type veth peer name b-sync netns "$NS_B"
	ip -n "$NS_GW" addr add 198.18.9.1/30 dev a-sync
	ip -n "$NS_B" addr add 198.18.9.2/30 dev b-sync
	ip -n "$NS_GW" link set a-sync up
	ip -n "$NS_B" link set b-sync up
	lab_sysctl "$NS_HEADEND" net.ipv4.ip_forward=1
	ip -n "$NS_HEADEND" route add default via "$VIP_DMZ"
	ip -n "$NS_LAN" route add default via "$VIP_IN"
	lab_client_route relay
}

# lab_up's steps around its single-gateway topology.
ha_lab_up() {
	LAB_REKEY='' LAB_GROUPS=relay LAB_DTLS_PSK=0 LAB_DTLS_BLOCK='' LAB_ASA='' LAB_NO_UDP=''
	LAB_CSCUH=1 LAB_DTLS_ADV=444 LAB_DTLS_REAL=443 LAB_ROUTES=0 LAB_HEADERS=0:0 LAB_POST_AUTH_XML=0
	LAB_MTU_OUT=1500 LAB_MTU_DMZ=1500 LAB_MTU_IN=1500
	lab_tun_dev
	LAB_DIR=$(mktemp -d /tmp/mtugate-lab.XXXXXX)
	chmod 0755 "$LAB_DIR"
	mkdir -p "$LAB_DIR/pids"
	progress "namespaces $NS_CLIENT $NS_GW $NS_B $NS_HEADEND $NS_LAN $NS_SW"
	ha_topology
	lab_cscuh61321
	lab_certs
	lab_ocserv_conf
	lab_bg ocserv "$NS_HEADEND" ocserv -f -d 2 -c "$LAB_DIR/ocserv/ocserv.conf"
	wait_until 10 lab_listening "$NS_HEADEND" tcp 443 || die "headend not listening: $(tail -5 "$LAB_DIR/ocserv.log")"
	wait_until 10 lab_listening "$NS_HEADEND" udp "$LAB_DTLS_ADV" || die "ocserv has no UDP socket"
	lab_lan_services
	LAB_UP=1
}

ha_ctl() { # NODE ARGS...: mtugatectl on that node's daemon
	local n=$1; shift
	ip netns exec "$(ha_ns "$n")" "$B/mtugatectl" -s "$LAB_DIR/mtugate-$n/mtugate.sock" "$@"
}
ha_ready() { [[ -f $LAB_DIR/pids/mtugated-$1 ]] && ! lab_dead "$(<"$LAB_DIR/pids/mtugated-$1")" || return 255; ha_ctl "$1" ping; }

# mtugated and every printed rule on a node, all the time (the lab's conf, its own socket).
ha_mtugated() { # NODE
	local n=$1 ns conf d
	ns=$(ha_ns "$n") d=$LAB_DIR/mtugate
	[[ -d $d ]] || d=$(dirname "$(lab_mtugate_conf proxy=no)")
	rm -rf "$LAB_DIR/mtugate-$n"
	cp -a "$d" "$LAB_DIR/mtugate-$n"
	conf=$LAB_DIR/mtugate-$n/mtugate.conf
	sed -i "s|$d/|$LAB_DIR/mtugate-$n/|g" "$conf"
	lab_bg "mtugated-$n" "$ns" "$B/mtugated" -f -c "$conf"
	wait_until 10 ha_ready "$n" || die "mtugated on $n did not start: $(tail -5 "$LAB_DIR/mtugated-$n.log")"
	"$B/mtugatectl" -c "$conf" rules --ipset | ip netns exec "$ns" ipset restore -exist
	"$B/mtugatectl" -c "$conf" rules --iptables | ip netns exec "$ns" iptables-restore --noflush
	"$B/mtugatectl" -c "$conf" rules --ip6tables | ip netns exec "$ns" ip6tables-restore --noflush
}

# conntrackd, FTFW over the dedicated link, its Filter from `mtugatectl rules --conntrackd`
# in the node's namespace (its own addresses) with the virtual ones; udp=no leaves UDP out.
ha_conntrackd() { # NODE udp=yes|no
	local n=$1 ns self peer f
	ns=$(ha_ns "$n") self=198.18.9.1 peer=198.18.9.2
	[[ $n == b ]] && self=198.18.9.2 peer=198.18.9.1
	f=$(ip netns exec "$ns" "$B/mtugatectl" -c "$LAB_DIR/mtugate-$n/mtugate.conf" rules \
		--conntrackd --ignore "$VIP_OUT" --ignore "$VIP_DMZ" --ignore "$VIP_IN" | sed 's/^/\t/')
	[[ $2 == udp=no ]] && f=$(sed '/^\t\t\tUDP$/d' <<<"$f")
	cat >"$LAB_DIR/conntrackd-$n.conf" <<EOF
Sync {
	Mode FTFW {
		DisableExternalCache On
	}
	UDP {
		IPv4_address $self
		IPv4_Destination_Address $peer
		Port 3780
		Interface $n-sync
		Checksum on
	}
}
General {
	HashSize 8192
	HashLimit 65536
	Syslog off
	LogFile $LAB_DIR/conntrackd-$n.file.log
	LockFile $LAB_DIR/conntrackd-$n.lock
	UNIX {
		Path $LAB_DIR/conntrackd-$n.ctl
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
$f
}
EOF
	rm -f "$LAB_DIR/conntrackd-$n.lock" "$LAB_DIR/conntrackd-$n.ctl"
	lab_bg "conntrackd-$n" "$ns" conntrackd -C "$LAB_DIR/conntrackd-$n.conf"
	wait_until 10 test -S "$LAB_DIR/conntrackd-$n.ctl" || die "conntrackd on $n: $(tail -5 "$LAB_DIR/conntrackd-$n.log")"
	# The shipped notify script, told this node's conntrackd.
	printf '#!/bin/sh\necho "$(date +%%s.%%N) $1" >>%s\nCONNTRACKD_CONFIG=%s exec %s "$@" >>%s 2>&1\n' \
		"$LAB_DIR/notify-$n.log" "$LAB_DIR/conntrackd-$n.conf" "$LAB_ROOT/conf/ha/notify.sh" \
		"$LAB_DIR/notify-$n.log" >"$LAB_DIR/notify-$n.sh"
	chmod 0755 "$LAB_DIR/notify-$n.sh"
}

ha_keepalived_conf() { # NODE PRIORITY
	local n=$1 ns vi name vip id=50
	ns=$(ha_ns "$n")
	# net_namespace is a top-level keyword (before global_defs), not one of global_defs'.
	printf 'net_namespace %s\nglobal_defs {\n\trouter_id ha-%s\n\tvrrp_version 3\n}\n' "$ns" "$n"
	printf 'vrrp_sync_group MTUGATE {\n\tgroup {\n\t\tOUTSIDE\n\t\tDMZ\n\t\tINSIDE\n\t}\n'
	for vi in primary:master backup:backup fault:fault; do
		printf '\tnotify_%s "%s %s"\n' "${vi#*:}" "$LAB_DIR/notify-$n.sh" "${vi%%:*}"
	done
	printf '}\n'
	for vi in OUTSIDE:out:$VIP_OUT DMZ:dmz:$VIP_DMZ INSIDE:in:$VIP_IN; do
		name=${vi%%:*} vip=${vi##*:} id=$((id + 1))
		vi=${vi#*:}
		printf 'vrrp_instance %s {\n\tstate BACKUP\n\tnopreempt\n\tinterface %s-%s\n' "$name" "$n" "${vi%%:*}"
		printf '\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int %s\n' "$id" "$2" "$ADVERT"
		printf '\tvirtual_ipaddress {\n\t\t%s/24 dev %s-%s\n\t}\n}\n' "$vip" "$n" "${vi%%:*}"
	done
}

ha_keepalived() { # NODE PRIORITY
	local n=$1
	ha_keepalived_conf "$n" "$2" >"$LAB_DIR/keepalived-$n.conf"
	keepalived --dont-fork --log-console --log-detail --vrrp -f "$LAB_DIR/keepalived-$n.conf" \
		-p "$LAB_DIR/keepalived-$n.pid" -r "$LAB_DIR/keepalived-$n-vrrp.pid" \
		-c "$LAB_DIR/keepalived-$n-checkers.pid" >>"$LAB_DIR/keepalived-$n.log" 2>&1 </dev/null &
	echo $! >"$LAB_DIR/pids/keepalived-$n"
	disown $!
}

# (No `| grep -q` on a longer output: under pipefail the writer's SIGPIPE fails the pipe.)
has_vips() { # NODE
	local a
	a=$(ip -n "$(ha_ns "$1")" -4 addr show)
	[[ $a == *" $VIP_OUT/"* && $a == *" $VIP_DMZ/"* && $a == *" $VIP_IN/"* ]]
}
settled_a() { # A holds the addresses and B none, without a break for 1.5 s
	local end=$(($(date +%s%N) + 1500000000))
	while (($(date +%s%N) < end)); do
		has_vips a && ! has_vips b || return 1
		sleep 0.1
	done
}
ka_backup() { # NODE [LOG_LINES_BEFORE]: all three instances entered BACKUP since then
	[[ $(tail -n +$((${2:-0} + 1)) "$LAB_DIR/keepalived-$1.log" | grep -c "Entering BACKUP STATE") -ge 3 ]]
}

# The whole pair: A master, B backup, conntrackd on both before any traffic.
ha_up() { # udp=yes|no
	ha_lab_up
	ha_mtugated a
	ha_mtugated b
	ha_conntrackd a "$1"
	ha_conntrackd b "$1"
	ha_keepalived a 150
	wait_until 10 has_vips a || die "A did not become master: $(tail -5 "$LAB_DIR/keepalived-a.log")"
	ha_keepalived b 100
	wait_until 10 ka_backup b || die "B did not enter BACKUP: $(tail -5 "$LAB_DIR/keepalived-b.log")"
	# B starts in BACKUP, and on a loaded machine may still claim the addresses
	# once before it hears A: the pair is settled when A alone has held them for
	# longer than B's master-down interval (3 adverts and its skew).
	wait_until 20 settled_a || true
	check "$2: A holds the virtual addresses" has_vips a
	check_not "$2: B does not" has_vips b
}

gstat() { # NODE GROUP FIELD
	ha_ctl "$1" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$2" "$3"
}
queued() { # NODE: packets the kernel gave the node's DTLS queue (3)
	ip netns exec "$(ha_ns "$1")" awk '$1 == 3 { print $8; f = 1 } END { if (!f) print 0 }' /proc/net/netfilter/nfnetlink_queue
}
nlog() { grep -c -- "$1" "$LAB_OC_LOG" || true; }
ge() { [[ $1 -ge $2 ]]; }
le() { [[ $1 -le $2 ]]; }
# The client's normalised DTLS flow on a node: to 444, replies from 443.
dtls_entry() { # NODE
	ip netns exec "$(ha_ns "$1")" conntrack -L -p udp 2>/dev/null |
		grep -E "src=$LAB_SRC4_relay dst=$LAB_HEADEND4 sport=[0-9]+ dport=$LAB_DTLS_ADV .*src=$LAB_HEADEND4 dst=$LAB_SRC4_relay sport=$LAB_DTLS_REAL " || true
}
entry_packets() { dtls_entry "$1" | sed -n 's/.* dport=[0-9]* packets=\([0-9]*\) .*/\1/p' | head -1; }
# The entry the headend restarted, repaired on a node (443 -> client, replies to 444).
repaired_entry() {
	ip netns exec "$(ha_ns "$1")" conntrack -L -p udp 2>/dev/null |
		grep -E "src=$LAB_HEADEND4 dst=$LAB_SRC4_relay sport=$LAB_DTLS_REAL dport=[0-9]+ .*src=$LAB_SRC4_relay dst=$LAB_HEADEND4 sport=[0-9]+ dport=$LAB_DTLS_ADV " || true
}
has_dtls_entry() { [[ -n $(dtls_entry "$1") ]]; }
# The entry carries the normalize decision, conntrack's decimal 0x4d540003.
has_mark() { [[ $(dtls_entry "$1") == *"mark=$((0x4d540003)) "* ]]; }

# A dies hard: SIGKILL of everything in its namespace, its links down. Sets TAKEOVER_MS.
# keepalived's parent stays in the host's namespace: stopped first, it neither respawns its
# VRRP child nor lets the child's parent-death signal (SIGTERM) make it leave gracefully
# with a priority 0 advertisement, which would hand over at once.
kill_a() {
	local t0 l ka
	ka=$(<"$LAB_DIR/pids/keepalived-a")
	t0=$(date +%s%N)
	kill -STOP "$ka" 2>/dev/null || true
	ha_kill_ns "$NS_GW"
	kill -KILL "$ka" 2>/dev/null || true
	for l in a-out a-dmz a-in a-sync; do ip -n "$NS_GW" link set "$l" down; done
	wait_until 10 has_vips b || true
	TAKEOVER_MS=$((($(date +%s%N) - t0) / 1000000))
}

# The largest gap between answers (icmp_seq, 50 ms apart) in a ping -c log, in ms, the
# stretch after the last answer included (ping -w would stop at the first ICMP error).
ping_gap_ms() {
	awk -F'icmp_seq=' '/bytes from/ { split($2, a, " "); s = a[1] + 0; if (s - p > g) g = s - p; p = s }
		/packets transmitted/ { n = $1 + 0 } END { if (n + 1 - p > g) g = n + 1 - p; print g * 50 }' "$1"
}
ping_answers() { grep -c 'bytes from' "$1" || true; }
answered() { [[ $(ping_answers "$1") -ge $2 ]]; }

tunnel_same() { # PHASE: no reconnect since the marks
	local p=$1
	check "$p: openconnect is the same process" kill -0 "$PID0"
	check "$p: no new \"CSTP connected\" (no reconnect)" [ "$(nlog "CSTP connected")" = "$CSTP0" ]
	check "$p: no new \"Established DTLS connection\"" [ "$(nlog "Established DTLS connection")" = "$EST0" ]
	check_not "$p: no DTLS failure or DPD timeout logged" grep -Eq \
		"DTLS handshake (timed out|failed)|DTLS Dead Peer Detection detected dead peer|Disabling DTLS" "$LAB_OC_LOG"
	check "$p: tun address unchanged ($LAB_TUN4)" bash -c "ip netns exec $NS_CLIENT ip -4 addr show dev oc0 | grep -q ' $LAB_TUN4/'"
	check "$p: tun MTU unchanged ($MTU0)" [ "$(n_client cat /sys/class/net/oc0/mtu)" = "$MTU0" ]
}

connect_marks() { # PHASE
	lab_connect relay
	wait_until 20 lab_dtls_settled || true
	lab_behaviour
	check "$1: DTLS established through A" [ "$AC_DTLS_ESTABLISHED" = yes ]
	check "$1: A normalised 444 to 443 (the flow's entry)" has_dtls_entry a
	check "$1: A marked it (0x4d540003)" has_mark a
	PID0=$LAB_OC_PID EST0=$(nlog "Established DTLS connection") CSTP0=$(nlog "CSTP connected")
	MTU0=$(n_client cat /sys/class/net/oc0/mtu)
}

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
