#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The kernel's TPROXY with a loopback listener (issue 17), no mtugated: a SYN forwarded toward
# headend:443 and diverted by TPROXY --on-ip 127.0.0.1 / ::1 (nft: tproxy ip to 127.0.0.1:P,
# tproxy ip6 to [::1]:P) reaches an IP_TRANSPARENT listener bound to that loopback address; the
# accepted socket's local address is the headend's; the flow's later segments reach it through
# the `socket --transparent` rule; and a connection from another namespace to the gateway's own
# address on P finds no listener (refused), with no INPUT rule at all. The wildcard listener
# (on-port only), today's setup, is the control: it takes that direct connection.
# Why it works: nf_tproxy looks the listener up by the on-ip address and assigns it to the skb
# (skb->sk); the packet's destination stays the headend's, which the fwmark route makes local, so
# neither the 127/8 martian check (route_localnet) nor IPv6's "::1 only on lo" rule sees ::1/127.
# A SYN sent to 127.0.0.1 itself is martian on a non-loopback device; with route_localnet = 1
# it reaches the listener (SYN-RECV), whose answer from 127.0.0.1 still cannot leave.
set -u
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 77; }
for t in iptables ip6tables nft python3; do
	command -v $t >/dev/null || { echo "$t is missing (make deps)"; exit 77; }
done
. tests/netns/common.sh

c=mgt$$-client g=mgt$$-gw h=mgt$$-headend
tmp=$(mktemp -d /tmp/mg-tproxy.XXXXXX)
lpid=
cleanup() {
	[ -n "$lpid" ] && kill "$lpid" 2>/dev/null
	ns_destroy $c $g $h
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
H4=198.18.2.2 H6=2001:db8:2::2 G4=198.18.1.1 G6=2001:db8:1::1 PORT=8443
ns_create $c $g $h
ns_link $c 198.18.1.2/24 2001:db8:1::2/64 $g $G4/24 $G6/64
ns_link $g 198.18.2.1/24 2001:db8:2::1/64 $h $H4/24 $H6/64
ns_route $c $G4 $G6
ns_route $h 198.18.2.1 2001:db8:2::1
ns_forwarding $g
ip netns exec $g sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
# What `mtugatectl rules --routes` prints: the diverted packets (mark 1) are local.
ip -n $g rule add fwmark 0x1/0x1 lookup 100
ip -n $g route add local 0.0.0.0/0 dev lo table 100
ip -n $g -6 rule add fwmark 0x1/0x1 lookup 100
ip -n $g -6 route add local ::/0 dev lo table 100

# An IP_TRANSPARENT echo listener on ADDR:PORT; one line per accepted connection: its local
# address (what getsockname says: the original destination under TPROXY) and its peer.
cat >"$tmp/listen.py" <<'PY'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, 75, 1)            # IPV6_TRANSPARENT
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
else:
    s.setsockopt(socket.SOL_IP, 19, 1)                  # IP_TRANSPARENT
s.bind((addr, port))
s.listen(16)
print("listening", flush=True)
while True:
    conn, peer = s.accept()
    print("accepted local=%s:%d peer=%s" % (conn.getsockname()[0], conn.getsockname()[1], peer[0]),
          flush=True)
    while True:
        d = conn.recv(65536)
        if not d:
            break
        conn.sendall(d)
    conn.close()
PY
# The client: connect, then 64 rounds of 16 KiB echoed back (segments after the handshake,
# which only the socket rule brings to the accepted socket). Prints "echo ok".
cat >"$tmp/client.py" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=3)
blob = bytes(range(256)) * 64
for _ in range(64):
    s.sendall(blob)
    got = b""
    while len(got) < len(blob):
        d = s.recv(len(blob) - len(got))
        if not d:
            sys.exit("closed early")
        got += d
    if got != blob:
        sys.exit("echo differs")
s.close()
print("echo ok")
PY

listener_up() { grep -q '^listening' "$tmp/listen.log"; }
start_listener() {	# ADDR: the listener in the gateway, replacing the last one
	[ -n "$lpid" ] && kill "$lpid" 2>/dev/null && wait "$lpid" 2>/dev/null
	: >"$tmp/listen.log"
	ip netns exec $g python3 "$tmp/listen.py" "$1" $PORT >"$tmp/listen.log" 2>&1 &
	lpid=$!
	wait_until 5 listener_up
}
accepted() { grep -q "^accepted local=$1:443 peer=$2\$" "$tmp/listen.log"; }
naccepted() { grep -c '^accepted' "$tmp/listen.log"; }
client() { ip netns exec $c timeout 10 python3 "$tmp/client.py" "$@" 2>&1 | tail -n 1; }

