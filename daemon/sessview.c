#include "daemon/sessview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"

static int sessview_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decoding, as session_format() encodes the user name. */
static int sessview_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n || sessview_hex(s[i + 1]) < 0 || sessview_hex(s[i + 2]) < 0)
				return -1;
			c = sessview_hex(s[i + 1]) * 16 + sessview_hex(s[i + 2]);
			i += 2;
		}
		if (!c || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

static int sessview_copy(const char *s, size_t n, char *out, size_t cap)
{
	if (n >= cap)
		return -1;
	memcpy(out, s, n);
	out[n] = 0;
	return 0;
}

static int sessview_u64(const char *s, size_t n, uint64_t *out)
{
	char tmp[24], *end;

	if (!n || n >= sizeof(tmp) || s[0] < '0' || s[0] > '9')
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	*out = strtoull(tmp, &end, 10);
	return *end ? -1 : 0;
}

static int sessview_uint(const char *s, size_t n, unsigned *out)
{
	uint64_t u;

	if (sessview_u64(s, n, &u) < 0 || u > 0xffffffffu)
		return -1;
	*out = (unsigned)u;
	return 0;
}

/* "A/B": two numbers. */
static int sessview_pair(const char *s, size_t n, unsigned *a, unsigned *b)
{
	const char *slash = memchr(s, '/', n);

	if (!slash)
		return -1;
	return sessview_uint(s, (size_t)(slash - s), a) < 0 ||
	       sessview_uint(slash + 1, n - (size_t)(slash - s) - 1, b) < 0 ? -1 : 0;
}

static int sessview_field(struct sessview *v, const char *k, size_t kl, const char *s, size_t n)
{
#define SV_IS(name) (kl == sizeof(name) - 1 && memcmp(k, name, kl) == 0)
	uint64_t u;

	if (SV_IS("user")) {
		v->has_user = n > 0;
		return sessview_decode(s, n, v->user, sizeof(v->user));
	}
	if (SV_IS("group"))
		return sessview_copy(s, n, v->group, sizeof(v->group));
	if (SV_IS("client"))
		return sessview_copy(s, n, v->client, sizeof(v->client));
	if (SV_IS("dtls"))
		return sessview_copy(s, n, v->dtls, sizeof(v->dtls));
	if (SV_IS("addresses")) {
		const char *comma = memchr(s, ',', n);

		if (n == 1 && s[0] == '-')
			return 0;
		if (!comma)
			return sessview_copy(s, n, v->addr[0], sizeof(v->addr[0]));
		return sessview_copy(s, (size_t)(comma - s), v->addr[0], sizeof(v->addr[0])) < 0 ||
		       sessview_copy(comma + 1, n - (size_t)(comma - s) - 1, v->addr[1],
				     sizeof(v->addr[1])) < 0 ? -1 : 0;
	}
	if (SV_IS("since")) {
		if (sessview_u64(s, n, &u) < 0)
			return -1;
		v->since = (int64_t)u;
		return 0;
	}
	if (SV_IS("mtu_offered"))
		return sessview_pair(s, n, &v->offered_cstp, &v->offered_dtls);
	if (SV_IS("mtu_sent"))
		return sessview_pair(s, n, &v->sent_cstp, &v->sent_dtls);
	if (SV_IS("reconnects"))
		return sessview_uint(s, n, &v->reconnects);
	if (SV_IS("bytes_in"))
		return sessview_u64(s, n, &v->bytes_in);
	if (SV_IS("bytes_out"))
		return sessview_u64(s, n, &v->bytes_out);
	if (SV_IS("worker"))
		return sessview_uint(s, n, &v->worker);
	return 0;
#undef SV_IS
}

int sessview_parse(const char *val, struct sessview *v)
{
	const char *p = val;

	memset(v, 0, sizeof(*v));
	while (*p) {
		const char *end = strchr(p, ' '), *eq;
		size_t n;

		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n && (!(eq = memchr(p, '=', n)) ||
			  sessview_field(v, p, (size_t)(eq - p), eq + 1, n - (size_t)(eq - p) - 1) < 0))
			return -1;
		p = *end ? end + 1 : end;
	}
	return v->group[0] && v->client[0] && v->dtls[0] ? 0 : -1;
}

/* A user name for a terminal: no control characters. */
static void sessview_clean(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	for (; *s && o + 1 < cap; s++)
		out[o++] = (unsigned char)*s < 0x20 || *s == 0x7f || *s == ' ' ? '?' : *s;
	out[o] = 0;
}

static void sessview_mtus(unsigned a, unsigned b, char *out, size_t cap)
{
	char x[12] = "-", y[12] = "-";

	if (a)
		snprintf(x, sizeof(x), "%u", a);
	if (b)
		snprintf(y, sizeof(y), "%u", b);
	snprintf(out, cap, "%s/%s", x, y);
}

enum { SV_NCOLS = 11, SV_CELL = 128 };

static const struct {
	const char *head;
	bool right;		/* numbers: right-aligned */
} sv_cols[SV_NCOLS] = {
	{ "USER", false }, { "GROUP", false }, { "CLIENT", false }, { "ADDRESSES", false },
	{ "UP", true }, { "MTU_OFFERED", true }, { "MTU_SENT", true }, { "DTLS", false },
	{ "RECONNECTS", true }, { "BYTES_IN", true }, { "BYTES_OUT", true },
};

