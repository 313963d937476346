/* Load client for the proxy benchmarks (bench-proxy.sh). Each tunnel: TCP
 * connect, a full TLS handshake (no resumption), the authentication POST
 * with <group-select>, the CONNECT with the cookie it got and a legacy DTLS
 * request as openconnect sends it; then:
 *   cstpload [-s SRC,...] [-g GROUP] DST:PORT up SECONDS [SIZE]
 *       one tunnel, DATA records of SIZE (1400) bytes toward the headend
 *       for SECONDS, then a DPD-REQ; stops the clock at its DPD-RESP.
 *   ... down SECONDS [SIZE]   the headend sends (X-Bench-Source), ended by a DPD-REQ.
 *       Both print "bulk dir=D bytes=N seconds=S mbit=R cstp_mtu=M dtls_mtu=M".
 *   ... handshake SECONDS [CONCURRENCY]   new tunnels back to back, each
 *       ended by DISCONNECT; prints "handshake done=N failed=F seconds=S rate=R".
 *   ... resume SECONDS [CONCURRENCY]   the same, each TLS handshake resuming
 *       the session of an earlier tunnel (the first ones are full), as a
 *       client reconnecting does; the line adds "resumed=N".
 *   ... idle N [CONCURRENCY]   open N tunnels and hold them; after the
 *       first min(10, N) and again after all, print a line and wait for
 *       SIGUSR1 ("warm ...", "up ... rss_per_conn_kib=X seconds=S", S the
 *       time to open all N); then each SIGUSR1 sends a DPD-REQ on every tunnel and prints "dpd ok=N failed=F". SIGTERM ends it.
 * -s binds the tunnels' source addresses in turn; -g names the group. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "proxy/http.h"
#include "tests/tools/tlsbench.h"

#define MAX_SRC 16
#define CAPTURE_CAP 4096	/* a response head: cookie and MTUs are read from it */
#define WARM 10
#define DPD_WAIT 30.0		/* seconds for every DPD-RESP of a round */

enum lstate { L_CONNECT, L_HANDSHAKE, L_AUTH, L_CONNECT_REQ, L_TUNNEL, L_CLOSING, L_DEAD };

struct lconn {
	int fd;
	SSL *ssl;
	enum lstate st;
	uint32_t events;
	char *out;		/* the request being written, retried as it was */
	size_t outlen;
	struct http_framer *resp;	/* HTTP phase only */
	struct http_capture cap;
	struct tlsbench_scan scan;
	uint64_t dpd_sent;
	bool dpd_pending;	/* a DPD-REQ waits for the socket */
};

struct load {
	SSL_CTX *ctx;
	int ep;
	struct sockaddr_storage dst, src[MAX_SRC];
	socklen_t dstlen, srclen[MAX_SRC];
	int nsrc, nextsrc;
	const char *group, *mode;
	char host[64];
	char source_hdr[64];	/* X-Bench-Source for "down", else "" */
	unsigned mtu_cstp, mtu_dtls;	/* what the first tunnel was sent */
	double t_up;			/* when the last tunnel came up */
	struct lconn **conns;
	size_t nconns, cap_conns;
	size_t inflight, up, failed, done, resumed;
	SSL_SESSION *sess;		/* resume mode: the session new tunnels offer */
	uint8_t rbuf[65536];
};

static volatile sig_atomic_t got_usr1, got_term;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