rules_ipt() {	# TOOL HEADEND [ON_IP]: the proxy intake as mtugatectl prints it, this test's marks
	local t="ip netns exec $g $1 -t mangle" hd=$2 on=()
	[ -n "${3:-}" ] && on=(--on-ip "$3")
	$t -A PREROUTING -p tcp -m socket --transparent -j MARK --set-xmark 0x1/0x1
	$t -A PREROUTING -p tcp -m socket --transparent -j RETURN
	$t -A PREROUTING -d "$hd" -p tcp --dport 443 -j TPROXY "${on[@]}" --on-port $PORT \
		--tproxy-mark 0x1/0x1
}
rules_nft() {	# ON4 ON6: nft's form, "" for on-port only
	ip netns exec $g nft -f - <<NFT
table inet mgt {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set meta mark | 0x1 return
		ip daddr $H4 tcp dport 443 meta mark set meta mark | 0x1 tproxy ip to ${1}:$PORT accept
		ip6 daddr $H6 tcp dport 443 meta mark set meta mark | 0x1 tproxy ip6 to ${2:+[$2]}:$PORT accept
	}
}
NFT
}
flush_all() {
	ip netns exec $g iptables -t mangle -F PREROUTING
	ip netns exec $g ip6tables -t mangle -F PREROUTING
	ip netns exec $g nft delete table inet mgt 2>/dev/null
	return 0
}

# run BACKEND FAMILY LISTEN_ADDR: one diverted login-sized flow, then a direct connection to
# the gateway's own address on PORT from the client (the listener takes it when wildcard).
run() {
	local be=$1 fam=$2 la=$3 hd gwa src tool on out n0 kind=loopback
	if [ "$fam" = 6 ]; then hd=$H6 gwa=$G6 src=2001:db8:1::2 tool=ip6tables
	else hd=$H4 gwa=$G4 src=198.18.1.2 tool=iptables; fi
	case $la in 0.0.0.0 | ::) kind=wildcard on= ;; *) on=$la ;; esac
	flush_all
	if [ "$be" = nft ]; then
		if [ "$fam" = 6 ]; then rules_nft "" "$on"; else rules_nft "$on" ""; fi
	else
		rules_ipt $tool "$hd" "$on"
	fi
	start_listener "$la" || { fail "$be IPv$fam $kind: the listener on [$la]:$PORT is up" "$(cat "$tmp/listen.log")"; return; }
	out=$(client "$hd" 443)
	check "$be IPv$fam $kind listener [$la]:$PORT: a forwarded connection to headend:443 echoes 1 MiB ($out)" \
		test "$out" = "echo ok"
	check "$be IPv$fam $kind: the accepted socket's local address is the headend's, the peer the client's" \
		accepted "$hd" "$src"
	n0=$(naccepted)
	out=$(client "$gwa" $PORT)
	if [ $kind = wildcard ]; then
		check "$be IPv$fam wildcard: the gateway's own address:$PORT reaches the listener (the hole)" \
			test "$out" = "echo ok" -a "$(naccepted)" = $((n0 + 1))
	else
		check "$be IPv$fam loopback: the gateway's own address:$PORT is refused ($out)" \
			grep -qi "refused" <<<"$out"
		check "$be IPv$fam loopback: the listener accepted nothing more" test "$(naccepted)" = "$n0"
	fi
}

for be in iptables nft; do
	run $be 4 0.0.0.0
	run $be 4 127.0.0.1
	run $be 6 ::
	run $be 6 ::1
done
# 127/8 from outside is martian unless route_localnet: the client sends a SYN to
# 127.0.0.1:PORT through the gateway (its own local table moved behind a route there); the
# gateway drops it before any listener, and takes it with route_localnet = 1 (the hole
# `mtugatectl check` reports).
flush_all
start_listener 127.0.0.1 >/dev/null
ip -n $c rule add to 127.0.0.1 lookup 200 pref 10
ip -n $c rule del pref 0
ip -n $c rule add pref 20 lookup local
ip -n $c route add 127.0.0.1/32 via $G4 table 200
ip netns exec $g iptables -t raw -A PREROUTING -d 127.0.0.1 -p tcp --dport $PORT
seen() { ip netns exec $g iptables -t raw -nvxL PREROUTING | awk '$0 ~ /127.0.0.1/ { print $1 }'; }
n0=$(naccepted)
out=$(client 127.0.0.1 $PORT)
check "127.0.0.1:$PORT from the client reached the gateway ($(seen) packets)" test "$(seen)" -gt 0
check_not "and got no answer, route_localnet = 0 ($out)" test "$out" = "echo ok"
check "the loopback listener accepted nothing" test "$(naccepted)" = "$n0"
ip netns exec $g sh -c 'for f in /proc/sys/net/ipv4/conf/*/route_localnet; do echo 1 >"$f"; done'
out=$(client 127.0.0.1 $PORT)
ip netns exec $c timeout 10 python3 "$tmp/client.py" 127.0.0.1 $PORT >/dev/null 2>&1 &
cpid=$!
synrecv() { ip netns exec $g ss -Htn state syn-recv "( sport = :$PORT )" | grep -q 198.18.1.2; }
check "with route_localnet = 1 its SYN reaches the listener (SYN-RECV)" wait_until 5 synrecv
wait $cpid
finish e2e-tproxy
