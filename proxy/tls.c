#include "proxy/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>

#include "conf/conf.h"
#include "proxy/ticketkey.h"

/* Where a headend session may be resumed: its address and port, and the
 * name the proxy sent (the client's SNI). The verification a session passed
 * depends on nothing else: upstream_ca and upstream_name are fixed for the
 * life of the context. */
struct tls_peer {
	uint8_t addr[19];	/* family, 16 address bytes, port */
	char sni[256];
};

/* The proxy talks to one headend, or a few: a handful of slots, the
 * newest sessions each, is the whole cache. A TLS 1.3 session resumes once:
 * OpenSSL's client marks it not resumable after (RFC 8446 4.6.1: tickets
 * are for one use), and the ticket that replaces it comes only after that
 * handshake. With one session per peer, tunnels set up at once all but the
 * first fell back to full handshakes (a quarter of 10,000 tunnels opened
 * 200 at a time, each parsing the headend's certificate chain again:
 * about 5 KiB a tunnel while it lasts). So each peer keeps up to
 * TLS_RESUME_PER_PEER, and an offered TLS 1.3 session leaves the pool:
 * 16 resumed 99 % of 1,000 tunnels opened 10 at a time but 78 % of 10,000
 * opened 200 at a time (100 handshakes at once per worker); a session is
 * about 1.5 KiB, so 64 cost at most 0.8 MiB per worker (8 peers). */
#define TLS_RESUME_SLOTS 8
#define TLS_RESUME_PER_PEER 64
struct tls_resume {
	bool used;		/* peer is set */
	unsigned gen;		/* bumped when the slot takes another peer */
	struct tls_peer peer;
	SSL_SESSION *sess[TLS_RESUME_PER_PEER];	/* oldest first */
	unsigned nsess;
	time_t hold_until;	/* no offers before: this peer failed one */
};

/* How long a peer that failed a handshake we offered a session to gets full
 * handshakes only: long enough that a headend which aborts on resumption
 * (instead of falling back) costs a handful of tunnels, not every other. */
#define TLS_RESUME_HOLD 300

struct tls_ctx {
	SSL_CTX *server;	/* toward clients: the headend's certificate */
	SSL_CTX *client;	/* toward the headend */
	BIO_METHOD *out_meth;	/* the socket, both ways: tls_out_*(), tls_in_read() */
	bool verify;
	char upstream_name[256];
	struct tls_resume slots[TLS_RESUME_SLOTS];
	unsigned next;		/* the slot a new peer takes */
	uint64_t renegotiations, reneg_refused;	/* client leg, this thread's */
	/* Session tickets for clients: [proxy] ticket_key_file, or a random key
	 * of this context's own. A reload swaps them (another thread). */
	pthread_mutex_t tk_lock;
	struct ticketkeys tk;
};

/* What OpenSSL writes waits in out[off, len) until tls_flush() or until
 * TLS_OUT_FLUSH bytes are there: one send() then carries many records (one
 * per CSTP packet), not one system call and one trip through TCP each.
 * Every idle tunnel holds two of these: what is seldom needed is an index
 * (the headend's resumption slot, not a 275-byte copy of its key) or made on
 * first use (the error text). 264 bytes down to 112, and no key: 0.7 KiB of
 * bench-proxy's proxy_rss_per_idle_tunnel, which was 34.2 KiB. */
struct tls {
	SSL *ssl;
	struct tls_ctx *x;
	int fd;
	bool closed;
	bool in_eof;		/* the socket read 0: the peer closed */
	bool has_slot;		/* toward the headend: slots[slot] holds its sessions */
	unsigned slot, slot_gen;	/* ... while slots[slot].gen is slot_gen */
	unsigned handshakes;	/* completed, the first included */
	unsigned renegs;	/* renegotiations the client started, allowed */
	time_t last_reneg;	/* monotonic seconds of the last renegotiation; 0: none */
	bool reneg_refused;	/* the last failure was a refused renegotiation */
	SSL_SESSION *offered;	/* the cached session offered: compared, never used */
	bool cert_requested;	/* toward the headend: it asked for our certificate */
	uint8_t *out;
	size_t off, len, cap;
	char *err;		/* the last failure's text, made on the first (tls_set_err()) */
};