static void lconn_want(struct load *l, struct lconn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (ev != c->events && epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static void lconn_release(struct load *l, struct lconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	/* Freed without close_notify, OpenSSL would mark the session not
	 * resumable, the one resume mode offers included. */
	if (c->ssl)
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(c->ssl);
	free(c->out);
	free(c->resp);
	free(c->cap.buf);
	*c = (struct lconn){ .fd = -1, .st = L_DEAD };
}

/* A tunnel failed before it was up, or was lost. */
static void lconn_fail(struct load *l, struct lconn *c, const char *why)
{
	static unsigned shown;

	if (c->st != L_TUNNEL && c->st != L_CLOSING)
		l->inflight--;
	else if (c->st == L_TUNNEL)
		l->up--;
	if (shown++ < 5)
		fprintf(stderr, "cstpload: tunnel failed: %s\n", why);
	l->failed++;
	lconn_release(l, c);
}

static struct lconn *lconn_start(struct load *l)
{
	struct lconn *c = calloc(1, sizeof(*c));
	struct epoll_event e;
	int one = 1;

	if (!c)
		return NULL;
	c->fd = socket(l->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		goto err;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->nsrc) {
		int i = l->nextsrc++ % l->nsrc;

		if (bind(c->fd, (struct sockaddr *)&l->src[i], l->srclen[i]) < 0)
			goto err;
	}
	if (connect(c->fd, (struct sockaddr *)&l->dst, l->dstlen) < 0 && errno != EINPROGRESS)
		goto err;
	if (!(c->ssl = SSL_new(l->ctx)) || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (l->sess && SSL_set_session(c->ssl, l->sess) != 1))
		goto err;
	SSL_set_connect_state(c->ssl);
	c->st = L_CONNECT;
	c->events = EPOLLOUT;
	e = (struct epoll_event){ .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
		goto err;
	l->inflight++;
	return c;
err:
	fprintf(stderr, "cstpload: new tunnel: %s\n", strerror(errno));
	if (c->fd >= 0)
		close(c->fd);
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

static bool lconn_request(struct lconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool lconn_request(struct lconn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&c->out, fmt, ap);
	va_end(ap);
	if (n < 0) {
		c->out = NULL;
		return false;
	}
	c->outlen = (size_t)n;
	return true;
}

/* openconnect's first POST, with the group chosen up front. */
static bool lconn_auth(struct load *l, struct lconn *c)
{
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			 "<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\">"
			 "<version who=\"vpn\">v9.01</version><device-id>linux-64</device-id>"
			 "<group-select>%s</group-select><group-access>https://%s/</group-access>"
			 "</config-auth>", l->group, l->host);

	return lconn_request(c, "POST / HTTP/1.1\r\nHost: %s\r\n"
			     "User-Agent: AnyConnect-compatible OpenConnect VPN Agent v9.01\r\n"
			     "Accept: */*\r\nAccept-Encoding: identity\r\nX-Transcend-Version: 1\r\n"
			     "X-Aggregate-Auth: 1\r\nX-Support-HTTP-Auth: true\r\n"
			     "Content-Type: application/x-www-form-urlencoded\r\n"
			     "Content-Length: %d\r\n\r\n%s", l->host, n, body);
}

static bool lconn_connect_req(struct load *l, struct lconn *c)
{
	char cookie[128];

	/* Two Set-Cookie headers come, the session's is the last: search the head. */
	const char *p = memmem(c->cap.buf, c->cap.head_len, "Set-Cookie: webvpn=", 19);

	if (!p)
		return false;
	p += 12;
	snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(p, ";\r\n"), p);
	return lconn_request(c, "CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nHost: %s\r\n"
			     "User-Agent: AnyConnect-compatible OpenConnect VPN Agent v9.01\r\n"
			     "Cookie: %s\r\nX-CSTP-Version: 1\r\nX-CSTP-Hostname: cstpload\r\n"
			     "X-CSTP-Accept-Encoding: oc-lz4,lzs\r\nX-CSTP-Base-MTU: 1500\r\n"
			     "X-CSTP-MTU: 1406\r\nX-CSTP-Address-Type: IPv6,IPv4\r\n"
			     "X-CSTP-Full-IPv6-Capability: true\r\n"
			     "X-DTLS-Master-Secret: %096x\r\n"
			     "X-DTLS-CipherSuite: AES256-SHA:AES128-SHA:DES-CBC3-SHA\r\n"
			     "X-DTLS12-CipherSuite: ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256\r\n"
			     "X-DTLS-Accept-Encoding: oc-lz4,lzs\r\n%s\r\n",
			     l->host, cookie, 0x5a5a, l->source_hdr);
}

static bool lconn_http_start(struct lconn *c, enum http_kind kind)
{
	if (!c->resp && !(c->resp = malloc(sizeof(*c->resp))))
		return false;
	if (!c->cap.buf && !(c->cap.buf = malloc(CAPTURE_CAP)))
		return false;
	c->cap.cap = CAPTURE_CAP;
	http_framer_init(c->resp, kind, &c->cap);
	return true;
}

/* Write the pending request or DPD: 1 done, 0 blocked, -1 failed. */
static int lconn_flush(struct lconn *c)
{
	int r;

	if (c->out) {
		r = SSL_write(c->ssl, c->out, (int)c->outlen);
		if (r <= 0) {
			r = SSL_get_error(c->ssl, r);
			return r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		free(c->out);
		c->out = NULL;
	}
	if (c->dpd_pending) {
		static uint8_t dpd[CSTP_HDR_LEN];

		cstp_write_header(dpd, CSTP_DPD_REQ, 0);
		r = SSL_write(c->ssl, dpd, sizeof(dpd));
		if (r <= 0) {
			r = SSL_get_error(c->ssl, r);
			return r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		c->dpd_pending = false;
		c->dpd_sent++;
	}
	return 1;
}

/* The tunnel is up (the CONNECT answer was 200). */
static void lconn_tunnel_up(struct load *l, struct lconn *c)
{
	char v[32];

	l->inflight--;
	l->up++;
	l->t_up = tlsbench_now();
	if (!l->mtu_cstp) {
		l->mtu_cstp = tlsbench_header(&c->cap, "x-cstp-mtu", v, sizeof(v)) ? (unsigned)atoi(v) : 0;
		l->mtu_dtls = tlsbench_header(&c->cap, "x-dtls-mtu", v, sizeof(v)) ? (unsigned)atoi(v) : 0;
	}
	free(c->resp);
	free(c->cap.buf);
	c->resp = NULL;
	c->cap = (struct http_capture){ 0 };
	c->st = L_TUNNEL;
	if (!strcmp(l->mode, "handshake") || !strcmp(l->mode, "resume")) {
		/* Counted; the headend closes on DISCONNECT, so no TIME_WAIT here. */
		uint8_t rec[CSTP_HDR_LEN];

		if (SSL_session_reused(c->ssl) == 1)
			l->resumed++;
		else if (!strcmp(l->mode, "resume")) {
			/* A full handshake: its session (with the ticket that came
			 * before the CONNECT's answer) is the one to offer next. */
			SSL_SESSION_free(l->sess);
			l->sess = SSL_get1_session(c->ssl);
		}
		l->done++;
		l->up--;
		cstp_write_header(rec, CSTP_DISCONNECT, 0);
		c->st = L_CLOSING;
		if (SSL_write(c->ssl, rec, sizeof(rec)) <= 0)
			lconn_release(l, c);
	}
}

/* HTTP bytes from the headend (or the proxy): false on failure. */
static bool lconn_http(struct load *l, struct lconn *c, const uint8_t *p, size_t n)
{
	while (n && (c->st == L_AUTH || c->st == L_CONNECT_REQ)) {
		size_t used = 0;
		enum http_res r = http_feed(c->resp, p, n, &used);

		p += used;
		n -= used;
		if (r == HTTP_MORE)
			return true;
		if (r != HTTP_DONE || c->resp->status != 200)
			return false;
		if (c->st == L_AUTH) {
			if (!lconn_connect_req(l, c) || !lconn_http_start(c, HTTP_RESPONSE_CONNECT))
				return false;
			c->st = L_CONNECT_REQ;
			if (lconn_flush(c) < 0)
				return false;
		} else {
			lconn_tunnel_up(l, c);
		}
	}
	if (n && c->st == L_TUNNEL)
		tlsbench_scan_feed(&c->scan, p, n);
	return !c->scan.bad;
}

/* Everything that can move now for c. */
static void lconn_run(struct load *l, struct lconn *c)
{
	int r;

	if (c->st == L_CONNECT) {
		int e = 0;
		socklen_t el = sizeof(e);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
			lconn_fail(l, c, e ? strerror(e) : "connect");
			return;
		}
		c->st = L_HANDSHAKE;
	}
	if (c->st == L_HANDSHAKE) {
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			r = SSL_get_error(c->ssl, r);
			if (r == SSL_ERROR_WANT_READ)
				lconn_want(l, c, EPOLLIN);
			else if (r == SSL_ERROR_WANT_WRITE)
				lconn_want(l, c, EPOLLOUT);
			else
				lconn_fail(l, c, "TLS handshake");
			return;
		}
		if (!lconn_auth(l, c) || !lconn_http_start(c, HTTP_RESPONSE)) {
			lconn_fail(l, c, "out of memory");
			return;
		}
		c->st = L_AUTH;
	}
	if (lconn_flush(c) < 0) {
		lconn_fail(l, c, "TLS write");
		return;
	}
	for (;;) {
		int n = SSL_read(c->ssl, l->rbuf, sizeof(l->rbuf));

		if (n <= 0) {
			r = SSL_get_error(c->ssl, n);
			if (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE)
				break;
			if (c->st == L_CLOSING)
				lconn_release(l, c);	/* the headend's close after DISCONNECT */
			else
				lconn_fail(l, c, r == SSL_ERROR_ZERO_RETURN || r == SSL_ERROR_SYSCALL ?
					   "closed by the peer" : "TLS read");
			return;
		}
		if (c->st != L_CLOSING && !lconn_http(l, c, l->rbuf, (size_t)n)) {
			lconn_fail(l, c, "bad HTTP answer or CSTP stream");
			return;
		}
		if (c->st == L_DEAD)
			return;
	}
	lconn_want(l, c, EPOLLIN | (c->out || c->dpd_pending ? EPOLLOUT : 0));
}

static void load_dispatch(struct load *l, int timeout_ms)
{
	struct epoll_event ev[256];
	sigset_t none;
	int n;

	/* Signals are blocked but here and in load_pause(): no flag is missed. */
	sigemptyset(&none);
	n = epoll_pwait(l->ep, ev, 256, timeout_ms, &none);

	for (int i = 0; i < n; i++) {
		struct lconn *c = ev[i].data.ptr;

		ERR_clear_error();
		if (c->st != L_DEAD)
			lconn_run(l, c);
	}
}

static bool load_add(struct load *l)
{
	struct lconn *c;

	if (l->nconns == l->cap_conns) {
		size_t nc = l->cap_conns ? l->cap_conns * 2 : 64;
		struct lconn **p = realloc(l->conns, nc * sizeof(*p));

		if (!p)
			return false;
		l->conns = p;
		l->cap_conns = nc;
	}
	if (!(c = lconn_start(l)))
		return false;
	l->conns[l->nconns++] = c;
	return true;
}

/* Drop finished connections from the table (handshake mode recycles). */
static void load_compact(struct load *l)
{
	size_t j = 0;

	for (size_t i = 0; i < l->nconns; i++) {
		if (l->conns[i]->st == L_DEAD)
			free(l->conns[i]);
		else
			l->conns[j++] = l->conns[i];
	}
	l->nconns = j;
}

/* Open tunnels until total have been tried, conc at a time; true if all are up. */
static bool load_open(struct load *l, size_t total, size_t conc)
{
	size_t started = l->nconns;

	while ((started < total || l->inflight) && !got_term) {
		while (started < total && l->inflight < conc) {
			started++;
			if (!load_add(l))
				l->failed++;
		}
		load_dispatch(l, 100);
	}
	return l->up == total;
}

static void load_pause(void)
{
	sigset_t none;

	sigemptyset(&none);
	while (!got_usr1 && !got_term)
		sigsuspend(&none);
	got_usr1 = 0;
}

/* SIGUSR1: a DPD-REQ on every tunnel; all answers within DPD_WAIT. */
static void load_dpd_round(struct load *l)
{
	size_t ok = 0, failed = 0;
	double deadline = tlsbench_now() + DPD_WAIT;
	bool all;

	for (size_t i = 0; i < l->nconns; i++) {
		struct lconn *c = l->conns[i];

		if (c->st != L_TUNNEL)
			continue;
		c->dpd_pending = true;
		lconn_run(l, c);
	}
	do {
		all = true;
		for (size_t i = 0; i < l->nconns && all; i++) {
			struct lconn *c = l->conns[i];

			all = c->st != L_TUNNEL || c->scan.records[CSTP_DPD_RESP] >= c->dpd_sent + c->dpd_pending;
		}
		if (!all)
			load_dispatch(l, 100);
	} while (!all && tlsbench_now() < deadline && !got_term);
	for (size_t i = 0; i < l->nconns; i++) {
		struct lconn *c = l->conns[i];

		if (c->st == L_TUNNEL && !c->dpd_pending && c->scan.records[CSTP_DPD_RESP] >= c->dpd_sent)
			ok++;
		else
			failed++;
	}
	printf("dpd ok=%zu failed=%zu\n", ok, failed);
	fflush(stdout);
}

static int mode_idle(struct load *l, size_t n, size_t conc)
{
	size_t warm = n < WARM ? n : WARM;
	long rss0, rss1;
	double t0 = tlsbench_now(), secs;

	load_open(l, warm, conc);
	secs = tlsbench_now() - t0;
	rss0 = tlsbench_rss_kib();
	printf("warm up=%zu failed=%zu rss_kib=%ld\n", l->up, l->failed, rss0);
	fflush(stdout);
	load_pause();
	t0 = tlsbench_now();
	load_open(l, n, conc);
	secs += tlsbench_now() - t0;
	rss1 = tlsbench_rss_kib();
	/* seconds: opening all N, the pause after the warm-up left out */
	printf("up up=%zu failed=%zu rss_kib=%ld rss_per_conn_kib=%.2f cstp_mtu=%u dtls_mtu=%u"
	       " seconds=%.2f\n", l->up, l->failed, rss1,
	       n > warm ? (double)(rss1 - rss0) / (double)(n - warm) : 0.0, l->mtu_cstp, l->mtu_dtls,
	       secs);
	fflush(stdout);
	for (;;) {
		load_pause();
		if (got_term)
			return 0;
		load_dpd_round(l);
	}
}

static int mode_handshake(struct load *l, double secs, size_t conc)
{
	double t0 = tlsbench_now(), end = t0 + secs, t;

	while ((t = tlsbench_now()) < end && !got_term) {
		while (l->inflight < conc && tlsbench_now() < end)
			if (!load_add(l))
				l->failed++;
		load_dispatch(l, 10);
		load_compact(l);
	}
	t = tlsbench_now() - t0;
	printf("handshake done=%zu failed=%zu resumed=%zu seconds=%.3f rate=%.1f\n", l->done,
	       l->failed, l->resumed, t, (double)l->done / t);
	return l->done ? 0 : 1;
}

/* Blocking reads until the scanner has seen `want` records of type. */
static bool bulk_wait(struct load *l, struct lconn *c, int type, uint64_t want)
{
	while (c->scan.records[type] < want) {
		int n = SSL_read(c->ssl, l->rbuf, sizeof(l->rbuf));

		if (n <= 0)
			return false;
		tlsbench_scan_feed(&c->scan, l->rbuf, (size_t)n);
		if (c->scan.bad)
			return false;
	}
	return true;
}

static int mode_bulk(struct load *l, bool up, double secs, size_t size)
{
	static uint8_t rec[CSTP_HDR_LEN + 65535];
	struct lconn *c;
	size_t reclen = tlsbench_data_record(rec, size);
	uint64_t bytes = 0;
	double t0, t;

	if (!up)
		snprintf(l->source_hdr, sizeof(l->source_hdr), "X-Bench-Source: %.3f %zu\r\n", secs, size);
	if (!load_open(l, 1, 1)) {
		fprintf(stderr, "cstpload: no tunnel\n");
		return 1;
	}
	c = l->conns[0];
	tlsbench_nonblock(c->fd, false);
	/* "down": the headend sends from its CONNECT answer on, and the setup
	 * loop went on reading, so the clock starts at the answer. */
	t0 = up ? tlsbench_now() : l->t_up;
	if (up) {
		uint8_t dpd[CSTP_HDR_LEN];

		for (unsigned i = 0;; i++) {
			if (!(i & 63) && tlsbench_now() - t0 >= secs)
				break;
			if (SSL_write(c->ssl, rec, (int)reclen) <= 0) {
				fprintf(stderr, "cstpload: TLS write failed\n");
				return 1;
			}
			bytes += reclen - CSTP_HDR_LEN;
		}
		/* The headend answers only when everything before it has arrived. */
		cstp_write_header(dpd, CSTP_DPD_REQ, 0);
		if (SSL_write(c->ssl, dpd, sizeof(dpd)) <= 0 || !bulk_wait(l, c, CSTP_DPD_RESP, 1))
			return 1;
	} else {
		if (!bulk_wait(l, c, CSTP_DPD_REQ, 1))
			return 1;
		bytes = c->scan.data_bytes;
	}
	t = tlsbench_now() - t0;
	printf("bulk dir=%s bytes=%llu seconds=%.3f mbit=%.1f cstp_mtu=%u dtls_mtu=%u\n",
	       up ? "up" : "down", (unsigned long long)bytes, t, (double)bytes * 8 / t / 1e6,
	       l->mtu_cstp, l->mtu_dtls);
	return bytes ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: cstpload [-s SRC,...] [-g GROUP] DST:PORT up|down SECONDS [SIZE]\n"
			"       cstpload ... DST:PORT handshake|resume SECONDS [CONCURRENCY]\n"
			"       cstpload ... DST:PORT idle N [CONCURRENCY]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct load l = { .group = "bench" };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;
	int opt;

	while ((opt = getopt(argc, argv, "s:g:")) != -1) {
		char *list, *tok, *save = NULL;

		switch (opt) {
		case 's':
			list = strdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (l.nsrc == MAX_SRC ||
				    !tlsbench_addr_parse(tok, &l.src[l.nsrc], &l.srclen[l.nsrc]))
					return usage();
				l.nsrc++;
			}
			free(list);
			break;
		case 'g':
			l.group = optarg;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind < 3 || !tlsbench_addr_parse(argv[optind], &l.dst, &l.dstlen))
		return usage();
	{
		/* The Host header: the address alone. */
		char *p = argv[optind];
		size_t n = strlen(p);

		if (p[0] == '[')
			n = strcspn(p, "]") + 1;
		else if (strchr(p, ':') == strrchr(p, ':'))
			n = strcspn(p, ":");
		snprintf(l.host, sizeof(l.host), "%.*s", (int)n, p);
	}
	l.mode = argv[optind + 1];
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, NULL);
	if (!(l.ctx = tlsbench_ctx(false)) || (l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return 1;
	if (!strcmp(l.mode, "up") || !strcmp(l.mode, "down"))
		return mode_bulk(&l, l.mode[0] == 'u', atof(argv[optind + 2]),
				 argc - optind > 3 ? (size_t)atol(argv[optind + 3]) : 1400);
	if (!strcmp(l.mode, "handshake") || !strcmp(l.mode, "resume"))
		return mode_handshake(&l, atof(argv[optind + 2]),
				      argc - optind > 3 ? (size_t)atol(argv[optind + 3]) : 16);
	if (!strcmp(l.mode, "idle"))
		return mode_idle(&l, (size_t)atol(argv[optind + 2]),
				 argc - optind > 3 ? (size_t)atol(argv[optind + 3]) : 100);
	return usage();
}
