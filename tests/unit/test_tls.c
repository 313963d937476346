/* Upstream TLS session resumption (and the client leg's renegotiation limit): the proxy offers a headend's session only
 * to the same address, port and SNI; everything else is a full handshake,
 * verified. The headends are OpenSSL servers over a socketpair; keys and
 * certificates are made here, in a temporary folder. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "proxy/tls.h"
#include "tests/unit/t.h"

#define NAME "headend.test"
#define SNI "vpn.example"

struct ident {
	EVP_PKEY *key;
	X509 *cert;
};

static char dir[64], crt_path[128], key_path[128], ca_path[128];

/* A P-256 key and a self-signed certificate naming name (CN and SAN). */
static int ident_make(struct ident *id, const char *name)
{
	X509_NAME *n;
	X509_EXTENSION *ext;
	char san[128];
	X509V3_CTX v3;

	id->cert = NULL;
	if (!(id->key = EVP_EC_gen("P-256")) || !(id->cert = X509_new()))
		return -1;
	snprintf(san, sizeof(san), "DNS:%s", name);
	X509_set_version(id->cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(id->cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(id->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(id->cert), 86400);
	X509_set_pubkey(id->cert, id->key);
	n = X509_get_subject_name(id->cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(id->cert, n);
	X509V3_set_ctx(&v3, id->cert, id->cert, NULL, NULL, 0);
	if (!(ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)))
		return -1;
	X509_add_ext(id->cert, ext, -1);
	X509_EXTENSION_free(ext);
	return X509_sign(id->cert, id->key, EVP_sha256()) > 0 ? 0 : -1;
}

static void ident_free(struct ident *id)
{
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
}

static int write_pem(const char *path, mode_t mode, X509 *c1, X509 *c2, EVP_PKEY *key)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	FILE *f;
	int ok;

	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = (!c1 || PEM_write_X509(f, c1)) && (!c2 || PEM_write_X509(f, c2)) &&
	     (!key || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* A headend: tickets on, as OpenSSL ships it. */
static SSL_CTX *headend_new(const struct ident *id)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());

	if (c && (SSL_CTX_use_certificate(c, id->cert) != 1 || SSL_CTX_use_PrivateKey(c, id->key) != 1)) {
		SSL_CTX_free(c);
		c = NULL;
	}
	return c;
}

static struct sockaddr_storage v4(const char *a, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
	s->sin_port = htons(port);
	return ss;
}

static struct sockaddr_storage v6(const char *a, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
	s->sin6_port = htons(port);
	return ss;
}

struct result {
	bool ok;		/* handshake done and data went both ways */
	bool resumed;		/* tls_resumed() on the proxy side */
	bool srv_resumed;	/* the headend agrees */
	char version[64];
	char err[160];		/* tls_error() when the handshake failed */
};

/* The proxy's side t toward a headend's SSL s, on the socketpair fd. */
struct up {
	struct tls *t;
	SSL *s;
	int fd[2];
};

static void up_free(struct up *u)
{
	ERR_clear_error();
	tls_close(u->t);
	tls_free(u->t);
	SSL_free(u->s);
	if (u->fd[0] >= 0)
		close(u->fd[0]);
	if (u->fd[1] >= 0)
		close(u->fd[1]);
	*u = (struct up){ .fd = { -1, -1 } };
}

/* A connection from the proxy to headend srv, as dst with sni, through its
 * handshake: true when both sides are done, else the reason in err. */
static bool up_open(struct up *u, struct tls_ctx *x, SSL_CTX *srv, const char *sni,
		    const struct sockaddr_storage *dst, char *err, size_t errlen)
{
	bool pdone = false, sdone = false;
	int i, r;

	*u = (struct up){ .fd = { -1, -1 } };
	snprintf(err, errlen, "setup failed");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, u->fd) < 0 || fcntl(u->fd[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(u->fd[1], F_SETFL, O_NONBLOCK) < 0)
		return false;
	if (!(u->t = tls_connect_new(x, u->fd[0], sni, dst)) || !(u->s = SSL_new(srv)) ||
	    SSL_set_fd(u->s, u->fd[1]) != 1)
		return false;
	SSL_set_accept_state(u->s);
	err[0] = '\0';
	for (i = 0; i < 50 && !(pdone && sdone); i++) {
		if (!pdone) {
			enum tls_res pr = tls_handshake(u->t);

			if (pr == TLS_ERROR || pr == TLS_EOF || tls_flush(u->t) == TLS_ERROR) {
				tls_error(u->t, err, errlen);
				return false;
			}
			pdone = pr == TLS_OK;
		}
		if (!sdone) {
			if ((r = SSL_do_handshake(u->s)) == 1)
				sdone = true;
			else if ((r = SSL_get_error(u->s, r)) != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE) {
				snprintf(err, errlen, "headend handshake failed");
				/* The proxy reads the headend's alert, as it would. */
				if (!pdone)
					tls_handshake(u->t);
				return false;
			}
		}
	}
	if (!(pdone && sdone))
		snprintf(err, errlen, "handshake did not finish");
	return pdone && sdone;
}

/* One connection from the proxy to headend srv, as dst with sni: handshake,
 * then a few bytes each way (reading them takes in the TLS 1.3 ticket). */
static struct result conn(struct tls_ctx *x, SSL_CTX *srv, const char *sni,
			  const struct sockaddr_storage *dst)
{
	struct result res = { 0 };
	struct up u;
	char buf[16];
	size_t got = 0, n;
	int i, r;

	if (!up_open(&u, x, srv, sni, dst, res.err, sizeof(res.err)))
		goto out;
	res.resumed = tls_resumed(u.t);
	res.srv_resumed = SSL_session_reused(u.s) == 1;
	tls_describe(u.t, res.version, sizeof(res.version));
	if (SSL_write(u.s, "hello", 5) != 5)
		goto out;
	for (i = 0; i < 50 && got < 5; i++) {
		enum tls_res rr = tls_read(u.t, buf + got, sizeof(buf) - got, &n);

		if (rr == TLS_OK)
			got += n;
		else if (rr != TLS_WANT_READ)
			goto out;
	}
	if (got != 5 || memcmp(buf, "hello", 5) != 0)
		goto out;
	if (tls_write(u.t, "back", 4, &n) != TLS_OK || n != 4 || tls_flush(u.t) != TLS_OK)
		goto out;
	for (i = 0, got = 0; i < 50 && got < 4; i++) {
		if ((r = SSL_read(u.s, buf + got, (int)(sizeof(buf) - got))) > 0)
			got += (size_t)r;
		else if (SSL_get_error(u.s, r) != SSL_ERROR_WANT_READ)
			goto out;
	}
	res.ok = got == 4 && memcmp(buf, "back", 4) == 0;
out:
	up_free(&u);
	return res;
}

/* A context as the proxy makes one; tickets: [proxy] ticket_key_file (NULL:
 * none), err: why it failed (NULL: printed). */
static struct tls_ctx *ctx_new_keys(bool resume, const char *tickets, char *why, size_t whylen)
{
	struct conf c;
	char err[256] = "";
	struct tls_ctx *x;

	conf_defaults(&c);
	if (tickets)
		snprintf(c.proxy.ticket_key_file, sizeof(c.proxy.ticket_key_file), "%s", tickets);
	snprintf(c.proxy.certificate, sizeof(c.proxy.certificate), "%s", crt_path);
	snprintf(c.proxy.private_key, sizeof(c.proxy.private_key), "%s", key_path);
	snprintf(c.proxy.upstream_ca, sizeof(c.proxy.upstream_ca), "%s", ca_path);
	snprintf(c.proxy.upstream_name, sizeof(c.proxy.upstream_name), NAME);
	c.proxy.upstream_resume = resume;
	if (!(x = tls_ctx_new(&c, err, sizeof(err))) && !why)
		fprintf(stderr, "tls_ctx_new: %s\n", err);
	if (why)
		snprintf(why, whylen, "%s", err);
	return x;
}

static struct tls_ctx *ctx_new(bool resume)
{
	return ctx_new_keys(resume, NULL, NULL, 0);
}

static bool verify_failed(const struct result *r)
{
	return !r->ok && strstr(r->err, "certificate verification failed") &&
	       strstr(r->err, "hostname mismatch");
}

static struct ident head, other;

/* 1, 2: the first connection is full, the next ones resume (each with the
 * newest ticket) and carry data. */
static void test_same_peer(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head);
	struct sockaddr_storage a = v4("198.18.2.2", 443);
	struct result r;

	CHECK(x && srv);
	if (!x || !srv)
		goto out;
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok);
	CHECK(!r.resumed);
	CHECK(!r.srv_resumed);
	CHECK(strncmp(r.version, "TLSv1.3 ", 8) == 0);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok);
	CHECK(r.resumed);
	CHECK(r.srv_resumed);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok);
	CHECK(r.resumed);
