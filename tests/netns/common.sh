# shellcheck shell=bash
# The helpers every end-to-end test shares (sourced; tests/netns/lib.sh sources
# it too). Style of WireGuard's netns.sh: every name carries the caller's $$,
# and the caller's trap removes what it made.
npass=0 nfail=0

pass() { npass=$((npass + 1)); printf 'ok   %s\n' "$1"; }
fail() { nfail=$((nfail + 1)); printf 'FAIL %s%s\n' "$1" "${2:+: $2}"; }
# check "what" CMD...: one assertion; check_not: the command must fail.
check() { local n=$1; shift; if "$@" >/dev/null 2>&1; then pass "$n"; else fail "$n" "$* failed"; fi; }
check_not() { local n=$1; shift; if ! "$@" >/dev/null 2>&1; then pass "$n"; else fail "$n" "$* succeeded"; fi; }

finish() {	# finish [NAME]: the summary line the runner adds up
	printf '%s: %d passed, %d failed\n' "${1:-${LAB_NAME:-$(basename "$0" .sh)}}" "$npass" "$nfail"
	((nfail == 0 && npass > 0))
	exit $?
}

# wait_until SECONDS CMD...: poll with a deadline, never a fixed sleep. A
# command that exits 255 means "will never succeed": stop at once.
wait_until() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000)) rc
	shift
	while :; do
		rc=0
		"$@" >/dev/null 2>&1 || rc=$?
		((rc == 0)) && return 0
		((rc != 255 && $(date +%s%N) < deadline)) || return 1
		sleep 0.05
	done
}

# lab_listening NS tcp|udp PORT: a socket listens (TCP) or is bound (UDP) on PORT in NS.
lab_listening() { # NS tcp|udp PORT
	local flag=-Htln
	[[ $2 == udp ]] && flag=-Huln
	[[ -n $(ip netns exec "$1" ss "$flag" "sport = :$3") ]]
}

ns_create() {
	local n
	for n in "$@"; do
		ip netns add "$n"
		ip -n "$n" link set lo up
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	done
}

ns_link() {	# ns_link NS_A ADDR4 ADDR6 NS_B ADDR4 ADDR6: a veth pair between two namespaces
	local a=$1 a4=$2 a6=$3 b=$4 b4=$5 b6=$6 ia="v-$4" ib="v-$1"
	ia=$(printf %.15s "$ia") ib=$(printf %.15s "$ib")
	ip link add "$ia" netns "$a" type veth peer name "$ib" netns "$b"
	ip -n "$a" addr add "$a4" dev "$ia"; ip -n "$a" addr add "$a6" dev "$ia" nodad
	ip -n "$b" addr add "$b4" dev "$ib"; ip -n "$b" addr add "$b6" dev "$ib" nodad
	ip -n "$a" link set "$ia" up; ip -n "$b" link set "$ib" up
}

ns_route() {	# ns_route NS GW4 GW6: default routes
	ip -n "$1" route add default via "$2"
	ip -n "$1" -6 route add default via "$3"
}

ns_forwarding() {
	ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

ns_destroy() {	# ns_destroy NS...: kill what runs in each namespace, then delete it
	local n
	for n in "$@"; do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	return 0
}

# sessions_kv CTL...: `CTL sessions --json` (CTL: mtugatectl with its socket) as one
# "session client=... group=... user=... dtls=..." line per tunnel, for grep; mtu_* as
# CSTP/DTLS, addresses comma-joined, a null as "-".
sessions_kv() {
	"$@" sessions --json | python3 -c '
import json, sys
def flat(v):
    if v is None: return "-"
    if isinstance(v, list): return ",".join(v) or "-"
    if isinstance(v, dict): return "%s/%s" % (flat(v["cstp"]), flat(v["dtls"]))
    return str(v)
keys = ("client", "group", "user", "addresses", "since", "mtu_offered", "mtu_sent", "dtls",
        "reconnects", "bytes_in", "bytes_out", "worker")
for s in json.load(sys.stdin):
    print("session " + " ".join("%s=%s" % (k, flat(s[k])) for k in keys))'
}
