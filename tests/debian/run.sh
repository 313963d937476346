#!/bin/bash
# The Debian package, end to end: build it from a copy of the tree, lint it,
# install it, run the installed daemon (in a network namespace) and tool,
# then purge it and check that only what Debian policy keeps is left.
#
#   tests/debian/run.sh              as above (root; make check runs it)
#   tests/debian/run.sh --installed  only the checks of an installed package
#                                    (debian/tests/control runs it so)
#
# Exit 77 when not root or when the build tools are missing. Packages needed
# beyond the build's: dpkg-dev debhelper lintian (fakeroot is not: the
# package builds without root), systemd (systemd-sysusers for the package's
# postinst, systemd-analyze), iproute2 iptables python3. A package installed
# before the run is replaced, then purged.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/netns/common.sh
. "$root/tests/netns/common.sh"
# shellcheck source=tests/debian/lib.sh
. "$root/tests/debian/lib.sh"

mode=full
[ "${1:-}" = --installed ] && mode=installed
if [ "$(id -u)" != 0 ]; then
	echo "debian: skipped: needs root (dpkg -i, namespaces, NFQUEUE)"; exit 77
fi
if [ "$mode" = full ]; then
	for t in dpkg-buildpackage dh; do
		command -v "$t" >/dev/null || { echo "debian: skipped: $t missing"; exit 77; }
	done
fi

tmp=$(mktemp -d /tmp/mtugate-deb.XXXXXX)
chmod 0711 "$tmp"	# the daemon, as user mtugate, reads its config in here
ns=mtugate-deb-$$
daemon_pid=
notify_pid=
installed_by_us=no
policy_rc_d=

