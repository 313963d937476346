#include "proxy/sepmsg.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "daemon/stats.h"

/* Wire format, little-endian: u16 type, u16 zero, then per type:
 *   HELLO       i32 pid
 *   TICK        u64 tick
 *   SESSION_ADD u32 handle, then fields: u16 tag, u16 len, len bytes (each at most once)
 *   SESSION_DEL u32 handle
 *   BYTES       u16 n, n x (u32 handle, u64 up, u64 down)
 *   COUNTERS    u8 glen, glen bytes of group, u16 n, n x (u16 field, u64 delta)
 *   GONE        i32 pid, i32 status
 *   RELOAD      nothing
 *   DTLS        u32 handle, u8 state
 *   COOKIE      u8 op, 32 bytes hash, u8 glen, group, u8 ulen, user, u16 mtu, u16 dtls_mtu
 *   DRAIN       i32 pid, i32 tunnels held (not negative)
 * Every message ends exactly where its content does. */

/* How a session field travels and what it may hold. */
enum sf_kind {
	SF_UINT,	/* u64 on the wire, at most max, stored in a field of size 1, 2, 4 or 8 */
	SF_BOOL,	/* one byte, 0 or 1 */
	SF_BYTES,	/* up to the field's size; its length in the size_t at aux */
	SF_FIXED,	/* exactly the field's size */
	SF_STR,		/* printable, shorter than the field; stored NUL-terminated */
	SF_SOCKADDR,	/* u16 family (AF_INET or AF_INET6), u16 port, 4 or 16 address bytes */
};

struct sf {
	uint16_t tag;
	enum sf_kind kind;
	size_t off, size, aux;
	uint64_t max;
};

#define SI_OFF(f) offsetof(struct session_info, f)
#define SI_SIZE(f) sizeof(((struct session_info *)0)->f)
#define SF(tag, kind, f, aux, max) { tag, kind, SI_OFF(f), SI_SIZE(f), aux, max }

/* struct session_info on the wire: a new field is one line here (a new,
 * never reused tag; its bounds). A field left out stays zero on arrival. */
static const struct sf sf_fields[] = {
	SF(1, SF_BYTES, id, SI_OFF(id_len), 0),
	SF(2, SF_BOOL, id_is_app, 0, 1),
	SF(3, SF_STR, group, 0, 0),
	SF(4, SF_SOCKADDR, client, 0, 0),
	SF(5, SF_FIXED, addr4, 0, 0),
	SF(6, SF_FIXED, addr6, 0, 0),
	SF(7, SF_BOOL, has_addr4, 0, 1),
	SF(8, SF_BOOL, has_addr6, 0, 1),
	SF(9, SF_UINT, cstp_mtu, 0, 65535),
	SF(10, SF_UINT, dtls_mtu, 0, 65535),
	SF(11, SF_UINT, sent_mtu, 0, 65535),
	SF(12, SF_UINT, sent_dtls_mtu, 0, 65535),
	SF(13, SF_UINT, dtls, 0, SESSION_DTLS_LAST),
	SF(14, SF_UINT, bytes_up, 0, UINT64_MAX),
	SF(15, SF_UINT, bytes_down, 0, UINT64_MAX),
	SF(16, SF_BOOL, observed, 0, 1),
	SF(17, SF_BOOL, would_rewrite, 0, 1),
	SF(18, SF_STR, user, 0, 0),
	SF(19, SF_UINT, since, 0, INT64_MAX),
	SF(20, SF_UINT, reconnects, 0, UINT32_MAX),
	SF(21, SF_FIXED, key, 0, 0),
};
#define SF_N (sizeof(sf_fields) / sizeof(sf_fields[0]))

size_t sepmsg_ctr_fields(const char *group)
{
	return group[0] ? sizeof(struct grp_counters) / sizeof(ctr) :
	       offsetof(struct counters, g) / sizeof(ctr);
}

