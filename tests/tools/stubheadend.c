/* A stub headend for the proxy benchmarks (bench-proxy.sh): a TLS server
 * that answers the authentication POST and the CONNECT as ocserv does
 * (`HTTP/1.1 200 CONNECTED`, X-CSTP-* headers, and a legacy X-DTLS-* offer
 * when the request asked for DTLS), then sinks CSTP records, answering
 * DPD-REQ with DPD-RESP and closing on DISCONNECT. A CONNECT carrying
 * `X-Bench-Source: SECONDS SIZE` gets DATA records of SIZE bytes for
 * SECONDS, then one DPD-REQ marking the end. One thread, epoll, nothing
 * blocks, and an idle tunnel keeps only its SSL object and a small struct.
 *   stubheadend CERT KEY ADDR:PORT...     prints "listening" once bound */
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tests/tools/tlsbench.h"

#define MAX_LISTEN 8
#define CAPTURE_CAP 8192	/* one request head and body, for the headers we read */
#define SOURCE_BURST 256	/* records per wake-up, then the others get a turn */
#define SOURCE_MAX 16384	/* payload size cap for sourced records */

enum sstate { S_HANDSHAKE, S_HTTP, S_TUNNEL, S_SOURCE };

struct sconn {
	int fd;
	SSL *ssl;
	enum sstate st;
	uint32_t events;
	struct http_framer *req;	/* HTTP phase only */
	struct http_capture cap;
	uint8_t *out;			/* a reply SSL_write must retry as it was */
	size_t outlen;
	struct tlsbench_scan scan;
	uint64_t dpd_answered;
	double source_until;
	size_t source_len;		/* whole record length, 0: not sourcing */
	bool source_marked;		/* the closing DPD-REQ went out */
	unsigned id;
};

struct stub {
	SSL_CTX *ctx;
	int ep;
	int lfd[MAX_LISTEN];
	int nl;
	unsigned next_id;
	uint8_t rbuf[65536];
	uint8_t src[CSTP_HDR_LEN + SOURCE_MAX];
	size_t src_size;	/* payload size src holds, 0: none yet */
};

static void sconn_free(struct stub *s, struct sconn *c)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	/* An orderly end for the peer; this is a stub, so no waiting for its close_notify. */
	if (c->ssl && SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	close(c->fd);
	free(c->req);
	free(c->cap.buf);
	free(c->out);
	free(c);
}

