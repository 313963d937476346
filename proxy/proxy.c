#include "proxy/proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/stats.h"
#include "proxy/budget.h"
#include "proxy/conn.h"
#include "proxy/cookie.h"
#include "proxy/cookiefile.h"
#include "proxy/listen.h"
#include "proxy/session.h"
#include "proxy/tls.h"

#define ACCEPT_BATCH 64		/* per wake-up, so a flood cannot starve tunnels */
#define ACCEPT_PAUSE_MS 100	/* out of descriptors: listeners rest this long */

struct proxy {
	struct conf conf;
	struct conn_env env;
	struct loop *loop;
	struct tls_ctx *tls;
	struct session_table *sessions;
	struct budget *budget;	/* logins: connections not tunnels yet */
	struct cookie_table *cookies;
	char cookie_path[256];	/* the state file, next to the control socket */
	/* Worker 0, or the only one: writes the cookies' state file, fetches
	 * the headend's certificate, says what it read; the others only serve. */
	bool primary;
	/* The headend's certificate, fetched at start and reload (main thread). */
	pthread_t probe_th;
	bool probe_started;
	atomic_bool probing;
	const char *probe_when;
	int lfd[2];		/* IPv4, IPv6 */
	int kickfd;
	int pausefd;		/* one-shot timerfd: listeners back after EMFILE */
	bool paused;
	bool ran;
	/* A restart (daemon/privsep.h): no listener, the tunnels run out. */
	bool draining;
	bool drain_cut;		/* drain_timeout ended it, tunnels still up */
	time_t drain_start, drain_until;	/* CLOCK_MONOTONIC seconds */
};

static void proxy_listeners(struct proxy *p, uint32_t events)
{
	for (int i = 0; i < 2; i++)
		if (p->lfd[i] >= 0 && loop_mod(p->loop, p->lfd[i], events) < 0)
			log_warn("proxy: listener epoll interest");
}

/* Out of descriptors: the pending connection stays in the backlog and its
 * listener stays readable, so a level-triggered loop would spin at full CPU
 * until an fd frees up. Stop listening for a while instead; the clients
 * wait in the backlog, and the tunnels carry on. */
static void proxy_pause(struct proxy *p, int err)
{
	const struct itimerspec its = { .it_value = { .tv_nsec = ACCEPT_PAUSE_MS * 1000000L } };

	log_limited(log_warnx, "proxy: %s: not accepting for %d ms", strerror(err), ACCEPT_PAUSE_MS);
	if (p->paused)
		return;
	if (timerfd_settime(p->pausefd, 0, &its, NULL) < 0) {
		log_warn("proxy: pause timer");
		return;
	}
	p->paused = true;
	proxy_listeners(p, 0);
}

static void proxy_resume(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct proxy *p = arg;
	uint64_t n;

	(void)l;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a spurious wake-up; resuming is harmless. */
	}
	p->paused = false;
	proxy_listeners(p, EPOLLIN);
}

