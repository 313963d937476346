/* Session cookies: the headend's session token (Set-Cookie: webvpn=...),
 * bound by its SHA-256 to the group the login selected, so that every
 * CONNECT presenting it, from any connection and any address, gets that
 * group's rewrite and the MTUs its first tunnel was sent. Pure: the parsers
 * read bytes, the table is plain memory, time is passed in; the caller
 * hashes (proxy/tls.c) and does the file I/O (proxy/cookiefile.c). */
#ifndef MTUGATE_PROXY_COOKIE_H
#define MTUGATE_PROXY_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct strbuf;

#define COOKIE_HASH_LEN 32	/* SHA-256 */
#define COOKIE_GROUP_MAX 64	/* as struct group's name */
#define COOKIE_USER_MAX 64	/* as SESSION_USER_MAX */
/* How long a session is kept after its last tunnel closed without a BYE:
 * longer than ocserv's cookie-timeout (300 s) and ASA's default
 * vpn-idle-timeout (30 min), so a client back from sleep finds it. A token
 * the headend forgot costs an entry, never a wrong group: the headend
 * refuses the CONNECT. */
#define COOKIE_TTL (24 * 3600)
/* The name of the session cookie, as ocserv and ASA set it, and as
 * openconnect and AnyConnect send it back on CONNECT. */
#define COOKIE_NAME "webvpn"

/* The session token in one Set-Cookie value ("webvpn=TOKEN; path=/;
 * Secure"): *off and *len locate TOKEN in val. false when the cookie is
 * another one, or is empty or deleted (ASA clears it with "webvpn=;
 * expires=" a date in the past, or Max-Age=0). */
bool cookie_from_set_cookie(const uint8_t *val, size_t n, size_t *off, size_t *len);

/* The token in one Cookie request value ("a=b; webvpn=TOKEN; c=d"). */
bool cookie_from_cookie(const uint8_t *val, size_t n, size_t *off, size_t *len);

/* The same over a whole message head (start line, headers; the blank line
 * may be missing): the last Set-Cookie (response) or the first Cookie
 * (request) that carries a token. Offsets are into head. */
bool cookie_in_response(const uint8_t *head, size_t n, size_t *off, size_t *len);
bool cookie_in_request(const uint8_t *head, size_t n, size_t *off, size_t *len);

/* The request line asks to log out (ASA /+webvpn+/webvpn_logout.html,
 * ocserv's /logout): the session ends with it. */
bool cookie_is_logout(const uint8_t *head, size_t n);

struct cookie_entry {
	uint8_t hash[COOKIE_HASH_LEN];
	char group[COOKIE_GROUP_MAX];
	time_t expires;		/* wall clock; kept beyond it while tunnels > 0 */
	unsigned tunnels;	/* live tunnels using it (not saved) */
	unsigned mtu, dtls_mtu;	/* sent on its first CONNECT; 0: none yet */
	/* Not saved: */
	char user[COOKIE_USER_MAX];	/* the login's, as [daemon] log_users has it */
	unsigned reconnects;		/* tunnels after its first */
};

struct cookie_table;

/* At most max entries (>= 1); NULL when out of memory. */
struct cookie_table *cookie_table_new(size_t max);
void cookie_table_free(struct cookie_table *t);
size_t cookie_count(const struct cookie_table *t);

/* A login's answer set the cookie: bind it to group (a new session, or a
 * new login reusing the token, starts with no MTUs). A full table drops the
 * entry with the earliest expiry, preferring one without tunnels. */
void cookie_bind(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN], const char *group,
		 time_t now);
/* The live entry of hash, or NULL (an expired one is removed). The pointer
 * is valid until the next call that changes the table. */
struct cookie_entry *cookie_find(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN],
				 time_t now);
/* A tunnel started (hold) or closed (release: the TTL runs from now). */
void cookie_hold(struct cookie_entry *e);
void cookie_release(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN], time_t now);
/* BYE or logout: the session is over. true if it was known. */
bool cookie_end(struct cookie_table *t, const uint8_t hash[COOKIE_HASH_LEN]);
/* What one proxy worker tells the others (over the packet process), so that
 * a CONNECT finds its session on whichever worker the kernel gives it: a
 * login bound a cookie, a tunnel of a session started (its group, the MTUs
 * it was sent), a session ended. Live tunnel counts stay each worker's. */
enum cookie_op { COOKIE_OP_BIND = 1, COOKIE_OP_TUNNEL, COOKIE_OP_END, COOKIE_OP_LAST = COOKIE_OP_END };
struct cookie_event {
	enum cookie_op op;
	uint8_t hash[COOKIE_HASH_LEN];
	char group[COOKIE_GROUP_MAX];	/* BIND, TUNNEL */
	char user[COOKIE_USER_MAX];	/* BIND, TUNNEL */
	unsigned mtu, dtls_mtu;		/* TUNNEL: as sent to its client */
};
/* Apply another worker's event as its own calls changed its table: BIND as
 * cookie_bind() with the user; TUNNEL binds the group when the entry has
 * another or none, then keeps the first MTUs or counts a reconnect (no
 * hold: the tunnel is not this worker's); END as cookie_end(). */
void cookie_apply(struct cookie_table *t, const struct cookie_event *ev, time_t now);

/* Drop expired entries without tunnels: how many went. */
size_t cookie_expire(struct cookie_table *t, time_t now);

/* The state file: "mtugate-cookies 1" then one line per entry,
 * "HASH(64 hex) EXPIRES MTU DTLS_MTU GROUP". An entry with live tunnels is
 * written with the TTL from now (after a restart its clients come back). */
void cookie_format(const struct cookie_table *t, time_t now, struct strbuf *out);
/* Load what cookie_format() wrote, skipping expired entries. Lines that do
 * not parse are skipped and counted in *bad; a missing or wrong first line
 * loads nothing (-1). Returns the number of entries loaded. */
long cookie_parse(struct cookie_table *t, const char *text, size_t n, time_t now, size_t *bad);

#endif
