#!/bin/bash
# `make demo`: the note's two failure cases in the lab, first without mtugated, then with it,
# side by side. Run as root from the repo root after `make` (B=build is set by make).
# Case 1: DTLS blocked on the path for the TLS-only group.
# Case 2: CSCuh61321, the headend tells clients DTLS port 444 but answers on 443 (relay group).
# The headend is ocserv behind the ASA shim (lab/asa-shim.py): X-CSTP-MTU 1380, X-DTLS-MTU 1418,
# and what does not fit the TLS tunnel is dropped without ICMP, as in the note.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

HTTP_MAX=6
# MTUGATE_DEMO_PROXY=auto|yes|no: the TLS proxy switch ([proxy] enable).
DEMO_PROXY=${MTUGATE_DEMO_PROXY:-auto}
declare -A R

have_mtugate() { [[ -x $B/mtugated && -x $B/mtugatectl ]]; }

# The 1400-byte DF ping: ok, refused locally (tun MTU too small: the sender learns at once),
# or lost on the way (a black hole).
ping_df() {
	local out
	if out=$(n_client ping -M 'do' -s 1372 -c 2 -i 0.3 -W 2 "$LAB_LAN4" 2>&1); then
		echo ok
	elif grep -qiE 'message too long|mtu' <<<"$out"; then
		echo "refused (tun MTU)"
	else
		echo "lost"
	fi
}

usec() { echo "${EPOCHREALTIME/./}"; }

http_timed() {
	local t0 ok=failed dt
	t0=$(usec)
	lab_http_get 4 "$HTTP_MAX" && ok=ok
	dt=$((($(usec) - t0) / 100000))
	printf '%s %d.%d s' "$ok" $((dt / 10)) $((dt % 10))
}

# Connect GROUP and fill column COL of the table.
measure() { # COL GROUP
	local col=$1 g=$2
	progress "$col: openconnect to group $g (a dropped DTLS attempt takes about 14 s)"
	if ! lab_connect "$g"; then
		R[$col.offered]="connect failed"
		return 0
	fi
	wait_until 20 lab_dtls_settled || true
	lab_behaviour | sed 's/^/     /' >&2
	R[$col.offered]=$AC_DTLS_OFFERED
	R[$col.established]=$AC_DTLS_ESTABLISHED
	R[$col.mtus]="${AC_CSTP_MTU:--} / ${AC_DTLS_MTU:--}"
	R[$col.tun]=${AC_TUN_MTU:--}
	R[$col.reconnect]=$AC_RECONNECT
	progress "$col: 1400-byte DF ping and a 4 MiB HTTP download through the tunnel"
	R[$col.ping]=$(ping_df)
	R[$col.http]=$(http_timed)
	lab_disconnect
}

placeholder() { # COL TEXT
	local k
	for k in offered established mtus tun reconnect ping http; do R[$1.$k]=$2; done
}

table() { # TITLE
	local rows=(offered "DTLS offered" established "DTLS established (1st attempt)"
		mtus "X-CSTP-MTU / X-DTLS-MTU" tun "client tun MTU" reconnect "AnyConnect reconnect predicted"
		ping "1400-byte DF ping" http "HTTP download (4 MiB)") i
	printf '\n== %s\n' "$1"
	printf '%-32s %-22s %-22s\n' "" "without mtugate" "with mtugate"
	for ((i = 0; i < ${#rows[@]}; i += 2)); do
		printf '%-32s %-22s %-22s\n' "${rows[i + 1]}" "${R[without.${rows[i]}]:--}" "${R[with.${rows[i]}]:--}"
	done
	echo
}

run_case() { # TITLE GROUP LAB_OPTIONS...
	local title=$1 g=$2 conf rc
	shift 2
	R=()
	progress "$title"
	lab_up "$@"
	measure without "$g"
	if ! have_mtugate; then
		placeholder with "(no $B/mtugated)"
	else
		# The switch for the TLS proxy: auto turns it on once mtugatectl prints TPROXY routes
		# for it, and falls back to the packet features when the daemon does not listen yet.
		conf=$(lab_mtugate_conf proxy="$DEMO_PROXY")
		progress "with: mtugated in the gateway (proxy $(lab_proxy_enabled "$conf" && echo on || echo off))"
		rc=0
		lab_mtugated_start "$conf" || rc=$?
		if ((rc != 0)) && [[ $DEMO_PROXY == auto ]] && lab_proxy_enabled "$conf"; then
			progress "with: mtugated with the TLS proxy failed; without it"
			lab_mtugated_stop
			conf=$(lab_mtugate_conf proxy=no)
			rc=0
			lab_mtugated_start "$conf" || rc=$?
		fi
		if ((rc == 0)); then
			measure with "$g"
		else
			placeholder with "mtugated failed"
		fi
	fi
	table "$title"
	if have_mtugate && [[ -f $LAB_DIR/pids/mtugated ]]; then
		echo "mtugatectl stats:"
		mtugatectl stats || true
		lab_mtugated_stop
	fi
	lab_down
}

t0=$SECONDS
echo "mtugate demo: real ocserv (behind an ASA-like shim) and openconnect in namespaces"
have_mtugate || echo "note: $B/mtugated is not built; the 'with mtugate' column stays empty"
run_case "Case 1: DTLS blocked on the path, TLS-only group" tlsonly asa_mtus dtls_block=tlsonly:drop
run_case "Case 2: CSCuh61321, DTLS told 444, answered on 443, relay group" relay asa_mtus cscuh61321
echo "demo done in $((SECONDS - t0)) s"
