/* mtugate.conf -> struct conf: every key from one table, every error reported. */
#include "conf/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>

#include "conf/diag.h"
#include "conf/ini.h"
#include "proxy/ticketkey.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

/* One thread per queue: a range wider than this is a typo, not a plan. */
#define CONF_MAX_QUEUE_RANGE 64
/*
 * The kernel stores the NFQUEUE length as any u32 (nfnetlink_queue.c takes
 * NFQA_CFG_QUEUE_MAXLEN as given; its default is 1024). Past a million
 * packets waiting in the kernel the daemon is not keeping up anyway, and the
 * netlink receive buffer is sized from this value.
 */
#define CONF_MAX_QUEUE_LEN 1048576
/* Routing table ids are 32-bit; 253..255 are the kernel's default, main and local. */
#define CONF_MAX_ROUTE_TABLE 2147483647u

enum conf_kind {
	CK_USER, CK_PATH, CK_SOCKET, CK_LOGLEVEL, CK_QUEUE, CK_UINT, CK_PORT, CK_BOOL, CK_ADDRS,
	CK_HOST, CK_MARKMASK, CK_OPTPATH, CK_LOGUSERS
};

struct conf_key {
	const char *section, *key;
	enum conf_kind kind;
	size_t off, size;
	unsigned min, max;
};

#define CONF_KEY(sec, name, kind, lo, hi) \
	{ #sec, #name, kind, offsetof(struct conf, sec.name), \
	  sizeof(((struct conf *)0)->sec.name), lo, hi }

static const struct conf_key conf_keys[] = {
	CONF_KEY(daemon, user, CK_USER, 0, 0),
	CONF_KEY(daemon, control_socket, CK_SOCKET, 0, 0),
	CONF_KEY(daemon, groups_dir, CK_PATH, 0, 0),
	CONF_KEY(daemon, log_level, CK_LOGLEVEL, 0, 0),
	CONF_KEY(daemon, log_users, CK_LOGUSERS, 0, 0),
	CONF_KEY(queues, mss, CK_QUEUE, 0, 65535),
	CONF_KEY(queues, pmtu, CK_QUEUE, 0, 65535),
	CONF_KEY(queues, dtls, CK_QUEUE, 0, 65535),
	CONF_KEY(queues, max_len, CK_UINT, 1, CONF_MAX_QUEUE_LEN),
	CONF_KEY(queues, fail_open, CK_BOOL, 0, 0),
	CONF_KEY(queues, mark_mask, CK_MARKMASK, 0, 0),
	CONF_KEY(headend, addr, CK_ADDRS, 0, 0),
	CONF_KEY(headend, public_address, CK_ADDRS, 0, 0),
	CONF_KEY(headend, tls_port, CK_PORT, 1, 65535),
	CONF_KEY(headend, dtls_port, CK_PORT, 1, 65535),
	CONF_KEY(headend, advertised_dtls_port, CK_PORT, 1, 65535),
	CONF_KEY(proxy, enable, CK_BOOL, 0, 0),
	CONF_KEY(proxy, listen_port, CK_PORT, 1, 65535),
	CONF_KEY(proxy, certificate, CK_PATH, 0, 0),
	CONF_KEY(proxy, private_key, CK_PATH, 0, 0),
	CONF_KEY(proxy, upstream_ca, CK_PATH, 0, 0),
	CONF_KEY(proxy, upstream_name, CK_HOST, 0, 0),
	CONF_KEY(proxy, insecure_upstream, CK_BOOL, 0, 0),
	CONF_KEY(proxy, upstream_resume, CK_BOOL, 0, 0),
	CONF_KEY(proxy, ticket_key_file, CK_OPTPATH, 0, 0),
	CONF_KEY(proxy, max_sessions, CK_UINT, 1, 1048576),
	CONF_KEY(proxy, handshake_timeout, CK_UINT, 1, 3600),
	CONF_KEY(proxy, idle_timeout, CK_UINT, 1, 86400),
	CONF_KEY(proxy, route_table, CK_UINT, 1, CONF_MAX_ROUTE_TABLE),
	CONF_KEY(proxy, login_max, CK_UINT, 1, 1048576),
	CONF_KEY(proxy, login_per_source, CK_UINT, 1, 1048576),
	CONF_KEY(proxy, source_prefix4, CK_UINT, 8, 32),
	CONF_KEY(proxy, source_prefix6, CK_UINT, 16, 128),
	CONF_KEY(proxy, login_timeout, CK_UINT, 5, 86400),
	CONF_KEY(proxy, workers, CK_UINT, 0, CONF_MAX_PROXY_WORKERS),
	CONF_KEY(proxy, drain_timeout, CK_UINT, 0, 604800),
};
#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static const char *const conf_sections[] = { "daemon", "queues", "headend", "proxy" };
#define CONF_NSECTIONS (sizeof(conf_sections) / sizeof(conf_sections[0]))