static void sessview_cells(const struct sessview *v, int64_t now, char c[SV_NCOLS][SV_CELL])
{
	int64_t d = now > v->since && v->since ? now - v->since : 0;

	sessview_clean(v->has_user ? v->user : "-", c[0], SV_CELL);
	snprintf(c[1], SV_CELL, "%s", v->group);
	snprintf(c[2], SV_CELL, "%s", v->client);
	snprintf(c[3], SV_CELL, "%s%s%s", v->addr[0][0] ? v->addr[0] : "-", v->addr[1][0] ? "," : "",
		 v->addr[1]);
	if (d >= 3600)
		snprintf(c[4], SV_CELL, "%lldh%02lldm", (long long)(d / 3600), (long long)(d / 60 % 60));
	else
		snprintf(c[4], SV_CELL, "%lldm%02llds", (long long)(d / 60), (long long)(d % 60));
	sessview_mtus(v->offered_cstp, v->offered_dtls, c[5], SV_CELL);
	sessview_mtus(v->sent_cstp, v->sent_dtls, c[6], SV_CELL);
	snprintf(c[7], SV_CELL, "%s", v->dtls);
	snprintf(c[8], SV_CELL, "%u", v->reconnects);
	snprintf(c[9], SV_CELL, "%llu", (unsigned long long)v->bytes_in);
	snprintf(c[10], SV_CELL, "%llu", (unsigned long long)v->bytes_out);
}

static void sessview_line(char c[SV_NCOLS][SV_CELL], const int *w, struct strbuf *out)
{
	for (int k = 0; k < SV_NCOLS; k++)
		strbuf_printf(out, sv_cols[k].right ? "%s%*s" : "%s%-*s", k ? " " : "", w[k], c[k]);
	strbuf_printf(out, "\n");
}

void sessview_table(const struct sessview *v, size_t n, int64_t now, struct strbuf *out)
{
	char c[SV_NCOLS][SV_CELL];
	int w[SV_NCOLS];

	for (int k = 0; k < SV_NCOLS; k++)
		w[k] = (int)strlen(sv_cols[k].head);
	for (size_t i = 0; i < n; i++) {
		sessview_cells(&v[i], now, c);
		for (int k = 0; k < SV_NCOLS; k++)
			if ((int)strlen(c[k]) > w[k])
				w[k] = (int)strlen(c[k]);
	}
	for (int k = 0; k < SV_NCOLS; k++)
		snprintf(c[k], SV_CELL, "%s", sv_cols[k].head);
	sessview_line(c, w, out);
	for (size_t i = 0; i < n; i++) {
		sessview_cells(&v[i], now, c);
		sessview_line(c, w, out);
	}
}

/* Whether s is well-formed UTF-8 (JSON text must be). */
static bool sessview_utf8(const unsigned char *s)
{
	while (*s) {
		int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2 :
			(*s & 0xf8) == 0xf0 ? 3 : -1;

		if (n < 0)
			return false;
		for (s++; n > 0; n--, s++)
			if ((*s & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* A JSON string; a name that is no UTF-8 keeps its bytes as U+0080..U+00FF. */
static void sessview_json_str(const char *s, struct strbuf *out)
{
	bool utf8 = sessview_utf8((const unsigned char *)s);

	strbuf_append(out, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			strbuf_printf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			strbuf_printf(out, "\\u%04x", c);
		else
			strbuf_append(out, s, 1);
	}
	strbuf_append(out, "\"", 1);
}

static void sessview_json_mtu(const char *key, unsigned cstp, unsigned dtls, struct strbuf *out)
{
	strbuf_printf(out, ", \"%s\": {\"cstp\": ", key);
	if (cstp)
		strbuf_printf(out, "%u", cstp);
	else
		strbuf_printf(out, "null");
	strbuf_printf(out, ", \"dtls\": ");
	if (dtls)
		strbuf_printf(out, "%u}", dtls);
	else
		strbuf_printf(out, "null}");
}

void sessview_json(const struct sessview *v, struct strbuf *out)
{
	strbuf_printf(out, "{\"user\": ");
	if (v->has_user)
		sessview_json_str(v->user, out);
	else
		strbuf_printf(out, "null");
	strbuf_printf(out, ", \"group\": ");
	if (strcmp(v->group, "-"))
		sessview_json_str(v->group, out);
	else
		strbuf_printf(out, "null");
	strbuf_printf(out, ", \"client\": ");
	sessview_json_str(v->client, out);
	strbuf_printf(out, ", \"addresses\": [");
	for (int i = 0; i < 2; i++)
		if (v->addr[i][0]) {
			if (i && v->addr[0][0])
				strbuf_printf(out, ", ");
			sessview_json_str(v->addr[i], out);
		}
	strbuf_printf(out, "], \"since\": %lld", (long long)v->since);
	sessview_json_mtu("mtu_offered", v->offered_cstp, v->offered_dtls, out);
	sessview_json_mtu("mtu_sent", v->sent_cstp, v->sent_dtls, out);
	strbuf_printf(out, ", \"dtls\": ");
	sessview_json_str(v->dtls, out);
	strbuf_printf(out, ", \"reconnects\": %u, \"bytes_in\": %llu, \"bytes_out\": %llu,"
		      " \"worker\": %u}", v->reconnects, (unsigned long long)v->bytes_in,
		      (unsigned long long)v->bytes_out, v->worker);
}
