#include "conf/deploy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/rules.h"
#include "daemon/strbuf.h"

/* The next line of *p (without its newline) into [*s, *s + *n); false at the end. */
static bool deploy_next_line(const char **p, const char **s, size_t *n)
{
	const char *e;

	if (!**p)
		return false;
	e = strchr(*p, '\n');
	*s = *p;
	*n = e ? (size_t)(e - *p) : strlen(*p);
	*p = e ? e + 1 : *p + *n;
	return true;
}

static void deploy_trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s))
		(*s)++, (*n)--;
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static bool deploy_has(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);

	for (size_t i = 0; i + w <= n; i++)
		if (memcmp(s + i, word, w) == 0)
			return true;
	return false;
}

/* "-A CHAIN ..." with CHAIN one of mtugate's, or a jump/goto into one. */
static bool deploy_ipt_ours(const char *s, size_t n)
{
	return (n > 10 && memcmp(s, "-A MTUGATE", 10) == 0) ||
	       (n > 3 && memcmp(s, "-A ", 3) == 0 &&
		(deploy_has(s, n, " -j MTUGATE") || deploy_has(s, n, " -g MTUGATE")));
}

void deploy_ipt_lines(const char *save, struct strbuf *out)
{
	const char *p = save, *s;
	char table[32] = "";
	size_t n;

	while (deploy_next_line(&p, &s, &n)) {
		deploy_trim(&s, &n);
		if (n > 1 && s[0] == '*' && n < sizeof(table)) {
			memcpy(table, s + 1, n - 1);
			table[n - 1] = '\0';
		} else if (deploy_ipt_ours(s, n)) {
			strbuf_printf(out, "%s: %.*s\n", table, (int)n, s);
		}
	}
}

/* Copy [s, s + n) without any "counter packets N bytes M" part. */
static void deploy_put_uncounted(struct strbuf *out, const char *s, size_t n)
{
	static const char key[] = "counter packets ";
	const char *c = NULL;

	for (size_t i = 0; i + sizeof(key) - 1 <= n && !c; i++)
		if (memcmp(s + i, key, sizeof(key) - 1) == 0)
			c = s + i;
	if (!c) {
		strbuf_printf(out, "%.*s\n", (int)n, s);
		return;
	}
	/* "counter packets N bytes M": skip five words, keep "counter". */
	const char *e = c + sizeof(key) - 1, *end = s + n;
	for (int w = 0; w < 3 && e < end; w++) {
		while (e < end && !isspace((unsigned char)*e))
			e++;
		while (e < end && isspace((unsigned char)*e))
			e++;
	}
	strbuf_printf(out, "%.*scounter%s%.*s\n", (int)(c - s), s, e < end ? " " : "",
		      (int)(end - e), e);
}

void deploy_nft_lines(const char *list, struct strbuf *out)
{
	const char *p = list, *s;
	size_t n;
	int in_elements = 0;
	char block[96] = "";

	while (deploy_next_line(&p, &s, &n)) {
		deploy_trim(&s, &n);
		if (!n)
			continue;
		if (in_elements || (n > 11 && memcmp(s, "elements = ", 11) == 0)) {
			/* A dynamic set's members: until its closing brace. */
			for (size_t i = 0; i < n; i++)
				in_elements += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
			continue;
		}
		/* Each line names its chain or set: the same rule in two chains
		 * (prerouting and forward both start alike) is two lines. */
		if (s[n - 1] == '{' && n < sizeof(block) &&
		    (!strncmp(s, "chain ", 6) || !strncmp(s, "set ", 4) || !strncmp(s, "map ", 4))) {
			memcpy(block, s, n - 2);
			block[n - 2] = '\0';
			continue;
		}
		if (n == 1 && s[0] == '}') {
			block[0] = '\0';
			continue;
		}
		if (block[0])
			strbuf_printf(out, "%s: ", block);
		deploy_put_uncounted(out, s, n);
	}
}

