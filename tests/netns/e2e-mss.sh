#!/bin/bash
# MSS clamp end to end, with real TCP and mtugated on real NFQUEUEs.
# Part 1: client -- gateway (mtugated + `mtugatectl rules`) -- server. Three
# groups: auto (mtu 1400: MSS 1360 IPv4, 1340 IPv6), fixed (mss = 1200) and
# off; captures on both sides show the SYN clamped at the server and the
# SYN-ACK clamped at the client, an MSS already lower kept (a route with
# advmss 1000), an MSS inserted into a SYN without one (synblast -m 0), and
# traffic of the off group and of no group untouched; `mtugatectl stats
# --json` counts each in its group.
# Part 2: the same through a real openconnect tunnel (tests/netns/lib.sh): the
# gateway sees the inner SYN on the headend's inside leg, and the LAN server
# gets the group's MSS.
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "e2e-mss: needs root (network namespaces)"; exit 77; }
# lib.sh brings common.sh: one count for both parts.
. tests/netns/lib.sh

tmp=$(mktemp -d /tmp/mg-mss.XXXXXX)
chmod 755 "$tmp"
c=mgm$$-c gw=mgm$$-gw s=mgm$$-s
dpid='' dumps=''
lab_cleanup_hook() {
	[ -n "$dumps" ] && kill $dumps 2>/dev/null
	[ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null
	ns_destroy $c $gw $s
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
nc_() { ip netns exec $c "$@"; }

tool() {	# built by make, or here from the same sources
	if [ -x "$B/tools/$1" ]; then echo "$B/tools/$1"; return; fi
	${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -I. "tests/tools/$1.c" clamp/pkt.c -o "$tmp/$1" && echo "$tmp/$1"
}
SYNBLAST=$(tool synblast)

# A capture's packets, one line each (tcpdump -v continues lines with blanks).
records() {
	tcpdump -r "$1" -nn -vv 2>/dev/null |
		awk '/^[ \t]/ { l = l " " $0; next } { if (l != "") print l; l = $0 } END { if (l != "") print l }'
}
# syns PCAP SRC DST S|SA: the SYNs (S) or SYN-ACKs (SA) from SRC to DST
syns() {
	local f='Flags \[S\]'
	[ "$4" = SA ] && f='Flags \[S\.\]'
	records "$1" | grep -F " $2." | grep -F " > $3." | grep -E "$f"
}
# mss_is PCAP SRC DST S|SA MSS: there is one, and each carries MSS
mss_is() {
	local got
	got=$(syns "$1" "$2" "$3" "$4" | sed -n 's/.*[[,]mss \([0-9]*\).*/\1/p' | sort -u)
	[ "$got" = "$5" ]
}
# mss_above PCAP SRC DST MSS: the SYNs from SRC carry an MSS above MSS
mss_above() { local m; m=$(syns "$1" "$2" "$3" S | sed -n 's/.*[[,]mss \([0-9]*\).*/\1/p' | sort -n | head -1); [ "${m:-0}" -gt "$4" ]; }
# no_mss PCAP SRC DST: a SYN arrived, without an MSS option
no_mss() { syns "$1" "$2" "$3" S | grep -q . && ! syns "$1" "$2" "$3" S | grep -q 'mss '; }
# csum_ok PCAP SRC DST S|SA: every such packet has a correct TCP checksum
csum_ok() { syns "$@" | grep -q . && ! syns "$@" | grep -v 'cksum 0x[0-9a-f]* (correct)' | grep -q .; }

capture() {	# capture NS IF FILE FILTER: tcpdump in the background, ready when it returns
	ip netns exec "$1" tcpdump -i "$2" -nn -U -s 200 -w "$3" "$4" 2>"$3.err" &
	dumps="$dumps $!"
	wait_until 10 grep -q "listening on" "$3.err"
}

jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("v=d"+sys.argv[1]); print(v)' "$1" <<<"$json"; }

# ---- Part 1: three groups, IPv4 and IPv6, through one gateway -------------
ns_create $c $gw $s
ns_link $c 198.18.1.2/24 2001:db8:1::2/64 $gw 198.18.1.1/24 2001:db8:1::1/64
ns_link $s 198.18.3.2/24 2001:db8:3::2/64 $gw 198.18.3.1/24 2001:db8:3::1/64
ns_route $c 198.18.1.1 2001:db8:1::1
ns_route $s 198.18.3.1 2001:db8:3::1
ns_forwarding $gw
cif=v-$gw sif=v-$gw cif=${cif:0:15} sif=${sif:0:15}
# The client holds one address in each pool; the server a second address that
# the client reaches through a route with advmss 1000 (an MSS already lower).
for a in 192.0.2.2/32 192.0.2.18/32 192.0.2.34/32; do ip -n $c addr add $a dev "$cif"; done
for a in 2001:db8:10:a::2/128 2001:db8:10:b::2/128 2001:db8:10:c::2/128; do
	ip -n $c addr add $a dev "$cif" nodad; done
ip -n $s addr add 198.18.3.3/32 dev "$sif"
ip -n $s addr add 2001:db8:3::3/128 dev "$sif" nodad
ip -n $c route add 198.18.3.3 via 198.18.1.1 advmss 1000
ip -n $c -6 route add 2001:db8:3::3 via 2001:db8:1::1 advmss 1000
ip -n $gw route add 192.0.2.0/24 via 198.18.1.2
ip -n $gw -6 route add 2001:db8:10::/48 via 2001:db8:1::2

mkdir -p "$tmp/groups.d" "$tmp/run"
cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user = nobody
control_socket = $tmp/run/mtugate.sock
groups_dir = groups.d
log_level = debug
[queues]
mss = 0-1
pmtu = off
dtls = off
max_len = 4096
CONF
group() {	# group NAME POOL4 POOL6 MSS
	printf '[group]\nname = %s\npool = %s, %s\nmtu = 1400\nmss = %s\npmtu = no\n' "$@" \
		>"$tmp/groups.d/$1.conf"
}
group auto 192.0.2.0/28 2001:db8:10:a::/64 auto
group fixed 192.0.2.16/28 2001:db8:10:b::/64 1200
group off 192.0.2.32/28 2001:db8:10:c::/64 off
ctl() { ip netns exec $gw "$B/mtugatectl" -s "$tmp/run/mtugate.sock" "$@"; }

check "mtugated -t accepts the test configuration" "$B/mtugated" -t -c "$tmp/mtugate.conf"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ipset | ip netns exec $gw ipset restore -exist
check "the printed IPv4 rules apply" bash -c "'$B/mtugatectl' -c '$tmp/mtugate.conf' rules --iptables | ip netns exec $gw iptables-restore --noflush"
check "the printed IPv6 rules apply" bash -c "'$B/mtugatectl' -c '$tmp/mtugate.conf' rules --ip6tables | ip netns exec $gw ip6tables-restore --noflush"
# An administrator's own rules after mtugate's jumps: a queued packet comes back
# (NF_REPEAT) and goes on to them, and mtugate's mark bit 0x200 never reaches them.
admin() {	# admin TOOL POOL
	ip netns exec $gw $1 -t mangle -A PREROUTING -s $2 -p tcp --syn -m comment --comment admin-syn
	ip netns exec $gw $1 -t mangle -A PREROUTING -d $2 -p tcp --tcp-flags SYN,ACK SYN,ACK -m comment --comment admin-synack
	ip netns exec $gw $1 -t mangle -A PREROUTING -m mark --mark 0x200/0x200 -m comment --comment admin-leak
	ip netns exec $gw $1 -t filter -A FORWARD -m mark --mark 0x200/0x200 -m comment --comment admin-leak
}
admin iptables 192.0.2.0/28
admin ip6tables 2001:db8:10:a::/64
hits() { ip netns exec $gw $1-save -c | grep -E -- "--comment $2( |\$)" | awk '{ sub(/^\[/, ""); n += $0 + 0 } END { print n + 0 }'; }
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>"$tmp/daemon.log" &
dpid=$!
check "the control socket answers" wait_until 10 ctl ping

ip netns exec $s socat -u TCP4-LISTEN:8080,fork,reuseaddr OPEN:/dev/null 2>/dev/null &
disown
ip netns exec $s socat -u TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=1 OPEN:/dev/null 2>/dev/null &
disown
wait_until 10 lab_listening $s tcp 8080
wait_until 10 nc_ ping -c1 -W1 198.18.3.2
wait_until 10 nc_ ping -6 -c1 -W1 2001:db8:3::2
capture $c "$cif" "$tmp/c.pcap" tcp
capture $s "$sif" "$tmp/s.pcap" tcp

# One TCP connection each, data included; no retries, so the counts are exact.
tcp() {	# tcp 4|6 SRC DST
	local a=$2 b=$3
	[ "$1" = 6 ] && a=[$2] b=[$3]
	nc_ bash -c "echo hello | timeout 5 socat -u - TCP$1:$b:8080,bind=$a,connect-timeout=3"
}
for v in "4 192.0.2.2 198.18.3.2 auto" "6 2001:db8:10:a::2 2001:db8:3::2 auto" \
	 "4 192.0.2.18 198.18.3.2 fixed" "6 2001:db8:10:b::2 2001:db8:3::2 fixed" \
	 "4 192.0.2.34 198.18.3.2 off" "6 2001:db8:10:c::2 2001:db8:3::2 off" \
	 "4 198.18.1.2 198.18.3.2 none" "6 2001:db8:1::2 2001:db8:3::2 none" \
	 "4 192.0.2.2 198.18.3.3 auto, advmss 1000" "6 2001:db8:10:a::2 2001:db8:3::3 auto, advmss 1000"; do
	set -- $v
	check "IPv$1 TCP from $2 ($4${5:+ $5}) to $3 carries data" tcp $1 $2 $3
done
# SYNs without an MSS option, to a closed port: the server answers RST.
check "synblast sends an IPv4 SYN without MSS" nc_ "$SYNBLAST" -m 0 -p 9 192.0.2.3 198.18.3.2
check "synblast sends an IPv6 SYN without MSS" nc_ "$SYNBLAST" -m 0 -p 9 2001:db8:10:a::3 2001:db8:3::2

seen() { syns "$@" | grep -q .; }	# seen PCAP SRC DST S|SA
wait_until 5 seen "$tmp/c.pcap" 198.18.3.3 192.0.2.2 SA
wait_until 5 seen "$tmp/s.pcap" 2001:db8:10:a::3 2001:db8:3::2 S
kill $dumps 2>/dev/null; wait $dumps 2>/dev/null; dumps=

# expect GROUP FAM CLIENT SERVER SENT_SYN GOT_SYN SENT_SYNACK GOT_SYNACK
expect() {
	local g=$1 f=$2 a=$3 b=$4
	check "$g IPv$f: the client sends MSS $5" mss_is "$tmp/c.pcap" $a $b S $5
	check "$g IPv$f: the server sees MSS $6 in the SYN" mss_is "$tmp/s.pcap" $a $b S $6
	check "$g IPv$f: the server answers MSS $7" mss_is "$tmp/s.pcap" $b $a SA $7
	check "$g IPv$f: the client sees MSS $8 in the SYN-ACK" mss_is "$tmp/c.pcap" $b $a SA $8
	if [ "$5" != "$6" ]; then
		check "$g IPv$f: the clamped SYN's TCP checksum is right" csum_ok "$tmp/s.pcap" $a $b S
	fi
	if [ "$7" != "$8" ]; then
		check "$g IPv$f: the clamped SYN-ACK's TCP checksum is right" csum_ok "$tmp/c.pcap" $b $a SA
	fi
}
expect auto 4 192.0.2.2 198.18.3.2 1460 1360 1460 1360
expect auto 6 2001:db8:10:a::2 2001:db8:3::2 1440 1340 1440 1340
expect fixed 4 192.0.2.18 198.18.3.2 1460 1200 1460 1200
expect fixed 6 2001:db8:10:b::2 2001:db8:3::2 1440 1200 1440 1200
expect off 4 192.0.2.34 198.18.3.2 1460 1460 1460 1460
expect off 6 2001:db8:10:c::2 2001:db8:3::2 1440 1440 1440 1440
expect "no group" 4 198.18.1.2 198.18.3.2 1460 1460 1460 1460
expect "no group" 6 2001:db8:1::2 2001:db8:3::2 1440 1440 1440 1440
expect "auto, lower kept" 4 192.0.2.2 198.18.3.3 1000 1000 1460 1360
expect "auto, lower kept" 6 2001:db8:10:a::2 2001:db8:3::3 1000 1000 1440 1340
check "auto IPv4: the SYN is sent without MSS" no_mss "$tmp/c.pcap" 192.0.2.3 198.18.3.2
check "auto IPv4: the server sees MSS 536 inserted (min(1360, 536))" mss_is "$tmp/s.pcap" 192.0.2.3 198.18.3.2 S 536
check "auto IPv4: the grown SYN's TCP checksum is right" csum_ok "$tmp/s.pcap" 192.0.2.3 198.18.3.2 S
check "auto IPv6: the SYN is sent without MSS" no_mss "$tmp/c.pcap" 2001:db8:10:a::3 2001:db8:3::2
check "auto IPv6: the server sees MSS 1220 inserted (min(1340, 1220))" mss_is "$tmp/s.pcap" 2001:db8:10:a::3 2001:db8:3::2 S 1220
check "auto IPv6: the grown SYN's TCP checksum is right" csum_ok "$tmp/s.pcap" 2001:db8:10:a::3 2001:db8:3::2 S

json=$(ctl stats --json)
# auto: 4 SYN + SYN-ACK pairs lowered, 2 SYN-ACKs after advmss, 2 SYNs kept, 2 inserted.
for kv in auto.mss_rewritten=6 auto.mss_unchanged=2 auto.mss_inserted=2 \
	  fixed.mss_rewritten=4 fixed.mss_unchanged=0 fixed.mss_inserted=0 \
	  off.mss_rewritten=0 off.mss_unchanged=0 off.mss_inserted=0; do
	k=${kv%=*} g=${kv%%.*}
	check "stats --json: $g ${k#*.} = ${kv#*=}" test "$(jget "[\"groups\"][\"$g\"][\"${k#*.}\"]")" = "${kv#*=}"
done
# Only SYNs of a pool with an MSS are queued: 4 pairs, 2 pairs with advmss, 2 inserts.
check "stats --json: every SYN of a pool is seen once (14)" test "$(jget '["packets"]["seen"]')" = 14
check "stats --json: 12 rewritten, none malformed or dropped" \
	test "$(jget '["packets"]["rewritten"]'):$(jget '["packets"]["malformed"]'):$(jget '["packets"]["dropped"]')" = 12:0:0
# auto's pool sent 3 SYNs (two connections and synblast's) and got 2 SYN-ACKs, per family.
for t in iptables ip6tables; do
	check "$t: the admin's rule after mtugate's jump saw auto's 3 SYNs" test "$(hits $t admin-syn)" = 3
	check "$t: and its 2 SYN-ACKs" test "$(hits $t admin-synack)" = 2
	check "$t: mark bit 0x200 never left mtugate's chains" test "$(hits $t admin-leak)" = 0
done

# Rules printed before the resume guard: the packet is queued twice, and still passes.
ip netns exec $gw iptables -t mangle -D MTUGATE_PREROUTING -m mark --mark 0x200/0x200 -g MTUGATE_RESUME
check "without the guard, IPv4 TCP from auto still carries data" tcp 4 192.0.2.2 198.18.3.2
check "the daemon says the rules lack the guard" wait_until 5 grep -q "lack mtugate's resume guard" "$tmp/daemon.log"
json=$(ctl stats --json)
check "without the guard, its SYN and SYN-ACK were queued twice (14 + 4 seen)" test "$(jget '["packets"]["seen"]')" = 18
# The second accept ends the chain there: the admin's rule is passed by, as before the guard.
check "without the guard, the admin's rule is passed by (still 3)" test "$(hits iptables admin-syn)" = 3
check "and the bit is cleared all the same" test "$(hits iptables admin-leak)" = 0

kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=
check "mtugated stops cleanly (exit $rc)" test "$rc" = 0

# ---- Part 1b: the firewall marks packets itself (mwan3's 0x3f00) ----------
# [queues] mark_mask = 0x7f0000 moves mtugate's NF_REPEAT bit to 0x200000.
# The firewall's mark, set before mtugate's jump, survives the verdict; the
# rules after the jump see each SYN once, and neither bit leaves mtugate.
sed -i 's/^max_len = 4096$/max_len = 4096\nmark_mask = 0x7f0000/' "$tmp/mtugate.conf"
for t in iptables ip6tables; do
	for tb in raw mangle filter; do ip netns exec $gw $t -t $tb -F; ip netns exec $gw $t -t $tb -X; done
done
check "mark_mask: the printed IPv4 rules apply" bash -c "'$B/mtugatectl' -c '$tmp/mtugate.conf' rules --iptables | ip netns exec $gw iptables-restore --noflush"
check "mark_mask: the printed IPv6 rules apply" bash -c "'$B/mtugatectl' -c '$tmp/mtugate.conf' rules --ip6tables | ip netns exec $gw ip6tables-restore --noflush"
check "mark_mask: the resume guard matches 0x200000" bash -c \
	"ip netns exec $gw iptables -t mangle -S MTUGATE_PREROUTING | grep -q -- '--mark 0x200000/0x200000 -g MTUGATE_RESUME'"
for t in iptables ip6tables; do
	# In raw, a hook before mangle's: NF_REPEAT re-runs mangle only, so the mark
	# after mtugate's jump is the one the daemon's verdict handed back.
	ip netns exec $gw $t -t raw -I PREROUTING -j MARK --set-xmark 0x1100/0x3f00
	ip netns exec $gw $t -t mangle -A PREROUTING -p tcp --tcp-flags SYN,RST SYN -m mark --mark 0x1100/0x3f00 -m comment --comment own-kept
	ip netns exec $gw $t -t mangle -A PREROUTING -m mark --mark 0x200000/0x200000 -m comment --comment new-leak
	ip netns exec $gw $t -t filter -A FORWARD -m mark ! --mark 0x0/0x200200 -m comment --comment new-leak
done
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>"$tmp/daemon-marks.log" &
dpid=$!
check "mark_mask: the control socket answers" wait_until 10 ctl ping
capture $s "$sif" "$tmp/s2.pcap" tcp
check "mark_mask: IPv4 TCP from auto carries data" tcp 4 192.0.2.2 198.18.3.2
check "mark_mask: IPv6 TCP from auto carries data" tcp 6 2001:db8:10:a::2 2001:db8:3::2
wait_until 5 seen "$tmp/s2.pcap" 2001:db8:10:a::2 2001:db8:3::2 S
kill $dumps 2>/dev/null; wait $dumps 2>/dev/null; dumps=
check "mark_mask: the server sees MSS 1360 (IPv4)" mss_is "$tmp/s2.pcap" 192.0.2.2 198.18.3.2 S 1360
check "mark_mask: the server sees MSS 1340 (IPv6)" mss_is "$tmp/s2.pcap" 2001:db8:10:a::2 2001:db8:3::2 S 1340
json=$(ctl stats --json)
check "mark_mask: each SYN and SYN-ACK queued once (4 seen)" test "$(jget '["packets"]["seen"]')" = 4
for t in iptables ip6tables; do
	check "$t: the firewall's own mark survived the verdict on the SYN and SYN-ACK (2)" test "$(hits $t own-kept)" = 2
	check "$t: neither 0x200000 nor the default 0x200 left mtugate's chains" test "$(hits $t new-leak)" = 0
done
check_not "mark_mask: no complaint about the resume guard" grep -q "resume guard" "$tmp/daemon-marks.log"
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=
check "mark_mask: mtugated stops cleanly (exit $rc)" test "$rc" = 0
for n in $c $gw $s; do ip netns pids $n 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del $n; done

# ---- Part 2: inner TCP through a real openconnect tunnel ------------------
lab_tools() { local t; for t in ocserv openconnect openssl curl iperf3; do command -v $t || return 1; done; }
if ! lab_tools >/dev/null; then
	echo "e2e-mss: part 2 skipped: ocserv/openconnect missing (make deps)"
	finish
fi
progress "part 2: openconnect tunnel (lab_up)"
lab_up
# relay: mtu 1300, mss auto (1260 / 1240); tlsonly: a fixed 1200. The tunnel
# MTU is 1434, so the clients announce 1394 (IPv4) and 1374 (IPv6).
conf=$(lab_mtugate_conf proxy=no relay.mtu=1300 tlsonly.mss=1200)
check "lab: mtugated starts with the lab's rules" lab_mtugated_start "$conf"
rewritten_match() {	# rewritten_match GROUP PCAP: mss_rewritten = SYNs + SYN-ACKs in PCAP
	local n
	n=$(records "$2" | grep -cE 'Flags \[S\.?\]')
	json=$(mtugatectl stats --json)
	[ "$n" -gt 0 ] && [ "$(jget "[\"groups\"][\"$1\"][\"mss_rewritten\"]")" = "$n" ]
}
inner() {	# inner GROUP MSS4 MSS6
	local g=$1
	check "lab $g: openconnect connects" lab_connect "$g" || return
	capture "$NS_LAN" l-in "$LAB_DIR/lan-$g.pcap" "tcp port 80"
	capture "$NS_CLIENT" oc0 "$LAB_DIR/oc-$g.pcap" "tcp port 80"
	# The gateway's headend side: SYNs as they reach mtugated, SYN-ACKs as they leave it.
	# Stopped last: the tunnel may still deliver a late duplicate SYN (seen with DTLS).
	local first=$dumps
	capture "$NS_GW" g-dmz "$LAB_DIR/dmz-$g.pcap" "tcp port 80"
	check "lab $g: HTTP over IPv4 from $LAB_TUN4" n_client curl -s -o /dev/null --max-time 10 "http://$LAB_LAN4/"
	check "lab $g: HTTP over IPv6 from $LAB_TUN6" n_client curl -s -g -o /dev/null --max-time 10 "http://[$LAB_LAN6]/"
	# Each capture has written its last packet before it is stopped: tcpdump
	# drops what it has not read yet when killed.
	wait_until 5 seen "$LAB_DIR/oc-$g.pcap" "$LAB_LAN6" "$LAB_TUN6" SA
	wait_until 5 seen "$LAB_DIR/lan-$g.pcap" "$LAB_LAN6" "$LAB_TUN6" SA
	kill $first 2>/dev/null; wait $first 2>/dev/null
	check "lab $g: the client's SYN in the tunnel announces more than $2" mss_above "$LAB_DIR/oc-$g.pcap" "$LAB_TUN4" "$LAB_LAN4" $2
	check "lab $g: the LAN server sees MSS $2 from $LAB_TUN4" mss_is "$LAB_DIR/lan-$g.pcap" "$LAB_TUN4" "$LAB_LAN4" S $2
	check "lab $g: the LAN server sees MSS $3 from $LAB_TUN6" mss_is "$LAB_DIR/lan-$g.pcap" "$LAB_TUN6" "$LAB_LAN6" S $3
	check "lab $g: the client sees MSS $2 in the SYN-ACK on its tunnel" mss_is "$LAB_DIR/oc-$g.pcap" "$LAB_LAN4" "$LAB_TUN4" SA $2
	check "lab $g: the client sees MSS $3 in the SYN-ACK on its tunnel (IPv6)" mss_is "$LAB_DIR/oc-$g.pcap" "$LAB_LAN6" "$LAB_TUN6" SA $3
	# Each SYN and SYN-ACK that crossed the gateway was lowered once (retransmissions
	# and the tunnel's duplicates included), counted where they cross it: the LAN
	# capture can stop before a late duplicate arrives.
	check "lab $g: stats count every SYN and SYN-ACK crossing the gateway as mss_rewritten" \
		wait_until 5 rewritten_match "$g" "$LAB_DIR/dmz-$g.pcap"
	kill $dumps 2>/dev/null; wait $dumps 2>/dev/null; dumps=
	lab_disconnect
}
inner relay 1260 1240
relay_n=$(jget '["groups"]["relay"]["mss_rewritten"]')
inner tlsonly 1200 1200
check "lab: tlsonly's traffic left relay's count alone ($relay_n)" test "$(jget '["groups"]["relay"]["mss_rewritten"]')" = "$relay_n"
lab_mtugated_stop
finish
