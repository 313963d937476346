#!/bin/bash
# The package under real systemd: a Debian 12 root (debootstrap, kept in
# $MTUGATE_TEST_ROOTS between runs) booted with systemd-nspawn in a network
# namespace of its own, the .deb of this tree installed, then what an
# administrator's firewall does to mtugate's rules:
#   - the daemon's log lands in the journal at its own priorities
#     (journalctl -p warning shows warnings, not info lines);
#   - the rules unit applies the rules, the daemon sees them (rules_ok);
#   - `nft flush ruleset` by hand: the daemon reports it within 10 s;
#   - `systemctl reload nftables` and `systemctl restart nftables` (both
#     flush the ruleset): the rules are back, by the rules unit's
#     ReloadPropagatedFrom=/PartOf=;
#   - `netfilter-persistent save` keeps mtugate's rules out of the saved files
#     (the package's plugin); `systemctl restart netfilter-persistent`: back;
#     the CLI `netfilter-persistent reload`: reported;
#   - `systemctl reload mtugate` reloads the rules unit;
#   - `systemctl restart mtugate` with the proxy: the old mtugated-proxy
#     keeps a connection it holds (KillMode=process, [proxy] drain_timeout),
#     systemd notes it as left over; a stop drains too; `systemctl kill
#     mtugate` ends it;
#   - mtugate-metrics.service writes node_exporter's textfile, and removes
#     it once the daemon stopped;
#   - `dpkg -r mtugate` ends the service's draining proxy and closes its
#     connection, and no process of that name in another network namespace.
# Skips (77) without debootstrap, systemd-nspawn or a reachable Debian mirror.
set -u
cd "$(dirname "$0")/../.."
root_dir=$PWD
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
for t in debootstrap systemd-nspawn nsenter dpkg-buildpackage python3; do
	command -v $t >/dev/null || { echo "needs $t (make deps)"; exit 77; }
done
. tests/netns/common.sh
. tests/debian/lib.sh

# What the package and the scenarios need inside, installed once.
include=systemd,systemd-sysv,dbus,iproute2,kmod,iptables,nftables,ipset,netfilter-persistent,iptables-persistent,libmnl0,libnetfilter-queue1,libiniparser1,libssl3,procps

