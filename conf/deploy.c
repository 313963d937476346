#include "conf/deploy.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

	if (deploy_has(s, n, "table inet mtugate "))
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
