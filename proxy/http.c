/* HTTP/1.1 framer and group-name sniffer for the authentication exchange. */
#include "proxy/http.h"

#include <string.h>

enum {
	ST_START, ST_NAME, ST_VALUE, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_EXT,
	ST_CHUNK_DATA, ST_CHUNK_END, ST_EOF_BODY, ST_DONE,
};

/* Header names the framer acts on (bits of f->match). */
static const char *const framer_names[] = { "content-length", "transfer-encoding" };
#define M_CL 1u
#define M_TE 2u

#define MAX_LENGTH ((uint64_t)1 << 40)

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

const char *http_res_str(enum http_res r)
{
	switch (r) {
	case HTTP_MORE: return "incomplete";
	case HTTP_DONE: return "complete";
	case HTTP_E_LINE: return "line longer than 256 KiB";
	case HTTP_E_HEAD: return "header or trailer section larger than 2 MiB";
	case HTTP_E_SYNTAX: return "malformed message";
	case HTTP_E_LENGTH: return "bad Content-Length";
	case HTTP_E_CHUNK: return "bad chunked encoding";
	case HTTP_E_UNSUPPORTED: return "unsupported Transfer-Encoding";
	case HTTP_E_EOF: return "connection closed inside a message";
	}
	return "?";
}

void http_framer_init(struct http_framer *f, enum http_kind kind, struct http_capture *capture)
{
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->capture = capture;
	f->state = ST_START;
	f->match = M_CL | M_TE;
	if (capture) {
		capture->len = 0;
		capture->head_len = 0;
		capture->head_cut = false;
		capture->truncated = false;
	}
}

/* One byte of the head: whole lines only, up to HTTP_CAPTURE_HEAD(). The
 * bytes of the current line before c are the last line_len captured. */
static void capture_head(struct http_framer *f, uint8_t c)
{
	struct http_capture *k = f->capture;

	if (!k || k->head_cut)
		return;
	if (k->len + 1 > HTTP_CAPTURE_HEAD(k->cap)) {
		k->len = k->len > f->line_len ? k->len - f->line_len : 0;
		k->head_cut = true;
		return;
	}
	k->buf[k->len++] = c;
}