out:
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* 3: another port, address or SNI (none at all included) is another peer; the
 * session of the first stays in place for it. */
static void test_other_peers(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head);
	struct sockaddr_storage a = v4("198.18.2.2", 443), port = v4("198.18.2.2", 444),
				addr = v4("198.18.2.3", 443);
	struct result r;

	CHECK(x && srv);
	if (!x || !srv)
		goto out;
	CHECK(conn(x, srv, SNI, &a).ok);
	r = conn(x, srv, SNI, &port);
	CHECK(r.ok && !r.resumed);
	r = conn(x, srv, SNI, &addr);
	CHECK(r.ok && !r.resumed);
	r = conn(x, srv, "other.example", &a);
	CHECK(r.ok && !r.resumed);
	r = conn(x, srv, NULL, &a);
	CHECK(r.ok && !r.resumed);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && r.resumed);
	/* Each of them now has its own session. */
	CHECK(conn(x, srv, SNI, &port).resumed);
	CHECK(conn(x, srv, "other.example", &a).resumed);
	CHECK(conn(x, srv, NULL, &a).resumed);
out:
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* The cache holds 8 peers: a ninth pushes out the oldest. */
static void test_slots(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head);
	struct sockaddr_storage d[9];
	int i, full = 0;

	CHECK(x && srv);
	if (!x || !srv)
		goto out;
	for (i = 0; i < 9; i++) {
		d[i] = v4("198.18.2.2", (uint16_t)(1000 + i));
		full += conn(x, srv, SNI, &d[i]).ok;
	}
	CHECK_INT(full, 9);
	CHECK(conn(x, srv, SNI, &d[8]).resumed);
	CHECK(conn(x, srv, SNI, &d[7]).resumed);
	CHECK(!conn(x, srv, SNI, &d[0]).resumed);