cleanup() {
	[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
	[ -n "$notify_pid" ] && kill "$notify_pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	ip netns del "$ns-c" 2>/dev/null
	[ "$policy_rc_d" = ours ] && rm -f /usr/sbin/policy-rc.d
	[ "$installed_by_us" = yes ] && dpkg --purge mtugate >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

has_line() { grep -qE "$1" "$2"; }

build_package() {
	local src
	src=$tmp/mtugate-$(cat "$root/VERSION")
	tree_export "$root" "$src"
	check "source tree copied" test -f "$src/debian/control"
	# The source package too, from the pristine copy, so lintian sees
	# debian/rules and debian/tests as well as the binary.
	(cd "$tmp" && dpkg-source -b "$(basename "$src")") >"$tmp/source.log" 2>&1
	check "dpkg-source -b (3.0 native)" test -f "$tmp/mtugate_$(cat "$root/VERSION").dsc"
	if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
		check "dpkg-buildpackage -us -uc -b" true
	else
		tail -n 40 "$tmp/build.log"
		check "dpkg-buildpackage -us -uc -b" false
		return 1
	fi
	deb=$(find "$tmp" -maxdepth 1 -name 'mtugate_*.deb' | head -n 1)
	check "a .deb was built" test -f "$deb"
	[ -f "$deb" ] || return 1
	check "hardening: PIE and bindnow" sh -c \
		"dpkg-deb -x '$deb' '$tmp/x' && readelf -d '$tmp/x/usr/sbin/mtugated' | grep -q 'FLAGS.*BIND_NOW'"
	check "hardening: fortified" sh -c "nm -D '$tmp/x/usr/sbin/mtugated' | grep -q '__.*_chk'"

	if command -v lintian >/dev/null; then
		lintian "$tmp"/mtugate_*.changes "$tmp"/mtugate_*.dsc >"$tmp/lintian.log" 2>&1
		grep -E '^[EW]: ' "$tmp/lintian.log"
		check "lintian: no errors, no warnings" sh -c "! grep -qE '^[EW]: ' '$tmp/lintian.log'"
	else
		check "lintian installed" false
	fi
}

install_package() {
	local rc
	# Where systemd runs, the postinst would start mtugated on the host's own
	# queues: forbid service starts (policy-rc.d, 101) for this install only.
	if [ -d /run/systemd/system ] && [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy_rc_d=ours
	fi
	dpkg -i "$deb" >"$tmp/install.log" 2>&1
	rc=$?
	[ "$policy_rc_d" = ours ] && rm -f /usr/sbin/policy-rc.d && policy_rc_d=
	if [ "$rc" = 0 ]; then
		installed_by_us=yes
		check "dpkg -i" true
	else
		tail -n 20 "$tmp/install.log"
		check "dpkg -i" false
		return 1
	fi
}

check_installed() {
	local f
	for f in /usr/sbin/mtugated /usr/sbin/mtugatectl /etc/mtugate/mtugate.conf \
		/lib/systemd/system/mtugate.service /lib/systemd/system/mtugate-rules.service \
		/usr/libexec/mtugate/mtugate-rules /usr/lib/sysusers.d/mtugate.conf \
		/usr/share/man/man8/mtugated.8.gz /usr/share/man/man8/mtugatectl.8.gz \
		/usr/share/man/man5/mtugate.conf.5.gz /usr/share/doc/mtugate/README.md.gz; do
		check "installed: $f" test -e "$f"
	done
	# Installed inactive: no group in force until the administrator copies
	# one of the README's two cases in, and no daemon started meanwhile.
	check "groups.d is installed empty" sh -c '[ -d /etc/mtugate/groups.d ] && [ -z "$(ls -A /etc/mtugate/groups.d)" ]'
	check "example rules shipped" test -f /usr/share/doc/mtugate/examples/mtugate.iptables
	for f in udp-blocked/mtugate.conf udp-blocked/groups.d/tlsonly.conf udp-blocked/groups.d/relay.conf \
		cscuh61321/mtugate.conf cscuh61321/groups.d/relay.conf; do
		check "example shipped: $f" test -f "/usr/share/doc/mtugate/examples/$f"
	done
	check "the upgrade notes are shipped (NEWS, NEWS.Debian for apt-listchanges)" sh -c \
		'ls /usr/share/doc/mtugate/NEWS* && ls /usr/share/doc/mtugate/NEWS.Debian*'
	check "the developer docs are shipped" sh -c 'ls /usr/share/doc/mtugate/DESIGN.md*'
	inactive_unit
	check "/etc/mtugate files are conffiles" sh -c \
		"dpkg-query -W -f='\${Conffiles}' mtugate | grep -q ' /etc/mtugate/mtugate.conf '"
	check "system user mtugate exists" getent passwd mtugate
	check "its shell is nologin" sh -c 'getent passwd mtugate | grep -q ":/usr/sbin/nologin$"'
	# deb-systemd-helper records the enablement even where systemd is not running.
	check "mtugate.service enabled" test -L /etc/systemd/system/multi-user.target.wants/mtugate.service
	check "mtugate-rules.service not enabled" sh -c '! ls /etc/systemd/system/*.wants/mtugate-rules.service 2>/dev/null'
	# Bound to the daemon: its rules go when it stops or dies (the TPROXY
	# intake would otherwise point at a proxy that is gone), and enabled, it
	# comes with the daemon.
	check "mtugate-rules.service is bound to mtugate.service" \
		grep -qx 'BindsTo=mtugate.service' /lib/systemd/system/mtugate-rules.service
	check "and wanted by it once enabled" \
		grep -qx 'WantedBy=mtugate.service' /lib/systemd/system/mtugate-rules.service
	# The firewall's reloads flush every rule: ours come back after theirs,
	# and a reload of mtugate re-applies them.
	check "the rules follow nftables' and netfilter-persistent's reloads" \
		grep -qx 'ReloadPropagatedFrom=nftables.service netfilter-persistent.service' \
		/lib/systemd/system/mtugate-rules.service
	check "and restarts" grep -qx 'PartOf=nftables.service netfilter-persistent.service' \
		/lib/systemd/system/mtugate-rules.service
	check "a reload of mtugate reloads the rules unit" \
		grep -qx 'PropagatesReloadTo=mtugate-rules.service' /lib/systemd/system/mtugate.service
	check "the metrics timer is installed" test -f /lib/systemd/system/mtugate-metrics.timer
	check "the netfilter-persistent plugin that keeps mtugate's rules out of saves" \
		test -x /usr/share/netfilter-persistent/plugins.d/35-mtugate
	check "the proxy's route table is named (rt_tables.d)" \
		grep -qx '100	mtugate' /etc/iproute2/rt_tables.d/mtugate.conf
	# A start killed half-way (the daemon stopped meanwhile) runs no ExecStop=.
	check "it unhooks in ExecStopPost=, after a killed start too" \
		grep -qx 'ExecStopPost=/usr/libexec/mtugate/mtugate-rules stop' /lib/systemd/system/mtugate-rules.service

	/usr/sbin/mtugated -t -c /etc/mtugate/mtugate.conf >"$tmp/t.out" 2>&1
	check "mtugated -t exits 0" test $? = 0
	cat "$tmp/t.out"
	check "mtugated -t says configuration OK" has_line '^configuration OK$' "$tmp/t.out"
	/usr/sbin/mtugatectl --help >"$tmp/help.out" 2>&1
	check "mtugatectl --help exits 0" test $? = 0
	for f in stats groups sessions rules reload check; do
		check "mtugatectl --help lists $f" has_line "\\b$f\\b" "$tmp/help.out"
	done
	check "mtugated -V prints the version" sh -c \
		"/usr/sbin/mtugated -V 2>&1 | grep -qF '$(cat "$root/VERSION")'"
	if command -v systemd-analyze >/dev/null; then
		# Ignore what it says about other units; nothing about ours is allowed.
		systemd-analyze verify /lib/systemd/system/mtugate.service \
			/lib/systemd/system/mtugate-rules.service /lib/systemd/system/mtugate-metrics.timer \
			/lib/systemd/system/mtugate-metrics.service >"$tmp/verify.out" 2>&1
		grep mtugate "$tmp/verify.out"
		check "systemd-analyze verify: nothing about our units" \
			sh -c "! grep -q mtugate '$tmp/verify.out'"
	fi
	for f in mtugated.8 mtugatectl.8; do
		check "man $f renders without warnings" sh -c \
			"! man --warnings -l /usr/share/man/man8/$f.gz 2>&1 >/dev/null | grep -q ."
	done
	check "man mtugate.conf.5 renders without warnings" sh -c \
		"! man --warnings -l /usr/share/man/man5/mtugate.conf.5.gz 2>&1 >/dev/null | grep -q ."
}

# run_daemon HOW: start the installed daemon in a fresh namespace with the
# example config, read its stats, check its credentials, stop it.
# HOW=root: started as root, it drops to [daemon] user itself.
# HOW=unit: started the way mtugate.service starts it (user mtugate, only the
# two capabilities, ambient), reproduced with setpriv.
run_daemon() {
	local how=$1 run=$tmp/run-$1 conf=$tmp/mtugate-$1.conf sock st uid rc
	sock=$run/mtugate.sock
	mkdir -p "$run" && chown mtugate:mtugate "$run" && chmod 0750 "$run"
	# The installed example of case 2 (the installed mtugate.conf has no
	# group); the socket moves into the test's folder, so a daemon already
	# running on this machine is not disturbed.
	conf=$(example_conf "$how" "$sock")
	check "[$how] socket path replaced" has_line "^control_socket = $sock\$" "$conf"
	ip netns add "$ns" && ip -n "$ns" link set lo up
	if [ "$how" = root ]; then
		ip netns exec "$ns" /usr/sbin/mtugated -f -c "$conf" >"$tmp/daemon-$how.log" 2>&1 &
	else
		# Type=notify, WatchdogSec: systemd's socket, which the unprivileged
		# daemon connects to as user mtugate (systemd's own is world-writable).
		python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
' "$tmp/notify" "$tmp/notified" &
		notify_pid=$!
		wait_until 5 test -S "$tmp/notify"
		ip netns exec "$ns" setpriv --reuid=mtugate --regid=mtugate --init-groups \
			--inh-caps=-all,+net_admin,+net_raw --ambient-caps=-all,+net_admin,+net_raw \
			--bounding-set=-all,+net_admin,+net_raw --no-new-privs \
			env NOTIFY_SOCKET="$tmp/notify" WATCHDOG_USEC=1000000 \
			/usr/sbin/mtugated -f -c "$conf" >"$tmp/daemon-$how.log" 2>&1 &
	fi
	daemon_pid=$!
	if wait_until 10 /usr/sbin/mtugatectl -s "$sock" stats; then
		check "[$how] daemon answers on its control socket" true
	else
		check "[$how] daemon answers on its control socket" false
		tail -n 20 "$tmp/daemon-$how.log"
	fi
	# The wire protocol itself, without mtugatectl: name<TAB>value lines,
	# then an empty line.
	check "[$how] raw 'stats' request: tab-separated lines, blank line" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"stats\n"); buf = b""
while not buf.endswith(b"\n\n"):
    d = s.recv(65536)
    if not d: break
    buf += d
lines = buf.decode().split("\n")[:-2]
assert buf.endswith(b"\n\n") and lines and all("\t" in l for l in lines), buf[:200]
' "$sock"
	/usr/sbin/mtugatectl -s "$sock" stats >"$tmp/stats-$how.out" 2>&1
	check "[$how] mtugatectl stats exits 0" test $? = 0
	/usr/sbin/mtugatectl -s "$sock" stats --json >"$tmp/stats-$how.json" 2>&1
	check "[$how] stats --json is JSON with packets.seen" python3 -c \
		'import json,sys; d=json.load(open(sys.argv[1])); assert d["packets"]["seen"] >= 0; assert "groups" in d' \
		"$tmp/stats-$how.json"
	check "[$how] stats --json lists the example group" python3 -c \
		'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["groups"]) >= 1' \
		"$tmp/stats-$how.json"
	if [ "$how" = root ]; then
		rules_and_traffic "$conf" "$sock"
		rules_follow_changes
	fi
	if [ "$how" = unit ]; then
		check "[$how] systemd hears READY=1" wait_until 10 grep -q '^READY=1|STATUS=' "$tmp/notified"
		check "[$how] and WATCHDOG=1" wait_until 10 grep -q '^WATCHDOG=1$' "$tmp/notified"
	fi
	# Whichever way it started, it must end as mtugate with exactly
	# CAP_NET_ADMIN (12) and CAP_NET_RAW (13): 0x3000.
	st=/proc/$daemon_pid/status
	uid=$(id -u mtugate)
	check "[$how] runs as user mtugate" sh -c "grep -qE '^Uid:\\s+$uid\\s+$uid\\s+$uid\\s+$uid\$' $st"
	# Not dumpable (it holds the headend's key): its /proc files are root's,
	# also when started directly as mtugate (the unit's way).
	check "[$how] not dumpable: /proc/PID/environ is root's" \
		test "$(stat -c %U "/proc/$daemon_pid/environ")" = root
	check "[$how] effective capabilities: NET_ADMIN, NET_RAW only" \
		sh -c "grep -qE '^CapEff:\\s+0*3000\$' $st"
	check "[$how] socket mode 0660" sh -c "[ \"\$(stat -c %a '$sock')\" = 660 ]"
	kill -TERM "$daemon_pid"
	wait_until 10 sh -c "! kill -0 $daemon_pid"
	check "[$how] SIGTERM stops it" sh -c "! kill -0 $daemon_pid"
	wait "$daemon_pid"; rc=$?
	daemon_pid=
	check "[$how] exit status 0 after SIGTERM" test "$rc" = 0
	if [ "$how" = root ]; then
		# A root start made the folder root's (0750) before dropping to mtugate, who
		# cannot unlink in it: the file stays, dead, for the next start.
		check "[$how] control socket no longer answers" sh -c "! /usr/sbin/mtugatectl -s '$sock' ping"
		check "[$how] its folder is root's" test "$(stat -c %U:%a "$run")" = root:750
	else
		check "[$how] control socket removed" test ! -e "$sock"
	fi
	if [ "$how" = unit ]; then
		check "[$how] systemd hears STOPPING=1" grep -q '^STOPPING=1$' "$tmp/notified"
		kill "$notify_pid"
		notify_pid=
	fi
	ip netns del "$ns"
}

# The unit's own condition line, judged by systemd against the installed
# state: false while groups.d is empty, true once a group file is there.
inactive_unit() {
	local cond
	cond=$(grep '^ConditionDirectoryNotEmpty=' /lib/systemd/system/mtugate.service)
	check "mtugate.service starts only with a group file ($cond)" \
		test "$cond" = ConditionDirectoryNotEmpty=/etc/mtugate/groups.d
	command -v systemd-analyze >/dev/null || return 0
	check "as installed, systemd would not start it" sh -c "! systemd-analyze condition '$cond' >/dev/null 2>&1"
	cp /usr/share/doc/mtugate/examples/cscuh61321/groups.d/relay.conf /etc/mtugate/groups.d/
	check "with an example group copied in, it would" systemd-analyze condition "$cond"
	rm -f /etc/mtugate/groups.d/relay.conf
}

# example_conf HOW: an installed example (case 2, no proxy) with the lab's
# addresses for the documentation ones, its socket in the test's folder.
example_conf() {
	local d=$tmp/example-$1 ex=/usr/share/doc/mtugate/examples/cscuh61321
	mkdir -p "$d/groups.d" && chmod 0755 "$d" "$d/groups.d"
	sed 's/203\.0\.113\.10/198.18.2.2/; s/198\.51\.100\./192.0.2./' "$ex/groups.d/relay.conf" >"$d/groups.d/relay.conf"
	sed "s/203\.0\.113\.10/198.18.2.2/; s|^\[headend\]|[daemon]\ncontrol_socket = $2\ngroups_dir = $d/groups.d\n[headend]|" \
		"$ex/mtugate.conf" >"$d/mtugate.conf"
	chmod 0644 "$d/mtugate.conf" "$d/groups.d/relay.conf"
	echo "$d/mtugate.conf"
}

jumps() {	# jumps NS: how many jumps from built-in chains into MTUGATE_* chains
	# (but MTUGATE_HOLD, which a stop leaves for a draining proxy: e2e-upgrade.sh)
	{ ip netns exec "$1" iptables-save; ip netns exec "$1" ip6tables-save; } |
		grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j MTUGATE_' | grep -cv MTUGATE_HOLD
}

mss_rewritten() {	# mss_rewritten SOCK GROUP: that group's counter, from stats --json
	/usr/sbin/mtugatectl -s "$1" stats --json | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]]["mss_rewritten"])' "$2"
}

