#!/bin/bash
# Privileges of a running mtugated: the control socket answers its own group
# and refuses anyone else; after start the daemon runs as its user with only
# CAP_NET_ADMIN and CAP_NET_RAW, in every thread; a missing user is refused
# with a clear error before anything is bound.
# Throwaway users and groups carry $$ and are removed by the trap.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, useradd)"; exit 77; }
command -v useradd >/dev/null || { echo "needs useradd (passwd)"; exit 77; }
. tests/netns/common.sh

tmp=$(mktemp -d /tmp/mg-sec.XXXXXX)
chmod 755 "$tmp"	# the daemon re-reads its files as its own user
gw=mgs$$-gw
du=mgd$$ mu=mgm$$ ou=mgo$$	# the daemon's user, a member of its group, an outsider
cleanup() {
	[ -n "${dpid:-}" ] && kill -9 "$dpid" 2>/dev/null
	ip netns pids $gw 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del $gw 2>/dev/null
	for u in $mu $ou $du; do userdel "$u" 2>/dev/null; done
	groupdel $du 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

useradd -r -U -M -d /nonexistent -s /usr/sbin/nologin $du
useradd -r -M -N -g nogroup -G $du -d /nonexistent -s /usr/sbin/nologin $mu
useradd -r -M -N -g nogroup -d /nonexistent -s /usr/sbin/nologin $ou
# The tools as other users: the build tree may sit where they cannot read it.
install -m 0755 "$B/mtugatectl" "$tmp/mtugatectl"
ns_create $gw

mkdir -p "$tmp/groups.d"
conf() {	# conf USER: the daemon's configuration with that [daemon] user
	cat >"$tmp/mtugate.conf" <<CONF
[daemon]
user = $1
control_socket = $tmp/run/mtugate.sock
groups_dir = groups.d
log_level = info
[queues]
mss = 0
pmtu = 2
dtls = 3
[headend]
address = 198.18.3.2
CONF
}
cat >"$tmp/groups.d/alpha.conf" <<GRP
[group]
name = alpha
pool = 192.0.2.0/26
mtu = 1300
GRP

# A user that does not exist: a clear error, a non-zero exit, nothing bound.
conf nosuchuser$$
out=$(ip netns exec $gw timeout 10 "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>&1); rc=$?
check "mtugated refuses a missing user with a non-zero exit (got $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "the error names the user: $out" grep -q "user 'nosuchuser$$' does not exist" <<<"$out"
check "no queue was bound" bash -c "! ip netns exec $gw cat /proc/net/netfilter/nfnetlink_queue | grep -q ."
check "no control socket was left" test ! -e "$tmp/run/mtugate.sock"

conf $du
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>"$tmp/daemon.log" &
dpid=$!
as() {	# as USER CMD...: with that user's uid, gid and supplementary groups
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups --inh-caps=-all -- "$@"
}
ctl_as() { as "$1" "$tmp/mtugatectl" -s "$tmp/run/mtugate.sock" ping; }
check "the control socket answers root" wait_until 10 "$tmp/mtugatectl" -s "$tmp/run/mtugate.sock" ping
check "the daemon runs as its user" wait_until 5 grep -q "started:" "$tmp/daemon.log"

# Every thread: uid/gid (real, effective, saved, fs), groups, capabilities.
uid=$(id -u $du) gid=$(id -g $du)
field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$1"; }
ntask=0
for st in /proc/$dpid/task/*/status; do
	t=$(basename "$(dirname "$st")")
	ntask=$((ntask + 1))
	check "thread $t: Uid all $uid ($(field "$st" Uid))" test "$(field "$st" Uid)" = "$uid $uid $uid $uid"
	check "thread $t: Gid all $gid ($(field "$st" Gid))" test "$(field "$st" Gid)" = "$gid $gid $gid $gid"
	check "thread $t: Groups only $gid ($(field "$st" Groups))" test "$(field "$st" Groups | tr -d ' ')" = "$gid"
	for k in CapEff CapPrm CapBnd; do
		check "thread $t: $k is CAP_NET_ADMIN|CAP_NET_RAW ($(field "$st" $k))" test "$(field "$st" $k)" = 0000000000003000
	done
	for k in CapInh CapAmb; do
		check "thread $t: $k is empty ($(field "$st" $k))" test "$(field "$st" $k)" = 0000000000000000
	done
	check "thread $t: NoNewPrivs" test "$(field "$st" NoNewPrivs)" = 1
done
check "the packet threads were seen (${ntask} tasks)" test "$ntask" -ge 4

# The socket: mode 0660 with the daemon's group, in a folder only that group enters.
check "the socket is mode 0660 (got $(stat -c %a "$tmp/run/mtugate.sock"))" test "$(stat -c %a "$tmp/run/mtugate.sock")" = 660
check "the socket's group is $du (got $(stat -c %G "$tmp/run/mtugate.sock"))" test "$(stat -c %G "$tmp/run/mtugate.sock")" = $du
check "the socket's folder is not world-accessible (got $(stat -c %a "$tmp/run"))" test "$(( 0$(stat -c %a "$tmp/run") & 07 ))" = 0
# Root's, not the daemon user's: that user cannot swap the socket for a
# symlink that a root start would then chmod/chown through.
check "the socket's folder is root:$du 0750 (got $(stat -c %U:%G:%a "$tmp/run"))" test "$(stat -c %U:%G:%a "$tmp/run")" = "root:$du:750"
check "the daemon's user cannot create files in it" bash -c "! setpriv --reuid=$du --regid=$du --clear-groups touch '$tmp/run/x' 2>/dev/null"
check "a member of group $du is answered" ctl_as $mu
out=$(ctl_as $ou 2>&1); rc=$?
check "a user outside group $du is refused (exit $rc)" test "$rc" -ne 0
check "with a permission error: $out" grep -qi "permission denied\|EACCES" <<<"$out"
# The folder stays closed; even with it open, the socket's own mode refuses the outsider.
chmod 0755 "$tmp/run"
out=$(ctl_as $ou 2>&1); rc=$?
check "the outsider is refused by the socket's mode too (exit $rc)" test "$rc" -ne 0
check "nobody (not in group $du) is refused" bash -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups '$tmp/mtugatectl' -s '$tmp/run/mtugate.sock' ping"
chmod 0750 "$tmp/run"
check "the daemon still answers its group after the refusals" ctl_as $mu

# The refused connections never reached the daemon, which stops cleanly.
kill -TERM $dpid
wait $dpid; rc=$?; dpid=
check "SIGTERM stops mtugated with exit 0 (got $rc)" test "$rc" = 0
# An empty user keeps root, and says so at every start.
conf ""
ip netns exec $gw "$B/mtugated" -f -c "$tmp/mtugate.conf" 2>"$tmp/root.log" &
dpid=$!
check "with user empty the daemon starts" wait_until 10 "$tmp/mtugatectl" -s "$tmp/run/mtugate.sock" ping
check "and warns that it runs as root" grep -q "user is empty: running as root" "$tmp/root.log"
check "and is root" test "$(field /proc/$dpid/status Uid)" = "0 0 0 0"
kill -TERM $dpid
wait $dpid; rc=$?; dpid=
check "SIGTERM stops it with exit 0 (got $rc)" test "$rc" = 0
check "no sanitizer report in the daemon's log" bash -c "! cat '$tmp/daemon.log' '$tmp/root.log' | grep -E 'Sanitizer|runtime error'"
finish e2e-security