out:
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* Tunnels set up at once: a TLS 1.3 session resumes once (OpenSSL's
 * client marks it used), so each takes a session of its own from the
 * peer's pool. OpenSSL's server sends two tickets a handshake: after one
 * full handshake two connections at once both resume, a third finds the
 * pool empty (a full handshake), and the tickets of those connections fill
 * it again. */
static void test_at_once(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head);
	struct sockaddr_storage a = v4("198.18.2.2", 443);
	struct up u[3];
	char err[160];
	int i;

	CHECK(x && srv);
	if (!x || !srv)
		goto out;
	CHECK(conn(x, srv, SNI, &a).ok);
	for (i = 0; i < 3; i++)
		CHECK(up_open(&u[i], x, srv, SNI, &a, err, sizeof(err)));
	CHECK(u[0].t && tls_resumed(u[0].t) && SSL_session_reused(u[0].s) == 1);
	CHECK(u[1].t && tls_resumed(u[1].t) && SSL_session_reused(u[1].s) == 1);
	CHECK(u[2].t && !tls_resumed(u[2].t));
	for (i = 0; i < 3; i++)
		up_free(&u[i]);
	/* None of their tickets was read: the pool is empty. */
	CHECK(!conn(x, srv, SNI, &a).resumed);
	CHECK(conn(x, srv, SNI, &a).resumed);
	CHECK(conn(x, srv, SNI, &a).resumed);
out:
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* 4: a headend that no longer takes the session answers with a full
 * handshake, and that one is verified: with the wrong certificate it fails. */
static void test_refused(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head), *nocache = headend_new(&head), *rekeyed = headend_new(&head),
		*liar = headend_new(&other);
	struct sockaddr_storage a = v4("198.18.2.2", 443);
	struct result r;

	CHECK(x && srv && nocache && rekeyed && liar);
	if (!x || !srv || !nocache || !rekeyed || !liar)
		goto out;
	SSL_CTX_set_options(nocache, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(nocache, SSL_SESS_CACHE_OFF);

	CHECK(conn(x, srv, SNI, &a).ok);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && r.resumed);
	/* A restarted headend: new ticket keys. */
	r = conn(x, rekeyed, SNI, &a);
	CHECK(r.ok);
	CHECK(!r.resumed);
	CHECK(!r.srv_resumed);
	/* Its new session replaced the old one. */
	r = conn(x, rekeyed, SNI, &a);
	CHECK(r.ok && r.resumed);
	/* No tickets and no cache: nothing resumes, ever. */
	r = conn(x, nocache, SNI, &a);
	CHECK(r.ok && !r.resumed);
	r = conn(x, nocache, SNI, &a);
	CHECK(r.ok && !r.resumed);
	/* Back to a resumable session, then a headend that refuses it and shows
	 * a certificate (trusted, but for another name): verification fails. */
	CHECK(conn(x, rekeyed, SNI, &a).ok);
	CHECK(conn(x, rekeyed, SNI, &a).resumed);
	r = conn(x, liar, SNI, &a);
	CHECK(verify_failed(&r));
	/* The failure stored nothing, forgot the session it offered, and holds
	 * offers to that peer: full, verified handshakes from now on. */
	r = conn(x, rekeyed, SNI, &a);
	CHECK(r.ok && !r.resumed);
	r = conn(x, rekeyed, SNI, &a);
	CHECK(r.ok && !r.resumed);
	/* Other peers keep resuming. */
	{
		struct sockaddr_storage b = v4("198.18.2.3", 443);

		CHECK(conn(x, rekeyed, SNI, &b).ok);
		CHECK(conn(x, rekeyed, SNI, &b).resumed);
	}
