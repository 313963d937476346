#!/bin/bash
# `mtugatectl check` on a gateway whose rules the rules unit's own script
# (debian/mtugate-rules) applied: "deployment OK" and exit 0; then each check
# meets the one thing it is about, broken on purpose, and must name it (exit 1):
# forwarding off, conntrack unloaded, a rule deleted, a stale rule, a hook gone, the firewall's
# `nft flush ruleset` (what `systemctl reload nftables` runs), the daemon
# stopped (queues unbound), the headend unreachable, another rule on
# mtugate's mark bits, a group with tunnels whose pool's SYNs never reach the
# mss queue, an uplink toward the clients too small for a relay group's DTLS
# (DS-Lite 1460), packets the mss queue let by while nothing was bound, and
# with the proxy: TPROXY's ip rule gone, a route of
# another tool in its table, a default-drop INPUT, nothing dropping direct
# connections to the listener, a listener on its port reachable from outside; then the nft
# backend.
# conntrack unloaded is shown as check sees it: /proc/sys/net/netfilter hidden in a mount
# namespace (a network namespace cannot unload a module).
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 77; }
for t in iptables-restore ip6tables-restore ipset nft socat openssl; do
	command -v $t >/dev/null || { echo "needs $t (make deps)"; exit 77; }
done
. tests/netns/common.sh

tmp=$(mktemp -d /tmp/mg-check.XXXXXX)
chmod 755 "$tmp"
gw=mgk$$-gw he=mgk$$-he cl=mgk$$-cl
cleanup() {
	ns_destroy $gw $he $cl
	ip netns list 2>/dev/null | awk '/^mtugate-check-/ { print $1 }' | while read -r n; do
		# a check killed half-way would leave its scratch namespace
		case $n in mtugate-check-*) ip netns del "$n" 2>/dev/null ;; esac
	done
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp" "$tmp.private"
}
trap cleanup EXIT
ns_create $gw $he $cl
ns_link $gw 198.18.2.1/24 2001:db8:2::1/64 $he 198.18.2.2/24 2001:db8:2::2/64
# The clients' side: the relay group's clients are 198.18.1.0/24 (the uplink check's route).
ns_link $gw 198.18.1.1/24 2001:db8:1::1/64 $cl 198.18.1.2/24 2001:db8:1::2/64
ns_route $cl 198.18.1.1 2001:db8:1::1
ns_forwarding $gw
ip netns exec $gw modprobe nf_conntrack 2>/dev/null
ip netns exec $gw sysctl -qw net.netfilter.nf_conntrack_max=65536 2>/dev/null

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=headend \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1
chmod 600 "$tmp/key.pem"
mkdir -p "$tmp/groups.d"
conf() {	# conf yes|no [off]: the proxy on or off; off: no queues at all
	local q1=40 q2=42 q3=43
	[ "${2:-}" = off ] && q1=off q2=off q3=off
	cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user =
control_socket = $tmp/run/mtugate.sock
groups_dir = groups.d
[queues]
mss = $q1
pmtu = $q2
dtls = $q3
[headend]
address = 198.18.2.2, 2001:db8:2::2
advertised_dtls_port = 444
[proxy]
enable = $1
listen_port = 8443
certificate = $tmp/cert.pem
private_key = $tmp/key.pem
insecure_upstream = yes
CONF
}
cat >"$tmp/groups.d/relay.conf" <<GRP
[group]
name = relay
pool = 192.0.2.0/26, 2001:db8:0:40::/64
clients = 198.18.1.0/24, 2001:db8:1::/64
mtu = 1380
dtls = relay
GRP
conf no

export PATH="$PWD/$B:$PATH"
rules_unit() {	# rules_unit start|stop [backend]: the packaged script, in the gateway
	ip netns exec $gw env MTUGATE_CONF="$tmp/mtugate.conf" MTUGATE_RULES_STATE="$tmp/state" \
		MTUGATE_BACKEND="${2:-iptables}" sh debian/mtugate-rules "$1"
}
ctl() { ip netns exec $gw "$B/mtugatectl" -c "$tmp/mtugate.conf" "$@"; }
start_daemon() {
	# where the rules unit's script records what it applied (debian/mtugate-rules)
	ip netns exec $gw env MTUGATE_RULES_STATE="$tmp/state" "$B/mtugated" -f -c "$tmp/mtugate.conf" \
		2>>"$tmp/daemon.log" &
	dpid=$!
	wait_until 10 ctl ping
}
stop_daemon() { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; }
# The headend: TLS on 443 with the certificate the proxy presents (its own).
headend_tls() { # 4|6 (IPv6 only on its own socket: the IPv4 one holds 0.0.0.0:443)
	local v6=
	[ "$1" = 6 ] && v6=,ipv6only=1
	exec ip netns exec $he socat \
		"OPENSSL-LISTEN:443,reuseaddr,fork,pf=ip$1$v6,cert=$tmp/cert.pem,key=$tmp/key.pem,verify=0" \
		OPEN:/dev/null >/dev/null 2>&1
}
headend_tls 4 & hl4=$!
headend_tls 6 & hl6=$!
wait_until 10 ip netns exec $he ss -Htln 'sport = :443' | grep -q .