/* ---- writing ---- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool bad;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->bad || n > w->cap - w->len) {
		w->bad = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_uint(struct wbuf *w, uint64_t v, size_t n)
{
	uint8_t b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, n);
}

static uint64_t load_uint(const uint8_t *p, size_t size)
{
	switch (size) {
	case 1: return *p;
	case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}

static void store_uint(uint8_t *p, size_t size, uint64_t x)
{
	switch (size) {
	case 1: *p = (uint8_t)x; break;
	case 2: { uint16_t v = (uint16_t)x; memcpy(p, &v, 2); break; }
	case 4: { uint32_t v = (uint32_t)x; memcpy(p, &v, 4); break; }
	default: memcpy(p, &x, 8); break;
	}
}

static void put_field(struct wbuf *w, const struct sf *f, const struct session_info *s)
{
	const uint8_t *v = (const uint8_t *)s + f->off;
	size_t n;

	put_uint(w, f->tag, 2);
	switch (f->kind) {
	case SF_UINT:
		put_uint(w, 8, 2);
		put_uint(w, load_uint(v, f->size), 8);
		break;
	case SF_BOOL:
		put_uint(w, 1, 2);
		put_uint(w, *(const bool *)(const void *)v ? 1 : 0, 1);
		break;
	case SF_BYTES:
		memcpy(&n, (const uint8_t *)s + f->aux, sizeof(n));
		n = n > f->size ? f->size : n;
		put_uint(w, n, 2);
		put(w, v, n);
		break;
	case SF_FIXED:
		put_uint(w, f->size, 2);
		put(w, v, f->size);
		break;
	case SF_STR:
		n = strnlen((const char *)v, f->size - 1);
		put_uint(w, n, 2);
		put(w, v, n);
		break;
	case SF_SOCKADDR: {
		const struct sockaddr_storage *ss = (const void *)v;
		const struct sockaddr_in *s4 = (const void *)v;
		const struct sockaddr_in6 *s6 = (const void *)v;
		bool six = ss->ss_family == AF_INET6;

		put_uint(w, six ? 20 : 8, 2);
		put_uint(w, six ? AF_INET6 : AF_INET, 2);
		put(w, six ? (const void *)&s6->sin6_port : (const void *)&s4->sin_port, 2);
		put(w, six ? (const void *)s6->sin6_addr.s6_addr : (const void *)&s4->sin_addr,
		    six ? 16 : 4);
		break;
	}
	}
}

size_t sepmsg_encode(const struct sepmsg *m, uint8_t *buf, size_t cap)
{
	struct wbuf w = { .p = buf, .cap = cap };
	size_t glen;

	if (m->type < SEPMSG_HELLO || m->type >= SEPMSG_TYPE_END || m->n > SEPMSG_BATCH)
		return 0;
	put_uint(&w, m->type, 2);
	put_uint(&w, 0, 2);
	switch (m->type) {
	case SEPMSG_HELLO:
		put_uint(&w, (uint32_t)m->pid, 4);
		break;
	case SEPMSG_TICK:
		put_uint(&w, m->tick, 8);
		break;
	case SEPMSG_SESSION_ADD:
		put_uint(&w, m->handle, 4);
		for (size_t i = 0; i < SF_N; i++)
			put_field(&w, &sf_fields[i], &m->info);
		break;
	case SEPMSG_SESSION_DEL:
		put_uint(&w, m->handle, 4);
		break;
	case SEPMSG_BYTES:
		put_uint(&w, m->n, 2);
		for (size_t i = 0; i < m->n; i++) {
			put_uint(&w, m->bytes[i].handle, 4);
			put_uint(&w, m->bytes[i].up, 8);
			put_uint(&w, m->bytes[i].down, 8);
		}
		break;
	case SEPMSG_COUNTERS:
		glen = strnlen(m->group, sizeof(m->group) - 1);
		put_uint(&w, glen, 1);
		put(&w, m->group, glen);
		put_uint(&w, m->n, 2);
		for (size_t i = 0; i < m->n; i++) {
			put_uint(&w, m->ctr[i].field, 2);
			put_uint(&w, m->ctr[i].delta, 8);
		}
		break;
	case SEPMSG_GONE:
	case SEPMSG_DRAIN:
		put_uint(&w, (uint32_t)m->pid, 4);
		put_uint(&w, (uint32_t)m->status, 4);
		break;
	case SEPMSG_DTLS:
		put_uint(&w, m->handle, 4);
		put_uint(&w, m->info.dtls, 1);
		break;
	case SEPMSG_COOKIE: {
		const struct cookie_event *c = &m->cookie;

		if (c->op < COOKIE_OP_BIND || c->op > COOKIE_OP_LAST || c->mtu > 65535 ||
		    c->dtls_mtu > 65535)
			return 0;
		put_uint(&w, c->op, 1);
		put(&w, c->hash, COOKIE_HASH_LEN);
		glen = strnlen(c->group, sizeof(c->group) - 1);
		put_uint(&w, glen, 1);
		put(&w, c->group, glen);
		glen = strnlen(c->user, sizeof(c->user) - 1);
		put_uint(&w, glen, 1);
		put(&w, c->user, glen);
		put_uint(&w, c->mtu, 2);
		put_uint(&w, c->dtls_mtu, 2);
		break;
	}
	case SEPMSG_RELOAD:
	case SEPMSG_TYPE_END:
		break;
	}
	return w.bad ? 0 : w.len;
}

/* ---- reading ---- */

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *take(struct rbuf *r, size_t n)
{
	const uint8_t *p = r->p + r->off;

	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	r->off += n;
	return p;
}