size_t deploy_missing(const char *want, const char *have, struct strbuf *out)
{
	const char *p = want, *s;
	size_t n, missing = 0;

	while (deploy_next_line(&p, &s, &n)) {
		const char *q = have, *t;
		size_t m;
		bool found = false;

		if (!n)
			continue;
		while (!found && deploy_next_line(&q, &t, &m))
			found = m == n && memcmp(s, t, n) == 0;
		if (!found) {
			strbuf_printf(out, "%.*s\n", (int)n, s);
			missing++;
		}
	}
	return missing;
}

static bool deploy_number(const char *s, const char *end, uint32_t *v, const char **next)
{
	char buf[24], *e;
	size_t n = 0;

	while (s + n < end && n < sizeof(buf) - 1 && (isxdigit((unsigned char)s[n]) || s[n] == 'x'))
		n++;
	if (!n || !isdigit((unsigned char)s[0]))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	unsigned long long u = strtoull(buf, &e, 0);
	if (*e || u > 0xffffffffull)
		return false;
	*v = (uint32_t)u;
	*next = s + n;
	return true;
}

/* The mark bits one iptables-save rule writes (a rule that only tests bits
 * takes nothing from mtugate: the accept that `check` itself proposes for
 * TPROXY's mark in INPUT, say). */
static uint32_t deploy_ipt_bits(const char *s, size_t n)
{
	static const char *const opts[] = { "--set-xmark ", "--set-mark ", "--or-mark ",
					    "--xor-mark ", "--and-mark ", "--nfmask ", "--ctmask ",
					    "--mask " };
	const char *end = s + n;
	uint32_t bits = 0;

	for (const char *c = s; c < end; c++)
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
			size_t l = strlen(opts[k]);
			uint32_t v, m;
			const char *nx;

			if ((size_t)(end - c) <= l || memcmp(c, opts[k], l) || !deploy_number(c + l, end, &v, &nx))
				continue;
			if (nx < end && *nx == '/' && deploy_number(nx + 1, end, &m, &nx))
				bits |= m == 0xffffffffu ? v : m;	/* a whole-mark write counts by its value */
			else
				bits |= v;
		}
	/* CONNMARK --save-mark/--restore-mark with no mask copies every bit. */
	if ((deploy_has(s, n, "--save-mark") || deploy_has(s, n, "--restore-mark")) &&
	    !deploy_has(s, n, "mask "))
		bits = 0xffffffffu;
	return bits;
}

/* The same for an nft rule that sets a mark: every number in it; a mark
 * copied from the other mark, all bits. */
static uint32_t deploy_nft_bits(const char *s, size_t n)
{
	const char *end = s + n;
	uint32_t bits = 0;

	if (!deploy_has(s, n, "mark set"))
		return 0;
	for (const char *c = s; c < end; c++) {
		uint32_t v;
		const char *nx;

		if ((c == s || c[-1] == ' ') && deploy_number(c, end, &v, &nx) &&
		    (nx == end || *nx == ' ' || *nx == ','))
			bits |= v;
	}
	if (deploy_has(s, n, "ct mark set meta mark") || deploy_has(s, n, "meta mark set ct mark"))
		bits = 0xffffffffu;
	return bits;
}

static bool deploy_nft_skipped(const char *s, size_t n)
{
	static const char *const xt[] = { "table ip filter", "table ip mangle", "table ip nat",
					  "table ip raw", "table ip security", "table ip6 filter",
					  "table ip6 mangle", "table ip6 nat", "table ip6 raw",
					  "table ip6 security" };

	/* mtugate_hold: what a draining proxy keeps (conf/rulehold.h). */
	if (deploy_has(s, n, "table inet mtugate ") || deploy_has(s, n, "table inet mtugate_hold "))
		return true;
	for (size_t i = 0; i < sizeof(xt) / sizeof(xt[0]); i++) {
		size_t l = strlen(xt[i]);

		if (n > l && memcmp(s, xt[i], l) == 0 && s[l] == ' ')
			return true;
	}
	return false;
}

