/* The table of proxied tunnels: written by the proxy thread, read by the
 * packet paths (group by DTLS session ID or App-ID, by outer client address,
 * by inner tunnel address: each a hash lookup) and the control socket. One
 * mutex; bounded at creation. */
#ifndef MTUGATE_PROXY_SESSION_H
#define MTUGATE_PROXY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct strbuf;
struct policy;
struct group;

#define SESSION_ID_MAX 64	/* an App-ID; a legacy session ID is 32 bytes */
#define SESSION_GROUP_MAX 64
#define SESSION_USER_MAX 64	/* a username as the login sent it, or its hash */
#define SESSION_KEY_LEN 8	/* the first bytes of the session cookie's SHA-256 */
/* DTLS offered and not answered by the headend this long: failed. AnyConnect
 * gives up DTLS and, with unequal MTUs, reconnects about 30 s later. */
#define SESSION_DTLS_DEADLINE 30
/* A reconnect this soon after its prediction confirms it. */
#define SESSION_PREDICT_WINDOW 120

enum session_dtls {
	SESSION_DTLS_NONE,		/* the headend offered none */
	SESSION_DTLS_OFFERED,		/* offered to the client, no answer seen yet */
	SESSION_DTLS_ESTABLISHED,	/* the headend answered a DTLS flow of this tunnel */
	SESSION_DTLS_FAILED,		/* offered, not answered within SESSION_DTLS_DEADLINE */
	SESSION_DTLS_BLOCKED,		/* removed by the proxy (dtls = block) */
	SESSION_DTLS_LAST = SESSION_DTLS_BLOCKED
};

struct session_info {
	uint8_t id[SESSION_ID_MAX];	/* how the DTLS path finds the session */
	size_t id_len;			/* 0: no DTLS key (not found by id) */
	bool id_is_app;			/* id is an X-DTLS-App-ID */
	char group[SESSION_GROUP_MAX];	/* "" when no group matched */
	struct sockaddr_storage client;	/* outer client address and port */
	uint8_t addr4[4], addr6[16];	/* assigned inner addresses */
	bool has_addr4, has_addr6;
	unsigned cstp_mtu, dtls_mtu;	/* offered by the headend (0: absent) */
	unsigned sent_mtu, sent_dtls_mtu;	/* sent to the client (0: none) */
	enum session_dtls dtls;
	/* observed: what the client was offered went unchanged (mode =
	 * observe: its CONNECT exchange went as sent; or dtls = pass), so a
	 * reconnect for a failed DTLS is predicted. would_rewrite: enforce
	 * would have rewritten it. */
	bool observed, would_rewrite;
	uint64_t bytes_up, bytes_down;	/* CSTP record bytes client->headend, back */
	char user[SESSION_USER_MAX];	/* as [daemon] log_users has it; "": not seen */
	int64_t since;			/* the tunnel's start, Unix seconds */
	unsigned reconnects;		/* earlier tunnels of this session (its cookie) */
	uint8_t key[SESSION_KEY_LEN];	/* the session: all zero when no cookie was seen */
	/* The proxy worker that holds it: set by the packet process from the
	 * channel the announcement came on, never carried in it. */
	unsigned worker;
};

struct session_table;

/* A table for at most max sessions; NULL on allocation failure. */
struct session_table *session_table_new(size_t max);
void session_table_free(struct session_table *t);

/* Add a session: its handle (>= 0), or -1 when the table is full. An entry
 * with the same id replaces the older one's id (a reconnect reuses it). */
int session_add(struct session_table *t, const struct session_info *s);
void session_remove(struct session_table *t, int handle);
void session_set_bytes(struct session_table *t, int handle, uint64_t up, uint64_t down);
/* A copy of the session at handle: false when there is none. */
bool session_get(struct session_table *t, int handle, struct session_info *out);
/* Many at once, under one lock: the proxy's once-a-second byte counts. */
struct session_bytes {
	int handle;
	uint64_t up, down;
};
void session_set_bytes_many(struct session_table *t, const struct session_bytes *v, size_t n);

/* Told of every change, after the table's lock is released: the proxy
 * process announces its tunnels to the packet process with them (proxy/
 * sepmsg.h). added gets the session as stored; removed and bytes the
 * handles session_add() returned. Any hook may be NULL. */
struct session_hooks {
	void (*added)(void *arg, int handle, const struct session_info *s);
	void (*removed)(void *arg, int handle);
	void (*bytes)(void *arg, const struct session_bytes *v, size_t n);
	/* Its DTLS became established or failed (the packet process's DTLS
	 * watch): the proxy's copy is told, for the tunnel's end line. */
	void (*dtls)(void *arg, int handle, enum session_dtls d);
	void *arg;
};
void session_table_hooks(struct session_table *t, const struct session_hooks *h);
/* Set the DTLS state of a session (the proxy's copy, as the packet process
 * saw it); hooks are not told. */
