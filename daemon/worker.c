#include "daemon/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "clamp/clamp.h"
#include "clamp/mss.h"
#include "clamp/nfq.h"
#include "conf/conf.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/qhandler.h"
#include "daemon/stats.h"
#include "policy/policy.h"

#define WORKER_SCRATCH (0xffff + 64)	/* a packet plus an inserted option */

struct worker {
	enum queue_kind kind;
	uint16_t num;
	pthread_t th;
	bool started;
	struct loop *loop;
	struct nfq_queue *q;
	struct counters *ctr;
	struct policy_box *box;
	struct policy *pol;	/* held for one round of packets */
	struct pmtu_state *pmtu;
	struct dtlsq_state *dtls;
	struct session_table *sessions;	/* the proxy's tunnels, or NULL */
	bool warned_unguarded;
	_Atomic uint64_t beat;	/* idle ticks: with packets seen, the watchdog's sign of life */
	uint32_t done_mark;	/* for the message: the queue has its own copy */
	uint8_t scratch[WORKER_SCRATCH];
};

const char *worker_kind_name(enum queue_kind kind)
{
	switch (kind) {
	case QUEUE_MSS: return "mss";
	case QUEUE_PMTU: return "pmtu";
	case QUEUE_DTLS: return "dtls";
	}
	return "?";
}

static void worker_count_mss(struct worker *w, const struct clamp_mss_out *o)
{
	if (!o->group)
		return;
	struct grp_counters *g = &w->ctr->g[((const struct group *)o->group)->slot];

	switch (o->mss) {
	case MSS_LOWERED: ctr_inc(o->observed ? &g->would_mss_rewrite : &g->mss_rewritten); break;
	case MSS_ADDED: ctr_inc(o->observed ? &g->would_mss_insert : &g->mss_inserted); break;
	case MSS_KEPT: ctr_inc(&g->mss_unchanged); break;
	default: break;
	}
}

static void worker_mss(struct worker *w, const struct nfq_packet *pk, struct nfq_verdict *v)
{
	struct clamp_mss_out o;

	if (pk->len > WORKER_SCRATCH - 4) {
		ctr_inc(&w->ctr->malformed);
		return;
	}
	memcpy(w->scratch, pk->buf, pk->len);
	clamp_mss(w->pol, w->sessions, w->scratch, pk->len, WORKER_SCRATCH, pk->csum_unready, &o);
	if (o.group)
		ctr_inc(&w->ctr->g[o.group->slot].packets);
	else if (o.res != CLAMP_MALFORMED)
		ctr_inc(&w->ctr->nogroup);
	worker_count_mss(w, &o);
	if (o.res == CLAMP_MALFORMED) {
		ctr_inc(&w->ctr->malformed);
		log_limited(log_debug, "queue %u: malformed packet of %zu bytes passed unchanged",
			    w->num, pk->len);
	} else if (o.res == CLAMP_REWRITTEN) {
		v->payload = w->scratch;
		v->len = o.len;
		ctr_inc(&w->ctr->rewritten);
	}
}

static void worker_packet(void *arg, const struct nfq_packet *pk, struct nfq_verdict *v)
{
	struct worker *w = arg;

	ctr_inc(&w->ctr->seen);
	switch (w->kind) {
	case QUEUE_MSS:
		worker_mss(w, pk, v);
		break;
	case QUEUE_PMTU:
		pmtu_packet(w->pmtu, w->pol, w->ctr, pk, v);
		break;
	case QUEUE_DTLS:
		dtlsq_packet(w->dtls, w->pol, w->ctr, pk, v);
		break;
	}
	if (v->action == NFQ_DROP)
		ctr_inc(&w->ctr->dropped);
	else
		ctr_inc(&w->ctr->accepted);
}

