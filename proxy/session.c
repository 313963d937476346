#include "proxy/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"
#include "policy/policy.h"

/* Every lookup the packet path makes is a hash chain: by DTLS id, by the
 * outer client address (its port left out: a NAT changes it), and by the
 * inner (tunnel) address. No lookup scans the table under the mutex. */
enum session_key { SK_ID, SK_CLIENT, SK_ADDR4, SK_ADDR6, SK_FLOW, SK_N };

/* A DTLS flow's client end: family, address, port. */
#define SESSION_FLOW_MAX (1 + 16 + 2)
#define SESSION_PREDICTIONS 256	/* recent predictions, the oldest overwritten */

struct session_entry {
	struct session_info s;
	uint8_t flow[SESSION_FLOW_MAX];	/* the DTLS flow its ClientHello came in */
	size_t flow_len;
	bool used;
	bool linked[SK_N];
	int next;		/* the free list; -1 ends */
	int chain[SK_N];	/* hash chains; -1 ends */
};

struct session_table {
	pthread_mutex_t lock;
	struct session_entry *e;
	size_t n, cap, max, count;	/* n: slots ever used; cap: allocated */
	int free_head;
	int *buckets[SK_N];
	size_t nbuckets;		/* a power of two, per key */
	struct session_hooks hooks;
	struct {
		uint8_t key[SESSION_KEY_LEN];
		int64_t at;		/* 0: free */
	} pred[SESSION_PREDICTIONS];
	size_t pred_next;
};

static uint32_t session_hash(const uint8_t *id, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ id[i]) * 16777619u;
	return h;
}

/* The bytes of key k of entry e, or NULL when it has none. */
static const uint8_t *session_key(const struct session_entry *e, enum session_key k, size_t *len)
{
	const struct session_info *s = &e->s;

	switch (k) {
	case SK_ID:
		*len = s->id_len;
		return s->id_len ? s->id : NULL;
	case SK_CLIENT:
		if (s->client.ss_family == AF_INET) {
			*len = 4;
			return (const uint8_t *)&((const struct sockaddr_in *)(const void *)&s->client)->sin_addr;
		}
		*len = 16;
		return s->client.ss_family == AF_INET6 ?
		       ((const struct sockaddr_in6 *)(const void *)&s->client)->sin6_addr.s6_addr : NULL;
	case SK_ADDR4:
		*len = 4;
		return s->has_addr4 ? s->addr4 : NULL;
	case SK_ADDR6:
		*len = 16;
		return s->has_addr6 ? s->addr6 : NULL;
	case SK_FLOW:
		*len = e->flow_len;
		return e->flow_len ? e->flow : NULL;
	default:
		return NULL;
	}
}

struct session_table *session_table_new(size_t max)
{
	struct session_table *t = calloc(1, sizeof(*t));
	size_t nb = 64;

