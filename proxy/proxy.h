/* The transparent TLS proxy: its own thread and loop, never a packet thread's. */
#ifndef MTUGATE_PROXY_PROXY_H
#define MTUGATE_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct policy_box;
struct stats;
struct strbuf;
struct proxy;

/* Bind the listeners and load certificate and keys: call while still root.
 * NULL with the reason logged. */
struct proxy *proxy_new(const struct conf *c, struct policy_box *box, struct stats *s);
/* Start the proxy thread: 0 or -errno. */
int proxy_start(struct proxy *p);
/* Stop the thread (waits for it); connections stay until proxy_free(). */
void proxy_stop(struct proxy *p);
/* Close every connection, giving the reason, and free everything. */
void proxy_free(struct proxy *p);

/* After the daemon reloaded its configuration nc (main thread): re-reads
 * [proxy] ticket_key_file (key rotation), warns again
 * that the headend is not verified when the running proxy has
 * insecure_upstream = yes, and has the next upstream handshake compare the
 * headend's certificate with [proxy] certificate. NULL: nothing. */
void proxy_reloaded(struct proxy *p, const struct conf *nc);

/* ctl_ops.sessions: one "session\t..." line per tunnel (arg: the proxy). */
void proxy_sessions(void *proxy, struct strbuf *out);
/* For the DTLS path: the group of the tunnel whose X-DTLS-Session-ID or
 * X-DTLS-App-ID is id, copied into name. false if no tunnel has it. Any
 * thread. */
bool proxy_group_by_id(struct proxy *p, const uint8_t *id, size_t len, char *name, size_t cap);
/* The session table itself, for the DTLS packet threads (thread-safe). */
struct session_table;
struct session_table *proxy_session_table(struct proxy *p);
/* Grows once a second while the proxy's thread turns: for the watchdog. */
uint64_t proxy_progress(const struct proxy *p);

#endif