static const char *const conf_levels[] = { "error", "warning", "info", "debug", NULL };
static const char *const conf_log_users[] = { "yes", "hash", "no", NULL };

/* The struct field is headend.addr; the file says "address". */
static const char *conf_key_name(const struct conf_key *k)
{
	return k->off == offsetof(struct conf, headend.addr) ? "address" : k->key;
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->daemon.user, sizeof(c->daemon.user), "mtugate");
	snprintf(c->daemon.control_socket, sizeof(c->daemon.control_socket),
		 RUNSTATEDIR "/mtugate/mtugate.sock");
	snprintf(c->daemon.groups_dir, sizeof(c->daemon.groups_dir),
		 SYSCONFDIR "/mtugate/groups.d");
	c->daemon.log_level = LOG_LEVEL_INFO;
	/* Clear of 0 and the small numbers IPS engines default to (Suricata's
	 * -q 0), and above any MSS so a [queues] value never reads as one. */
	c->queues.mss = (struct qrange){ 40000, 40000 };
	c->queues.pmtu = (struct qrange){ 40002, 40002 };
	c->queues.dtls = (struct qrange){ 40003, 40003 };
	c->queues.max_len = 8192;
	c->queues.fail_open = true;
	c->queues.mark_mask = 0;
	marks_default(&c->marks);
	c->headend.tls_port = 443;
	c->headend.dtls_port = 443;
	c->headend.advertised_dtls_port = 443;
	c->proxy.enable = false;
	c->proxy.listen_port = 8443;
	snprintf(c->proxy.certificate, sizeof(c->proxy.certificate),
		 SYSCONFDIR "/mtugate/headend.crt");
	snprintf(c->proxy.private_key, sizeof(c->proxy.private_key),
		 SYSCONFDIR "/ssl/private/mtugate-headend.key");
	snprintf(c->proxy.upstream_ca, sizeof(c->proxy.upstream_ca),
		 "/etc/ssl/certs/ca-certificates.crt");
	c->proxy.insecure_upstream = false;
	c->proxy.upstream_resume = true;
	c->proxy.max_sessions = 10000;
	c->proxy.handshake_timeout = 30;
	c->proxy.idle_timeout = 300;
	c->proxy.route_table = 100;
	/* A SAML or MFA login may wait minutes on a push approval. */
	c->proxy.login_max = 1024;
	c->proxy.login_per_source = 64;
	c->proxy.source_prefix4 = 32;
	c->proxy.source_prefix6 = 64;
	c->proxy.login_timeout = 300;
	/* A working day: the tunnels of a restart end as their users log off. */
	c->proxy.drain_timeout = 43200;
}

/* What a load needs besides the struct: where errors go. */
struct conf_ctx {
	struct conf *c;
	const char *path;
	struct diag *d;
	bool bad[CONF_NKEYS];	/* the key's value was rejected */
};

static void conf_bad(struct conf_ctx *x, const struct conf_key *k, int line, const char *v,
		     const char *why)
{
	diag_add(x->d, x->path, line, "invalid %s '%s': %s", conf_key_name(k), v, why);
}

/* Names useradd accepts, and room in the field. Existence is checked when
 * the daemon drops privileges, not here: parsing stays free of NSS calls. */
static bool conf_user_ok(const char *v, size_t size)
{
	size_t n = strlen(v);

	if (n >= size || n > 32 || v[0] == '-')
		return false;
	for (const char *p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p) &&
		    !(*p == '$' && p[1] == '\0'))
			return false;
	return true;
}

