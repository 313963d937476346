# shellcheck shell=bash disable=SC2034
# (SC2034: the LAB_* and AC_* variables are this library's API, read by the tests.)
# mtugate end-to-end lab: real ocserv and openconnect in four network namespaces.
# Source it from a test (bash, run as root from the repo root):
#
#   . "$(dirname "$0")/lib.sh"
#   skip_unless_root
#   lab_up asa_mtus dtls_block=tlsonly:drop        # options below
#   lab_connect tlsonly                            # openconnect in the client ns
#   check "ping v4" n_client ping -c1 -W2 "$LAB_LAN4"
#   lab_behaviour                                  # AnyConnect 3.x verdict, sets AC_*
#   finish                                         # "NAME: N passed, N failed"
#
# Topology (every address is in 198.18.0.0/15, 192.0.2.0/24 or 2001:db8::/32):
#
#   client c-out 198.18.1.2 (relay) .66 (tlsonly)  2001:db8:1::2 / ::102
#     |  outside leg 198.18.1.0/24, 2001:db8:1::/64
#   gw g-out .1 | g-dmz 198.18.2.1 | g-in 198.18.3.1   (forwarding v4+v6, mtugated)
#     |  DMZ 198.18.2.0/24, 2001:db8:2::/64        |  inside 198.18.3.0/24, 2001:db8:3::/64
#   headend h-dmz 198.18.2.2 (ocserv)              lan l-in 198.18.3.2 (http :80, iperf3 :5201,
#                                                      udp echo :7)
# The headend's decrypted traffic goes headend -> gw DMZ leg -> gw inside leg -> LAN; the LAN
# routes everything to the gw, the gw routes the pools to the headend. The client reaches only
# the DMZ directly, so the LAN is reachable through the tunnel alone.
# Pools: relay 192.0.2.0/26 + 2001:db8:0:40::/64, tlsonly 192.0.2.128/26 + 2001:db8:0:80::/64.
# Outer client addresses per group (mtugate's `clients`): relay 198.18.1.0/26 +
# 2001:db8:1::/120, tlsonly 198.18.1.64/26 + 2001:db8:1::100/120; lab_connect picks the
# group's source address.
#
# API (globals are read-only for tests unless noted):
#   NS_CLIENT NS_GW NS_HEADEND NS_LAN     namespace names, "mg$$-<role>"
#   LAB_DIR                               per-run scratch folder (logs, certs, configs)
#   LAB_HEADEND4/6 LAB_LAN4/6             outer headend and LAN server addresses
#   LAB_POOL4_<g> LAB_POOL6_<g> LAB_CLIENTS4_<g> LAB_CLIENTS6_<g>   per group g
#   LAB_SRC4_<g> LAB_SRC6_<g>             the client's outer source address for group g
#   LAB_DTLS_ADV LAB_DTLS_REAL            DTLS port advertised / really answered
#   LAB_HTTP_FILE LAB_HTTP_SHA256         file served at http://LAN/$LAB_HTTP_FILE (4 MiB)
#   LAB_CERT LAB_KEY LAB_CA LAB_PIN       headend certificate, key, CA, openconnect pin
#   LAB_USER LAB_PASS LAB_NAME            throwaway credentials; the script's name
#   n_client|n_gw|n_headend|n_lan CMD...  run CMD in that namespace
#   wait_until TIMEOUT_S CMD...           poll CMD every 0.1 s until it succeeds; 1 on timeout
#                                         or at once when CMD returns 255 (it gave up)
#   pass NAME; fail NAME MSG; check NAME CMD...; check_not NAME CMD...; finish
#   skip_unless_root                      exit 77 unless root and the tools exist
#   lab_up [OPTION...]                    build namespaces, certs, ocserv, LAN services:
#       groups=relay,tlsonly   which ocserv groups exist (default both)
#       dtls-psk | dtls-legacy DTLS flavour (default legacy, as an ASA); dtls-psk-only:
#                           PSK-NEGOTIATE and no legacy DTLS at all (dtls-legacy = false)
#       cscuh61321[=ADV:REAL]  advertise ADV, answer on REAL (default 444:443, as in the note)
#       dtls_block=GROUP[:drop|reject]  gw drops/rejects DTLS from GROUP's clients (repeatable)
#       asa_mtus[=TLS:DTLS]    ASA shim in front of ocserv: X-CSTP-MTU TLS, X-DTLS-MTU DTLS
#                              (default 1380:1418), TLS data frames over TLS are dropped as
#                              an ASA does (mp-svc-no-fragment)
#       mtu_out=N mtu_dmz=N mtu_in=N     outer MTU of each leg (default 1500)
#       no_udp=GROUP           ocserv offers GROUP no DTLS at all (no-udp = true)
#       rekey=SECONDS:METHOD   ocserv's rekey-time and rekey-method (ssl | new-tunnel)
#       shared_pool            tlsonly's IPv4 pool is relay's (one ipv4-network, two groups),
#                              from here on in this script
#       routes=N[:N6]          each group gets N IPv4 (198.19.0.0/16 /32s) and N6 IPv6
#                              (2001:db8:100::/48 /64s) `route =` lines, one split-include each,
#                              and the LAN's (a group's routes replace ocserv.conf's): N+1, N6+1
#       custom_headers=N:SIZE  ocserv.conf gets N `custom-header` lines X-CSTP-Lab-Header-K of
#                              SIZE bytes of value (ocserv 1.1.6 has no per-group custom-header)
#       post_auth_xml=SIZE     with asa_mtus: the shim adds one X-CSTP-Post-Auth-XML line with a
#                              SIZE-byte XML document to the CONNECT answer, as an ASA does
#                              (with asa_mtus, $LAB_DIR/asa-connect/N holds the Nth CONNECT
#                              answer head the shim sent, byte for byte)
#       client_cert=request|require  ocserv asks for a client certificate (the lab CA's, user
#                              from its CN): request takes a password without one, require
#                              ("auth = certificate") takes no login without one
#   lab_connect GROUP [OPENCONNECT ARGS...]   connect on oc0 and wait (30 s) for its address;
#                              sets LAB_OC_LOG, LAB_OC_PID, LAB_OC_ENV (vpnc-script env dump),
#                              LAB_TUN4/LAB_TUN6 (assigned inner addresses), LAB_GROUP;
#                              LAB_CONNECT_TO=$LAB_HEADEND6 connects over outer IPv6
#   lab_disconnect             stop openconnect (SIGINT, then SIGKILL after 5 s)
#   lab_kill_client            kill -9 openconnect: no BYE, the session stays
#   lab_authenticate GROUP     openconnect --authenticate: prints the session cookie
#   lab_label GROUP            the --authgroup label; lab_client_route GROUP: outer source
#   lab_dtls_settled           true once the first DTLS attempt has an outcome (wait_until 20 …)
#   lab_http_get [4|6] [MAX_S] download the LAN file through the tunnel, true if sha256 matches
#   lab_listening NS tcp (common.sh)|udp PORT; lab_tun_gone; lab_tls_mtu (the TLS MTU clients really get)
#   lab_proxy_enabled CONF     [proxy] enable = yes in CONF; progress MSG: a progress line
#   lab_behaviour [LOG]        AnyConnect 3.x check; sets AC_DTLS_OFFERED AC_DTLS_ESTABLISHED
#                              AC_CSTP_MTU AC_DTLS_MTU AC_TUN_MTU AC_RECONNECT, prints one line
#   lab_mtugate_conf [OPTION...]   write $LAB_DIR/mtugate/mtugate.conf + groups.d for this lab;
#                              prints the path. Options: proxy=yes|no|auto, NAME.KEY=VALUE
#                              (group key override, e.g. tlsonly.dtls_block=reject)
#   lab_mtugated_start CONF_TEXT_OR_FILE   start build/mtugated -f in the gw, wait for ping,
#                              apply `mtugatectl rules` (iptables, ip6tables, routes); returns 2
#                              when [proxy] is enabled but nothing listens on its port
#   lab_mtugated_stop          stop it and restore the gw's lab firewall
#   mtugatectl ARGS...         build/mtugatectl -s on the lab's control socket
#   lab_down                   tear the lab down (lab_up may follow)
#   lab_bg NAME NS CMD...      start a tracked background process (log $LAB_DIR/NAME.log)
#   lab_kill NAME              stop it
# Cleanup runs from `trap lab_cleanup EXIT`; a test may define lab_cleanup_hook().
# LAB_KEEP=1 keeps $LAB_DIR; LAB_VERBOSE=1 prints every namespaced command.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_FILES=$LAB_ROOT/tests/netns/lab
B=${B:-build}
case $B in /*) ;; *) B=$LAB_ROOT/$B ;; esac
LAB_NAME=$(basename "$0" .sh)
# check/pass/fail/finish/wait_until and the ns_* helpers are shared with the lighter tests.
# shellcheck source=tests/netns/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NS_CLIENT=mg$$-client NS_GW=mg$$-gw NS_HEADEND=mg$$-headend NS_LAN=mg$$-lan
LAB_HEADEND4=198.18.2.2 LAB_HEADEND6=2001:db8:2::2
LAB_LAN4=198.18.3.2 LAB_LAN6=2001:db8:3::2
LAB_POOL4_relay=192.0.2.0/26 LAB_POOL6_relay=2001:db8:0:40::/64
LAB_POOL4_tlsonly=192.0.2.128/26 LAB_POOL6_tlsonly=2001:db8:0:80::/64
LAB_CLIENTS4_relay=198.18.1.0/26 LAB_CLIENTS6_relay=2001:db8:1::/120
LAB_CLIENTS4_tlsonly=198.18.1.64/26 LAB_CLIENTS6_tlsonly=2001:db8:1::100/120
LAB_SRC4_relay=198.18.1.2 LAB_SRC6_relay=2001:db8:1::2
LAB_SRC4_tlsonly=198.18.1.66 LAB_SRC6_tlsonly=2001:db8:1::102
LAB_USER=labuser LAB_PASS=throwaway-lab-only
LAB_HTTP_FILE=blob.bin LAB_HTTP_SHA256=
LAB_DTLS_ADV=443 LAB_DTLS_REAL=443
LAB_UP=0
LAB_DIR=
LAB_OC_PID='' LAB_OC_LOG='' LAB_OC_ENV='' LAB_GROUP='' LAB_TUN4='' LAB_TUN6=''
LAB_MG_CONF='' LAB_MG_SOCK=''

pretty() { [[ ${LAB_VERBOSE:-0} == 1 ]] && printf '[%s] %s\n' "$1" "$2" >&2; return 0; }
n_client() { pretty client "$*"; ip netns exec "$NS_CLIENT" "$@"; }
n_gw() { pretty gw "$*"; ip netns exec "$NS_GW" "$@"; }
n_headend() { pretty headend "$*"; ip netns exec "$NS_HEADEND" "$@"; }
n_lan() { pretty lan "$*"; ip netns exec "$NS_LAN" "$@"; }

progress() { printf '  .. %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$LAB_NAME" "$*" >&2; exit 1; }

skip_unless_root() {
	if [[ $(id -u) != 0 ]]; then echo "$LAB_NAME: needs root (network namespaces)" >&2; exit 77; fi
	local t
	for t in ip iptables ip6tables ocserv openconnect openssl python3 curl socat iperf3; do
		command -v "$t" >/dev/null || { echo "$LAB_NAME: $t is missing (make deps)" >&2; exit 77; }
	done
}

# Every namespace shares the host's /dev/net/tun; minimal containers lack it.
lab_tun_dev() {
	[[ -c /dev/net/tun ]] && return 0
	mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun
}

lab_bg() {
	local name=$1 ns=$2; shift 2
	ip netns exec "$ns" "$@" >"$LAB_DIR/$name.log" 2>&1 </dev/null &
	echo $! >"$LAB_DIR/pids/$name"
	disown $!
}

lab_kill() {
	local f=$LAB_DIR/pids/$1 pid
	[[ -f $f ]] || return 0
	pid=$(<"$f"); rm -f "$f"
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_until 5 lab_dead "$pid" || kill -KILL "$pid" 2>/dev/null
	wait_until 2 lab_dead "$pid" || true
}
lab_dead() { ! kill -0 "$1" 2>/dev/null; }

# Stop everything this lab started and delete its namespaces; a script may lab_up again after.
lab_down() { # [KEEP_FILES=0|1]
	local - ns pid f
	set +e
	if [[ -n $LAB_DIR && -d $LAB_DIR/pids ]]; then
		for f in "$LAB_DIR"/pids/*; do [[ -f $f ]] && kill -TERM "$(<"$f")" 2>/dev/null; done
	fi
	# Whatever still runs in our namespaces was started by this run; ocserv's own SIGTERM exit
	# takes seconds ("waiting for sessions to die"), so it gets SIGKILL.
	for ns in "$NS_CLIENT" "$NS_GW" "$NS_HEADEND" "$NS_LAN"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	done
	for ns in "$NS_CLIENT" "$NS_GW" "$NS_HEADEND" "$NS_LAN"; do ip netns del "$ns" 2>/dev/null; done
	if [[ -n $LAB_DIR && -d $LAB_DIR ]]; then
		if [[ ${LAB_KEEP:-0} == 1 || ${1:-0} == 1 || $nfail != 0 ]]; then
			rm -rf "$LAB_DIR/www"	# 4 MiB of random bytes, no evidence
			echo "$LAB_NAME: lab files kept in $LAB_DIR" >&2
		else
			rm -rf "$LAB_DIR"
		fi
	fi
	LAB_DIR='' LAB_UP=0 LAB_OC_PID='' LAB_MG_CONF=''
	return 0
}

lab_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	declare -F lab_cleanup_hook >/dev/null && lab_cleanup_hook
	lab_down "$([[ $rc != 0 && $rc != 77 && $rc != 130 ]] && echo 1)"
	exit "$rc"
}
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

lab_sysctl() { ip netns exec "$1" sysctl -qw "$2" >/dev/null; }

lab_veth() { # NS_A IF_A NS_B IF_B MTU
	ip link add "$2" netns "$1" mtu "$5" type veth peer name "$4" netns "$3" mtu "$5"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

lab_addr() { # NS IF ADDR4/LEN ADDR6/LEN
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$1" -6 addr add "$4" dev "$2" nodad
}

lab_topology() {
	local ns
	for ns in "$NS_CLIENT" "$NS_GW" "$NS_HEADEND" "$NS_LAN"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	lab_veth "$NS_CLIENT" c-out "$NS_GW" g-out "$LAB_MTU_OUT"
	lab_veth "$NS_GW" g-dmz "$NS_HEADEND" h-dmz "$LAB_MTU_DMZ"
	lab_veth "$NS_GW" g-in "$NS_LAN" l-in "$LAB_MTU_IN"
	lab_addr "$NS_CLIENT" c-out "$LAB_SRC4_relay/24" "$LAB_SRC6_relay/64"
	lab_addr "$NS_CLIENT" c-out "$LAB_SRC4_tlsonly/24" "$LAB_SRC6_tlsonly/64"
	lab_addr "$NS_GW" g-out 198.18.1.1/24 2001:db8:1::1/64
	lab_addr "$NS_GW" g-dmz 198.18.2.1/24 2001:db8:2::1/64
	lab_addr "$NS_GW" g-in 198.18.3.1/24 2001:db8:3::1/64
	lab_addr "$NS_HEADEND" h-dmz "$LAB_HEADEND4/24" "$LAB_HEADEND6/64"
	lab_addr "$NS_LAN" l-in "$LAB_LAN4/24" "$LAB_LAN6/64"
	for ns in "$NS_GW" "$NS_HEADEND"; do
		lab_sysctl "$ns" net.ipv4.ip_forward=1
		lab_sysctl "$ns" net.ipv6.conf.all.forwarding=1
	done
	ip -n "$NS_HEADEND" route add default via 198.18.2.1
	ip -n "$NS_HEADEND" -6 route add default via 2001:db8:2::1
	ip -n "$NS_LAN" route add default via 198.18.3.1
	ip -n "$NS_LAN" -6 route add default via 2001:db8:3::1
	ip -n "$NS_GW" route add 192.0.2.0/24 via "$LAB_HEADEND4"
	ip -n "$NS_GW" -6 route add "$LAB_POOL6_relay" via "$LAB_HEADEND6"
	ip -n "$NS_GW" -6 route add "$LAB_POOL6_tlsonly" via "$LAB_HEADEND6"
	lab_client_route relay
}

# The client reaches the DMZ only; the source address tells the gateway the client's group.
lab_client_route() {
	local s4=LAB_SRC4_$1 s6=LAB_SRC6_$1
	ip -n "$NS_CLIENT" route replace 198.18.2.0/24 via 198.18.1.1 src "${!s4}"
	ip -n "$NS_CLIENT" -6 route replace 2001:db8:2::/64 via 2001:db8:1::1 src "${!s6}"
}

lab_certs() {
	local d=$LAB_DIR/pki
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=mtugate lab CA" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=headend.lab.test" -keyout "$d/headend.key" -out "$d/headend.csr" 2>/dev/null
	openssl x509 -req -in "$d/headend.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -out "$d/headend.crt" -extfile "$LAB_FILES/headend.ext" 2>/dev/null
	# ocserv's workers run unprivileged and the key is a throwaway.
	chmod 0644 "$d"/*
	LAB_CERT=$d/headend.crt LAB_KEY=$d/headend.key LAB_CA=$d/ca.crt
	LAB_PIN=pin-sha256:$(openssl x509 -in "$LAB_CERT" -pubkey -noout \
		| openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
}

lab_subst() { # TEMPLATE OUT VAR=VALUE...
	local in=$1 out=$2 kv args=()
	shift 2
	for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
	sed "${args[@]}" "$in" >"$out"
}

lab_ocserv_conf() {
	local d=$LAB_DIR/ocserv g dtls_psk=false dtls_legacy=true tcp=443 proxyproto=false
	mkdir -p "$d/groups"
	[[ $LAB_DTLS_PSK == 1 ]] && dtls_psk=true
	[[ $LAB_DTLS_PSK == only ]] && dtls_psk=true dtls_legacy=false
	[[ -n $LAB_ASA ]] && tcp=4443 proxyproto=true
	printf '%s:%s:%s\n' "$LAB_USER" "$LAB_GROUPS" "$(openssl passwd -5 "$LAB_PASS")" >"$d/ocpasswd"
	lab_subst "$LAB_FILES/ocserv.conf.in" "$d/ocserv.conf" "DIR=$d" "CERT=$LAB_CERT" \
		"KEY=$LAB_KEY" "TCP_PORT=$tcp" "UDP_PORT=$LAB_DTLS_ADV" "DTLS_PSK=$dtls_psk" \
		"DTLS_LEGACY=$dtls_legacy" "PROXY_PROTO=$proxyproto"
	[[ -z $LAB_REKEY ]] || sed -i -e "s/^rekey-time = .*/rekey-time = ${LAB_REKEY%%:*}/" \
		-e "s/^rekey-method = .*/rekey-method = ${LAB_REKEY#*:}/" "$d/ocserv.conf"
	lab_custom_headers >>"$d/ocserv.conf"
	case ${LAB_CLIENT_CERT:-} in
	request) printf 'enable-auth = "certificate"\n' >>"$d/ocserv.conf" ;;
	require) sed -i 's/^auth = .*/auth = "certificate"/' "$d/ocserv.conf" ;;
	esac
	[[ -z ${LAB_CLIENT_CERT:-} ]] ||
		printf 'ca-cert = %s\ncert-user-oid = 2.5.4.3\n' "$LAB_CA" >>"$d/ocserv.conf"
	for g in ${LAB_GROUPS//,/ }; do
		local p4=LAB_POOL4_$g p6=LAB_POOL6_$g
		[[ -n ${!p4:-} ]] || die "unknown group $g"
		printf 'select-group = %s[%s group]\n' "$g" "$g" >>"$d/ocserv.conf"
		lab_subst "$LAB_FILES/group.conf.in" "$d/groups/$g" "POOL4=${!p4}" "POOL6=${!p6}"
		[[ ,$LAB_NO_UDP, == *,$g,* ]] && echo "no-udp = true" >>"$d/groups/$g"
		lab_group_routes >>"$d/groups/$g"
	done
	chmod -R a+rX "$d"
}

