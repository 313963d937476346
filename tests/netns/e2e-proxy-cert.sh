#!/bin/bash
# shellcheck disable=SC2317 # helpers run through check
# Certificate-authenticated users (issue 22): the proxy terminates the client's TLS and has
# no client certificate to show the headend. When the headend asks for one on the upstream
# leg (a CertificateRequest), mtugated counts it per group (upstream_cert_requested: the
# login's group, else the client address's), warns once a minute per group naming the fix
# (proxy = no in the group's file, or [proxy] enable = no), and `mtugatectl check` shows it.
#  1. ocserv requests a certificate and takes a password without one (enable-auth =
#     certificate): the tlsonly client logs in through the proxy; counted, one warning for
#     two logins; the relay group's count stays 0 until its own client comes. A resumed
#     headend session carries no CertificateRequest: upstream_resume = no here, so that
#     every connection of the logins is a full handshake, asked and counted.
#     tlsonly's `clients` is moved off its client's address: the count goes to the group
#     of the login (and of the tunnel's address), known after the handshake that was asked.
#  2. ocserv requires one (auth = certificate): the relay client's login fails; counted.
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"
skip_unless_root

gstat() { # GROUP FIELD
	mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][sys.argv[1]][sys.argv[2]])' "$1" "$2"
}
tstat() { mtugatectl stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxy_tls"][sys.argv[1]])' "$1"; }
warnings() { grep -c "group $1: the headend asked for a client certificate" "$LAB_DIR/mtugated.log" || true; }
ge() { [[ $1 -ge $2 ]]; }
# The proxy's process sends its counters every 100 ms: a count may arrive just after the event.
gstat_ge_now() { ge "$(gstat "$1" "$2")" "$3"; }
gstat_ge() { wait_until 3 gstat_ge_now "$@"; }
check_out() { n_gw "$B/mtugatectl" -c "$LAB_MG_CONF" check >"$LAB_DIR/check.out" 2>&1 || true; }

progress "1: ocserv requests a client certificate, a password does without"
lab_up client_cert=request
# One worker: the warning comes once a minute per group and worker.
lab_mtugated_start "$(lab_mtugate_conf proxy=yes proxy.upstream_resume=no proxy.workers=1 tlsonly.clients=198.19.255.0/24)"
check "tlsonly: the login through the proxy succeeds (password, no certificate)" lab_connect tlsonly
check "tlsonly: ping LAN through the tunnel" n_client ping -c1 -W3 "$LAB_LAN4"
check "tlsonly: counted (upstream_cert_requested $(gstat tlsonly upstream_cert_requested))" \
	gstat_ge tlsonly upstream_cert_requested 1
check "relay: nothing counted yet" [ "$(gstat relay upstream_cert_requested)" = 0 ]
check "proxy_tls.upstream_cert_requested counts them all ($(tstat upstream_cert_requested))" \
	ge "$(tstat upstream_cert_requested)" "$(gstat tlsonly upstream_cert_requested)"
check "one warning for the group" [ "$(warnings tlsonly)" = 1 ]
check "... naming the fix (proxy = no in the group's file)" \
	grep -q "group tlsonly: the headend asked for a client certificate.*set proxy = no in .*groups.d/tlsonly.conf, or \[proxy\] enable = no" \
	"$LAB_DIR/mtugated.log"
n1=$(gstat tlsonly upstream_cert_requested)
lab_disconnect
check "tlsonly: a second login" lab_connect tlsonly
check "tlsonly: counted again ($n1 -> $(gstat tlsonly upstream_cert_requested))" \
	gstat_ge tlsonly upstream_cert_requested $((n1 + 1))
check "no second warning within the minute" [ "$(warnings tlsonly)" = 1 ]
check_out
check "mtugatectl check names the group" grep -q \
	"^PROBLEM  group tlsonly: the headend asked the proxy for a client certificate" "$LAB_DIR/check.out"
check "... and the fix" grep -q "fix: for users who log in with a certificate: proxy = no in .*tlsonly.conf" \
	"$LAB_DIR/check.out"
lab_disconnect
lab_mtugated_stop
lab_down

progress "2: ocserv requires a client certificate"
lab_up client_cert=require
lab_mtugated_start "$(lab_mtugate_conf proxy=yes proxy.workers=1)"
LAB_CONNECT_TIMEOUT=10
check_not "relay: no login without a certificate" lab_connect relay
check "relay: counted ($(gstat relay upstream_cert_requested))" gstat_ge relay upstream_cert_requested 1
check "relay: warned" [ "$(warnings relay)" = 1 ]
lab_disconnect
lab_mtugated_stop
lab_down
finish
