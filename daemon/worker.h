/* A packet thread: one NFQUEUE, its own loop, socket and counters. */
#ifndef MTUGATE_DAEMON_WORKER_H
#define MTUGATE_DAEMON_WORKER_H

#include <stdint.h>

struct conf;
struct stats;
struct policy_box;
struct worker;

enum queue_kind { QUEUE_MSS, QUEUE_PMTU, QUEUE_DTLS };

/* Bind queue num (needs CAP_NET_ADMIN: call before dropping root). NULL with
 * errno set on failure. */
struct worker *worker_new(enum queue_kind kind, uint16_t num, const struct conf *c,
			  struct stats *s, struct policy_box *box);
int worker_start(struct worker *w);	/* 0 or -errno */
void worker_stop(struct worker *w);	/* stop the thread and wait for it */
void worker_free(struct worker *w);	/* unbind the queue */
struct session_table;
/* DTLS queues: attribute flows through the proxy's session table. */
void worker_set_sessions(struct worker *w, struct session_table *t);
const char *worker_kind_name(enum queue_kind kind);
/* A packet thread ticks this often while idle. */
#define WORKER_TICK_MS 1000
/* Grows while the thread turns (ticks, rounds, packets): for the watchdog. */
uint64_t worker_progress(const struct worker *w);
uint16_t worker_queue(const struct worker *w);

#endif