# A headend with a long split-tunnel list (routes=): a group's `route =` lines, the LAN's too.
lab_group_routes() {
	local n4=${LAB_ROUTES%%:*} n6=0
	[[ $LAB_ROUTES == *:* ]] && n6=${LAB_ROUTES#*:}
	((n4 + n6)) || return 0
	printf 'route = 198.18.3.0/255.255.255.0\nroute = 2001:db8:3::/64\n'
	awk -v n4="$n4" -v n6="$n6" 'BEGIN {
		for (i = 0; i < n4; i++) printf "route = 198.19.%d.%d/255.255.255.255\n", int(i / 256), i % 256
		for (i = 0; i < n6; i++) printf "route = 2001:db8:100:%x::/64\n", i
	}'
}

# custom_headers=N:SIZE: ocserv sends each as a line of the CONNECT answer.
lab_custom_headers() {
	awk -v n="${LAB_HEADERS%%:*}" -v size="${LAB_HEADERS#*:}" 'BEGIN {
		v = sprintf("%*s", size, ""); gsub(/ /, "v", v)
		for (i = 0; i < n; i++) printf "custom-header = \"X-CSTP-Lab-Header-%d: %s\"\n", i, v
	}'
}

# The lab's own firewall in the gateway: what "blocked on the path" means. It sits in the
# filter table, after the mangle and raw hooks where mtugate's rules live.
lab_gw_firewall() {
	local t t2 spec g how s4 s6 target
	for t in iptables ip6tables; do
		printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' \
			| n_gw "$t-restore"
		for t2 in mangle nat raw; do n_gw "$t" -t "$t2" -F; n_gw "$t" -t "$t2" -X; done
	done
	for spec in $LAB_DTLS_BLOCK; do
		g=${spec%%:*} how=drop
		[[ $spec == *:* ]] && how=${spec#*:}
		s4=LAB_CLIENTS4_$g s6=LAB_CLIENTS6_$g
		[[ -n ${!s4:-} ]] || die "dtls_block: unknown group $g"
		target=(-j DROP)
		[[ $how == reject ]] && target=(-j REJECT --reject-with icmp-port-unreachable)
		n_gw iptables -A FORWARD -s "${!s4}" -d "$LAB_HEADEND4" -p udp --dport "$LAB_DTLS_ADV" "${target[@]}"
		[[ $how == reject ]] && target=(-j REJECT --reject-with icmp6-port-unreachable)
		n_gw ip6tables -A FORWARD -s "${!s6}" -d "$LAB_HEADEND6" -p udp --dport "$LAB_DTLS_ADV" "${target[@]}"
	done
}

# CSCuh61321 (ASA 9.x): the client is told one DTLS port, the headend answers on another. ocserv
# cannot do that, so its socket is on the advertised port, made unreachable in the raw table,
# and the real port is redirected onto it. Replies leave from the real port (conntrack).
lab_cscuh61321() {
	local t
	for t in iptables ip6tables; do
		n_headend "$t" -t raw -A PREROUTING -p udp --dport "$LAB_DTLS_ADV" -j DROP
		n_headend "$t" -t nat -A PREROUTING -p udp --dport "$LAB_DTLS_REAL" -j REDIRECT --to-ports "$LAB_DTLS_ADV"
	done
}

lab_lan_services() {
	local w=$LAB_DIR/www
	mkdir -p "$w"
	head -c $((4 * 1024 * 1024)) /dev/urandom >"$w/$LAB_HTTP_FILE"
	LAB_HTTP_SHA256=$(sha256sum "$w/$LAB_HTTP_FILE" | cut -d' ' -f1)
	lab_bg http "$NS_LAN" python3 -m http.server --bind :: --directory "$w" 80
	lab_bg iperf3 "$NS_LAN" iperf3 -s -p 5201
	lab_bg udpecho "$NS_LAN" socat UDP6-RECVFROM:7,fork,reuseaddr PIPE
	wait_until 10 lab_listening "$NS_LAN" tcp 80 || die "http server did not start"
	wait_until 10 lab_listening "$NS_LAN" tcp 5201 || die "iperf3 did not start"
}

lab_up() {
	local o
	LAB_REKEY=''
	LAB_GROUPS=relay,tlsonly LAB_DTLS_PSK=0 LAB_DTLS_BLOCK='' LAB_ASA='' LAB_NO_UDP='' LAB_CSCUH=0
	LAB_ROUTES=0 LAB_HEADERS=0:0 LAB_POST_AUTH_XML=0 LAB_CLIENT_CERT=
	LAB_MTU_OUT=1500 LAB_MTU_DMZ=1500 LAB_MTU_IN=1500
	for o in "$@"; do
		case $o in
		groups=*) LAB_GROUPS=${o#*=} ;;
		dtls-psk) LAB_DTLS_PSK=1 ;;
		dtls-psk-only) LAB_DTLS_PSK=only ;;
		dtls-legacy) LAB_DTLS_PSK=0 ;;
		cscuh61321) LAB_CSCUH=1 LAB_DTLS_ADV=444 LAB_DTLS_REAL=443 ;;
		cscuh61321=*:*) LAB_CSCUH=1 o=${o#*=} LAB_DTLS_ADV=${o%:*} LAB_DTLS_REAL=${o#*:} ;;
		dtls_block=*) LAB_DTLS_BLOCK+=" ${o#*=}" ;;
		asa_mtus) LAB_ASA=1380:1418 ;;
		asa_mtus=*:*) LAB_ASA=${o#*=} ;;
		mtu_out=*) LAB_MTU_OUT=${o#*=} ;;
		mtu_dmz=*) LAB_MTU_DMZ=${o#*=} ;;
		mtu_in=*) LAB_MTU_IN=${o#*=} ;;
		no_udp=*) LAB_NO_UDP+=,${o#*=} ;;
		rekey=*:*) LAB_REKEY=${o#*=} ;;
		shared_pool) LAB_POOL4_tlsonly=$LAB_POOL4_relay ;;
		routes=*) LAB_ROUTES=${o#*=} ;;
		custom_headers=*:*) LAB_HEADERS=${o#*=} ;;
		post_auth_xml=*) LAB_POST_AUTH_XML=${o#*=} ;;
		client_cert=request | client_cert=require) LAB_CLIENT_CERT=${o#*=} ;;
		*) die "lab_up: unknown option $o" ;;
		esac
	done
	# The shim terminates TLS, so the PSK (a TLS exporter value) would not match ocserv's.
	[[ -n $LAB_ASA && $LAB_DTLS_PSK != 0 ]] && die "asa_mtus needs legacy DTLS (as an ASA)"
	lab_tun_dev
	LAB_DIR=$(mktemp -d /tmp/mtugate-lab.XXXXXX)
	chmod 0755 "$LAB_DIR"
	mkdir -p "$LAB_DIR/pids"
	progress "namespaces $NS_CLIENT $NS_GW $NS_HEADEND $NS_LAN"
	lab_topology
	lab_gw_firewall
	((LAB_CSCUH)) && lab_cscuh61321
	lab_certs
	lab_ocserv_conf
	progress "ocserv (groups $LAB_GROUPS, DTLS $(case $LAB_DTLS_PSK in 1) echo PSK ;; only) echo "PSK only" ;; *) echo legacy ;; esac)$( ((LAB_CSCUH)) && echo ", CSCuh61321 advertised $LAB_DTLS_ADV real $LAB_DTLS_REAL")$([[ -n $LAB_ASA ]] && echo ", ASA MTUs $LAB_ASA"))"
	lab_bg ocserv "$NS_HEADEND" ocserv -f -d 2 -c "$LAB_DIR/ocserv/ocserv.conf"
	if [[ -n $LAB_ASA ]]; then
		wait_until 10 lab_listening "$NS_HEADEND" tcp 4443 || die "ocserv did not start: $(tail -5 "$LAB_DIR/ocserv.log")"
		lab_bg asa-shim "$NS_HEADEND" python3 "$LAB_FILES/asa-shim.py" \
			--listen "$LAB_HEADEND4" --listen "$LAB_HEADEND6" --port 443 \
			--upstream "$LAB_HEADEND4:4443" --cert "$LAB_CERT" --key "$LAB_KEY" \
			--cstp-mtu "${LAB_ASA%:*}" --dtls-mtu "${LAB_ASA#*:}" --post-auth-xml "$LAB_POST_AUTH_XML" \
			--dump "$LAB_DIR/asa-connect"
	fi
	wait_until 10 lab_listening "$NS_HEADEND" tcp 443 || die "headend not listening: $(tail -5 "$LAB_DIR/ocserv.log")"
	wait_until 10 lab_listening "$NS_HEADEND" udp "$LAB_DTLS_ADV" || die "ocserv has no UDP socket"
	lab_lan_services
	LAB_UP=1
}

