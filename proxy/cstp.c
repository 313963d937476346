/* CSTP CONNECT rewriting and record stream parsing. */
#include "proxy/cstp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proxy/http.h"

const char *cstp_res_str(enum cstp_res r)
{
	switch (r) {
	case CSTP_OK: return "connected";
	case CSTP_REFUSED: return "CONNECT refused by the headend";
	case CSTP_MORE: return "incomplete";
	case CSTP_E_LINE: return "CONNECT response: a line longer than 256 KiB";
	case CSTP_E_HEAD: return "CONNECT response: header section larger than 2 MiB";
	case CSTP_E_HOLD: return "CONNECT response: X-CSTP-MTU and X-DTLS-* lines over 8 KiB";
	case CSTP_E_SYNTAX: return "CONNECT response: malformed";
	case CSTP_E_VALUE: return "CONNECT response: bad MTU or port value";
	case CSTP_E_NOMTU: return "CONNECT response: no X-CSTP-MTU";
	case CSTP_E_SPACE: return "CONNECT rewrite: output buffer too small";
	}
	return "?";
}

/* One line of the head, as the visitors see it. */
struct line {
	const uint8_t *p;
	size_t end;		/* content length (terminator excluded) */
	size_t next;		/* length with its terminator */
	size_t nl, voff, vlen;	/* header name and trimmed value (headers only) */
	unsigned idx;		/* 0: the start line */
};

/* Where the current line's bytes go. */
/* D_BOTH: passed and held (observe: the rewrite is decided, not applied). */
enum { D_UNDECIDED, D_PASS, D_HOLD, D_DROP, D_BOTH };

struct wbuf {
	uint8_t *out;
	size_t cap, len;
};

static bool put(struct wbuf *w, const void *p, size_t n)
{
	if (n > w->cap - w->len)
		return false;
	memcpy(w->out + w->len, p, n);
	w->len += n;
	return true;
}

static bool name_prefix(const struct line *l, const char *lower_prefix)
{
	size_t n = strlen(lower_prefix);

	return l->nl >= n && http_name_is(l->p, n, lower_prefix);
}

static bool name_is(const struct line *l, const char *lower_name)
{
	return http_name_is(l->p, l->nl, lower_name);
}

static bool is_dtls(const struct line *l)
{
	return name_prefix(l, "x-dtls");
}

/* A day: DPD and keepalive intervals beyond it are as good as none. */
#define CSTP_MAX_INTERVAL 86400

static bool parse_uint(const uint8_t *v, size_t n, unsigned max, unsigned *out)
{
	unsigned x = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (unsigned)(v[i] - '0');
	}
	if (x == 0 || x > max)
		return false;
	*out = x;
	return true;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* Hex digits to bytes: the decoded length, or 0 when not hex or too long. */
static size_t parse_hex(const uint8_t *v, size_t n, uint8_t *out, size_t cap)
{
	if (n == 0 || n % 2 || n / 2 > cap)
		return 0;
	for (size_t i = 0; i < n; i += 2) {
		int h = hexval(v[i]), lo = hexval(v[i + 1]);
		if (h < 0 || lo < 0)
			return 0;
		out[i / 2] = (uint8_t)(h * 16 + lo);
	}
	return n / 2;
}

static void parse_addr(const uint8_t *v, size_t n, struct cstp_offer *o)
{
	char s[64];
	size_t k = 0;

	while (k < n && v[k] != '/')
		k++;
	if (k == 0 || k >= sizeof(s))
		return;
	memcpy(s, v, k);
	s[k] = 0;
	if (inet_pton(AF_INET, s, o->addr4) == 1)
		o->has_addr4 = true;
	else if (inet_pton(AF_INET6, s, o->addr6) == 1)
		o->has_addr6 = true;
}

/* What the headend offered, one line of a response head at a time. A value
 * that is not a number in range is only noted: whether it is fatal depends on
 * the group (cstp_head_finish_response()). */
