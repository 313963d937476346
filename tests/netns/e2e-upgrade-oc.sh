#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# Issue 22, "Upgrades without dropping tunnels", with the real peers: openconnect (to the
# headend's IPv4, then its IPv6 address) in the TLS-only group through the proxy to ocserv,
# then a restart as the unit does it (debian/mtugate-rules stop, SIGTERM to mtugated alone, a
# new mtugated, mtugate-rules start).
# The tunnel carries on: openconnect makes no new CONNECT and logs no reconnect, ocserv keeps
# the same TCP connection, a ping crosses the tunnel after the restart; the old proxy keeps it
# until the client leaves, then exits. (tests/netns/e2e-upgrade.sh: 100 tunnels, the deadline,
# drain_timeout 0, both rule backends.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

mg_log_has() { grep -q -- "$2" "$LAB_DIR/$1"; }
connects() { grep -c 'Got CONNECT response' "$LAB_OC_LOG"; }
# The headend's side of the proxied connections: the client's address and port.
peers() { n_headend ss -Htn state established '( sport = :443 )' | awk '{ print $4 }' | sort; }
tunnel_ping() { n_client ping -c1 -W3 "$LAB_LAN4"; }
child() { pgrep -P "$1" -x "$2" | head -1; }
# A forked process names itself (PR_SET_NAME) a moment after it starts: polled where it is new.
has_child() { [ -n "$(child "$1" "$2")" ]; }
rules_unit() { # start|stop: the rules unit's script, in the gateway
	n_gw env PATH="$B:$PATH" MTUGATE_CONF="$conf" MTUGATE_RULES_STATE="$LAB_DIR/rules-state" \
		sh "$LAB_ROOT/debian/mtugate-rules" "$1"
}

lab_up groups=tlsonly
conf=$(lab_mtugate_conf proxy=yes proxy.drain_timeout=3600 proxy.workers=1)
lab_mtugated_start "$conf" || die "mtugated did not start"
check "mtugate-rules start (the hold with it)" rules_unit start
gen=1
# round 4|6: openconnect to the headend's IPv4 or IPv6 address, a restart under its tunnel.
round() {
	local v=$1 pid master log=mtugated.$gen.log new
	LAB_CONNECT_TO=$([[ $v == 6 ]] && echo "$LAB_HEADEND6" || echo "$LAB_HEADEND4") lab_connect tlsonly
	check "IPv$v: the proxy carried the tunnel" mg_log_has "$log" "tunnel up, group tlsonly"
	check "IPv$v: a ping through the tunnel" tunnel_ping
	before=$(peers) n0=$(connects)
	check "IPv$v: ocserv holds the proxied connection" test -n "$before"
	pid=$(<"$LAB_DIR/pids/mtugated")
	master=$(child "$pid" mtugated-proxy)
	progress "IPv$v: rules unit stop, SIGTERM to mtugated, a new mtugated, rules unit start"
	rules_unit stop
	kill -TERM "$pid"
	check "IPv$v: the old mtugated exits" wait_until 5 lab_dead "$pid"
	gen=$((gen + 1))
	ip netns exec "$NS_GW" "$B/mtugated" -f -c "$conf" >"$LAB_DIR/mtugated.$gen.log" 2>&1 &
	new=$!
	echo "$new" >"$LAB_DIR/pids/mtugated"
	check "IPv$v: a new mtugated answers" wait_until 10 mtugatectl ping
	check "IPv$v: and listens" wait_until 5 lab_listening "$NS_GW" tcp 8443
	rules_unit start
	check "IPv$v: the old proxy ($master) drains" kill -0 "${master:-0}"
	check "IPv$v: it said so" mg_log_has "$log" "draining: listeners closed, 1 tunnel(s)"
	check "IPv$v: a ping through the tunnel after the restart" tunnel_ping
	check "IPv$v: openconnect made no new CONNECT ($(connects) CONNECT answer)" test "$(connects)" = "$n0"
	check_not "IPv$v: and logged no reconnect" grep -Eqi 'reconnect|Server closed connection' "$LAB_OC_LOG"
	check "IPv$v: ocserv keeps the same TCP connection" test "$(peers)" = "$before"
	check "IPv$v: the new mtugated's proxy runs beside it" wait_until 5 has_child "$new" mtugated-proxy
	lab_disconnect
	check "IPv$v: the old proxy exits once the client has left" wait_until 10 lab_dead "${master:-0}"
	check "IPv$v: at info" mg_log_has "$log" "drained: its last tunnel ended after"
}
ln -sf mtugated.log "$LAB_DIR/mtugated.1.log"	# the first daemon's log (lab_mtugated_start)
round 4
round 6
rules_unit stop
lab_mtugated_stop
finish
