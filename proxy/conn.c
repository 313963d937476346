#include "proxy/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clamp/mss.h"
#include "clamp/pkt.h"
#include "conf/conf.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/stats.h"
#include "proxy/cookie.h"
#include "proxy/cstp.h"
#include "proxy/http.h"
#include "proxy/listen.h"
#include "proxy/session.h"
#include "proxy/tls.h"

/* A direction's buffer holds one whole CSTP record (a SYN is clamped whole)
 * plus room for what a streamed head gives back at its end: the held lines,
 * rewritten, and the first bytes of a line not yet placed (cstp_head_feed()).
 * A head of any size streams through it. */
#define DIR_READ_MAX (CSTP_RECORD_MAX + 512)
#define DIR_CAP (DIR_READ_MAX + 2 * CSTP_HOLD_MAX + CSTP_KEEP + 512)
#define REWRITE_CAP (DIR_CAP + CSTP_KEEP)	/* the scratch: one feed's or finish's output */
#define CAPTURE_CAP 16384	/* an auth request's XML, for group names */
#define MAX_PENDING 8		/* requests awaiting their response */
#define PUMP_ROUNDS 32		/* then yield to other connections */
#define CLOSE_LOG_RATE 20	/* close lines of logins a second; then one with a count */
#define CONN_BYTES_BATCH 256	/* tunnels' byte counts per session table lock */

enum conn_state { CONN_HANDSHAKE, CONN_HTTP, CONN_TUNNEL };

/* A head streaming through, and its held lines (cstp_head_feed()). */
struct conn_head {
	struct cstp_head h;
	uint8_t hold[CSTP_HOLD_MAX];
	bool on;		/* under way */
};
enum req_state { REQ_HEAD, REQ_BODY, REQ_CONNECT };

/* The login's HTTP state: apart from the connection, freed when it becomes a
 * tunnel, so that idle tunnels hold none of it (struct conn went from 1880
 * to 1040 bytes; bench-proxy's proxy_rss_per_idle_tunnel, about 33 KiB with
 * OpenSSL's share, fell by 0.5 to 0.7 KiB). */
struct conn_http {
	struct http_framer req, resp;
	struct http_capture cap;
	struct http_capture rcap;	/* a response's head: Set-Cookie */
	bool resp_active;
	struct conn_head *heads[2];	/* the request's, the CONNECT answer's */
	uint8_t pending[MAX_PENDING];	/* enum http_kind of each outstanding request */
	unsigned npending;
	struct cstp_offer offer;	/* the CONNECT answer's */
};

struct side {
	const char *name;	/* "client" / "headend" */
	int fd;
	struct tls *tls;
	bool hs_done, eof;
	enum tls_res rwant, wwant;	/* the last read's / write's WANT_*, else TLS_OK */
	uint32_t events;		/* registered epoll interest */
};

/* Bytes read from one side for the other: [off, ready) may be written,
 * [ready, len) are not processed yet. */
struct dir {
	uint8_t *buf;
	size_t off, ready, len;
	size_t wpend;		/* a write to retry with exactly this length */
	size_t raw;		/* tunnel: bytes at off still from the HTTP phase */
	struct cstp_stream st;
};

struct conn {
	struct conn_env *env;
	struct conn *prev, *next, *again_next;
	bool in_again, dead;
	struct side c, s;
	struct dir up, down;	/* up: client -> headend */
	bool connected;		/* upstream TCP */
	enum conn_state state;
	enum req_state rq;
	time_t started, active;
	struct budget_node bn;	/* counted in env->budget until it is a tunnel */
	struct budget_clock clock;	/* the login's, for login_timeout and idle_timeout */
	unsigned quiet_limit;	/* a tunnel's idle limit in seconds; 0: none */
	struct sockaddr_storage client, dst;
	struct conn_http *h;	/* while HTTP (from accept to the tunnel); NULL after */
	char group[64];
	const char *group_from;
	char user[SESSION_USER_MAX];	/* the login's username (log_users applied), or "" */
	/* the session cookie of the CONNECT, hashed (proxy/cookie.h) */
	uint8_t cookie[COOKIE_HASH_LEN];
	bool has_cookie, cookie_held;
	unsigned rekeys_counted;	/* TLS renegotiations already in the counters */
	bool refused_counted;
	bool cert_counted;	/* the headend's certificate request is counted */
	bool cert_pending;	/* ... in all, not yet in its group's counters */
	/* tunnel */
	unsigned sent_mtu, sent_dtls_mtu;	/* the tunnel's X-CSTP-MTU, X-DTLS-MTU (0: none) */
	int session;
	unsigned slot;
	bool has_slot;
	bool req_rewritten;	/* the CONNECT request lost headers */
	bool observe;		/* the CONNECT's group, as far as known, observes */
	bool req_would;		/* ... and enforce would have taken more from its request */
};

static void conn_pump(struct conn *c);
static void conn_cookie_closed(struct conn *c);
static void conn_count_rekeys(struct conn *c);