static void worker_readable(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	int n;

	(void)fd;
	(void)events;
	/* One policy reference per round, not per packet. */
	w->pol = policy_hold(w->box);
	n = nfq_queue_process(w->q);
	policy_release(w->pol);
	w->pol = NULL;
	if (n > 0)
		ctr_inc(&w->ctr->queue_batches);
	/* Rules from before NF_REPEAT queue a packet twice: works, but say so once. */
	if (!w->warned_unguarded && nfq_queue_stats(w->q)->unguarded) {
		w->warned_unguarded = true;
		log_warnx("queue %u: a packet came back already decided: the firewall rules lack"
			  " mtugate's resume guard (mark 0x%x); re-apply them (mtugatectl rules)",
			  w->num, w->done_mark);
	}
	if (n < 0) {
		errno = -n;
		log_warn("queue %u: receive failed, stopping this queue (fail-open keeps traffic flowing)",
			 w->num);
		loop_stop(l);
	}
}

/* An idle thread still turns: the watchdog sees this tick. */
static void worker_tick(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;

	(void)l;
	(void)fd;
	(void)events;
	atomic_fetch_add_explicit(&w->beat, 1, memory_order_relaxed);
}

uint64_t worker_progress(const struct worker *w)
{
	/* Packets too: a flood keeps one round going without a tick. */
	return atomic_load_explicit(&w->beat, memory_order_relaxed) + ctr_get(&w->ctr->seen);
}

uint16_t worker_queue(const struct worker *w)
{
	return w->num;
}

struct worker *worker_new(enum queue_kind kind, uint16_t num, const struct conf *c,
			  struct stats *s, struct policy_box *box)
{
	struct worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return NULL;
	w->kind = kind;
	w->num = num;
	w->box = box;
	if (!(w->ctr = stats_new_queue_set(s, num, worker_kind_name(kind))) ||
	    !(w->loop = loop_new()))
		goto err;
	if (kind == QUEUE_PMTU && !(w->pmtu = pmtu_state_new(c)))
		goto err;
	if (kind == QUEUE_DTLS && !(w->dtls = dtlsq_state_new(c)))
		goto err;
	w->done_mark = c->marks.done;
	if (!(w->q = nfq_queue_open(num, c->queues.max_len, c->queues.fail_open, w->done_mark,
				    worker_packet, w)))
		goto err;
	stats_set_portid(s, w->ctr, nfq_queue_portid(w->q));
	if ((err = loop_add(w->loop, nfq_queue_fd(w->q), EPOLLIN, worker_readable, w)) < 0 ||
	    (err = loop_every(w->loop, WORKER_TICK_MS, worker_tick, w)) < 0) {
		errno = -err;
		goto err;
	}
	return w;
err:
	err = errno;
	worker_free(w);
	errno = err ? err : ENOMEM;
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int r = loop_run(w->loop);

	if (r < 0) {
		errno = -r;
		log_warn("queue %u: loop failed", w->num);
	}
	return NULL;
}

int worker_start(struct worker *w)
{
	int r = pthread_create(&w->th, NULL, worker_main, w);
	char name[16];

	if (r)
		return -r;
	/* top -H, /proc/PID/task/TID/comm: which thread serves which queue. */
	snprintf(name, sizeof(name), "mtugate-q%u", w->num);
	pthread_setname_np(w->th, name);
	w->started = true;
	return 0;
}

void worker_stop(struct worker *w)
{
	if (!w || !w->started)
		return;
	loop_stop(w->loop);
	pthread_join(w->th, NULL);
	w->started = false;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	worker_stop(w);
	nfq_queue_close(w->q);
	pmtu_state_free(w->pmtu);
	dtlsq_state_free(w->dtls);
	loop_free(w->loop);
	free(w);	/* the counter set belongs to the stats registry */
}

void worker_set_sessions(struct worker *w, struct session_table *t)
{
	w->sessions = t;
	if (w->pmtu)
		pmtu_state_set_sessions(w->pmtu, t);
	if (w->dtls)
		dtlsq_state_set_sessions(w->dtls, t);
}