static void capture_add(struct http_framer *f, const uint8_t *p, size_t n)
{
	struct http_capture *c = f->capture;

	if (!c || c->truncated || n == 0)
		return;
	if (n > c->cap - c->len) {
		n = c->cap - c->len;
		c->truncated = true;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

/* The start line, from its first bytes and its last: method or status. */
static enum http_res start_line(struct http_framer *f)
{
	size_t n = f->start_len < sizeof(f->start) ? f->start_len : sizeof(f->start);
	const char *s = f->start;
	size_t tl = f->start_len < sizeof(f->tail) ? f->start_len : sizeof(f->tail);
	const char *tail = f->tail + sizeof(f->tail) - tl;

	if (f->kind != HTTP_REQUEST) {
		if (n < 12 || memcmp(s, "HTTP/1.", 7) || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
			return HTTP_E_SYNTAX;
		for (int i = 9; i < 12; i++)
			if (s[i] < '0' || s[i] > '9')
				return HTTP_E_SYNTAX;
		if (f->start_len > 12 && s[12] != ' ')
			return HTTP_E_SYNTAX;
		f->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
		return f->status >= 100 ? HTTP_MORE : HTTP_E_SYNTAX;
	}
	size_t m = 0;
	while (m < n && http_is_tchar((uint8_t)s[m]))
		m++;
	if (m == 0 || m + 1 >= n || s[m] != ' ' || s[m + 1] == ' ')
		return HTTP_E_SYNTAX;
	if (tl < 9 || (memcmp(tail + tl - 9, " HTTP/1.1", 9) && memcmp(tail + tl - 9, " HTTP/1.0", 9)))
		return HTTP_E_SYNTAX;
	if (f->start_len < m + 1 + 1 + 9)
		return HTTP_E_SYNTAX;
	if (m < sizeof(f->method)) {
		memcpy(f->method, s, m);
		f->method[m] = 0;
	}
	static const char tunnel[] = "/CSCOSSLC/tunnel";
	size_t t = sizeof(tunnel) - 1;
	f->connect = strcmp(f->method, "CONNECT") == 0 && f->start_len == m + 1 + t + 9 &&
		     n >= m + 1 + t && memcmp(s + m + 1, tunnel, t) == 0;
	return HTTP_MORE;
}

/* The empty line: what delimits the body. */
static enum http_res head_done(struct http_framer *f)
{
	if (f->capture)
		f->capture->head_len = f->capture->len;
	if (f->chunked && f->has_length)
		return HTTP_E_LENGTH;
	if (f->kind != HTTP_REQUEST && f->status < 200 && f->status != 101) {
		/* Interim (RFC 9110 15.2): the final response is still to come. */
		enum http_kind kind = f->kind;
		struct http_capture *cap = f->capture;
		unsigned interim = f->interim + 1;

		http_framer_init(f, kind, cap);
		f->interim = interim;
		return HTTP_MORE;
	}
	if (f->kind != HTTP_REQUEST) {
		bool nobody = f->status < 200 || f->status == 204 || f->status == 304 ||
			      f->kind == HTTP_RESPONSE_NOBODY;
		if (f->kind == HTTP_RESPONSE_CONNECT && f->status / 100 == 2) {
			f->tunnel = true;
			nobody = true;
		}
		if (nobody) {
			f->state = ST_DONE;
			return HTTP_DONE;
		}
		if (!f->chunked && !f->has_length) {
			f->until_eof = true;
			f->state = ST_EOF_BODY;
			return HTTP_MORE;
		}
	}
	if (f->chunked) {
		f->state = ST_CHUNK_SIZE;
		return HTTP_MORE;
	}
	if (f->has_length && f->content_length) {
		f->left = f->content_length;
		f->state = ST_BODY;
		return HTTP_MORE;
	}
	f->state = ST_DONE;
	return HTTP_DONE;
}

/* A header (or trailer) line ended. */
static enum http_res header_done(struct http_framer *f)
{
	if (f->in_trailer)
		return HTTP_MORE;
	if (f->match & M_CL) {
		if (!f->value_digit)
			return HTTP_E_LENGTH;
		/* Repeated Content-Length must agree (RFC 9110 8.6). */
		if (f->has_length && f->content_length != f->value_num)
			return HTTP_E_LENGTH;
		f->has_length = true;
		f->content_length = f->value_num;
	} else if (f->match & M_TE) {
		size_t n = f->value_len;
		while (n && (f->te[n - 1] == ' ' || f->te[n - 1] == '\t'))
			n--;
		/* Only one plain "chunked": anything else is a smuggling vector. */
		if (f->te_seen || n != 7 || memcmp(f->te, "chunked", 7))
			return HTTP_E_UNSUPPORTED;
		f->te_seen = true;
		f->chunked = true;
	}
	return HTTP_MORE;
}

/* The end of a line in any line-oriented state. */
static enum http_res line_done(struct http_framer *f)
{
	enum http_res r;

	switch (f->state) {
	case ST_START:
		if (f->start_len == 0)
			return HTTP_MORE;	/* empty lines before a message are ignored */
		r = start_line(f);
		f->state = ST_NAME;
		return r;
	case ST_NAME:
		if (f->name_len != 0)
			return HTTP_E_SYNTAX;	/* a name without ':' */
		if (f->in_trailer) {
			f->state = ST_DONE;
			return HTTP_DONE;
		}
		return head_done(f);
	case ST_VALUE:
		r = header_done(f);
		f->state = ST_NAME;
		return r;
	case ST_CHUNK_SIZE:
		if (!f->value_digit)
			return HTTP_E_CHUNK;
		/* fall through */
	case ST_CHUNK_EXT:
		if (f->left == 0) {
			f->in_trailer = true;
			f->state = ST_NAME;
		} else {
			f->state = ST_CHUNK_DATA;
		}
		return HTTP_MORE;
	case ST_CHUNK_END:
		if (f->line_len != (f->cr ? 2u : 1u))
			return HTTP_E_CHUNK;
		f->state = ST_CHUNK_SIZE;
		return HTTP_MORE;
	}
	return HTTP_E_SYNTAX;
}

static enum http_res line_byte(struct http_framer *f, uint8_t c)
{
	bool head = f->state == ST_START || ((f->state == ST_NAME || f->state == ST_VALUE) && !f->in_trailer);

	if (head && ++f->head_len > HTTP_MAX_HEAD)
		return HTTP_E_HEAD;
	if (!head && f->in_trailer && ++f->trailer_len > HTTP_MAX_HEAD)
		return HTTP_E_HEAD;
	if (++f->line_len > HTTP_MAX_LINE)
		return HTTP_E_LINE;
	if (f->cr) {
		if (c != '\n')
			return HTTP_E_SYNTAX;
	} else if (c == '\r') {
		f->cr = true;
		return HTTP_MORE;
	}
	if (c == '\n') {
		enum http_res r = line_done(f);

		f->cr = false;
		f->line_len = 0;
		f->name_len = 0;
		f->value_len = 0;
		f->match = M_CL | M_TE;
		f->value_end = f->value_digit = f->hex_end = false;
		f->value_num = 0;
		return r;
	}
	if (c == 0)
		return HTTP_E_SYNTAX;

	switch (f->state) {
	case ST_START:
		if (f->start_len < sizeof(f->start))
			f->start[f->start_len] = (char)c;
		memmove(f->tail, f->tail + 1, sizeof(f->tail) - 1);
		f->tail[sizeof(f->tail) - 1] = (char)c;
		f->start_len++;
		return HTTP_MORE;
	case ST_NAME:
		if (c == ':') {
			if (f->name_len == 0)
				return HTTP_E_SYNTAX;
			for (unsigned i = 0; i < 2; i++)
				if (strlen(framer_names[i]) != f->name_len)
					f->match &= ~(1u << i);
			f->state = ST_VALUE;
			return HTTP_MORE;
		}
		if (!http_is_tchar(c))
			return HTTP_E_SYNTAX;	/* also obs-fold and space before ':' */
		for (unsigned i = 0; i < 2; i++)
			if (f->name_len >= strlen(framer_names[i]) ||
			    framer_names[i][f->name_len] != lower(c))
				f->match &= ~(1u << i);
		f->name_len++;
		return HTTP_MORE;
	case ST_VALUE:
		if (!http_is_vbyte(c))
			return HTTP_E_SYNTAX;
		if (f->match & M_CL) {
			if (c == ' ' || c == '\t') {
				f->value_end = f->value_digit;
			} else if (c < '0' || c > '9' || f->value_end) {
				return HTTP_E_LENGTH;
			} else {
				f->value_digit = true;
				f->value_num = f->value_num * 10 + (uint64_t)(c - '0');
				if (f->value_num > MAX_LENGTH)
					return HTTP_E_LENGTH;
			}
		} else if (f->match & M_TE) {
			if (f->value_len == 0 && (c == ' ' || c == '\t'))
				return HTTP_MORE;
			if (f->value_len >= sizeof(f->te))
				return HTTP_E_UNSUPPORTED;
			f->te[f->value_len++] = (char)lower(c);
		}
		return HTTP_MORE;
	case ST_CHUNK_SIZE:
		if (hexval(c) >= 0 && !f->hex_end) {
			f->value_digit = true;
			f->left = f->left * 16 + (uint64_t)hexval(c);
			return f->left > MAX_LENGTH ? HTTP_E_CHUNK : HTTP_MORE;
		}
		if (!f->value_digit || !(c == ';' || c == ' ' || c == '\t'))
			return HTTP_E_CHUNK;
		f->hex_end = true;
		if (c == ';')
			f->state = ST_CHUNK_EXT;
		return HTTP_MORE;
	case ST_CHUNK_EXT:
		return http_is_vbyte(c) ? HTTP_MORE : HTTP_E_CHUNK;
	case ST_CHUNK_END:
		return HTTP_E_CHUNK;
	}
	return HTTP_E_SYNTAX;
}

enum http_res http_feed(struct http_framer *f, const uint8_t *data, size_t len, size_t *used)
{
	size_t i = 0;
	enum http_res r = HTTP_MORE;

	if (f->state == ST_DONE) {
		*used = 0;
		return HTTP_DONE;
	}
	while (i < len) {
		size_t n;

		switch (f->state) {
		case ST_BODY:
		case ST_CHUNK_DATA:
		case ST_EOF_BODY:
			n = len - i;
			if (f->state != ST_EOF_BODY && n > f->left)
				n = (size_t)f->left;
			capture_add(f, data + i, n);
			f->body_len += n;
			i += n;
			if (f->state == ST_EOF_BODY)
				break;
			f->left -= n;
			if (f->left == 0) {
				if (f->state == ST_BODY) {
					f->state = ST_DONE;
					*used = i;
					return HTTP_DONE;
				}
				f->state = ST_CHUNK_END;
			}
			break;
		default:
			if (f->state == ST_CHUNK_SIZE && f->line_len == 0)
				f->left = 0;
			{
				bool head = f->state == ST_START || f->state == ST_NAME || f->state == ST_VALUE;
				bool trailer = f->in_trailer;
				/* Empty lines before a request line are skipped (RFC 9112 2.2). */
				bool lead = f->state == ST_START && f->start_len == 0 &&
					    (data[i] == '\r' || data[i] == '\n');

				if (head && !trailer && !lead)
					capture_head(f, data[i]);
				r = line_byte(f, data[i]);
			}
			if (r >= HTTP_E_LINE) {
				*used = i;
				return r;
			}
			i++;
			if (r == HTTP_DONE) {
				*used = i;
				return HTTP_DONE;
			}
		}
	}
	*used = i;
	return HTTP_MORE;
}

enum http_res http_framer_eof(struct http_framer *f)
{
	if (f->state == ST_EOF_BODY || f->state == ST_DONE) {
		f->state = ST_DONE;
		return HTTP_DONE;
	}
	if (f->state == ST_START && f->start_len == 0 && f->line_len == 0)
		return HTTP_MORE;
	return HTTP_E_EOF;
}

enum http_res http_find_line(const uint8_t *buf, size_t len, size_t *end, size_t *next)
{
	size_t lim = len < HTTP_MAX_LINE ? len : HTTP_MAX_LINE;

	for (size_t i = 0; i < lim; i++) {
		if (buf[i] == 0)
			return HTTP_E_SYNTAX;
		if (buf[i] == '\n') {
			*end = i;
			*next = i + 1;
			return HTTP_DONE;
		}
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return HTTP_MORE;
			if (buf[i + 1] != '\n')
				return HTTP_E_SYNTAX;
			if (i + 2 > HTTP_MAX_LINE)
				return HTTP_E_LINE;
			*end = i;
			*next = i + 2;
			return HTTP_DONE;
		}
	}
	return len >= HTTP_MAX_LINE ? HTTP_E_LINE : HTTP_MORE;
}

bool http_split_header(const uint8_t *line, size_t n, size_t *name_len, size_t *voff, size_t *vlen)
{
	size_t i = 0, e;

	while (i < n && http_is_tchar(line[i]))
		i++;
	if (i == 0 || i == n || line[i] != ':')
		return false;
	*name_len = i++;
	for (e = i; e < n; e++)
		if (!http_is_vbyte(line[e]))
			return false;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while (n > i && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	*voff = i;
	*vlen = n - i;
	return true;
}

bool http_name_is(const uint8_t *name, size_t n, const char *lower_name)
{
	if (strlen(lower_name) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(name[i]) != lower_name[i])
			return false;
	return true;
}

/* Copy a candidate name, refusing what no group can be called. */
static void group_set(char *dst, const char *src, size_t n)
{
	while (n && (*src == ' ' || *src == '\t' || *src == '\r' || *src == '\n')) {
		src++;
		n--;
	}
	while (n && (src[n - 1] == ' ' || src[n - 1] == '\t' || src[n - 1] == '\r' || src[n - 1] == '\n'))
		n--;
	if (n == 0 || n >= HTTP_GROUP_MAX)
		return;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)src[i] < 0x20 || src[i] == 0x7f)
			return;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* XML character data: the five predefined entities and numeric ASCII ones. */
static size_t xml_unescape(const uint8_t *s, size_t n, char *out, size_t cap)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t o = 0;

	for (size_t i = 0; i < n && o < cap; ) {
		char c = (char)s[i];
		size_t adv = 1;

		if (c == '&') {
			size_t k;
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t l = strlen(ents[k].ent);
				if (n - i >= l && memcmp(s + i, ents[k].ent, l) == 0) {
					c = ents[k].c;
					adv = l;
					break;
				}
			}
			if (k == sizeof(ents) / sizeof(ents[0]) && n - i > 3 && s[i + 1] == '#') {
				unsigned v = 0;
				size_t j = i + 2;
				while (j < n && j < i + 6 && s[j] >= '0' && s[j] <= '9')
					v = v * 10 + (s[j++] - '0');
				if (j < n && s[j] == ';' && v > 0 && v < 0x80) {
					c = (char)v;
					adv = j + 1 - i;
				}
			}
		}
		out[o++] = c;
		i += adv;
	}
	return o;
}

