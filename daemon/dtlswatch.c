#include "daemon/dtlswatch.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clamp/nflog.h"
#include "daemon/log.h"
#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/session.h"

#define DTLSWATCH_BATCH 64	/* events per look at the table */
#define DTLSWATCH_SNAPLEN 128	/* IPv6 and UDP headers, with room */

struct dtlswatch {
	struct policy_box *box;
	struct session_table *t;
	struct counters *ctr;	/* this thread's set */
	int fd;			/* the NFLOG group */
};

struct dtlswatch *dtlswatch_new(struct stats *s, struct policy_box *box, struct session_table *t,
				uint16_t group)
{
	struct dtlswatch *w = calloc(1, sizeof(*w));
	int fd;

	if (!w)
		return NULL;
	if ((fd = nflog_open(group, DTLSWATCH_SNAPLEN)) < 0) {
		free(w);
		errno = -fd;
		return NULL;
	}
	if (!(w->ctr = stats_new_set(s))) {
		close(fd);
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->fd = fd;
	w->box = box;
	w->t = t;
	return w;
}

void dtlswatch_free(struct dtlswatch *w)
{
	if (w)
		close(w->fd);
	free(w);	/* the counter set is the registry's */
}

int dtlswatch_fd(const struct dtlswatch *w)
{
	return w->fd;
}

/* The client end of a logged UDP datagram: its destination address and
 * port. The copy is cut at DTLSWATCH_SNAPLEN, so no length is checked
 * against the header's (pkt_parse() would); the rules log UDP only. */
static bool dtlswatch_client(const uint8_t *b, size_t len, int *family, const uint8_t **addr,
			     uint16_t *port)
{
	size_t l4;

	if (len >= 20 && b[0] >> 4 == 4 && b[9] == 17) {
		*family = AF_INET;
		*addr = b + 16;
		l4 = (size_t)(b[0] & 0xf) * 4;
	} else if (len >= 40 && b[0] >> 4 == 6 && b[6] == 17) {
		*family = AF_INET6;
		*addr = b + 24;
		l4 = 40;
	} else {
		return false;
	}
	if (l4 < 20 || len < l4 + 4)
		return false;
	*port = (uint16_t)(b[l4 + 2] << 8 | b[l4 + 3]);
	return true;
}

/* One logged answer: the headend's datagram to the client's flow. */
static void dtlswatch_answer(struct dtlswatch *w, const struct policy *p, const uint8_t *buf,
			     size_t len)
{
	char name[SESSION_GROUP_MAX];
	const struct group *g;
	const uint8_t *addr;
	uint16_t port;
	int family;

	if (!dtlswatch_client(buf, len, &family, &addr, &port))
		return;
	if (session_dtls_answer(w->t, family, addr, port, name, sizeof(name)) == 1 &&
	    (g = policy_by_name(p, name)) && g->slot < STATS_MAX_GROUPS)
		ctr_inc(&w->ctr->g[g->slot].dtls_established);
}

void dtlswatch_read(struct dtlswatch *w)
{
	_Alignas(uint32_t) uint8_t buf[65536];	/* netlink messages are 4-aligned */
	struct nflog_pkt pk[64];
	struct policy *p = policy_hold(w->box);
	ssize_t n;

	/* A few datagrams a flow: read until the socket is empty. */
	while ((n = recv(w->fd, buf, sizeof(buf), 0)) > 0) {
		size_t np = nflog_parse(buf, (size_t)n, pk, sizeof(pk) / sizeof(pk[0]));

		for (size_t i = 0; i < np; i++)
			dtlswatch_answer(w, p, pk[i].buf, pk[i].len);
	}
	if (n < 0 && errno == ENOBUFS)
		log_limited(log_warnx, "sessions: DTLS answers lost (NFLOG socket full)");
	policy_release(p);
}

static void dtlswatch_event(struct dtlswatch *w, const struct policy *p,
			    const struct session_event *ev)
{
	const struct session_info *s = &ev->s;
	const struct group *g = s->group[0] ? policy_by_name(p, s->group) : NULL;
	char cl[64];

	session_addr_str(&s->client, cl, sizeof(cl));
	if (g && g->slot < STATS_MAX_GROUPS) {
		ctr_inc(&w->ctr->g[g->slot].dtls_failed);
		if (ev->predicted)
			ctr_inc(&w->ctr->g[g->slot].reconnects_predicted);
	}
	if (ev->predicted)
		log_warnx("session of user %s, group %s, client %s: DTLS not established after %d s;"
			  " adapter MTU %u > TLS MTU %u: AnyConnect will reconnect (reason 16)",
			  s->user[0] ? s->user : "-", s->group[0] ? s->group : "-", cl,
			  SESSION_DTLS_DEADLINE, session_adapter_mtu(s), s->sent_mtu);
	else
		log_info("session of user %s, group %s, client %s: DTLS not established after %d s"
			 " (X-CSTP-MTU %u, X-DTLS-MTU %u)", s->user[0] ? s->user : "-",
			 s->group[0] ? s->group : "-", cl, SESSION_DTLS_DEADLINE, s->sent_mtu,
			 s->sent_dtls_mtu);
}

void dtlswatch_tick(struct dtlswatch *w)
{
	struct session_event ev[DTLSWATCH_BATCH];
	size_t n;
	struct policy *p = policy_hold(w->box);

	do {
		n = session_sweep(w->t, (int64_t)time(NULL), ev, DTLSWATCH_BATCH);
		for (size_t i = 0; i < n; i++)
			dtlswatch_event(w, p, &ev[i]);
	} while (n == DTLSWATCH_BATCH);
	policy_release(p);
}