static enum cstp_res head_collect(struct cstp_head *h, const struct line *l)
{
	struct cstp_offer *o = &h->offer;
	const uint8_t *v = l->p + l->voff;
	unsigned x;

	if (l->idx == 0) {
		const uint8_t *s = l->p;
		size_t n = l->end;
		if (n < 12 || memcmp(s, "HTTP/1.", 7) || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
			return CSTP_E_SYNTAX;
		for (int i = 9; i < 12; i++)
			if (s[i] < '0' || s[i] > '9')
				return CSTP_E_SYNTAX;
		if (n > 12 && s[12] != ' ')
			return CSTP_E_SYNTAX;
		o->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
		return CSTP_OK;
	}
	if (is_dtls(l))
		o->dtls_offered = true;
	if (name_is(l, "x-cstp-mtu") || name_is(l, "x-dtls-mtu")) {
		bool cstp = name_is(l, "x-cstp-mtu");
		unsigned *min = cstp ? &h->min_cstp : &h->min_dtls;
		if (!parse_uint(v, l->vlen, 65535, &x)) {
			*(cstp ? &h->bad_cstp : &h->bad_dtls) = true;
			return CSTP_OK;
		}
		*(cstp ? &o->cstp_mtu : &o->dtls_mtu) = x;
		if (*min == 0 || x < *min)
			*min = x;
	} else if (name_is(l, "x-cstp-base-mtu")) {
		if (parse_uint(v, l->vlen, 65535, &x))
			o->base_mtu = x;
	} else if (name_is(l, "x-dtls-port")) {
		if (parse_uint(v, l->vlen, 65535, &x))
			o->dtls_port = (uint16_t)x;
		else
			h->bad_dtls = true;
	} else if (name_is(l, "x-dtls-session-id")) {
		o->has_session_id = l->vlen == 64 && parse_hex(v, l->vlen, o->session_id, 32) == 32;
	} else if (name_is(l, "x-dtls-app-id")) {
		o->app_id_len = parse_hex(v, l->vlen, o->app_id, sizeof(o->app_id));
	} else if (name_is(l, "x-dtls-ciphersuite")) {
		o->psk = l->vlen == 13 && memcmp(v, "PSK-NEGOTIATE", 13) == 0;
	} else if (name_is(l, "x-cstp-dpd") || name_is(l, "x-cstp-keepalive")) {
		/* Lenient: only the idle limit uses them (cstp_quiet_limit()). */
		if (!parse_uint(v, l->vlen, CSTP_MAX_INTERVAL, &x))
			x = 0;
		*(name_is(l, "x-cstp-dpd") ? &o->dpd : &o->keepalive) = x;
	} else if (name_is(l, "x-cstp-address") || name_is(l, "x-cstp-address-ip6")) {
		parse_addr(v, l->vlen, o);
	} else if (name_is(l, "x-cstp-content-encoding")) {
		h->cstp_ce = l->vlen > 0;
	} else if (name_is(l, "x-dtls-content-encoding")) {
		h->dtls_ce = l->vlen > 0;
	}
	return CSTP_OK;
}

/* ---- the streaming head ---- */

void cstp_head_init(struct cstp_head *h, bool response, uint8_t *hold)
{
	memset(h, 0, sizeof(*h));
	h->response = response;
	h->hold = hold;
}

/* Is this header (name known) one the rewrite may touch? */
static bool head_held(const struct cstp_head *h, const struct line *l)
{
	if (is_dtls(l))
		return true;
	return h->response ? name_is(l, "x-cstp-mtu") : name_is(l, "x-cstp-accept-encoding");
}

static enum cstp_res hold_put(struct cstp_head *h, const uint8_t *p, size_t n)
{
	if (n > CSTP_HOLD_MAX - h->hold_len)
		return CSTP_E_HOLD;
	memcpy(h->hold + h->hold_len, p, n);
	h->hold_len += n;
	return CSTP_OK;
}

/* The line's destination is known: its bytes so far (all in keep) go there. */
static enum cstp_res head_decide(struct cstp_head *h, int disp, struct wbuf *w)
{
	h->disp = disp;
	if ((disp == D_PASS || disp == D_BOTH) && !put(w, h->keep, h->keep_len))
		return CSTP_E_SPACE;
	if (disp == D_HOLD || disp == D_BOTH)
		return hold_put(h, h->keep, h->keep_len);
	return CSTP_OK;
}

static enum cstp_res head_route(struct cstp_head *h, uint8_t c, struct wbuf *w)
{
	bool kept = h->keep_len < CSTP_KEEP;
	enum cstp_res r;

