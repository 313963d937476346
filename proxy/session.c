#include "proxy/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"

struct session_entry {
	struct session_info s;
	bool used;
	int next;	/* hash chain, or free list; -1 ends */
};

struct session_table {
	pthread_mutex_t lock;
	struct session_entry *e;
	size_t n, cap, max, count;	/* n: slots ever used; cap: allocated */
	int free_head;
	int *buckets;
	size_t nbuckets;		/* a power of two */
};

static uint32_t session_hash(const uint8_t *id, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ id[i]) * 16777619u;
	return h;
}

struct session_table *session_table_new(size_t max)
{
	struct session_table *t = calloc(1, sizeof(*t));
	size_t nb = 64;

	if (!t)
		return NULL;
	while (nb < max / 2 && nb < 65536)
		nb *= 2;
	t->buckets = malloc(nb * sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < nb; i++)
		t->buckets[i] = -1;
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
	free(t->buckets);
	free(t->e);
	free(t);
}

static int *session_bucket(struct session_table *t, const uint8_t *id, size_t len)
{
	return &t->buckets[session_hash(id, len) & (t->nbuckets - 1)];
}

static int session_find(struct session_table *t, const uint8_t *id, size_t len)
{
	for (int i = *session_bucket(t, id, len); i >= 0; i = t->e[i].next)
		if (t->e[i].s.id_len == len && memcmp(t->e[i].s.id, id, len) == 0)
			return i;
	return -1;
}

static void session_unlink(struct session_table *t, int h)
{
	struct session_info *s = &t->e[h].s;
	int *p = session_bucket(t, s->id, s->id_len);

	while (*p >= 0 && *p != h)
		p = &t->e[*p].next;
	if (*p == h)
		*p = t->e[h].next;
	s->id_len = 0;
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
	int h = -1, old;

	pthread_mutex_lock(&t->lock);
	if (t->count >= t->max || (h = session_slot(t)) < 0)
		goto out;
	t->e[h] = (struct session_entry){ .s = *s, .used = true, .next = -1 };
	if (t->e[h].s.id_len > SESSION_ID_MAX)
		t->e[h].s.id_len = 0;
	if (t->e[h].s.id_len) {
		/* A reconnect presents the same id: the newest session owns it. */
		if ((old = session_find(t, s->id, s->id_len)) >= 0)
			session_unlink(t, old);
		int *b = session_bucket(t, s->id, s->id_len);
		t->e[h].next = *b;
		*b = h;
	}
	t->count++;
out:
	pthread_mutex_unlock(&t->lock);
	return h;
}

void session_remove(struct session_table *t, int h)
{
	pthread_mutex_lock(&t->lock);
	if (h >= 0 && (size_t)h < t->n && t->e[h].used) {
		if (t->e[h].s.id_len)
			session_unlink(t, h);
		t->e[h].used = false;
		t->e[h].next = t->free_head;
		t->free_head = h;
		t->count--;
	}
	pthread_mutex_unlock(&t->lock);
}

void session_set_bytes(struct session_table *t, int h, uint64_t up, uint64_t down)
{
	pthread_mutex_lock(&t->lock);
	if (h >= 0 && (size_t)h < t->n && t->e[h].used) {
		t->e[h].s.bytes_up = up;
		t->e[h].s.bytes_down = down;
	}
	pthread_mutex_unlock(&t->lock);
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

static bool session_from(const struct sockaddr_storage *ss, int family, const uint8_t *addr)
{
	if (ss->ss_family != family)
		return false;
	if (family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)(const void *)ss)->sin_addr, addr, 4);
	return !memcmp(&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr, addr, 16);
}

bool session_group_by_client(struct session_table *t, int family, const uint8_t *addr,
			     char *name, size_t cap)
{
	const char *found = NULL;
	bool one = true;

	if (!cap)
		return false;
	pthread_mutex_lock(&t->lock);
	/* A scan: only a flow's first datagrams that are no ClientHello come here. */
	for (size_t i = 0; i < t->n && one; i++) {
		const struct session_info *s = &t->e[i].s;

		if (!t->e[i].used || !session_from(&s->client, family, addr))
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

const char *session_dtls_str(enum session_dtls d)
{
	switch (d) {
	case SESSION_DTLS_NONE: return "none";
	case SESSION_DTLS_BLOCKED: return "blocked";
	case SESSION_DTLS_RELAYED: return "relayed";
	case SESSION_DTLS_PASSED: return "passed";
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

static void session_fmt_one(const struct session_info *s, struct strbuf *out)
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
	strbuf_printf(out, "session\tclient=%s group=%s address=%s%s%s mtu_offered=%u/%u"
		      " mtu_sent=%u/%u dtls=%s bytes_up=%llu bytes_down=%llu %s=%s\n",
		      client, s->group[0] ? s->group : "-", a4, a4[0] && a6[0] ? "," : "",
		      a4[0] || a6[0] ? a6 : "-", s->cstp_mtu, s->dtls_mtu, s->sent_mtu,
		      s->sent_dtls_mtu, session_dtls_str(s->dtls), (unsigned long long)s->bytes_up,
		      (unsigned long long)s->bytes_down, s->id_is_app ? "app_id" : "session_id", id);
}

void session_format(struct session_table *t, struct strbuf *out)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].used)
			session_fmt_one(&t->e[i].s, out);
	pthread_mutex_unlock(&t->lock);
}
