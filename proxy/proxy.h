/* The transparent TLS proxy: the loop of the proxy's worker process
 * (daemon/privsep.h), never the packet process's. */
#ifndef MTUGATE_PROXY_PROXY_H
#define MTUGATE_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct cookie_event;
struct counters;
struct listen_supply;
struct loop;
struct policy_box;
struct session_table;
struct tls_ctx;
struct proxy;

/* The TPROXY listeners (IPv4, IPv6; -1 for a family the headend has no
 * address in): IP_TRANSPARENT needs CAP_NET_ADMIN, so the packet process
 * opens them before the proxy's processes drop every capability. 0, or -1
 * with the reason logged. */
int proxy_listen_open(const struct conf *c, int lfd[2]);

/* A proxy over listeners lfd, presenting tls (loaded by the proxy's master),
 * counting into ctr, its upstream sockets from supply (NULL: made here).
 * It owns tls and lfd from here, also when it fails: NULL, the reason logged. */
struct proxy *proxy_new(const struct conf *c, struct policy_box *box, struct counters *ctr,
			struct tls_ctx *tls, const int lfd[2], const struct listen_supply *supply);
/* Load the cookie file, fetch the headend's certificate, run the loop in
 * this thread until loop_stop(proxy_loop(p)): 0 or -1. */
int proxy_run(struct proxy *p);
/* Its loop, for the worker's own descriptors and timers. */
struct loop *proxy_loop(struct proxy *p);
/* Close every connection, giving the reason, and free everything. */
void proxy_free(struct proxy *p);

/* After the configuration was reloaded as nc (the worker reads it too):
 * re-reads [proxy] ticket_key_file (key rotation), warns again that the
 * headend is not verified when insecure_upstream = yes, and compares the
 * headend's certificate with [proxy] certificate again. NULL: nothing. */
void proxy_reloaded(struct proxy *p, const struct conf *nc);

/* One of several workers: every change to its session cookies goes to fn
 * (the packet process passes it on to the others). Before proxy_run(). */
void proxy_share_cookies(struct proxy *p, void (*fn)(void *arg, const struct cookie_event *ev),
			 void *arg);
/* Whether this is the primary worker (the default; with several, worker
 * 0): the one that writes the cookies' state file (every worker reads it at
 * start), fetches the headend's certificate to compare at start and reload,
 * and logs what it read; the others only serve. Before proxy_run(). */
void proxy_set_primary(struct proxy *p, bool primary);
/* The key of the usernames' hashes ([daemon] log_users = hash; 16 bytes),
 * one for every worker so that a name hashes alike on each; by default a
 * random key of this process's own. */
void proxy_user_key(struct proxy *p, const uint8_t *key, size_t len);
/* Another worker's change, into this one's table. */
void proxy_cookie_apply(struct proxy *p, const struct cookie_event *ev);
/* A restart: close the listeners (the new daemon's proxy takes them) and
 * keep every connection; the loop ends when the last one does, or after
 * [proxy] drain_timeout, closing those left. Logs a line at the start and
 * one at the end. The tunnels held. */
size_t proxy_drain(struct proxy *p);

/* Its table of tunnels (the worker announces its changes). */
struct session_table *proxy_session_table(struct proxy *p);

#endif