clamped() { [ "$(mss_rewritten "$1" relay 2>/dev/null || echo 0)" -ge 1 ]; }

# The installed rules script (what mtugate-rules.service runs) loads the rules
# into the gateway namespace; a SYN from a client namespace toward the example
# relay pool crosses the gateway and is counted as clamped by the daemon.
rules_and_traffic() {
	local conf=$1 sock=$2 rules=/usr/libexec/mtugate/mtugate-rules want
	# One jump per hook line the configuration prints (-C ... || -I ...).
	want=$(/usr/sbin/mtugatectl -c "$conf" rules --hooks | grep -c ' -I ')
	check "rules --hooks prints jumps" test "$want" -ge 2
	ip netns add "$ns-c" && ip -n "$ns-c" link set lo up
	ip link add mgc$$ netns "$ns-c" type veth peer name mgg$$ netns "$ns"
	ip -n "$ns-c" addr add 198.18.1.2/24 dev mgc$$ && ip -n "$ns-c" link set mgc$$ up
	ip -n "$ns-c" route add default via 198.18.1.1
	ip -n "$ns" addr add 198.18.1.1/24 dev mgg$$ && ip -n "$ns" link set mgg$$ up
	# The pool is routed back to the client, which drops what it gets: the
	# SYN still crosses the gateway's FORWARD chain, and nothing answers.
	ip -n "$ns" route add 192.0.2.128/26 via 198.18.1.2
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$ns" env MTUGATE_CONF="$conf" "$rules" start
	check "mtugate-rules start" test $? = 0
	check "rules hooked into the built-in chains" test "$(jumps "$ns")" = "$want"
	ip netns exec "$ns" env MTUGATE_CONF="$conf" "$rules" start
	check "mtugate-rules start again: each jump still once" test "$(jumps "$ns")" = "$want"
	ip netns exec "$ns-c" python3 -c '
import socket
s = socket.socket(); s.settimeout(0.5)
try: s.connect(("192.0.2.130", 80))
except OSError: pass' 2>/dev/null
	wait_until 5 clamped "$sock"
	check "a forwarded SYN counted as clamped in group relay" clamped "$sock"
	ip netns exec "$ns" env MTUGATE_CONF="$conf" "$rules" stop
	check "mtugate-rules stop unhooks every jump" test "$(jumps "$ns")" = 0
	ip netns del "$ns-c"
}