lab_label() { echo "$1 group"; }

lab_tun_ready() { # the vpnc-script has run and oc0 carries the address
	[[ -s $LAB_OC_ENV ]] && n_client ip -4 addr show dev oc0 | grep -q inet
}

lab_connect() {
	local g=$1 server=${LAB_CONNECT_TO:-$LAB_HEADEND4}; shift
	[[ -n $LAB_OC_PID ]] && lab_disconnect
	[[ $server == *:* ]] && server=[$server]
	LAB_GROUP=$g
	LAB_OC_LOG=$LAB_DIR/openconnect-$g.$((++LAB_OC_N)).log
	LAB_OC_ENV=$LAB_DIR/vpnc-env.oc0
	rm -f "$LAB_OC_ENV"
	lab_client_route "$g"
	LAB_DIR=$LAB_DIR ip netns exec "$NS_CLIENT" openconnect --passwd-on-stdin --non-inter \
		--user="$LAB_USER" --authgroup="$(lab_label "$g")" --servercert "$LAB_PIN" \
		-v --dump-http-traffic --timestamp --script "$LAB_FILES/vpnc-script" -i oc0 \
		"$@" "https://$server/" <<<"$LAB_PASS" >"$LAB_OC_LOG" 2>&1 &
	LAB_OC_PID=$!
	disown "$LAB_OC_PID"
	echo "$LAB_OC_PID" >"$LAB_DIR/pids/openconnect"
	# A silently dropped DTLS attempt holds the tun back for about 14 s (lab-notes).
	if ! wait_until "${LAB_CONNECT_TIMEOUT:-30}" lab_tun_ready; then
		echo "$LAB_NAME: openconnect ($g) did not come up; log $LAB_OC_LOG:" >&2
		tail -15 "$LAB_OC_LOG" >&2
		return 1
	fi
	LAB_TUN4=$(sed -n 's/^INTERNAL_IP4_ADDRESS=//p' "$LAB_OC_ENV")
	LAB_TUN6=$(sed -n 's/^INTERNAL_IP6_ADDRESS=//p' "$LAB_OC_ENV")
	LAB_TUN6=${LAB_TUN6%/*}
	[[ -n $LAB_TUN6 ]] || LAB_TUN6=$(sed -n 's/^INTERNAL_IP6_NETMASK=//p' "$LAB_OC_ENV")
	LAB_TUN6=${LAB_TUN6%/*}
}
LAB_OC_N=0

lab_disconnect() {
	[[ -n $LAB_OC_PID ]] || return 0
	kill -INT "$LAB_OC_PID" 2>/dev/null || true
	wait_until 5 lab_dead "$LAB_OC_PID" || kill -KILL "$LAB_OC_PID" 2>/dev/null
	wait_until 2 lab_dead "$LAB_OC_PID" || true
	rm -f "$LAB_DIR/pids/openconnect"
	LAB_OC_PID=
	wait_until 5 lab_tun_gone || n_client ip link del oc0 2>/dev/null || true
}
lab_tun_gone() { ! n_client ip link show oc0 >/dev/null 2>&1; }
# A client killed without BYE (its TCP connection just ends): the session stays for its return.
lab_kill_client() {
	kill -KILL "$LAB_OC_PID"
	wait_until 5 lab_dead "$LAB_OC_PID" || true
	rm -f "$LAB_DIR/pids/openconnect"
	LAB_OC_PID=
	wait_until 5 lab_tun_gone || n_client ip link del oc0 2>/dev/null || true
}
# openconnect --authenticate to GROUP: prints the session cookie, no tunnel (as AnyConnect
# keeps it across sleep and network changes).
lab_authenticate() {
	lab_client_route "$1"
	ip netns exec "$NS_CLIENT" openconnect --authenticate --passwd-on-stdin --non-inter \
		--user="$LAB_USER" --authgroup="$(lab_label "$1")" --servercert "$LAB_PIN" \
		"https://$LAB_HEADEND4/" <<<"$LAB_PASS" 2>"$LAB_DIR/authenticate.log" \
		| sed -n "s/^COOKIE='\(.*\)'$/\1/p"
}

# The "AnyConnect 3.x behaviour" check (../shared/docs/problem.md). AnyConnect sizes its adapter
# for DTLS before DTLS is up; if DTLS is then not established within the attempt and the DTLS
# MTU differs from the TLS MTU, it must reconnect to apply the TLS MTU. From openconnect's log:
#  offered     any X-DTLS-* header in the CONNECT response
#  established "Established DTLS connection" before any DTLS failure in this run (openconnect
#              retries every 60 s; AnyConnect would have reconnected by then); "pending" while
#              the first attempt is still running
#  MTUs        X-CSTP-MTU / X-DTLS-MTU of the response. PSK-NEGOTIATE sends no X-DTLS-MTU: the
#              client then has one MTU for both, so the DTLS MTU is taken as equal ("-").
#  tun MTU     the client's oc0 (or INTERNAL_IP4_MTU when oc0 is gone)
# shellcheck disable=SC2120
lab_behaviour() {
	local log=${1:-$LAB_OC_LOG} resp first
	# openconnect logs the response headers plainly between these two lines.
	resp=$(sed -n '/Got CONNECT response/,/CSTP connected/p' "$log" | sed 's/^\[[^]]*\] //')
	AC_DTLS_OFFERED=no
	grep -qi '^X-DTLS-' <<<"$resp" && AC_DTLS_OFFERED=yes
	AC_CSTP_MTU=$(sed -n 's/^X-CSTP-MTU: *\([0-9]*\).*/\1/Ip' <<<"$resp" | tail -1)
	AC_DTLS_MTU=$(sed -n 's/^X-DTLS-MTU: *\([0-9]*\).*/\1/Ip' <<<"$resp" | tail -1)
	first=$(grep -oE 'Established DTLS connection|DTLS handshake (timed out|failed)|Failed to (open|connect) DTLS|DTLS (connection|recv|send) (error|failed)[^.]*|Disabling DTLS' "$log" | head -1 || true)
	case $AC_DTLS_OFFERED:$first in
	no:*) AC_DTLS_ESTABLISHED=no ;;
	*:Established*) AC_DTLS_ESTABLISHED=yes ;;
	*:) AC_DTLS_ESTABLISHED=pending ;;
	*) AC_DTLS_ESTABLISHED=no ;;
	esac
	AC_TUN_MTU=$(n_client cat /sys/class/net/oc0/mtu 2>/dev/null || true)
	[[ -n $AC_TUN_MTU ]] || AC_TUN_MTU=$(sed -n 's/^INTERNAL_IP4_MTU=//p' "$LAB_OC_ENV" 2>/dev/null || true)
	AC_RECONNECT=no
	if [[ $AC_DTLS_OFFERED == yes && $AC_DTLS_ESTABLISHED == no && -n $AC_DTLS_MTU && \
		$AC_DTLS_MTU != "$AC_CSTP_MTU" ]]; then
		AC_RECONNECT=yes
	fi
	printf 'anyconnect-3.x: dtls offered=%s established=%s cstp_mtu=%s dtls_mtu=%s tun_mtu=%s -> %s\n' \
		"$AC_DTLS_OFFERED" "$AC_DTLS_ESTABLISHED" "${AC_CSTP_MTU:--}" "${AC_DTLS_MTU:--}" \
		"${AC_TUN_MTU:--}" "$([[ $AC_RECONNECT == yes ]] && echo "reconnect predicted" || echo "no reconnect")"
}