static uint64_t get_uint(struct rbuf *r, size_t n)
{
	const uint8_t *p = take(r, n);
	uint64_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Printable bytes only: a tab or newline in a group name would forge a line
 * of `mtugatectl sessions` or of the log. */
static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

static bool get_str(const uint8_t *p, size_t n, char *out, size_t cap)
{
	if (n >= cap || !printable(p, n))
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static const struct sf *sf_find(uint16_t tag)
{
	for (size_t i = 0; i < SF_N; i++)
		if (sf_fields[i].tag == tag)
			return &sf_fields[i];
	return NULL;
}

static bool get_sockaddr(const uint8_t *v, size_t n, struct sockaddr_storage *ss)
{
	uint16_t fam = (uint16_t)(v[0] | v[1] << 8);

	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET && n == 8) {
		struct sockaddr_in *s4 = (void *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_port, v + 2, 2);
		memcpy(&s4->sin_addr, v + 4, 4);
		return true;
	}
	if (fam == AF_INET6 && n == 20) {
		struct sockaddr_in6 *s6 = (void *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_port, v + 2, 2);
		memcpy(s6->sin6_addr.s6_addr, v + 4, 16);
		return true;
	}
	return false;
}

static bool get_field(const struct sf *f, const uint8_t *v, size_t n, struct session_info *s)
{
	uint8_t *dst = (uint8_t *)s + f->off;
	uint64_t x;

	switch (f->kind) {
	case SF_UINT:
		if (n != 8)
			return false;
		x = 0;
		for (size_t i = 0; i < 8; i++)
			x |= (uint64_t)v[i] << (8 * i);
		if (x > f->max)
			return false;
		store_uint(dst, f->size, x);
		return true;
	case SF_BOOL:
		if (n != 1 || v[0] > 1)
			return false;
		*(bool *)(void *)dst = v[0] == 1;
		return true;
	case SF_BYTES:
		if (n > f->size)
			return false;
		memcpy(dst, v, n);
		memcpy((uint8_t *)s + f->aux, &n, sizeof(n));
		return true;
	case SF_FIXED:
		if (n != f->size)
			return false;
		memcpy(dst, v, n);
		return true;
	case SF_STR:
		return get_str(v, n, (char *)dst, f->size);
	case SF_SOCKADDR:
		return n >= 2 && get_sockaddr(v, n, (struct sockaddr_storage *)(void *)dst);
	}
	return false;
}

static bool get_session(struct rbuf *r, struct session_info *s)
{
	uint64_t seen = 0;	/* tags below 64 at most once */

	while (!r->bad && r->off < r->len) {
		uint16_t tag = (uint16_t)get_uint(r, 2), len = (uint16_t)get_uint(r, 2);
		const uint8_t *v = take(r, len);
		const struct sf *f = sf_find(tag);

		if (r->bad || !f || tag >= 64 || (seen & (1ull << tag)) || !get_field(f, v, len, s))
			return false;
		seen |= 1ull << tag;
	}
	return !r->bad;
}

int sepmsg_decode(const uint8_t *buf, size_t len, struct sepmsg *m)
{
	struct rbuf r = { .p = buf, .len = len };
	uint64_t type;
	size_t glen;

	memset(m, 0, sizeof(*m));
	type = get_uint(&r, 2);
	if (get_uint(&r, 2) != 0 || r.bad || type < SEPMSG_HELLO || type >= SEPMSG_TYPE_END)
		return -EINVAL;
	m->type = (enum sepmsg_type)type;
	switch (m->type) {
	case SEPMSG_HELLO:
		m->pid = (int32_t)(uint32_t)get_uint(&r, 4);
		if (m->pid <= 0)
			return -EINVAL;
		break;
	case SEPMSG_TICK:
		m->tick = get_uint(&r, 8);
		break;
	case SEPMSG_SESSION_ADD:
		m->handle = (uint32_t)get_uint(&r, 4);
		if (!get_session(&r, &m->info))
			return -EINVAL;
		break;
	case SEPMSG_SESSION_DEL:
		m->handle = (uint32_t)get_uint(&r, 4);
		break;
	case SEPMSG_BYTES:
		m->n = (size_t)get_uint(&r, 2);
		if (m->n > SEPMSG_BATCH)
			return -EINVAL;
		for (size_t i = 0; i < m->n; i++) {
			m->bytes[i].handle = (uint32_t)get_uint(&r, 4);
			m->bytes[i].up = get_uint(&r, 8);
			m->bytes[i].down = get_uint(&r, 8);
		}
		break;
	case SEPMSG_COUNTERS: {
		const uint8_t *g;

		glen = (size_t)get_uint(&r, 1);
		g = take(&r, glen);
		if (r.bad || !get_str(g, glen, m->group, sizeof(m->group)))
			return -EINVAL;
		m->n = (size_t)get_uint(&r, 2);
		if (m->n > SEPMSG_BATCH)
			return -EINVAL;
		for (size_t i = 0; i < m->n; i++) {
			m->ctr[i].field = (uint16_t)get_uint(&r, 2);
			m->ctr[i].delta = get_uint(&r, 8);
			if (m->ctr[i].field >= sepmsg_ctr_fields(m->group))
				return -EINVAL;
		}
		break;
	}
	case SEPMSG_GONE:
		m->pid = (int32_t)(uint32_t)get_uint(&r, 4);
		m->status = (int32_t)(uint32_t)get_uint(&r, 4);
		if (m->pid <= 0)
			return -EINVAL;
		break;
	case SEPMSG_DRAIN:
		m->pid = (int32_t)(uint32_t)get_uint(&r, 4);
		m->status = (int32_t)(uint32_t)get_uint(&r, 4);
		if (m->pid <= 0 || m->status < 0)
			return -EINVAL;
		break;
	case SEPMSG_DTLS: {
		uint64_t d;

		m->handle = (uint32_t)get_uint(&r, 4);
		if ((d = get_uint(&r, 1)) > SESSION_DTLS_LAST)
			return -EINVAL;
		m->info.dtls = (enum session_dtls)d;
		break;
	}
	case SEPMSG_COOKIE: {
		struct cookie_event *c = &m->cookie;
		uint64_t op = get_uint(&r, 1);
		const uint8_t *h = take(&r, COOKIE_HASH_LEN), *g;

		if (r.bad || op < COOKIE_OP_BIND || op > COOKIE_OP_LAST)
			return -EINVAL;
		c->op = (enum cookie_op)op;
		memcpy(c->hash, h, COOKIE_HASH_LEN);
		glen = (size_t)get_uint(&r, 1);
		g = take(&r, glen);
		if (r.bad || !get_str(g, glen, c->group, sizeof(c->group)))
			return -EINVAL;
		glen = (size_t)get_uint(&r, 1);
		g = take(&r, glen);
		if (r.bad || !get_str(g, glen, c->user, sizeof(c->user)))
			return -EINVAL;
		c->mtu = (unsigned)get_uint(&r, 2);
		c->dtls_mtu = (unsigned)get_uint(&r, 2);
		break;
	}
	case SEPMSG_RELOAD:
	case SEPMSG_TYPE_END:
		break;
	}
	if (r.bad || r.off != r.len)
		return -EINVAL;
	return 0;
}

const char *sepmsg_type_str(enum sepmsg_type t)
{
	static const char *const names[] = {
		[SEPMSG_HELLO] = "hello", [SEPMSG_TICK] = "tick",
		[SEPMSG_SESSION_ADD] = "session-add", [SEPMSG_SESSION_DEL] = "session-del",
		[SEPMSG_BYTES] = "bytes", [SEPMSG_COUNTERS] = "counters", [SEPMSG_GONE] = "gone",
		[SEPMSG_RELOAD] = "reload", [SEPMSG_DTLS] = "dtls", [SEPMSG_COOKIE] = "cookie",
		[SEPMSG_DRAIN] = "drain",
	};

	return t >= SEPMSG_HELLO && t < SEPMSG_TYPE_END ? names[t] : "?";
}
