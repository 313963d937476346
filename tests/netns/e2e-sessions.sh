#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# See the reconnects (issue 18) and keep the logins private (issue 22): ocserv behind the
# ASA-style shim (X-CSTP-MTU 1380, X-DTLS-MTU 1418), mtugated's proxy in between, openconnect.
# - relay (IPv4 and IPv6 clients): `sessions --json` shows the user and DTLS established (the
#   headend's first answer in the flow, queued once by the printed rules); the per-group gauge.
# - tlsonly as a `dtls = pass` group whose DTLS the headend's own firewall drops: failed after
#   30 s, the reconnect predicted with one warning; a reconnect with the session cookie counts
#   `reconnects` and `reconnects_as_predicted`.
# - relay in mode = observe with UDP dropped: the ASA's MTUs reach the client, the prediction.
# - log_users = hash and no; every log line of the run (log_level debug) free of the password,
#   the session cookie and X-DTLS-Master-Secret.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

mg_log_has() { grep -q -- "$1" "$LAB_DIR/mtugated.log"; }
# One session's field: FIELD [GROUP]; "" when no such session.
sess() {
	sessions_kv mtugatectl | grep -- " group=${2:-$LAB_GROUP} " | head -1 \
		| tr ' ' '\n' | sed -n "s/^$1=//p"
}
sess_is() { [[ $(sess "$1" "${3:-}") == "$2" ]]; }
stat_json() { # GROUP COUNTER
	mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
stat_is_now() { [[ $(stat_json "$1" "$2") == "$3" ]]; }
# The proxy's process sends its counters every 100 ms: a count may arrive just after its log line.
stat_is() { wait_until 3 stat_is_now "$@"; }
# Whole outputs first: grep -q behind a pipe would end it early (SIGPIPE under pipefail).
prom_has() { local o; o=$(mtugatectl stats --prometheus); grep -qx -- "$1" <<<"$o"; }
prom_matches() { local o; o=$(mtugatectl stats --prometheus); grep -q -- "$1" <<<"$o"; }
table_has() { local o; o=$(mtugatectl sessions); grep -q -- "$1" <<<"$o"; }
# Every mtugated log of the run, kept across restarts (lab_bg starts each log afresh).
keep_log() { cat "$LAB_DIR/mtugated.log" >>"$LAB_DIR/mtugated-all.log" 2>/dev/null || true; }
restart_with() { # LOG_USERS
	keep_log
	lab_mtugated_stop
	sed -i "/^log_users *=/d; /^\[daemon\]/a log_users = $1" "$conf"
	lab_mtugated_start "$conf" || die "mtugated did not start (log_users = $1)"
}
warned() { mg_log_has "DTLS not established after 30 s; adapter MTU 1418 > TLS MTU 1380: AnyConnect will reconnect (reason 16)"; }

lab_up asa_mtus
conf=$(lab_mtugate_conf proxy=yes tlsonly.dtls=pass)
sed -i 's/^log_level = .*/log_level = debug/' "$conf"
lab_mtugated_start "$conf" || die "mtugated did not start"
check "the rules watch finds mtugate's rules whole (rules_ok 1)" \
	wait_until 10 eval '[[ $(mtugatectl stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"rules_ok\"])") == True ]]'
check "the rules log the headend's first DTLS answer once (connbytes 1:1, NFLOG)" \
	eval 'o=$(n_gw iptables -t mangle -S MTUGATE_PREROUTING); grep -q -- "-m connbytes --connbytes 1:1 .*--ctdir REPLY -j NFLOG --nflog-group 3" <<<"$o"'

for fam in 4 6; do
	progress "relay over IPv$fam: user and DTLS established"
	if [[ $fam == 6 ]]; then LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect relay; else lab_connect relay; fi
	wait_until 30 lab_dtls_settled || true
	src=LAB_SRC${fam}_relay
	check "relay/IPv$fam: openconnect established DTLS" grep -q "Established DTLS connection" "$LAB_OC_LOG"
	check "relay/IPv$fam: sessions shows dtls established" wait_until 10 sess_is dtls established
	check "relay/IPv$fam: its user from the login" sess_is user "$LAB_USER"
	client=$(sess client)
	check "relay/IPv$fam: the client's outer address ($client)" test "${client%:*}" = "$([[ $fam == 6 ]] && echo "[${!src}]" || echo "${!src}")"
	check "relay/IPv$fam: MTUs offered 1380/1418, sent 1380/1380" \
		eval '[[ $(sess mtu_offered) == 1380/1418 && $(sess mtu_sent) == 1380/1380 ]]'
	check "relay/IPv$fam: its tunnel addresses" eval '[[ $(sess addresses) == *"$LAB_TUN4"* ]]'
	check "relay/IPv$fam: since is now (within 60 s)" eval '(( $(date +%s) - $(sess since) < 60 ))'
	check "relay/IPv$fam: sessions_active 1 (JSON)" stat_is relay sessions_active 1
	check "relay/IPv$fam: sessions_active gauge (Prometheus)" prom_has 'mtugate_group_sessions_active{group="relay"} 1'
	check "relay/IPv$fam: the table has its header and row" \
		eval 'table_has "^USER  *GROUP  *CLIENT .* DTLS .* BYTES_OUT$" && table_has "^$LAB_USER  *relay  *[^ ].* established "'
	lab_disconnect
	check "relay/IPv$fam: gone from sessions at its end" wait_until 10 eval '[[ -z $(sess group) ]]'
	check "relay/IPv$fam: the end line names user, MTUs, DTLS, duration, bytes" \
		mg_log_has "tunnel closed: client disconnected (CSTP DISCONNECT) (user $LAB_USER, group relay, X-CSTP-MTU 1380, X-DTLS-MTU 1380, DTLS established, [0-9]* s, [0-9]* bytes in, [0-9]* out)"
done
check "relay: dtls_established counted twice" stat_is relay dtls_established 2
check "relay: sessions_active back to 0" stat_is relay sessions_active 0
check "Prometheus: HELP for the new families" eval 'prom_matches "^# HELP mtugate_group_reconnects_predicted_total " &&
	prom_has "# TYPE mtugate_group_sessions_active gauge"'

progress "tlsonly (dtls = pass) with UDP dropped by the headend's own firewall"
for t in iptables ip6tables; do n_headend $t -I INPUT -p udp -j DROP; done
cookie=$(lab_authenticate tlsonly)
check "a session cookie came back" test -n "$cookie"
token=$(sed -n 's/.*webvpn=\([^;]*\).*/\1/p' <<<"$cookie")
LAB_CONNECT_TIMEOUT=45 lab_connect tlsonly --cookie="$cookie" || die "no tlsonly tunnel"
check "tlsonly: dtls offered at first" sess_is dtls offered
check "tlsonly: the user came with the session cookie" sess_is user "$LAB_USER"
check "tlsonly: MTUs passed unchanged (1380/1418)" eval '[[ $(sess mtu_sent) == 1380/1418 ]]'
since=$(sess since)
check "tlsonly: the reconnect predicted (one warning)" wait_until 45 warned
took=$(($(date +%s) - since))
check "tlsonly: the warning came 30 s after connect (${took} s)" eval '((took >= 30 && took <= 36))'
check "tlsonly: the warning names user, group and client" \
	mg_log_has "user $LAB_USER, group tlsonly, client $LAB_SRC4_tlsonly:[0-9]*: DTLS not established"
check "tlsonly: sessions shows dtls failed" sess_is dtls failed
check "tlsonly: dtls_failed 1" stat_is tlsonly dtls_failed 1
check "tlsonly: reconnects_predicted 1" stat_is tlsonly reconnects_predicted 1
check "tlsonly: one warning only" test "$(grep -c "AnyConnect will reconnect" "$LAB_DIR/mtugated.log")" = 1
master=$(sed -n 's/.*X-DTLS-Master-Secret: *\([0-9A-Fa-f]*\).*/\1/p' "$LAB_OC_LOG" | head -1)

progress "tlsonly: the client reconnects with its cookie (as AnyConnect does for reason 16)"
lab_kill_client
LAB_CONNECT_TIMEOUT=45 lab_connect tlsonly --cookie="$cookie" || die "no second tlsonly tunnel"
check "reconnect: sessions shows reconnects 1" sess_is reconnects 1
check "reconnect: counted (reconnects 1)" stat_is tlsonly reconnects 1
check "reconnect: the prediction confirmed (reconnects_as_predicted 1)" stat_is tlsonly reconnects_as_predicted 1
check "reconnect: logged as predicted" mg_log_has "user $LAB_USER, group tlsonly: reconnected as predicted"
lab_disconnect

progress "relay in mode = observe (the ASA's unequal MTUs go as sent), UDP still dropped"
reload_ok() { mtugatectl reload >/dev/null; }
echo "mode = observe" >>"$LAB_DIR/mtugate/groups.d/relay.conf"
check "observe: reloaded" reload_ok
LAB_CONNECT_TIMEOUT=45 lab_connect relay || die "no observed relay tunnel"
check "observe: MTUs as the headend sent them (1380/1418)" \
	eval '[[ $(sess mtu_offered relay) == 1380/1418 && $(sess mtu_sent relay) == 1380/1418 ]]'
check "observe: would_connect_rewrite 1" stat_is relay would_connect_rewrite 1
check "observe: the reconnect predicted" wait_until 45 mg_log_has \
	"group relay, client $LAB_SRC4_relay:[0-9]*: DTLS not established after 30 s; adapter MTU 1418 > TLS MTU 1380: AnyConnect will reconnect (reason 16)"
check "observe: reconnects_predicted 1" stat_is relay reconnects_predicted 1
check "observe: dtls failed" sess_is dtls failed relay
lab_disconnect
sed -i '/^mode = observe/d' "$LAB_DIR/mtugate/groups.d/relay.conf"
check "enforce again: reloaded" reload_ok
for t in iptables ip6tables; do n_headend $t -D INPUT -p udp -j DROP; done

progress "log_users = hash"
restart_with hash
lab_connect relay
hashed=$(sess user relay)
check "hash: the user is a short hash ($hashed)" eval '[[ $hashed =~ ^~[0-9a-f]{8}$ ]]'
check_not "hash: the name is in no log line" grep -q -- "$LAB_USER" "$LAB_DIR/mtugated.log"
check "hash: the tunnel line names the hash" mg_log_has "user $hashed,"
lab_connect relay
check "hash: stable within the run" sess_is user "$hashed" relay
lab_disconnect

progress "log_users = no"
restart_with no
lab_connect relay
check "no: user null in JSON" eval 'mtugatectl sessions --json | python3 -c "import json,sys; assert json.load(sys.stdin)[0][\"user\"] is None"'
check_not "no: the name is in no log line" grep -q -- "$LAB_USER" "$LAB_DIR/mtugated.log"
lab_disconnect
keep_log

progress "secrets: every log line of the run at log_level debug"
all=$LAB_DIR/mtugated-all.log
check "the run logged at debug level" grep -q "proxy .*: client .*, headend " "$all"
check "the master secret is known to the test" test -n "$master"
check "the cookie is known to the test" test -n "$token"
check_not "no log line holds the password" grep -qF -- "$LAB_PASS" "$all"
check_not "no log line holds the session cookie" grep -qF -- "$token" "$all"
check_not "no log line holds X-DTLS-Master-Secret" grep -qiF -- "$master" "$all"
check_not "no log line names the master secret header" grep -qi "X-DTLS-Master-Secret" "$all"

finish