static int conf_queue_parse(const char *v, struct qrange *q)
{
	char first[8], rest[8];
	const char *dash = strchr(v, '-');
	unsigned a, b;

	if (!strcasecmp(v, "off")) {
		*q = (struct qrange){ -1, -1 };
		return 0;
	}
	if (!dash) {
		if (ini_parse_uint(v, 0, 65535, &a))
			return -EINVAL;
		*q = (struct qrange){ (int)a, (int)a };
		return 0;
	}
	if ((size_t)(dash - v) >= sizeof(first) || strlen(dash + 1) >= sizeof(rest))
		return -EINVAL;
	memcpy(first, v, (size_t)(dash - v));
	first[dash - v] = '\0';
	snprintf(rest, sizeof(rest), "%s", dash + 1);
	if (ini_parse_uint(first, 0, 65535, &a) || ini_parse_uint(rest, 0, 65535, &b) || a > b)
		return -EINVAL;
	if (b - a >= CONF_MAX_QUEUE_RANGE)
		return -ERANGE;
	*q = (struct qrange){ (int)a, (int)b };
	return 0;
}

static void conf_set_addrs(struct conf_ctx *x, const struct conf_key *k, int line, const char *v)
{
	const bool pub = k->off == offsetof(struct conf, headend.public_address);
	struct ipaddr *out = pub ? x->c->headend.public_address : x->c->headend.addr;
	char item[INET6_ADDRSTRLEN + 8];
	const char *cur = v;
	size_t n = 0;
	int r;

	if (!*v)
		return;
	while ((r = ini_list_next(&cur, item, sizeof(item))) != 0) {
		struct ipaddr a;
		char buf[INET6_ADDRSTRLEN];

		if (r < 0 || addr_parse(&a, item) < 0) {
			diag_add(x->d, x->path, line,
				 "invalid address '%s': expected IPv4 or IPv6 addresses, comma-separated",
				 r < 0 ? "(too long)" : item);
			continue;
		}
		if (n == CONF_MAX_HEADENDS) {
			diag_add(x->d, x->path, line, "too many addresses: at most %d",
				 CONF_MAX_HEADENDS);
			break;
		}
		for (size_t i = 0; i < n && r; i++)
			if (!memcmp(&out[i], &a, sizeof(a))) {
				diag_add(x->d, x->path, line, "duplicate address %s",
					 addr_format(&a, buf, sizeof(buf)));
				r = 0;
			}
		if (r)
			out[n++] = a;
	}
	*(pub ? &x->c->headend.npublic : &x->c->headend.naddr) = n;
}

/* A mask in hex (0x3f800000) or decimal; empty or 0: the default layout. */
static void conf_set_mark_mask(struct conf_ctx *x, const struct conf_key *k, int line,
			       const char *v)
{
	unsigned long long u = 0;
	bool hex = v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
	const char *p = hex ? v + 2 : v;
	char why[128];
	int bits = 0;

	if (*v && (!*p || strspn(p, hex ? "0123456789abcdefABCDEF" : "0123456789") != strlen(p) ||
		   strlen(p) > (hex ? 8 : 10) || (u = strtoull(v, NULL, hex ? 16 : 10)) > 0xffffffffULL)) {
		conf_bad(x, k, line, v, "expected a 32-bit mask, as 0x3f800000 or in decimal, or nothing");
		return;
	}
	if (u == 0) {
		x->c->queues.mark_mask = 0;
		marks_default(&x->c->marks);
		return;
	}
	if (marks_from_mask(&x->c->marks, (uint32_t)u) < 0) {
		for (unsigned long long b = u; b; b &= b - 1)
			bits++;
		snprintf(why, sizeof(why), "%d bit%s set; mtugate needs at least %d (DTLS decisions, proxy,"
			 " resume, and at least one bit of tag)", bits, bits == 1 ? "" : "s",
			 MARKS_MIN_BITS);
		conf_bad(x, k, line, v, why);
		return;
	}
	x->c->queues.mark_mask = (uint32_t)u;
}

