#!/bin/bash
# Path MTU discovery through mtugated, end to end:
#
#   server (LAN) -- gateway (mtugated) -- headend -- client (holds pool addresses)
#   198.18.3.2      .3.1 | 198.18.2.1     .2.2 | 198.18.4.1   .4.2, 192.0.2.130-.140
#
# The headend carries at most 1300 bytes toward the pool (a route with mtu lock
# 1300: the tunnel) and its own frag-needed / Packet Too Big is dropped on the
# way out, so an oversize DF packet is black-holed there (docs/problem.md,
# step 7). The client's own link stays at 1500, so its SYN asks for MSS 1460,
# as an AnyConnect adapter set to the DTLS MTU does. Each check uses its own
# pool address, so no PMTU the server learned earlier hides the next result.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 77; }
for t in ethtool tcpdump socat ping python3; do
	command -v $t >/dev/null || { echo "needs $t"; exit 77; }
done
. tests/netns/common.sh

MTU=1300
tmp=$(mktemp -d /tmp/mg-icmp.XXXXXX)
chmod 755 "$tmp"	# the daemon re-reads its files as its own user
s=mgi$$-s gw=mgi$$-gw h=mgi$$-h c=mgi$$-c
pids=()
cleanup() {
	[ -n "${dpid:-}" ] && kill -9 "$dpid" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	ns_destroy $s $gw $h $c
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

ns_create $s $gw $h $c
ns_link $s 198.18.3.2/24 2001:db8:3::2/64  $gw 198.18.3.1/24 2001:db8:3::1/64
ns_link $gw 198.18.2.1/24 2001:db8:2::1/64  $h 198.18.2.2/24 2001:db8:2::2/64
ns_link $h 198.18.4.1/24 2001:db8:4::1/64  $c 198.18.4.2/24 2001:db8:4::2/64
ns_route $s 198.18.3.1 2001:db8:3::1
ns_route $h 198.18.2.1 2001:db8:2::1
ns_route $c 198.18.4.1 2001:db8:4::1
ns_forwarding $gw
ns_forwarding $h
for i in $(seq 130 140); do
	ip -n $c addr add 192.0.2.$i/32 dev lo
	ip -n $c addr add 2001:db8:0:80::$i/128 dev lo
done
ip -n $gw route add 192.0.2.128/26 via 198.18.2.2
ip -n $gw -6 route add 2001:db8:0:80::/64 via 2001:db8:2::2
# The tunnel: at most $MTU bytes toward the pool, and its ICMP never gets out.
ip -n $h route add 192.0.2.128/26 via 198.18.4.2 mtu lock $MTU
ip -n $h -6 route add 2001:db8:0:80::/64 via 2001:db8:4::2 mtu lock $MTU
ns $h iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP
ns $h ip6tables -A OUTPUT -p icmpv6 --icmpv6-type packet-too-big -j DROP
# Second sender address and many-sender prefix for the rate-limit bursts.
ip -n $s addr add 198.18.3.3/32 dev lo
ip -n $s route add local 198.19.0.0/16 dev lo
ip -n $gw route add 198.19.0.0/16 via 198.18.3.2
# Sizes as on the wire: no TSO/GSO super-packets from the server, no GRO
# merging on the gateway (the GSO check below turns TSO back on).
sif=v-$gw sif=${sif:0:15} gin=v-$s gin=${gin:0:15}
ns $s ethtool -K "$sif" tso off gso off >/dev/null 2>&1
ns $gw ethtool -K "$gin" gro off >/dev/null 2>&1
ns $s sysctl -qw net.ipv4.tcp_mtu_probing=0

mkdir -p "$tmp/groups.d"
cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user = nobody
control_socket = $tmp/run/mtugate.sock
groups_dir = groups.d
log_level = debug
[queues]
mss = off
pmtu = 2
dtls = off
CONF
group() {	# group PMTU_RATE
	cat >"$tmp/groups.d/tunnel.conf" <<GRP
[group]
name = tunnel
pool = 192.0.2.128/26, 2001:db8:0:80::/64
clients = 198.18.4.0/24
mtu = $MTU
dtls = pass
mss = off
pmtu = yes
pmtu_rate = $1
GRP
}
group 100
ctl() { ns $gw "$B/mtugatectl" -s "$tmp/run/mtugate.sock" "$@"; }
stat() {	# stat KEY: one counter of group tunnel, or packets.KEY
	ctl stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); k=sys.argv[1]
print(d["packets"][k[8:]] if k.startswith("packets.") else d["groups"]["tunnel"][k])' "$1"
}