	if (kept)
		h->keep[h->keep_len++] = c;
	switch (h->disp) {
	case D_UNDECIDED:
		/* Longer than any name the rewrite acts on: it passes. */
		if (kept)
			return CSTP_OK;
		if ((r = head_decide(h, D_PASS, w)) != CSTP_OK)
			return r;
		/* fall through */
	case D_PASS:
		return put(w, &c, 1) ? CSTP_OK : CSTP_E_SPACE;
	case D_HOLD:
		return hold_put(h, &c, 1);
	case D_BOTH:
		return put(w, &c, 1) ? hold_put(h, &c, 1) : CSTP_E_SPACE;
	}
	return CSTP_OK;
}

/* The start line, the blank line or a header line ended (its terminator is
 * routed). CSTP_MORE: the head goes on. */
static enum cstp_res head_line_end(struct cstp_head *h, struct wbuf *w)
{
	size_t content = h->line_len - (h->cr ? 2 : 1);
	struct line l = { .end = content, .next = h->line_len, .idx = h->line };
	enum cstp_res r = CSTP_MORE;

	if (h->line == 0) {
		if (content == 0)
			return CSTP_MORE;	/* an empty line before the start: dropped */
		if (h->disp == D_UNDECIDED && (r = head_decide(h, D_PASS, w)) != CSTP_OK)
			return r;
		if (h->response) {
			l.p = h->keep;
			l.end = content < h->keep_len ? content : h->keep_len;
			if ((r = head_collect(h, &l)) != CSTP_OK)
				return r;
		}
		h->line = 1;
		return CSTP_MORE;
	}
	if (content == 0) {
		if (h->response && h->offer.status < 200 && h->offer.status != 101) {
			/* An interim response ends: the next head is the answer. */
			unsigned interim = h->interim + 1;
			size_t len = h->head_len;
			bool observe = h->observe;

			if (!put(w, h->keep, h->keep_len))
				return CSTP_E_SPACE;
			cstp_head_init(h, true, h->hold);
			h->observe = observe;
			h->interim = interim;
			h->head_len = len;
			return CSTP_MORE;
		}
		memcpy(h->blank, h->keep, h->keep_len);
		h->blank_len = h->keep_len;
		h->done = true;
		return CSTP_OK;
	}
	if (!h->value)
		return CSTP_E_SYNTAX;	/* a name without ':' */
	if (h->disp == D_HOLD || h->disp == D_BOTH)
		l.p = h->hold + h->line_hold;
	else if (h->line_len <= h->keep_len)
		l.p = h->keep;
	h->line++;
	/* Only the whole line is read: the values acted on are short. */
	if (!l.p || !h->response || !http_split_header(l.p, l.end, &l.nl, &l.voff, &l.vlen))
		return CSTP_MORE;
	r = head_collect(h, &l);
	return r == CSTP_OK ? CSTP_MORE : r;
}

static enum cstp_res head_byte(struct cstp_head *h, uint8_t c, struct wbuf *w)
{
	enum cstp_res r;