#define TLS_ERR_LEN 160

#define TLS_OUT_FLUSH (64 * 1024)
/* The most that can wait: the bound, plus one full record and its overhead. */
#define TLS_OUT_MAX (TLS_OUT_FLUSH + 20 * 1024)

/* Partial writes and moving buffers let the relay write from a buffer it
 * compacts. No SSL_MODE_RELEASE_BUFFERS: it frees and allocates the record
 * buffers around every record; tls_idle() frees them once per batch, so an
 * idle tunnel holds none either way (about 17 KiB a connection with read
 * ahead; test_tls checks they go). */
#define TLS_MODES (SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER)

/* Send what waits: 0 (all of it, or the socket is full), -1 with errno. An
 * empty buffer is freed: idle tunnels hold none. */
static int tls_out_send(struct tls *t)
{
	while (t->off < t->len) {
		ssize_t r = send(t->fd, t->out + t->off, t->len - t->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		t->off += (size_t)r;
	}
	free(t->out);
	t->out = NULL;
	t->off = t->len = t->cap = 0;
	return 0;
}

static bool tls_out_room(struct tls *t, size_t n)
{
	size_t cap;
	uint8_t *b;

	if (t->off && t->len + n > t->cap) {
		memmove(t->out, t->out + t->off, t->len - t->off);
		t->len -= t->off;
		t->off = 0;
	}
	if (t->len + n <= t->cap)
		return true;
	/* A handshake flight fits the first size; a relay that passes it is
	 * busy and gets the whole bound at once, not a realloc per doubling. */
	cap = t->cap ? TLS_OUT_MAX : 16384;
	if (cap < t->len + n)
		cap = t->len + n;
	if (!(b = realloc(t->out, cap)))
		return false;
	t->out = b;
	t->cap = cap;
	return true;
}

/* OpenSSL writes one whole record per call. Past the bound it is refused
 * (SSL_ERROR_WANT_WRITE) until the socket takes some: that is the
 * backpressure, the relay then stops reading the other side. */
static int tls_out_write(BIO *b, const char *data, int n)
{
	struct tls *t = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (t->len - t->off >= TLS_OUT_FLUSH && tls_out_send(t) < 0)
		return -1;
	if (t->len - t->off >= TLS_OUT_FLUSH) {
		BIO_set_retry_write(b);
		return -1;
	}
	if (!tls_out_room(t, (size_t)n)) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(t->out + t->len, data, (size_t)n);
	t->len += (size_t)n;
	return n;
}

/* Reads go straight to the socket, as OpenSSL's socket BIO does them: one
 * BIO for both ways, not a socket BIO beside the write one, saves a BIO and
 * its lock per connection (0.4 KiB a tunnel, two connections). */
static int tls_in_read(BIO *b, char *buf, int n)
{
	struct tls *t = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	do
		r = recv(t->fd, buf, (size_t)n, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	else if (r == 0)
		t->in_eof = true;	/* BIO_CTRL_EOF: SSL_OP_IGNORE_UNEXPECTED_EOF looks */
	return (int)r;
}

/* OpenSSL flushes at the end of each handshake flight: send it at once.
 * A full socket is no failure: the bytes wait for tls_flush(). */
static long tls_out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls *t = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return tls_out_send(t) < 0 ? 0 : 1;
	case BIO_CTRL_WPENDING:
		return (long)(t->len - t->off);
	case BIO_CTRL_EOF:
		return t->in_eof;
	default:
		return 0;
	}
}