/* Parse one value into its field, or report why not. */
static void conf_set(struct conf_ctx *x, const struct conf_key *k, int line, const char *v)
{
	char *field = (char *)x->c + k->off;
	char why[96];
	unsigned u;
	bool b;
	int i;

	switch (k->kind) {
	case CK_USER:
		if (!conf_user_ok(v, k->size))
			conf_bad(x, k, line, v,
				 "expected a user name (letters, digits, '_', '.', '-', at most 32) or nothing");
		else
			snprintf(field, k->size, "%s", v);
		break;
	case CK_SOCKET:
	case CK_PATH:
	case CK_OPTPATH:	/* empty: none */
		if (!*v && k->kind != CK_OPTPATH)
			conf_bad(x, k, line, v, "expected a path");
		else if (strlen(v) >= k->size)
			diag_add(x->d, x->path, line, "invalid %s: longer than %zu characters%s",
				 k->key, k->size - 1, k->kind == CK_SOCKET ? " (sun_path)" : "");
		else
			snprintf(field, k->size, "%s", v);
		break;
	case CK_LOGLEVEL:
	case CK_LOGUSERS:
		i = ini_parse_choice(v, k->kind == CK_LOGLEVEL ? conf_levels : conf_log_users);
		if (i < 0)
			conf_bad(x, k, line, v, k->kind == CK_LOGLEVEL ?
				 "expected error, warning, info or debug" : "expected yes, hash or no");
		else if (k->kind == CK_LOGLEVEL)
			*(enum log_level *)(void *)field = (enum log_level)i;
		else
			*(enum log_users *)(void *)field = (enum log_users)i;
		break;
	case CK_QUEUE:
		i = conf_queue_parse(v, (struct qrange *)(void *)field);
		if (i == -ERANGE)
			conf_bad(x, k, line, v, "at most 64 queues in a range (one thread each)");
		else if (i < 0)
			conf_bad(x, k, line, v,
				 "expected a queue number 0..65535, a range 'A-B' with A <= B, or 'off'");
		break;
	case CK_UINT:
	case CK_PORT:
		if (ini_parse_uint(v, k->min, k->max, &u) < 0) {
			snprintf(why, sizeof(why), "expected %s %u..%u",
				 k->kind == CK_PORT ? "a port number" : "a number", k->min, k->max);
			conf_bad(x, k, line, v, why);
		} else if (k->kind == CK_PORT) {
			*(uint16_t *)(void *)field = (uint16_t)u;
		} else {
			*(unsigned *)(void *)field = u;
		}
		break;
	case CK_BOOL:
		if (ini_parse_bool(v, &b) < 0)
			conf_bad(x, k, line, v, "expected yes, no, true, false, on, off, 1 or 0");
		else
			*(bool *)(void *)field = b;
		break;
	case CK_ADDRS:
		conf_set_addrs(x, k, line, v);
		break;
	case CK_MARKMASK:
		conf_set_mark_mask(x, k, line, v);
		break;
	case CK_HOST:
		/* A DNS name or an address literal; empty means the headend address. */
		if (strlen(v) >= k->size || strspn(v, "abcdefghijklmnopqrstuvwxyz"
						    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:_-") != strlen(v))
			conf_bad(x, k, line, v, "expected a host name or address, or nothing");
		else
			snprintf(field, k->size, "%s", v);
		break;
	}
}

/* A relative groups_dir is taken from the config file's folder, so that
 * "mtugated -c /srv/gw/mtugate.conf" finds /srv/gw/groups.d whatever the cwd. */
static void conf_resolve_groups_dir(struct conf_ctx *x, int line)
{
	struct conf *c = x->c;
	const char *slash = strrchr(x->path, '/');
	char buf[PATH_MAX];
	int n;

	if (c->daemon.groups_dir[0] == '/' || !slash)
		return;
	n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - x->path), x->path,
		     c->daemon.groups_dir);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		diag_add(x->d, x->path, line, "invalid groups_dir: longer than %zu characters",
			 sizeof(buf) - 1);
		return;
	}
	memcpy(c->daemon.groups_dir, buf, (size_t)n + 1);
}

static bool qrange_overlap(struct qrange a, struct qrange b)
{
	return a.first >= 0 && b.first >= 0 && a.first <= b.last && b.first <= a.last;
}

static const char *qrange_format(struct qrange q, char *buf, size_t len)
{
	if (q.first == q.last)
		snprintf(buf, len, "%d", q.first);
	else
		snprintf(buf, len, "%d-%d", q.first, q.last);
	return buf;
}

/* Each queue number is bound once, by one thread with one job. */
static void conf_check_queues(struct conf_ctx *x, const struct ini *ini)
{
	static const char *const names[] = { "mss", "pmtu", "dtls" };
	const struct qrange q[] = { x->c->queues.mss, x->c->queues.pmtu, x->c->queues.dtls };
	int lines[3];
	bool bad[3];
	char a[16], b[16];

	for (size_t i = 0; i < 3; i++) {
		ini_get(ini, "queues", names[i], &lines[i]);
		bad[i] = false;
		for (size_t k = 0; k < CONF_NKEYS; k++)
			if (!strcmp(conf_keys[k].section, "queues") && !strcmp(conf_keys[k].key, names[i]))
				bad[i] = x->bad[k];
	}
	for (size_t i = 0; i < 3; i++)
		for (size_t j = i + 1; j < 3; j++) {
			size_t later = lines[i] > lines[j] ? i : j, other = later == i ? j : i;

			/* A rejected value was reported already; its default is no news. */
			if (bad[i] || bad[j] || !qrange_overlap(q[i], q[j]))
				continue;
			diag_add(x->d, x->path, lines[later],
				 "queue %s %s overlaps queue %s %s%s: each queue has one job",
				 names[later], qrange_format(q[later], a, sizeof(a)), names[other],
				 qrange_format(q[other], b, sizeof(b)),
				 lines[other] ? "" : " (the default)");
		}
}

