/* Counters: one set per thread (single writer, no locks), added up when read. */
#ifndef MTUGATE_DAEMON_STATS_H
#define MTUGATE_DAEMON_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STATS_MAX_GROUPS 1024
#define STATS_MAX_SETS 64

typedef _Atomic uint64_t ctr;	/* single writer; relaxed loads for readers */

/* X-macros keep the counter names, the struct and the renderers in one place. */
#define STATS_PACKET_FIELDS(X) X(seen) X(accepted) X(rewritten) X(dropped) X(malformed) \
	X(nogroup) X(queue_batches) X(verdict_errors) X(lookups_limited)
#define STATS_GROUP_FIELDS(X) X(packets) X(mss_rewritten) X(mss_inserted) X(mss_unchanged) \
	X(pmtu_sent) X(pmtu_suppressed) X(dtls_relayed) X(dtls_blocked) X(dtls_port_rewritten) \
	X(dtls_repaired) X(connect_rewritten) X(sessions) X(upstream_resumed) X(tls_rekeys) \
	X(tls_rekeys_refused) X(upstream_cert_requested) X(reconnects) X(dtls_established) \
	X(dtls_failed) X(reconnects_predicted) X(reconnects_as_predicted) STATS_WOULD_FIELDS(X)
/* mode = observe: what mtugate would have done, and did not. */
#define STATS_WOULD_FIELDS(X) X(would_mss_rewrite) X(would_mss_insert) X(would_pmtu_send) \
	X(would_dtls_block) X(would_dtls_port_fix) X(would_dtls_repair) X(would_connect_rewrite)
/* The proxy's intake: connections closed at accept (not diverted: the
 * original destination is no headend; local: a loop through the firewall
 * itself), and logins closed for a newcomer or at their deadline. */
#define STATS_PROXY_FIELDS(X) X(not_diverted) X(local_source) X(login_evicted) \
	X(login_deadline) X(tunnels_full)

/* The proxy's TLS with clients: handshakes done, how many of them resumed a
 * session (a ticket of ours: after a failover, the other gateway's), and
 * headends that asked the proxy for a client certificate (every group,
 * none known included). */
#define STATS_PROXY_TLS_FIELDS(X) X(handshakes) X(resumed) X(upstream_cert_requested)

#define STATS_DECL(f) ctr f;
#define STATS_TLS_DECL(f) ctr tls_##f;
struct grp_counters {
	STATS_GROUP_FIELDS(STATS_DECL)
};
struct counters {
	STATS_PACKET_FIELDS(STATS_DECL)
	STATS_PROXY_FIELDS(STATS_DECL)
	STATS_PROXY_TLS_FIELDS(STATS_TLS_DECL)
	struct grp_counters g[STATS_MAX_GROUPS];	/* indexed by group slot */
};
#undef STATS_DECL
#undef STATS_TLS_DECL

/* One queue's packet counters, copied out of its set as plain values. */
#define STATS_PLAIN(f) uint64_t f;
struct stats_queue {
	unsigned num;		/* the NFQUEUE number */
	const char *kind;	/* "mss", "pmtu", "dtls" */
	uint32_t portid;	/* its netlink port (0: not bound yet) */
	STATS_PACKET_FIELDS(STATS_PLAIN)
};
#undef STATS_PLAIN

/* Increment from the owning thread only: a plain load/store, no bus lock. */
static inline void ctr_add(ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}
static inline void ctr_inc(ctr *c) { ctr_add(c, 1); }
static inline uint64_t ctr_get(ctr *c) { return atomic_load_explicit(c, memory_order_relaxed); }

/* A packet thread labels its set with its queue, so the set is also shown alone. */
struct stats_set {
	struct counters *c;
	int queue;		/* NFQUEUE number, or -1 (the proxy) */
	const char *kind;	/* static string, NULL when queue is -1 */
	uint32_t portid;	/* the queue's netlink port, once bound */
};

/* The registry: counter sets of every thread and the stable group-name slots. */
struct stats {
	pthread_mutex_t lock;
	struct stats_set sets[STATS_MAX_SETS];
	size_t nsets;
	char names[STATS_MAX_GROUPS][64];
	size_t nnames;
	struct timespec start;	/* CLOCK_MONOTONIC */
	/* The configuration: whether the last load (start or reload) took, and
	 * when the one in force was loaded (Unix seconds), as Prometheus's own
	 * config_last_reload_* metrics. */
	_Atomic int config_ok;
	_Atomic int64_t config_loaded;
	/* Whether mtugate's rules are in the kernel (daemon/rulewatch.h): -1
	 * not known yet, 0 no (rules_why says why), 1 yes. */
	_Atomic int rules_ok;
	char rules_why[192];	/* under lock */
};

void stats_init(struct stats *s);
void stats_destroy(struct stats *s);	/* frees the sets it handed out */
/* A zeroed counter set owned by the calling thread, summed into every read. */
struct counters *stats_new_set(struct stats *s);
/* The same for the thread of queue num; kind must outlive the registry. */
struct counters *stats_new_queue_set(struct stats *s, uint16_t num, const char *kind);
/* The slot of a group name: the same name always gets the same slot, so
 * counters survive reloads. STATS_MAX_GROUPS - 1 is the overflow slot. */
unsigned stats_slot(struct stats *s, const char *name);
/* The netlink port the queue of set c is bound to. */
void stats_set_portid(struct stats *s, struct counters *c, uint32_t portid);
/* Sum every set into out (plain values in the same layout). */
void stats_sum(struct stats *s, struct counters *out);
/* The packet counters of each queue's set, by queue number: how many. */
size_t stats_queues(struct stats *s, struct stats_queue out[STATS_MAX_SETS]);
uint64_t stats_uptime(const struct stats *s);
/* A reload was tried: ok or not (a failed one keeps the running policy). */
void stats_config_loaded(struct stats *s, bool ok);
/* The rules' state and, when not ok, why; stats_rules_get() copies the
 * reason into why (cap bytes) and returns the state. */
void stats_rules_set(struct stats *s, int ok, const char *why);
int stats_rules_get(struct stats *s, char *why, size_t cap);
/* A sentence for a group counter's HELP line and man page ("TCP SYNs whose
 * MSS ..."); NULL for a name that is no group counter. */
const char *stats_group_help(const char *field);
/* The same for a proxy_tls counter; never NULL. */
const char *stats_proxy_tls_help(const char *field);

#endif