# mtugate-rules undoes what it applied, not what the configuration says now: a
# proxy's fwmark rule and local routes under one mark_mask and route_table,
# then another (the move mwan3's 0x3f00 asks for), leave nothing of the first.
rules_follow_changes() {
	local rules=/usr/libexec/mtugate/mtugate-rules n=$ns-r d=$tmp/rules-state
	mkdir -p "$d/groups.d"
	printf '[daemon]\nuser =\ngroups_dir = groups.d\n[headend]\naddress = 198.18.2.2, 2001:db8:2::2\n[proxy]\nenable = yes\ndrain_timeout = 0\n' \
		>"$d/mtugate.conf"
	printf '[group]\nname = a\npool = 192.0.2.128/26, 2001:db8:0:80::/64\nmtu = 1380\n' >"$d/groups.d/a.conf"
	ip netns add "$n" && ip -n "$n" link set lo up
	run() { ip netns exec "$n" env MTUGATE_CONF="$d/mtugate.conf" MTUGATE_RULES_STATE="$d/state" "$rules" "$1"; }
	fwmarks() { { ip -N -n "$n" rule; ip -N -n "$n" -6 rule; } | grep -o 'fwmark [0-9a-fx/]* lookup [0-9]*' | sort -u | tr '\n' ' '; }
	run start
	check "mtugate-rules start with the proxy: its fwmark rule" test "$(fwmarks)" = "fwmark 0x100/0x100 lookup 100 "
	sed -i 's/^\[proxy\]$/[proxy]\nroute_table = 4242/; s/^\[headend\]$/[queues]\nmark_mask = 0x7f0000\n[headend]/' "$d/mtugate.conf"
	run start
	check "reloaded after a new mark_mask and route_table: the old rule is gone" \
		test "$(fwmarks)" = "fwmark 0x100000/0x100000 lookup 4242 "
	check "and table 100's local routes" test -z "$(ip -n "$n" route show table 100; ip -n "$n" -6 route show table 100)"
	sed -i '/^mark_mask/d; /^route_table/d' "$d/mtugate.conf"
	run stop
	check "stop after another change undoes what was applied: no fwmark rule left" test -z "$(fwmarks)"
	check "no route left in table 4242" test -z "$(ip -n "$n" route show table 4242; ip -n "$n" -6 route show table 4242)"
	check "no jump left" test "$(jumps "$n")" = 0
	# clean (package removal): the chains go too, and what start recorded.
	run start
	run clean
	check "clean: no MTUGATE chain left in any table" \
		test "$({ ip netns exec "$n" iptables-save; ip netns exec "$n" ip6tables-save; } | grep -c MTUGATE_)" = 0
	check "clean: nothing recorded left" test ! -e "$d/state"
	check "clean: no fwmark rule left" test -z "$(fwmarks)"
	ip netns del "$n"
}