static bool proxy_out_of_fds(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Only what TPROXY diverted is proxied: the original destination is where
 * clients reach a headend (its address, or its public_address behind a port
 * forward) on tls_port. Anything else reached the listener directly
 * (`nc 127.0.0.1 8443` on the firewall; from outside only through someone's
 * DNAT to loopback, the listener being on 127.0.0.1 and ::1) and would make
 * the proxy connect to itself, link after link. NULL when
 * the connection may stay, else why not; dst becomes the address to dial. */
static const char *proxy_refuse(struct proxy *p, const struct sockaddr_storage *client,
				struct sockaddr_storage *dst)
{
	struct sockaddr_in *d4 = (void *)dst;
	struct sockaddr_in6 *d6 = (void *)dst;
	uint8_t *a = dst->ss_family == AF_INET6 ? d6->sin6_addr.s6_addr : (uint8_t *)&d4->sin_addr;
	uint16_t port = ntohs(dst->ss_family == AF_INET6 ? d6->sin6_port : d4->sin_port);
	const struct ipaddr *h = conf_headend_by_public(&p->conf, dst->ss_family, a);

	if (!h || port != p->conf.headend.tls_port) {
		ctr_inc(&p->env.ctr->not_diverted);
		return "not diverted: its destination is no headend address on tls_port";
	}
	if (listen_is_local(client)) {
		ctr_inc(&p->env.ctr->local_source);
		return "from this host's own address (a loop)";
	}
	memcpy(a, h->addr, h->family == AF_INET6 ? 16 : 4);
	return NULL;
}

static void proxy_accept(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct proxy *p = arg;

	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage client, dst;
		int cfd = listen_accept(fd, &client, &dst);
		const char *why;

		if (cfd < 0) {
			if (proxy_out_of_fds(-cfd))
				proxy_pause(p, -cfd);
			else if (cfd != -EAGAIN && cfd != -EINTR)
				log_limited(log_warnx, "proxy: accept: %s", strerror(-cfd));
			return;
		}
		if ((why = proxy_refuse(p, &client, &dst))) {
			char a[64], b[64];

			close(cfd);
			log_limited(log_warnx, "proxy %s -> %s: closed at accept: %s",
				    session_addr_str(&client, a, sizeof(a)),
				    session_addr_str(&dst, b, sizeof(b)), why);
			continue;
		}
		if (p->env.ntunnels >= p->conf.proxy.max_sessions) {
			/* Closing at once resets the client: it retries elsewhere or later. */
			close(cfd);
			ctr_inc(&p->env.ctr->tunnels_full);
			log_limited(log_warnx, "proxy: max_sessions (%u) tunnels reached: connection refused",
				    p->conf.proxy.max_sessions);
			continue;
		}
		if (!conn_new(&p->env, cfd, &client, &dst) && proxy_out_of_fds(errno)) {
			proxy_pause(p, errno);
			return;
		}
	}
}

/* The session cookies survive a restart: written when they changed, at most
 * once a second, and at the end. */
static void proxy_cookies_save(struct proxy *p)
{
	int r;

	if (!p->env.cookies_changed || !p->primary)
		return;
	p->env.cookies_changed = false;
	cookie_expire(p->cookies, time(NULL));
	if ((r = cookiefile_save(p->cookie_path, p->cookies, time(NULL))) < 0) {
		errno = -r;
		log_limited(log_warn, "proxy: session cookies: writing %s", p->cookie_path);
	}
}

static void proxy_cookies_load(struct proxy *p)
{
	size_t bad = 0;
	long r = cookiefile_load(p->cookie_path, p->cookies, time(NULL), &bad);

	if (r < 0) {
		errno = (int)-r;
		log_warn("proxy: session cookies: %s ignored", p->cookie_path);
	} else if (bad) {
		log_warnx("proxy: session cookies: %s: %zu corrupt lines ignored", p->cookie_path, bad);
	}
	if (r > 0)
		log_info("proxy: %ld sessions known from %s", r, p->cookie_path);
}

static time_t proxy_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Draining: the loop ends with the last connection (a login in flight
 * counts until it ends too), or at the deadline. */
static void proxy_drain_tick(struct proxy *p)
{
	time_t now = proxy_mono_s();

	if (!p->env.nconns) {
		log_info("proxy: drained: its last tunnel ended after %lld s; the old proxy exits",
			 (long long)(now - p->drain_start));
		loop_stop(p->loop);
	} else if (now >= p->drain_until) {
		p->drain_cut = true;
		log_warnx("proxy: drain_timeout (%u s) reached: closing the %zu tunnel(s) still up"
			  " (their clients reconnect to the new proxy)", p->conf.proxy.drain_timeout,
			  p->env.ntunnels);
		loop_stop(p->loop);
	}
}

static void proxy_tick(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct proxy *p = arg;

	(void)l;
	(void)fd;
	(void)events;
	conn_tick(&p->env);
	/* The new proxy owns the cookie file from the drain on. */
	if (p->draining)
		proxy_drain_tick(p);
	else
		proxy_cookies_save(p);
}

