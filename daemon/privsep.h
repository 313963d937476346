/* The TLS proxy in processes of its own (relayd's and OpenSSH's privilege
 * separation). The packet process opens the listeners and forks the proxy's
 * master before loading anything; the master loads the headend's certificate
 * and key, drops every capability, and forks the workers that run the proxy
 * ([proxy] workers, one per online CPU by default; seccomp, Landlock), each
 * again within a second whenever it dies. Each worker has listeners of its
 * own (SO_REUSEPORT: the kernel spreads connections over them) and its own
 * two socketpairs: it announces its tunnels and counters over one
 * (proxy/sepmsg.h), and the packet process, which keeps the one session
 * table its packet threads read, hands it upstream sockets over the other
 * (IP_TRANSPARENT needs a capability). Workers share nothing else.
 * At a restart (SIGTERM) the proxy drains rather than stops: the master
 * outlives the packet process, its workers keep the tunnels they have. */
#ifndef MTUGATE_DAEMON_PRIVSEP_H
#define MTUGATE_DAEMON_PRIVSEP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct conf;
struct counters;
struct loop;
struct policy_box;
struct session_table;
struct stats;

struct privsep_args {
	const struct conf *conf;
	const char *conf_path;	/* the worker re-reads it at a reload */
	struct stats *stats;	/* group slots (the worker keeps its copy) */
	struct policy_box *box;
	uid_t uid;		/* the proxy's user when started as root; -1: stay */
	gid_t gid;
};

struct privsep;

/* Open the listeners and fork the proxy's master: with the capabilities
 * still held, before any thread starts. NULL with the reason logged. */
struct privsep *privsep_start(const struct privsep_args *a);
/* Serve the proxy's messages on l, its counters into ctr (a set the
 * calling thread owns): 0 or -1. */
int privsep_attach(struct privsep *ps, struct loop *l, struct counters *ctr);
/* The tunnels the workers announced, for the packet threads and `sessions`. */
struct session_table *privsep_sessions(struct privsep *ps);
/* How many workers the proxy runs. */
unsigned privsep_workers(const struct privsep *ps);
/* Grows once a second while worker w's loop turns: for the watchdog. */
uint64_t privsep_progress(const struct privsep *ps, unsigned w);
/* The configuration was reloaded: every worker re-reads it. */
void privsep_reload(struct privsep *ps);
/* The proxy's processes are gone (its master died): the daemon stops,
 * non-zero, and the service manager starts it again. */
bool privsep_failed(const struct privsep *ps);
/* Whether privsep_free() drains (from [proxy] drain_timeout > 0 at start):
 * a failing daemon (its proxy gone, an error) stops the proxy instead. */
void privsep_set_drain(struct privsep *ps, bool drain);
/* Stop the proxy (its workers close every tunnel) and wait for it. Or, for
 * a restart (drain set), leave it running without this process: its workers
 * close their listeners, which the next daemon binds, keep their tunnels
 * until they end or [proxy] drain_timeout, and the master exits with them. */
void privsep_free(struct privsep *ps);

#endif
