#include "conf/rulehold.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "daemon/strbuf.h"

static bool rulehold_need(const struct conf *c, int family)
{
	if (!c->proxy.enable || !c->proxy.drain_timeout)
		return false;
	for (size_t i = 0; i < c->headend.naddr; i++)
		if (c->headend.addr[i].family == family)
			return true;
	return false;
}

int rulehold_iptables(const struct conf *c, int family, int hooks, struct strbuf *out)
{
	if (!rulehold_need(c, family))
		return 0;
	strbuf_printf(out, "# A draining proxy's tunnels (a restart) reach its sockets while the other"
		      " rules are off\n*mangle\n:MTUGATE_HOLD - [0:0]\n-F MTUGATE_HOLD\n");
	strbuf_printf(out, "-A MTUGATE_HOLD -p tcp -m socket --transparent -j MARK --set-xmark"
		      " 0x%x/0x%x\n", c->marks.proxy, c->marks.proxy);
	if (hooks)
		strbuf_printf(out, "-I PREROUTING -j MTUGATE_HOLD\n");
	strbuf_printf(out, "COMMIT\n");
	return out->oom ? -ENOMEM : 0;
}

int rulehold_nft(const struct conf *c, struct strbuf *out)
{
	if (!rulehold_need(c, AF_INET) && !rulehold_need(c, AF_INET6))
		return 0;
	strbuf_printf(out, "# A draining proxy's tunnels (a restart) reach its sockets while the other"
		      " rules are off\ntable inet mtugate_hold\ndelete table inet mtugate_hold\n\n"
		      "table inet mtugate_hold {\n\tchain prerouting {\n\t\ttype filter hook prerouting"
		      " priority mangle; policy accept;\n");
	/* Not the wildcard listener: only connections the proxy holds. */
	strbuf_printf(out, "\t\tmeta l4proto tcp socket transparent 1 socket wildcard 0"
		      " meta mark set meta mark | 0x%x\n\t}\n}\n", c->marks.proxy);
	return out->oom ? -ENOMEM : 0;
}

int rulehold_hooks(const struct conf *c, struct strbuf *out)
{
	static const int fams[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < 2; f++) {
		const char *tool = fams[f] == AF_INET6 ? "ip6tables" : "iptables";

		if (rulehold_need(c, fams[f]))
			strbuf_printf(out, "%s -t mangle -C PREROUTING -j MTUGATE_HOLD 2>/dev/null ||"
				      " %s -t mangle -I PREROUTING -j MTUGATE_HOLD\n", tool, tool);
	}
	return out->oom ? -ENOMEM : 0;
}
