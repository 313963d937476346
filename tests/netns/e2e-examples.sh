#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# The seed's two cases as shipped (conf/examples/) and the README's quick starts as written:
# the fenced blocks under the README's <!-- quickstart: NAME --> markers are extracted and run
# in the lab's gateway, as an administrator would run them on a Debian firewall with the
# package installed, INPUT dropping by default. Only the documentation addresses of the copied
# files are changed to the lab's (the edit the README asks for), nothing else.
#   case 1 (udp-blocked): DTLS dropped on the path, the proxy: tlsonly is offered no DTLS, tun
#     MTU = TLS MTU, no reconnect, the download works; relay is offered equal MTUs, so its
#     failed DTLS needs no reconnect either; then the README's block that keeps mtugate's
#     chains out of a saved ruleset, and netfilter-persistent save with the package's plugin.
#   case 2 (cscuh61321): told 444, answered on 443, no proxy: DTLS established at the first
#     attempt through the catch-all relay group, no reconnect, the download works.
# The "installed package" is a private mount namespace in the gateway: overlays on /etc and
# /usr hold the built programs, the examples, the rules script and the mtugate user (from
# debian/mtugate.sysusers), a tmpfs on /run; systemctl and netfilter-persistent are stand-ins
# that run what the units' Exec lines say (the daemon as the unit starts it: user mtugate with
# the two capabilities), so nothing on the host changes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root
for t in unshare nsenter setpriv ipset iptables-save systemd-analyze systemd-sysusers; do
	command -v "$t" >/dev/null || { echo "$LAB_NAME: $t is missing (make deps)" >&2; exit 77; }
done
[[ -x $B/mtugated && -x $B/mtugatectl ]] || { echo "$LAB_NAME: $B/mtugated not built" >&2; exit 77; }
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || { echo "$LAB_NAME: no overlayfs" >&2; exit 77; }

README=$LAB_ROOT/README.md
HOLDER=

# block NAME: the fenced block right after the README's <!-- quickstart: NAME --> line.
block() {
	awk -v m="<!-- quickstart: $1 -->" '$0 == m { f = 1; next }
		f == 1 && /^```/ { f = 2; next } f == 2 && /^```/ { exit } f == 2 { print }' "$README"
}

# in_fw CMD...: run CMD on the "firewall": the gateway's network and the holder's mounts.
in_fw() { nsenter -t "$HOLDER" -m -n -- env PATH="$SHIMS:/usr/sbin:/usr/bin:/sbin:/bin" "$@"; }

# The stand-in for systemd: the units' own Exec, Environment and Condition lines, the rules
# unit bound to the daemon (BindsTo=, WantedBy= once enabled).
write_shims() {
	mkdir -p "$SHIMS"
	cat >"$SHIMS/systemctl" <<'SH'
#!/bin/bash
set -euo pipefail
U=/lib/systemd/system S=/run/shim
mkdir -p $S
unit_line() { sed -n "s/^$2=//p" "$U/$1"; }
daemon_up() { [[ -f $S/pid ]] && kill -0 "$(<$S/pid)" 2>/dev/null; }
rules() {
	# shellcheck disable=SC2046 # the unit's Environment= words
	env $(unit_line mtugate-rules.service Environment) $(unit_line mtugate-rules.service "Exec$1" | sed 's/^-//')
}
rules_stop() { [[ -f $S/rules ]] || return 0; rules StopPost; rm -f $S/rules; }
rules_start() { rules Start; touch $S/rules; }
daemon_stop() {
	rules_stop
	daemon_up || return 0
	kill -TERM "$(<$S/pid)"
	for _ in $(seq 100); do daemon_up || break; sleep 0.1; done
	rm -f $S/pid
}
daemon_start() {
	local cond
	cond=$(unit_line mtugate.service ConditionDirectoryNotEmpty)
	if ! systemd-analyze condition "ConditionDirectoryNotEmpty=$cond" >/dev/null 2>&1; then
		echo "mtugate.service: condition not met ($cond empty)"; return 0
	fi
	$(unit_line mtugate.service ExecStartPre)
	install -d -o mtugate -g mtugate -m 0750 /run/mtugate
	# shellcheck disable=SC2046
	setpriv --reuid=mtugate --regid=mtugate --init-groups \
		--inh-caps=-all,+net_admin,+net_raw --ambient-caps=-all,+net_admin,+net_raw \
		--bounding-set=-all,+net_admin,+net_raw --no-new-privs \
		$(unit_line mtugate.service ExecStart) >>/run/shim/mtugated.log 2>&1 </dev/null &
	echo $! >$S/pid
	for _ in $(seq 100); do mtugatectl ping >/dev/null 2>&1 && break; sleep 0.1; done
	mtugatectl ping >/dev/null
	[[ ! -f $S/enabled ]] || rules_start
}
now=no
args=()
for a in "$@"; do [[ $a == --now ]] && now=yes || args+=("${a%.service}"); done
case ${args[0]}:${args[1]} in
start:mtugate) daemon_up || daemon_start ;;
restart:mtugate) daemon_stop; daemon_start ;;
stop:mtugate) daemon_stop ;;
reload:mtugate) daemon_up && kill -HUP "$(<$S/pid)" ;;	# the unit's ExecReload
enable:mtugate-rules) touch $S/enabled; [[ $now == no ]] || { daemon_up || daemon_start; rules_start; } ;;
start:mtugate-rules|restart:mtugate-rules) daemon_up || daemon_start; rules_start ;;
stop:mtugate-rules) rules_stop ;;
*) echo "systemctl stand-in: $* not emulated" >&2; exit 1 ;;
esac
SH
	# netfilter-persistent save: what its ip4tables and ip6tables plugins do, then the
	# plugins installed after them (the package's 35-mtugate).
	cat >"$SHIMS/netfilter-persistent" <<'SH'
