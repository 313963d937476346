/* groups.d/NAME.conf -> struct group, and a whole groups.d -> a policy. */
#include "policy/policy.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "conf/diag.h"
#include "conf/ini.h"

/* RFC 791: every IPv4 host takes 576-byte datagrams; RFC 8200: IPv6 links
 * carry at least 1280. 9000 is the usual jumbo-frame ceiling. */
#define GROUP_MTU_MIN4 576
#define GROUP_MTU_MIN6 1280
#define GROUP_MTU_MAX 9000
/* Linux refuses a smaller MSS (TCP_MIN_MSS) since the 2019 SACK fixes. */
#define GROUP_MSS_MIN 88

static const char *const group_keys[] = {
	"name", "auth_group", "pool", "clients", "mtu", "dtls", "dtls_block", "mss", "pmtu",
	"pmtu_rate", "proxy", "mode", NULL
};
static const char *const group_dtls[] = { "relay", "block", "pass", NULL };
static const char *const group_dtls_block[] = { "drop", "reject", NULL };
static const char *const group_modes[] = { "enforce", "observe", NULL };

/* What one parse needs besides the group: where errors go. */
struct group_ctx {
	struct group *g;
	const struct ini *ini;
	const char *path;
	struct diag *d;
};

static bool group_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* The headend's group name as the client sends it: printable, no controls. */
static bool group_auth_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static const char *group_get(struct group_ctx *x, const char *key, int *line)
{
	return ini_get(x->ini, "group", key, line);
}

/* The key is set to something (a bad value has its own message). */
static bool group_has_key(struct group_ctx *x, const char *key)
{
	int line;
	const char *v = group_get(x, key, &line);

	return v && *v;
}

static void group_bad(struct group_ctx *x, int line, const char *key, const char *v,
		      const char *why)
{
	diag_add(x->d, x->path, line, "invalid %s '%s': %s", key, v, why);
}

/* A prefix with host bits set: say which network was probably meant. */
static void group_bad_prefix(struct group_ctx *x, int line, const char *key, const char *item)
{
	char addr[64], buf[64];
	const char *slash = strchr(item, '/');
	struct ipaddr a;
	struct prefix p;
	unsigned len;

	if (slash && (size_t)(slash - item) < sizeof(addr)) {
		memcpy(addr, item, (size_t)(slash - item));
		addr[slash - item] = '\0';
		if (addr_parse(&a, addr) == 0 &&
		    ini_parse_uint(slash + 1, 0, a.family == AF_INET ? 32 : 128, &len) == 0) {
			p.family = a.family;
			p.len = (uint8_t)len;
			memcpy(p.addr, a.addr, sizeof(p.addr));
			for (unsigned i = len; i < 128; i++)
				p.addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
			snprintf(buf, sizeof(buf), "host bits are set (did you mean %s?)",
				 prefix_format(&p, addr, sizeof(addr)));
			group_bad(x, line, key, item, buf);
			return;
		}
	}
	group_bad(x, line, key, item, "expected IPv4 or IPv6 prefixes (CIDR), comma-separated");
}

/* "a/n, b/m": every item checked, every bad one reported. */
static int group_prefixes(struct group_ctx *x, const char *key, const char *v, int line,
			  struct prefix **out, size_t *nout)
{
	char item[96];
	const char *cur = v;
	size_t n = 0, cap = 0;
	struct prefix *ps = NULL, p;
	int r, bad = 0;

	while ((r = ini_list_next(&cur, item, sizeof(item))) != 0) {
		bool dup = false;

		if (r < 0 || !*item || prefix_parse(&p, item) < 0) {
			if (r < 0 || !*item)
				group_bad(x, line, key, r < 0 ? "(too long)" : "",
					  "expected IPv4 or IPv6 prefixes (CIDR), comma-separated");
			else
				group_bad_prefix(x, line, key, item);
			bad = 1;
			continue;
		}
		for (size_t i = 0; i < n && !dup; i++)
			dup = !memcmp(&ps[i], &p, sizeof(p));
		if (dup) {
			diag_add(x->d, x->path, line, "duplicate %s %s", key, item);
			bad = 1;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 4;
			struct prefix *nv = realloc(ps, ncap * sizeof(*nv));

			if (!nv) {
				diag_add(x->d, x->path, line, "out of memory");
				bad = 1;
				break;
			}
			ps = nv;
			cap = ncap;
		}
		ps[n++] = p;
	}
	*out = ps;
	*nout = n;
	return bad ? -1 : 0;
}

static void group_parse_name(struct group_ctx *x, int sect_line)
{
	struct group *g = x->g;
	const char *v = group_get(x, "name", &g->line_name);
	const char *base = strrchr(x->path, '/');
	size_t n;

	if (v) {
		if (group_name_ok(v))
			snprintf(g->name, sizeof(g->name), "%s", v);
		else
			group_bad(x, g->line_name, "name", v,
				  "expected 1 to 63 letters, digits, '_', '.' or '-'");
		return;
	}
	/* No name: the file's, as in "groups.d/tlsonly.conf" -> tlsonly. */
	base = base ? base + 1 : x->path;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".conf"))
		n -= 5;
	g->line_name = sect_line;
	if (n < sizeof(g->name)) {
		memcpy(g->name, base, n);
		g->name[n] = '\0';
	}
	if (n >= sizeof(g->name) || !group_name_ok(g->name)) {
		g->name[0] = '\0';
		diag_add(x->d, x->path, sect_line,
			 "missing name, and the file name is not a valid group name");
	}
}