	if (++h->head_len > HTTP_MAX_HEAD)
		return CSTP_E_HEAD;
	if (++h->line_len > HTTP_MAX_LINE)
		return CSTP_E_LINE;
	if (c == 0 || (h->cr && c != '\n'))
		return CSTP_E_SYNTAX;
	if (c == '\r') {
		h->cr = true;
	} else if (c != '\n' && h->line > 0) {
		if (h->value ? !http_is_vbyte(c) : c != ':' && !http_is_tchar(c))
			return CSTP_E_SYNTAX;	/* also obs-fold and space before ':' */
		if (c == ':' && !h->value && h->line_len == 1)
			return CSTP_E_SYNTAX;
	}
	if ((r = head_route(h, c, w)) != CSTP_OK)
		return r;
	if (c == ':' && h->line > 0 && !h->value) {
		h->value = true;
		if (h->disp == D_UNDECIDED) {
			struct line l = { .p = h->keep, .nl = h->line_len - 1 };
			bool interim = h->response && h->offer.status < 200 && h->offer.status != 101;
			int disp = !head_held(h, &l) ? D_PASS : interim ? D_DROP : D_HOLD;

			if (h->observe && disp != D_PASS)
				disp = interim ? D_PASS : D_BOTH;

			if ((r = head_decide(h, disp, w)) != CSTP_OK)
				return r;
		}
	}
	if (c != '\n')
		return CSTP_MORE;
	r = head_line_end(h, w);
	h->line_len = h->keep_len = 0;
	h->cr = h->value = false;
	h->disp = D_UNDECIDED;
	h->line_hold = h->hold_len;
	return r;
}

/* The bytes of a name, or of a placed line's value up to its terminator, at
 * once: a 100 KB line goes by in one copy. Any byte that needs a look (a
 * limit, ':', a terminator, a bad byte) is left to head_byte(). */
static size_t head_span(struct cstp_head *h, const uint8_t *in, size_t len, struct wbuf *w,
			enum cstp_res *r)
{
	size_t m = 0, lim = len, k;
	bool name = !h->value && h->line > 0 && h->disp == D_UNDECIDED;

	if (h->cr || (!name && (!h->value || h->disp == D_UNDECIDED)))
		return 0;
	if (lim > HTTP_MAX_LINE - h->line_len)
		lim = HTTP_MAX_LINE - h->line_len;
	if (lim > HTTP_MAX_HEAD - h->head_len)
		lim = HTTP_MAX_HEAD - h->head_len;
	if (name && lim > CSTP_KEEP - h->keep_len)
		lim = CSTP_KEEP - h->keep_len;	/* a name is placed by its first bytes */
	if (name)
		while (m < lim && http_is_tchar(in[m]))
			m++;
	else
		while (m < lim && in[m] != '\r' && http_is_vbyte(in[m]))
			m++;
	k = m < CSTP_KEEP - h->keep_len ? m : CSTP_KEEP - h->keep_len;
	memcpy(h->keep + h->keep_len, in, k);
	h->keep_len += k;
	h->line_len += m;
	h->head_len += m;
	if ((h->disp == D_PASS || h->disp == D_BOTH) && !put(w, in, m))
		*r = CSTP_E_SPACE;
	else if ((h->disp == D_HOLD || h->disp == D_BOTH) && hold_put(h, in, m) != CSTP_OK)
		*r = CSTP_E_HOLD;
	return m;
}

enum cstp_res cstp_head_feed(struct cstp_head *h, const uint8_t *in, size_t len, size_t *used,
			     uint8_t *out, size_t cap, size_t *outlen)
{
	struct wbuf w = { .out = out, .cap = cap };
	enum cstp_res r = CSTP_MORE;
	size_t i = 0;

	while (i < len && !h->done && r == CSTP_MORE) {
		size_t m = head_span(h, in + i, len - i, &w, &r);

		i += m;
		if (!m && r == CSTP_MORE)
			r = head_byte(h, in[i++], &w);
	}
	*used = i;
	*outlen = w.len;
	if (r == CSTP_OK) {
		h->offer.head_len = h->head_len;
		return CSTP_OK;
	}
	return r;
}

/* Walk the held lines, complete and valid by construction. */
static enum cstp_res hold_walk(const struct cstp_head *h,
			       enum cstp_res (*visit)(void *arg, const struct line *l), void *arg)
{
	size_t off = 0;

