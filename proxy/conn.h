/* One proxied connection: client TLS in, headend TLS out, the HTTP exchange
 * relayed and sniffed for the group, the CONNECT answer rewritten per group,
 * then the CSTP stream relayed with in-stream MSS clamping. Runs on the
 * proxy thread only. */
#ifndef MTUGATE_PROXY_CONN_H
#define MTUGATE_PROXY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <time.h>

#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/budget.h"

struct conf;
struct counters;
struct listen_supply;
struct loop;
struct session_table;
struct tls_ctx;
struct conn;

struct cookie_event;
struct cookie_table;

/* What every connection of the proxy shares; owned by proxy.c. */
struct conn_env {
	const struct conf *conf;
	struct tls_ctx *tls;
	struct loop *loop;
	struct policy_box *box;
	struct counters *ctr;
	struct session_table *sessions;
	struct conn *head;		/* every live connection */
	struct conn *again;		/* connections to pump once more (fairness) */
	int kickfd;			/* eventfd: wakes the loop for `again` */
	uint8_t *scratch;		/* rewrite output, HTTP_MAX_HEAD and some */
	size_t nconns, ntunnels;
	struct budget *budget;		/* connections not tunnels yet */
	const struct listen_supply *supply;	/* upstream sockets (NULL: made here) */
	struct budget_lograte closelog;	/* their close lines, summarised */
	/* Session cookie -> group and first MTUs: the same rewrite for every
	 * CONNECT of a session, from any address (proxy/cookie.h). */
	struct cookie_table *cookies;
	bool cookies_changed;		/* the state file is to be written */
	/* With several workers, each change above is told to the others
	 * (NULL: one worker). */
	void (*cookie_share)(void *arg, const struct cookie_event *ev);
	void *share_arg;
	/* Compare the headend's leaf certificate with ours at the next upstream
	 * handshake: set when the proxy could not fetch it (another thread). */
	atomic_bool leaf_check;
	/* The last warning that a headend asked for a client certificate, per
	 * group counter slot, and for connections of no group. */
	time_t cert_warned[STATS_MAX_GROUPS], cert_warned_none;
	/* [daemon] log_users = hash: the key of the usernames' hashes, drawn at start. */
	uint8_t user_key[16];
};

/* Take over an accepted client socket whose original destination is dst and
 * start the client handshake; the headend is connected to once the client's
 * handshake is done. When the login budget is full, the least recently
 * active login (the source's own first) is closed to make room. On failure
 * the fd is closed and the reason logged; NULL. */
struct conn *conn_new(struct conn_env *env, int cfd, const struct sockaddr_storage *client,
		      const struct sockaddr_storage *dst);

/* The comparison of [proxy] certificate with the headend's leaf (cmp: as
 * tls_leaf_compare()), logged: a warning naming both fingerprints when they
 * differ. when: "start", "reload", "its first tunnel". */
void conn_leaf_log(const struct conf *cf, const char *headend, const char *when, int cmp,
		   const char *ours, const char *theirs);

/* Once a second: timeouts and the byte counts the session table shows. */
void conn_tick(struct conn_env *env);

/* The kick eventfd fired: pump what asked for another turn. */
void conn_run_again(struct conn_env *env);

/* Close every connection (shutdown), logging reason; frees the scratch. */
void conn_close_all(struct conn_env *env, const char *reason);

#endif
