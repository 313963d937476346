#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# mode = observe for every feature, with the real peers: ocserv behind the ASA-like shim
# (X-CSTP-MTU 1380, X-DTLS-MTU 1418), mtugated's proxy and packet queues, openconnect. Both
# groups observe, with a group mtu of 1300 below the tunnel's: the client gets the headend's
# CONNECT answer line for line, its SYNs keep their MSS, oversize DF packets toward it pass
# without ICMP, the TLS-only group's DTLS passes, and the would_* counters say what enforce
# would have done. Then the group files say enforce and mtugated reloads: on the very same
# tunnel SYNs are clamped and oversize packets answered, and new tunnels are rewritten and
# kept off DTLS. Inner IPv4 and IPv6; the outer transport IPv4 (relay) and IPv6 (tlsonly).
# Part 2 observes the packet path alone (proxy off) under CSCuh61321 (DTLS advertised on 444,
# answered on 443): no port fix, no block, until the reload to enforce.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root
command -v tcpdump >/dev/null || { echo "$LAB_NAME: tcpdump is missing (make deps)" >&2; exit 77; }

dumps=''
# shellcheck disable=SC2086 # $dumps is a list of pids
lab_cleanup_hook() { [[ -z $dumps ]] || kill $dumps 2>/dev/null || true; }
behaviour() { lab_behaviour || true; }
counter() { # GROUP FIELD
	mtugatectl stats --json | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
counter_is_now() { [[ $(counter "$1" "$2") == "$3" ]]; }
counter_ge_now() { (($(counter "$1" "$2") >= $3)); }
# The proxy's process sends its counters every 100 ms: a count may arrive just after the event.
counter_is() { wait_until 3 counter_is_now "$@"; }
counter_ge() { wait_until 3 counter_ge_now "$@"; }
# The CONNECT answer openconnect printed (--dump-http-traffic), status line first, is the
# Nth head the shim sent, line for line (names, values, order).
answer_is_sent() { # N
	python3 - "$LAB_DIR/asa-connect/$1" "$LAB_OC_LOG" <<'EOF'
import re, sys
sent = open(sys.argv[1], "rb").read().decode("latin-1")
want = sent[:-4].split("\r\n") if sent.endswith("\r\n\r\n") else None
got, on = [], False
for line in open(sys.argv[2], encoding="latin-1").read().splitlines():
    line = re.sub(r"^\[[^]]*\] ", "", line)
    if line.startswith("Got CONNECT response: "):
        got, on = [line[len("Got CONNECT response: "):]], True
    elif on and line.startswith("CSTP connected"):
        break
    elif on:
        got.append(line)
if got != want:
    print("sent:", want, "\nreceived:", got, file=sys.stderr)
sys.exit(0 if got == want else 1)
EOF
}
resp_value() { # HEADER: its value in the CONNECT answer the client got
	sed -n '/Got CONNECT response/,/CSTP connected/p' "$LAB_OC_LOG" | sed 's/^\[[^]]*\] //' |
		sed -n "s/^$1: *//Ip" | tail -1 | tr -d '\r'
}
capture() { # NAME: tcpdump of the LAN's HTTP traffic, ready when it returns
	n_lan tcpdump -i l-in -nn -U -s 200 -w "$LAB_DIR/$1.pcap" "tcp port 80" 2>"$LAB_DIR/$1.err" &
	dumps="$dumps $!"
	wait_until 10 grep -q "listening on" "$LAB_DIR/$1.err"
}
syn_mss() { # NAME SRC: the MSS values of the SYNs from SRC the LAN received
	tcpdump -r "$LAB_DIR/$1.pcap" -nn "src host $2" 2>/dev/null | grep -F 'Flags [S]' |
		sed -n 's/.*[[,]mss \([0-9]*\).*/\1/p' | sort -u | tr '\n' ' '
}
syn_mss_is() { [[ $(syn_mss "$1" "$2") == "$3 " ]]; }
has_syn() { [[ -n $(syn_mss "$1" "$2") ]]; }
http_syns() { # NAME: one HTTP request over IPv4 and one over IPv6 from the tunnel, captured
	local rc=0
	capture "$1"
	n_client curl -s -o /dev/null --max-time 10 "http://$LAB_LAN4/" &&
		n_client curl -s -g -o /dev/null --max-time 10 "http://[$LAB_LAN6]/" &&
		wait_until 5 has_syn "$1" "$LAB_TUN4" && wait_until 5 has_syn "$1" "$LAB_TUN6" || rc=1
	kill $dumps 2>/dev/null; wait $dumps 2>/dev/null || true; dumps=''
	return $rc
}
# 1350-byte DF packets from the LAN toward the client's tunnel addresses (the group mtu
# is 1300, the tunnel carries 1380): ping's own output says whether ICMP came back.
big_ping() { # 4|6 ADDR
	local s=$((1350 - 28))
	[[ $1 == 6 ]] && s=$((1350 - 48))
	n_lan ping "-$1" -c1 -W3 -M do -s "$s" "$2" >"$LAB_DIR/ping$1.out" 2>&1
}
too_big_told() { grep -Eqi 'mtu ?= ?1300' "$LAB_DIR/ping$1.out"; }
mode_is() { mtugatectl groups | grep -Eq "^group\.$1\.mode +$2\$"; }

lab_up asa_mtus
conf=$(lab_mtugate_conf proxy=yes relay.mtu=1300 tlsonly.mtu=1300 relay.mode=observe \
	tlsonly.mode=observe)
lab_mtugated_start "$conf" || die "mtugated did not start"
check "mtugatectl groups: relay observes" mode_is relay observe

progress "observe, relay over outer IPv4: the CONNECT answer passes as the headend sent it"
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "relay: the proxy carried the tunnel" grep -q "tunnel up, group relay" "$LAB_DIR/mtugated.log"
check "relay: the client got the headend's CONNECT answer line for line" answer_is_sent 1
check "relay: X-CSTP-MTU as the headend sent it (1380)" [ "$(resp_value X-CSTP-MTU)" = 1380 ]
check "relay: X-DTLS-MTU as the headend sent it (1418)" [ "$(resp_value X-DTLS-MTU)" = 1418 ]
check "relay: DTLS established" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "relay: would_connect_rewrite 1" counter_is relay would_connect_rewrite 1
check "relay: connect_rewritten 0" counter_is relay connect_rewritten 0
check "relay: the log says what enforce would have done" \
	grep -q "observed: enforce would have rewritten it" "$LAB_DIR/mtugated.log"
lab_disconnect

progress "observe, tlsonly (dtls = block) over outer IPv6: DTLS passes"
LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect tlsonly
wait_until 30 lab_dtls_settled || true
behaviour
check "tlsonly: the client got the headend's CONNECT answer line for line" answer_is_sent 2
check "tlsonly: DTLS offered" [ "$AC_DTLS_OFFERED" = yes ]
check "tlsonly: DTLS established" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "tlsonly: would_dtls_block counted" counter_ge tlsonly would_dtls_block 1
check "tlsonly: dtls_blocked 0" counter_is tlsonly dtls_blocked 0
check "tlsonly: would_connect_rewrite 1" counter_is tlsonly would_connect_rewrite 1
# The client's own MSS: its adapter's MTU (openconnect's, from the unchanged offer) less
# the headers; the group's would be 1260 / 1240.
mss4=$((AC_TUN_MTU - 40)) mss6=$((AC_TUN_MTU - 60))

progress "observe: SYNs keep their MSS, oversize DF packets pass without ICMP"
check "observe: HTTP over IPv4 and IPv6 through the tunnel" http_syns observe
check "observe: the LAN sees the client's own MSS $mss4 (IPv4)" syn_mss_is observe "$LAB_TUN4" "$mss4"
check "observe: the LAN sees the client's own MSS $mss6 (IPv6)" syn_mss_is observe "$LAB_TUN6" "$mss6"
check "observe: both above the group's (1260, 1240)" [ "$mss4" -gt 1260 -a "$mss6" -gt 1240 ]
check "observe: would_mss_rewrite counts the SYNs and SYN-ACKs" counter_ge tlsonly would_mss_rewrite 4
check "observe: mss_rewritten 0" counter_is tlsonly mss_rewritten 0
check "observe: a 1350-byte DF ping reaches the client (IPv4)" big_ping 4 "$LAB_TUN4"
check "observe: a 1350-byte DF ping reaches the client (IPv6)" big_ping 6 "$LAB_TUN6"
check "observe: would_pmtu_send 2" counter_is tlsonly would_pmtu_send 2
check "observe: pmtu_sent 0" counter_is tlsonly pmtu_sent 0
# Read whole first: grep -q leaving early would fail the pipe (pipefail).
table=$(mtugatectl stats) prom=$(mtugatectl stats --prometheus)
check "observe: the stats table for people shows the would_* columns" \
	grep -Eq "would_pmtu_send +would_dtls_block" <<<"$table"
check "observe: --prometheus says what would_pmtu_send means" \
	grep -q "^# HELP mtugate_group_would_pmtu_send_total mode = observe" <<<"$prom"

progress "the group files say enforce; mtugated reloads (SIGHUP)"
sed -i 's/^mode = observe$/mode = enforce/' "$LAB_DIR"/mtugate/groups.d/*.conf
kill -HUP "$(<"$LAB_DIR/pids/mtugated")"
check "reload: mtugatectl groups says enforce" wait_until 10 mode_is tlsonly enforce

progress "enforce on the same tunnel: SYNs clamped, oversize packets answered"
check "enforce: HTTP over IPv4 and IPv6 through the tunnel" http_syns enforce
check "enforce: the LAN sees MSS 1260 (IPv4)" syn_mss_is enforce "$LAB_TUN4" 1260
check "enforce: the LAN sees MSS 1240 (IPv6)" syn_mss_is enforce "$LAB_TUN6" 1240
check "enforce: mss_rewritten counts them" counter_ge tlsonly mss_rewritten 4
check_not "enforce: the 1350-byte DF ping does not pass (IPv4)" big_ping 4 "$LAB_TUN4"
check "enforce: ... and mtugate said why: fragmentation needed, mtu 1300" too_big_told 4
check_not "enforce: the 1350-byte DF ping does not pass (IPv6)" big_ping 6 "$LAB_TUN6"
check "enforce: ... and mtugate said why: Packet Too Big, mtu 1300" too_big_told 6
check "enforce: pmtu_sent 2" counter_is tlsonly pmtu_sent 2
check "enforce: would_pmtu_send stays 2" counter_is tlsonly would_pmtu_send 2

progress "enforce, new tunnels: DTLS kept off the TLS-only group, CONNECT rewritten"
LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect tlsonly
behaviour
check "enforce tlsonly: no DTLS offered" [ "$AC_DTLS_OFFERED" = no ]
check "enforce tlsonly: X-CSTP-MTU 1300" [ "$AC_CSTP_MTU" = 1300 ]
check_not "enforce tlsonly: the answer is no longer the headend's" answer_is_sent 3
check "enforce tlsonly: connect_rewritten 1" counter_is tlsonly connect_rewritten 1
check "enforce tlsonly: would_connect_rewrite stays 1" counter_is tlsonly would_connect_rewrite 1
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "enforce relay: X-CSTP-MTU = X-DTLS-MTU = 1300" [ "$AC_CSTP_MTU/$AC_DTLS_MTU" = 1300/1300 ]
check "enforce relay: DTLS established" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "enforce relay: connect_rewritten 1" counter_is relay connect_rewritten 1
lab_disconnect
lab_mtugated_stop
lab_down

# DTLS datagrams the headend's stand-in for CSCuh61321 dropped on the advertised port.
at_444() { n_headend "$1" -t raw -L PREROUTING -v -x -n | awk '/dpt:444/ { n += $1 } END { print n + 0 }'; }
dtls_reached() { (($(at_444 "$1") > $2)); }
progress "part 2: the packet path alone (proxy off), CSCuh61321: advertised 444, real 443"
lab_up cscuh61321
conf=$(lab_mtugate_conf proxy=no relay.mode=observe tlsonly.mode=observe)
lab_mtugated_start "$conf" || die "mtugated did not start"
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "observe relay: told port 444, as the headend said" grep -q "X-DTLS-Port: 444" "$LAB_OC_LOG"
check "observe relay: DTLS not established, as without mtugate" [ "$AC_DTLS_ESTABLISHED" = no ]
check "observe relay: would_dtls_port_fix counted" counter_ge relay would_dtls_port_fix 1
check "observe relay: dtls_port_rewritten 0" counter_is relay dtls_port_rewritten 0
lab_disconnect
before=$(at_444 ip6tables)
LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect tlsonly
check "observe tlsonly: its DTLS reached the headend (IPv6)" wait_until 20 dtls_reached ip6tables "$before"
check "observe tlsonly: would_dtls_block counted" counter_ge tlsonly would_dtls_block 1
check "observe tlsonly: dtls_blocked 0" counter_is tlsonly dtls_blocked 0
lab_disconnect

progress "part 2: enforce by reload: the port fix and the block apply"
sed -i 's/^mode = observe$/mode = enforce/' "$LAB_DIR"/mtugate/groups.d/*.conf
kill -HUP "$(<"$LAB_DIR/pids/mtugated")"
check "reload: mtugatectl groups says enforce" wait_until 10 mode_is relay enforce
lab_connect relay
wait_until 30 lab_dtls_settled || true
behaviour
check "enforce relay: DTLS established through the port fix" [ "$AC_DTLS_ESTABLISHED" = yes ]
check "enforce relay: dtls_port_rewritten counted" counter_ge relay dtls_port_rewritten 1
lab_disconnect
before=$(at_444 ip6tables)
LAB_CONNECT_TO=$LAB_HEADEND6 lab_connect tlsonly
check "enforce tlsonly: dtls_blocked counted" wait_until 20 counter_ge tlsonly dtls_blocked 1
check "enforce tlsonly: no DTLS reached the headend" [ "$(at_444 ip6tables)" = "$before" ]
lab_disconnect
lab_mtugated_stop
finish