	while (off < h->hold_len) {
		struct line l = { .p = h->hold + off, .idx = 1 };
		enum cstp_res r;

		if (http_find_line(l.p, h->hold_len - off, &l.end, &l.next) != HTTP_DONE ||
		    !http_split_header(l.p, l.end, &l.nl, &l.voff, &l.vlen))
			return CSTP_E_SYNTAX;
		if ((r = visit(arg, &l)) != CSTP_OK)
			return r;
		off += l.next;
	}
	return CSTP_OK;
}

struct resp {
	const struct cstp_policy *pol;
	struct cstp_offer *o;
	unsigned mtu;		/* the value written to the MTU headers */
	struct wbuf w;
};

/* A header line with a new value: name and separator as sent, the original
 * terminator. */
static bool put_value(struct resp *r, const struct line *l, unsigned value)
{
	char num[8];
	int k = snprintf(num, sizeof(num), "%u", value);
	bool same = (size_t)k == l->vlen && memcmp(num, l->p + l->voff, l->vlen) == 0;

	if (!same)
		r->o->rewritten++;
	return put(&r->w, l->p, l->voff) && put(&r->w, num, (size_t)k) &&
	       put(&r->w, l->p + l->end, l->next - l->end);
}

/* One held line, rewritten. */
static enum cstp_res resp_emit(void *arg, const struct line *l)
{
	struct resp *r = arg;
	enum dtls_mode mode = r->pol->dtls;
	bool ok;

	if (mode == DTLS_PASS) {
		ok = put(&r->w, l->p, l->next);
	} else if (mode == DTLS_BLOCK && is_dtls(l)) {
		r->o->removed++;
		ok = true;
	} else if (name_is(l, "x-cstp-mtu") || (mode == DTLS_RELAY && name_is(l, "x-dtls-mtu"))) {
		ok = put_value(r, l, r->mtu);
	} else if (mode == DTLS_RELAY && r->pol->dtls_port && name_is(l, "x-dtls-port")) {
		unsigned before = r->o->rewritten;
		ok = put_value(r, l, r->pol->dtls_port);
		if (r->o->rewritten != before)
			r->o->port_rewritten = true;
	} else {
		ok = put(&r->w, l->p, l->next);
	}
	return ok ? CSTP_OK : CSTP_E_SPACE;
}

unsigned cstp_quiet_limit(const struct cstp_offer *o, unsigned idle)
{
	unsigned every = o->dpd;

	if (o->keepalive && (!every || o->keepalive < every))
		every = o->keepalive;
	if (!every)
		return 0;
	return 3 * every > idle ? 3 * every : idle;
}

static enum cstp_res resp_rewrite(struct cstp_head *h, const struct cstp_policy *pol,
				  uint8_t *out, size_t cap, size_t *outlen, struct cstp_offer *offer)
{
	struct resp r = { .pol = pol, .o = offer, .w = { .out = out, .cap = cap } };
	bool dtls_ce = h->dtls_ce;
	enum cstp_res res;

	*offer = h->offer;
	*outlen = 0;
	if (!h->done)
		return CSTP_MORE;
	/* A bad value is fatal only where it would be rewritten or decides what
	 * is sent (the X-CSTP-MTU unless the group passes, the X-DTLS-* values
	 * of a relay); a pass group's tunnel, or a block group's X-DTLS-* lines
	 * that go anyway, need not die of it: the line goes as sent, and the
	 * offer records it as absent. */
	if ((h->bad_cstp && pol->dtls != DTLS_PASS) || (h->bad_dtls && pol->dtls == DTLS_RELAY))
		return CSTP_E_VALUE;
	if (pol->dtls != DTLS_PASS && offer->status == 200 && !h->min_cstp)
		return CSTP_E_NOMTU;

	r.mtu = h->min_cstp;
	if (pol->dtls == DTLS_RELAY && h->min_dtls && (r.mtu == 0 || h->min_dtls < r.mtu))
		r.mtu = h->min_dtls;
	if (pol->mtu && r.mtu > pol->mtu)
		r.mtu = pol->mtu;
	if ((res = hold_walk(h, resp_emit, &r)) != CSTP_OK)
		return res;
	if (!put(&r.w, h->blank, h->blank_len))
		return CSTP_E_SPACE;

	switch (pol->dtls) {
	case DTLS_PASS:
		offer->sent_mtu = offer->cstp_mtu;
		offer->sent_dtls_mtu = offer->dtls_mtu;
		break;
	case DTLS_BLOCK:
		offer->sent_mtu = offer->cstp_mtu ? r.mtu : 0;
		offer->dtls_removed = offer->removed > 0;
		dtls_ce = false;
		break;
	case DTLS_RELAY:
		offer->sent_mtu = offer->cstp_mtu ? r.mtu : 0;
		offer->sent_dtls_mtu = offer->dtls_mtu ? r.mtu : 0;
		break;
	}
	offer->compressed = h->cstp_ce || dtls_ce;
	offer->ipv6_starved = offer->has_addr6 && offer->sent_mtu && offer->sent_mtu < 1280;
	*outlen = r.w.len;
	return offer->status == 200 ? CSTP_OK : CSTP_REFUSED;
}

/* Observe: the group's rewrite is decided (and only counted), then the head
 * goes as sent: the held lines as they came, or, when they passed already
 * (h->observe), just the blank line. A value enforce would refuse is no
 * reason to close what it does not touch. */
enum cstp_res cstp_head_finish_response(struct cstp_head *h, const struct cstp_policy *pol,
					uint8_t *out, size_t cap, size_t *outlen,
					struct cstp_offer *offer)
{
	static const struct cstp_policy pass = { .dtls = DTLS_PASS };
	enum cstp_res r;
	bool would;