/* Whether the key at this offset was refused. */
static bool conf_key_bad(const struct conf_ctx *x, size_t off)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (conf_keys[i].off == off)
			return x->bad[i];
	return false;
}

/* The ticket keys are read here, so that a missing or short file is a
 * configuration error at its line (mtugated -t, a reload), not a proxy that
 * fails later. Their contents are not kept: proxy/tls.c reads them again. */
static void conf_check_ticket_keys(struct conf_ctx *x, const struct ini *ini)
{
	struct ticketkeys ks;
	char err[160];
	bool exposed;
	int line;

	if (!x->c->proxy.enable || !x->c->proxy.ticket_key_file[0] ||
	    conf_key_bad(x, offsetof(struct conf, proxy.ticket_key_file)))
		return;
	if (ticketkey_load(x->c->proxy.ticket_key_file, &ks, &exposed, err, sizeof(err)) < 0) {
		ini_get(ini, "proxy", "ticket_key_file", &line);
		diag_add(x->d, x->path, line, "invalid ticket_key_file %s: %s",
			 x->c->proxy.ticket_key_file, err);
	}
	ticketkey_wipe(&ks);
}

/* public_address pairs with address entry by entry (docs/rules.md, "A headend
 * behind a port forward"); without it each headend is reached at its own. */
static void conf_check_public(struct conf_ctx *x, const struct ini *ini)
{
	struct conf *c = x->c;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int line;

	if (c->headend.npublic && c->headend.npublic != c->headend.naddr) {
		ini_get(ini, "headend", "public_address", &line);
		diag_add(x->d, x->path, line, "public_address names %zu addresses, address %zu: give one"
			 " public address per headend address, in the same order (the address itself"
			 " where there is no port forward)", c->headend.npublic, c->headend.naddr);
	} else {
		for (size_t i = 0; i < c->headend.npublic; i++) {
			if (c->headend.public_address[i].family == c->headend.addr[i].family)
				continue;
			ini_get(ini, "headend", "public_address", &line);
			diag_add(x->d, x->path, line, "public_address %s and address %s differ in family:"
				 " a port forward keeps IPv4 to IPv4 and IPv6 to IPv6",
				 addr_format(&c->headend.public_address[i], a, sizeof(a)),
				 addr_format(&c->headend.addr[i], b, sizeof(b)));
		}
	}
}

const struct ipaddr *conf_headend_public(const struct conf *c, size_t i)
{
	return i < c->headend.npublic ? &c->headend.public_address[i] : &c->headend.addr[i];
}

bool conf_headend_forwarded(const struct conf *c, size_t i)
{
	return i < c->headend.npublic &&
	       memcmp(&c->headend.public_address[i], &c->headend.addr[i], sizeof(c->headend.addr[i]));
}

const struct ipaddr *conf_headend_by_public(const struct conf *c, int family, const uint8_t *public)
{
	for (size_t i = 0; i < c->headend.naddr; i++) {
		const struct ipaddr *p = conf_headend_public(c, i);

		if (p->family == family && !memcmp(p->addr, public, family == AF_INET6 ? 16 : 4))
			return &c->headend.addr[i];
	}
	return NULL;
}

static void conf_check_all(struct conf_ctx *x, const struct ini *ini)
{
	int line;

	conf_check_queues(x, ini);
	conf_check_ticket_keys(x, ini);
	conf_check_public(x, ini);
	/* TPROXY's `ip route add local ... table N` must not land in the kernel's own. */
	if (x->c->proxy.route_table >= 253 && x->c->proxy.route_table <= 255) {
		ini_get(ini, "proxy", "route_table", &line);
		diag_add(x->d, x->path, line,
			 "invalid route_table '%u': 253, 254 and 255 are the default, main and local tables",
			 x->c->proxy.route_table);
	}
	/* The DTLS path and the proxy's rules match traffic by headend address. */
	if (!x->c->headend.naddr && (x->c->queues.dtls.first >= 0 || x->c->proxy.enable)) {
		const char *v = ini_get(ini, "headend", "address", &line);

		if (!v)
			line = ini_section_line(ini, "headend");
		if (!v || !*v)
			diag_add(x->d, x->path, line,
				 "[headend] address is required while [queues] dtls is not off or [proxy] enable = yes");
	}
}