static int tls_out_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *tls_out_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mtugate socket");

	if (m && (BIO_meth_set_write(m, tls_out_write) != 1 || BIO_meth_set_read(m, tls_in_read) != 1 ||
		  BIO_meth_set_ctrl(m, tls_out_ctrl) != 1 ||
		  BIO_meth_set_create(m, tls_out_create) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

static const char *tls_queue_str(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/* The failure's text, kept for tls_error(): allocated on the first failure
 * only (most connections never fail before they close). Out of memory, the
 * text is lost and tls_error() says "TLS error". */
static void tls_set_err(struct tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tls_set_err(struct tls *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->err && !(t->err = malloc(TLS_ERR_LEN)))
		return;
	va_start(ap, fmt);
	vsnprintf(t->err, TLS_ERR_LEN, fmt, ap);
	va_end(ap);
}

static SSL_CTX *tls_ctx_base(const SSL_METHOD *m)
{
	SSL_CTX *c = SSL_CTX_new(m);

	if (!c)
		return NULL;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_mode(c, TLS_MODES);
	/* A peer that drops TCP without close_notify ends the tunnel as EOF. */
	SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Read what the socket holds, not one record header then its body: two
	 * read()s per CSTP packet were most of the relay's cost. The relay reads
	 * until WANT_READ, so nothing waits unseen in OpenSSL's buffer. */
	SSL_CTX_set_read_ahead(c, 1);
	return c;
}

static time_t tls_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void tls_info(const SSL *ssl, int where, int ret)
{
	struct tls *t = SSL_get_app_data(ssl);

	(void)ret;
	if (t && (where & SSL_CB_HANDSHAKE_DONE))
		t->handshakes++;
}

/* A ClientHello after a finished handshake is a TLS 1.2 renegotiation (TLS
 * 1.3 has none). Each costs us a private-key operation: at most one per
 * TLS_RENEG_INTERVAL per connection, beyond that the handshake fails with a
 * no_renegotiation alert and the connection closes. */
static int tls_client_hello(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = SSL_get_app_data(ssl);
	time_t now = tls_now();

	(void)arg;
	if (!t || !t->handshakes)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (t->last_reneg && now - t->last_reneg < TLS_RENEG_INTERVAL) {
		t->reneg_refused = true;
		t->x->reneg_refused++;
		*alert = SSL_AD_NO_RENEGOTIATION;
		return SSL_CLIENT_HELLO_ERROR;
	}
	t->last_reneg = now;
	t->renegs++;
	t->x->renegotiations++;
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Refuse a key anyone on the box could read: it is the headend's own. */
static int tls_check_key_mode(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "[proxy] private_key %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(err, errlen, "[proxy] private_key %s is readable by everyone (mode %03o):"
			 " refusing it; chmod 0600 or 0640", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

/* Session tickets as nginx makes them from an 80-byte key: AES-256-CBC and
 * HMAC-SHA256, the key's name in the ticket. A ticket under an older key
 * of the file is taken and replaced by one under the current key (2). */
static int tls_ticket_key(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
			  EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls *t = SSL_get_app_data(ssl);
	const struct ticketkey *f;
	struct ticketkey k;
	OSSL_PARAM params[3];
	bool current = true;
	int r = -1;

	if (!t)
		return -1;
	pthread_mutex_lock(&t->x->tk_lock);
	f = enc ? (t->x->tk.n ? &t->x->tk.k[0] : NULL) : ticketkey_find(&t->x->tk, name, &current);
	if (f)
		k = *f;
	pthread_mutex_unlock(&t->x->tk_lock);
	if (!f)
		return enc ? -1 : 0;	/* decrypting: unknown key, a full handshake */
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(name, k.name, sizeof(k.name));
		if (RAND_bytes(iv, 16) == 1 &&
		    EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
		    EVP_MAC_CTX_set_params(hctx, params) == 1)
			r = 1;
	} else if (EVP_MAC_CTX_set_params(hctx, params) == 1 &&
		   EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1) {
		r = current ? 1 : 2;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return r;
}

/* [proxy] ticket_key_file, or (path NULL or empty) a random key. */
static int tls_ticket_keys_load(struct tls_ctx *x, const char *path, bool *exposed, char *err,
				size_t errlen)
{
	struct ticketkeys ks;
	char e[160];

	*exposed = false;
	if (path && path[0]) {
		if (ticketkey_load(path, &ks, exposed, e, sizeof(e)) < 0) {
			snprintf(err, errlen, "[proxy] ticket_key_file %s: %s", path, e);
			return -1;
		}
	} else if (ticketkey_random(&ks) < 0) {
		snprintf(err, errlen, "TLS ticket key: no random bytes");
		return -1;
	}
	pthread_mutex_lock(&x->tk_lock);
	x->tk = ks;
	pthread_mutex_unlock(&x->tk_lock);
	ticketkey_wipe(&ks);
	return 0;
}

int tls_ctx_ticket_keys(struct tls_ctx *x, const char *path, size_t *nkeys, bool *exposed,
			char *err, size_t errlen)
{
	if (tls_ticket_keys_load(x, path, exposed, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&x->tk_lock);
	*nkeys = x->tk.n;
	pthread_mutex_unlock(&x->tk_lock);
	return 0;
}

/* The headend asked for a client certificate (a CertificateRequest): the
 * proxy has none to give, the client's stays on the client leg. Noted for
 * the caller (tls_cert_requested()); the handshake goes on without one. */
static int tls_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
	struct tls *t = SSL_get_app_data(ssl);

	(void)x509;
	(void)pkey;
	if (t)
		t->cert_requested = true;
	return 0;
}

static int tls_load_server(struct tls_ctx *x, const struct conf *c, char *err, size_t errlen)
{
	char e[160];

	if (tls_check_key_mode(c->proxy.private_key, err, errlen) < 0)
		return -1;
	if (!(x->server = tls_ctx_base(TLS_server_method())))
		goto ssl;
	/* A TLS 1.3 server sends two tickets by default, each a session copy
	 * encrypted: one is what a client resumes with (openconnect keeps one). */
	SSL_CTX_set_num_tickets(x->server, 1);
	/* Our ticket keys, not OpenSSL's own random ones: a pair of gateways
	 * sharing ticket_key_file resumes each other's clients (docs/ha.md). */
	SSL_CTX_set_tlsext_ticket_key_evp_cb(x->server, tls_ticket_key);
	/* OpenSSL 3 refuses a client's renegotiation unless told otherwise;
	 * openconnect rekeys TLS 1.2 with one (X-CSTP-Rekey-Method: ssl) and,
	 * refused, sets the tunnel up anew. tls_client_hello() limits it. */
	SSL_CTX_set_options(x->server, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
	SSL_CTX_set_client_hello_cb(x->server, tls_client_hello, NULL);
	SSL_CTX_set_info_callback(x->server, tls_info);
	if (SSL_CTX_use_certificate_chain_file(x->server, c->proxy.certificate) != 1) {
		snprintf(err, errlen, "[proxy] certificate %s: %s", c->proxy.certificate,
			 tls_queue_str(e, sizeof(e)));
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(x->server, c->proxy.private_key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "[proxy] private_key %s: %s", c->proxy.private_key,
			 tls_queue_str(e, sizeof(e)));
		return -1;
	}
	if (SSL_CTX_check_private_key(x->server) != 1) {
		snprintf(err, errlen, "[proxy] private_key %s does not match certificate %s",
			 c->proxy.private_key, c->proxy.certificate);
		return -1;
	}
	return 0;
ssl:
	snprintf(err, errlen, "TLS server context: %s", tls_queue_str(e, sizeof(e)));
	return -1;
}

static void tls_peer_key(struct tls_peer *k, const struct sockaddr_storage *dst, const char *sni)
{
	memset(k, 0, sizeof(*k));
	if (dst->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)dst;

		k->addr[0] = 6;
		memcpy(k->addr + 1, &a->sin6_addr, 16);
		memcpy(k->addr + 17, &a->sin6_port, 2);
	} else if (dst->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)dst;

		k->addr[0] = 4;
		memcpy(k->addr + 1, &a->sin_addr, 4);
		memcpy(k->addr + 17, &a->sin_port, 2);
	}
	snprintf(k->sni, sizeof(k->sni), "%s", sni ? sni : "");
}

/* Sessions [from, from + n) of r leave it, freed. */
static void tls_resume_drop(struct tls_resume *r, unsigned from, unsigned n)
{
	unsigned i;

	for (i = from; i < from + n; i++)
		SSL_SESSION_free(r->sess[i]);
	memmove(r->sess + from, r->sess + from + n, (r->nsess - from - n) * sizeof(r->sess[0]));
	r->nsess -= n;
}

/* The peer's slot, taken (the oldest peer's given up) if it has none. */
static unsigned tls_resume_slot(struct tls_ctx *x, const struct tls_peer *k)
{
	struct tls_resume *r;
	unsigned i;

	for (i = 0; i < TLS_RESUME_SLOTS; i++)
		if (x->slots[i].used && memcmp(&x->slots[i].peer, k, sizeof(*k)) == 0)
			return i;
	i = x->next;
	x->next = (x->next + 1) % TLS_RESUME_SLOTS;
	r = &x->slots[i];
	tls_resume_drop(r, 0, r->nsess);
	*r = (struct tls_resume){ .used = true, .gen = r->gen + 1, .peer = *k };
	return i;
}

/* The slot of t's headend, or NULL: none, or given to another peer since. */
static struct tls_resume *tls_resume_of(const struct tls *t)
{
	struct tls_resume *r;

	if (!t->has_slot)
		return NULL;
	r = &t->x->slots[t->slot];
	return r->gen == t->slot_gen ? r : NULL;
}

/* The headend sent a session (a TLS 1.3 ticket after the handshake, or a
 * TLS 1.2 session at its end): kept, the oldest giving way. A TLS 1.2
 * session resumes any number of times: it replaces the peer's others. */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls *t = SSL_get_app_data(ssl);
	struct tls_resume *r;

	if (!t || !(r = tls_resume_of(t)) || !SSL_SESSION_is_resumable(sess))
		return 0;
	if (SSL_SESSION_get_protocol_version(sess) != TLS1_3_VERSION)
		tls_resume_drop(r, 0, r->nsess);
	else if (r->nsess == TLS_RESUME_PER_PEER)
		tls_resume_drop(r, 0, 1);
	r->sess[r->nsess++] = sess;
	return 1;	/* the reference is ours */
}

/* The newest session still worth offering, with a reference for the
 * caller, or NULL. Expired ones are dropped; a TLS 1.3 one leaves (it
 * resumes once). */
static SSL_SESSION *tls_resume_take(struct tls_resume *r)
{
	time_t now = time(NULL);
	SSL_SESSION *s;

	if (now < r->hold_until)
		return NULL;
	while (r->nsess) {
		s = r->sess[r->nsess - 1];
		if ((uint64_t)SSL_SESSION_get_time(s) + (uint64_t)SSL_SESSION_get_timeout(s) <=
		    (uint64_t)now || !SSL_SESSION_is_resumable(s)) {
			tls_resume_drop(r, r->nsess - 1, 1);
			continue;
		}
		if (SSL_SESSION_get_protocol_version(s) == TLS1_3_VERSION)
			r->nsess--;	/* its reference goes to the caller */
		else
			SSL_SESSION_up_ref(s);
		return s;
	}
	return NULL;
}

static int tls_load_client(struct tls_ctx *x, const struct conf *c, char *err, size_t errlen)
{
	char e[160];
	struct stat st;
	int ok;

	if (!(x->client = tls_ctx_base(TLS_client_method()))) {
		snprintf(err, errlen, "TLS client context: %s", tls_queue_str(e, sizeof(e)));
		return -1;
	}
	x->verify = !c->proxy.insecure_upstream;
	SSL_CTX_set_client_cert_cb(x->client, tls_client_cert);
	/* Resuming skips the headend's signature and our verification of its
	 * chain: most of a handshake's cost on both ends. Sessions live only in
	 * the slots above (a new context, e.g. a restart, starts empty); without
	 * the callback nothing is stored, so nothing is offered. */
	if (c->proxy.upstream_resume) {
		SSL_CTX_set_session_cache_mode(x->client, SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(x->client, tls_new_session);
	} else {
		SSL_CTX_set_options(x->client, SSL_OP_NO_TICKET);
	}
	snprintf(x->upstream_name, sizeof(x->upstream_name), "%s", c->proxy.upstream_name);
	if (!x->verify)
		return 0;
	if (stat(c->proxy.upstream_ca, &st) < 0) {
		snprintf(err, errlen, "[proxy] upstream_ca %s: %s", c->proxy.upstream_ca, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		ok = SSL_CTX_load_verify_locations(x->client, NULL, c->proxy.upstream_ca);
	else
		ok = SSL_CTX_load_verify_locations(x->client, c->proxy.upstream_ca, NULL);
	if (ok != 1) {
		snprintf(err, errlen, "[proxy] upstream_ca %s: %s", c->proxy.upstream_ca,
			 tls_queue_str(e, sizeof(e)));
		return -1;
	}
	SSL_CTX_set_verify(x->client, SSL_VERIFY_PEER, NULL);
	return 0;
}

struct tls_ctx *tls_ctx_new(const struct conf *c, char *err, size_t errlen)
{
	struct tls_ctx *x = calloc(1, sizeof(*x));
	bool exposed;

	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&x->tk_lock, NULL);
	if (!(x->out_meth = tls_out_method())) {
		snprintf(err, errlen, "TLS: cannot make the output BIO");
		tls_ctx_free(x);
		return NULL;
	}
	/* The file's keys, read here with the private key (as root, in the
	 * process that keeps them), else a random key of this context's own. */
	if (tls_ticket_keys_load(x, c->proxy.ticket_key_file, &exposed, err, errlen) < 0 ||
	    tls_load_server(x, c, err, errlen) < 0 || tls_load_client(x, c, err, errlen) < 0) {
		tls_ctx_free(x);
		return NULL;
	}
	return x;
}

void tls_ctx_free(struct tls_ctx *x)
{
	size_t i;

	if (!x)
		return;
	for (i = 0; i < TLS_RESUME_SLOTS; i++)
		tls_resume_drop(&x->slots[i], 0, x->slots[i].nsess);
	SSL_CTX_free(x->server);
	SSL_CTX_free(x->client);
	BIO_meth_free(x->out_meth);
	ticketkey_wipe(&x->tk);
	pthread_mutex_destroy(&x->tk_lock);
	free(x);
}

/* One BIO both ways: reads from the socket (tls_in_read()), writes
 * through tls_out_write(). */
static struct tls *tls_wrap(struct tls_ctx *x, SSL_CTX *ctx, int fd)
{
	struct tls *t = calloc(1, sizeof(*t));
	BIO *b = NULL;

	if (!t)
		return NULL;
	t->fd = fd;
	t->x = x;
	if (!(t->ssl = SSL_new(ctx)) || !(b = BIO_new(x->out_meth))) {
		tls_free(t);
		return NULL;
	}
	BIO_set_data(b, t);
	SSL_set_bio(t->ssl, b, b);	/* one reference, for both */
	SSL_set_app_data(t->ssl, t);
	return t;
}

struct tls *tls_accept_new(struct tls_ctx *x, int fd)
{
	struct tls *t = tls_wrap(x, x->server, fd);

	if (t)
		SSL_set_accept_state(t->ssl);
	return t;
}

static int tls_set_peer(struct tls_ctx *x, SSL *ssl, const struct sockaddr_storage *dst)
{
	X509_VERIFY_PARAM *p = SSL_get0_param(ssl);

	if (!x->verify)
		return 0;
	if (x->upstream_name[0])
		return X509_VERIFY_PARAM_set1_host(p, x->upstream_name, 0) == 1 ? 0 : -1;
	if (dst->ss_family == AF_INET)
		return X509_VERIFY_PARAM_set1_ip(p, (const unsigned char *)
						 &((const struct sockaddr_in *)dst)->sin_addr, 4) == 1 ? 0 : -1;
	if (dst->ss_family == AF_INET6)
		return X509_VERIFY_PARAM_set1_ip(p, (const unsigned char *)
						 &((const struct sockaddr_in6 *)dst)->sin6_addr, 16) == 1 ? 0 : -1;
	return -1;
}

struct tls *tls_connect_new(struct tls_ctx *x, int fd, const char *sni,
			    const struct sockaddr_storage *dst)
{
	struct tls *t = tls_wrap(x, x->client, fd);
	struct tls_peer k;
	SSL_SESSION *sess;

	if (!t)
		return NULL;
	SSL_set_connect_state(t->ssl);
	if ((sni && SSL_set_tlsext_host_name(t->ssl, sni) != 1) || tls_set_peer(x, t->ssl, dst) < 0) {
		tls_free(t);
		return NULL;
	}
	/* Without upstream_resume no session is stored (tls_load_client()). */
	if (SSL_CTX_sess_get_new_cb(x->client)) {
		tls_peer_key(&k, dst, sni);
		t->slot = tls_resume_slot(x, &k);
		t->slot_gen = x->slots[t->slot].gen;
		t->has_slot = true;
	}
	/* A session the headend no longer takes costs nothing: it answers with a
	 * full handshake, verified as any other. */
	if (t->has_slot && (sess = tls_resume_take(&x->slots[t->slot]))) {
		if (SSL_set_session(t->ssl, sess) == 1)
			t->offered = sess;	/* the SSL's reference keeps it */
		SSL_SESSION_free(sess);
	}
	return t;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t->err);
	free(t->out);
	free(t);
}

/* Our side found no common version (the peer offers TLS 1.1 at best), or
 * the peer said so with a protocol_version alert. */
static bool tls_version_refused(unsigned long e)
{
	int r = ERR_GET_REASON(e);

	return ERR_GET_LIB(e) == ERR_LIB_SSL &&
	       (r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
		r == SSL_R_WRONG_SSL_VERSION || r == SSL_R_UNKNOWN_PROTOCOL);
}

/* Map an OpenSSL result to ours, keeping the reason of a failure. */
static enum tls_res tls_result(struct tls *t, int ret)
{
	int se = SSL_get_error(t->ssl, ret);
	char e[TLS_ERR_LEN];
	long v;

	switch (se) {
	case SSL_ERROR_NONE: return TLS_OK;
	case SSL_ERROR_WANT_READ: return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE: return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN: return TLS_EOF;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_last_error()) {
			tls_set_err(t, "%s", tls_queue_str(e, sizeof(e)));
		} else if (errno) {
			tls_set_err(t, "%s", strerror(errno));
		} else {
			ERR_clear_error();
			return TLS_EOF;
		}
		return TLS_ERROR;
	default:
		if ((v = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
			tls_set_err(t, "certificate verification failed: %s",
				    X509_verify_cert_error_string(v));
			ERR_clear_error();
		} else if (t->reneg_refused) {
			tls_set_err(t, "renegotiation refused: the last was less than %d s ago",
				    TLS_RENEG_INTERVAL);
			ERR_clear_error();
		} else if (tls_version_refused(ERR_peek_last_error())) {
			tls_set_err(t, "TLS version below 1.2 refused (%.120s)",
				    tls_queue_str(e, sizeof(e)));
		} else {
			tls_set_err(t, "%s", tls_queue_str(e, sizeof(e)));
		}
		return TLS_ERROR;
	}
}

/* A handshake that failed after offering a cached session forgets it and
 * holds further offers to that peer (TLS_RESUME_HOLD). */
static void tls_resume_forget(struct tls *t)
{
	struct tls_resume *r;

	unsigned i;

	if (!t->offered || !(r = tls_resume_of(t)))
		return;
	for (i = 0; i < r->nsess; i++)
		if (r->sess[i] == t->offered)
			tls_resume_drop(r, i, 1);
	r->hold_until = time(NULL) + TLS_RESUME_HOLD;
}

enum tls_res tls_handshake(struct tls *t)
{
	enum tls_res r;

	ERR_clear_error();
	errno = 0;
	r = tls_result(t, SSL_do_handshake(t->ssl));
	if (r == TLS_ERROR || r == TLS_EOF)
		tls_resume_forget(t);
	return r;
}

/* Every failure empties this thread's error queue (tls_result()), so it is
 * normally empty: peeking is much cheaper than clearing all its slots. */
static void tls_clear_errors(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

enum tls_res tls_read(struct tls *t, void *buf, size_t len, size_t *n)
{
	int r;

	tls_clear_errors();
	errno = 0;
	*n = 0;
	r = SSL_read_ex(t->ssl, buf, len, n);
	return r == 1 ? TLS_OK : tls_result(t, r);
}

enum tls_res tls_write(struct tls *t, const void *buf, size_t len, size_t *n)
{
	int r;

	tls_clear_errors();
	errno = 0;
	*n = 0;
	r = SSL_write_ex(t->ssl, buf, len, n);
	return r == 1 ? TLS_OK : tls_result(t, r);
}

void tls_close(struct tls *t)
{
	if (!t || t->closed)
		return;
	t->closed = true;
	ERR_clear_error();
	if (SSL_is_init_finished(t->ssl))
		SSL_shutdown(t->ssl);
	ERR_clear_error();
	/* The fd closes next: what waits goes now or never. */
	tls_out_send(t);
}

void tls_idle(struct tls *t)
{
	/* Not mid-handshake, and no record half read: SSL_free_buffers()
	 * refuses buffers that still hold bytes. */
	if (t && SSL_is_init_finished(t->ssl) && !SSL_pending(t->ssl))
		SSL_free_buffers(t->ssl);
}

size_t tls_pending(const struct tls *t)
{
	return t ? t->len - t->off : 0;
}

enum tls_res tls_flush(struct tls *t)
{
	if (tls_out_send(t) < 0) {
		tls_set_err(t, "%s", strerror(errno));
		return TLS_ERROR;
	}
	return t->off < t->len ? TLS_WANT_WRITE : TLS_OK;
}

bool tls_reneg_refused(const struct tls *t)
{
	return t && t->reneg_refused;
}

unsigned tls_renegotiations(const struct tls *t)
{
	return t ? t->renegs : 0;
}

void tls_ctx_reneg_stats(const struct tls_ctx *x, uint64_t *done, uint64_t *refused)
{
	*done = x->renegotiations;
	*refused = x->reneg_refused;
}

bool tls_cert_requested(const struct tls *t)
{
	return t && t->cert_requested;
}

bool tls_resumed(const struct tls *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

const char *tls_sni(const struct tls *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *tls_describe(const struct tls *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
	return buf;
}

const char *tls_error(struct tls *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s", t->err && t->err[0] ? t->err : "TLS error");
	return buf;
}

static void tls_fingerprint(X509 *x, char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	size_t o = 0;

	if (len)
		out[0] = '\0';
	if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (unsigned i = 0; i < n && o + 4 <= len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%02X", i ? ":" : "", md[i]);
}

int tls_leaf_compare(struct tls *t, char *ours, char *theirs, size_t len)
{
	X509 *mine = SSL_CTX_get0_certificate(t->x->server);
	X509 *peer = SSL_get0_peer_certificate(t->ssl);

	tls_fingerprint(mine, ours, len);
	tls_fingerprint(peer, theirs, len);
	if (!mine || !peer || !ours[0] || !theirs[0])
		return -1;
	return strcmp(ours, theirs) ? 1 : 0;
}

void tls_ctx_fingerprint(const struct tls_ctx *x, char *fp, size_t len)
{
	tls_fingerprint(SSL_CTX_get0_certificate(x->server), fp, len);
}

int tls_fetch_leaf(const struct sockaddr_storage *dst, const char *sni, unsigned timeout_s,
		   char *fp, size_t len, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = timeout_s };
	socklen_t sl = dst->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
		       sizeof(struct sockaddr_in);
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd, r = -1;

	fp[0] = '\0';
	if ((fd = socket(dst->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (const struct sockaddr *)dst, sl) < 0) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		goto out;
	}
	/* Only the certificate is wanted: nothing is verified or sent after. */
	if (!(ctx = SSL_CTX_new(TLS_client_method())) ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || !(ssl = SSL_new(ctx)) ||
	    SSL_set_fd(ssl, fd) != 1 || (sni && sni[0] && SSL_set_tlsext_host_name(ssl, sni) != 1)) {
		tls_queue_str(err, errlen);
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		snprintf(err, errlen, "TLS handshake failed");
		goto out;
	}
	tls_fingerprint(SSL_get0_peer_certificate(ssl), fp, len);
	r = fp[0] ? 0 : -1;
	if (r)
		snprintf(err, errlen, "no certificate");
out:
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return r;
}

bool tls_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 0;

	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}