void session_set_dtls(struct session_table *t, int handle, enum session_dtls d);
/* Remove every session (the proxy process that announced them is gone). */
void session_clear(struct session_table *t);
size_t session_count(struct session_table *t);

/* The group name of the session with this DTLS id, copied into name (cap
 * bytes). false when no session has it. */
bool session_group_by_id(struct session_table *t, const uint8_t *id, size_t len, char *name,
			 size_t cap);

/* The group of the tunnels from this outer client address (family AF_INET
 * or AF_INET6, 4 or 16 bytes), copied into name: for a DTLS flow whose first
 * datagram is no ClientHello (a NAT in front of the client gave it a new
 * port, conntrack forgot the flow). false when no tunnel comes from there,
 * or when tunnels from there (users behind one NAT) are in different groups. */
bool session_group_by_client(struct session_table *t, int family, const uint8_t *addr,
			     char *name, size_t cap);

/* The group of the tunnel that was given this inner address (X-CSTP-Address
 * or -IP6: 4 or 16 bytes), the newest if two were: for the packet path in a
 * pool that groups share. false when no tunnel has it (or it has no group). */
bool session_group_by_addr(struct session_table *t, int family, const uint8_t *addr, char *name,
			   size_t cap);

/* The group of a pool address for the packet path (MSS clamp, Path MTU):
 * the pool's group; in a pool that groups share, the group of the tunnel the
 * headend gave this address to, when the pool is that group's, else the
 * pool's own choice (the smallest MTU). Takes the lock only for a shared
 * pool. t may be NULL (no proxy). NULL when the address is in no pool. */
const struct group *session_pool_group(struct session_table *t, const struct policy *pol,
				       int family, const uint8_t *addr);

/* A DTLS ClientHello with this id came from (family, addr, port): the
 * session's group into name, as session_group_by_id(), and the flow is
 * remembered so that the headend's answer finds the session. */
bool session_dtls_hello(struct session_table *t, const uint8_t *id, size_t len, int family,
			const uint8_t *addr, uint16_t port, char *name, size_t cap);

/* The headend answered the DTLS flow to (family, addr, port): 1 when this
 * made its session established (name: its group), 0 when the session was
 * so already, -1 when no session has this flow. A flow no hello bound (the
 * hello came before the proxy's announcement) goes to the client address's
 * one session offered DTLS without a flow, if there is exactly one. */
int session_dtls_answer(struct session_table *t, int family, const uint8_t *addr, uint16_t port,
			char *name, size_t cap);

/* What the once-a-second sweep found: a session's DTLS failed, and for an
 * observed one whose adapter MTU (the larger it was told) exceeds the TLS
 * MTU, the reconnect it will make. */
struct session_event {
	struct session_info s;	/* a copy, bytes as of now */
	int handle;
	bool predicted;
};
/* Mark every session offered DTLS more than SESSION_DTLS_DEADLINE seconds
 * before now (Unix seconds) and not answered as failed: up to max events
 * into ev, how many. Each session fails once. */
size_t session_sweep(struct session_table *t, int64_t now, struct session_event *ev, size_t max);
/* The adapter MTU a client brings up (the larger MTU it was sent), and
 * whether an unanswered DTLS leads AnyConnect to reconnect (reason 16):
 * that MTU exceeds the TLS tunnel's. */
unsigned session_adapter_mtu(const struct session_info *s);
bool session_will_reconnect(const struct session_info *s);
/* A tunnel of the session key started: true (once) when a reconnect was
 * predicted for that session within SESSION_PREDICT_WINDOW seconds. */
bool session_prediction_kept(struct session_table *t, const uint8_t key[SESSION_KEY_LEN],
			     int64_t now);

/* Live sessions per group: counts[i] for names[i] (n names), zeroed first. */
void session_count_groups(struct session_table *t, const char *const *names, size_t n,
			  uint64_t *counts);

/* One "session\tuser=... group=... client=..." line per session, oldest
 * first: key=value pairs, values without blanks (the user name
 * percent-encoded, "" when unknown), as mtugatectl(8) reads them. */
void session_format(struct session_table *t, struct strbuf *out);
/* The same for one session. */
void session_format_one(const struct session_info *s, struct strbuf *out);

const char *session_dtls_str(enum session_dtls d);
/* "198.18.1.2:40000", "[2001:db8:1::2]:443", or "-"; returns buf. */
const char *session_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