# transfer ADDR PORT FAMILY: the server sends $tmp/tx.bin to the client, which
# writes what arrives to $tmp/rx.ADDR. Returns at once; xfer holds the two pids.
head -c 400000 /dev/urandom >"$tmp/tx.bin"
listening() { ns $c ss -Hltn | grep -q ":$1\b"; }
transfer() {
	local f=$tmp/rx.${1//:/_} dst=$1
	[ "$3" = 6 ] && dst="[$1]"
	: >"$f"
	ip netns exec $c socat -u TCP$3-LISTEN:$2,reuseaddr OPEN:"$f",creat,trunc 2>/dev/null &
	xfer=($!)
	wait_until 5 listening "$2"
	ip netns exec $s socat -u OPEN:"$tmp/tx.bin" TCP$3:"$dst":$2,connect-timeout=3 2>/dev/null &
	xfer+=($!)
	pids+=("${xfer[@]}")
}
complete() { cmp -s "$tmp/tx.bin" "$tmp/rx.${1//:/_}"; }
stalls() { ! wait_until "$2" complete "$1"; }
route_mtu() { ns $s ip route get "$1" | grep -qw "mtu $MTU"; }
no_route_mtu() { ! route_mtu "$1"; }

# 1. Without mtugate the transfer stalls: the headend's ICMP never arrives.
transfer 192.0.2.130 9000 4
check "without mtugate an IPv4 transfer stalls (black hole, 6 s)" stalls 192.0.2.130 6
check "and the server has learned no MTU" no_route_mtu 192.0.2.130
kill "${xfer[@]}" 2>/dev/null

"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ip6tables >"$tmp/rules6"
check "the printed IPv4 rules queue DF packets over $MTU toward the pool" \
	grep -q -- "-d 192.0.2.128/26 -m length --length $((MTU + 1)):65535 -m u32 --u32 \"4&0x4000=0x4000\"" "$tmp/rules4"
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --ipset | ns $gw ipset restore -exist
check "iptables-restore takes them" ns $gw iptables-restore --noflush "$tmp/rules4"
check "ip6tables-restore takes them" ns $gw ip6tables-restore --noflush "$tmp/rules6"
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>"$tmp/daemon.log" &
dpid=$!
check "mtugated answers on its socket" wait_until 10 ctl ping

# 2. With it: the server learns the MTU from the gateway and the transfer completes.
transfer 192.0.2.131 9001 4
check "with mtugate the IPv4 transfer completes" wait_until 20 complete 192.0.2.131
check "the server's route cache holds mtu $MTU for 192.0.2.131" route_mtu 192.0.2.131
transfer 2001:db8:0:80::131 9002 6
check "with mtugate the IPv6 transfer completes" wait_until 20 complete 2001:db8:0:80::131
check "the server's IPv6 route cache holds mtu $MTU" route_mtu 2001:db8:0:80::131
check "pmtu_sent counts the answers" test "$(stat pmtu_sent)" -ge 2
# Segments fit: what reached the client after the first answer is within the MTU.
cif=v-$h cif=${cif:0:15}
ip netns exec $c tcpdump -i "$cif" --immediate-mode -nn -U -w "$tmp/seg.pcap" "tcp dst port 9000 and dst host 192.0.2.132" 2>"$tmp/seg.err" &
tpid=$!; pids+=($tpid)
wait_until 5 grep -q "listening on" "$tmp/seg.err"
transfer 192.0.2.132 9000 4
check "a transfer to a fresh address completes" wait_until 20 complete 192.0.2.132
kill -INT $tpid; wait $tpid 2>/dev/null
maxlen=$(tcpdump -r "$tmp/seg.pcap" -nn -v 2>/dev/null | sed -n 's/.*, length \([0-9]*\)).*/\1/p' | sort -n | tail -1)
check "every data segment that arrived fits the MTU (largest IP packet: ${maxlen:-none})" \
	test "${maxlen:-99999}" -le "$MTU" -a "${maxlen:-0}" -gt $((MTU - 100))

# 3. ping -M do: the sender is told why, by the gateway's own address.
#    The transfers above spent this sender's per-host ICMP budget (10/s): a
#    suppressed answer is a lost ping, so poll until the bucket has refilled.
ping4() { out4=$(ns $s ping -n -M do -s 1400 -c 1 -W 1 192.0.2.133 2>&1); grep -q "Frag needed" <<<"$out4"; }
ping6() { out6=$(ns $s ping -n -6 -M do -s 1400 -c 1 -W 1 2001:db8:0:80::133 2>&1); grep -q "Packet too big" <<<"$out6"; }
wait_until 5 ping4
echo "$out4" | sed -n 2p
check "ping reports 'Frag needed and DF set (mtu = $MTU)'" grep -q "Frag needed and DF set (mtu = $MTU)" <<<"$out4"
check "from the gateway's address toward the server (198.18.3.1)" grep -q "^From 198.18.3.1 " <<<"$out4"
wait_until 5 ping6
echo "$out6" | sed -n 2p
check "ping -6 reports 'Packet too big' with mtu=$MTU" grep -q "Packet too big: mtu=$MTU" <<<"$out6"
check "from the gateway's IPv6 address toward the server" grep -q "^From 2001:db8:3::1 " <<<"$out6"
# Never-send: without DF nothing is answered; the headend fragments and the ping goes through.
#    Counted at the server by what the ICMP quotes (destination .134), since
#    late answers about the transfers above may still move pmtu_sent.
ip netns exec $s tcpdump -i "$sif" --immediate-mode -nn -U -w "$tmp/nodf.pcap" \
	"icmp[0] = 3 and icmp[1] = 4 and icmp[24:4] = 0xc0000286" 2>"$tmp/nodf.err" &
tpid=$!; pids+=($tpid)
wait_until 5 grep -q "listening on" "$tmp/nodf.err"
check "ping -M dont -s 1400 passes (fragmented, not answered)" \
	ns $s ping -n -M dont -s 1400 -c 1 -W 3 192.0.2.134
kill -INT $tpid; wait $tpid 2>/dev/null
check "no ICMP was sent for it" test "$(tcpdump -r "$tmp/nodf.pcap" -nn 2>/dev/null | wc -l)" = 0
check "a ping that fits passes untouched" ns $s ping -n -M do -s $((MTU - 28)) -c 1 -W 3 192.0.2.134

# 4. Rate limits, counted at the sender: ICMP received against the budget.
#    burst SRC N SECONDS: N oversize packets to .135 in SECONDS; prints "sent icmp tcpdump
#    suppressed". tcpdump counts only answers quoting a packet to .135 (icmp[24:4]).
burst() {
	local sup0 f=$tmp/burst.pcap out
	sup0=$(stat pmtu_suppressed)
	ip netns exec $s tcpdump -i "$sif" --immediate-mode -nn -U -w "$f" "icmp[0] = 3 and icmp[1] = 4 and icmp[24:4] = 0xc0000287" 2>"$tmp/burst.err" &
	tpid=$!
	wait_until 5 grep -q "listening on" "$tmp/burst.err"
	t0=$(date +%s%N)
	out=$(ns $s "$B/tools/pmtublast" "$1" 192.0.2.135 1400 "$3" "$(awk "BEGIN { print $2 / $3 }")" 2>&1)
	wall=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "  $1: $out" >&2
	kill -INT $tpid; wait $tpid 2>/dev/null
	echo "$(sed -n 's/.* sent=\([0-9]*\) icmp=\([0-9]*\).*/\1 \2/p' <<<"$out")" \
		"$(tcpdump -r "$f" -nn 2>/dev/null | wc -l) $(( $(stat pmtu_suppressed) - sup0 )) $wall"
}
group 5
check "reload with pmtu_rate = 5" ctl reload
read -r sent icmp seen sup wall < <(burst 198.18.3.2/32 40 0.50)
# The group bucket: 5 at once, then 5/s for as long as the burst really took
# (0.5 s, longer on a busy machine): at most 5 + 5 * wall + 1.
max=$(( 5 + (5 * wall + 999) / 1000 + 1 ))
check "the sender sent all 40 ($sent)" test "$sent" = 40
check "group pmtu_rate 5: $icmp of 40 answered (expected 5..$max in ${wall} ms)" test "$icmp" -ge 5 -a "$icmp" -le "$max"
check "tcpdump at the sender counts the same ($seen)" test "$seen" = "$icmp"
check "pmtu_suppressed grew by the rest ($sup of $sent)" test "$sup" = $((sent - icmp))
group 1000
check "reload with pmtu_rate = 1000" ctl reload
# The first burst spent tokens of the buckets this one meets too: its
# sender's /24 (10/s) and the destination's (20/s). Full again after 2 s of
# the daemon's own clock.
uptime_s() { ctl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uptime_s"])'; }
u0=$(uptime_s)
refilled() { [ "$(uptime_s)" -ge $((u0 + 3)) ]; }	# whole seconds: 3 is at least 2
wait_until 10 refilled
read -r sent icmp seen sup wall < <(burst 198.18.3.3/32 40 0.20)
# The per-host limit (10 at once, 10/s): one sender gets at most 10 + 10 * wall + 1.
max=$(( 10 + (10 * wall + 999) / 1000 + 1 ))
check "per-host limit: $icmp of 40 answered to one sender (expected 10..$max in ${wall} ms)" test "$icmp" -ge 10 -a "$icmp" -le "$max"
check "tcpdump at the sender counts the same ($seen)" test "$seen" = "$icmp"
check "pmtu_suppressed grew by the rest ($sup of $sent)" test "$sup" = $((sent - icmp))
# Issue 17: senders count by their /24: 40 addresses of one /24 get one sender's budget.
read -r sent icmp seen sup wall < <(burst 198.19.0.0/16 40 0.20)
max=$(( 10 + (10 * wall + 999) / 1000 + 1 ))
check "40 senders of one /24: $icmp answered, one sender's budget (expected 10..$max in ${wall} ms)" test "$icmp" -ge 10 -a "$icmp" -le "$max"
check "tcpdump at the sender counts the same ($seen)" test "$seen" = "$icmp"
check "pmtu_suppressed grew by the rest ($sup of $sent)" test "$sup" = $((sent - icmp))
# Drainers from six /24s toward one tunnel (.135, 300 packets/s for 2 s) and a sender of
# another network toward another tunnel (.139, 5/s) at the same time, with a group budget of
# 30/s: the drainers spend .135's budget (20/s), and the other sender is still answered.
# With budgets per sender and group only, the drainers took the group's and it got few.
group 30
check "reload with pmtu_rate = 30" ctl reload
# Counted at the server by what the ICMP quotes (.135): each pmtublast's raw socket sees them all.
ip netns exec $s tcpdump -i "$sif" --immediate-mode -nn -U -w "$tmp/drain.pcap" \
	"icmp[0] = 3 and icmp[1] = 4 and icmp[24:4] = 0xc0000287" 2>"$tmp/drain.err" &
tpid=$!; pids+=($tpid)
wait_until 5 grep -q "listening on" "$tmp/drain.err"
drainers=()
for i in 1 2 3 4 5 6; do
	ns $s "$B/tools/pmtublast" 198.19.$i.0/24 192.0.2.135 1400 2 50 >"$tmp/drain.$i" 2>&1 &
	drainers+=($!)
done
pids+=("${drainers[@]}")
legit=$(ns $s "$B/tools/pmtublast" 198.18.3.3/32 192.0.2.139 1400 2 5 2>&1)
wait "${drainers[@]}"	# pmtublast ends by itself 2.3 s after it started
kill -INT $tpid; wait $tpid 2>/dev/null
dsent=$(cat "$tmp"/drain.? | sed -n 's/.*sent=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
drained=$(tcpdump -r "$tmp/drain.pcap" -nn 2>/dev/null | wc -l)
echo "  drainers: $dsent sent, $drained answered; other sender: $legit" >&2
read -r lsent licmp < <(sed -n 's/.* sent=\([0-9]*\) icmp=\([0-9]*\).*/\1 \2/p' <<<"$legit")
check "the drainers sent their 600 ($dsent)" test "$dsent" = 600
check "the other sender sent its 10 (${lsent:-none})" test "${lsent:-0}" = 10
check "the other sender was answered for all of them while the group was under attack (${licmp:-0} of 10)" test "${licmp:-0}" -ge 9
check "the drainers got at most .135's budget (20 + 20/s for 2.3 s: $drained)" test "$drained" -le 70

# 5. GSO: with TSO back on, the gateway sees super-packets over the MTU made of
#    segments it cannot see. They pass, and are answered, so the sender still learns.
ns $s ethtool -K "$sif" tso on gso on >/dev/null 2>&1
transfer 192.0.2.136 9003 4
check "with TSO on at the server the transfer completes" wait_until 20 complete 192.0.2.136
check "and the server learned mtu $MTU" route_mtu 192.0.2.136
check "no packet was malformed" test "$(stat packets.malformed)" = 0

kill -TERM $dpid; wait $dpid; rc=$?; dpid=
check "mtugated stops cleanly ($rc)" test "$rc" = 0

# 6. The same super-packets when mtugate clamps the group's SYNs too: their segments fit
#    by construction (MSS $((MTU - 40))). The clamp's rules mark the connection (the tag,
#    no flag), and the PMTU rules let it pass in the kernel: no super-packet is queued,
#    none is answered, the group's ICMP budget pays nothing (answering them starved the
#    senders that needed an answer).
sed -i 's/^mss = off$/mss = 0/' "$tmp/mtugate.conf"
sed -i 's/^mss = off$/mss = auto/' "$tmp/groups.d/tunnel.conf"
ns $gw iptables -t mangle -F; ns $gw iptables -t mangle -X
"$B/mtugatectl" -c "$tmp/mtugate.conf" rules --iptables >"$tmp/rules4"
check "the rules with the mss queue apply" ns $gw iptables-restore --noflush "$tmp/rules4"
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>>"$tmp/daemon.log" &
dpid=$!
check "mtugated restarts with the mss queue" wait_until 10 ctl ping
transfer 192.0.2.137 9004 4
check "with TSO on and the SYN clamped the transfer completes" wait_until 20 complete 192.0.2.137
pmtu_seen() { ctl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["queues"]["2"]["seen"])'; }
check "the connection carries the clamp's mark (0x4d540000)" bash -c "ip netns exec $gw conntrack -L -p tcp --dport 9004 2>/dev/null | grep -q 'mark=1297350656 '"
check "no super-packet reached the pmtu queue ($(pmtu_seen) seen)" test "$(pmtu_seen)" = 0
check "none was answered (pmtu_sent $(stat pmtu_sent))" test "$(stat pmtu_sent)" = 0
check "none was charged (pmtu_suppressed $(stat pmtu_suppressed))" test "$(stat pmtu_suppressed)" = 0
check "the server learned no MTU: it needed none" no_route_mtu 192.0.2.137

# 7. Fragmented IPv6 through a stateful gateway: conntrack reassembles the fragments before
#    FORWARD, and the datagram looks oversize though every fragment fits. UDP (what is
#    fragmented in practice) is not queued: it arrives whole, where a Packet Too Big would
#    have black-holed it for good (the sender cannot fragment below 1280).
ns $gw ip6tables -A FORWARD -m conntrack --ctstate INVALID -j DROP
ip -n $s -6 route add 2001:db8:0:80::138/128 via 2001:db8:3::1 mtu 1280
: >"$tmp/frag.rx"
ip netns exec $c socat -u UDP6-RECV:9005,bind=[2001:db8:0:80::138] OPEN:"$tmp/frag.rx",creat,append 2>/dev/null &
pids+=($!)
wait_until 5 bash -c "ip netns exec $c ss -Huln | grep -q ':9005 '"
head -c 3000 /dev/urandom >"$tmp/frag.tx"
sent0=$(stat pmtu_sent)
ns $s python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.sendto(open(sys.argv[1],"rb").read(), ("2001:db8:0:80::138", 9005))' "$tmp/frag.tx"
arrived() { cmp -s "$tmp/frag.tx" "$tmp/frag.rx"; }
check "a 3000-byte IPv6 datagram in fragments of 1280 arrives whole" wait_until 5 arrived
check "and no Packet Too Big was sent for it" test "$(stat pmtu_sent)" = "$sent0"
kill -TERM $dpid; wait $dpid; rc=$?; dpid=
check "mtugated stops cleanly ($rc)" test "$rc" = 0
finish e2e-icmp
