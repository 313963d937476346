#include "proxy/sepstate.h"

#include <errno.h>
#include <stdlib.h>

#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/sepmsg.h"
#include "proxy/session.h"

struct sepstate {
	struct session_table *t;
	int *map;		/* the proxy's handle -> ours, -1: none */
	size_t max, live;
	struct counters *ctr;
	struct policy_box *box;
	uint64_t ticks;
};

struct sepstate *sepstate_new(struct session_table *t, size_t max, struct counters *ctr,
			      struct policy_box *box)
{
	struct sepstate *st = calloc(1, sizeof(*st));

	if (!st || !(st->map = malloc((max ? max : 1) * sizeof(*st->map)))) {
		free(st);
		return NULL;
	}
	for (size_t i = 0; i < max; i++)
		st->map[i] = -1;
	*st = (struct sepstate){ .t = t, .map = st->map, .max = max, .ctr = ctr, .box = box };
	return st;
}

void sepstate_free(struct sepstate *st)
{
	if (!st)
		return;
	free(st->map);
	free(st);
}

static void sepstate_del(struct sepstate *st, uint32_t h)
{
	if (h >= st->max || st->map[h] < 0)
		return;
	session_remove(st->t, st->map[h]);
	st->map[h] = -1;
	st->live--;
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

int sepstate_apply(struct sepstate *st, const struct sepmsg *m)
{
	size_t n;

	switch (m->type) {
	case SEPMSG_SESSION_ADD:
		if (m->handle >= st->max)
			return -EINVAL;
		sepstate_del(st, m->handle);
		if ((st->map[m->handle] = session_add(st->t, &m->info)) < 0)
			return -EINVAL;
		st->live++;
		return sepstate_prediction(st, &m->info) ? 1 : 0;
	case SEPMSG_SESSION_DEL:
		if (m->handle >= st->max)
			return -EINVAL;
		sepstate_del(st, m->handle);
		return 0;
	case SEPMSG_BYTES: {
		struct session_bytes v[SEPMSG_BATCH];

		n = 0;
		for (size_t i = 0; i < m->n && i < SEPMSG_BATCH; i++) {
			const struct sepmsg_bytes *b = &m->bytes[i];

			if (b->handle < st->max && st->map[b->handle] >= 0)
				v[n++] = (struct session_bytes){ .handle = st->map[b->handle],
								 .up = b->up, .down = b->down };
		}
		session_set_bytes_many(st->t, v, n);
		return 0;
	}
	case SEPMSG_COUNTERS:
		sepstate_counters(st, m);
		return 0;
	case SEPMSG_TICK:
		st->ticks++;
		return 0;
	case SEPMSG_GONE:
		/* The worker that announced them is dead: none of its tunnels lives. */
		n = st->live;
		for (uint32_t h = 0; h < st->max; h++)
			sepstate_del(st, h);
		return (int)n;
	case SEPMSG_HELLO:
		return 0;
	default:
		return -EINVAL;
	}
}

int sepstate_proxy_handle(const struct sepstate *st, int h)
{
	/* Rare (a DTLS state change): a scan rather than a second map. */
	for (size_t i = 0; h >= 0 && i < st->max; i++)
		if (st->map[i] == h)
			return (int)i;
	return -1;
}

size_t sepstate_sessions(const struct sepstate *st)
{
	return st->live;
}

uint64_t sepstate_progress(const struct sepstate *st)
{
	return st->ticks;
}
