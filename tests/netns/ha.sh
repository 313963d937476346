# shellcheck shell=bash disable=SC2034,SC2317,SC2153,SC2154,SC2016
# A pair of gateways with the real keepalived and conntrackd, for e2e-ha.sh and
# e2e-ha-proxy.sh (docs/ha.md): the namespaces (client, gateway A = NS_GW, gateway B,
# headend, LAN, and a switch whose bridges give each leg a shared segment for VRRP, a
# dedicated veth between A and B for conntrackd), mtugated and every printed rule on both
# nodes, conntrackd (FTFW) and keepalived (VRRP v3, a sync group of the three virtual
# addresses, conf/ha/notify.sh), A's hard death, and the checks both scripts share.
# Sourced after lib.sh. HA_MTUGATE: lab_mtugate_conf's options for both nodes (default
# proxy=no); with the proxy on, the nodes also get the TPROXY routes.
for t in keepalived conntrackd conntrack ipset; do
	command -v "$t" >/dev/null || { echo "$LAB_NAME: $t is missing (make deps)" >&2; exit 77; }
done

NS_B=mg$$-gwb NS_SW=mg$$-sw
n_b() { pretty gwb "$*"; ip netns exec "$NS_B" "$@"; }
VIP_OUT=198.18.1.1 VIP_DMZ=198.18.2.1 VIP_IN=198.18.3.1
ADVERT=0.3	# VRRP advert_int (<= 0.5 s): a dead master is seen in 3 adverts and a skew

ha_ns() { if [[ $1 == a ]]; then echo "$NS_GW"; else echo "$NS_B"; fi; }
ha_kill_ns() { local pid; for pid in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done; }
ns_empty() { [ -z "$(ip netns pids "$1" 2>/dev/null)" ]; }
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
	if [[ ! -d $d ]]; then
		# shellcheck disable=SC2086 # options, a word each
		d=$(dirname "$(lab_mtugate_conf ${HA_MTUGATE:-proxy=no})")
		# One ticket key file, a copy on each node, as an administrator shares it.
		if [[ ${HA_TICKET_KEY:-} == yes ]]; then
			openssl rand 80 >"$d/ticket.key"
			chmod 0600 "$d/ticket.key"
			sed -i "/^\[proxy\]/a ticket_key_file = $d/ticket.key" "$d/mtugate.conf"
		fi
	fi
	rm -rf "$LAB_DIR/mtugate-$n"
	cp -a "$d" "$LAB_DIR/mtugate-$n"
	conf=$LAB_DIR/mtugate-$n/mtugate.conf
	sed -i "s|$d/|$LAB_DIR/mtugate-$n/|g" "$conf"
	lab_bg "mtugated-$n" "$ns" "$B/mtugated" -f -c "$conf"
	wait_until 10 ha_ready "$n" || die "mtugated on $n did not start: $(tail -5 "$LAB_DIR/mtugated-$n.log")"
	"$B/mtugatectl" -c "$conf" rules --ipset | ip netns exec "$ns" ipset restore -exist
	"$B/mtugatectl" -c "$conf" rules --iptables | ip netns exec "$ns" iptables-restore --noflush
	"$B/mtugatectl" -c "$conf" rules --ip6tables | ip netns exec "$ns" ip6tables-restore --noflush
	"$B/mtugatectl" -c "$conf" rules --routes | ip netns exec "$ns" sh -e
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
	# A killed process closes its sockets (the proxy's FIN to the client) only after its
	# memory is torn down, long under ASan or load: the links go down once the processes
	# are gone, so the dying kernel's FIN goes out every time, not by a race (docs/ha.md).
	wait_until 10 ns_empty "$NS_GW" || progress "processes in $NS_GW outlived SIGKILL by 10 s"
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

