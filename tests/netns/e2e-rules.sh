#!/bin/bash
# The printed rules in a fresh namespace: iptables-restore / ip6tables-restore
# --noflush take them, re-applying leaves every rule once, a changed
# configuration replaces the old rules, the TPROXY routes apply with sh -e,
# and nft accepts the inet table (queue statements aside: this kernel has no
# nft queue, docs lab-notes).
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 77; }
. tests/netns/common.sh

tmp=$(mktemp -d /tmp/mg-rules.XXXXXX)
ns=mgr$$
cleanup() {
	ns_destroy $ns-c $ns-s 2>/dev/null
	ip netns del $ns 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ns_create $ns

mkdir -p "$tmp/groups.d"
cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user =
control_socket = $tmp/mtugate.sock
groups_dir = groups.d
[queues]
mss = 0-1
pmtu = 2
dtls = 3
[headend]
address = 198.18.2.2, 2001:db8:2::2
tls_port = 443
dtls_port = 444
advertised_dtls_port = 443
[proxy]
enable = yes
listen_port = 8443
CONF
group() { # group FILE NAME POOLS MSS PMTU
	printf '[group]\nname = %s\nauth_group = %s\npool = %s\nmtu = 1380\nmss = %s\npmtu = %s\n' \
		"$2" "$2" "$3" "$4" "$5" >"$tmp/groups.d/$1"
}
group a.conf alpha "192.0.2.128/26, 2001:db8:0:80::/64" auto yes
group b.conf beta "192.0.2.192/26, 2001:db8:0:c0::/64" off no
group c.conf gamma "192.0.2.0/26, 2001:db8:0:0::/64" 1200 yes

ctl() { "$B/mtugatectl" -c "$tmp/mtugate.conf" "$@"; }
dups() { # dups TOOL: rule lines that iptables-save shows more than once in a table
	ip netns exec $ns "$1-save" | awk '/^\*/ { t = $0 } /^-A/ { print t, $0 }' | sort | uniq -d
}
count() { ip netns exec $ns "$1-save" | grep -c -- "$2"; }

# The ipsets first: the DTLS rules match and fill them.
check "ipset restore takes the printed sets" bash -c "'$B/mtugatectl' -c '$tmp/mtugate.conf' rules --ipset | ip netns exec $ns ipset restore -exist"
check "and takes them again" bash -c "'$B/mtugatectl' -c '$tmp/mtugate.conf' rules --ipset | ip netns exec $ns ipset restore -exist"
for t in iptables ip6tables; do
	ctl rules --$t >"$tmp/$t.first" && ctl rules --$t --no-hooks >"$tmp/$t.again"
	check "$t: the first application is taken" ip netns exec $ns $t-restore --noflush "$tmp/$t.first"
	n1=$(ip netns exec $ns $t-save | grep -c '^-A')
	check "$t: re-applying (--no-hooks) is taken" ip netns exec $ns $t-restore --noflush "$tmp/$t.again"
	check "$t: and again" ip netns exec $ns $t-restore --noflush "$tmp/$t.again"
	check "$t: no rule twice after three applications" test -z "$(dups $t)"
	check "$t: the rule count is unchanged ($n1)" test "$(ip netns exec $ns $t-save | grep -c '^-A')" = "$n1"
	check "$t: every printed rule is in force" test "$n1" = "$(grep -c '^-[AI] ' "$tmp/$t.first")"
	check "$t: one jump from mangle PREROUTING" test "$(count $t '^-A PREROUTING -j MTUGATE_PREROUTING')" = 1
	check "$t: one jump from filter FORWARD" test "$(count $t '^-A FORWARD -j MTUGATE_FORWARD')" = 1
	check "$t: and no other jump from FORWARD" test "$(count $t '^-A FORWARD ')" = 1
	check "$t: one jump from nat PREROUTING" test "$(count $t '^-A PREROUTING -j MTUGATE_DNAT')" = 1
	check "$t: the --hooks shell lines add nothing more" bash -c "ctl() { \"$B/mtugatectl\" -c '$tmp/mtugate.conf' \"\$@\"; }; ctl rules --hooks | grep \"^$t \" | ip netns exec $ns sh -e"
	check "$t: still one jump each" test "$(count $t 'j MTUGATE_PREROUTING$')$(count $t 'j MTUGATE_FORWARD$')$(count $t 'j MTUGATE_DNAT$')" = 111
	check "$t: SYN and SYN-ACK only, with --queue-bypass" test "$(count $t 'tcp-flags SYN,RST SYN .*--queue-balance 0:1 --queue-bypass')" = 4
	check "$t: beta (mss off, pmtu no) has no rule" test "$(count $t 'beta')" = 0
done

# A changed configuration replaces the old rules: gamma's pool disappears.
rm "$tmp/groups.d/c.conf"
ctl rules --iptables --no-hooks >"$tmp/iptables.changed"
check "iptables: the changed rules are taken" ip netns exec $ns iptables-restore --noflush "$tmp/iptables.changed"
check "iptables: gamma's rules are gone" test "$(count iptables '192.0.2.0/26')" = 0
check "iptables: alpha's rules stay (SYN mark and queue each way, PMTU)" test "$(count iptables '192.0.2.128/26')" = 5
check "iptables: still no rule twice" test -z "$(dups iptables)"

ctl rules --routes >"$tmp/routes"
check "the TPROXY routes apply with sh -e" ip netns exec $ns sh -e "$tmp/routes"
check "ip rule: fwmark 0x100/0x100 lookup 100" bash -c "ip -N -n $ns rule | grep -q 'fwmark 0x100/0x100 lookup 100'"
check "ip -6 rule: fwmark 0x100/0x100 lookup 100" bash -c "ip -N -n $ns -6 rule | grep -q 'fwmark 0x100/0x100 lookup 100'"
check "local route in table 100" bash -c "ip -n $ns route show table 100 | grep -q '^local default dev lo'"

if command -v nft >/dev/null; then
	ctl rules --nft >"$tmp/rules.nft"
	# Without nft's queue expression in this kernel, check the rest with a counter in its place.
	sed 's/ queue num .*$/ counter/' "$tmp/rules.nft" >"$tmp/rules-noqueue.nft"
	check "nft -c accepts the table (queue statements replaced)" ip netns exec $ns nft -c -f "$tmp/rules-noqueue.nft"
	check "nft -f applies it" ip netns exec $ns nft -f "$tmp/rules-noqueue.nft"
	check "nft -f applies it again (the table is replaced)" ip netns exec $ns nft -f "$tmp/rules-noqueue.nft"
	check "one inet mtugate table" test "$(ip netns exec $ns nft list tables | grep -c 'inet mtugate')" = 1
	# The resume guard (a decided packet back from the queue) heads each base chain that queues.
	guard='meta mark & 0x00000200 == 0x00000200 meta mark set meta mark & 0xfffffdff return'
	# Only the exit of a decided DTLS flow's later packets comes before it, and in
	# prerouting, with the proxy, the log of the headend's first answer in a flow (one rule
	# per headend address: that answer's flow is a settled one).
	settled='meta l4proto udp meta mark & 0x00000200 == 0x00000000 ct mark & 0xffff0001 == 0x4d540001 return'
	answer='ct reply packets 1 ct state established ct direction reply log group'
	check "prerouting first logs the headend's first DTLS answer (one rule per headend)" test "$(ip netns exec $ns nft list chain inet mtugate prerouting | grep -A3 'chain prerouting' | grep -cF "$answer")" = 2
	check "a settled DTLS flow leaves prerouting and forward first" test "$(ip netns exec $ns nft list table inet mtugate | grep -A4 -E 'chain (prerouting|forward)' | grep -cF "$settled")" = 2
	check "the resume guard follows it" test "$(ip netns exec $ns nft list table inet mtugate | grep -A5 -E 'chain (prerouting|forward)' | grep -A1 -F "$settled" | grep -cF "$guard")" = 2
	check "no rule twice in it" test -z "$(ip netns exec $ns nft list table inet mtugate | awk '/^\tset /,/^\t}/{next} 1' | grep -vF -e "$guard" -e "$settled" | grep -v '^\s*$' | sort | uniq -d | grep -v '}')"
	check "the queue statements fail only for want of nft queue, if at all" bash -c \
		"ip netns exec $ns nft -c -f '$tmp/rules.nft' 2>&1 | grep -v '^\s' | grep -v 'Could not process rule: No such file or directory' | grep -q . && exit 1 || exit 0"
fi

# [queues] mark_mask: the same rules with every mark moved (proxy 0x100000,
# NF_REPEAT 0x200000, DTLS 0x4f0000) are taken by the kernel as well.
sed -i 's/^\[queues\]$/[queues]\nmark_mask = 0x7f0000/; s/^\[proxy\]$/[proxy]\nroute_table = 4242/' "$tmp/mtugate.conf"
ip -n $ns rule del fwmark 0x100/0x100 lookup 100 2>/dev/null
ip -n $ns -6 rule del fwmark 0x100/0x100 lookup 100 2>/dev/null
ip -n $ns route flush table 100
ip -n $ns -6 route flush table 100
for t in iptables ip6tables; do
	ctl rules --$t --no-hooks >"$tmp/$t.marks"
	check "mark_mask: $t takes the moved rules" ip netns exec $ns $t-restore --noflush "$tmp/$t.marks"
	check "mark_mask: $t: the resume guard matches 0x200000" test "$(count $t '-m mark --mark 0x200000/0x200000 -g MTUGATE_RESUME')" = 2
	check "mark_mask: $t: the DTLS connection mark is saved within 0x4f0000" test "$(count $t '--nfmask 0x4f0000 --ctmask 0x4f0000')" = 1
	check "mark_mask: $t: no default mark left in mtugate's chains" test "$(ip netns exec $ns $t-save | grep MTUGATE | grep -cE '0x4d54|0xffff|0x200/|0x100/')" = 0
done
ctl rules --routes >"$tmp/routes.marks"
check "mark_mask: the TPROXY routes apply" ip netns exec $ns sh -e "$tmp/routes.marks"
check "mark_mask: ip rule: fwmark 0x100000/0x100000 lookup 4242 (route_table)" bash -c "ip -n $ns rule | grep -q 'fwmark 0x100000/0x100000 lookup 4242'"
check "route_table: the local route is in table 4242" bash -c "ip -n $ns route show table 4242 | grep -q '^local default dev lo'"
check "route_table: and the IPv6 one" bash -c "ip -n $ns -6 route show table 4242 | grep -q '^local default dev lo'"
if command -v nft >/dev/null; then
	ctl rules --nft | sed 's/ queue num .*$/ counter/' >"$tmp/rules-marks.nft"
	check "mark_mask: nft -f applies the moved table (queue statements replaced)" ip netns exec $ns nft -f "$tmp/rules-marks.nft"
	guard='meta mark & 0x00200000 == 0x00200000 meta mark set meta mark & 0xffdfffff return'
	check "mark_mask: nft: the resume guard on 0x200000 is at the top of prerouting and forward (after the settled flows' exit)" test "$(ip netns exec $ns nft list table inet mtugate | grep -A5 -E 'chain (prerouting|forward)' | grep -cF "$guard")" = 2
	check "mark_mask: nft: no default mark left" test "$(ip netns exec $ns nft list table inet mtugate | grep -cE '0x4d54|0x00000200|0x00000100|0xffff0000')" = 0

	# Real datagrams through that table: $ns routes between a client and the headend
	# (198.18.2.2, 2001:db8:2::2). A chain before mtugate's marks DTLS to the advertised
	# port as the daemon's verdict would (tag|normalize|decided, 0x430000) on top of the
	# firewall's own 0x3f00 bits: the nat chain moves it to the real port, and the
	# connection's mark gets mtugate's bits alone.
	if command -v conntrack >/dev/null; then
		for t in iptables ip6tables; do
			for tb in mangle nat filter; do ip netns exec $ns $t -t $tb -F; ip netns exec $ns $t -t $tb -X; done
		done
		ns_create $ns-c $ns-s
		ns_link $ns-c 198.18.1.2/24 2001:db8:1::2/64 $ns 198.18.1.1/24 2001:db8:1::1/64
		ns_link $ns-s 198.18.2.2/24 2001:db8:2::2/64 $ns 198.18.2.1/24 2001:db8:2::1/64
		ns_route $ns-c 198.18.1.1 2001:db8:1::1
		ns_route $ns-s 198.18.2.1 2001:db8:2::1
		ns_forwarding $ns
		printf 'table inet verdict {\n\tchain pre {\n\t\ttype filter hook prerouting priority mangle - 5; policy accept;\n\t\tudp dport 443 meta mark set 0x433f00\n\t}\n}\n' \
			| ip netns exec $ns nft -f -
		wait_until 10 ip netns exec $ns-c ping -c1 -W1 198.18.2.2 >/dev/null
		wait_until 10 ip netns exec $ns-c ping -6 -c1 -W1 2001:db8:2::2 >/dev/null
		ip netns exec $ns conntrack -F >/dev/null 2>&1
		ip netns exec $ns-c socat -u - UDP4:198.18.2.2:443,sourceport=40000 <<<dtls
		ip netns exec $ns-c socat -u - UDP6:[2001:db8:2::2]:443,sourceport=40001 <<<dtls
		ct() { ip netns exec $ns conntrack -L -f "$1" -p udp --orig-port-dst 443 2>/dev/null; }
		check "nft: the moved normalize bit DNATs IPv4 DTLS from 443 to the real port 444" bash -c "$(declare -f ct); ns=$ns; ct ipv4 | grep -q 'sport=444 dport=40000'"
		check "nft: and IPv6" bash -c "$(declare -f ct); ns=$ns; ct ipv6 | grep -q 'sport=444 dport=40001'"
		check "nft: the connection's mark is mtugate's bits alone (0x430000, not the packet's 0x433f00)" \
			bash -c "$(declare -f ct); ns=$ns; ct ipv4 | grep -q 'mark=$((0x430000)) ' && ct ipv6 | grep -q 'mark=$((0x430000)) '"

		# The proxy intake under nft, with real TCP from a pool address (alpha's
		# 192.0.2.130, 2001:db8:0:80::2) through $ns, which has a transparent
		# listener on the proxy's port, as the proxy has:
		# - a connection to another host's port 8443 reaches that host: the
		#   socket match takes the proxy's own connections, not its wildcard
		#   listener (as iptables' socket match);
		# - a `proxy = no` group's client: its SYN to port 443 still meets the
		#   MSS rules after the intake returns (a return in prerouting itself
		#   would end the chain, unclamped).
		printf '[group]\nname = certs\npool = 198.19.9.0/24\nclients = 192.0.2.128/26, 2001:db8:0:80::/64\nmtu = 1380\nproxy = no\n' \
			>"$tmp/groups.d/d.conf"
		ctl rules --nft | sed 's/ queue num .*$/ counter/' >"$tmp/rules-proxy.nft"
		check "nft: the table with a proxy = no group applies" ip netns exec $ns nft -f "$tmp/rules-proxy.nft"
		ip -n $ns-c addr add 192.0.2.130/32 dev "$(printf %.15s "v-$ns")"
		ip -n $ns-c addr add 2001:db8:0:80::2/128 dev "$(printf %.15s "v-$ns")" nodad
		ip -n $ns route add 192.0.2.128/26 via 198.18.1.2
		ip -n $ns -6 route add 2001:db8:0:80::/64 via 2001:db8:1::2
		cat >"$tmp/tlisten.py" <<'PY'
import select, socket, sys
out = open(sys.argv[1], "a", buffering=1)
ls = []
for fam, addr, lvl, opt in ((socket.AF_INET, "0.0.0.0", socket.SOL_IP, 19),
                            (socket.AF_INET6, "::", socket.IPPROTO_IPV6, 75)):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(lvl, opt, 1)		# IP_TRANSPARENT, IPV6_TRANSPARENT
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8443)); s.listen(16); ls.append(s)
print("listening", file=out)
while True:
    for s in select.select(ls, [], [])[0]:
        c, peer = s.accept()
        print("taken", peer[0], c.getsockname()[0], file=out)
        c.close()
