#!/bin/bash
# Bulk TCP inside a real tunnel: openconnect <-> ocserv (tests/netns/lib.sh's
# lab) with DTLS off (openconnect --no-dtls), so every byte crosses the TLS
# connection, through mtugated's proxy (mtugated running, all of its rules
# loaded, [proxy] enable = yes) against the same tunnel without mtugated (the
# lab's plain firewall), alternating, a fresh tunnel per run; iperf3 between
# the client and the LAN server inside the tunnel.
#   client -- gateway (mtugated) -- headend (ocserv) -- LAN (iperf3 server)
# Unlike bench-proxy's stub (one 1.4 KB TLS record per write), both ends here
# are the real programs, which write what the tun device gives them.
# What bounds it: the CPUs. openconnect, ocserv's worker and the two iperf3
# share two cores; the proxy adds a TLS decryption and encryption of every
# byte on top, on the same cores: the ratio is that extra work's share.
# Prints proxy_bulk_real (LAN -> client) and proxy_bulk_real_up (client -> LAN).
# Environment: BENCH_REAL_SECONDS (per run, default 3), BENCH_REAL_ROUNDS (3).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/lib.sh
# shellcheck source=tests/bench/common.sh
. tests/bench/common.sh
skip_unless_root
trap lab_cleanup EXIT
SECS=${BENCH_REAL_SECONDS:-3}
ROUNDS=${BENCH_REAL_ROUNDS:-3}
[ -x "$B/mtugated" ] && [ -x "$B/mtugatectl" ] || { echo "bench-proxy-real: build first (make)"; exit 1; }

lab_up groups=relay
# The group's mtu is the tunnel MTU ocserv announces here (1472): the proxy
# then rewrites nothing, and both modes carry the same packet sizes.
conf=$(lab_mtugate_conf proxy=yes relay.mtu=1472)
lab_proxy_enabled "$conf" || { echo "bench-proxy-real: no proxy in this build"; exit 77; }
cp "$conf" "$LAB_DIR/mtugate.conf.bench"

proxied() { [ "$(mtugatectl sessions | grep -c '^session')" -ge 1 ]; }
queued() { n_gw awk '{ n += $8 } END { print n + 0 }' /proc/net/netfilter/nfnetlink_queue; }

# run MODE DIR: one fresh tunnel, one iperf3 run; prints Mbit/s
run() {
	local out args=(-c "$LAB_LAN4" -t "$SECS" -J) q0
	[ "$2" = down ] && args+=(-R)
	if [ "$1" = mtugate ]; then
		lab_mtugated_start "$LAB_DIR/mtugate.conf.bench" >&2 || { echo "bench-proxy-real: mtugated did not start" >&2; return 1; }
	fi
	lab_connect relay --no-dtls >&2 || return 1
	if [ "$1" = mtugate ]; then
		wait_until 5 proxied ||
			{ echo "bench-proxy-real: the tunnel did not cross the proxy" >&2; return 1; }
		q0=$(queued)
	fi
	out=$(n_client iperf3 "${args[@]}" 2>&1) || { echo "bench-proxy-real: iperf3: $out" >&2; return 1; }
	python3 -c 'import json, sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' <<<"$out"
	echo "  $1 $2: tun mtu $(n_client cat /sys/class/net/oc0/mtu)$( [ "$1" = mtugate ] && echo ", $(( $(queued) - q0 )) packet(s) queued")" >&2
	lab_disconnect
	[ "$1" = mtugate ] && lab_mtugated_stop
	return 0
}

echo "bench-proxy-real: $ROUNDS rounds of ${SECS}s per direction and mode, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for dir in down up; do
	: >"$LAB_DIR/mg.$dir"; : >"$LAB_DIR/base.$dir"
	for r in $(seq "$ROUNDS"); do
		for m in $( [ $((r % 2)) = 1 ] && echo "baseline mtugate" || echo "mtugate baseline"); do
			v=$(run $m $dir) || exit 1
			echo "round $r $dir $m: $v Mbit/s"
			if [ $m = mtugate ]; then echo "$v" >>"$LAB_DIR/mg.$dir"; else echo "$v" >>"$LAB_DIR/base.$dir"; fi
		done
	done
done
bench_line proxy_bulk_real Mbit/s "$LAB_DIR/mg.down" "$LAB_DIR/base.down"
bench_line proxy_bulk_real_up Mbit/s "$LAB_DIR/mg.up" "$LAB_DIR/base.up"