#!/bin/sh
set -e
[ "$1" = save ] || { echo "netfilter-persistent stand-in: $1 not emulated" >&2; exit 1; }
mkdir -p /etc/iptables
iptables-save >/etc/iptables/rules.v4
ip6tables-save >/etc/iptables/rules.v6
for p in /usr/share/netfilter-persistent/plugins.d/*; do [ -x "$p" ] && "$p" save; done
exit 0
SH
	chmod 0755 "$SHIMS/systemctl" "$SHIMS/netfilter-persistent"
}

# The firewall with the package installed: a private mount namespace in the gateway that
# outlives each command (a holder process), overlays on /etc and /usr, a tmpfs on /run.
firewall_up() {
	local o=$LAB_DIR/ovl
	mkdir -p "$o"/{etc,usr}-{up,work}
	SHIMS=$LAB_DIR/shims
	write_shims
	ip netns exec "$NS_GW" unshare -m --propagation private sleep 100000 </dev/null >/dev/null 2>&1 &
	HOLDER=$!
	echo "$HOLDER" >"$LAB_DIR/pids/holder"
	# ip and unshare exec in turn: the namespaces are in place once the pid runs sleep.
	wait_until 5 grep -qx sleep "/proc/$HOLDER/comm"
	in_fw sh -ec "
		mount -t overlay overlay -o lowerdir=/etc,upperdir=$o/etc-up,workdir=$o/etc-work /etc
		mount -t overlay overlay -o lowerdir=/usr,upperdir=$o/usr-up,workdir=$o/usr-work /usr
		mount -t tmpfs tmpfs /run
		rm -rf /etc/mtugate /usr/share/doc/mtugate
		install -d -m 0755 /etc/mtugate/groups.d /usr/share/doc/mtugate /usr/libexec/mtugate
		cp -r '$LAB_ROOT/conf/examples' /usr/share/doc/mtugate/examples
		install -m 0644 '$LAB_ROOT/conf/mtugate.conf' /etc/mtugate/mtugate.conf
		install -m 0755 '$B/mtugated' '$B/mtugatectl' /usr/sbin/
		install -m 0755 '$LAB_ROOT/debian/mtugate-rules' /usr/libexec/mtugate/mtugate-rules
		install -D -m 0755 '$LAB_ROOT/debian/mtugate-persistent-plugin' \
			/usr/share/netfilter-persistent/plugins.d/35-mtugate
		install -m 0644 '$LAB_ROOT/systemd/mtugate.service' '$LAB_ROOT/systemd/mtugate-rules.service' \
			/lib/systemd/system/
		systemd-sysusers '$LAB_ROOT/debian/mtugate.sysusers'
		mkdir -p /etc/iptables	# as iptables-persistent leaves it
		# The headend's CA is one the system trusts (in the lab: the lab's own CA).
		mkdir -p /etc/ssl/certs && cat '$LAB_CA' >/etc/ssl/certs/ca-certificates.crt"
	# An edge firewall: INPUT drops by default, lets its own replies and ICMP in.
	local t icmp
	for t in iptables ip6tables; do
		icmp=icmp
		[[ $t == ip6tables ]] && icmp=ipv6-icmp
		n_gw "$t" -A INPUT -i lo -j ACCEPT
		n_gw "$t" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
		n_gw "$t" -A INPUT -p "$icmp" -j ACCEPT
		n_gw "$t" -P INPUT DROP
	done
}

# The administrator's edit: the documentation addresses of the copied files become the lab's.
edit_addresses() {
	in_fw sh -ec 'sed -i -e "s/203\.0\.113\.10/198.18.2.2/g; s/2001:db8:a::10/2001:db8:2::2/g" \
		-e "s/198\.51\.100\./192.0.2./g; s/2001:db8:b:/2001:db8:0:/g" \
		/etc/mtugate/mtugate.conf /etc/mtugate/groups.d/*.conf'
}

# only_addresses_changed CASE: the files in force differ from the shipped ones in address
# lines only.
only_addresses_changed() {
	local f other
	for f in mtugate.conf $(cd "$LAB_ROOT/conf/examples/$1/groups.d" && ls -- *.conf | sed 's|^|groups.d/|'); do
		other=$(in_fw diff "/usr/share/doc/mtugate/examples/$1/$f" "/etc/mtugate/$f" |
			grep '^[<>]' | grep -vE '^[<>] *(address|pool) *=' || true)
		[[ -z $other ]] || { echo "$f: $other" >&2; return 1; }
	done
	return 0
}

# run_block NAME [DIR]: the README's block, every line as written, in DIR (default /root).
run_block() {
	local code
	code=$(block "$1")
	[[ -n $code ]] || { echo "README has no block '$1'" >&2; return 1; }
	in_fw bash -ec "cd '${2:-/root}'; $code" >"$LAB_DIR/block-$1.log" 2>&1
}

# step NAME BLOCK [DIR]: run_block as a check; on failure show its output and the daemon's log.
step() {
	local before=$nfail
	check "$1" run_block "${@:2}"
	((nfail == before)) || { sed 's/^/     /' "$LAB_DIR/block-$2.log"; daemon_log; }
}

stat_json() { in_fw mtugatectl stats --json; }
group_counter() { # GROUP FIELD
	stat_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
# A saved ruleset (in the /etc overlay): none of mtugate's, the administrator's INPUT line kept.
saved_clean() {
	local f=$LAB_DIR/ovl/etc-up/iptables/$1
	[[ -s $f ]] && ! grep -q 'MTUGATE\|mtugate_' "$f" && grep -q -- '--mark 0x100/0x100 -j ACCEPT' "$f"
}
inactive() { [[ $(in_fw systemctl start mtugate.service) == *"condition not met"* ]] && ! in_fw mtugatectl ping; }
daemon_user() { [[ $(in_fw sh -c 'stat -c %U /proc/$(cat /run/shim/pid)') == mtugate ]]; }
# without_input_line: the README's INPUT line is what lets the logins in (check says so).
without_input_line() {
	in_fw iptables -D INPUT -m mark --mark 0x100/0x100 -j ACCEPT
	in_fw mtugatectl check >"$LAB_DIR/check-no-input.log" 2>&1 && return 1
	in_fw iptables -I INPUT -m mark --mark 0x100/0x100 -j ACCEPT
	grep -q 'INPUT drops by default and nothing accepts' "$LAB_DIR/check-no-input.log"
}
# The administrator's edit in place (sed -i writes a new file and renames it), then a reload.
reloads() { in_fw grep -c 'reloaded: ' /run/shim/mtugated.log || true; }
sed_i_reloads() {
	local n
	n=$(reloads)
	in_fw sed -i '1i ; edited in place' /etc/mtugate/mtugate.conf
	in_fw systemctl reload mtugate.service
	wait_until 5 eval '[ "$(reloads)" -gt "$n" ]' && ! in_fw grep -q 'reload failed' /run/shim/mtugated.log
}
daemon_log() { in_fw cat /run/shim/mtugated.log 2>/dev/null | tail -20 | sed 's/^/     mtugated: /'; }

for b in "udp-blocked copy" "udp-blocked start" "cscuh61321 copy" "cscuh61321 start" keep-rules; do
	check "README has the quick-start block '$b'" test -n "$(block "$b")"
done

progress "case 1: DTLS dropped on the path for both groups, the udp-blocked example with the proxy"
lab_up asa_mtus dtls_block=tlsonly:drop dtls_block=relay:drop
firewall_up
check "installed inactive: mtugate.service does not start without a group" inactive
step "case 1: the copy block runs" "udp-blocked copy"
edit_addresses
check "case 1: files in force differ from the shipped ones in addresses only" only_addresses_changed udp-blocked
mkdir -p "$LAB_DIR/admin" && cp "$LAB_CERT" "$LAB_DIR/admin/headend.crt" && cp "$LAB_KEY" "$LAB_DIR/admin/headend.key"
step "case 1: the start block runs (mtugatectl check: exit 0)" "udp-blocked start" "$LAB_DIR/admin"
check "case 1: mtugatectl check said deployment OK" grep -q '^deployment OK' "$LAB_DIR/block-udp-blocked start.log"
check "case 1: the daemon runs as user mtugate" daemon_user
check "case 1: without the README's INPUT line, check names the default-drop INPUT" without_input_line
check "case 1: the key is root's, group ssl-cert, 0640, off /etc/mtugate" \
	in_fw sh -c '[ "$(stat -c %U:%G:%a /etc/ssl/private/mtugate-headend.key)" = root:ssl-cert:640 ]'
check "case 1: check finds the key off the configuration's folders" \
	grep -q "^ok       \[proxy\] private_key is off the configuration's folders" "$LAB_DIR/block-udp-blocked start.log"
check "case 1: an edit of mtugate.conf by rename (sed -i) reloads" sed_i_reloads
lab_connect tlsonly
lab_behaviour
check "case 1: no DTLS offered to the client" [ "$AC_DTLS_OFFERED" = no ]
check "case 1: tun MTU is the TLS MTU ($AC_TUN_MTU)" [ "$AC_TUN_MTU" = "$(lab_tls_mtu)" ]
check "case 1: no reconnect predicted" [ "$AC_RECONNECT" = no ]
check "case 1: HTTP download through the tunnel" lab_http_get 4 20
check "case 1: the proxy rewrote tlsonly's CONNECT" test "$(group_counter tlsonly connect_rewritten)" -ge 1
# The example's other group: DTLS is offered, and when it fails on the path too the equal
# MTUs need no reconnect.
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "case 1, relay group: DTLS offered, dropped on the path" [ "$AC_DTLS_OFFERED:$AC_DTLS_ESTABLISHED" = yes:no ]
check "case 1, relay group: equal TLS and DTLS MTUs ($AC_CSTP_MTU/$AC_DTLS_MTU), no reconnect" \
	[ "$AC_CSTP_MTU:$AC_DTLS_MTU:$AC_RECONNECT" = "$(lab_tls_mtu):$(lab_tls_mtu):no" ]
check "case 1, relay group: HTTP download over TLS" lab_http_get 4 20
lab_disconnect
step "case 1: the keep-rules block runs" keep-rules
check "case 1: the saved IPv4 ruleset: no mtugate chain, the INPUT line kept" saved_clean rules.v4
check "case 1: the saved IPv6 ruleset too" saved_clean rules.v6
check "case 1: mtugate's rules are back after it" in_fw mtugatectl check
in_fw rm -f /etc/iptables/rules.v4 /etc/iptables/rules.v6
check "case 1: netfilter-persistent save with the rules loaded" in_fw netfilter-persistent save
check "case 1: its plugin kept mtugate out of the saved IPv4 ruleset" saved_clean rules.v4
check "case 1: and out of the IPv6 one" saved_clean rules.v6
check "case 1: the rules still loaded after the save" in_fw mtugatectl check
lab_down

progress "case 2: CSCuh61321 (told 444, answered on 443), the cscuh61321 example without the proxy"
lab_up asa_mtus cscuh61321
firewall_up
step "case 2: the copy block runs" "cscuh61321 copy"
edit_addresses
check "case 2: files in force differ from the shipped ones in addresses only" only_addresses_changed cscuh61321
step "case 2: the start block runs (mtugatectl check: exit 0)" "cscuh61321 start"
check "case 2: mtugatectl check said deployment OK" grep -q '^deployment OK' "$LAB_DIR/block-cscuh61321 start.log"
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "case 2: the client was told port 444" grep -q 'X-DTLS-Port: 444' "$LAB_OC_LOG"
check "case 2: DTLS established at the first attempt" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "case 2: no reconnect predicted" [ "$AC_RECONNECT" = no ]
check "case 2: HTTP download through the tunnel" lab_http_get 4 20
check "case 2: the port fix counted for the catch-all relay group" test "$(group_counter relay dtls_port_rewritten)" -ge 1
# What the catch-all is for: without its clients line a new DTLS flow is of no group, and
# gets no port fix.
in_fw sed -i '/^clients *=/d' /etc/mtugate/groups.d/relay.conf
check "case 2: without the catch-all: reloaded" in_fw mtugatectl reload
fixed=$(group_counter relay dtls_port_rewritten)
lab_connect relay
wait_until 20 lab_dtls_settled || true
lab_behaviour
check "case 2: without the catch-all: DTLS not established" [ "$AC_DTLS_ESTABLISHED" = no ]
check "case 2: without the catch-all: reconnect predicted" [ "$AC_RECONNECT" = yes ]
check "case 2: without the catch-all: no port fix" test "$(group_counter relay dtls_port_rewritten)" = "$fixed"
lab_down
finish
