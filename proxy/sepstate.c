#include "proxy/sepstate.h"

#include <errno.h>
#include <stdlib.h>

#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/sepmsg.h"
#include "proxy/session.h"

struct sepstate {
	struct session_table *t;
	int *map;		/* worker w's handle h -> ours at w * max + h, -1: none */
	size_t max;
	unsigned nworkers;
	size_t *live;		/* per worker */
	uint64_t *ticks;	/* per worker */
	struct counters *ctr;
	struct policy_box *box;
};

struct sepstate *sepstate_new(struct session_table *t, size_t max, unsigned nworkers,
			      struct counters *ctr, struct policy_box *box)
{
	struct sepstate *st = calloc(1, sizeof(*st));
	size_t n = (max ? max : 1) * (nworkers ? nworkers : 1);

	if (!st || !(st->map = malloc(n * sizeof(*st->map))) ||
	    !(st->live = calloc(nworkers ? nworkers : 1, sizeof(*st->live))) ||
	    !(st->ticks = calloc(nworkers ? nworkers : 1, sizeof(*st->ticks)))) {
		sepstate_free(st);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		st->map[i] = -1;
	st->t = t;
	st->max = max;
	st->nworkers = nworkers ? nworkers : 1;
	st->ctr = ctr;
	st->box = box;
	return st;
}

void sepstate_free(struct sepstate *st)
{
	if (!st)
		return;
	free(st->map);
	free(st->live);
	free(st->ticks);
	free(st);
}

static int *sepstate_slot(struct sepstate *st, unsigned w, uint32_t h)
{
	return w < st->nworkers && h < st->max ? &st->map[(size_t)w * st->max + h] : NULL;
}

static void sepstate_del(struct sepstate *st, unsigned w, uint32_t h)
{
	int *m = sepstate_slot(st, w, h);

	if (!m || *m < 0)
		return;
	session_remove(st->t, *m);
	*m = -1;
	st->live[w]--;
}

/* Counters of the proxy's own part, or of a group the policy has: the
 * counters' struct is an array of ctr, its indexes checked by the decoder. */
static void sepstate_counters(struct sepstate *st, const struct sepmsg *m)
{
	ctr *base = (ctr *)(void *)st->ctr;
	struct policy *p = NULL;

	if (m->group[0]) {
		const struct group *g;

		p = policy_hold(st->box);
		if (!(g = policy_by_name(p, m->group)) || g->slot >= STATS_MAX_GROUPS) {
			policy_release(p);
			return;
		}
		base = (ctr *)(void *)&st->ctr->g[g->slot];
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->ctr[i].field < sepmsg_ctr_fields(m->group))
			ctr_add(&base[m->ctr[i].field], m->ctr[i].delta);
	if (p)
		policy_release(p);
}

/* A tunnel of a session that reconnected: the packet process made the
 * prediction (daemon/dtlswatch.h), so it checks it here, in the group's
 * reconnects_as_predicted. Whether it came true. */
static bool sepstate_prediction(struct sepstate *st, const struct session_info *s)
{
	const struct group *g;
	struct policy *p;
	bool kept;

	if (!s->reconnects || !session_prediction_kept(st->t, s->key, s->since))
		return false;
	p = policy_hold(st->box);
	if ((kept = (g = policy_by_name(p, s->group)) && g->slot < STATS_MAX_GROUPS))
		ctr_inc(&st->ctr->g[g->slot].reconnects_as_predicted);
	policy_release(p);
	return kept;
}

int sepstate_apply(struct sepstate *st, unsigned w, const struct sepmsg *m)
{
	struct session_info info;
	int *slot;
	size_t n;

	if (w >= st->nworkers)
		return -EINVAL;
	switch (m->type) {
	case SEPMSG_SESSION_ADD:
		if (!(slot = sepstate_slot(st, w, m->handle)))
			return -EINVAL;
		sepstate_del(st, w, m->handle);
		info = m->info;
		info.worker = w;
		if ((*slot = session_add(st->t, &info)) < 0)
			return -EINVAL;
		st->live[w]++;
		return sepstate_prediction(st, &m->info) ? 1 : 0;
	case SEPMSG_SESSION_DEL:
		if (!sepstate_slot(st, w, m->handle))
			return -EINVAL;
		sepstate_del(st, w, m->handle);
		return 0;
	case SEPMSG_BYTES: {
		struct session_bytes v[SEPMSG_BATCH];

		n = 0;
		for (size_t i = 0; i < m->n && i < SEPMSG_BATCH; i++) {
			const struct sepmsg_bytes *b = &m->bytes[i];

			if ((slot = sepstate_slot(st, w, b->handle)) && *slot >= 0)
				v[n++] = (struct session_bytes){ .handle = *slot,
								 .up = b->up, .down = b->down };
		}
		session_set_bytes_many(st->t, v, n);
		return 0;
	}
	case SEPMSG_COUNTERS:
		sepstate_counters(st, m);
		return 0;
	case SEPMSG_TICK:
		st->ticks[w]++;
		return 0;
	case SEPMSG_GONE:
		/* The worker that announced them is dead: none of its tunnels
		 * lives; the other workers' do. */
		n = st->live[w];
		for (uint32_t h = 0; h < st->max; h++)
			sepstate_del(st, w, h);
		return (int)n;
	case SEPMSG_HELLO:
	case SEPMSG_COOKIE:	/* passed on to the other workers; nothing kept here */
	case SEPMSG_DRAIN:
		return 0;
	default:
		return -EINVAL;
	}
}

int sepstate_proxy_handle(const struct sepstate *st, int h, unsigned *w)
{
	/* Rare (a DTLS state change): a scan rather than a second map. */
	for (size_t i = 0; h >= 0 && i < st->max * st->nworkers; i++)
		if (st->map[i] == h) {
			*w = (unsigned)(i / st->max);
			return (int)(i % st->max);
		}
	return -1;
}

size_t sepstate_sessions(const struct sepstate *st, unsigned w)
{
	size_t n = 0;

	if (w != SEPSTATE_ALL)
		return w < st->nworkers ? st->live[w] : 0;
	for (unsigned i = 0; i < st->nworkers; i++)
		n += st->live[i];
	return n;
}

uint64_t sepstate_progress(const struct sepstate *st, unsigned w)
{
	return w < st->nworkers ? st->ticks[w] : 0;
}
