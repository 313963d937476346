#!/bin/bash
# The lab by hand: bring it up, optionally connect a client and start mtugated, then run a
# command (or an interactive shell) with the lab's variables and n_* helpers; tear down after.
#   tests/netns/lab.sh [LAB_UP_OPTION...] [connect=GROUP] [mtugated] [-- COMMAND...]
# e.g. tests/netns/lab.sh asa_mtus dtls_block=tlsonly:drop connect=tlsonly
#      tests/netns/lab.sh cscuh61321 connect=relay -- bash -c 'n_client ping -c3 $LAB_LAN4'
# LAB_UP_OPTION: see lib.sh (groups=, dtls-psk, cscuh61321[=ADV:REAL], dtls_block=, asa_mtus, ...)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_root

opts=() group='' want_mtugated=0
while (($#)); do
	case $1 in
	--) shift; break ;;
	connect=*) group=${1#*=} ;;
	mtugated) want_mtugated=1 ;;
	-h | --help) sed -n '2,7p' "$0"; exit 0 ;;
	*) opts+=("$1") ;;
	esac
	shift
done

lab_up "${opts[@]}"
if ((want_mtugated)); then
	lab_mtugated_start "$(lab_mtugate_conf proxy=auto)" || lab_mtugated_start "$(lab_mtugate_conf proxy=no)"
fi
if [[ -n $group ]]; then
	lab_connect "$group"
	wait_until 20 lab_dtls_settled || true
	lab_behaviour
fi

export NS_CLIENT NS_GW NS_HEADEND NS_LAN LAB_DIR LAB_LAN4 LAB_LAN6 LAB_HEADEND4 LAB_HEADEND6 \
	LAB_OC_LOG LAB_HTTP_FILE B LAB_MG_SOCK
export -f pretty n_client n_gw n_headend n_lan
if (($#)); then
	"$@"
else
	cat <<EOF
lab up: $NS_CLIENT $NS_GW $NS_HEADEND $NS_LAN, files in $LAB_DIR
  n_client ping $LAB_LAN4 | n_client curl -o /dev/null http://$LAB_LAN4/$LAB_HTTP_FILE
  n_gw iptables-save | less $LAB_DIR/ocserv.log | exit to tear down
EOF
	PS1='[mtugate lab] \w\$ ' bash --norc -i
fi