out:
	SSL_CTX_free(liar);
	SSL_CTX_free(rekeyed);
	SSL_CTX_free(nocache);
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* A headend that aborts on a ClientHello offering a TLS 1.3 session. */
static int choke_on_psk(SSL *s, int *alert, void *arg)
{
	const unsigned char *ext;
	size_t len;

	(void)arg;
	if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_psk, &ext, &len) == 1) {
		*alert = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* A headend that fails the handshake instead of falling back to a full one
 * costs one tunnel: then full handshakes only, for TLS_RESUME_HOLD. */
static void test_choke(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head), *choker = headend_new(&head);
	struct sockaddr_storage a = v4("198.18.2.9", 443);
	struct result r;

	CHECK(x && srv && choker);
	if (!x || !srv || !choker)
		goto out;
	SSL_CTX_set_client_hello_cb(choker, choke_on_psk, NULL);
	SSL_CTX_set_options(choker, SSL_OP_NO_TICKET);
	CHECK(conn(x, srv, SNI, &a).ok);
	CHECK(conn(x, srv, SNI, &a).resumed);
	r = conn(x, choker, SNI, &a);
	CHECK(!r.ok);
	r = conn(x, choker, SNI, &a);
	CHECK(r.ok && !r.resumed);
	r = conn(x, choker, SNI, &a);
	CHECK(r.ok && !r.resumed);
out:
	SSL_CTX_free(choker);
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* 5: upstream_resume = false offers nothing and keeps nothing. */
static void test_resume_off(void)
{
	struct tls_ctx *x = ctx_new(false);
	SSL_CTX *srv = headend_new(&head);
	struct sockaddr_storage a = v4("198.18.2.2", 443);
	struct result r;
	int i;

	CHECK(x && srv);
	if (!x || !srv)
		goto out;
	for (i = 0; i < 3; i++) {
		r = conn(x, srv, SNI, &a);
		CHECK(r.ok && !r.resumed && !r.srv_resumed);
	}
out:
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* 6: a certificate for another name fails, before and after a session for
 * peer A exists. The liar shares the good headend's ticket keys: it would
 * accept A's session, so only offering it to the wrong peer lets it through. */
static void test_wrong_name(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head), *liar = headend_new(&other);
	struct sockaddr_storage a = v4("198.18.2.2", 443), port = v4("198.18.2.2", 444),
				addr = v4("198.18.2.3", 443);
	unsigned char keys[80];
	struct result r;

	CHECK(x && srv && liar);
	if (!x || !srv || !liar)
		goto out;
	CHECK(SSL_CTX_get_tlsext_ticket_keys(srv, keys, sizeof(keys)) == 1);
	CHECK(SSL_CTX_set_tlsext_ticket_keys(liar, keys, sizeof(keys)) == 1);

	r = conn(x, liar, SNI, &a);
	CHECK(verify_failed(&r));
	CHECK(conn(x, srv, SNI, &a).ok);
	CHECK(conn(x, srv, SNI, &a).resumed);
	r = conn(x, liar, SNI, &port);
	CHECK(verify_failed(&r));
	r = conn(x, liar, SNI, &addr);
	CHECK(verify_failed(&r));
	r = conn(x, liar, "other.example", &a);
	CHECK(verify_failed(&r));
	r = conn(x, liar, NULL, &a);
	CHECK(verify_failed(&r));
	/* The shared keys do work: to peer A itself, the liar resumes. */
	r = conn(x, liar, SNI, &a);
	CHECK(r.ok && r.resumed);
out:
	SSL_CTX_free(liar);
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* 7: IPv6 destinations are keys too, address and port. */
static void test_ipv6(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head);
	struct sockaddr_storage a = v6("2001:db8::2", 443), b = v6("2001:db8::3", 443),
				p = v6("2001:db8::2", 444), mapped = v6("::ffff:198.18.2.2", 443),
				a4 = v4("198.18.2.2", 443);
	struct result r;

	CHECK(x && srv);
	if (!x || !srv)
		goto out;
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && !r.resumed);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && r.resumed);
	CHECK(!conn(x, srv, SNI, &b).resumed);
	CHECK(!conn(x, srv, SNI, &p).resumed);
	/* An IPv4 session is not an IPv6 one, even for the mapped address. */
	CHECK(conn(x, srv, SNI, &a4).ok);
	r = conn(x, srv, SNI, &mapped);
	CHECK(r.ok && !r.resumed);
out:
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* 8: a TLS 1.2 headend: its session comes with the handshake, and resumes. */
static void test_tls12(void)
{
	struct tls_ctx *x = ctx_new(true);
	SSL_CTX *srv = headend_new(&head), *liar = headend_new(&other);
	struct sockaddr_storage a = v4("198.18.2.2", 443), port = v4("198.18.2.2", 444);
	unsigned char keys[80];
	struct result r;

	CHECK(x && srv && liar);
	if (!x || !srv || !liar)
		goto out;
	SSL_CTX_set_max_proto_version(srv, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(liar, TLS1_2_VERSION);
	CHECK(SSL_CTX_get_tlsext_ticket_keys(srv, keys, sizeof(keys)) == 1);
	CHECK(SSL_CTX_set_tlsext_ticket_keys(liar, keys, sizeof(keys)) == 1);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && !r.resumed);
	CHECK(strncmp(r.version, "TLSv1.2 ", 8) == 0);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && r.resumed && r.srv_resumed);
	r = conn(x, srv, SNI, &a);
	CHECK(r.ok && r.resumed);
	r = conn(x, liar, SNI, &port);
	CHECK(verify_failed(&r));
out:
	SSL_CTX_free(liar);
	SSL_CTX_free(srv);
	tls_ctx_free(x);
}

/* The proxy's side t, an OpenSSL client cl of cc, on the socketpair fd:
 * all of it goes. */
static void pair_free(struct tls *t, SSL *cl, SSL_CTX *cc, int fd[2])
{
	ERR_clear_error();
	tls_free(t);
	SSL_free(cl);
	SSL_CTX_free(cc);
	if (fd[0] >= 0)
		close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
}

/* Pump the proxy's client side (reading) and an OpenSSL client through a
 * handshake: 1 done, 0 not yet, -1 failed (the proxy's reason in err). */
static int reneg_pump(struct tls *t, SSL *cl, char *err, size_t errlen)
{
	char buf[16];
	size_t n;
	int i, r;

	for (i = 0; i < 50; i++) {
		enum tls_res pr = tls_read(t, buf, sizeof(buf), &n);

		if (pr == TLS_ERROR || pr == TLS_EOF) {
			tls_error(t, err, errlen);
			return -1;
		}
		if (tls_flush(t) == TLS_ERROR)
			return -1;
		r = SSL_do_handshake(cl);
		if (r == 1 && !SSL_renegotiate_pending(cl))
			return 1;
		if (r != 1 && (r = SSL_get_error(cl, r)) != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE)
			return -1;
	}
	return 0;
}