	if (!pol->observe && !h->observe)
		return resp_rewrite(h, pol, out, cap, outlen, offer);
	r = resp_rewrite(h, pol, out, cap, outlen, offer);
	would = (r == CSTP_OK || r == CSTP_REFUSED) && (offer->removed || offer->rewritten);
	r = resp_rewrite(h, &pass, out, cap, outlen, offer);
	offer->observed = true;
	offer->would_rewrite = would;
	if (h->observe && (r == CSTP_OK || r == CSTP_REFUSED)) {
		memcpy(out, h->blank, h->blank_len);
		*outlen = h->blank_len;
	}
	return r;
}

enum cstp_res cstp_rewrite_response(const uint8_t *in, size_t inlen, const struct cstp_policy *pol,
				    uint8_t *out, size_t cap, size_t *outlen, struct cstp_offer *offer)
{
	struct cstp_head h;
	uint8_t hold[CSTP_HOLD_MAX];
	size_t used, n, m;
	enum cstp_res r;

	memset(offer, 0, sizeof(*offer));
	*outlen = 0;
	cstp_head_init(&h, true, hold);
	if ((r = cstp_head_feed(&h, in, inlen, &used, out, cap, &n)) != CSTP_OK)
		return r;
	r = cstp_head_finish_response(&h, pol, out + n, cap - n, &m, offer);
	if (r == CSTP_OK || r == CSTP_REFUSED)
		*outlen = n + m;
	return r;
}

struct req {
	unsigned opts;
	unsigned removed;
	struct wbuf w;
};

/* Does this cipher suite token name PSK-NEGOTIATE? ocserv looks for it as a
 * substring of the whole value, so any token holding it counts. */
static bool token_is_psk(const uint8_t *t, size_t n)
{
	static const char psk[] = "psk-negotiate";

	for (size_t i = 0; i + sizeof(psk) - 1 <= n; i++)
		if (http_name_is(t + i, sizeof(psk) - 1, psk))
			return true;
	return false;
}

/* X-DTLS-CipherSuite without its PSK-NEGOTIATE tokens; nothing at all when
 * no token is left. */
static enum cstp_res req_put_suites(struct req *q, const struct line *l)
{
	const uint8_t *v = l->p + l->voff;
	size_t start = q->w.len, i = 0;
	bool any = false, cut = false;