static time_t conn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static const uint8_t *conn_addr(const struct sockaddr_storage *ss, int *family)
{
	*family = ss->ss_family;
	if (ss->ss_family == AF_INET6)
		return (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	return (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
}

/* ---- closing ---- */

static void side_release(struct conn *c, struct side *x)
{
	if (x->tls) {
		tls_close(x->tls);
		tls_free(x->tls);
	}
	if (x->fd >= 0) {
		loop_del(c->env->loop, x->fd);
		close(x->fd);
	}
	x->fd = -1;
	x->tls = NULL;
}

/* What the login's HTTP state holds; the struct itself stays until the
 * tunnel starts or the connection is reaped (code after a close may look). */
static void conn_http_release(struct conn_http *h)
{
	if (!h)
		return;
	free(h->heads[0]);
	free(h->heads[1]);
	free(h->cap.buf);
	free(h->rcap.buf);
	h->heads[0] = h->heads[1] = NULL;
	h->cap.buf = h->rcap.buf = NULL;
}

static void conn_unlink(struct conn *c)
{
	struct conn_env *env = c->env;

	if (c->prev)
		c->prev->next = c->next;
	else
		env->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->in_again) {
		struct conn **p = &env->again;

		while (*p && *p != c)
			p = &(*p)->again_next;
		if (*p)
			*p = c->again_next;
	}
}

/* A flood of logins must not push the watchdog's warnings out of journald's
 * rate limit: past CLOSE_LOG_RATE a second, one line with the count. */
static void conn_log_held(unsigned held)
{
	if (held)
		log_info("proxy: %u more connections closed before they became tunnels"
			 " (over %d a second)", held, CLOSE_LOG_RATE);
}

/* The headend asked for a client certificate: the proxy terminates the
 * client's TLS and has none to send, so a user who logs in with one (an
 * Always-On machine certificate) cannot go through it. Counted in all at
 * once, and per group once the connection's group is known: at its tunnel's
 * start (its login, cookie or address in a pool), else when it closes (its
 * login's group, else the client address's); warned once a minute per group
 * with the fix. */
static void conn_cert_requested(struct conn *c)
{
	if (c->cert_counted || !tls_cert_requested(c->s.tls))
		return;
	c->cert_counted = c->cert_pending = true;
	ctr_inc(&c->env->ctr->tls_upstream_cert_requested);
}

static void conn_cert_group(struct conn *c)
{
	struct conn_env *env = c->env;
	const struct group *g = NULL;
	struct policy *p;
	const uint8_t *a;
	time_t now = time(NULL), *last;
	char cl[64];
	int family;

	if (!c->cert_pending)
		return;
	c->cert_pending = false;
	p = policy_hold(env->box);
	if (c->group[0])
		g = policy_by_name(p, c->group);
	if (!g && (a = conn_addr(&c->client, &family)))
		g = policy_by_clients(p, family, a);
	if (g && g->slot < STATS_MAX_GROUPS)
		ctr_inc(&env->ctr->g[g->slot].upstream_cert_requested);
	last = g && g->slot < STATS_MAX_GROUPS ? &env->cert_warned[g->slot] : &env->cert_warned_none;
	if (!*last || now - *last >= 60) {
		*last = now;
		log_warnx("proxy %s: group %s: the headend asked for a client certificate, which the"
			  " proxy cannot pass on (upstream_cert_requested): for users who log in with"
			  " one, set proxy = no in %s%s, or [proxy] enable = no",
			  session_addr_str(&c->client, cl, sizeof(cl)), g ? g->name : "-",
			  g ? "" : "the group file of their addresses (clients)", g ? g->file : "");
	}
	policy_release(p);
}

static void conn_close_log(struct conn_env *env, const char *cl, const char *dst,
			   const char *reason)
{
	unsigned held;
	bool show = budget_log_step(&env->closelog, conn_now(), CLOSE_LOG_RATE, &held);

	conn_log_held(held);
	if (show)
		log_info("proxy %s -> %s: closed: %s", cl, dst, reason);
}

/* The tunnel's one line at its end: who, where, what it was sent, how its
 * DTLS went (the session table's word), how long, how much. */
static void conn_tunnel_end_log(struct conn *c, const char *cl, const char *dst,
				const char *reason)
{
	struct session_info si = { .dtls = SESSION_DTLS_NONE };

	if (c->session >= 0)
		session_get(c->env->sessions, c->session, &si);
	log_info("proxy %s -> %s: tunnel closed: %s (user %s, group %s, X-CSTP-MTU %u, X-DTLS-MTU %u,"
		 " DTLS %s, %lld s, %llu bytes in, %llu out)", cl, dst, reason,
		 c->user[0] ? c->user : "-", c->group[0] ? c->group : "-", c->sent_mtu,
		 c->sent_dtls_mtu, session_dtls_str(si.dtls), (long long)(conn_now() - c->started),
		 (unsigned long long)c->up.st.bytes, (unsigned long long)c->down.st.bytes);
}

/* relayd's relay_close(): one line with the reason, then everything goes
 * but the struct, which callers up the stack still test for `dead`: the
 * entry points (event, tick, kick) free it with conn_reap(). */
static void conn_close(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_close(struct conn *c, const char *fmt, ...)
{
	char reason[256], cl[64], dst[64];
	va_list ap;

	if (c->dead)
		return;
	c->dead = true;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	session_addr_str(&c->client, cl, sizeof(cl));
	session_addr_str(&c->dst, dst, sizeof(dst));
	if (c->state == CONN_TUNNEL)
		conn_tunnel_end_log(c, cl, dst, reason);
	else
		conn_close_log(c->env, cl, dst, reason);
	budget_remove(c->env->budget, &c->bn);
	if (c->session >= 0)
		session_remove(c->env->sessions, c->session);
	conn_cookie_closed(c);
	conn_count_rekeys(c);
	conn_cert_group(c);
	if (c->state == CONN_TUNNEL)
		c->env->ntunnels--;
	side_release(c, &c->c);
	side_release(c, &c->s);
	conn_unlink(c);
	c->env->nconns--;
	free(c->up.buf);
	free(c->down.buf);
	c->up.buf = c->down.buf = NULL;
	conn_http_release(c->h);
}

static void conn_reap(struct conn *c)
{
	if (c->dead) {
		free(c->h);
		free(c);
	}
}

/* ---- the group ---- */

static time_t conn_wall(void)
{
	return time(NULL);
}

/* The other workers learn what changed in the session table (op, and
 * for BIND and TUNNEL the entry e as it now is). */
static void conn_cookie_share(struct conn *c, enum cookie_op op, const uint8_t *hash,
			      const struct cookie_entry *e)
{
	struct cookie_event ev = { .op = op };

	if (!c->env->cookie_share)
		return;
	memcpy(ev.hash, hash, COOKIE_HASH_LEN);
	if (e) {
		snprintf(ev.group, sizeof(ev.group), "%s", e->group);
		snprintf(ev.user, sizeof(ev.user), "%s", e->user);
		ev.mtu = e->mtu;
		ev.dtls_mtu = e->dtls_mtu;
	}
	c->env->cookie_share(c->env->share_arg, &ev);
}

/* The session cookie in a request head: hashed into c->cookie. */
static bool conn_cookie_of(struct conn *c, const uint8_t *head, size_t len)
{
	size_t off, n;

	if (!cookie_in_request(head, len, &off, &n) || !tls_sha256(head + off, n, c->cookie))
		return false;
	c->has_cookie = true;
	return true;
}

/* A CONNECT presenting a known session cookie takes the group its login
 * selected, whatever the connection or address it comes from. */
static void conn_cookie_group(struct conn *c)
{
	const struct cookie_entry *e;

	if (!c->has_cookie || !c->env->cookies ||
	    !(e = cookie_find(c->env->cookies, c->cookie, conn_wall())))
		return;
	snprintf(c->group, sizeof(c->group), "%s", e->group);
	c->group_from = "the session cookie";
	if (!c->user[0])
		snprintf(c->user, sizeof(c->user), "%s", e->user);
}

/* A response to a login completed: a session cookie it sets is bound to
 * the group this connection's requests selected. */
static void conn_response_done(struct conn *c)
{
	uint8_t h[COOKIE_HASH_LEN];
	size_t off, n, len = c->h->rcap.head_len ? c->h->rcap.head_len : c->h->rcap.len;

	if (c->h->rcap.buf && c->group[0] && c->env->cookies &&
	    cookie_in_response(c->h->rcap.buf, len, &off, &n) && tls_sha256(c->h->rcap.buf + off, n, h)) {
		struct cookie_entry *e;

		cookie_bind(c->env->cookies, h, c->group, conn_wall());
		if ((e = cookie_find(c->env->cookies, h, conn_wall()))) {
			snprintf(e->user, sizeof(e->user), "%s", c->user);
			conn_cookie_share(c, COOKIE_OP_BIND, h, e);
		}
		c->env->cookies_changed = true;
	}
	free(c->h->rcap.buf);
	c->h->rcap = (struct http_capture){ 0 };
}

/* The response capture: a head's Set-Cookie lines, not a body. */
static struct http_capture *conn_rcap(struct conn *c)
{
	if (!c->h->rcap.buf && (c->h->rcap.buf = malloc(CAPTURE_CAP)))
		c->h->rcap.cap = CAPTURE_CAP;
	return c->h->rcap.buf ? &c->h->rcap : NULL;
}

/* When the proxy could not fetch the headend's certificate itself (start,
 * reload: proxy.c), at the first upstream handshake after: the certificate
 * clients see must be the headend's own, or AnyConnect, comparing it with
 * the <server-cert-hash> in the headend's XML, may refuse the tunnel. */
static void conn_check_leaf(struct conn *c)
{
	char ours[TLS_FINGERPRINT_LEN], theirs[TLS_FINGERPRINT_LEN], d[64];
	int r;

	if (!atomic_exchange(&c->env->leaf_check, false))
		return;
	r = tls_leaf_compare(c->s.tls, ours, theirs, sizeof(ours));
	conn_leaf_log(c->env->conf, session_addr_str(&c->dst, d, sizeof(d)), "its first tunnel", r,
		      ours, theirs);
}

void conn_leaf_log(const struct conf *cf, const char *headend, const char *when, int cmp,
		   const char *ours, const char *theirs)
{
	if (cmp > 0)
		log_warnx("proxy: [proxy] certificate %s is not the headend's own (%s, at %s): its"
			  " SHA-256 is %s, the headend's %s; AnyConnect compares it with"
			  " <server-cert-hash> and may refuse the tunnel", cf->proxy.certificate,
			  headend, when, ours, theirs);
	else if (cmp == 0)
		log_info("proxy: [proxy] certificate is the headend's own (SHA-256 %s, %s at %s)", ours,
			 headend, when);
	else
		log_warnx("proxy: cannot compare [proxy] certificate with the headend's (%s, at %s)",
			  headend, when);
}

/* The client's TLS 1.2 renegotiations (its rekeys), into the group's
 * counters: each second and when the tunnel closes. */
static void conn_count_rekeys(struct conn *c)
{
	unsigned n = tls_renegotiations(c->c.tls);
	struct grp_counters *gc;

	if (!c->has_slot)
		return;
	gc = &c->env->ctr->g[c->slot];
	if (n > c->rekeys_counted) {
		ctr_add(&gc->tls_rekeys, n - c->rekeys_counted);
		c->rekeys_counted = n;
	}
	if (!c->refused_counted && tls_reneg_refused(c->c.tls)) {
		ctr_inc(&gc->tls_rekeys_refused);
		c->refused_counted = true;
	}
}

/* The tunnel closed: a BYE (the client's CSTP DISCONNECT) or the headend's
 * TERMINATE ends the session; anything else (a lost connection, a rekey by
 * new tunnel, a restart) keeps it for the client's return. */
static void conn_cookie_closed(struct conn *c)
{
	if (!c->cookie_held || !c->env->cookies)
		return;
	c->cookie_held = false;
	if (c->up.st.records[CSTP_DISCONNECT] || c->down.st.records[CSTP_TERMINATE]) {
		cookie_end(c->env->cookies, c->cookie);
		conn_cookie_share(c, COOKIE_OP_END, c->cookie, NULL);
	} else
		cookie_release(c->env->cookies, c->cookie, conn_wall());
	c->env->cookies_changed = true;
}

/* The login's username, as [daemon] log_users wants it shown. */
static void conn_set_user(struct conn *c, const char *user)
{
	switch (c->env->conf->daemon.log_users) {
	case LOG_USERS_YES:
		snprintf(c->user, sizeof(c->user), "%s", user);
		break;
	case LOG_USERS_HASH: {
		uint8_t in[sizeof(c->env->user_key) + SESSION_USER_MAX], h[32];
		size_t n = strnlen(user, SESSION_USER_MAX);

		/* Keyed: a list of likely names hashed offline matches nothing. */
		memcpy(in, c->env->user_key, sizeof(c->env->user_key));
		memcpy(in + sizeof(c->env->user_key), user, n);
		if (tls_sha256(in, sizeof(c->env->user_key) + n, h))
			snprintf(c->user, sizeof(c->user), "~%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
		break;
	}
	case LOG_USERS_NO:
		break;
	}
}

/* A finished client request: its XML or URL may name the group
 * (<group-select>, then <tunnel-group>, then the group-url path). */
static void conn_request_done(struct conn *c)
{
	struct http_groups g;
	struct policy *p;
	const char *cand[3];
	static const char *const from[3] = { "<group-select>", "<tunnel-group>", "the group-url" };

	if (!c->h->cap.buf || c->h->cap.len < c->h->cap.head_len)
		return;
	if (c->env->cookies && cookie_is_logout(c->h->cap.buf, c->h->cap.head_len) &&
	    conn_cookie_of(c, c->h->cap.buf, c->h->cap.head_len)) {
		if (cookie_end(c->env->cookies, c->cookie))
			c->env->cookies_changed = true;
		conn_cookie_share(c, COOKIE_OP_END, c->cookie, NULL);
	}
	http_extract_groups(c->h->cap.buf, c->h->cap.head_len, c->h->cap.buf + c->h->cap.head_len,
			    c->h->cap.len - c->h->cap.head_len, &g);
	if (g.user[0])
		conn_set_user(c, g.user);
	cand[0] = g.select;
	cand[1] = g.tunnel;
	cand[2] = g.url;
	p = policy_hold(c->env->box);
	for (int i = 0; i < 3; i++) {
		const struct group *gr;

		if (!cand[i][0] || !(gr = policy_by_auth(p, cand[i], strlen(cand[i]))))
			continue;
		if (strcmp(c->group, gr->name)) {
			snprintf(c->group, sizeof(c->group), "%s", gr->name);
			c->group_from = from[i];
		}
		break;
	}
	policy_release(p);
}

/* ---- buffers ---- */

static bool dir_alloc(struct dir *d)
{
	if (!d->buf)
		d->buf = malloc(DIR_CAP);
	return d->buf != NULL;
}

/* Keep idle tunnels small: an empty buffer is given back. */
static void dir_trim(struct dir *d)
{
	if (d->off == d->len && !d->wpend) {
		d->off = d->ready = d->len = 0;
		free(d->buf);
		d->buf = NULL;
	}
}

/* Replace the head [ready, ready+inlen) with out[0..outlen). */
static bool dir_splice(struct dir *d, size_t inlen, const uint8_t *out, size_t outlen)
{
	size_t tail = d->len - d->ready - inlen;

	if (d->ready + outlen + tail > DIR_CAP && d->off && !d->wpend) {
		/* Make room: what is written already goes. */
		memmove(d->buf, d->buf + d->off, d->len - d->off);
		d->len -= d->off;
		d->ready -= d->off;
		d->off = 0;
	}
	if (d->ready + outlen + tail > DIR_CAP)
		return false;
	memmove(d->buf + d->ready + outlen, d->buf + d->ready + inlen, tail);
	memcpy(d->buf + d->ready, out, outlen);
	d->len = d->ready + outlen + tail;
	d->ready += outlen;
	return true;
}

/* ---- I/O ---- */

/* Whether the reader moves the unwritten bytes down before reading: when
 * only unprocessed bytes remain and nothing is mid-write, or when less than
 * a TLS record fits. A rewritten head can leave len past DIR_READ_MAX. */
static bool dir_compacts(const struct dir *d)
{
	if (!d->off)
		return false;
	if (d->off == d->ready)
		return !d->wpend;
	return d->len + 16384 > DIR_READ_MAX;
}

/* What side_read() may read into d: the reader and the epoll interest both
 * ask this, so a full buffer is never polled for input it cannot take. */
static size_t dir_room(const struct dir *d)
{
	size_t len;

	if (!d->buf)
		return DIR_READ_MAX;
	len = dir_compacts(d) ? d->len - d->off : d->len;
	return len < DIR_READ_MAX ? DIR_READ_MAX - len : 0;
}

static bool side_read(struct conn *c, struct side *x, struct dir *d)
{
	size_t n, room;
	enum tls_res r;
	char e[160];

	/* A full buffer is compacted below first: a record cut at its end can
	 * only be written once the rest of it is read. */
	if (x->eof || !x->tls)
		return false;
	if (!dir_alloc(d)) {
		conn_close(c, "out of memory");
		return false;
	}
	if (dir_compacts(d)) {
		memmove(d->buf, d->buf + d->off, d->len - d->off);
		d->len -= d->off;
		d->ready -= d->off;
		d->off = 0;
	}
	if (!(room = dir_room(d)))
		return false;
	r = tls_read(x->tls, d->buf + d->len, room, &n);
	x->rwant = TLS_OK;
	switch (r) {
	case TLS_OK:
		d->len += n;
		c->active = conn_now();
		return true;
	case TLS_WANT_READ:
	case TLS_WANT_WRITE:
		x->rwant = r;
		return false;
	case TLS_EOF:
		x->eof = true;
		return true;
	case TLS_ERROR:
		conn_close(c, "%s TLS: %s", x->name, tls_error(x->tls, e, sizeof(e)));
		return false;
	}
	return false;
}

/* How much to hand to one TLS write. In the tunnel, one whole CSTP record
 * per write: openconnect expects each TLS record to hold exactly one
 * ("Unexpected packet length"), as headends send them. */
static size_t dir_write_len(const struct conn *c, const struct dir *d)
{
	size_t avail = d->ready - d->off, rec;

	if (d->wpend)
		return d->wpend;
	if (c->state != CONN_TUNNEL)
		return avail;
	if (d->raw)
		return d->raw < avail ? d->raw : avail;
	if (avail < CSTP_HDR_LEN)
		return 0;
	rec = CSTP_HDR_LEN + ((size_t)d->buf[d->off + 4] << 8 | d->buf[d->off + 5]);
	return avail >= rec ? rec : 0;
}

static bool side_write(struct conn *c, struct side *x, struct dir *d)
{
	size_t n, want = dir_write_len(c, d);
	enum tls_res r;
	char e[160];

	if (!want || !x->tls)
		return false;
	r = tls_write(x->tls, d->buf + d->off, want, &n);
	x->wwant = TLS_OK;
	switch (r) {
	case TLS_OK:
		d->off += n;
		d->raw -= d->raw < n ? d->raw : n;
		/* A record over 16 KiB goes out in pieces: finish it first. */
		d->wpend = n < want ? want - n : 0;
		return true;
	case TLS_WANT_READ:
	case TLS_WANT_WRITE:
		x->wwant = r;
		d->wpend = want;
		return false;
	case TLS_EOF:
		conn_close(c, "%s closed", x->name);
		return false;
	case TLS_ERROR:
		conn_close(c, "%s TLS: %s", x->name, tls_error(x->tls, e, sizeof(e)));
		return false;
	}
	return false;
}

/* Send what TLS holds for x. False when the connection closed. */
static bool side_flush(struct conn *c, struct side *x)
{
	char e[160];

	if (!tls_pending(x->tls) || tls_flush(x->tls) != TLS_ERROR)
		return true;
	conn_close(c, "%s: send: %s", x->name, tls_error(x->tls, e, sizeof(e)));
	return false;
}

/* Everything read from the other side is on its way to x: given to TLS and
 * sent. */
static bool side_drained(struct conn *c, struct side *x, const struct dir *out)
{
	if (dir_write_len(c, out))
		return false;
	return side_flush(c, x) && !tls_pending(x->tls);
}

/* ---- HTTP: client requests ---- */

static enum http_kind conn_kind_of(const struct http_framer *f)
{
	if (f->connect)
		return HTTP_RESPONSE_CONNECT;
	return strcmp(f->method, "HEAD") == 0 ? HTTP_RESPONSE_NOBODY : HTTP_RESPONSE;
}

/* What the CONNECT request loses: compression always; DTLS for a block
 * group; otherwise PSK-NEGOTIATE, whose key (a TLS exporter value) differs
 * on our two legs, so that the headend offers legacy DTLS, which works
 * through the proxy and whose session ID the DTLS path can attribute. The
 * group is the one the login or cookie named; when it (else the client
 * address's) observes (c->observe), only PSK-NEGOTIATE goes (without that no
 * DTLS could work through the proxy at all), and *enforce gets the options
 * enforce would take. */
static unsigned conn_request_opts(struct conn *c, unsigned *enforce)
{
	struct policy *p = policy_hold(c->env->box);
	const struct group *g = c->group[0] ? policy_by_name(p, c->group) : NULL, *o = g;
	bool block = g && g->dtls == DTLS_BLOCK;
	const uint8_t *a;
	int family;

	/* The address guesses the mode only: a block by it could take DTLS
	 * from a tunnel whose pool address will name a relay group. */
	if (!o && (a = conn_addr(&c->client, &family)))
		o = policy_by_clients(p, family, a);
	c->observe = o && o->mode == MODE_OBSERVE;
	policy_release(p);
	*enforce = CSTP_REQ_NO_COMPRESSION | (block ? CSTP_REQ_NO_DTLS : CSTP_REQ_NO_PSK);
	return c->observe ? CSTP_REQ_NO_PSK : *enforce;
}

/* Why a streamed head was refused, for the client request's close line. */
static const char *conn_head_error(enum cstp_res r)
{
	switch (r) {
	case CSTP_E_LINE: return "a line longer than 256 KiB";
	case CSTP_E_HEAD: return "header section larger than 2 MiB";
	case CSTP_E_HOLD: return "X-CSTP-Accept-Encoding and X-DTLS-* lines over 8 KiB";
	case CSTP_E_SPACE: return "no room to rewrite";
	default: return "malformed";
	}
}

/* The next piece of a head: framed as sent (the capture sees the original
 * bytes), then replaced in d by what goes on. CSTP_MORE, CSTP_OK at the end of
 * the head (*hr: the framer's result), or an error, the connection closed. */
static enum cstp_res conn_head_piece(struct conn *c, struct dir *d, struct cstp_head *h,
				     struct http_framer *f, uint8_t *tmp, enum http_res *hr)
{
	size_t used, fused, outlen;
	enum cstp_res r;
	const char *who = h->response ? "CONNECT response" : "client request";

	r = cstp_head_feed(h, d->buf + d->ready, d->len - d->ready, &used, tmp, REWRITE_CAP, &outlen);
	if (r != CSTP_MORE && r != CSTP_OK) {
		if (h->response)
			conn_close(c, "%s", cstp_res_str(r));
		else
			conn_close(c, "%s: %s", who, conn_head_error(r));
		return r;
	}
	*hr = http_feed(f, d->buf + d->ready, used, &fused);
	if (*hr != HTTP_MORE && *hr != HTTP_DONE) {
		conn_close(c, "%s: %s", who, http_res_str(*hr));
		return CSTP_E_SYNTAX;
	}
	/* Both parsers end the head at the same byte. */
	if (fused != used || (r == CSTP_MORE && *hr == HTTP_DONE)) {
		conn_close(c, "%s: malformed", who);
		return CSTP_E_SYNTAX;
	}
	if (!dir_splice(d, used, tmp, outlen)) {
		conn_close(c, "%s: no room to rewrite", who);
		return CSTP_E_SPACE;
	}
	return r;
}

/* The head under way in direction i (0: a request, 1: the CONNECT answer),
 * begun with its framer f if none is; NULL when out of memory (closed). */
static struct conn_head *conn_head_of(struct conn *c, int i, struct http_framer *f,
				      enum http_kind kind, struct http_capture *cap)
{
	struct conn_head *ch = c->h->heads[i];

	if (!ch) {
		if (!(ch = c->h->heads[i] = malloc(sizeof(*ch)))) {
			conn_close(c, "out of memory");
			return NULL;
		}
		ch->on = false;
	}
	if (!ch->on) {
		http_framer_init(f, kind, cap);
		cstp_head_init(&ch->h, i == 1, ch->hold);
		/* The answer to an observed CONNECT goes byte for byte. */
		ch->h.observe = i == 1 && c->observe;
		ch->on = true;
	}
	return ch;
}

/* A request head streams through: only the lines the CONNECT rewrite may
 * drop are held, until the head is complete and its options known
 * (conn_request_opts()). False when nothing moved. */
static bool conn_request_head(struct conn *c, uint8_t *tmp)
{
	struct dir *d = &c->up;
	struct conn_head *ch;
	size_t outlen;
	unsigned opts = 0, enforce = 0, removed, would = 0;
	enum cstp_res r;
	enum http_res hr;

	if (!c->h->cap.buf && !(c->h->cap.buf = malloc(CAPTURE_CAP))) {
		conn_close(c, "out of memory");
		return false;
	}
	c->h->cap.cap = CAPTURE_CAP;
	if (!(ch = conn_head_of(c, 0, &c->h->req, HTTP_REQUEST, &c->h->cap)))
		return false;
	r = conn_head_piece(c, d, &ch->h, &c->h->req, tmp, &hr);
	if (r != CSTP_OK)
		return r == CSTP_MORE;
	ch->on = false;
	if (c->h->npending == MAX_PENDING) {
		conn_close(c, "client pipelined more than %d requests", MAX_PENDING);
		return false;
	}
	c->h->pending[c->h->npending++] = (uint8_t)conn_kind_of(&c->h->req);
	if (c->h->req.connect) {
		/* The head has streamed on: its session cookie is read from the capture. */
		if (!c->has_cookie && conn_cookie_of(c, c->h->cap.buf, c->h->cap.head_len))
			conn_cookie_group(c);
		conn_request_done(c);
		opts = conn_request_opts(c, &enforce);
	}
	/* Observe: the same filter decides what enforce would take, first. */
	if (opts != enforce &&
	    cstp_head_finish_request(&ch->h, enforce, tmp, REWRITE_CAP, &outlen, &would) != CSTP_OK)
		would = 0;
	r = cstp_head_finish_request(&ch->h, opts, tmp, REWRITE_CAP, &outlen, &removed);
	if (r != CSTP_OK || !dir_splice(d, 0, tmp, outlen)) {
		conn_close(c, "client request: no room to rewrite");
		return false;
	}
	if (c->h->req.connect) {
		c->req_rewritten = removed > 0;
		c->req_would = would > removed;
		/* Whatever follows waits for the answer: tunnel data or another request. */
		c->rq = REQ_CONNECT;
	} else if (hr == HTTP_DONE) {
		conn_request_done(c);
		c->rq = REQ_HEAD;
	} else {
		c->rq = REQ_BODY;
	}
	return true;
}

static bool conn_up_http(struct conn *c, uint8_t *tmp)
{
	struct dir *d = &c->up;
	bool progress = false;

	while (!c->dead && d->ready < d->len && c->state == CONN_HTTP) {
		size_t used;
		enum http_res hr;

		if (c->rq == REQ_CONNECT)
			break;
		if (c->rq == REQ_HEAD) {
			if (!conn_request_head(c, tmp))
				break;
			progress = true;
			continue;
		}
		hr = http_feed(&c->h->req, d->buf + d->ready, d->len - d->ready, &used);
		d->ready += used;
		progress = true;
		if (hr == HTTP_DONE) {
			conn_request_done(c);
			c->rq = REQ_HEAD;
		} else if (hr != HTTP_MORE) {
			conn_close(c, "client request: %s", http_res_str(hr));
		}
	}
	return progress;
}

/* ---- HTTP: the CONNECT answer ---- */

static const struct group *conn_pool_group(const struct policy *p, int family, const uint8_t *a,
					   const struct group *named)
{
	const struct group *g = policy_by_pool(p, family, a);

	if (g && g->pool_shared && named && named != g && group_has_addr(named, family, a))
		return named;
	return g;
}

static const struct group *conn_pick_group(struct conn *c, const struct policy *p,
					   const struct cstp_offer *o)
{
	const struct group *g = NULL, *named = c->group[0] ? policy_by_name(p, c->group) : NULL;
	int family;
	const uint8_t *a;

	/* The address the headend gave this very tunnel comes first, as the
	 * headend's own decision; in a pool that groups share (told apart by
	 * auth_group), the group this connection's login or session cookie
	 * named, when that pool is its. */
	if (o->has_addr4 && (g = conn_pool_group(p, AF_INET, o->addr4, named)))
		c->group_from = g->pool_shared && g == named ?
			"its login or cookie, in its shared pool" : "X-CSTP-Address in its pool";
	else if (o->has_addr6 && (g = conn_pool_group(p, AF_INET6, o->addr6, named)))
		c->group_from = g->pool_shared && g == named ?
			"its login or cookie, in its shared pool" : "X-CSTP-Address-IP6 in its pool";
	else if (named)
		return named;
	else if ((a = conn_addr(&c->client, &family)) && (g = policy_by_clients(p, family, a)))
		c->group_from = "the client address";
	if (g)
		snprintf(c->group, sizeof(c->group), "%s", g->name);
	return g;
}

/* The MTU cap for this CONNECT's answer: the group's, and for a session
 * whose first tunnel of this group was sent an MTU, that one, so a roamed or
 * rekeyed tunnel is told no other (a new MTU resets the client's adapter). */
static unsigned conn_mtu_cap(struct conn *c, const struct group *g)
{
	const struct cookie_entry *e;

	if (!c->has_cookie || !c->env->cookies ||
	    !(e = cookie_find(c->env->cookies, c->cookie, conn_wall())) || !e->mtu ||
	    strcmp(e->group, g->name))
		return g->mtu;
	return g->mtu && g->mtu < e->mtu ? g->mtu : e->mtu;
}

/* A tunnel of a session started: it holds the session's entry (made here
 * when its login went by another way), which keeps the first MTUs sent.
 * How many tunnels of the session came before it (0: its first). */
static unsigned conn_cookie_tunnel(struct conn *c, const struct group *g)
{
	struct cookie_table *t = c->env->cookies;
	struct cookie_entry *e;
	char cl[64];

	if (!c->has_cookie || !t || !g)
		return 0;
	if (!(e = cookie_find(t, c->cookie, conn_wall())) || strcmp(e->group, g->name)) {
		cookie_bind(t, c->cookie, g->name, conn_wall());
		e = cookie_find(t, c->cookie, conn_wall());
	}
	if (!e)
		return 0;
	if (!c->user[0])
		snprintf(c->user, sizeof(c->user), "%s", e->user);
	if (!e->mtu) {
		e->mtu = c->sent_mtu;
		e->dtls_mtu = c->sent_dtls_mtu;
	} else if (++e->reconnects, e->mtu != c->sent_mtu) {
		log_warnx("proxy %s: group %s: this session's tunnel was sent X-CSTP-MTU %u before,"
			  " and the headend now offers only %u: the client will reset its adapter",
			  session_addr_str(&c->client, cl, sizeof(cl)), g->name, e->mtu,
			  c->sent_mtu);
	}
	cookie_hold(e);
	c->cookie_held = true;
	c->env->cookies_changed = true;
	conn_cookie_share(c, COOKIE_OP_TUNNEL, c->cookie, e);
	return e->reconnects;
}

static enum session_dtls conn_dtls_state(const struct group *g, const struct cstp_offer *o)
{
	if (o->observed)
		return o->dtls_offered ? SESSION_DTLS_OFFERED : SESSION_DTLS_NONE;
	/* A block group's request went without DTLS: the headend may offer none. */
	if (g && g->dtls == DTLS_BLOCK)
		return SESSION_DTLS_BLOCKED;
	return o->dtls_offered ? SESSION_DTLS_OFFERED : SESSION_DTLS_NONE;
}

static void conn_start_tunnel(struct conn *c, const struct group *g)
{
	struct cstp_offer *o = &c->h->offer;
	struct session_info si = { 0 };
	char cl[64];

	c->state = CONN_TUNNEL;
	c->env->ntunnels++;
	/* The heads not yet written are HTTP, not records. */
	c->up.raw = c->up.ready - c->up.off;
	c->down.raw = c->down.ready - c->down.off;
	c->sent_mtu = o->sent_mtu;
	c->sent_dtls_mtu = o->sent_dtls_mtu;
	memset(&c->up.st, 0, sizeof(c->up.st));
	memset(&c->down.st, 0, sizeof(c->down.st));
	if (o->app_id_len && o->app_id_len <= SESSION_ID_MAX) {
		memcpy(si.id, o->app_id, o->app_id_len);
		si.id_len = o->app_id_len;
		si.id_is_app = true;
	} else if (o->has_session_id) {
		memcpy(si.id, o->session_id, sizeof(o->session_id));
		si.id_len = sizeof(o->session_id);
	}
	snprintf(si.group, sizeof(si.group), "%s", g ? g->name : "");
	si.client = c->client;
	memcpy(si.addr4, o->addr4, 4);
	memcpy(si.addr6, o->addr6, 16);
	si.has_addr4 = o->has_addr4;
	si.has_addr6 = o->has_addr6;
	si.cstp_mtu = o->cstp_mtu;
	si.dtls_mtu = o->dtls_mtu;
	si.sent_mtu = o->sent_mtu;
	si.sent_dtls_mtu = o->sent_dtls_mtu;
	si.dtls = conn_dtls_state(g, o);
	/* Nothing changed in what the client was offered: observe mode, or
	 * dtls = pass (a reconnect is predicted for these). */
	si.observed = o->observed || (o->dtls_offered && g && g->dtls == DTLS_PASS);
	si.would_rewrite = o->would_rewrite || c->req_would;
	si.since = conn_wall();
	if (c->has_cookie)
		memcpy(si.key, c->cookie, SESSION_KEY_LEN);
	c->quiet_limit = cstp_quiet_limit(o, c->env->conf->proxy.idle_timeout);
	if (!c->quiet_limit && (listen_keepalive(c->c.fd, c->env->conf->proxy.idle_timeout) < 0 ||
				listen_keepalive(c->s.fd, c->env->conf->proxy.idle_timeout) < 0))
		log_warn("proxy: TCP keepalive on a tunnel without DPD");
	if (o->ipv6_starved)
		log_warnx("proxy %s: group %s: X-CSTP-MTU %u is below IPv6's 1280, and the headend"
			  " gave the client an IPv6 address: its IPv6 will not work (raise the"
			  " group's mtu)", session_addr_str(&c->client, cl, sizeof(cl)),
			  g ? g->name : "-", o->sent_mtu);
	si.reconnects = conn_cookie_tunnel(c, g);
	conn_cert_group(c);
	snprintf(si.user, sizeof(si.user), "%s", c->user);
	if ((c->session = session_add(c->env->sessions, &si)) < 0)
		log_warnx("proxy: session table full: the DTLS path will not know this tunnel");
	if (g) {
		c->slot = g->slot;
		c->has_slot = true;
		ctr_inc(&c->env->ctr->g[g->slot].sessions);
		if (si.reconnects)
			ctr_inc(&c->env->ctr->g[g->slot].reconnects);
		/* Whether it was the predicted reconnect: the packet process tells
		 * (its table holds the predictions; proxy/sepstate.c). */
		if (tls_resumed(c->s.tls))
			ctr_inc(&c->env->ctr->g[g->slot].upstream_resumed);
		if (o->observed && si.would_rewrite)
			ctr_inc(&c->env->ctr->g[g->slot].would_connect_rewrite);
		else if (!o->observed && (o->removed || o->rewritten || c->req_rewritten))
			ctr_inc(&c->env->ctr->g[g->slot].connect_rewritten);
	}
	if (o->observed && g && g->mode != MODE_OBSERVE)
		log_warnx("proxy %s: group %s enforces, but its login named an observing group: this"
			  " tunnel's CONNECT answer went unchanged", session_addr_str(&c->client, cl,
			  sizeof(cl)), g->name);
	log_info("proxy %s: tunnel up, group %s (from %s), user %s, X-CSTP-MTU %u -> %u,"
		 " X-DTLS-MTU %u -> %u, DTLS %s, reconnects %u, idle limit %u s%s%s%s",
		 session_addr_str(&c->client, cl, sizeof(cl)), g ? g->name : "-",
		 g ? c->group_from : "nothing", si.user[0] ? si.user : "-", o->cstp_mtu, o->sent_mtu,
		 o->dtls_mtu, o->sent_dtls_mtu, session_dtls_str(si.dtls), si.reconnects, c->quiet_limit,
		 c->quiet_limit ? "" : " (none: no DPD; TCP keepalive)",
		 o->compressed ? ", compressed records are not clamped" : "",
		 !o->observed ? "" : si.would_rewrite ? ", observed: enforce would have rewritten it" :
		 ", observed: enforce would not have rewritten it");
	conn_http_release(c->h);
	free(c->h);
	c->h = NULL;
}

/* The answer to CONNECT streams through as conn_request_head(); at its end
 * the offer (the tunnel's address) decides the group, and the held lines
 * follow, rewritten for it. */
static bool conn_connect_response(struct conn *c, uint8_t *tmp)
{
	struct dir *d = &c->down;
	struct cstp_policy cp = { .dtls = DTLS_PASS };
	struct conn_head *ch;
	size_t outlen;
	struct policy *p;
	const struct group *g;
	enum cstp_res r;
	enum http_res hr;
	char cl[64];

	if (!(ch = conn_head_of(c, 1, &c->h->resp, HTTP_RESPONSE_CONNECT, NULL)))
		return false;
	r = conn_head_piece(c, d, &ch->h, &c->h->resp, tmp, &hr);
	if (r != CSTP_OK)
		return r == CSTP_MORE;
	ch->on = false;
	p = policy_hold(c->env->box);
	if ((g = conn_pick_group(c, p, &ch->h.offer)))
		cp = (struct cstp_policy){ .dtls = g->dtls, .mtu = conn_mtu_cap(c, g),
					   .dtls_port = c->env->conf->headend.advertised_dtls_port,
					   .observe = g->mode == MODE_OBSERVE };
	r = cstp_head_finish_response(&ch->h, &cp, tmp, REWRITE_CAP, &outlen, &c->h->offer);
	if (r != CSTP_OK && r != CSTP_REFUSED) {
		policy_release(p);
		conn_close(c, "%s", cstp_res_str(r));
		return false;
	}
	log_info("proxy %s: CONNECT answer %d: %zu bytes of head streamed, %zu held (at most %d)",
		 session_addr_str(&c->client, cl, sizeof(cl)), c->h->offer.status, c->h->offer.head_len,
		 ch->h.hold_len, CSTP_HOLD_MAX);
	if (!dir_splice(d, 0, tmp, outlen)) {
		policy_release(p);
		conn_close(c, "CONNECT response: no room to rewrite");
		return false;
	}
	c->h->npending--;
	memmove(c->h->pending, c->h->pending + 1, c->h->npending);
	if (r == CSTP_REFUSED) {
		/* Not a tunnel: the body follows as in any response, then HTTP goes on. */
		c->h->resp_active = hr == HTTP_MORE;
		c->rq = REQ_HEAD;
		log_info("proxy: CONNECT refused by the headend (status %d)", c->h->offer.status);
	} else {
		/* No more heads on this connection: conn_start_tunnel() frees them. */
		conn_start_tunnel(c, g);
	}
	policy_release(p);
	return true;
}

static bool conn_down_http(struct conn *c, uint8_t *tmp)
{
	struct dir *d = &c->down;
	bool progress = false;

	while (!c->dead && d->ready < d->len && c->state == CONN_HTTP) {
		size_t used;
		enum http_res hr;

		if (!c->h->resp_active) {
			if (!c->h->npending) {
				conn_close(c, "headend sent data with no request outstanding");
				break;
			}
			if (c->h->pending[0] == HTTP_RESPONSE_CONNECT) {
				if (!conn_connect_response(c, tmp))
					break;
				progress = true;
				continue;
			}
			http_framer_init(&c->h->resp, (enum http_kind)c->h->pending[0], conn_rcap(c));
			c->h->resp_active = true;
		}
		hr = http_feed(&c->h->resp, d->buf + d->ready, d->len - d->ready, &used);
		d->ready += used;
		progress = true;
		if (hr == HTTP_DONE) {
			c->h->resp_active = false;
			conn_response_done(c);
			/* A refused CONNECT was popped already. */
			if (c->h->resp.kind != HTTP_RESPONSE_CONNECT) {
				c->h->npending--;
				memmove(c->h->pending, c->h->pending + 1, c->h->npending);
			}
		} else if (hr != HTTP_MORE) {
			conn_close(c, "headend response: %s", http_res_str(hr));
		}
	}
	return progress;
}

/* ---- the tunnel ---- */

/* An inner SYN or SYN-ACK: lower its MSS in place, as the packet path does;
 * the record cannot grow, so a missing option is not added. */
static void conn_clamp(struct conn *c, uint8_t *pkt, size_t len)
{
	struct policy *p;
	const struct group *g;
	struct pkt pk;
	size_t nl;
	uint16_t target;

	if (!c->group[0] || pkt_parse(&pk, pkt, len) != PKT_OK)
		return;
	/* Only a SYN can need it: skip the policy lock for the rest. */
	if (pk.proto != IPPROTO_TCP || pk.later_frag || pk.l4len < 14 || !(pkt[pk.l4off + 13] & 0x02))
		return;
	p = policy_hold(c->env->box);
	if ((g = policy_by_name(p, c->group)) && (target = group_mss(g, pk.family))) {
		bool observe = g->mode == MODE_OBSERVE;
		enum mss_res r = observe ? mss_check(pkt, len, len, &pk, target) :
			mss_clamp(pkt, len, len, &pk, target, &nl);
		struct grp_counters *gc = &c->env->ctr->g[g->slot];

		if (r == MSS_LOWERED)
			ctr_inc(observe ? &gc->would_mss_rewrite : &gc->mss_rewritten);
		else if (r == MSS_KEPT)
			ctr_inc(&gc->mss_unchanged);
	}
	policy_release(p);
}

static bool conn_stream(struct conn *c, struct dir *d, const char *from)
{
	bool progress = false;

	while (!c->dead && d->ready < d->len) {
		struct cstp_event ev;

		switch (cstp_stream_next(&d->st, d->buf + d->ready, d->len - d->ready, &ev)) {
		case CSTP_EV_PACKET:
			conn_clamp(c, d->buf + d->ready + ev.pkt_off, ev.pkt_len);
			/* fall through */
		case CSTP_EV_FORWARD:
			d->ready += ev.len;
			progress = true;
			break;
		case CSTP_EV_NEED:
			return progress;
		case CSTP_EV_ERROR:
			conn_close(c, "malformed CSTP record from the %s", from);
			return false;
		}
	}
	return progress;
}

/* ---- handshakes ---- */

static void conn_event(struct loop *l, int fd, uint32_t events, void *arg);

/* The headend is connected to only once the client has finished its TLS
 * handshake: an idle or half-open client costs the headend nothing. */
static bool conn_upstream(struct conn *c)
{
	char e[64];
	int sfd = listen_upstream(c->env->supply, &c->client, &c->dst);

	if (sfd < 0) {
		conn_close(c, "headend %s: upstream socket: %s",
			   session_addr_str(&c->dst, e, sizeof(e)), strerror(-sfd));
		return false;
	}
	c->s.fd = sfd;
	if (loop_add(c->env->loop, sfd, EPOLLOUT, conn_event, c) < 0) {
		conn_close(c, "headend: cannot watch the upstream socket");
		return false;
	}
	c->s.events = EPOLLOUT;
	return true;
}

static bool conn_handshake(struct conn *c)
{
	enum tls_res r;
	char e[160];
	bool progress = false;

	if (!c->c.hs_done) {
		r = tls_handshake(c->c.tls);
		c->c.rwant = TLS_OK;
		if (r == TLS_OK) {
			c->c.hs_done = progress = true;
			budget_promote(c->env->budget, &c->bn);
			ctr_inc(&c->env->ctr->tls_handshakes);
			if (tls_resumed(c->c.tls))
				ctr_inc(&c->env->ctr->tls_resumed);
		} else if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
			c->c.rwant = r;
		} else {
			conn_close(c, "client TLS handshake: %s",
				   r == TLS_EOF ? "client closed" : tls_error(c->c.tls, e, sizeof(e)));
			return false;
		}
	}
	if (!c->c.hs_done)
		return progress;
	if (c->s.fd < 0 && !conn_upstream(c))
		return false;
	if (!c->connected)
		return progress;
	if (!c->s.tls && !(c->s.tls = tls_connect_new(c->env->tls, c->s.fd, tls_sni(c->c.tls), &c->dst))) {
		conn_close(c, "headend TLS: cannot set up the connection");
		return false;
	}
	r = tls_handshake(c->s.tls);
	c->s.rwant = TLS_OK;
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->s.rwant = r;
		return progress;
	}
	conn_cert_requested(c);
	if (r != TLS_OK) {
		conn_close(c, "headend TLS handshake: %s",
			   r == TLS_EOF ? "headend closed" : tls_error(c->s.tls, e, sizeof(e)));
		return false;
	}
	c->s.hs_done = true;
	conn_check_leaf(c);
	c->state = CONN_HTTP;
	{
		char a[96], b[96], cl[64];

		log_debug("proxy %s: client %s, headend %s", session_addr_str(&c->client, cl, sizeof(cl)),
			  tls_describe(c->c.tls, a, sizeof(a)), tls_describe(c->s.tls, b, sizeof(b)));
	}
	return true;
}

/* ---- epoll interest ---- */

static uint32_t side_interest(const struct conn *c, const struct side *x, const struct dir *in,
			      const struct dir *out)
{
	uint32_t ev = 0;

	if (c->state == CONN_HANDSHAKE) {
		if (x == &c->s && !c->connected)
			return EPOLLOUT;
		if (x->rwant == TLS_WANT_READ)
			ev |= EPOLLIN;
		if (x->rwant == TLS_WANT_WRITE || tls_pending(x->tls))
			ev |= EPOLLOUT;
		return ev;
	}
	if (!x->eof && dir_room(in) && x->rwant != TLS_WANT_WRITE)
		ev |= EPOLLIN;
	if (x->rwant == TLS_WANT_WRITE || x->wwant == TLS_WANT_WRITE || tls_pending(x->tls))
		ev |= EPOLLOUT;
	if (x->wwant == TLS_WANT_READ)
		ev |= EPOLLIN;
	if (dir_write_len(c, out) && x->wwant == TLS_OK)
		ev |= EPOLLOUT;
	return ev;
}

static void conn_interest(struct conn *c)
{
	uint32_t ec = side_interest(c, &c->c, &c->up, &c->down);
	uint32_t es = side_interest(c, &c->s, &c->down, &c->up);

	if (ec != c->c.events && loop_mod(c->env->loop, c->c.fd, ec) == 0)
		c->c.events = ec;
	/* No headend socket before the client's handshake is done. */
	if (c->s.fd >= 0 && es != c->s.events && loop_mod(c->env->loop, c->s.fd, es) == 0)
		c->s.events = es;
}

/* ---- the pump ---- */

static bool conn_round(struct conn *c, uint8_t *tmp)
{
	bool p = false;

	if (c->state == CONN_HANDSHAKE) {
		p = conn_handshake(c);
		if (c->dead || c->state == CONN_HANDSHAKE)
			return p;
	}
	p |= side_read(c, &c->c, &c->up);
	if (!c->dead)
		p |= side_read(c, &c->s, &c->down);
	if (!c->dead && c->state == CONN_HTTP) {
		p |= conn_up_http(c, tmp);
		if (!c->dead)
			p |= conn_down_http(c, tmp);
	}
	if (!c->dead && c->state == CONN_TUNNEL) {
		/* The client's bytes after CONNECT wait in up: they are records now. */
		p |= conn_stream(c, &c->up, "client");
		if (!c->dead)
			p |= conn_stream(c, &c->down, "headend");
	}
	if (!c->dead)
		p |= side_write(c, &c->s, &c->up);
	if (!c->dead)
		p |= side_write(c, &c->c, &c->down);
	if (c->dead)
		return false;
	/* A side that closed ends the connection once what it sent is delivered. */
	if ((c->c.eof && side_drained(c, &c->s, &c->up)) ||
	    (!c->dead && c->s.eof && side_drained(c, &c->c, &c->down))) {
		/* Who sent DISCONNECT says more than who closed TCP first. */
		if (c->up.st.records[CSTP_DISCONNECT])
			conn_close(c, "client disconnected (CSTP DISCONNECT)");
		else if (c->down.st.records[CSTP_DISCONNECT] || c->down.st.records[CSTP_TERMINATE])
			conn_close(c, "headend ended the tunnel (CSTP %s)",
				   c->down.st.records[CSTP_TERMINATE] ? "TERMINATE" : "DISCONNECT");
		else
			conn_close(c, "%s closed the connection", c->c.eof ? "client" : "headend");
	}
	return c->dead ? false : p;
}

/* A login became a tunnel: it leaves the login budget for the tunnels'
 * (max_sessions). Logins in flight when the last slot went are closed. */
static bool conn_tunnel_counted(struct conn *c)
{
	struct conn_env *env = c->env;

	budget_remove(env->budget, &c->bn);
	if (env->ntunnels <= env->conf->proxy.max_sessions)
		return true;
	ctr_inc(&env->ctr->tunnels_full);
	conn_close(c, "max_sessions (%u) tunnels reached", env->conf->proxy.max_sessions);
	return false;
}

/* A login whose whole request went to the headend waits on its answer (a
 * push approval, a slow directory): neither idle nor the client's time. */
static void conn_login_waits(struct conn *c)
{
	bool waiting = c->h->npending && c->rq != REQ_BODY;

	budget_clock_wait(&c->clock, waiting, conn_now());
	budget_wait(c->env->budget, &c->bn, waiting);
}

static void conn_pump(struct conn *c)
{
	int i;

	/* Rewrites need a scratch head: one for the thread, made on first use. */
	if (!c->env->scratch && !(c->env->scratch = malloc(REWRITE_CAP))) {
		conn_close(c, "out of memory");
		return;
	}
	for (i = 0; i < PUMP_ROUNDS; i++)
		if (!conn_round(c, c->env->scratch))
			break;
	if (!c->dead && c->state == CONN_TUNNEL && c->bn.src && !conn_tunnel_counted(c))
		return;
	if (!c->dead && c->state == CONN_HTTP)
		conn_login_waits(c);
	/* One send() per side for what the rounds wrote (see tls_flush()). */
	if (c->dead || !side_flush(c, &c->c) || !side_flush(c, &c->s))
		return;
	if (i == PUMP_ROUNDS && !c->in_again) {
		/* Still busy: give the others a turn, come back through the kick fd. */
		uint64_t one = 1;

		c->in_again = true;
		c->again_next = c->env->again;
		c->env->again = c;
		if (write(c->env->kickfd, &one, sizeof(one)) < 0) {
			/* Already signalled: the counter is not zero. */
		}
	}
	dir_trim(&c->up);
	dir_trim(&c->down);
	tls_idle(c->c.tls);
	tls_idle(c->s.tls);
	conn_interest(c);
}

void conn_run_again(struct conn_env *env)
{
	struct conn *list = env->again;

	env->again = NULL;
	while (list) {
		struct conn *c = list;

		list = c->again_next;
		c->in_again = false;
		conn_pump(c);
		conn_reap(c);
	}
}

static void conn_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	char e[64];
	int r;

	(void)l;
	if (fd == c->s.fd && !c->connected) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if ((r = listen_connected(fd)) < 0) {
			conn_close(c, "headend %s: connect: %s", session_addr_str(&c->dst, e, sizeof(e)),
				   strerror(-r));
			conn_reap(c);
			return;
		}
		c->connected = true;
	}
	/* Activity as the login budget sees it: the client's bytes only. */
	if (fd == c->c.fd && (events & EPOLLIN))
		budget_touch(c->env->budget, &c->bn);
	conn_pump(c);
	/* An error or hang-up the pump could not act on would fire forever. */
	if (!c->dead && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN) &&
	    !((fd == c->c.fd ? c->c.events : c->s.events) & EPOLLIN))
		conn_close(c, "%s reset the connection", fd == c->c.fd ? "client" : "headend");
	conn_reap(c);
}

