/* TLS for the proxy: the only OpenSSL user. Two contexts, one presenting the
 * headend's certificate to clients, one verifying the headend upstream. */
#ifndef MTUGATE_PROXY_TLS_H
#define MTUGATE_PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <stdint.h>

/* A client may renegotiate TLS 1.2 (openconnect's rekey, X-CSTP-Rekey-Method:
 * ssl) at most once per this many seconds per connection; a ClientHello
 * sooner fails the connection (tls_error() says so). */
#define TLS_RENEG_INTERVAL 10

struct conf;
struct tls_ctx;
struct tls;

enum tls_res {
	TLS_OK,
	TLS_WANT_READ,		/* wait for the fd to be readable, then call again */
	TLS_WANT_WRITE,		/* wait for it to be writable */
	TLS_EOF,		/* the peer closed (close_notify or TCP FIN) */
	TLS_ERROR,		/* see tls_error() */
};

/* Load certificate, key and CA (as root, before privileges are dropped).
 * NULL with the reason in err: a missing file, a private key readable by
 * everyone, a key that does not match the certificate. */
struct tls_ctx *tls_ctx_new(const struct conf *c, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *x);

/* The client side of a connection (we are its server). */
struct tls *tls_accept_new(struct tls_ctx *x, int fd);
/* The headend side: SNI as the client sent it (NULL: none); the certificate
 * must name upstream_name, or else carry the address dst. */
struct tls *tls_connect_new(struct tls_ctx *x, int fd, const char *sni,
			    const struct sockaddr_storage *dst);
void tls_free(struct tls *t);

enum tls_res tls_handshake(struct tls *t);
enum tls_res tls_read(struct tls *t, void *buf, size_t len, size_t *n);
/* Partial writes are allowed; after WANT_*, retry with the same bytes
 * (they may have moved). */
enum tls_res tls_write(struct tls *t, const void *buf, size_t len, size_t *n);
/* Records are written into a buffer, sent when it passes a bound (64 KiB)
 * and by tls_flush(), which the caller runs at the end of each batch of
 * work: TLS_OK when all is sent, TLS_WANT_WRITE when the socket is full
 * (wait for it to be writable), TLS_ERROR. */
enum tls_res tls_flush(struct tls *t);
/* Bytes written but not sent yet (0 for NULL). */
size_t tls_pending(const struct tls *t);
/* At the end of a batch of work: give OpenSSL's record buffers back when
 * they are empty, so that an idle tunnel holds none (NULL: nothing). */
void tls_idle(struct tls *t);
/* Send close_notify once, never waiting for the answer. */
void tls_close(struct tls *t);

/* Renegotiations the client completed or started on this connection. */
unsigned tls_renegotiations(const struct tls *t);
/* The connection failed on a renegotiation too soon. */
bool tls_reneg_refused(const struct tls *t);
/* Renegotiations started and refused over every connection of x. */
void tls_ctx_reneg_stats(const struct tls_ctx *x, uint64_t *done, uint64_t *refused);

/* Replace the session ticket keys clients get (a new context has those of
 * [proxy] ticket_key_file, or a random key of its own; at a reload, or
 * again as the daemon's user, from any thread):
 * [proxy] ticket_key_file at path, or a new random key when path is NULL or
 * empty. 0 with the number of keys, or -1 with the reason in err (the keys
 * in force stay). *exposed: the file is readable by its group or everyone. */
int tls_ctx_ticket_keys(struct tls_ctx *x, const char *path, size_t *nkeys, bool *exposed,
			char *err, size_t errlen);

/* Toward the headend: it asked for a client certificate (the proxy sent
 * none: a user who logs in with one cannot go through it). */
bool tls_cert_requested(const struct tls *t);

/* The handshake resumed a session (toward the headend: one it sent before;
 * from a client: a session ticket of ours, maybe the other gateway's). */
bool tls_resumed(const struct tls *t);
/* The SNI the client sent (accepted side), or NULL. */
const char *tls_sni(const struct tls *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
const char *tls_describe(const struct tls *t, char *buf, size_t len);
/* Why the last call failed: OpenSSL's error queue, or the certificate
 * verification result. */
const char *tls_error(struct tls *t, char *buf, size_t len);

/* The headend's leaf certificate (t: toward the headend, its handshake
 * done) against the one the proxy presents to clients ([proxy]
 * certificate): AnyConnect compares the tunnel's certificate with the
 * <server-cert-hash> of the headend's XML. Both SHA-256 fingerprints
 * ("AB:CD:...", len >= 96) are written; 0 the same, 1 they differ, -1 one is
 * missing. */
#define TLS_FINGERPRINT_LEN 96
int tls_leaf_compare(struct tls *t, char *ours, char *theirs, size_t len);
/* The fingerprint of [proxy] certificate (the leaf). */
void tls_ctx_fingerprint(const struct tls_ctx *x, char *fp, size_t len);
/* Connect to the headend at dst (blocking, timeout_s for the connect and
 * each read and write), handshake, and write its leaf's fingerprint: 0, or
 * -1 with the reason in err. For a thread of its own: it takes seconds when
 * the headend does not answer. */
int tls_fetch_leaf(const struct sockaddr_storage *dst, const char *sni, unsigned timeout_s,
		   char *fp, size_t len, char *err, size_t errlen);

/* SHA-256 of data into out (the session cookie's key): false on failure. */
bool tls_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