size_t deploy_mark_users(const char *listing, uint32_t mask, struct strbuf *out)
{
	const char *p = listing, *s;
	size_t n, found = 0;
	int depth = 0, ours_depth = -1;
	char table[32] = "";

	while (deploy_next_line(&p, &s, &n)) {
		uint32_t bits = 0;
		int d0 = depth;

		deploy_trim(&s, &n);
		for (size_t i = 0; i < n; i++)
			depth += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
		if (n > 6 && memcmp(s, "table ", 6) == 0) {
			/* nft: mtugate's own table is not the firewall's, and the
			 * tables of iptables-nft are read through iptables-save. */
			ours_depth = deploy_nft_skipped(s, n) ? d0 : -1;
			continue;
		}
		if (ours_depth >= 0 && d0 > ours_depth)
			continue;
		if (n > 1 && s[0] == '*' && n < sizeof(table)) {
			memcpy(table, s + 1, n - 1);
			table[n - 1] = '\0';
			continue;
		}
		if (n > 3 && memcmp(s, "-A ", 3) == 0) {
			if (deploy_ipt_ours(s, n))
				continue;
			bits = deploy_ipt_bits(s, n);
		} else if (d0 > 0) {
			bits = deploy_nft_bits(s, n);
		}
		if (bits & mask) {
			strbuf_printf(out, "%s%s%.*s\n", table, table[0] ? ": " : "", (int)n, s);
			found++;
		}
	}
	return found;
}

size_t deploy_foreign_routes(const char *table, const char *mine, struct strbuf *out)
{
	return deploy_missing(table, mine, out);
}

const char *deploy_ipt_policy(const char *save, const char *table, const char *chain, char *buf,
			      size_t cap)
{
	const char *p = save, *s;
	size_t n, cl = strlen(chain);
	bool in = false;

	buf[0] = '\0';
	while (deploy_next_line(&p, &s, &n)) {
		deploy_trim(&s, &n);
		if (n > 1 && s[0] == '*')
			in = n - 1 == strlen(table) && memcmp(s + 1, table, n - 1) == 0;
		else if (in && n > cl + 2 && s[0] == ':' && memcmp(s + 1, chain, cl) == 0 &&
			 s[cl + 1] == ' ') {
			const char *v = s + cl + 2, *e = memchr(v, ' ', n - cl - 2);
			size_t l = e ? (size_t)(e - v) : n - cl - 2;

			if (l < cap) {
				memcpy(buf, v, l);
				buf[l] = '\0';
			}
			break;
		}
	}
	return buf;
}

struct deploy_chain *deploy_find(struct deploy_expect *e, uint8_t family, const char *table,
				 const char *chain, const char *target)
{
	for (size_t i = 0; i < e->n; i++) {
		struct deploy_chain *c = &e->c[i];

		if (c->family == family && !strcmp(c->table, table) && !strcmp(c->chain, chain) &&
		    !strcmp(c->target, target))
			return c;
	}
	return NULL;
}

/* The entry for (family, table, chain, target), added when new. */
static struct deploy_chain *deploy_get(struct deploy_expect *e, uint8_t family, const char *table,
				       const char *chain, size_t clen, const char *target, size_t tlen)
{
	char cn[DEPLOY_NAME_MAX], tn[DEPLOY_NAME_MAX];
	struct deploy_chain *c;

	if (clen >= sizeof(cn) || tlen >= sizeof(tn))
		return NULL;
	memcpy(cn, chain, clen);
	cn[clen] = '\0';
	memcpy(tn, target, tlen);
	tn[tlen] = '\0';
	if ((c = deploy_find(e, family, table, cn, tn)))
		return c;
	if (e->n == DEPLOY_MAX_CHAINS || strlen(table) >= DEPLOY_NAME_MAX)
		return NULL;
	c = &e->c[e->n++];
	memset(c, 0, sizeof(*c));
	c->family = family;
	strcpy(c->table, table);
	strcpy(c->chain, cn);
	strcpy(c->target, tn);
	return c;
}