size_t proxy_drain(struct proxy *p)
{
	time_t now = proxy_mono_s(), wall = time(NULL) + (time_t)p->conf.proxy.drain_timeout;
	struct tm tm;
	char until[32] = "?";

	if (p->draining)
		return p->env.ntunnels;
	/* Written now, before the new proxy reads it. */
	proxy_cookies_save(p);
	for (int i = 0; i < 2; i++) {
		if (p->lfd[i] < 0)
			continue;
		loop_del(p->loop, p->lfd[i]);
		close(p->lfd[i]);
		p->lfd[i] = -1;
	}
	p->draining = true;
	p->drain_start = now;
	p->drain_until = now + (time_t)p->conf.proxy.drain_timeout;
	if (gmtime_r(&wall, &tm))
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	log_info("proxy: draining: listeners closed, %zu tunnel(s) and %zu login(s) kept until they"
		 " end, at most %u s (until %s)", p->env.ntunnels, p->env.nconns - p->env.ntunnels,
		 p->conf.proxy.drain_timeout, until);
	return p->env.ntunnels;
}

static void proxy_kick(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct proxy *p = arg;
	uint64_t n;

	(void)l;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a spurious wake-up, nothing to do. */
	}
	conn_run_again(&p->env);
}

int proxy_listen_open(const struct conf *c, int lfd[2])
{
	static const int fam[2] = { AF_INET, AF_INET6 };
	bool want[2] = { false, false };

	lfd[0] = lfd[1] = -1;
	/* Listen for the families the headend has addresses in. */
	for (size_t i = 0; i < c->headend.naddr; i++)
		want[c->headend.addr[i].family == AF_INET6] = true;
	for (int i = 0; i < 2; i++) {
		if (!want[i])
			continue;
		if ((lfd[i] = listen_open(fam[i], c->proxy.listen_port)) < 0) {
			errno = -lfd[i];
			log_warn("proxy: IPv%d listener on port %u%s", i ? 6 : 4, c->proxy.listen_port,
				 errno == EPERM ? " (IP_TRANSPARENT needs CAP_NET_ADMIN)" : "");
			if (i && lfd[0] >= 0)
				close(lfd[0]);
			lfd[0] = lfd[1] = -1;
			return -1;
		}
	}
	return 0;
}

static int proxy_listen(struct proxy *p)
{
	for (int i = 0; i < 2; i++)
		if (p->lfd[i] >= 0 && loop_add(p->loop, p->lfd[i], EPOLLIN, proxy_accept, p) < 0)
			return -1;
	return 0;
}

static struct budget *proxy_budget_new(const struct conf *c)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
	return budget_new(c->proxy.login_max, c->proxy.login_per_source, c->proxy.source_prefix4,
			  c->proxy.source_prefix6, seed);
}

/* The session ticket keys clients get: the file's (shared by a pair of
 * gateways, rotated by prepending a key and reloading), else a random key
 * of this process's own (tls_ctx_new() read either). Read again here, as
 * the daemon's user, since a reload reads it so: at start a file this user
 * cannot read keeps the keys of tls_ctx_new(), said once; at a reload the
 * keys in force stay. Never logged: a key decrypts every session it issued. */
static void proxy_ticket_keys(struct proxy *p, const char *path, bool start)
{
	char err[256];
	size_t n = 0;
	bool exposed = false;

	if (!path[0])
		return;
	if (tls_ctx_ticket_keys(p->tls, path, &n, &exposed, err, sizeof(err)) < 0) {
		if (!p->primary)
			return;
		if (start)
			log_warnx("proxy: %s: serving the keys read at start; a reload, run as the"
				  " daemon's user, fails on this file until it is that user's (chown,"
				  " chmod 0600)", err);
		else
			log_error("proxy: %s: the keys in force stay", err);
		return;
	}
	if (!p->primary)
		return;
	log_info("proxy: session tickets: %zu key%s from %s (the first encrypts)", n,
		 n == 1 ? "" : "s", path);
	if (exposed)
		log_warnx("proxy: [proxy] ticket_key_file %s is readable by its group or everyone:"
			  " whoever reads it can decrypt the sessions it resumes; chmod 0600", path);
}