	if (!t)
		return NULL;
	while (nb < max / 2 && nb < 65536)
		nb *= 2;
	for (int k = 0; k < SK_N; k++) {
		if (!(t->buckets[k] = malloc(nb * sizeof(*t->buckets[k])))) {
			while (k--)
				free(t->buckets[k]);
			free(t);
			return NULL;
		}
		for (size_t i = 0; i < nb; i++)
			t->buckets[k][i] = -1;
	}
	t->nbuckets = nb;
	t->max = max;
	t->free_head = -1;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void session_table_free(struct session_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	for (int k = 0; k < SK_N; k++)
		free(t->buckets[k]);
	free(t->e);
	free(t);
}

static int *session_bucket(struct session_table *t, enum session_key k, const uint8_t *key,
			   size_t len)
{
	return &t->buckets[k][session_hash(key, len) & (t->nbuckets - 1)];
}

/* Entry h is on chain k under this key. For SK_CLIENT the family counts
 * too (4 bytes of IPv4 are no IPv6 address). */
static bool session_has_key(const struct session_entry *e, enum session_key k, int family,
			    const uint8_t *key, size_t len)
{
	size_t l;
	const uint8_t *b = session_key(e, k, &l);

	return b && l == len && !memcmp(b, key, len) &&
	       (k != SK_CLIENT || e->s.client.ss_family == family);
}

/* The newest entry with this key on chain k (new entries go first), or -1. */
static int session_find_key(struct session_table *t, enum session_key k, int family,
			    const uint8_t *key, size_t len)
{
	for (int i = *session_bucket(t, k, key, len); i >= 0; i = t->e[i].chain[k])
		if (session_has_key(&t->e[i], k, family, key, len))
			return i;
	return -1;
}

static int session_find(struct session_table *t, const uint8_t *id, size_t len)
{
	return session_find_key(t, SK_ID, 0, id, len);
}

static void session_link(struct session_table *t, int h, enum session_key k)
{
	size_t len;
	const uint8_t *key = session_key(&t->e[h], k, &len);
	int *b;

	if (!key)
		return;
	b = session_bucket(t, k, key, len);
	t->e[h].chain[k] = *b;
	*b = h;
	t->e[h].linked[k] = true;
}

static void session_unlink_key(struct session_table *t, int h, enum session_key k)
{
	size_t len;
	const uint8_t *key = session_key(&t->e[h], k, &len);
	int *p;

	if (!t->e[h].linked[k] || !key)
		return;
	p = session_bucket(t, k, key, len);
	while (*p >= 0 && *p != h)
		p = &t->e[*p].chain[k];
	if (*p == h)
		*p = t->e[h].chain[k];
	t->e[h].linked[k] = false;
}

/* Off the id chain only: a reconnect took the id over. */
static void session_unlink(struct session_table *t, int h)
{
	session_unlink_key(t, h, SK_ID);
	t->e[h].s.id_len = 0;
}

static int session_slot(struct session_table *t)
{
	int h;

	if (t->free_head >= 0) {
		h = t->free_head;
		t->free_head = t->e[h].next;
		return h;
	}
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		struct session_entry *ne;

		if (nc > t->max)
			nc = t->max;
		if (!(ne = realloc(t->e, nc * sizeof(*ne))))
			return -1;
		t->e = ne;
		t->cap = nc;
	}
	return (int)t->n++;
}

int session_add(struct session_table *t, const struct session_info *s)
{
	struct session_info si;
	int h = -1, old;

	pthread_mutex_lock(&t->lock);
	if (t->count >= t->max || (h = session_slot(t)) < 0)
		goto out;
	t->e[h] = (struct session_entry){ .s = *s, .used = true, .next = -1 };
	if (t->e[h].s.id_len > SESSION_ID_MAX)
		t->e[h].s.id_len = 0;
	/* A reconnect presents the same id: the newest session owns it. */
	if (t->e[h].s.id_len && (old = session_find(t, s->id, s->id_len)) >= 0)
		session_unlink(t, old);
	for (int k = 0; k < SK_N; k++)
		session_link(t, h, (enum session_key)k);
	t->count++;
	si = t->e[h].s;
out:
	pthread_mutex_unlock(&t->lock);
	if (h >= 0 && t->hooks.added)
		t->hooks.added(t->hooks.arg, h, &si);
	return h;
}

static bool session_drop(struct session_table *t, int h)
{
	if (h < 0 || (size_t)h >= t->n || !t->e[h].used)
		return false;
	for (int k = 0; k < SK_N; k++)
		session_unlink_key(t, h, (enum session_key)k);
	t->e[h].used = false;
	t->e[h].next = t->free_head;
	t->free_head = h;
	t->count--;
	return true;
}

void session_remove(struct session_table *t, int h)
{
	bool gone;

	pthread_mutex_lock(&t->lock);
	gone = session_drop(t, h);
	pthread_mutex_unlock(&t->lock);
	if (gone && t->hooks.removed)
		t->hooks.removed(t->hooks.arg, h);
}

void session_set_dtls(struct session_table *t, int h, enum session_dtls d)
{
	pthread_mutex_lock(&t->lock);
	if (h >= 0 && (size_t)h < t->n && t->e[h].used)
		t->e[h].s.dtls = d;
	pthread_mutex_unlock(&t->lock);
}

void session_clear(struct session_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++)
		session_drop(t, (int)i);
	pthread_mutex_unlock(&t->lock);
}