static size_t conf_check_schema(const struct ini *ini, struct diag *d)
{
	const char *names[CONF_NSECTIONS][CONF_NKEYS + 1];
	struct ini_schema schema[CONF_NSECTIONS];

	for (size_t s = 0; s < CONF_NSECTIONS; s++) {
		size_t n = 0;

		for (size_t i = 0; i < CONF_NKEYS; i++)
			if (!strcmp(conf_keys[i].section, conf_sections[s]))
				names[s][n++] = conf_key_name(&conf_keys[i]);
		names[s][n] = NULL;
		schema[s] = (struct ini_schema){ conf_sections[s], names[s] };
	}
	return ini_check_schema(ini, schema, CONF_NSECTIONS, d);
}

bool conf_key_compat(struct conf *c, const char *old_default)
{
	if (access(c->proxy.private_key, F_OK) == 0 || errno != ENOENT ||
	    access(old_default, F_OK) < 0)
		return false;
	snprintf(c->proxy.private_key, sizeof(c->proxy.private_key), "%s", old_default);
	return true;
}

int conf_load(struct conf *c, const char *path, struct diag *d)
{
	struct diag local = { 0 };
	struct conf_ctx x = { c, path, &local, { false } };
	struct ini *ini;
	int line;

	conf_defaults(c);
	if (strlen(path) >= sizeof(c->path)) {
		diag_add(d, path, 0, "path too long");
		return -1;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	ini = ini_open(path, &local);
	if (!ini) {
		c->daemon.groups_dir[0] = '\0';	/* not known: see conf.h */
		ini_diag_move(d, &local, path);
		return -1;
	}
	/* A line iniparser could not read may be the groups_dir one. */
	bool unreadable_lines = diag_count(&local) > 0;

	conf_check_schema(ini, &local);
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const char *v = ini_get(ini, conf_keys[i].section, conf_key_name(&conf_keys[i]), &line);

		size_t before = diag_count(&local);

		if (v)
			conf_set(&x, &conf_keys[i], line, v);
		x.bad[i] = diag_count(&local) != before;
	}
	if (!ini_get(ini, "proxy", "private_key", &line))
		conf_key_compat(c, SYSCONFDIR "/mtugate/headend.key");
	if (ini_get(ini, "daemon", "groups_dir", &line)) {
		size_t before = diag_count(&local);

		conf_resolve_groups_dir(&x, line);
		if (conf_key_bad(&x, offsetof(struct conf, daemon.groups_dir)) ||
		    diag_count(&local) != before)
			c->daemon.groups_dir[0] = '\0';
	} else if (unreadable_lines) {
		c->daemon.groups_dir[0] = '\0';
	}
	conf_check_all(&x, ini);
	ini_close(ini);
	if (!diag_count(&local))
		return 0;
	ini_diag_move(d, &local, path);
	return -1;
}

bool conf_proxy_same(const struct conf *a, const struct conf *b)
{
	const struct conf_proxy *x = &a->proxy, *y = &b->proxy;

	return x->enable == y->enable && x->listen_port == y->listen_port &&
	       !strcmp(x->certificate, y->certificate) && !strcmp(x->private_key, y->private_key) &&
	       !strcmp(x->upstream_ca, y->upstream_ca) &&
	       !strcmp(x->upstream_name, y->upstream_name) &&
	       x->insecure_upstream == y->insecure_upstream &&
	       x->upstream_resume == y->upstream_resume && x->max_sessions == y->max_sessions &&
	       x->handshake_timeout == y->handshake_timeout &&
	       x->idle_timeout == y->idle_timeout && x->route_table == y->route_table &&
	       x->login_max == y->login_max && x->login_per_source == y->login_per_source &&
	       x->source_prefix4 == y->source_prefix4 && x->source_prefix6 == y->source_prefix6 &&
	       x->login_timeout == y->login_timeout && x->workers == y->workers;
}