struct proxy *proxy_new(const struct conf *c, struct policy_box *box, struct counters *ctr,
			struct tls_ctx *tls, const int lfd[2], const struct listen_supply *supply)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (!p) {
		log_error("proxy: out of memory");
		tls_ctx_free(tls);
		for (int i = 0; i < 2; i++)
			if (lfd[i] >= 0)
				close(lfd[i]);
		return NULL;
	}
	p->conf = *c;
	cookiefile_path(p->conf.daemon.control_socket, p->cookie_path, sizeof(p->cookie_path));
	p->kickfd = p->pausefd = -1;
	p->primary = true;
	p->lfd[0] = lfd[0];
	p->lfd[1] = lfd[1];
	p->tls = tls;
	if (p->conf.proxy.insecure_upstream)
		log_warnx("proxy: insecure_upstream = yes: the headend's certificate is NOT verified;"
			  " anyone on the path to it can read every tunnel");
	/* Logins in flight when the last tunnel slot goes may still become
	 * tunnels (conn.c closes them at once): room for their sessions too. */
	if (!(p->loop = loop_new()) ||
	    !(p->sessions = session_table_new(p->conf.proxy.max_sessions + p->conf.proxy.login_max)) ||
	    !(p->budget = proxy_budget_new(&p->conf)) ||
	    !(p->cookies = cookie_table_new(4 * (size_t)p->conf.proxy.max_sessions + 64)) ||
	    (p->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    loop_add(p->loop, p->kickfd, EPOLLIN, proxy_kick, p) < 0 ||
	    (p->pausefd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    loop_add(p->loop, p->pausefd, EPOLLIN, proxy_resume, p) < 0 ||
	    loop_every(p->loop, 1000, proxy_tick, p) < 0) {
		log_warn("proxy: setting up its loop");
		goto err;
	}
	if (proxy_listen(p) < 0)
		goto err;
	p->env = (struct conn_env){ .conf = &p->conf, .tls = p->tls, .loop = p->loop, .box = box,
				    .ctr = ctr, .sessions = p->sessions, .kickfd = p->kickfd,
				    .budget = p->budget, .cookies = p->cookies, .supply = supply };
	if (getrandom(p->env.user_key, sizeof(p->env.user_key), 0) != (ssize_t)sizeof(p->env.user_key)) {
		log_warn("proxy: getrandom: no key for the usernames' hashes");
		goto err;
	}
	return p;
err:
	proxy_free(p);
	return NULL;
}

#define PROXY_PROBE_TIMEOUT 5	/* seconds per step of the certificate fetch */

/* Its own thread: a headend that does not answer costs seconds, which the
 * proxy's loop must not wait. Fetched by a plain connection from this host
 * (no TPROXY source address); failing that, the first tunnel compares. */
static void *proxy_probe_main(void *arg)
{
	struct proxy *p = arg;
	const struct ipaddr *h = &p->conf.headend.addr[0];
	struct sockaddr_storage dst = { .ss_family = h->family };
	char ours[TLS_FINGERPRINT_LEN], theirs[TLS_FINGERPRINT_LEN], err[160], a[64];
	int r;

	if (h->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;

		memcpy(&s6->sin6_addr, h->addr, 16);
		s6->sin6_port = htons(p->conf.headend.tls_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;

		memcpy(&s4->sin_addr, h->addr, 4);
		s4->sin_port = htons(p->conf.headend.tls_port);
	}
	session_addr_str(&dst, a, sizeof(a));
	tls_ctx_fingerprint(p->tls, ours, sizeof(ours));
	if (tls_fetch_leaf(&dst, p->conf.proxy.upstream_name, PROXY_PROBE_TIMEOUT, theirs,
			   sizeof(theirs), err, sizeof(err)) < 0) {
		log_warnx("proxy: the headend's certificate (%s, at %s): %s; compared at the first"
			  " tunnel instead", a, p->probe_when, err);
		atomic_store(&p->env.leaf_check, true);
	} else {
		r = strcmp(ours, theirs) ? 1 : 0;
		conn_leaf_log(&p->conf, a, p->probe_when, r, ours, theirs);
	}
	atomic_store(&p->probing, false);
	return NULL;
}

/* One fetch at a time; the previous thread has ended when probing is off. */
static void proxy_probe(struct proxy *p, const char *when)
{
	if (!p->primary || !p->conf.headend.naddr || atomic_exchange(&p->probing, true))
		return;
	if (p->probe_started)
		pthread_join(p->probe_th, NULL);
	p->probe_when = when;
	p->probe_started = pthread_create(&p->probe_th, NULL, proxy_probe_main, p) == 0;
	if (!p->probe_started)
		atomic_store(&p->probing, false);
}

/* A reload must not let an operator forget that the headend is still not
 * verified (a changed [proxy] itself is the daemon's to report). */
void proxy_reloaded(struct proxy *p, const struct conf *nc)
{
	/* Rotation: the file may hold a new first key. A file that became
	 * unusable keeps the keys in force (conf_load() refused it already). */
	if (p && nc->proxy.ticket_key_file[0])
		proxy_ticket_keys(p, nc->proxy.ticket_key_file, false);
	/* The headend's certificate may have changed with it: compare again. */
	if (p)
		proxy_probe(p, "reload");
	if (p && p->conf.proxy.insecure_upstream)
		log_warnx("proxy: insecure_upstream = yes: the headend's certificate is still NOT"
			  " verified; anyone on the path to it can read every tunnel");
	/* The one [proxy] key a reload changes: the next restart's drain. */
	if (p && !p->draining)
		p->conf.proxy.drain_timeout = nc->proxy.drain_timeout;
}

int proxy_run(struct proxy *p)
{
	/* Read here, as the daemon's user: the files are its own. */
	proxy_ticket_keys(p, p->conf.proxy.ticket_key_file, true);
	proxy_cookies_load(p);
	p->ran = true;
	if (p->primary)
		log_info("proxy: listening on port %u, headend verified %s",
			 p->conf.proxy.listen_port, p->conf.proxy.insecure_upstream ? "NOT AT ALL" :
			 p->conf.proxy.upstream_name[0] ? "by name" : "by address");
	proxy_probe(p, "start");
	return loop_run(p->loop);
}

struct loop *proxy_loop(struct proxy *p)
{
	return p->loop;
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	if (p->probe_started)
		pthread_join(p->probe_th, NULL);
	if (p->env.loop)
		conn_close_all(&p->env, p->drain_cut ? "drain_timeout reached" : "mtugated stopping");
	if (p->cookies && p->ran && !p->draining)
		proxy_cookies_save(p);
	for (int i = 0; i < 2; i++)
		if (p->lfd[i] >= 0)
			close(p->lfd[i]);
	if (p->kickfd >= 0)
		close(p->kickfd);
	if (p->pausefd >= 0)
		close(p->pausefd);
	loop_free(p->loop);
	session_table_free(p->sessions);
	budget_free(p->budget);
	cookie_table_free(p->cookies);
	tls_ctx_free(p->tls);
	free(p);
}

void proxy_share_cookies(struct proxy *p, void (*fn)(void *arg, const struct cookie_event *ev),
			 void *arg)
{
	p->env.cookie_share = fn;
	p->env.share_arg = arg;
}

void proxy_set_primary(struct proxy *p, bool primary)
{
	p->primary = primary;
}

void proxy_user_key(struct proxy *p, const uint8_t *key, size_t len)
{
	if (len == sizeof(p->env.user_key))
		memcpy(p->env.user_key, key, len);
}

void proxy_cookie_apply(struct proxy *p, const struct cookie_event *ev)
{
	cookie_apply(p->cookies, ev, time(NULL));
	p->env.cookies_changed = true;
}

struct session_table *proxy_session_table(struct proxy *p)
{
	return p ? p->sessions : NULL;
}