# The maintainer scripts keep the firewall in step with the package: an
# upgrade restarts the rules unit if it ran (stopped and never started again,
# the upgrade left the firewall without mtugate); a removal unhooks them while
# the script that does it is still there.
maintainer_scripts() {
	local d=$tmp/ctrl
	mkdir -p "$d" && dpkg-deb -e "$deb" "$d"
	check "postinst restarts mtugate-rules.service after an upgrade" \
		sh -c "grep -A12 'mtugate-rules.service' '$d/postinst' | grep -q 'restart'"
	check "preinst does not stop it on upgrade" sh -c "! grep -q 'stop.*mtugate-rules' '$d/preinst' 2>/dev/null"
	check "prerm stops it on remove" sh -c "grep -q 'deb-systemd-invoke stop mtugate-rules.service' '$d/prerm'"
	check "prerm ends a draining proxy on remove, after the service's stop" sh -c \
		"sed -n '/deb-systemd-invoke stop .*mtugate.service/,\$p' '$d/prerm' | grep -q 'pkill -P 1 --ns 1 --nslist net -x mtugated-proxy'"
	check "and deletes the chains" sh -c "grep -q 'mtugate-rules clean' '$d/prerm'"
}

purge_package() {
	local f
	dpkg --purge mtugate >"$tmp/purge.log" 2>&1
	check "dpkg --purge" test $? = 0
	installed_by_us=no
policy_rc_d=
	check "package gone from dpkg" sh -c \
		"! dpkg-query -W -f='\${Status}' mtugate 2>/dev/null | grep -q installed"
	for f in /usr/sbin/mtugated /usr/sbin/mtugatectl /etc/mtugate \
		/lib/systemd/system/mtugate.service /lib/systemd/system/mtugate-rules.service \
		/usr/libexec/mtugate /etc/systemd/system/multi-user.target.wants/mtugate.service \
		/var/lib/systemd/deb-systemd-helper-enabled/mtugate.service.dsh-also \
		/usr/lib/sysusers.d/mtugate.conf /usr/share/man/man8/mtugated.8.gz \
		/usr/share/doc/mtugate; do
		check "purged: $f" test ! -e "$f"
	done
	# Debian keeps system users on purge: files the uid owns may remain, and a
	# reused uid would inherit them (systemd-sysusers never deletes users).
	check "system user kept, as policy has it" getent passwd mtugate
}

if [ "$mode" = full ]; then
	build_package && install_package && {
		maintainer_scripts
		check_installed
		run_daemon root
		run_daemon unit
		purge_package
	}
else
	check_installed
	run_daemon root
	run_daemon unit
fi
finish debian