	if (!put(&q->w, l->p, l->voff))
		return CSTP_E_SPACE;
	while (i <= l->vlen) {
		size_t k = i;

		while (k < l->vlen && v[k] != ':')
			k++;
		if (!token_is_psk(v + i, k - i)) {
			if ((any && !put(&q->w, ":", 1)) || !put(&q->w, v + i, k - i))
				return CSTP_E_SPACE;
			any = true;
		} else {
			cut = true;
		}
		i = k + 1;
	}
	q->removed += cut;
	if (!any) {
		q->w.len = start;
		return CSTP_OK;
	}
	return put(&q->w, v + l->vlen, l->next - l->voff - l->vlen) ? CSTP_OK : CSTP_E_SPACE;
}

static enum cstp_res req_emit(void *arg, const struct line *l)
{
	struct req *q = arg;
	bool drop;

	drop = (q->opts & CSTP_REQ_NO_COMPRESSION) &&
	       (name_is(l, "x-cstp-accept-encoding") || name_is(l, "x-dtls-accept-encoding"));
	/* Without a master secret or a cipher list the headend offers no DTLS. */
	drop |= (q->opts & CSTP_REQ_NO_DTLS) && is_dtls(l) &&
		(name_is(l, "x-dtls-master-secret") ||
		 (l->nl >= 12 && http_name_is(l->p + l->nl - 12, 12, "-ciphersuite")));
	if (!drop && (q->opts & CSTP_REQ_NO_PSK) && name_is(l, "x-dtls-ciphersuite"))
		return req_put_suites(q, l);
	if (drop) {
		q->removed++;
		return CSTP_OK;
	}
	return put(&q->w, l->p, l->next) ? CSTP_OK : CSTP_E_SPACE;
}

enum cstp_res cstp_head_finish_request(struct cstp_head *h, unsigned opts, uint8_t *out,
				       size_t cap, size_t *outlen, unsigned *removed)
{
	struct req q = { .opts = opts, .w = { .out = out, .cap = cap } };
	enum cstp_res r;

	*outlen = 0;
	*removed = 0;
	if (!h->done)
		return CSTP_MORE;
	if ((r = hold_walk(h, req_emit, &q)) != CSTP_OK)
		return r;
	if (!put(&q.w, h->blank, h->blank_len))
		return CSTP_E_SPACE;
	*outlen = q.w.len;
	*removed = q.removed;
	return CSTP_OK;
}

enum cstp_res cstp_rewrite_request(const uint8_t *in, size_t inlen, unsigned opts, uint8_t *out,
				   size_t cap, size_t *outlen, size_t *head_len)
{
	struct cstp_head h;
	uint8_t hold[CSTP_HOLD_MAX];
	size_t n, m;
	unsigned removed;
	enum cstp_res r;

	*outlen = 0;
	*head_len = 0;
	cstp_head_init(&h, false, hold);
	if ((r = cstp_head_feed(&h, in, inlen, head_len, out, cap, &n)) != CSTP_OK) {
		*head_len = 0;
		return r;
	}
	r = cstp_head_finish_request(&h, opts, out + n, cap - n, &m, &removed);
	if (r == CSTP_OK)
		*outlen = n + m;
	return r;
}

/* ---- the record stream ---- */

enum peek { PEEK_PASS, PEEK_HOLD, PEEK_MORE };

/* Is the inner packet (avail of its plen bytes so far) a TCP SYN? *want is
 * how many bytes would tell. */
static enum peek peek_syn(const uint8_t *p, size_t avail, size_t plen, size_t *want)
{
	size_t l4, need;