# Wait for the first DTLS outcome (established or failed) of the current connection.
lab_dtls_settled() { lab_behaviour "$LAB_OC_LOG" >/dev/null; [[ $AC_DTLS_ESTABLISHED != pending ]]; }

# HTTP download of the LAN file through the tunnel; checks size and sha256.
lab_http_get() { # [4|6] [MAX_SECONDS]
	local host=$LAB_LAN4 got
	[[ ${1:-4} == 6 ]] && host=[$LAB_LAN6]
	got=$(n_client curl -s -g --max-time "${2:-20}" "http://$host/$LAB_HTTP_FILE" | sha256sum | cut -d' ' -f1)
	[[ $got == "$LAB_HTTP_SHA256" ]]
}

lab_proxy_available() {
	[[ -x $B/mtugatectl ]] && [[ -n $("$B/mtugatectl" -c "$1" rules --routes 2>/dev/null) ]]
}

# The TLS MTU a client really gets: the ASA shim's, or ocserv's link MTU - 66 (lab-notes).
lab_tls_mtu() { if [[ -n $LAB_ASA ]]; then echo "${LAB_ASA%:*}"; else echo $((LAB_MTU_DMZ - 66)); fi; }

# lab_mtugate_conf [proxy=yes|no|auto] [GROUP.KEY=VALUE...] [queues|proxy.KEY=VALUE...]:
# the lab's mtugate.conf and group files; prints the conf's path.
lab_mtugate_conf() {
	local d=$LAB_DIR/mtugate proxy=auto o g kv
	mkdir -p "$d/groups.d"
	LAB_MG_SOCK=$d/mtugate.sock
	# The proxy's own copy of the headend's key, private as mtugated requires.
	install -m 0600 "$LAB_KEY" "$d/headend.key"
	install -m 0644 "$LAB_CERT" "$d/headend.crt"
	for o in "$@"; do case $o in proxy=*) proxy=${o#*=} ;; esac; done
	lab_subst "$LAB_FILES/mtugate.conf.in" "$d/mtugate.conf" "DIR=$d" "HEADEND4=$LAB_HEADEND4" \
		"HEADEND6=$LAB_HEADEND6" "DTLS_REAL=$LAB_DTLS_REAL" "DTLS_ADV=$LAB_DTLS_ADV" \
		"CERT=$d/headend.crt" "KEY=$d/headend.key" "CA=$LAB_CA" "PROXY=no"
	for g in ${LAB_GROUPS//,/ }; do
		local p4=LAB_POOL4_$g p6=LAB_POOL6_$g c4=LAB_CLIENTS4_$g c6=LAB_CLIENTS6_$g
		lab_subst "$LAB_FILES/mtugate-$g.conf.in" "$d/groups.d/$g.conf" "POOL4=${!p4}" \
			"POOL6=${!p6}" "CLIENTS4=${!c4}" "CLIENTS6=${!c6}" "MTU=$(lab_tls_mtu)"
		for o in "$@"; do
			[[ $o == "$g".*=* ]] || continue
			kv=${o#"$g".}
			sed -i "/^${kv%%=*} *=/d" "$d/groups.d/$g.conf"
			echo "${kv%%=*} = ${kv#*=}" >>"$d/groups.d/$g.conf"
		done
	done
	# queues.KEY=VALUE, proxy.KEY=VALUE: a key of mtugate.conf's section.
	local sec
	for o in "$@"; do
		[[ $o == queues.*=* || $o == proxy.*=* ]] || continue
		sec=${o%%.*} kv=${o#*.}
		sed -i "/^\[$sec\]/,/^\[/ { /^${kv%%=*} *=/d }; /^\[$sec\]/a ${kv%%=*} = ${kv#*=}" "$d/mtugate.conf"
	done
	# The TLS proxy lights up once mtugatectl knows it needs TPROXY routes.
	if [[ $proxy == yes ]] || { [[ $proxy == auto ]] && sed 's/^enable = no/enable = yes/' \
		"$d/mtugate.conf" >"$d/probe.conf" && lab_proxy_available "$d/probe.conf"; }; then
		sed -i '/^\[proxy\]/,/^\[/ s/^enable = no/enable = yes/' "$d/mtugate.conf"
	fi
	rm -f "$d/probe.conf"
	echo "$d/mtugate.conf"
}

mtugatectl() { n_gw "$B/mtugatectl" -s "$LAB_MG_SOCK" "$@"; }

lab_mtugated_start() {
	local src=$1 conf=$LAB_DIR/mtugate/mtugate.conf
	mkdir -p "$LAB_DIR/mtugate"
	if [[ -f $src ]]; then
		[[ $src -ef $conf ]] || cp "$src" "$conf"
	else
		printf '%s\n' "$src" >"$conf"
	fi
	LAB_MG_CONF=$conf
	LAB_MG_SOCK=$(sed -n 's/^control_socket *= *\([^ ;]*\).*/\1/p' "$conf" | head -1)
	[[ -x $B/mtugated ]] || { echo "$LAB_NAME: $B/mtugated not built" >&2; return 1; }
	lab_bg mtugated "$NS_GW" "$B/mtugated" -f -c "$conf"
	if ! wait_until 10 lab_mtugated_ready; then
		echo "$LAB_NAME: mtugated did not answer ping:" >&2
		tail -10 "$LAB_DIR/mtugated.log" >&2
		return 1
	fi
	"$B/mtugatectl" -c "$conf" rules --ipset | n_gw ipset restore -exist || return 1
	"$B/mtugatectl" -c "$conf" rules --iptables | n_gw iptables-restore --noflush || return 1
	"$B/mtugatectl" -c "$conf" rules --ip6tables | n_gw ip6tables-restore --noflush || return 1
	"$B/mtugatectl" -c "$conf" rules --routes | n_gw sh -e || return 1
	if lab_proxy_enabled "$conf"; then
		local port
		port=$(sed -n '/^\[proxy\]/,/^\[/ s/^listen_port *= *\([0-9]*\).*/\1/p' "$conf")
		if ! wait_until 5 lab_listening "$NS_GW" tcp "${port:-8443}"; then
			echo "$LAB_NAME: [proxy] enable = yes but nothing listens on port ${port:-8443}" >&2
			return 2
		fi
	fi
}
lab_proxy_enabled() { sed -n '/^\[proxy\]/,/^\[/p' "$1" | grep -Eq '^enable *= *yes'; }

# Ready when it answers; give up at once when it exited (a config error, say).
lab_mtugated_ready() {
	[[ -f $LAB_DIR/pids/mtugated ]] && ! lab_dead "$(<"$LAB_DIR/pids/mtugated")" || return 255
	mtugatectl ping
}

lab_mtugated_stop() {
	lab_kill mtugated
	[[ $LAB_UP == 1 ]] && lab_gw_firewall
	# TPROXY routes from `rules --routes` would outlive the daemon.
	if [[ -n $LAB_MG_CONF ]]; then
		"$B/mtugatectl" -c "$LAB_MG_CONF" rules --routes 2>/dev/null \
			| sed -n 's/^ip \(-[46] \)\{0,1\}\(rule\|route\) add /ip \1\2 del /p' | n_gw sh 2>/dev/null || true
	fi
	return 0
}