/* The text of the last <tag>...</tag> element in an XML body. */
static void xml_element(const uint8_t *b, size_t n, const char *tag, char *dst)
{
	size_t tl = strlen(tag);

	for (size_t i = 0; i + tl + 2 <= n; i++) {
		if (b[i] != '<' || memcmp(b + i + 1, tag, tl))
			continue;
		size_t j = i + 1 + tl;
		if (j >= n || (b[j] != '>' && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n'))
			continue;
		while (j < n && b[j] != '>')
			j++;
		if (j >= n || b[j - 1] == '/')
			continue;
		size_t k = ++j;
		while (k < n && b[k] != '<')
			k++;
		if (k + 2 + tl > n || b[k + 1] != '/' || memcmp(b + k + 2, tag, tl))
			continue;
		char tmp[HTTP_GROUP_MAX * 2];
		size_t m = xml_unescape(b + j, k - j, tmp, sizeof(tmp));
		if (m < sizeof(tmp))
			group_set(dst, tmp, m);
		i = k;
	}
}

/* A group-url: the single path segment of a URL ("/NAME", "https://h/NAME/"). */
static void url_group(const uint8_t *u, size_t n, char *dst)
{
	size_t i = 0;
	char tmp[HTTP_GROUP_MAX * 3];
	size_t o = 0;

	for (size_t k = 0; k + 2 < n; k++) {
		if (u[k] == '/' && (k == 0 || u[k - 1] != ':'))
			break;
		if (u[k] == ':' && u[k + 1] == '/' && u[k + 2] == '/') {
			i = k + 3;
			while (i < n && u[i] != '/')
				i++;
			break;
		}
	}
	if (i >= n || u[i] != '/')
		return;
	i++;
	size_t e = i;
	while (e < n && u[e] != '?' && u[e] != '#')
		e++;
	if (e > i && u[e - 1] == '/')
		e--;
	for (size_t k = i; k < e; k++) {
		int c = u[k];
		if (c == '/' || o >= sizeof(tmp))
			return;
		if (c == '%' && k + 2 < e && hexval(u[k + 1]) >= 0 && hexval(u[k + 2]) >= 0) {
			c = hexval(u[k + 1]) * 16 + hexval(u[k + 2]);
			k += 2;
		}
		tmp[o++] = (char)c;
	}
	group_set(dst, tmp, o);
}

/* Legacy form posts (no XML auth): key=VALUE among the fields
 * (group_list=NAME, username=NAME). */
static void form_field(const uint8_t *b, size_t n, const char *key, char *dst)
{
	const size_t kl = strlen(key);
	char tmp[HTTP_GROUP_MAX];
	size_t o = 0;

	for (size_t i = 0; i + kl <= n; i++) {
		if ((i > 0 && b[i - 1] != '&') || memcmp(b + i, key, kl))
			continue;
		for (size_t k = i + kl; k < n && b[k] != '&' && b[k] != '\r' && b[k] != '\n'; k++) {
			int c = b[k];
			if (o >= sizeof(tmp))
				return;
			if (c == '+')
				c = ' ';
			else if (c == '%' && k + 2 < n && hexval(b[k + 1]) >= 0 && hexval(b[k + 2]) >= 0) {
				c = hexval(b[k + 1]) * 16 + hexval(b[k + 2]);
				k += 2;
			}
			tmp[o++] = (char)c;
		}
		group_set(dst, tmp, o);
		return;
	}
}

void http_extract_groups(const uint8_t *head, size_t head_len, const uint8_t *body,
			 size_t body_len, struct http_groups *g)
{
	size_t end, next;

	memset(g, 0, sizeof(*g));
	/* The group-url shows as the path of a POST request line. */
	if (http_find_line(head, head_len, &end, &next) == HTTP_DONE && end > 5 &&
	    memcmp(head, "POST ", 5) == 0) {
		size_t t = 5, te = 5;
		while (te < end && head[te] != ' ')
			te++;
		url_group(head + t, te - t, g->url);
	}
	xml_element(body, body_len, "group-select", g->select);
	xml_element(body, body_len, "tunnel-group", g->tunnel);
	xml_element(body, body_len, "username", g->user);
	if (!g->select[0])
		form_field(body, body_len, "group_list=", g->select);
	if (!g->user[0])
		form_field(body, body_len, "username=", g->user);
	if (!g->url[0]) {
		char access[512];

		/* openconnect's init names the URL it was given in <group-access>. */
		for (size_t i = 0; i + 14 <= body_len; i++) {
			if (memcmp(body + i, "<group-access>", 14))
				continue;
			size_t j = i + 14, k = j;
			while (k < body_len && body[k] != '<' && k - j < sizeof(access))
				k++;
			if (k < body_len && body[k] == '<') {
				size_t m = xml_unescape(body + j, k - j, access, sizeof(access));
				url_group((const uint8_t *)access, m, g->url);
			}
			break;
		}
	}
}