tmp=$(mktemp -d /var/tmp/mg-systemd.XXXXXX)
npid=
cleanup() {
	[ -n "$npid" ] && kill -9 "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

template=$(debian_root bookworm-systemd "$include" "$tmp/debootstrap.log") || { echo "skipped"; exit 77; }

# The .deb of this tree, built from what git knows (as tests/debian/run.sh does).
tree_export "$root_dir" "$tmp/src"
if (cd "$tmp/src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	pass "the package builds"
else
	tail -n 20 "$tmp/build.log"; fail "the package builds"; finish debian-systemd
fi
mkdir -p "$tmp/debs"
mv "$tmp"/mtugate_*.deb "$tmp/debs/"

cp -a "$template" "$tmp/root"
nspawn() { systemd-nspawn -q --keep-unit --register=no -D "$tmp/root" "$@"; }
check "dpkg -i in the root" nspawn --bind-ro="$tmp/debs:/mnt" \
	sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /mnt/mtugate_*.deb >/tmp/dpkg.log 2>&1'
# Modules the container cannot load itself.
modprobe -a nf_tables nfnetlink_queue xt_NFQUEUE nf_conntrack ip_set ip_set_hash_ipport 2>/dev/null

# Not through the function: $! must be nspawn's own pid, systemd its child.
systemd-nspawn -q --keep-unit --register=no -D "$tmp/root" -b --private-network \
	>"$tmp/console.log" 2>&1 &
npid=$!
leader() { pgrep -P "$npid" -x systemd; }
booted() { case $(ct systemctl is-system-running 2>/dev/null) in running|degraded) return 0 ;; esac; return 1; }
ct() { nsenter -t "$L" -a "$@"; }
L=
if wait_until 30 leader && L=$(leader) && wait_until 60 booted; then
	pass "the container boots, systemd running as PID 1"
else
	fail "the container boots" "$(tail -n 5 "$tmp/console.log" | tr '\n' '|')"
	finish debian-systemd
fi

# Installed with no group in force, the daemon has nothing to do: systemd
# does not start it (ConditionDirectoryNotEmpty=), and says why.
check_not "booted with no group: mtugate.service not started" ct systemctl is-active -q mtugate
check "its condition failed" sh -c "nsenter -t $L -a systemctl show -p ConditionResult mtugate | grep -qx ConditionResult=no"
# One group in force, the
# firewall's own nftables and netfilter-persistent running, our rules unit on.
ct sh -c 'cat >/etc/mtugate/groups.d/lab.conf' <<'GRP'
[group]
name = lab
pool = 192.0.2.0/26, 2001:db8:0:40::/64
mtu = 1380
GRP
ct systemctl start nftables netfilter-persistent >/dev/null 2>&1
ct systemctl restart mtugate >/dev/null 2>&1
check "mtugate.service is active" ct systemctl is-active -q mtugate
check "enable --now mtugate-rules.service" ct systemctl enable -q --now mtugate-rules.service
rules_is() {
	[ "$(ct mtugatectl stats --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["rules_ok"])')" = "$1" ]
}
check "the daemon sees its rules (rules_ok)" wait_until 15 rules_is True

# Priorities in the journal: the start's info line is not a warning.
check "journalctl -p info has the daemon's start line" \
	sh -c "nsenter -t $L -a journalctl -u mtugate -p info -o cat --no-pager | grep -q '^started: '"
check_not "journalctl -p warning has no info line" \
	sh -c "nsenter -t $L -a journalctl -u mtugate -p warning -o cat --no-pager | grep -q '^started: '"
check_not "and no line carries the program's name twice" \
	sh -c "nsenter -t $L -a journalctl -u mtugate -o cat --no-pager | grep -q '^mtugated: '"

ct nft flush ruleset
check "nft flush ruleset: reported within 10 s (rules_ok false)" wait_until 10 rules_is False
check "as a warning in the journal" sh -c \
	"nsenter -t $L -a journalctl -u mtugate -p warning -o cat --no-pager | grep -q '^rules: not loaded'"
ct systemctl restart mtugate-rules
check "restart of the rules unit: back" wait_until 10 rules_is True

n0=$(ct journalctl -u mtugate-rules -o cat --no-pager | grep -c '^Reloaded ')
ct systemctl reload nftables
reloaded() { [ "$(ct journalctl -u mtugate-rules -o cat --no-pager | grep -c '^Reloaded ')" -gt "$n0" ]; }
check "systemctl reload nftables reloads the rules unit after it" wait_until 10 reloaded
check "and the rules are there (rules_ok)" wait_until 10 rules_is True
check "hooked" sh -c "nsenter -t $L -a iptables-save | grep -q -- '-A PREROUTING -j MTUGATE_PREROUTING'"
check "mtugatectl check: the rules as the configuration prints them" \
	sh -c "nsenter -t $L -a mtugatectl check | grep -q '^ok       iptables rules: as this configuration prints them'"
finished() { ct journalctl -u mtugate-rules -o cat --no-pager | grep -c '^Finished '; }
more_finished() { [ "$(finished)" -gt "$f0" ]; }
hooked() { ct sh -c 'iptables-save | grep -q -- "-A PREROUTING -j MTUGATE_PREROUTING"'; }
f0=$(finished)
ct systemctl restart nftables
check "systemctl restart nftables restarts the rules unit after it (PartOf)" wait_until 10 more_finished
check "(the rules unit is active)" ct systemctl is-active -q mtugate-rules
check "the rules are hooked" hooked
check "rules_ok" wait_until 10 rules_is True

ct netfilter-persistent save >/dev/null 2>&1
check "netfilter-persistent save wrote rules.v4" ct test -s /etc/iptables/rules.v4
check_not "without mtugate's chains (the package's plugin)" ct grep -q MTUGATE_ /etc/iptables/rules.v4
check_not "rules.v6 too" ct grep -q MTUGATE_ /etc/iptables/rules.v6
check "while they are loaded" ct sh -c 'iptables-save | grep -q MTUGATE_'
f0=$(finished)
ct systemctl restart netfilter-persistent
check "systemctl restart netfilter-persistent restarts the rules unit after it" wait_until 10 more_finished
check "(active)" ct systemctl is-active -q mtugate-rules
check "the rules are hooked again" hooked
ct netfilter-persistent reload >/dev/null 2>&1
check "the CLI netfilter-persistent reload flushes them: reported" wait_until 10 rules_is False
ct systemctl restart mtugate-rules
wait_until 10 rules_is True

n0=$(ct journalctl -u mtugate-rules -o cat --no-pager | grep -c '^Reloaded ')
ct systemctl reload mtugate
check "systemctl reload mtugate reloads the rules unit" wait_until 10 reloaded

# Issue 22: a restart drains the proxy. A client namespace on the host, its veth's other end in
# the container; a TCP connection to the headend's address, diverted to the proxy and held in
# its TLS handshake (handshake_timeout 600): the connection the old proxy keeps.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=headend.lab.test -keyout "$tmp/headend.key" -out "$tmp/headend.crt" 2>/dev/null
ct sh -c 'cat >/etc/mtugate/headend.crt' <"$tmp/headend.crt"
ct sh -c 'umask 077; cat >/etc/mtugate/headend.key && chown mtugate: /etc/mtugate/headend.key' \
	<"$tmp/headend.key"
ct cp /etc/mtugate/mtugate.conf /etc/mtugate/mtugate.conf.orig
ct sed -i -e 's/^address = .*/address = 198.18.2.2/' -e 's/^enable = no/enable = yes/' \
	-e 's/^handshake_timeout = .*/handshake_timeout = 600/' \
	-e 's|^upstream_ca = .*|upstream_ca = /etc/mtugate/headend.crt|' \
	-e 's|^private_key = .*|private_key = /etc/mtugate/headend.key|' /etc/mtugate/mtugate.conf
ct systemctl restart mtugate mtugate-rules
check "the proxy runs (mtugated-proxy)" wait_until 10 ct pgrep -x mtugated-proxy
ct pgrep -x mtugated-proxy >/dev/null ||
	ct journalctl -u mtugate -o cat --no-pager -n 15 | sed 's/^/info   /'
cl=mgsd$$
client_ns() { # the client namespace and its link into the container
	ip netns add $cl && ip link add mgv$$ type veth peer name mgw$$ && ip link set mgv$$ netns $cl &&
		ip link set mgw$$ netns "$L"
	ct ip addr add 198.18.1.1/24 dev mgw$$ && ct ip link set mgw$$ up
	ip -n $cl addr add 198.18.1.2/24 dev mgv$$ && ip -n $cl link set mgv$$ up && ip -n $cl link set lo up
	ip -n $cl route add default via 198.18.1.1
}
hold_conn() { # a connection to the headend's address, its pid in $held; "closed" in held.out when it ends
	ip netns exec $cl python3 -c 'import socket, sys, time
s = socket.create_connection(("198.18.2.2", 443), timeout=5)
print("connected", flush=True)
s.settimeout(None)
print("closed" if s.recv(1) == b"" else "data", flush=True)
time.sleep(5)' >"$tmp/held.out" 2>&1 &
	held=$!
}
client_ns
hold_conn
proxied() { ct ss -Htn state established '( sport = :443 )' | grep -q 198.18.1.2; }
check "a connection to the headend's address is held by the proxy" wait_until 10 proxied
old=$(ct pgrep -x mtugated-proxy | head -1) oldmain=$(ct systemctl show -p MainPID --value mtugate)
ct systemctl restart mtugate
check "systemctl restart mtugate: active again" ct systemctl is-active -q mtugate
check "the old mtugated-proxy ($old) still runs" ct kill -0 "$old"
# The new master names itself once forked, which may come after READY=1: polled.
check "beside a new one" wait_until 10 sh -c "[ \$(nsenter -t $L -a pgrep -cx mtugated-proxy) = 2 ]"
# mtugated(8): `pkill -P 1 -x mtugated-proxy` ends the draining one alone.
check "the old one's parent is PID 1, the new one's is not" \
	test "$(ct pgrep -P 1 -x mtugated-proxy)" = "$old"
check "its connection is still up" proxied
check_not "and the client saw no close" grep -q closed "$tmp/held.out"
check "systemd noted the left-over process at the start" sh -c \
	"nsenter -t $L -a journalctl -u mtugate -o cat --no-pager | grep -q 'left-over process $old (mtugated-proxy)'"
check "the new main process is another" test "$(ct systemctl show -p MainPID --value mtugate)" != "$oldmain"
ct systemctl stop mtugate
check_not "systemctl stop mtugate: inactive" ct systemctl is-active -q mtugate
check "the draining proxy keeps its connection after the stop too" proxied
ct systemctl kill mtugate
check "systemctl kill mtugate (stopped): the draining proxy ends" wait_until 10 sh -c "! nsenter -t $L -a kill -0 $old"
check "its connection is closed" wait_until 10 grep -q closed "$tmp/held.out"
check_not "no mtugated-proxy is left" ct pgrep -x mtugated-proxy
wait "$held" 2>/dev/null
ct cp /etc/mtugate/mtugate.conf /etc/mtugate/mtugate.conf.proxy
ct cp /etc/mtugate/mtugate.conf.orig /etc/mtugate/mtugate.conf
ct systemctl restart mtugate mtugate-rules
check "mtugate runs again on the first configuration" wait_until 10 rules_is True

ct mkdir -p /var/lib/prometheus/node-exporter
ct systemctl start mtugate-metrics.service
check "mtugate-metrics.service writes the textfile: mtugate_up 1" \
	ct grep -qx 'mtugate_up 1' /var/lib/prometheus/node-exporter/mtugate.prom
check "the timer is enabled" ct systemctl is-enabled -q mtugate-metrics.timer
ct systemctl stop mtugate
ct systemctl start mtugate-metrics.service
check_not "the daemon stopped: the textfile is gone" ct test -e /var/lib/prometheus/node-exporter/mtugate.prom
check_not "and the rules unit stopped with it (BindsTo)" ct systemctl is-active -q mtugate-rules
check_not "its rules unhooked" ct sh -c 'iptables-save | grep -q -- "-j MTUGATE_PREROUTING"'

# Removal ends the service's draining proxy (prerm), and only that one: a process of the same
# name in another network namespace (another instance's, a container's), whose parent is PID 1
# too, lives on.
ct cp /etc/mtugate/mtugate.conf.proxy /etc/mtugate/mtugate.conf
ct systemctl start mtugate mtugate-rules
wait_until 10 ct pgrep -x mtugated-proxy
hold_conn
check "removal: a connection held by the proxy" wait_until 10 proxied
old=$(ct pgrep -x mtugated-proxy | head -1)
ct systemctl restart mtugate
check "removal: after a restart the old proxy ($old) drains" ct kill -0 "$old"
ct cp /usr/bin/sleep /tmp/mtugated-proxy
ct systemd-run -q --unit mg-decoy -p PrivateNetwork=yes /tmp/mtugated-proxy 600
decoy() { ct systemctl show -p MainPID --value mg-decoy; }
decoy_named() { [ "$(ct ps -o comm= -p "$(decoy)")" = mtugated-proxy ]; }
check "a process named mtugated-proxy in its own network namespace (the decoy)" wait_until 10 decoy_named
dec=$(decoy)
ct sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -r mtugate >/tmp/remove.log 2>&1'
check "dpkg -r mtugate: removed" sh -c "! nsenter -t $L -a dpkg -s mtugate 2>/dev/null | grep -q '^Status: install ok installed'"
check "the draining proxy ended with the package" wait_until 10 sh -c "! nsenter -t $L -a kill -0 $old"
check "its connection is closed" wait_until 10 grep -q closed "$tmp/held.out"
check "the decoy ($dec) lives on" ct kill -0 "$dec"
wait "$held" 2>/dev/null
ct systemctl stop mg-decoy
ip netns del $cl
finish debian-systemd