PY
		: >"$tmp/tlisten.log"
		ip netns exec $ns python3 "$tmp/tlisten.py" "$tmp/tlisten.log" & tlisten=$!
		check "a transparent listener on 8443 in the gateway, as the proxy's" wait_until 10 grep -q listening "$tmp/tlisten.log"
		ip netns exec $ns-s socat -u TCP4-LISTEN:8443,reuseaddr,fork OPEN:"$tmp/far4",creat,append & far4=$!
		ip netns exec $ns-s socat -u TCP6-LISTEN:8443,reuseaddr,fork,ipv6only=1 OPEN:"$tmp/far6",creat,append & far6=$!
		wait_until 10 bash -c "ip netns exec $ns-s ss -ltn | grep -q ':8443 .*:\*'"
		send() { ip netns exec $ns-c socat -u - "$1" <<<"$2" 2>/dev/null; }
		check "nft: TCP from a pool to another host's 8443 is carried there (IPv4)" \
			wait_until 10 bash -c "$(declare -f send); ns=$ns; send TCP4:198.18.2.2:8443,bind=192.0.2.130,connect-timeout=2 far4 && grep -q far4 '$tmp/far4'"
		check "nft: and IPv6" \
			wait_until 10 bash -c "$(declare -f send); ns=$ns; send TCP6:[2001:db8:2::2]:8443,bind=[2001:db8:0:80::2],connect-timeout=2 far6 && grep -q far6 '$tmp/far6'"
		check_not "nft: the transparent listener in the gateway took none of them" grep -q taken "$tmp/tlisten.log"
		kill $tlisten $far4 $far6 2>/dev/null; wait $tlisten $far4 $far6 2>/dev/null
		mss_seen() {	# mss_seen ip|ip6 POOL: the SYN counter of the MSS rule for POOL as source
			ip netns exec $ns nft list chain inet mtugate prerouting |
				awk -v f="$1 saddr $2 tcp flags" 'index($0, f) { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
		}
		send TCP4:198.18.2.2:443,bind=192.0.2.130,connect-timeout=2 x
		send TCP6:[2001:db8:2::2]:443,bind=[2001:db8:0:80::2],connect-timeout=2 x
		check "nft: a proxy = no client's SYN to 443 meets the MSS rule after the intake (IPv4)" test "$(mss_seen ip 192.0.2.128/26)" -ge 1
		check "nft: and IPv6" test "$(mss_seen ip6 2001:db8:0:80::/64)" -ge 1
	fi
fi
finish e2e-rules