	*want = 1;
	if (avail < 1)
		return PEEK_MORE;
	if (p[0] >> 4 == 4) {
		*want = 20;
		if (plen < 20)
			return PEEK_PASS;
		if (avail < 20)
			return PEEK_MORE;
		l4 = (size_t)(p[0] & 15) * 4;
		if (l4 < 20 || p[9] != 6 || (((p[6] & 0x1f) << 8) | p[7]) != 0)
			return PEEK_PASS;
	} else if (p[0] >> 4 == 6) {
		*want = 40;
		if (plen < 40)
			return PEEK_PASS;
		if (avail < 40)
			return PEEK_MORE;
		/* Extension headers before TCP: rare, hold and let the clamp walk them. */
		if (p[6] == 0 || p[6] == 43 || p[6] == 44 || p[6] == 60)
			return PEEK_HOLD;
		if (p[6] != 6)
			return PEEK_PASS;
		l4 = 40;
	} else {
		return PEEK_PASS;
	}
	need = l4 + 14;		/* TCP flags are byte 13 of the TCP header */
	*want = need;
	if (plen < need)
		return PEEK_PASS;
	if (avail < need)
		return PEEK_MORE;
	return (p[l4 + 13] & 0x02) ? PEEK_HOLD : PEEK_PASS;
}

static void count_record(struct cstp_stream *s, uint8_t type, size_t plen)
{
	static const bool known[CSTP_NTYPES] = {
		[CSTP_DATA] = true, [CSTP_DPD_REQ] = true, [CSTP_DPD_RESP] = true,
		[CSTP_DISCONNECT] = true, [CSTP_KEEPALIVE] = true, [CSTP_COMPRESSED] = true,
		[CSTP_TERMINATE] = true,
	};

	/* Unknown types are forwarded (fail open, as for packets) and counted. */
	if (type < CSTP_NTYPES && known[type])
		s->records[type]++;
	else
		s->other++;
	s->bytes += CSTP_HDR_LEN + plen;
	if (type == CSTP_DATA)
		s->data_bytes += plen;
}

enum cstp_ev cstp_stream_next(struct cstp_stream *s, const uint8_t *buf, size_t len,
			      struct cstp_event *ev)
{
	static const uint8_t magic[4] = { 'S', 'T', 'F', 0x01 };
	size_t plen, total, want;

	memset(ev, 0, sizeof(*ev));
	if (s->left) {
		if (len == 0) {
			ev->need = 1;
			return CSTP_EV_NEED;
		}
		ev->len = len < s->left ? len : s->left;
		s->left -= ev->len;
		return CSTP_EV_FORWARD;
	}
	/* Garbage shows at its first byte, not only after eight. */
	for (size_t i = 0; i < len && i < 4; i++)
		if (buf[i] != magic[i])
			return CSTP_EV_ERROR;
	if (len < CSTP_HDR_LEN) {
		ev->need = CSTP_HDR_LEN;
		return CSTP_EV_NEED;
	}
	if (buf[7] != 0)
		return CSTP_EV_ERROR;
	plen = ((size_t)buf[4] << 8) | buf[5];
	total = CSTP_HDR_LEN + plen;
	ev->type = buf[6];
	if (ev->type == CSTP_DATA && plen > 0) {
		size_t avail = len - CSTP_HDR_LEN < plen ? len - CSTP_HDR_LEN : plen;

		switch (peek_syn(buf + CSTP_HDR_LEN, avail, plen, &want)) {
		case PEEK_MORE:
			ev->need = CSTP_HDR_LEN + want;
			return CSTP_EV_NEED;
		case PEEK_HOLD:
			if (len < total) {
				ev->need = total;
				return CSTP_EV_NEED;
			}
			count_record(s, ev->type, plen);
			s->held++;
			ev->len = total;
			ev->pkt_off = CSTP_HDR_LEN;
			ev->pkt_len = plen;
			return CSTP_EV_PACKET;
		case PEEK_PASS:
			break;
		}
	}
	count_record(s, ev->type, plen);
	ev->len = len < total ? len : total;
	s->left = total - ev->len;
	return CSTP_EV_FORWARD;
}

void cstp_write_header(uint8_t hdr[CSTP_HDR_LEN], enum cstp_type type, size_t len)
{
	hdr[0] = 'S';
	hdr[1] = 'T';
	hdr[2] = 'F';
	hdr[3] = 0x01;
	hdr[4] = (uint8_t)(len >> 8);
	hdr[5] = (uint8_t)len;
	hdr[6] = (uint8_t)type;
	hdr[7] = 0;
}
