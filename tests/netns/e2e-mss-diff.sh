#!/bin/sh
# Differential test: random SYNs and SYN-ACKs (tests/tools/syngen) cross a
# gateway namespace whose kernel clamps them with -j TCPMSS --set-mss 1300;
# the receiver's capture must equal, byte for byte, what mtugate's mss_clamp
# does to the same packets (tests/tools/mssref), IPv4 and IPv6.
# One documented difference: where the lowered MSS value sits at an odd offset
# from the TCP header, xt_TCPMSS updates the checksum as if it were aligned
# and the receiver gets a bad checksum; there mtugate's checksum must be valid,
# the kernel's invalid, and all other bytes equal.
#   sender (198.18.101.2) -- gw -- receiver (198.18.102.2)
set -eu
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "e2e-mss-diff: skipped, needs root"; exit 77; }
B=${B:-build}
N=${MSS_DIFF_N:-600}
SEED=${MSS_DIFF_SEED:-$$}
MSS=1300
S=mdS$$ G=mdG$$ R=mdR$$
A4S=198.18.101.2 A4R=198.18.102.2 A6S=2001:db8:101::2 A6R=2001:db8:102::2
tmp=$(mktemp -d /tmp/e2e-mss-diff.XXXXXX)
dump=

cleanup() {
	[ -n "$dump" ] && kill "$dump" 2>/dev/null && wait "$dump" 2>/dev/null
	for ns in $S $G $R; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

nS() { ip netns exec "$S" "$@"; }
nG() { ip netns exec "$G" "$@"; }
nR() { ip netns exec "$R" "$@"; }

# wait_for SECONDS CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
	end=$(($(date +%s) + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# The tools: built by make, or built here from the same sources.
tool() {
	if [ -x "$B/tools/$1" ]; then echo "$B/tools/$1"; return; fi
	${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -I. "tests/tools/$1.c" clamp/mss.c clamp/pkt.c \
		clamp/csum.c -o "$tmp/$1" && echo "$tmp/$1"
}
SYNGEN=$(tool syngen)
MSSREF=$(tool mssref)

for ns in $S $G $R; do ip netns add "$ns"; done
ip link add s0 netns "$S" type veth peer name g0 netns "$G"
ip link add g1 netns "$G" type veth peer name r0 netns "$R"
nS ip addr add $A4S/24 dev s0
nS ip addr add $A6S/64 dev s0 nodad
nG ip addr add 198.18.101.1/24 dev g0
nG ip addr add 2001:db8:101::1/64 dev g0 nodad
nG ip addr add 198.18.102.1/24 dev g1
nG ip addr add 2001:db8:102::1/64 dev g1 nodad
nR ip addr add $A4R/24 dev r0
nR ip addr add $A6R/64 dev r0 nodad
for ns in $S $G $R; do ip -n "$ns" link set lo up; done
nS ip link set s0 up; nG ip link set g0 up; nG ip link set g1 up; nR ip link set r0 up
nS ip route add default via 198.18.101.1
nS ip -6 route add default via 2001:db8:101::1
nR ip route add default via 198.18.102.1
nR ip -6 route add default via 2001:db8:102::1
nG sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
nG iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss $MSS
nG ip6tables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss $MSS
# The receiver answers nothing: its capture sees packets before netfilter.
nR iptables -t raw -A PREROUTING -p tcp -j DROP
nR ip6tables -t raw -A PREROUTING -p tcp -j DROP

# Resolve the neighbours first: packets waiting for ARP/ND would be dropped.
wait_for 10 nS ping -c1 -W1 $A4R || { echo "e2e-mss-diff: no IPv4 path"; exit 1; }
wait_for 10 nS ping -6 -c1 -W1 $A6R || { echo "e2e-mss-diff: no IPv6 path"; exit 1; }

nR tcpdump -i r0 -nn -U -w "$tmp/cap.pcap" "ip or ip6" 2>"$tmp/tcpdump.err" &
dump=$!
wait_for 10 grep -q "listening on" "$tmp/tcpdump.err" || { echo "e2e-mss-diff: tcpdump"; exit 1; }

"$MSSREF" "$SEED" "$N" $MSS $A4S $A4R $A6S $A6R | "$MSSREF" -c >"$tmp/ref"
nS "$SYNGEN" "$SEED" "$N" $A4S $A4R $A6S $A6R

captured() { [ "$(tcpdump -r "$tmp/cap.pcap" -nn 2>/dev/null | wc -l)" -ge "$N" ]; }
wait_for 20 captured || echo "e2e-mss-diff: only $(tcpdump -r "$tmp/cap.pcap" -nn 2>/dev/null | wc -l) of $N captured"
kill "$dump"; wait "$dump" 2>/dev/null || true; dump=

# The capture as "FAMILY SEQ MSS - HEX" lines, like mssref's.
tcpdump -r "$tmp/cap.pcap" -nn -S -x 2>/dev/null | awk '
	# Once under AddressSanitizer a frame came out with its Ethernet header in
	# the hex (type 0800 or 86dd at byte 12, then the IP version): the packet
	# starts after it. No packet of this test has those bytes there (its
	# addresses are 198.18.x and 2001:db8::).
	function strip_l2() {
		if ((substr(hex, 25, 4) == "0800" && substr(hex, 29, 1) == "4") ||
		    (substr(hex, 25, 4) == "86dd" && substr(hex, 29, 1) == "6"))
			hex = substr(hex, 29)
	}
	function flush() { if (seq != "") { strip_l2(); print fam, seq, mss, "-", hex }; seq = "" }
	/^[^ \t]/ {
		flush()
		fam = ($1 == "IP6" || $2 == "IP6") ? 6 : 4
		mss = "none"; hex = ""
		if (match($0, /seq [0-9]+/)) seq = substr($0, RSTART + 4, RLENGTH - 4)
		if (match($0, /mss [0-9]+/)) mss = substr($0, RSTART + 4, RLENGTH - 4)
		next
	}
	/^[ \t]+0x[0-9a-f]+:/ { sub(/^[ \t]+0x[0-9a-f]+:[ \t]+/, ""); gsub(/[ \t]/, ""); hex = hex $0 }
	END { flush() }' | "$MSSREF" -c >"$tmp/got"

# ref and got lines: FAMILY SEQ MSS ODD HEX CKOFF VALID
awk -v N="$N" '
	function mask(h, off) { return substr(h, 1, off) "xxxx" substr(h, off + 5) }
	NR == FNR { fam[$2] = $1; mss[$2] = $3; odd[$2] = $4; hex[$2] = $5; off[$2] = $6; ok[$2] = $7; next }
	{ got[$2] = 1; gmss[$2] = $3; ghex[$2] = $5; gok[$2] = $7 }
	END {
		for (s in fam) {
			if (!(s in got)) why = "not captured"
			else if (ok[s] != "ok") why = "mtugate checksum invalid"
			else if (gmss[s] != mss[s]) why = "kernel mss " gmss[s] ", mtugate " mss[s]
			else if (ghex[s] == hex[s]) { pass++; pf[fam[s]]++; continue }
			else if (odd[s] == "odd" && gok[s] == "bad" &&
				 mask(ghex[s], off[s]) == mask(hex[s], off[s])) {
				pass++; pf[fam[s]]++; kbad++; continue
			} else why = "bytes differ: kernel " ghex[s] " mtugate " hex[s]
			fail++
			if (shown++ < 10) printf "FAIL IPv%s seq %s: %s\n", fam[s], s, why
		}
		printf "e2e-mss-diff: IPv4 %d and IPv6 %d packets agree; the kernel\047s TCP checksum was wrong in %d (odd MSS offset), mtugate\047s right\n", pf[4], pf[6], kbad
		printf "e2e-mss-diff: %d passed, %d failed\n", pass, fail
		exit fail != 0 || pass != N
	}' "$tmp/ref" "$tmp/got"