static size_t deploy_word(const char *s, const char *end)
{
	size_t n = 0;

	while (s + n < end && !isspace((unsigned char)s[n]))
		n++;
	return n;
}

int deploy_expect_ipt(struct deploy_expect *e, const char *printed, uint8_t family)
{
	const char *p = printed, *s;
	char table[DEPLOY_NAME_MAX] = "";
	size_t n;

	while (deploy_next_line(&p, &s, &n)) {
		const char *end = s + n, *ch, *j;
		size_t cl;

		deploy_trim(&s, &n);
		end = s + n;
		if (n > 1 && s[0] == '*' && n <= sizeof(table)) {
			memcpy(table, s + 1, n - 1);
			table[n - 1] = '\0';
			continue;
		}
		/* ":MTUGATE_X - [0:0]": the chain exists even with no rule. */
		if (n > 9 && !memcmp(s, ":MTUGATE_", 9)) {
			if (!deploy_get(e, family, table, s + 1, deploy_word(s + 1, end), "", 0))
				return -ENOSPC;
			continue;
		}
		if (n < 4 || (memcmp(s, "-A ", 3) && memcmp(s, "-I ", 3)))
			continue;
		ch = s + 3;
		cl = deploy_word(ch, end);
		if (cl > 8 && !memcmp(ch, "MTUGATE_", 8)) {
			struct deploy_chain *c = deploy_get(e, family, table, ch, cl, "", 0);

			if (!c)
				return -ENOSPC;
			c->rules++;
		} else if (((j = strstr(ch + cl, " -j MTUGATE_")) || (j = strstr(ch + cl, " -g MTUGATE_"))) &&
			   j < end) {
			struct deploy_chain *c = deploy_get(e, family, table, ch, cl, j + 4,
							    deploy_word(j + 4, end));

			if (!c)
				return -ENOSPC;
			c->rules = 1;	/* a hook: one jump */
		}
	}
	return 0;
}

int deploy_expect_nft(struct deploy_expect *e, const char *printed)
{
	const char *p = printed, *s;
	struct deploy_chain *c = NULL;
	size_t n;
	int depth = 0;		/* inside table inet mtugate: 1, a chain or set: 2 */

	while (deploy_next_line(&p, &s, &n)) {
		deploy_trim(&s, &n);
		if (!n || s[0] == '#')
			continue;
		if (!depth) {
			if (n >= 20 && !memcmp(s, "table inet mtugate {", 20))
				depth = 1;
			continue;
		}
		if (s[n - 1] == '{') {
			if (depth == 1 && n > 6 && !memcmp(s, "chain ", 6) &&
			    !(c = deploy_get(e, NFPROTO_INET, "mtugate", s + 6, deploy_word(s + 6, s + n),
					     "", 0)))
				return -ENOSPC;
			depth++;
		} else if (n == 1 && s[0] == '}') {
			depth--;
			c = NULL;
		} else if (c && depth == 2 && strncmp(s, "type ", 5) && strncmp(s, "policy ", 7)) {
			c->rules++;
		}
	}
	return 0;
}

int deploy_compare(const struct deploy_expect *want, const struct deploy_expect *live, char *why,
		   size_t cap)
{
	static const char *const fam[] = { [1] = "inet ", [2] = "", [10] = "ip6 " };

	for (size_t i = 0; i < want->n; i++) {
		const struct deploy_chain *w = &want->c[i], *l = NULL;
		const char *f = w->family < 11 && fam[w->family] ? fam[w->family] : "";

		for (size_t k = 0; k < live->n && !l; k++)
			if (live->c[k].family == w->family && !strcmp(live->c[k].table, w->table) &&
			    !strcmp(live->c[k].chain, w->chain) && !strcmp(live->c[k].target, w->target))
				l = &live->c[k];
		if (w->target[0] && (!l || !l->rules)) {
			snprintf(why, cap, "%s%s %s: no jump to %s", f, w->table, w->chain, w->target);
			return -1;
		}
		/* An empty chain has no rule to count: live does not list it. */
		if (!w->target[0] && (l ? l->rules : 0) != w->rules) {
			snprintf(why, cap, "%s%s %s: %u rule(s), the configuration has %u%s", f, w->table,
				 w->chain, l ? l->rules : 0, w->rules, l ? "" : " (no such chain)");
			return -1;
		}
	}
	return 0;
}