static void sconn_want(struct stub *s, struct sconn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (ev != c->events && epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

/* Queue a reply; false if the connection failed. */
static bool sconn_send(struct sconn *c, const void *p, size_t n)
{
	uint8_t *b;
	int r;

	if (c->out) {
		/* Replies queue behind one still pending (rare: DPD answers). */
		if (!(b = realloc(c->out, c->outlen + n)))
			return false;
		memcpy(b + c->outlen, p, n);
		c->out = b;
		c->outlen += n;
		return true;
	}
	r = SSL_write(c->ssl, p, (int)n);
	if (r > 0)
		return true;
	r = SSL_get_error(c->ssl, r);
	if (r != SSL_ERROR_WANT_WRITE && r != SSL_ERROR_WANT_READ)
		return false;
	if (!(c->out = malloc(n)))
		return false;
	memcpy(c->out, p, n);
	c->outlen = n;
	return true;
}

/* Retry the pending reply: 1 done, 0 still pending, -1 failed. */
static int sconn_flush(struct sconn *c)
{
	int r;

	if (!c->out)
		return 1;
	r = SSL_write(c->ssl, c->out, (int)c->outlen);
	if (r > 0) {
		free(c->out);
		c->out = NULL;
		c->outlen = 0;
		return 1;
	}
	r = SSL_get_error(c->ssl, r);
	return r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ ? 0 : -1;
}

static bool stub_auth_reply(struct sconn *c)
{
	static const char body[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<config-auth client=\"vpn\" type=\"complete\" aggregate-auth-version=\"2\">\n"
		"<auth id=\"success\"><banner>stub headend</banner></auth>\n"
		"<config client=\"vpn\" type=\"private\"><vpn-base-config></vpn-base-config>"
		"</config>\n</config-auth>\n";
	char msg[1024];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 200 OK\r\nServer: stubheadend\r\nConnection: Keep-Alive\r\n"
			 "Content-Type: text/xml\r\nContent-Length: %zu\r\nX-Transcend-Version: 1\r\n"
			 "Set-Cookie: webvpncontext=; expires=Thu, 01 Jan 1970 22:00:00 GMT; path=/; Secure\r\n"
			 "Set-Cookie: webvpn=stub%08x; Secure\r\n\r\n%s",
			 sizeof(body) - 1, c->id, body);

	return sconn_send(c, msg, (size_t)n);
}

/* ocserv's answer, legacy DTLS (as an ASA): the MTUs differ, so the proxy has
 * something to equalise. */
static bool stub_connect_reply(struct stub *s, struct sconn *c)
{
	char msg[2048], v[128];
	unsigned a = c->id % 60 + 2;
	int n;
	bool dtls = tlsbench_header(&c->cap, "x-dtls-master-secret", v, sizeof(v)) ||
		    tlsbench_header(&c->cap, "x-dtls12-ciphersuite", v, sizeof(v));

	if (!tlsbench_header(&c->cap, "cookie", v, sizeof(v)) || !strstr(v, "webvpn=stub")) {
		n = snprintf(msg, sizeof(msg), "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
		return sconn_send(c, msg, (size_t)n);
	}
	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 200 CONNECTED\r\nServer: stubheadend\r\nX-CSTP-Version: 1\r\n"
		     "X-CSTP-Server-Name: stubheadend\r\nX-CSTP-DPD: 90\r\n"
		     "X-CSTP-Address: 192.0.2.%u\r\nX-CSTP-Netmask: 255.255.255.192\r\n"
		     "X-CSTP-Split-Include: 198.18.3.0/255.255.255.0\r\nX-CSTP-Keepalive: 32\r\n"
		     "X-CSTP-Idle-Timeout: none\r\nX-CSTP-Rekey-Time: 172800\r\n"
		     "X-CSTP-Rekey-Method: ssl\r\nX-CSTP-Session-Timeout: none\r\n"
		     "X-CSTP-Disconnected-Timeout: none\r\nX-CSTP-Keep: true\r\n"
		     "X-CSTP-TCP-Keepalive: false\r\nX-CSTP-License: accept\r\n"
		     "X-CSTP-Base-MTU: 1500\r\nX-CSTP-MTU: 1380\r\n", a);
	if (dtls)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n,
			      "X-DTLS-Session-ID: %064x\r\nX-DTLS-Port: 443\r\nX-DTLS-Keepalive: 32\r\n"
			      "X-DTLS-DPD: 90\r\nX-DTLS-Rekey-Time: 172800\r\nX-DTLS-Rekey-Method: ssl\r\n"
			      "X-DTLS12-CipherSuite: ECDHE-RSA-AES256-GCM-SHA384\r\nX-DTLS-MTU: 1418\r\n",
			      c->id);
	n += snprintf(msg + n, sizeof(msg) - (size_t)n, "\r\n");
	if (!sconn_send(c, msg, (size_t)n))
		return false;
	if (tlsbench_header(&c->cap, "x-bench-source", v, sizeof(v))) {
		double secs = 0;
		unsigned size = 1400;

		sscanf(v, "%lf %u", &secs, &size);
		if (size > SOURCE_MAX)
			size = SOURCE_MAX;
		if (size != s->src_size) {
			tlsbench_data_record(s->src, size);
			s->src_size = size;
		}
		c->source_len = CSTP_HDR_LEN + (size < 28 ? 28 : size);
		c->source_until = tlsbench_now() + secs;
		c->st = S_SOURCE;
	}
	return true;
}

/* The tunnel phase: count records, answer DPD, end on DISCONNECT. */
static bool stub_tunnel(struct sconn *c, const uint8_t *p, size_t n)
{
	uint8_t rec[CSTP_HDR_LEN];

	tlsbench_scan_feed(&c->scan, p, n);
	if (c->scan.bad)
		return false;
	while (c->dpd_answered < c->scan.records[CSTP_DPD_REQ]) {
		c->dpd_answered++;
		cstp_write_header(rec, CSTP_DPD_RESP, 0);
		if (!sconn_send(c, rec, sizeof(rec)))
			return false;
	}
	return c->scan.records[CSTP_DISCONNECT] == 0;
}

/* HTTP until the CONNECT is answered; what follows it is tunnel data. */
static bool stub_http(struct stub *s, struct sconn *c, const uint8_t *p, size_t n)
{
	while (n && c->st == S_HTTP) {
		size_t used = 0;
		enum http_res r = http_feed(c->req, p, n, &used);

		p += used;
		n -= used;
		if (r == HTTP_MORE)
			return true;
		if (r != HTTP_DONE)
			return false;
		if (c->req->connect) {
			c->st = S_TUNNEL;
			if (!stub_connect_reply(s, c))
				return false;
			free(c->req);
			free(c->cap.buf);
			c->req = NULL;
			c->cap = (struct http_capture){ 0 };
		} else {
			if (!stub_auth_reply(c))
				return false;
			http_framer_init(c->req, HTTP_REQUEST, &c->cap);
		}
	}
	return c->st == S_HTTP || stub_tunnel(c, p, n);
}

/* Source DATA records: false when the connection failed. */
static bool stub_source(struct stub *s, struct sconn *c)
{
	uint8_t rec[CSTP_HDR_LEN];
	int i, r;

	for (i = 0; i < SOURCE_BURST && !c->out; i++) {
		if (!(i & 15) && tlsbench_now() >= c->source_until) {
			cstp_write_header(rec, CSTP_DPD_REQ, 0);
			c->st = S_TUNNEL;
			return sconn_send(c, rec, sizeof(rec));
		}
		r = SSL_write(c->ssl, s->src, (int)c->source_len);
		if (r <= 0) {
			r = SSL_get_error(c->ssl, r);
			/* Retried from the same (shared) record on EPOLLOUT. */
			if (r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ)
				return sconn_send(c, s->src, c->source_len);
			return false;
		}
	}
	return true;
}

/* Everything that can move now; false: close the connection. */
static bool stub_run(struct stub *s, struct sconn *c)
{
	int r;

	if (c->st == S_HANDSHAKE) {
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			r = SSL_get_error(c->ssl, r);
			if (r == SSL_ERROR_WANT_READ)
				sconn_want(s, c, EPOLLIN);
			else if (r == SSL_ERROR_WANT_WRITE)
				sconn_want(s, c, EPOLLOUT);
			return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE;
		}
		c->st = S_HTTP;
		if (!(c->req = malloc(sizeof(*c->req))) || !(c->cap.buf = malloc(CAPTURE_CAP)))
			return false;
		c->cap.cap = CAPTURE_CAP;
		http_framer_init(c->req, HTTP_REQUEST, &c->cap);
	}
	if ((r = sconn_flush(c)) < 0)
		return false;
	if (r == 1 && c->st == S_SOURCE && !stub_source(s, c))
		return false;
	for (;;) {
		int n = SSL_read(c->ssl, s->rbuf, sizeof(s->rbuf));

		if (n <= 0) {
			r = SSL_get_error(c->ssl, n);
			if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE)
				return false;	/* EOF, reset or a TLS error: the peer is gone */
			break;
		}
		if (c->st == S_HTTP ? !stub_http(s, c, s->rbuf, (size_t)n) :
		    !stub_tunnel(c, s->rbuf, (size_t)n))
			return false;
	}
	if (sconn_flush(c) < 0)
		return false;
	sconn_want(s, c, EPOLLIN | (c->out || c->st == S_SOURCE ? EPOLLOUT : 0));
	return true;
}