runcheck() {	# runcheck: mtugatectl check's output into $tmp/check.out, its exit code into rc
	ctl check >"$tmp/check.out" 2>&1
	rc=$?
}
healthy() { runcheck; [ $rc = 0 ] && grep -qx 'deployment OK' "$tmp/check.out"; }
names() {	# names NAME PATTERN: check fails (exit 1) and prints a PROBLEM line matching PATTERN
	runcheck
	if [ $rc = 1 ] && grep -q "^PROBLEM  .*$2" "$tmp/check.out"; then
		pass "$1"
	else
		fail "$1" "exit $rc; $(grep -E '^(PROBLEM|note)' "$tmp/check.out" | head -n 4 | tr '\n' '|')"
	fi
}

check "the daemon starts" start_daemon
check "the rules unit's script applies the rules" rules_unit start
runcheck
check "healthy: exit 0 and \"deployment OK\" ($(grep -c '^ok' "$tmp/check.out") checks ok)" healthy
[ $rc = 0 ] || sed 's/^/info   /' "$tmp/check.out"
check "it names the iptables backend" grep -q '^note     rules backend: iptables' "$tmp/check.out"
check_not "the scratch namespace is gone afterwards" sh -c "ip netns list | grep -q mtugate-check-"

ip netns exec $gw sysctl -qw net.ipv4.ip_forward=0
names "forwarding off is named" "net.ipv4.ip_forward is not 1"
ip netns exec $gw sysctl -qw net.ipv4.ip_forward=1
ip netns exec $gw sysctl -qw net.ipv6.conf.all.forwarding=0
names "IPv6 forwarding off is named (the configuration has IPv6)" "net.ipv6.conf.all.forwarding is not 1"
ip netns exec $gw sysctl -qw net.ipv6.conf.all.forwarding=1
# conntrack unloaded, as check sees it: a namespace cannot unload the module, so the check
# runs in a mount namespace where /proc/sys/net/netfilter (which only a loaded nf_conntrack
# fills) is an empty tmpfs.
ctl() { ip netns exec $gw unshare -m sh -c 'mount -t tmpfs none /proc/sys/net/netfilter && exec "$@"' \
	sh "$B/mtugatectl" -c "$tmp/mtugate.conf" "$@"; }
names "conntrack not loaded is named" "conntrack is not loaded"
check "with its fix" grep -q 'modprobe nf_conntrack' "$tmp/check.out"
ctl() { ip netns exec $gw "$B/mtugatectl" -c "$tmp/mtugate.conf" "$@"; }

ip netns exec $gw iptables -t mangle -D MTUGATE_MSS 1
names "a deleted rule is named" "iptables rules: 1 line(s) of this configuration are not loaded"
check "and shown" grep -q '^           mangle: -A MTUGATE_MSS -s 192.0.2.0/26' "$tmp/check.out"
rules_unit start
check "re-applied: healthy" healthy

ip netns exec $gw ip6tables -t mangle -A MTUGATE_MSS -s 2001:db8:0:99::/64 -j ACCEPT
names "a stale rule is named" "ip6tables rules: 1 loaded line(s) are not this configuration's"
rules_unit start
ip netns exec $gw iptables -t mangle -D PREROUTING -j MTUGATE_PREROUTING
names "an unhooked chain is named" "not loaded"
check "the hook is shown" grep -q '^           mangle: -A PREROUTING -j MTUGATE_PREROUTING' "$tmp/check.out"
rules_unit start
check "re-applied: healthy again" healthy