static uint64_t deploy_fnv(uint64_t h, const struct strbuf *b)
{
	for (size_t i = 0; i < b->len; i++)
		h = (h ^ (uint8_t)b->buf[i]) * 0x100000001b3ull;
	return h;
}

int deploy_expect_conf(struct deploy_expect *ipt, struct deploy_expect *nft, uint64_t *digest,
		       const struct conf *c, const struct policy *p)
{
	struct strbuf b = { 0 };
	uint64_t h = 0xcbf29ce484222325ull;
	int rc = 0;

	for (int step = 0; step < 5 && !rc; step++) {
		strbuf_reset(&b);
		switch (step) {
		case 0: rc = rules_iptables(c, p, AF_INET, 1, &b); break;
		case 1: rc = rules_iptables(c, p, AF_INET6, 1, &b); break;
		case 2: rc = rules_ipset(c, &b); break;
		case 3: rc = rules_nft(c, p, &b); break;
		case 4: rc = rules_routes(c, &b); break;
		}
		if (!rc && b.oom)
			rc = -ENOMEM;
		if (rc)
			break;
		if (b.len)
			h = deploy_fnv(h, &b);
		if (step < 2)
			rc = deploy_expect_ipt(ipt, b.buf ? b.buf : "", step == 0 ? NFPROTO_IPV4 : NFPROTO_IPV6);
		else if (step == 3)
			rc = deploy_expect_nft(nft, b.buf ? b.buf : "");
	}
	strbuf_free(&b);
	*digest = h;
	return rc;
}

/* The prefix length a route line starts with: "default" 0, "A/N" N, a bare
 * address a host route (129, above any prefix). */
static int deploy_route_len(const char *line)
{
	const char *slash = strchr(line, '/'), *sp = strpbrk(line, " \t\n");

	if (!strncmp(line, "default", 7))
		return 0;
	if (slash && (!sp || slash < sp))
		return atoi(slash + 1);
	return 129;
}

/* One route line's dev and mtu; 0, or -1 without a dev. */
static int deploy_route_line(const char *route, size_t len, char *dev, size_t cap, unsigned *mtu)
{
	char line[512], *save = NULL, *t, *prev = NULL;
	int found = -1;

	*mtu = 0;
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	memcpy(line, route, len);
	line[len] = '\0';
	for (t = strtok_r(line, " \t", &save); t; prev = t, t = strtok_r(NULL, " \t", &save)) {
		if (prev && !strcmp(prev, "dev") && cap) {
			snprintf(dev, cap, "%s", t);
			found = 0;
		} else if (prev && (!strcmp(prev, "mtu") || !strcmp(prev, "lock")) &&
			   isdigit((unsigned char)*t)) {
			*mtu = (unsigned)strtoul(t, NULL, 10);
		}
	}
	return found;
}

int deploy_route_dev(const char *routes, char *dev, size_t cap, unsigned *mtu)
{
	int best = -1;

	*mtu = 0;
	for (const char *l = routes; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char d[64];
		unsigned m;
		int plen = deploy_route_len(l);

		if (plen > best && deploy_route_line(l, len, d, sizeof(d), &m) == 0) {
			best = plen;
			*mtu = m;
			if (cap)
				snprintf(dev, cap, "%s", d);
		}
		l = e ? e + 1 : l + len;
	}
	return best < 0 ? -1 : 0;
}

unsigned deploy_dtls_mtu_fit(unsigned mtu, unsigned egress, int ipv6)
{
	unsigned over = ipv6 ? DEPLOY_DTLS_OVERHEAD6 : DEPLOY_DTLS_OVERHEAD4;

	if (!egress || mtu + over <= egress)
		return 0;
	return egress > over ? egress - over : 1;
}

