#include "proxy/cookie.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/strbuf.h"
#include "proxy/http.h"

#define COOKIE_MAGIC "mtugate-cookies 1"

static bool cookie_ws(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* One "name=value" pair in [*i, n) up to ';': trimmed, *i past the ';'. */
static bool cookie_pair(const uint8_t *v, size_t n, size_t *i, size_t *noff, size_t *nlen,
			size_t *voff, size_t *vlen)
{
	size_t s = *i, e, eq;

	if (s >= n)
		return false;
	for (e = s; e < n && v[e] != ';'; e++)
		;
	*i = e < n ? e + 1 : n;
	while (s < e && cookie_ws(v[s]))
		s++;
	while (e > s && cookie_ws(v[e - 1]))
		e--;
	for (eq = s; eq < e && v[eq] != '='; eq++)
		;
	*noff = s;
	*nlen = eq;
	while (*nlen > s && cookie_ws(v[*nlen - 1]))
		(*nlen)--;
	*nlen -= s;
	if (eq == e) {
		*voff = e;
		*vlen = 0;
		return true;
	}
	for (eq++; eq < e && cookie_ws(v[eq]); eq++)
		;
	*voff = eq;
	*vlen = e - eq;
	return true;
}

static bool cookie_named(const uint8_t *v, size_t off, size_t len, const char *name, bool icase)
{
	size_t l = strlen(name);

	if (len != l)
		return false;
	return icase ? !strncasecmp((const char *)v + off, name, l) : !memcmp(v + off, name, l);
}

/* A value worth binding: visible ASCII, no quotes or commas (RFC 6265
 * cookie-octet, which tokens of ocserv and ASA are). */
static bool cookie_token_ok(const uint8_t *v, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7f || v[i] == '"' || v[i] == ',' || v[i] == '\\')
			return false;
	return true;
}

/* "0", "000" or negative. */
static bool cookie_age_none(const uint8_t *v, size_t len)
{
	size_t i;

	if (len && v[0] == '-')
		return true;
	for (i = 0; i < len && v[i] == '0'; i++)
		;
	return len && i == len;
}

bool cookie_from_set_cookie(const uint8_t *val, size_t n, size_t *off, size_t *len)
{
	size_t i = 0, no, nl, vo, vl;

	if (!cookie_pair(val, n, &i, &no, &nl, &vo, &vl) || !cookie_named(val, no, nl, COOKIE_NAME, false) ||
	    !cookie_token_ok(val + vo, vl))
		return false;
	*off = vo;
	*len = vl;
	/* Max-Age=0 (or less) deletes it: a logout's answer. */
	while (cookie_pair(val, n, &i, &no, &nl, &vo, &vl))
		if (cookie_named(val, no, nl, "max-age", true) && cookie_age_none(val + vo, vl))
			return false;
	return true;
}

bool cookie_from_cookie(const uint8_t *val, size_t n, size_t *off, size_t *len)
{
	size_t i = 0, no, nl, vo, vl;

	while (cookie_pair(val, n, &i, &no, &nl, &vo, &vl))
		if (cookie_named(val, no, nl, COOKIE_NAME, false) && cookie_token_ok(val + vo, vl)) {
			*off = vo;
			*len = vl;
			return true;
		}
	return false;
}

/* Each header of a head in turn: name and value of the next one after *pos,
 * the start line skipped; false at the blank line, the end or a bad line. */
static bool cookie_next_header(const uint8_t *h, size_t n, size_t *pos, size_t *name, size_t *nlen,
			       size_t *voff, size_t *vlen)
{
	size_t end, next;

	if (*pos == 0) {
		if (http_find_line(h, n, &end, &next) != HTTP_DONE)
			return false;
		*pos = next;
	}
	if (*pos >= n || http_find_line(h + *pos, n - *pos, &end, &next) != HTTP_DONE || end == 0 ||
	    !http_split_header(h + *pos, end, nlen, voff, vlen))
		return false;
	*name = *pos;
	*voff += *pos;
	*pos += next;
	return true;
}

bool cookie_in_response(const uint8_t *head, size_t n, size_t *off, size_t *len)
{
	size_t pos = 0, name, nlen, vo, vl, o, l;
	bool found = false;

	while (cookie_next_header(head, n, &pos, &name, &nlen, &vo, &vl))
		if (http_name_is(head + name, nlen, "set-cookie") &&
		    cookie_from_set_cookie(head + vo, vl, &o, &l)) {
			*off = vo + o;
			*len = l;
			found = true;
		}
	return found;
}