static void group_parse_mtu(struct group_ctx *x, int sect_line)
{
	struct group *g = x->g;
	bool v6 = false;
	char why[128];
	int line;
	const char *v = group_get(x, "mtu", &line);
	unsigned mtu;

	if (!v) {
		diag_add(x->d, x->path, sect_line, "missing mtu (the tunnel MTU of this group)");
		return;
	}
	for (size_t i = 0; i < g->npools; i++)
		v6 |= g->pools[i].family == AF_INET6;
	if (ini_parse_uint(v, 0, 1000000, &mtu) < 0) {
		group_bad(x, line, "mtu", v, "expected a number");
		return;
	}
	if (mtu > GROUP_MTU_MAX)
		snprintf(why, sizeof(why), "above %d, the largest (jumbo) MTU", GROUP_MTU_MAX);
	else if (v6 && mtu < GROUP_MTU_MIN6)
		snprintf(why, sizeof(why),
			 "below %d, the IPv6 minimum (RFC 8200), and pool has IPv6 prefixes",
			 GROUP_MTU_MIN6);
	else if (mtu < GROUP_MTU_MIN4)
		snprintf(why, sizeof(why), "below %d, the IPv4 minimum (RFC 791)", GROUP_MTU_MIN4);
	else
		why[0] = '\0';
	if (why[0])
		group_bad(x, line, "mtu", v, why);
	else
		g->mtu = mtu;
}

static void group_parse_mss(struct group_ctx *x)
{
	struct group *g = x->g;
	int line;
	const char *v = group_get(x, "mss", &line);
	unsigned max = g->mtu ? g->mtu - 40 : GROUP_MTU_MAX - 40;
	char why[160];

	if (!v || !strcasecmp(v, "auto"))
		return;
	if (!strcasecmp(v, "off")) {
		g->mss_mode = MSS_OFF;
		return;
	}
	switch (ini_parse_uint(v, GROUP_MSS_MIN, max, &g->mss)) {
	case 0:
		g->mss_mode = MSS_FIXED;
		return;
	case -ERANGE:
		/* mtu - 40: the segment plus 20-byte IPv4 and TCP headers fills the tunnel. */
		snprintf(why, sizeof(why),
			 "expected %d..%u (%d is the smallest MSS Linux accepts; %u is %s - 40, "
			 "the largest IPv4 segment the tunnel carries)",
			 GROUP_MSS_MIN, max, GROUP_MSS_MIN, max, g->mtu ? "mtu" : "the largest mtu");
		break;
	default:
		snprintf(why, sizeof(why), "expected auto, off or a number");
		break;
	}
	group_bad(x, line, "mss", v, why);
}

static void group_parse_choice(struct group_ctx *x, const char *key, const char *const *choices,
			       const char *expect, int *out)
{
	int line, i;
	const char *v = group_get(x, key, &line);

	if (!v)
		return;
	i = ini_parse_choice(v, choices);
	if (i < 0)
		group_bad(x, line, key, v, expect);
	else
		*out = i;
}

static void group_parse_rest(struct group_ctx *x)
{
	struct group *g = x->g;
	int line, mode = g->dtls, block = g->dtls_block, gmode = g->mode;
	bool proxy = true;
	const char *v;

	group_parse_choice(x, "dtls", group_dtls, "expected relay, block or pass", &mode);
	group_parse_choice(x, "dtls_block", group_dtls_block, "expected drop or reject", &block);
	group_parse_choice(x, "mode", group_modes, "expected enforce or observe", &gmode);
	g->dtls = (enum dtls_mode)mode;
	g->dtls_block = (enum dtls_block)block;
	g->mode = (enum group_mode)gmode;
	v = group_get(x, "pmtu", &line);
	if (v && ini_parse_bool(v, &g->pmtu) < 0)
		group_bad(x, line, "pmtu", v, "expected yes, no, true, false, on, off, 1 or 0");
	v = group_get(x, "pmtu_rate", &line);
	if (v && ini_parse_uint(v, 1, 100000, &g->pmtu_rate) < 0)
		group_bad(x, line, "pmtu_rate", v, "expected 1..100000 ICMP messages per second");
	v = group_get(x, "proxy", &g->line_proxy);
	if (v && ini_parse_bool(v, &proxy) < 0)
		group_bad(x, g->line_proxy, "proxy", v, "expected yes, no, true, false, on, off, 1 or 0");
	g->proxy_bypass = !proxy;
	/* The proxy takes a connection before the client has named its group:
	 * only the source address can keep a group's clients out of it. */
	if (g->proxy_bypass && !group_has_key(x, "clients"))
		diag_add(x->d, x->path, g->line_proxy,
			 "proxy = no needs clients: the proxy intake can only pass a group by its"
			 " clients' addresses");
}