void session_table_hooks(struct session_table *t, const struct session_hooks *h)
{
	t->hooks = *h;
}

bool session_get(struct session_table *t, int h, struct session_info *out)
{
	bool ok;

	pthread_mutex_lock(&t->lock);
	ok = h >= 0 && (size_t)h < t->n && t->e[h].used;
	if (ok)
		*out = t->e[h].s;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void session_set_bytes(struct session_table *t, int h, uint64_t up, uint64_t down)
{
	const struct session_bytes b = { .handle = h, .up = up, .down = down };

	session_set_bytes_many(t, &b, 1);
}

void session_set_bytes_many(struct session_table *t, const struct session_bytes *v, size_t n)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		int h = v[i].handle;

		if (h >= 0 && (size_t)h < t->n && t->e[h].used) {
			t->e[h].s.bytes_up = v[i].up;
			t->e[h].s.bytes_down = v[i].down;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (n && t->hooks.bytes)
		t->hooks.bytes(t->hooks.arg, v, n);
}

size_t session_count(struct session_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

bool session_group_by_id(struct session_table *t, const uint8_t *id, size_t len, char *name,
			 size_t cap)
{
	int h;

	if (!len || len > SESSION_ID_MAX || !cap)
		return false;
	pthread_mutex_lock(&t->lock);
	if ((h = session_find(t, id, len)) >= 0)
		snprintf(name, cap, "%s", t->e[h].s.group);
	pthread_mutex_unlock(&t->lock);
	return h >= 0;
}

bool session_group_by_client(struct session_table *t, int family, const uint8_t *addr,
			     char *name, size_t cap)
{
	const char *found = NULL;
	bool one = true;
	size_t len = family == AF_INET6 ? 16 : 4;

	if (!cap || (family != AF_INET && family != AF_INET6))
		return false;
	pthread_mutex_lock(&t->lock);
	/* The chain of this address's bucket: its tunnels and a few others. */
	for (int i = *session_bucket(t, SK_CLIENT, addr, len); i >= 0 && one; i = t->e[i].chain[SK_CLIENT]) {
		const struct session_info *s = &t->e[i].s;

		if (!session_has_key(&t->e[i], SK_CLIENT, family, addr, len))
			continue;
		if (found && strcmp(found, s->group))
			one = false;
		found = s->group;
	}
	one = one && found && found[0];
	if (one)
		snprintf(name, cap, "%s", found);
	pthread_mutex_unlock(&t->lock);
	return one;
}

bool session_group_by_addr(struct session_table *t, int family, const uint8_t *addr, char *name,
			   size_t cap)
{
	enum session_key k = family == AF_INET6 ? SK_ADDR6 : SK_ADDR4;
	int h;

	if (!cap || (family != AF_INET && family != AF_INET6))
		return false;
	pthread_mutex_lock(&t->lock);
	h = session_find_key(t, k, family, addr, family == AF_INET6 ? 16 : 4);
	if (h >= 0)
		snprintf(name, cap, "%s", t->e[h].s.group);
	pthread_mutex_unlock(&t->lock);
	return h >= 0 && name[0];
}

const struct group *session_pool_group(struct session_table *t, const struct policy *pol,
				       int family, const uint8_t *addr)
{
	const struct group *g = policy_by_pool(pol, family, addr), *tg;
	char name[SESSION_GROUP_MAX];

	if (!g || !g->pool_shared || !t || !session_group_by_addr(t, family, addr, name, sizeof(name)))
		return g;
	tg = policy_by_name(pol, name);
	return tg && group_has_addr(tg, family, addr) ? tg : g;
}

/* The flow key of a DTLS client end (family AF_INET or AF_INET6). */
static size_t session_flow_key(uint8_t *k, int family, const uint8_t *addr, uint16_t port)
{
	size_t alen = family == AF_INET6 ? 16 : 4;

	k[0] = (uint8_t)family;
	memcpy(k + 1, addr, alen);
	k[1 + alen] = (uint8_t)(port >> 8);
	k[2 + alen] = (uint8_t)port;
	return 3 + alen;
}

bool session_dtls_hello(struct session_table *t, const uint8_t *id, size_t len, int family,
			const uint8_t *addr, uint16_t port, char *name, size_t cap)
{
	int h;

	if (!len || len > SESSION_ID_MAX || !cap || (family != AF_INET && family != AF_INET6))
		return false;
	pthread_mutex_lock(&t->lock);
	if ((h = session_find(t, id, len)) >= 0) {
		snprintf(name, cap, "%s", t->e[h].s.group);
		/* A retransmitted hello, or a new port after a NAT rebinding. */
		session_unlink_key(t, h, SK_FLOW);
		t->e[h].flow_len = session_flow_key(t->e[h].flow, family, addr, port);
		session_link(t, h, SK_FLOW);
	}
	pthread_mutex_unlock(&t->lock);
	return h >= 0;
}

/* The one session of this client address that was offered DTLS and has no
 * flow yet, or -1 (none, or several: a NAT address). Its hello reached the
 * DTLS queue before the proxy's announcement of the tunnel (a busy gateway),
 * so no flow was bound; the headend's answer binds it. Lock held. */
static int session_unbound_offer(struct session_table *t, int family, const uint8_t *addr)
{
	size_t len = family == AF_INET6 ? 16 : 4;
	int found = -1;

	for (int i = *session_bucket(t, SK_CLIENT, addr, len); i >= 0; i = t->e[i].chain[SK_CLIENT]) {
		const struct session_entry *e = &t->e[i];

		if (!session_has_key(e, SK_CLIENT, family, addr, len) || e->flow_len ||
		    (e->s.dtls != SESSION_DTLS_OFFERED && e->s.dtls != SESSION_DTLS_FAILED))
			continue;
		if (found >= 0)
			return -1;
		found = i;
	}
	return found;
}

int session_dtls_answer(struct session_table *t, int family, const uint8_t *addr, uint16_t port,
			char *name, size_t cap)
{
	uint8_t k[SESSION_FLOW_MAX];
	size_t klen;
	int h, r = -1;

	if (family != AF_INET && family != AF_INET6)
		return -1;
	klen = session_flow_key(k, family, addr, port);
	pthread_mutex_lock(&t->lock);
	if ((h = session_find_key(t, SK_FLOW, 0, k, klen)) < 0 &&
	    (h = session_unbound_offer(t, family, addr)) >= 0) {
		t->e[h].flow_len = session_flow_key(t->e[h].flow, family, addr, port);
		session_link(t, h, SK_FLOW);
	}
	if (h >= 0) {
		struct session_info *s = &t->e[h].s;

		/* Late is still established: the client may yet use it. */
		r = s->dtls == SESSION_DTLS_OFFERED || s->dtls == SESSION_DTLS_FAILED;
		if (r)
			s->dtls = SESSION_DTLS_ESTABLISHED;
		if (cap)
			snprintf(name, cap, "%s", s->group);
	}
	pthread_mutex_unlock(&t->lock);
	if (r == 1 && t->hooks.dtls)
		t->hooks.dtls(t->hooks.arg, h, SESSION_DTLS_ESTABLISHED);
	return r;
}

unsigned session_adapter_mtu(const struct session_info *s)
{
	return s->sent_dtls_mtu > s->sent_mtu ? s->sent_dtls_mtu : s->sent_mtu;
}

bool session_will_reconnect(const struct session_info *s)
{
	return s->sent_mtu && session_adapter_mtu(s) > s->sent_mtu;
}

static bool session_key_set(const uint8_t *key)
{
	for (size_t i = 0; i < SESSION_KEY_LEN; i++)
		if (key[i])
			return true;
	return false;
}

size_t session_sweep(struct session_table *t, int64_t now, struct session_event *ev, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n && n < max; i++) {
		struct session_info *s = &t->e[i].s;

		if (!t->e[i].used || s->dtls != SESSION_DTLS_OFFERED ||
		    now - s->since < SESSION_DTLS_DEADLINE)
			continue;
		s->dtls = SESSION_DTLS_FAILED;
		ev[n].s = *s;
		ev[n].handle = (int)i;
		ev[n].predicted = s->observed && session_will_reconnect(s);
		if (ev[n].predicted && session_key_set(s->key)) {
			memcpy(t->pred[t->pred_next].key, s->key, SESSION_KEY_LEN);
			t->pred[t->pred_next].at = now;
			t->pred_next = (t->pred_next + 1) % SESSION_PREDICTIONS;
		}
		n++;
	}
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < n && t->hooks.dtls; i++)
		t->hooks.dtls(t->hooks.arg, ev[i].handle, SESSION_DTLS_FAILED);
	return n;
}