bool cookie_in_request(const uint8_t *head, size_t n, size_t *off, size_t *len)
{
	size_t pos = 0, name, nlen, vo, vl, o, l;

	while (cookie_next_header(head, n, &pos, &name, &nlen, &vo, &vl))
		if (http_name_is(head + name, nlen, "cookie") && cookie_from_cookie(head + vo, vl, &o, &l)) {
			*off = vo + o;
			*len = l;
			return true;
		}
	return false;
}

bool cookie_is_logout(const uint8_t *head, size_t n)
{
	size_t end, next, i, s;

	if (http_find_line(head, n, &end, &next) != HTTP_DONE)
		return false;
	for (s = 0; s < end && head[s] != ' '; s++)
		;
	if (s == end || (s == 7 && !memcmp(head, "CONNECT", 7)))
		return false;
	for (i = s + 1; i < end && head[i] != ' ' && head[i] != '?'; i++)
		if (end - i >= 6 && !strncasecmp((const char *)head + i, "logout", 6))
			return true;
	return false;
}

/* ---- the table: a few entries per user at most, searched linearly (a
 * CONNECT or a login, never a packet, looks one up) ---- */

struct cookie_table {
	struct cookie_entry *e;
	size_t n, max;
};

struct cookie_table *cookie_table_new(size_t max)
{
	struct cookie_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max ? max : 1;
	if (!(t->e = calloc(t->max, sizeof(*t->e)))) {
		free(t);
		return NULL;
	}
	return t;
}

void cookie_table_free(struct cookie_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t);
}

size_t cookie_count(const struct cookie_table *t)
{
	return t->n;
}

static struct cookie_entry *cookie_lookup(struct cookie_table *t, const uint8_t *hash)
{
	for (size_t i = 0; i < t->n; i++)
		if (!memcmp(t->e[i].hash, hash, COOKIE_HASH_LEN))
			return &t->e[i];
	return NULL;
}

static void cookie_drop(struct cookie_table *t, struct cookie_entry *e)
{
	*e = t->e[--t->n];
}

static bool cookie_live(const struct cookie_entry *e, time_t now)
{
	return e->tunnels || now < e->expires;
}

/* The entry to give up when full: the earliest expiry, tunnels last. */
static struct cookie_entry *cookie_victim(struct cookie_table *t)
{
	struct cookie_entry *v = &t->e[0];

	for (size_t i = 1; i < t->n; i++) {
		struct cookie_entry *e = &t->e[i];

		if ((!e->tunnels && v->tunnels) || (!e->tunnels == !v->tunnels && e->expires < v->expires))
			v = e;
	}
	return v;
}

void cookie_bind(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN], const char *group,
		 time_t now)
{
	struct cookie_entry *e = cookie_lookup(t, hash);
	unsigned tunnels = 0;

	if (e) {
		tunnels = e->tunnels;
	} else {
		cookie_expire(t, now);
		if (t->n == t->max)
			cookie_drop(t, cookie_victim(t));
		e = &t->e[t->n++];
	}
	*e = (struct cookie_entry){ .expires = now + COOKIE_TTL, .tunnels = tunnels };
	memcpy(e->hash, hash, COOKIE_HASH_LEN);
	snprintf(e->group, sizeof(e->group), "%s", group);
}

struct cookie_entry *cookie_find(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN],
				 time_t now)
{
	struct cookie_entry *e = cookie_lookup(t, hash);

	if (e && !cookie_live(e, now)) {
		cookie_drop(t, e);
		e = NULL;
	}
	return e;
}

void cookie_hold(struct cookie_entry *e)
{
	e->tunnels++;
}

void cookie_release(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN], time_t now)
{
	struct cookie_entry *e = cookie_lookup(t, hash);

	if (!e)
		return;
	if (e->tunnels)
		e->tunnels--;
	e->expires = now + COOKIE_TTL;
}

bool cookie_end(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN])
{
	struct cookie_entry *e = cookie_lookup(t, hash);

	if (e)
		cookie_drop(t, e);
	return e != NULL;
}

void cookie_apply(struct cookie_table *t, const struct cookie_event *ev, time_t now)
{
	struct cookie_entry *e = NULL;

	switch (ev->op) {
	case COOKIE_OP_BIND:
	case COOKIE_OP_TUNNEL:
		if (ev->op == COOKIE_OP_BIND || !(e = cookie_find(t, ev->hash, now)) ||
		    strcmp(e->group, ev->group)) {
			cookie_bind(t, ev->hash, ev->group, now);
			if (!(e = cookie_find(t, ev->hash, now)))
				return;
			snprintf(e->user, sizeof(e->user), "%s", ev->user);
		}
		if (ev->op == COOKIE_OP_BIND)
			return;
		if (!e->mtu) {
			e->mtu = ev->mtu;
			e->dtls_mtu = ev->dtls_mtu;
		} else {
			e->reconnects++;
		}
		/* Live elsewhere: the TTL runs from its start here. */
		e->expires = now + COOKIE_TTL;
		return;
	case COOKIE_OP_END:
		cookie_end(t, ev->hash);
		return;
	}
}