/* The login budget is full for client: close the least recently active
 * login (the source's own first) until the newcomer fits. */
static void conn_make_room(struct conn_env *env, const struct sockaddr_storage *client)
{
	struct budget_node *v;
	int family;
	const uint8_t *a = conn_addr(client, &family);

	while ((v = budget_victim(env->budget, family, a))) {
		struct conn *old = (struct conn *)(void *)((char *)v - offsetof(struct conn, bn));
		bool own = budget_source_count(env->budget, family, a) >=
			   env->conf->proxy.login_per_source;

		ctr_inc(&env->ctr->login_evicted);
		conn_close(old, "login budget: %u %s, this one the least recently active",
			   own ? env->conf->proxy.login_per_source : env->conf->proxy.login_max,
			   own ? "from this source" : "in all");
		conn_reap(old);
	}
}

struct conn *conn_new(struct conn_env *env, int cfd, const struct sockaddr_storage *client,
		      const struct sockaddr_storage *dst)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct conn_http *h = calloc(1, sizeof(*h));
	int family;
	const uint8_t *a = conn_addr(client, &family);

	if (!c || !h) {
		free(c);
		free(h);
		close(cfd);
		log_warnx("proxy: out of memory for a connection");
		errno = ENOMEM;
		return NULL;
	}
	*c = (struct conn){ .env = env, .c = { .name = "client", .fd = cfd },
			    .s = { .name = "headend", .fd = -1 }, .client = *client, .dst = *dst,
			    .session = -1, .h = h };
	c->started = c->active = conn_now();
	budget_clock_start(&c->clock, c->started);
	conn_make_room(env, client);
	/* The list first: conn_close() unlinks whatever state it finds. */
	c->next = env->head;
	if (env->head)
		env->head->prev = c;
	env->head = c;
	env->nconns++;
	if (budget_add(env->budget, &c->bn, family, a) < 0 ||
	    !(c->c.tls = tls_accept_new(env->tls, cfd)) ||
	    loop_add(env->loop, cfd, EPOLLIN, conn_event, c) < 0) {
		conn_close(c, "cannot set the connection up");
		conn_reap(c);
		errno = 0;
		return NULL;
	}
	c->c.events = EPOLLIN;
	return c;
}

