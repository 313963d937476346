/* The packet process's side of the proxy's announcements (proxy/sepmsg.h):
 * its copy of the session table, which the packet threads read, and the
 * proxy's counters in the daemon's registry. Everything arrives from a
 * process that parses the internet: handles are mapped through a bounded
 * table, group counters go only to groups the policy in force has. */
#ifndef MTUGATE_PROXY_SEPSTATE_H
#define MTUGATE_PROXY_SEPSTATE_H

#include <stddef.h>
#include <stdint.h>

struct counters;
struct policy_box;
struct sepmsg;
struct session_table;

struct sepstate;

/* The proxy runs nworkers worker processes (>= 1), each announcing over a
 * channel of its own, so the packet process knows which one speaks: their
 * handles are below max each and are mapped per worker, so that two
 * workers' handle 0 are two sessions. The counters are a set of the
 * daemon's registry owned by the calling thread: every worker's increments
 * add up in it. NULL when out of memory. */
struct sepstate *sepstate_new(struct session_table *t, size_t max, unsigned nworkers,
			      struct counters *ctr, struct policy_box *box);
void sepstate_free(struct sepstate *st);

/* Apply one decoded message from worker w's channel: 0, or -EINVAL when it
 * names what does not exist (a worker or handle out of range, a session
 * table full). For GONE (the master, on that worker's channel), the number
 * of that worker's sessions forgotten; for SESSION_ADD, 1 when the tunnel
 * is the reconnect this table predicted (counted as reconnects_as_predicted). */
int sepstate_apply(struct sepstate *st, unsigned w, const struct sepmsg *m);

/* The proxy's handle of our session h, or -1; *w its worker. */
int sepstate_proxy_handle(const struct sepstate *st, int h, unsigned *w);
/* Sessions the proxy's workers announced and have not ended: worker w's,
 * or with w = SEPSTATE_ALL every worker's. */
#define SEPSTATE_ALL (~0u)
size_t sepstate_sessions(const struct sepstate *st, unsigned w);
/* TICK messages seen from worker w: the watchdog's sign that its loop turns. */
uint64_t sepstate_progress(const struct sepstate *st, unsigned w);

#endif
