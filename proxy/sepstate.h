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

/* Handles the proxy gives are below max (its own table's size). The
 * counters are a set of the daemon's registry owned by the calling thread.
 * NULL when out of memory. */
struct sepstate *sepstate_new(struct session_table *t, size_t max, struct counters *ctr,
			      struct policy_box *box);
void sepstate_free(struct sepstate *st);

/* Apply one decoded message: 0, or -EINVAL when it names what does not
 * exist (a handle out of range, a session table full). For GONE, the
 * number of sessions forgotten; for SESSION_ADD, 1 when the tunnel is the
 * reconnect this table predicted (counted as reconnects_as_predicted). */
int sepstate_apply(struct sepstate *st, const struct sepmsg *m);

/* The proxy's handle of our session h, or -1. */
int sepstate_proxy_handle(const struct sepstate *st, int h);
/* Sessions the proxy announced and has not ended. */
size_t sepstate_sessions(const struct sepstate *st);
/* TICK messages seen: the watchdog's sign that the proxy's loop turns. */
uint64_t sepstate_progress(const struct sepstate *st);

#endif
