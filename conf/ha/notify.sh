#!/bin/sh
# keepalived's notify for an mtugate pair (docs/ha.md), as conntrackd's manual describes
# for FTFW (its primary-backup.sh): the new primary commits the flows the other node synced
# (-c), flushes its caches (-f), resynchronises them with the kernel (-R) and sends them to
# the other node (-B); a backup resynchronises from the primary (-n). mtugated is not
# touched: it runs on both nodes all the time.
CONNTRACKD=${CONNTRACKD:-/usr/sbin/conntrackd}
CONFIG=${CONNTRACKD_CONFIG:-/etc/conntrackd/conntrackd.conf}

ctd() {
	"$CONNTRACKD" -C "$CONFIG" "$@" || logger -t mtugate-ha "conntrackd $* failed"
}

case $1 in
primary)
	ctd -c
	ctd -f
	ctd -R
	ctd -B
	;;
backup)
	ctd -t
	ctd -n
	;;
fault)
	ctd -t
	;;
*)
	echo "usage: $0 primary|backup|fault" >&2
	exit 2
	;;
esac
exit 0
