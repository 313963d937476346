/* The proxy's budget for connections that are not tunnels yet: how many in
 * all, how many per source prefix (IPv4 /32, IPv6 /64 by default), and which
 * to close when a new one needs room. Pure bookkeeping, no I/O. */
#ifndef MTUGATE_PROXY_BUDGET_H
#define MTUGATE_PROXY_BUDGET_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct budget;
struct budget_src;

/* Embedded in each counted connection; zeroed means "not counted". */
struct budget_node {
	struct budget_node *prev, *next;	/* its class's nodes, least recently active first */
	struct budget_node *sprev, *snext;	/* the same source's of its class, same order */
	struct budget_src *src;
	bool done;				/* past the TLS handshake (budget_promote) */
	bool waiting;				/* on the headend's answer (budget_wait) */
};

/* total: nodes in all; per_source: nodes per masked source address; v4/v6:
 * the prefix lengths a source is masked to; seed: keys the hash (random, so
 * that no one can aim at one bucket). NULL when out of memory. */
struct budget *budget_new(unsigned total, unsigned per_source, unsigned v4_prefix,
			  unsigned v6_prefix, uint64_t seed);
void budget_free(struct budget *b);

/* Before counting a new node from addr (4 or 16 bytes by family): NULL when
 * there is room; otherwise the node to remove first: the source's least
 * recently active when the source has used its share, else the least
 * recently active of all. An idle holder goes, not the newcomer; one still
 * in its TLS handshake before any past it, and one waiting on the headend's
 * answer last (a bare TCP connection costs an attacker nothing, a login
 * waiting minutes on an MFA push is real). */
struct budget_node *budget_victim(const struct budget *b, int family, const uint8_t *addr);
/* Count n (zeroed or removed before) as the most recently active. Refuses
 * (-ENOSPC) when budget_victim() would name one; -ENOMEM. 0 on success. */
int budget_add(struct budget *b, struct budget_node *n, int family, const uint8_t *addr);
/* n was active: it becomes the last of its class to be evicted. */
void budget_touch(struct budget *b, struct budget_node *n);
/* n finished its TLS handshake: evicted only once no node short of it is
 * left; it counts as just active. */
void budget_promote(struct budget *b, struct budget_node *n);
/* n (past its handshake) sent a whole request and waits on the headend's
 * answer (an MFA push, a slow directory), or no longer does. A waiting node
 * is evicted only once no node that waits on its client is left. */
void budget_wait(struct budget *b, struct budget_node *n, bool waiting);
/* Forget n (a no-op when it is not counted). */
void budget_remove(struct budget *b, struct budget_node *n);

unsigned budget_count(const struct budget *b);
/* Nodes counted for addr's source prefix; and how many sources there are. */
unsigned budget_source_count(const struct budget *b, int family, const uint8_t *addr);
unsigned budget_sources(const struct budget *b);

/* A login's clock for its deadlines: the time it spent in its client's
 * hands (since accept, without its waits on the headend's answers) and its
 * current wait on the headend. Pure arithmetic on seconds. */
struct budget_clock {
	time_t started, waited, wait_since;
	bool waiting;
};
void budget_clock_start(struct budget_clock *k, time_t now);
/* The login waits on the headend (true) or on its client (false) from now. */
void budget_clock_wait(struct budget_clock *k, bool waiting, time_t now);
time_t budget_clock_client(const struct budget_clock *k, time_t now);
/* Seconds of the current wait on the headend; 0 when not waiting. */
time_t budget_clock_headend(const struct budget_clock *k, time_t now);

/* A log line's rate over one-second windows: up to rate lines pass in each
 * second; the rest are counted. */
struct budget_lograte {
	time_t sec;
	unsigned n, held;
};
/* One more line at now (seconds). True: log it. *summary is set to the
 * number held back in an earlier second, to be logged as one line (0:
 * nothing to summarise). */
bool budget_log_step(struct budget_lograte *r, time_t now, unsigned rate, unsigned *summary);
/* The clock moved on without a line (once a second): the count held back in
 * an earlier second, which is then cleared; 0 if none. */
unsigned budget_log_flush(struct budget_lograte *r, time_t now);

#endif