bool session_prediction_kept(struct session_table *t, const uint8_t key[SESSION_KEY_LEN],
			     int64_t now)
{
	bool kept = false;

	if (!session_key_set(key))
		return false;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < SESSION_PREDICTIONS && !kept; i++) {
		if (!t->pred[i].at || memcmp(t->pred[i].key, key, SESSION_KEY_LEN))
			continue;
		kept = now - t->pred[i].at <= SESSION_PREDICT_WINDOW;
		t->pred[i].at = 0;	/* one reconnect confirms one prediction */
	}
	pthread_mutex_unlock(&t->lock);
	return kept;
}

void session_count_groups(struct session_table *t, const char *const *names, size_t n,
			  uint64_t *counts)
{
	memset(counts, 0, n * sizeof(*counts));
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		if (!t->e[i].used)
			continue;
		for (size_t k = 0; k < n; k++)
			if (strcmp(names[k], t->e[i].s.group) == 0) {
				counts[k]++;
				break;
			}
	}
	pthread_mutex_unlock(&t->lock);
}

const char *session_dtls_str(enum session_dtls d)
{
	switch (d) {
	case SESSION_DTLS_NONE: return "none";
	case SESSION_DTLS_OFFERED: return "offered";
	case SESSION_DTLS_ESTABLISHED: return "established";
	case SESSION_DTLS_FAILED: return "failed";
	case SESSION_DTLS_BLOCKED: return "blocked";
	}
	return "?";
}