/* 9: a TLS 1.2 client may renegotiate (openconnect's rekey), once per
 * TLS_RENEG_INTERVAL: the second at once is refused and fails the
 * connection with a reason. */
static void test_renegotiate(void)
{
	struct tls_ctx *x = ctx_new(false);
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	struct tls *t = NULL;
	SSL *cl = NULL;
	int fd[2] = { -1, -1 };
	char err[160] = "";
	uint64_t done = 9, refused = 9;
	int i, r = 0;

	CHECK(x && cc);
	if (!x || !cc || socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0 ||
	    fcntl(fd[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(fd[1], F_SETFL, O_NONBLOCK) < 0)
		goto out;
	SSL_CTX_set_max_proto_version(cc, TLS1_2_VERSION);
	if (!(t = tls_accept_new(x, fd[0])) || !(cl = SSL_new(cc)) || SSL_set_fd(cl, fd[1]) != 1)
		goto out;
	SSL_set_connect_state(cl);
	for (i = 0; i < 50 && r != 1; i++) {
		enum tls_res pr = tls_handshake(t);

		CHECK(pr != TLS_ERROR && pr != TLS_EOF);
		tls_flush(t);
		if (pr == TLS_OK && SSL_is_init_finished(cl))
			r = 1;
		else if (SSL_do_handshake(cl) == 1 && pr == TLS_OK)
			r = 1;
	}
	CHECK_INT(r, 1);
	CHECK_INT(tls_renegotiations(t), 0);
	CHECK(SSL_renegotiate(cl) == 1);
	CHECK_INT(reneg_pump(t, cl, err, sizeof(err)), 1);
	CHECK_INT(tls_renegotiations(t), 1);
	CHECK(!tls_reneg_refused(t));
	CHECK(SSL_renegotiate(cl) == 1);
	CHECK_INT(reneg_pump(t, cl, err, sizeof(err)), -1);
	CHECK(strstr(err, "renegotiation refused") != NULL);
	CHECK(tls_reneg_refused(t));
	CHECK_INT(tls_renegotiations(t), 1);
	tls_ctx_reneg_stats(x, &done, &refused);
	CHECK_INT(done, 1);
	CHECK_INT(refused, 1);
out:
	pair_free(t, cl, cc, fd);
	tls_ctx_free(x);
}

/* Pump the proxy's client side through its handshake with an OpenSSL
 * client: true when both are done. */
static bool accept_pump(struct tls *t, SSL *cl)
{
	bool pdone = false, cdone = false;
	int i, r;

	for (i = 0; i < 50 && !(pdone && cdone); i++) {
		if (!pdone) {
			enum tls_res pr = tls_handshake(t);

			if (pr == TLS_ERROR || pr == TLS_EOF || tls_flush(t) == TLS_ERROR)
				return false;
			pdone = pr == TLS_OK;
		}
		if (!cdone) {
			if ((r = SSL_do_handshake(cl)) == 1)
				cdone = true;
			else if ((r = SSL_get_error(cl, r)) != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE)
				return false;
		}
	}
	return pdone && cdone;
}

/* One client connection to the proxy's server side (x) from an OpenSSL
 * client of version ver, offering *sess when set; the session the client
 * holds after (its ticket read with the data) replaces *sess. 1 resumed,
 * 0 full handshake, -1 failed. */
static int client_conn(struct tls_ctx *x, int ver, SSL_SESSION **sess)
{
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	struct tls *t = NULL;
	SSL *cl = NULL;
	int fd[2] = { -1, -1 }, i, r, res = -1;
	char buf[8];
	size_t n;

	if (!cc || socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0 ||
	    fcntl(fd[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(fd[1], F_SETFL, O_NONBLOCK) < 0)
		goto out;
	SSL_CTX_set_min_proto_version(cc, ver);
	SSL_CTX_set_max_proto_version(cc, ver);
	if (!(t = tls_accept_new(x, fd[0])) || !(cl = SSL_new(cc)) || SSL_set_fd(cl, fd[1]) != 1 ||
	    (*sess && SSL_set_session(cl, *sess) != 1))
		goto out;
	SSL_set_connect_state(cl);
	/* Data after the handshake carries the TLS 1.3 ticket to the client. */
	if (!accept_pump(t, cl) || tls_write(t, "hi", 2, &n) != TLS_OK || tls_flush(t) != TLS_OK)
		goto out;
	for (i = 0, n = 0; i < 50 && n < 2; i++)
		if ((r = SSL_read(cl, buf + n, (int)(sizeof(buf) - n))) > 0)
			n += (size_t)r;
	if (n != 2 || (bool)tls_resumed(t) != (SSL_session_reused(cl) == 1))
		goto out;
	res = tls_resumed(t) ? 1 : 0;
	SSL_SESSION_free(*sess);
	*sess = SSL_get1_session(cl);
	/* Freed without a close_notify, OpenSSL would mark it not resumable. */
	SSL_set_shutdown(cl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
out:
	pair_free(t, cl, cc, fd);
	return res;
}

static int key_file(const char *path, const uint8_t *keys, size_t n)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(keys, 80, n, f) == n;
	return fclose(f) == 0 && ok && chmod(path, 0600) == 0 ? 0 : -1;
}

/* 13: client tickets. Two contexts (two gateways) with one ticket key file
 * resume each other's sessions, TLS 1.2 and 1.3; a context with a random
 * key of its own does not (a full handshake, not a failure). Rotation: a
 * new key prepended and reloaded still takes the old tickets and issues
 * new ones under the new key; a file that cannot be read keeps the keys in
 * force. */
static void test_client_tickets(void)
{
	static const int vers[2] = { TLS1_2_VERSION, TLS1_3_VERSION };
	uint8_t keys[2 * 80];
	char path[160], err[256] = "";
	size_t nk = 0;
	bool exposed = true;

	snprintf(path, sizeof(path), "%s/ticket.key", dir);
	for (size_t i = 0; i < sizeof(keys); i++)
		keys[i] = (uint8_t)(i * 13 + 5);
	CHECK(key_file(path, keys + 80, 1) == 0);	/* the old key */
	for (int v = 0; v < 2; v++) {
		struct tls_ctx *a = ctx_new(false), *b = ctx_new(false), *c = ctx_new(false);
		SSL_SESSION *s = NULL, *s2;

		CHECK(a && b && c);
		if (!a || !b || !c)
			goto next;
		CHECK_INT(tls_ctx_ticket_keys(a, path, &nk, &exposed, err, sizeof(err)), 0);
		CHECK_INT(nk, 1);
		CHECK(!exposed);
		CHECK_INT(tls_ctx_ticket_keys(b, path, &nk, &exposed, err, sizeof(err)), 0);
		CHECK_INT(client_conn(a, vers[v], &s), 0);
		CHECK_INT(client_conn(a, vers[v], &s), 1);	/* the same gateway */
		CHECK_INT(client_conn(b, vers[v], &s), 1);	/* its pair, after a failover */
		s2 = s;
		SSL_SESSION_up_ref(s2);
		CHECK_INT(client_conn(c, vers[v], &s2), 0);	/* a key of its own */
		SSL_SESSION_free(s2);
		/* Rotation on b: the new key first, the old one after. */
		CHECK(key_file(path, keys, 2) == 0);
		CHECK_INT(tls_ctx_ticket_keys(b, path, &nk, &exposed, err, sizeof(err)), 0);
		CHECK_INT(nk, 2);
		CHECK_INT(client_conn(b, vers[v], &s), 1);	/* an old ticket, taken... */
		/* ...and replaced by one under the new key, which a only knows once
		 * it has reloaded the rotated file too. */
		s2 = s;
		SSL_SESSION_up_ref(s2);
		CHECK_INT(client_conn(a, vers[v], &s2), 0);
		SSL_SESSION_free(s2);
		CHECK_INT(tls_ctx_ticket_keys(a, path, &nk, &exposed, err, sizeof(err)), 0);
		CHECK_INT(client_conn(a, vers[v], &s), 1);
		/* A short file is refused, naming it; the keys in force stay. */
		CHECK(key_file(path, keys, 1) == 0 && truncate(path, 79) == 0);
		CHECK_INT(tls_ctx_ticket_keys(a, path, &nk, &exposed, err, sizeof(err)), -1);
		CHECK(strstr(err, "ticket_key_file") && strstr(err, path) && strstr(err, "79 bytes"));
		CHECK_INT(client_conn(a, vers[v], &s), 1);
		/* A context made with the file (as the proxy's, at start) has its keys:
		 * a ticket of the new key resumes there at once. */
		CHECK(key_file(path, keys, 2) == 0);
		{
			struct tls_ctx *d = ctx_new_keys(false, path, NULL, 0);

			CHECK(d != NULL);
			if (d)
				CHECK_INT(client_conn(d, vers[v], &s), 1);
			tls_ctx_free(d);
		}
		/* Back to the old key alone for the next version. */
		CHECK(key_file(path, keys + 80, 1) == 0);
next:
		SSL_SESSION_free(s);
		tls_ctx_free(a);
		tls_ctx_free(b);
		tls_ctx_free(c);
	}
	/* A file that is not there fails the context, naming it. */
	{
		char why[256] = "";

		CHECK(ctx_new_keys(false, "/nonexistent/ticket.key", why, sizeof(why)) == NULL);
		CHECK(strstr(why, "ticket_key_file /nonexistent/ticket.key") != NULL);
	}
	unlink(path);
}

/* The proxy's handshake with headend srv; its leaf compared with ours. */
static int leaf_with(struct tls_ctx *x, SSL_CTX *srv, char *ours, char *theirs)
{
	struct sockaddr_storage a = v4("198.18.2.2", 443);
	struct tls *t = NULL;
	SSL *s = NULL;
	int fd[2] = { -1, -1 }, i, res = -2;
	bool pdone = false, sdone = false;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0 || fcntl(fd[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(fd[1], F_SETFL, O_NONBLOCK) < 0 || !(t = tls_connect_new(x, fd[0], SNI, &a)) ||
	    !(s = SSL_new(srv)) || SSL_set_fd(s, fd[1]) != 1)
		goto out;
	SSL_set_accept_state(s);
	for (i = 0; i < 50 && !(pdone && sdone); i++) {
		if (!pdone) {
			enum tls_res pr = tls_handshake(t);

			if (pr == TLS_ERROR || pr == TLS_EOF)
				goto out;
			tls_flush(t);
			pdone = pr == TLS_OK;
		}
		if (!sdone && SSL_do_handshake(s) == 1)
			sdone = true;
	}
	if (pdone)
		res = tls_leaf_compare(t, ours, theirs, TLS_FINGERPRINT_LEN);
out:
	ERR_clear_error();
	tls_free(t);
	SSL_free(s);
	if (fd[0] >= 0)
		close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
	return res;
}

/* 10: the certificate clients see against the headend's own leaf. */
static void test_leaf(void)
{
	struct tls_ctx *x = ctx_new(false);
	SSL_CTX *srv = headend_new(&head), *liar = headend_new(&other);
	char ours[TLS_FINGERPRINT_LEN], theirs[TLS_FINGERPRINT_LEN];
	struct conf c;
	char err[256];
	struct tls_ctx *insecure;

	conf_defaults(&c);
	snprintf(c.proxy.certificate, sizeof(c.proxy.certificate), "%s", crt_path);
	snprintf(c.proxy.private_key, sizeof(c.proxy.private_key), "%s", key_path);
	c.proxy.insecure_upstream = true;
	insecure = tls_ctx_new(&c, err, sizeof(err));
	CHECK(x && srv && liar && insecure);
	if (!x || !srv || !liar || !insecure)
		goto out;
	CHECK_INT(leaf_with(x, srv, ours, theirs), 0);
	CHECK_INT(strlen(ours), 95);
	CHECK_STR(ours, theirs);
	CHECK_INT(leaf_with(insecure, liar, ours, theirs), 1);
	CHECK(strcmp(ours, theirs) != 0 && strlen(theirs) == 95 && theirs[2] == ':');
out:
	SSL_CTX_free(srv);
	SSL_CTX_free(liar);
	tls_ctx_free(x);
	tls_ctx_free(insecure);
}

/* A headend that answers one TLS connection on 127.0.0.1. */
struct one_srv {
	SSL_CTX *ctx;
	int lfd;
};

static void *one_srv_main(void *arg)
{
	struct one_srv *o = arg;
	int fd = accept(o->lfd, NULL, NULL);
	SSL *s;

	if (fd < 0)
		return NULL;
	if ((s = SSL_new(o->ctx)) && SSL_set_fd(s, fd) == 1)
		SSL_accept(s);
	SSL_free(s);
	close(fd);
	return NULL;
}

static int fetch_from(SSL_CTX *srv, char *fp, char *err)
{
	struct sockaddr_storage a = v4("127.0.0.1", 0);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
	socklen_t al = sizeof(*a4);
	struct one_srv o = { .ctx = srv, .lfd = socket(AF_INET, SOCK_STREAM, 0) };
	pthread_t th;
	int r = -2;

	if (o.lfd < 0 || bind(o.lfd, (struct sockaddr *)a4, sizeof(*a4)) < 0 ||
	    getsockname(o.lfd, (struct sockaddr *)a4, &al) < 0 || listen(o.lfd, 1) < 0 ||
	    pthread_create(&th, NULL, one_srv_main, &o))
		goto out;
	r = tls_fetch_leaf(&a, SNI, 5, fp, TLS_FINGERPRINT_LEN, err, 160);
	pthread_join(th, NULL);
out:
	if (o.lfd >= 0)
		close(o.lfd);
	return r;
}

/* 11: the certificate fetched from the headend at start and reload. */
static void test_fetch_leaf(void)
{
	struct tls_ctx *x = ctx_new(false);
	SSL_CTX *srv = headend_new(&head), *liar = headend_new(&other);
	char ours[TLS_FINGERPRINT_LEN], fp[TLS_FINGERPRINT_LEN], err[160] = "";
	struct sockaddr_storage closed = v4("127.0.0.1", 1);

	CHECK(x && srv && liar);
	if (!x || !srv || !liar)
		goto out;
	tls_ctx_fingerprint(x, ours, sizeof(ours));
	CHECK_INT(strlen(ours), 95);
	CHECK_INT(fetch_from(srv, fp, err), 0);
	CHECK_STR(fp, ours);
	CHECK_INT(fetch_from(liar, fp, err), 0);
	CHECK(strlen(fp) == 95 && strcmp(fp, ours) != 0);
	CHECK_INT(tls_fetch_leaf(&closed, NULL, 2, fp, sizeof(fp), err, sizeof(err)), -1);
	CHECK(strstr(err, "connect: Connection refused") != NULL);
out:
	SSL_CTX_free(srv);
	SSL_CTX_free(liar);
	tls_ctx_free(x);
}

/* The heap in use, or 0 where mallinfo2() does not tell (sanitizers). */
static size_t heap_used(void)
{
	return mallinfo2().uordblks;
}

#define BIG (200 * 1024)

/* 14: what idle tunnels give back does not cost a byte. Between every read
 * and write tls_idle() frees the record buffers (they come back for the
 * next record); one BIO reads and writes the socket. Full 16 KiB records
 * and writes far past TLS_OUT_FLUSH (backpressure: TLS_WANT_WRITE) come
 * through whole both ways, TLS 1.2 and 1.3; idle, the proxy's side holds
 * at least a record buffer less; the peer's close, with close_notify or
 * without (SSL_OP_IGNORE_UNEXPECTED_EOF), is TLS_EOF. */
static void test_idle_records(int ver, bool notify)
{
	struct tls_ctx *x = ctx_new(false);
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	struct tls *t = NULL;
	SSL *cl = NULL;
	int fd[2] = { -1, -1 }, i, r;
	uint8_t *src = malloc(BIG), *dst = malloc(BIG);
	size_t in = 0, out = 0, n, busy, idle;
	enum tls_res res = TLS_OK;

	CHECK(x && cc && src && dst);
	if (!x || !cc || !src || !dst || socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0 ||
	    fcntl(fd[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(fd[1], F_SETFL, O_NONBLOCK) < 0)
		goto out;
	for (i = 0; i < BIG; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	SSL_CTX_set_min_proto_version(cc, ver);
	SSL_CTX_set_max_proto_version(cc, ver);
	SSL_CTX_set_mode(cc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!(t = tls_accept_new(x, fd[0])) || !(cl = SSL_new(cc)) || SSL_set_fd(cl, fd[1]) != 1)
		goto out;
	SSL_set_connect_state(cl);
	CHECK(accept_pump(t, cl));
	/* Client -> proxy: whole 16 KiB records. */
	for (i = 0; i < 2000 && out < BIG; i++) {
		if (in < BIG && (r = SSL_write(cl, src + in, BIG - in > 16384 ? 16384 : (int)(BIG - in))) > 0)
			in += (size_t)r;
		while ((res = tls_read(t, dst + out, BIG - out, &n)) == TLS_OK)
			out += n;
		tls_idle(t);
		if (res != TLS_WANT_READ)
			break;
	}
	CHECK_INT(out, BIG);
	CHECK(memcmp(src, dst, BIG) == 0);
	/* Proxy -> client: one write of it all, taken as the socket drains. */
	memset(dst, 0, BIG);
	for (i = 0, in = out = 0; i < 5000 && out < BIG; i++) {
		if (in < BIG) {
			res = tls_write(t, src + in, BIG - in, &n);
			CHECK(res == TLS_OK || res == TLS_WANT_WRITE);
			in += n;
		}
		if (tls_flush(t) == TLS_ERROR)
			break;
		tls_idle(t);
		while ((r = SSL_read(cl, dst + out, (int)(BIG - out))) > 0)
			out += (size_t)r;
	}
	CHECK_INT(out, BIG);
	CHECK(memcmp(src, dst, BIG) == 0);
	CHECK_INT(tls_pending(t), 0);
	/* A record half read keeps its buffer; whole ones read, it goes. */
	CHECK(SSL_write(cl, src, 16384) == 16384);
	CHECK(tls_read(t, dst, 100, &n) == TLS_OK && n == 100);
	busy = heap_used();
	tls_idle(t);
	CHECK(heap_used() == busy || !busy);
	CHECK(tls_read(t, dst + 100, BIG, &n) == TLS_OK && n == 16284);
	CHECK(memcmp(src, dst, 16384) == 0);
	CHECK(tls_read(t, dst, BIG, &n) == TLS_WANT_READ);
	busy = heap_used();
	tls_idle(t);
	idle = heap_used();
	CHECK(!busy || busy >= idle + 16384);
	/* The peer goes. */
	if (notify)
		SSL_shutdown(cl);
	close(fd[1]);
	fd[1] = -1;
	for (i = 0; i < 10 && (res = tls_read(t, dst, BIG, &n)) == TLS_WANT_READ; i++)
		;
	CHECK_INT(res, TLS_EOF);
out:
	pair_free(t, cl, cc, fd);
	tls_ctx_free(x);
	free(src);
	free(dst);
}

int main(void)
{
	/* As the daemon: a peer gone mid-write is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(crt_path, sizeof(crt_path), "%s/headend.crt", dir);
	snprintf(key_path, sizeof(key_path), "%s/headend.key", dir);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	/* Both certificates are trusted: the wrong one fails on its name. */
	CHECK(ident_make(&head, NAME) == 0);
	CHECK(ident_make(&other, "other.test") == 0);
	CHECK(write_pem(crt_path, 0644, head.cert, NULL, NULL) == 0);
	CHECK(write_pem(key_path, 0600, NULL, NULL, head.key) == 0);
	CHECK(write_pem(ca_path, 0644, head.cert, other.cert, NULL) == 0);

	test_same_peer();
	test_other_peers();
	test_slots();
	test_at_once();
	test_refused();
	test_choke();
	test_resume_off();
	test_wrong_name();
	test_ipv6();
	test_tls12();
	test_renegotiate();
	test_leaf();
	test_fetch_leaf();
	test_client_tickets();
	test_idle_records(TLS1_3_VERSION, true);
	test_idle_records(TLS1_3_VERSION, false);
	test_idle_records(TLS1_2_VERSION, false);

	unlink(crt_path);
	unlink(key_path);
	unlink(ca_path);
	rmdir(dir);
	ident_free(&head);
	ident_free(&other);
	return t_done("test_tls");
}