## The daemon watches its rules (nf_tables netlink): within 10 s of their loss it says so
## in stats, Prometheus and the log, and again when they are back.
jrules() { ctl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rules_ok"])'; }
rules_is() { [ "$(jrules)" = "$1" ]; }
check "stats: rules_ok true with the rules applied" wait_until 12 rules_is True
ip netns exec $gw nft flush ruleset
t0=$(date +%s%N)
check "after nft flush ruleset: rules_ok false within 10 s" wait_until 12 rules_is False
echo "info noticed after $((($(date +%s%N) - t0) / 1000000)) ms"
check "a warning in the log names it" grep -q 'rules: not loaded: .*no such chain' "$tmp/daemon.log"
check "mtugate_rules_ok 0" sh -c "ip netns exec $gw $B/mtugatectl -c $tmp/mtugate.conf stats --prometheus | grep -qx 'mtugate_rules_ok 0'"
check "stats' table says NOT OK" sh -c "ip netns exec $gw $B/mtugatectl -c $tmp/mtugate.conf stats | grep -q '^rules NOT OK: '"
rules_unit start
check "re-applied: rules_ok true" wait_until 12 rules_is True
check "and the log says so" grep -q 'rules: in place again' "$tmp/daemon.log"
ip netns exec $gw ip6tables -t filter -D FORWARD -j MTUGATE_FORWARD
check "an unhooked chain: rules_ok false" wait_until 12 rules_is False
check "named" sh -c "ip netns exec $gw $B/mtugatectl -c $tmp/mtugate.conf stats --json | grep -q 'ip6 filter FORWARD: no jump to MTUGATE_FORWARD'"
rules_unit start
check "re-applied: true again" wait_until 12 rules_is True
sed -i 's/^mtu = 1380/mtu = 1300/' "$tmp/groups.d/relay.conf"
ctl reload >/dev/null 2>&1
check "a reload whose configuration prints other rules, not re-applied: false (stale)" \
	wait_until 12 rules_is False
check "named stale" grep -q 'rules: stale: the rules applied are another configuration' "$tmp/daemon.log"
rules_unit start
check "re-applied by the rules unit: true" wait_until 12 rules_is True
sed -i 's/^mtu = 1300/mtu = 1380/' "$tmp/groups.d/relay.conf"
ctl reload >/dev/null 2>&1
rules_unit start
wait_until 12 rules_is True

# What `systemctl reload nftables` does on Debian (flush ruleset: iptables-nft's tables too).
ip netns exec $gw nft flush ruleset
names "the firewall's nft flush ruleset is noticed" "line(s) of this configuration are not loaded"
rules_unit start

ip netns exec $gw iptables -t mangle -A PREROUTING -i v-$he -j MARK --set-xmark 0x100/0x100
names "another rule on mtugate's mark bits is named" "other rules set or test the mark bits"
check "with the rule" grep -q -- '--set-xmark 0x100/0x100' "$tmp/check.out"
ip netns exec $gw iptables -t mangle -D PREROUTING -i v-$he -j MARK --set-xmark 0x100/0x100

kill $hl4; wait $hl4 2>/dev/null
names "an unreachable headend is named" "headend 198.18.2.2 does not answer on TCP port 443"
headend_tls 4 & hl4=$!
wait_until 10 ip netns exec $he ss -Htln4 'sport = :443' | grep -q .

## A group with tunnels whose pool's traffic never reaches the mss queue: a DTLS flow of the
## relay group's client (decided: a tunnel), and no SYN from or to its pool.
grp_line() { grep -q "^$1 *group relay: $2" "$tmp/check.out"; }
ip netns exec $cl "$B/tools/dtlsblast" send 198.18.1.2 40444 198.18.2.2 444 1 >/dev/null 2>&1
names "a group with tunnels but none of its pool's SYNs is named" \
	"group relay has 1 tunnel(s) but no SYN of its pool reached the mss queue"
check "its fix says where the inner traffic must flow" grep -q "fix: route the headend's inside leg" "$tmp/check.out"
# One SYN toward the pool crosses the gateway (no route beyond it: queued all the same).
ip netns exec $cl timeout 3 socat -T1 - TCP4:192.0.2.5:80,connect-timeout=1 </dev/null >/dev/null 2>&1
runcheck
check "with a SYN of its pool: ok" grp_line ok "1 tunnel(s), its pool's SYNs reach the mss queue"
check "and healthy" healthy
[ $rc = 0 ] || sed 's/^/info   /' "$tmp/check.out"

## The firewall's own uplink toward the clients: DS-Lite's 1460 cannot carry the relay
## group's 1380-byte packets in DTLS (1380 + 82).
check "the uplink fits: ok" grp_line ok "mtu 1380 plus DTLS over IPv4 fits v-$cl's MTU 1500"
ip -n $gw link set "v-$cl" mtu 1460
names "an uplink too small for the relay group's DTLS is named" \
	"group relay: mtu 1380 plus 82 bytes of DTLS over IPv4 is more than v-$cl's MTU 1460"
check "with the mtu to set" grep -q "fix: set mtu = 1378 in .*relay.conf" "$tmp/check.out"
check "IPv6 too (102 bytes)" grep -q "^PROBLEM  group relay: mtu 1380 plus 102 bytes of DTLS over IPv6" "$tmp/check.out"
ip -n $gw link set "v-$cl" mtu 1500
check "the uplink back at 1500: healthy" healthy

# Another program on a queue this configuration names (a second mtugated,
# as Suricata would sit on its queue 0): the check tells its netlink port
# from the running daemon's.
sed -e 's/^mss = 40$/mss = 44/' "$tmp/mtugate.conf" >"$tmp/check44.conf"
sed -e 's/^mss = 40$/mss = 44/' -e 's/^pmtu = 42$/pmtu = off/' -e 's/^dtls = 43$/dtls = off/' \
	-e "s|$tmp/run/mtugate.sock|$tmp/run/other.sock|" "$tmp/mtugate.conf" >"$tmp/other.conf"
ip netns exec $gw "$B/mtugated" -f -c "$tmp/other.conf" 2>>"$tmp/other.log" &
opid=$!
wait_until 10 ip netns exec $gw "$B/mtugatectl" -c "$tmp/other.conf" ping
ip netns exec $gw "$B/mtugatectl" -c "$tmp/check44.conf" check >"$tmp/check.out" 2>&1
check "a queue another program holds is named" \
	grep -q '^PROBLEM  NFQUEUE 44 (mss) is bound by another program' "$tmp/check.out"
check "the daemon's own queues are not" sh -c "! grep -q 'NFQUEUE 4[23] .*another program' '$tmp/check.out'"
kill $opid; wait $opid 2>/dev/null

stop_daemon
names "a stopped daemon is named" "mtugated does not answer"
check "and its unbound queues" grep -q '^PROBLEM  NFQUEUE 40 (mss) has no listener' "$tmp/check.out"

## Packets the kernel let by mtugated (fail-open): a SYN toward the pool while nothing is
## bound to the mss queue, counted by its rule and never handed to the daemon.
rules_unit start
ip netns exec $cl timeout 3 socat -T1 - TCP4:192.0.2.6:80,connect-timeout=1 </dev/null >/dev/null 2>&1
start_daemon
names "a SYN that passed the unbound mss queue is counted as bypassed" \
	"NFQUEUE 40 (mss): [1-9][0-9]* of the [1-9][0-9]* packets its rules sent passed without mtugated"
rules_unit start
check "the rules re-applied, the count starts again: healthy" healthy
[ $rc = 0 ] || sed 's/^/info   /' "$tmp/check.out"
check "the queue's line says none passed by" \
	grep -q "^ok       NFQUEUE 40 (mss): none of the" "$tmp/check.out"
stop_daemon

## The proxy: TPROXY's routes and the INPUT chain.
conf yes
check "the daemon starts with the proxy" start_daemon
rules_unit start
check "with the proxy: healthy" healthy
[ $rc = 0 ] || sed 's/^/info   /' "$tmp/check.out"
check "the routes are checked" grep -q '^ok       ip -4 rule: TPROXY' "$tmp/check.out"
check "the proxy's certificate is the headend's own" \
	grep -q '^ok       \[proxy\] certificate is headend 198.18.2.2.s own' "$tmp/check.out"
# The key beside mtugate.conf: Landlock would hide a mtugate.conf replaced by a rename from the
# packet process, so a reload after sed -i fails. A warning (not a problem) and its fix.
check "the key beside mtugate.conf: a warning with its fix" \
	grep -qF "warning  [proxy] private_key $(realpath "$tmp/key.pem") lies on the way to $(realpath "$tmp/mtugate.conf")" "$tmp/check.out"
check "... whose fix is a folder of its own" grep -q '^         fix: move the key to a folder of its own' "$tmp/check.out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other \
	-keyout "$tmp/other.key" -out "$tmp/other.pem" >/dev/null 2>&1
chmod 600 "$tmp/other.key"
# This key in a folder of its own, off mtugate.conf's ($tmp.private beside $tmp).
mkdir -p "$tmp.private" && mv "$tmp/other.key" "$tmp.private/other.key"
sed -e "s|^certificate = .*|certificate = $tmp/other.pem|" -e "s|^private_key = .*|private_key = $tmp.private/other.key|" \
	"$tmp/mtugate.conf" >"$tmp/othercert.conf"
ip netns exec $gw "$B/mtugatectl" -c "$tmp/othercert.conf" check >"$tmp/check.out" 2>&1
check "a [proxy] certificate that is not the headend's is named" \
	grep -q '^PROBLEM  \[proxy\] certificate is not headend 198.18.2.2.s own: SHA-256 ' "$tmp/check.out"
check "a key in a folder of its own: no warning" \
	grep -q "^ok       \[proxy\] private_key is off the configuration's folders: edits reload" "$tmp/check.out"
check_not "... none" grep -q '^warning' "$tmp/check.out"
ip netns exec $gw ip rule del fwmark 0x100/0x100 lookup 100
names "TPROXY's ip rule gone is named" "ip -4 rule: the TPROXY rule is missing"
rules_unit start
ip netns exec $gw ip route add 198.18.9.0/24 dev lo table 100
names "another tool's route in the table is named" "ip -4 route table 100 also holds routes"
rules_unit start 2>"$tmp/unit.err"; urc=$?
check "and the rules unit refuses to start on it" test "$urc" != 0
check "saying why" grep -q 'route table 100 already holds routes that are not mtugate' "$tmp/unit.err"
check "the other tool's route is still there" sh -c "ip -n $gw route show table 100 | grep -q 198.18.9.0/24"
ip netns exec $gw ip route del 198.18.9.0/24 dev lo table 100
# A default-drop INPUT as on an edge firewall: its own connections' answers allowed.
for t in iptables ip6tables; do
	ip netns exec $gw $t -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	ip netns exec $gw $t -A INPUT -i lo -j ACCEPT
done
ip netns exec $gw iptables -P INPUT DROP
names "a default-drop INPUT without the proxy's accept is named" "iptables INPUT drops by default"
check "its fix is the mark's accept" grep -q 'fix: iptables -I INPUT -m mark --mark 0x100/0x100 -j ACCEPT' "$tmp/check.out"
ip netns exec $gw iptables -I INPUT -m mark --mark 0x100/0x100 -j ACCEPT
ip netns exec $gw ip6tables -P INPUT DROP
ip netns exec $gw ip6tables -I INPUT -m mark --mark 0x100/0x100 -j ACCEPT
check "with the accept: healthy" healthy
[ $rc = 0 ] || sed 's/^/info   /' "$tmp/check.out"
check "direct connections to the listener are dropped: ok" \
	grep -q "^ok       direct connections to the proxy's port 8443 are dropped before INPUT" "$tmp/check.out"
ip netns exec $gw iptables -t mangle -D MTUGATE_PROXY -p tcp --dport 8443 -m addrtype --dst-type LOCAL -j DROP
ip netns exec $gw iptables -P INPUT ACCEPT
names "nothing dropping direct connections to the listener is named" \
	"nothing drops direct connections to the proxy's port 8443: INPUT (policy ACCEPT)"
ip netns exec $gw iptables -P INPUT DROP
rules_unit start
check "re-applied: healthy" healthy
check "the proxy's loopback listeners: ok" \
	grep -q "^ok       the proxy's port 8443 listens on loopback only" "$tmp/check.out"
# Another program (or an older daemon) listening on the port on a public address.
ip netns exec $gw socat TCP6-LISTEN:8443,bind=[2001:db8:1::1],ipv6only=1,reuseaddr OPEN:/dev/null &
lpid=$!
wait_until 5 sh -c "ip netns exec $gw ss -Hltn | grep -q '2001:db8:1::1\]:8443 '"
names "a listener on the port reachable from outside is named" \
	"a listener on \[2001:db8:1::1\] port 8443 is reachable from outside"
kill $lpid; wait $lpid 2>/dev/null
check "gone again: healthy" healthy

## The nft backend. This kernel may lack nft's queue statement (the xtables
## NFQUEUE target is what the other tests use): then the table without queues.
rules_unit stop
stop_daemon
if ip netns exec $gw nft -f - <<'NFT' 2>/dev/null
table inet mgprobe { chain c { type filter hook prerouting priority 0; queue num 9 bypass; } }
NFT
then
	ip netns exec $gw nft delete table inet mgprobe
	conf yes
else
	echo "info nft: this kernel has no queue statement: the nft table is checked without queues"
	conf yes off
fi
check "the daemon starts for the nft table" start_daemon
check "the rules unit's script applies the nft table" rules_unit start nft
check "nft backend: healthy" healthy
[ $rc = 0 ] || sed 's/^/info   /' "$tmp/check.out"
check "it names the nft backend" grep -q '^note     rules backend: nft' "$tmp/check.out"
h=$(ip netns exec $gw nft -a list chain inet mtugate prerouting | awk '/return/ { print $NF; exit }')
ip netns exec $gw nft delete rule inet mtugate prerouting handle "$h"
names "nft: a deleted rule is named" "nft table inet mtugate: 1 line(s) of this configuration are not loaded"
rules_unit stop nft
stop_daemon
finish e2e-check