size_t cookie_expire(struct cookie_table *t, time_t now)
{
	size_t gone = 0;

	for (size_t i = 0; i < t->n;) {
		if (cookie_live(&t->e[i], now)) {
			i++;
			continue;
		}
		cookie_drop(t, &t->e[i]);
		gone++;
	}
	return gone;
}

/* ---- the state file's text ---- */

void cookie_format(const struct cookie_table *t, time_t now, struct strbuf *out)
{
	strbuf_printf(out, "%s\n", COOKIE_MAGIC);
	for (size_t i = 0; i < t->n; i++) {
		const struct cookie_entry *e = &t->e[i];
		char hex[2 * COOKIE_HASH_LEN + 1];

		if (!cookie_live(e, now))
			continue;
		for (size_t j = 0; j < COOKIE_HASH_LEN; j++)
			snprintf(hex + 2 * j, 3, "%02x", e->hash[j]);
		strbuf_printf(out, "%s %lld %u %u %s\n", hex,
			      (long long)(e->tunnels ? now + COOKIE_TTL : e->expires), e->mtu,
			      e->dtls_mtu, e->group);
	}
}

static int cookie_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A decimal number of at most 18 digits, then one space: its end, or NULL. */
static const char *cookie_num(const char *s, const char *end, long long *v)
{
	size_t d = 0;

	*v = 0;
	for (; s < end && *s >= '0' && *s <= '9' && d < 18; s++, d++)
		*v = *v * 10 + (*s - '0');
	return d && s < end && *s == ' ' ? s + 1 : NULL;
}

/* One entry line (no terminator) into e: false if anything is off. */
static bool cookie_parse_line(const char *s, const char *end, struct cookie_entry *e)
{
	long long exp, mtu, dmtu;
	size_t glen;

	*e = (struct cookie_entry){ 0 };
	if (end - s < 2 * COOKIE_HASH_LEN + 1)
		return false;
	for (size_t j = 0; j < COOKIE_HASH_LEN; j++) {
		int hi = cookie_hexval(s[2 * j]), lo = cookie_hexval(s[2 * j + 1]);

		if (hi < 0 || lo < 0)
			return false;
		e->hash[j] = (uint8_t)(hi << 4 | lo);
	}
	s += 2 * COOKIE_HASH_LEN;
	if (*s++ != ' ' || !(s = cookie_num(s, end, &exp)) || !(s = cookie_num(s, end, &mtu)) ||
	    !(s = cookie_num(s, end, &dmtu)) || mtu > 65535 || dmtu > 65535)
		return false;
	glen = (size_t)(end - s);
	if (!glen || glen >= COOKIE_GROUP_MAX)
		return false;
	for (size_t j = 0; j < glen; j++)
		if ((unsigned char)s[j] <= 0x20 || (unsigned char)s[j] >= 0x7f)
			return false;
	memcpy(e->group, s, glen);
	e->expires = (time_t)exp;
	e->mtu = (unsigned)mtu;
	e->dtls_mtu = (unsigned)dmtu;
	return true;
}

long cookie_parse(struct cookie_table *t, const char *text, size_t n, time_t now, size_t *bad)
{
	const char *p = text, *end = text + n, *nl;
	long loaded = 0;
	size_t ml = strlen(COOKIE_MAGIC);

	*bad = 0;
	if (n < ml + 1 || memcmp(text, COOKIE_MAGIC, ml) || text[ml] != '\n')
		return -1;
	for (p += ml + 1; p < end; p = nl + 1) {
		struct cookie_entry e, *have;

		if (!(nl = memchr(p, '\n', (size_t)(end - p))))
			nl = end;
		if (!cookie_parse_line(p, nl, &e)) {
			(*bad)++;
			continue;
		}
		if (e.expires <= now)
			continue;
		if (!(have = cookie_lookup(t, e.hash))) {
			if (t->n == t->max)
				cookie_drop(t, cookie_victim(t));
			have = &t->e[t->n++];
			loaded++;
		}
		*have = e;
	}
	return loaded;
}