const char *session_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "-");
	}
	return buf;
}

/* Percent-encode what is no visible ASCII, and the characters the line
 * protocol or the key=value pairs use. */
static void session_put_user(const char *u, struct strbuf *out)
{
	for (; *u; u++) {
		unsigned char c = (unsigned char)*u;

		if (c > 0x20 && c < 0x7f && c != '%' && c != '=')
			strbuf_append(out, u, 1);
		else
			strbuf_printf(out, "%%%02X", c);
	}
}

void session_format_one(const struct session_info *s, struct strbuf *out)
{
	char client[INET6_ADDRSTRLEN + 10], a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";
	char id[2 * SESSION_ID_MAX + 1] = "-";

	session_addr_str(&s->client, client, sizeof(client));
	if (s->has_addr4)
		inet_ntop(AF_INET, s->addr4, a4, sizeof(a4));
	if (s->has_addr6)
		inet_ntop(AF_INET6, s->addr6, a6, sizeof(a6));
	for (size_t i = 0; i < s->id_len; i++)
		snprintf(id + 2 * i, 3, "%02x", s->id[i]);
	strbuf_printf(out, "session\tuser=");
	session_put_user(s->user, out);
	strbuf_printf(out, " group=%s client=%s addresses=%s%s%s since=%lld mtu_offered=%u/%u"
		      " mtu_sent=%u/%u dtls=%s reconnects=%u bytes_in=%llu bytes_out=%llu %s=%s"
		      " worker=%u\n",
		      s->group[0] ? s->group : "-", client, a4, a4[0] && a6[0] ? "," : "",
		      a4[0] || a6[0] ? a6 : "-", (long long)s->since, s->cstp_mtu, s->dtls_mtu,
		      s->sent_mtu, s->sent_dtls_mtu, session_dtls_str(s->dtls), s->reconnects,
		      (unsigned long long)s->bytes_up, (unsigned long long)s->bytes_down,
		      s->id_is_app ? "app_id" : "session_id", id, s->worker);
}

void session_format(struct session_table *t, struct strbuf *out)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].used)
			session_format_one(&t->e[i].s, out);
	pthread_mutex_unlock(&t->lock);
}