void conn_tick(struct conn_env *env)
{
	const struct conf *cf = env->conf;
	struct conn *c = env->head, *next;
	time_t now = conn_now();
	/* Byte counts go to the table in batches: one lock per CONN_BYTES_BATCH
	 * tunnels, not one per tunnel (the DTLS path reads under that lock). */
	struct session_bytes batch[CONN_BYTES_BATCH];
	size_t nb = 0;

	conn_log_held(budget_log_flush(&env->closelog, now));
	for (; c; c = next) {
		next = c->next;
		if (c->state == CONN_HANDSHAKE && now - c->started >= (time_t)cf->proxy.handshake_timeout)
			conn_close(c, "TLS handshake timeout (%u s)%s", cf->proxy.handshake_timeout,
				   c->c.hs_done ? ", waiting for the headend" : "");
		/* From accept to the CONNECT's answer, whatever bytes trickle in,
		 * less the waits on the headend's answers; each of those is
		 * bounded on its own. */
		else if (c->state != CONN_TUNNEL &&
			 budget_clock_client(&c->clock, now) >= (time_t)cf->proxy.login_timeout) {
			ctr_inc(&env->ctr->login_deadline);
			conn_close(c, "login_timeout (%u s in the client's hands since accept)",
				   cf->proxy.login_timeout);
		} else if (c->state == CONN_HTTP &&
			   budget_clock_headend(&c->clock, now) >= (time_t)cf->proxy.login_timeout) {
			ctr_inc(&env->ctr->login_deadline);
			conn_close(c, "login_timeout (%u s waiting on the headend's answer)",
				   cf->proxy.login_timeout);
		} else if (c->state == CONN_HTTP && !c->clock.waiting &&
			   now - c->active >= (time_t)cf->proxy.idle_timeout)
			conn_close(c, "idle timeout (%u s)", cf->proxy.idle_timeout);
		else if (c->state == CONN_TUNNEL && c->quiet_limit &&
			 now - c->active >= (time_t)c->quiet_limit)
			conn_close(c, "idle timeout (%u s: three DPD or keepalive intervals)",
				   c->quiet_limit);
		if (c->dead)
			conn_reap(c);
		else if (c->session >= 0) {
			conn_count_rekeys(c);
			batch[nb++] = (struct session_bytes){ .handle = c->session, .up = c->up.st.bytes,
							      .down = c->down.st.bytes };
		}
		if (nb == CONN_BYTES_BATCH || (!next && nb)) {
			session_set_bytes_many(env->sessions, batch, nb);
			nb = 0;
		}
	}
}

void conn_close_all(struct conn_env *env, const char *reason)
{
	while (env->head) {
		struct conn *c = env->head;

		conn_close(c, "%s", reason);
		conn_reap(c);
	}
	free(env->scratch);
	env->scratch = NULL;
}