static void stub_accept(struct stub *s, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct sconn *c;
		struct epoll_event e;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				perror("stubheadend: accept");
			return;
		}
		/* As headends do: a reply must not wait for the client's delayed ACK. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!(c = calloc(1, sizeof(*c))) || !(c->ssl = SSL_new(s->ctx))) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->id = ++s->next_id;
		SSL_set_fd(c->ssl, fd);
		SSL_set_accept_state(c->ssl);
		c->events = EPOLLIN;
		e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			SSL_free(c->ssl);
			close(fd);
			free(c);
		}
	}
}

static int stub_listen(struct stub *s, const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;
	struct epoll_event e = { .events = EPOLLIN };

	if (s->nl == MAX_LISTEN || !tlsbench_addr_parse(spec, &ss, &sl)) {
		fprintf(stderr, "stubheadend: bad listen address %s\n", spec);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
		perror(spec);
		return -1;
	}
	/* Listeners are told apart from connections by a small integer. */
	e.data.u64 = (uint64_t)s->nl;
	s->lfd[s->nl++] = fd;
	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e);
}

int main(int argc, char **argv)
{
	static struct stub s;
	struct epoll_event ev[256];

	if (argc < 4) {
		fprintf(stderr, "usage: stubheadend CERT KEY ADDR:PORT...\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!(s.ctx = tlsbench_ctx(true)) ||
	    SSL_CTX_use_certificate_chain_file(s.ctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s.ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	if ((s.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return 1;
	for (int i = 3; i < argc; i++)
		if (stub_listen(&s, argv[i]) < 0)
			return 1;
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(s.ep, ev, 256, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct sconn *c;

			if (ev[i].data.u64 < MAX_LISTEN) {
				stub_accept(&s, s.lfd[ev[i].data.u64]);
				continue;
			}
			c = ev[i].data.ptr;
			ERR_clear_error();
			if (!stub_run(&s, c))
				sconn_free(&s, c);
		}
	}
}