static void group_parse_addrs(struct group_ctx *x, int sect_line)
{
	struct group *g = x->g;
	const char *v = group_get(x, "pool", &g->line_pool);

	if (!v)
		diag_add(x->d, x->path, sect_line,
			 "missing pool (the addresses the headend assigns to this group)");
	else if (!*v)
		group_bad(x, g->line_pool, "pool", v, "expected IPv4 or IPv6 prefixes (CIDR), comma-separated");
	else
		group_prefixes(x, "pool", v, g->line_pool, &g->pools, &g->npools);
	v = group_get(x, "clients", &g->line_clients);
	/* "clients =" says there are none, as leaving the key out does. */
	if (v && *v)
		group_prefixes(x, "clients", v, g->line_clients, &g->clients, &g->nclients);
}

static void group_parse_ini(struct group_ctx *x)
{
	static const struct ini_schema schema[] = { { "group", group_keys } };
	struct group *g = x->g;
	int sect_line = ini_section_line(x->ini, "group");
	const char *v;
	int line;

	ini_check_schema(x->ini, schema, 1, x->d);
	if (!sect_line) {
		diag_add(x->d, x->path, 0, "missing [group] section");
		return;
	}
	group_parse_name(x, sect_line);
	v = group_get(x, "auth_group", &line);
	if (v && !group_auth_ok(v))
		group_bad(x, line, "auth_group", v, "expected 1 to 63 printable characters");
	else
		snprintf(g->auth_group, sizeof(g->auth_group), "%s", v ? v : g->name);
	g->line_auth = v ? line : 0;
	group_parse_addrs(x, sect_line);
	group_parse_mtu(x, sect_line);
	group_parse_mss(x);
	group_parse_rest(x);
}

int group_parse_file(struct group *g, const char *path, struct diag *d)
{
	struct diag local = { 0 };
	struct group_ctx x = { g, NULL, path, &local };

	memset(g, 0, sizeof(*g));
	g->dtls = DTLS_RELAY;
	g->dtls_block = DTLS_BLOCK_DROP;
	g->mss_mode = MSS_AUTO;
	g->pmtu = true;
	g->pmtu_rate = 100;
	if (strlen(path) >= sizeof(g->file)) {
		diag_add(d, path, 0, "path too long");
		return -1;
	}
	snprintf(g->file, sizeof(g->file), "%s", path);
	x.ini = ini_open(path, &local);
	if (x.ini) {
		group_parse_ini(&x);
		ini_close((struct ini *)x.ini);
	}
	if (!diag_count(&local))
		return 0;
	ini_diag_move(d, &local, path);
	return -1;
}

void group_release(struct group *g)
{
	free(g->pools);
	free(g->clients);
	g->pools = g->clients = NULL;
	g->npools = g->nclients = 0;
}

uint16_t group_mss(const struct group *g, int family)
{
	unsigned hdr = family == AF_INET6 ? 60 : 40;

	if (g->mss_mode == MSS_OFF || g->mtu <= hdr)
		return 0;
	/* A fixed MSS is checked against IPv4 (mtu - 40); over IPv6 the headers
	 * are 20 bytes longer, so it is capped to stay inside the tunnel. */
	if (g->mss_mode == MSS_FIXED && g->mss < g->mtu - hdr)
		return (uint16_t)g->mss;
	return (uint16_t)(g->mtu - hdr);
}

/* groups.d holds NAME.conf files; dot files (editor leftovers) are not groups. */
static int group_file_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 5 && !strcmp(e->d_name + n - 5, ".conf");
}

/* Byte order, not the locale's: the same files load in the same order anywhere. */
static int group_file_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

struct policy *policy_load_dir(const char *dir, struct diag *d)
{
	struct dirent **list = NULL;
	struct group *groups;
	struct policy *p;
	size_t k = 0, dlen = strlen(dir);
	bool failed = false;
	int n = scandir(dir, &list, group_file_filter, group_file_cmp);

	if (n < 0) {
		diag_add(d, dir, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	groups = calloc(n ? (size_t)n : 1, sizeof(*groups));
	if (!groups) {
		diag_add(d, dir, 0, "out of memory");
		failed = true;
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct stat st;
		int w = snprintf(path, sizeof(path), "%.*s/%s", (int)dlen, dir, list[i]->d_name);

		if (groups && (w < 0 || (size_t)w >= sizeof(path))) {
			diag_add(d, dir, 0, "path too long: %s", list[i]->d_name);
			failed = true;
		} else if (groups && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (group_parse_file(&groups[k], path, d) == 0) {
				k++;
			} else {
				group_release(&groups[k]);
				failed = true;
			}
		}
		free(list[i]);
	}
	free(list);
	if (!groups)
		return NULL;
	/* Compile what parsed even after errors: its cross-file errors count too. */
	p = policy_compile(groups, k, d);
	if (failed && p) {
		policy_free(p);
		p = NULL;
	}
	return p;
}