/* Every needle on one line of listing (NULL-terminated list). */
static bool deploy_line_has(const char *listing, const char *const *needles)
{
	for (const char *l = listing; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		bool all = true;

		for (const char *const *n = needles; *n && all; n++) {
			const char *hit = memmem(l, len, *n, strlen(*n));

			all = hit != NULL;
		}
		if (all)
			return true;
		l = e ? e + 1 : l + len;
	}
	return false;
}

int deploy_listener_dropped(const char *listing, unsigned port, int nft)
{
	char dport[32];

	snprintf(dport, sizeof(dport), "dport %u ", port);
	if (nft)
		return deploy_line_has(listing, (const char *const[]){ "jump proxy", NULL }) &&
		       deploy_line_has(listing, (const char *const[]){ "fib daddr type local", dport,
								       "drop", NULL });
	return deploy_line_has(listing, (const char *const[]){ "-A PREROUTING ", "-j MTUGATE_PREROUTING",
							       NULL }) &&
	       deploy_line_has(listing, (const char *const[]){ "-A MTUGATE_PREROUTING ", "-j MTUGATE_PROXY",
							       NULL }) &&
	       deploy_line_has(listing, (const char *const[]){ "-A MTUGATE_PROXY ", dport,
							       "--dst-type LOCAL", "-j DROP", NULL });
}

/* A /proc/net/tcp address ("0100007F" on x86 for 127.0.0.1; IPv6 four such
 * words) into bytes: each word is the kernel's memory read as a u32. */
static int deploy_proc_addr(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex), w;

	if (n != 8 && n != 32)
		return -1;
	for (w = 0; w < n / 8; w++) {
		char word[9];
		uint32_t v;

		memcpy(word, hex + 8 * w, 8);
		word[8] = '\0';
		v = (uint32_t)strtoul(word, NULL, 16);
		memcpy(out + 4 * w, &v, 4);
	}
	return n == 8 ? AF_INET : AF_INET6;
}

int deploy_listener_open(const char *proc, unsigned port, char *addr, size_t cap)
{
	static const uint8_t lo6[16] = { [15] = 1 };
	const char *s;
	size_t n;

	while (deploy_next_line(&proc, &s, &n)) {
		char line[256], hex[40];
		unsigned lport, state;
		uint8_t a[16];
		int fam;

		if (n >= sizeof(line))
			continue;
		memcpy(line, s, n);
		line[n] = '\0';
		/* "  sl  local_address rem_address   st ...": 0A is TCP_LISTEN. */
		if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", hex, &lport, &state) != 3 ||
		    state != 0x0a || lport != port || (fam = deploy_proc_addr(hex, a)) < 0)
			continue;
		if ((fam == AF_INET && a[0] == 127) || (fam == AF_INET6 && !memcmp(a, lo6, 16)))
			continue;
		if (!inet_ntop(fam, a, addr, (socklen_t)cap) && cap)
			addr[0] = '\0';
		return 1;
	}
	return 0;
}

uint64_t deploy_queue_packets(const char *save, int first, int last)
{
	uint64_t sum = 0;

	for (const char *l = save; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char line[1024];
		unsigned long long pk;
		const char *q;
		int a, b;

		if (len < sizeof(line)) {
			memcpy(line, l, len);
			line[len] = '\0';
			if (sscanf(line, "[%llu:", &pk) == 1 && strstr(line, " -j NFQUEUE")) {
				if ((q = strstr(line, "--queue-num ")) && sscanf(q + 12, "%d", &a) == 1 &&
				    a >= first && a <= last)
					sum += pk;
				else if ((q = strstr(line, "--queue-balance ")) &&
					 sscanf(q + 16, "%d:%d", &a, &b) == 2 && a == first && b == last)
					sum += pk;
			}
		}
		l = e ? e + 1 : l + len;
	}
	return sum;
}
