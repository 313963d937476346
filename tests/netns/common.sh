# Small namespace and assertion helpers shared by the end-to-end tests (sourced).
# Style of WireGuard's netns.sh: every name carries the caller's $$, and the
# caller's trap removes what it made.
npass=0 nfail=0

check() {	# check "what" CMD...: one assertion
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		npass=$((npass + 1)); echo "ok   $what"
	else
		nfail=$((nfail + 1)); echo "FAIL $what"
	fi
}

finish() {	# finish NAME: the summary line the runner adds up
	echo "$1: $npass passed, $nfail failed"
	[ "$nfail" = 0 ]
	exit $?
}

wait_until() {	# wait_until SECONDS CMD...: poll with a deadline, never a fixed sleep
	local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
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
