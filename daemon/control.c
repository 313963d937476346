/* The control socket: ctl_handle() answers one request line (pure), the
 * server below carries lines between unix stream clients and it. */
#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "conf/addr.h"
#include "conf/diag.h"
#include "daemon/loop.h"
#include "daemon/nfqproc.h"
#include "daemon/stats.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"

#ifndef MTUGATE_VERSION
#define MTUGATE_VERSION "unknown"
#endif

#define CTL_MAX_LINE 1024		/* a request longer than this closes the connection */
/* The rest can be lowered by a test that includes this file. */
#ifndef CTL_MAX_CLIENTS
#define CTL_MAX_CLIENTS 64
#endif
#define CTL_MAX_ERRORS 8		/* bad requests before a client is dropped */
#define CTL_PIPELINE_OUT (64 * 1024)	/* stop reading while this much is unsent */
/* Replies are only produced while less than CTL_PIPELINE_OUT is unsent, so this
 * bounds one reply (a policy with thousands of pools); past it the client is dropped. */
#define CTL_MAX_OUT (8 * 1024 * 1024)
#ifndef CTL_IDLE_S
#define CTL_IDLE_S 30			/* no request, or no progress writing */
#endif
#define CTL_TICK_MS 1000

/* Untrusted text goes back into a line protocol: no tabs, newlines or binary. */
static void ctl_put_clean(struct strbuf *out, const char *s, size_t len, size_t max)
{
	size_t i;

	for (i = 0; i < len && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		strbuf_append(out, c >= 0x20 && c < 0x7f ? (const char *)&s[i] : "?", 1);
	}
	if (len > max)
		strbuf_append(out, "...", 3);
}

/* Each group's counters, then its gauge of live tunnels (0 without a proxy). */
static void ctl_put_groups(const struct ctl_ops *ops, struct policy *p, struct counters *sum,
			   struct strbuf *out)
{
	size_t i, n = policy_count(p);
	const char **names = calloc(n ? n : 1, sizeof(*names));
	uint64_t *active = calloc(n ? n : 1, sizeof(*active));

	if (!names || !active) {
		out->oom = true;
		goto out;
	}
	for (i = 0; i < n; i++)
		names[i] = policy_group(p, i)->name;
	if (ops->sessions_active)
		ops->sessions_active(ops->arg, names, n, active);
	for (i = 0; i < n; i++) {
		const struct group *g = policy_group(p, i);
		struct grp_counters *gc;

		if (g->slot >= STATS_MAX_GROUPS)
			continue;
		gc = &sum->g[g->slot];
#define CTL_GRP(f) strbuf_printf(out, "group.%s." #f "\t%llu\n", g->name, \
				 (unsigned long long)ctr_get(&gc->f));
		STATS_GROUP_FIELDS(CTL_GRP)
#undef CTL_GRP
		strbuf_printf(out, "group.%s.sessions_active\t%llu\n", g->name,
			      (unsigned long long)active[i]);
	}
out:
	free(names);
	free(active);
}

static void ctl_cmd_stats(const struct ctl_ops *ops, struct strbuf *out)
{
	struct stats_queue q[STATS_MAX_SETS];
	struct nfqproc_row kq[STATS_MAX_SETS];
	struct counters *sum;
	struct policy *p;
	size_t i, nq;
	int nk;

	if (!ops->stats)
		return;
	nk = ops->kernel_queues ? ops->kernel_queues(ops->arg, kq, STATS_MAX_SETS) : 0;
	sum = calloc(1, sizeof(*sum));
	if (!sum) {
		out->oom = true;
		return;
	}
	stats_sum(ops->stats, sum);
	strbuf_printf(out, "uptime_s\t%llu\n", (unsigned long long)stats_uptime(ops->stats));
	strbuf_printf(out, "version\t%s\nconfig_last_reload_successful\t%d\n"
		      "config_loaded_s\t%lld\n", MTUGATE_VERSION, atomic_load(&ops->stats->config_ok),
		      (long long)atomic_load(&ops->stats->config_loaded));
	{
		char why[192];
		int ok = stats_rules_get(ops->stats, why, sizeof(why));

		/* Not known before the first look at the ruleset: nothing said. */
		if (ok >= 0)
			strbuf_printf(out, "rules_ok\t%d\n%s%s%s", ok, ok ? "" : "rules_problem\t",
				      ok ? "" : why, ok ? "" : "\n");
	}
#define CTL_PKT(f) strbuf_printf(out, "packets." #f "\t%llu\n", \
				 (unsigned long long)ctr_get(&sum->f));
	STATS_PACKET_FIELDS(CTL_PKT)
#undef CTL_PKT
#define CTL_PROXY(f) strbuf_printf(out, "proxy." #f "\t%llu\n", \
				   (unsigned long long)ctr_get(&sum->f));
	STATS_PROXY_FIELDS(CTL_PROXY)
#undef CTL_PROXY
#define CTL_TLS(f) strbuf_printf(out, "proxy_tls." #f "\t%llu\n", \
				 (unsigned long long)ctr_get(&sum->tls_##f));
	STATS_PROXY_TLS_FIELDS(CTL_TLS)
#undef CTL_TLS
	/* Per queue, so each can be held against its NFQUEUE rule's counters. */
	nq = stats_queues(ops->stats, q);
	for (i = 0; i < nq; i++) {
		strbuf_printf(out, "queue.%u.kind\t%s\nqueue.%u.portid\t%u\n", q[i].num, q[i].kind,
			      q[i].num, q[i].portid);
#define CTL_QUEUE(f) strbuf_printf(out, "queue.%u." #f "\t%llu\n", q[i].num, \
				   (unsigned long long)q[i].f);
		STATS_PACKET_FIELDS(CTL_QUEUE)
#undef CTL_QUEUE
		/* The kernel's side: packets waiting now (a daemon falling behind
		 * shows here before fail-open lets packets by), and its drops. */
		const struct nfqproc_row *k = nfqproc_find(kq, nk > 0 ? (size_t)nk : 0, q[i].num);

		if (k)
			strbuf_printf(out, "queue.%u.backlog\t%u\nqueue.%u.kernel_dropped\t%u\n"
				      "queue.%u.user_dropped\t%u\n", q[i].num, k->backlog, q[i].num,
				      k->dropped, q[i].num, k->user_dropped);
	}
	if (ops->box) {
		p = policy_hold(ops->box);
		ctl_put_groups(ops, p, sum, out);
		policy_release(p);
	}
	free(sum);
}

static void ctl_put_prefixes(struct strbuf *out, const struct prefix *v, size_t n)
{
	char buf[64];
	size_t i;

	for (i = 0; i < n; i++)
		strbuf_printf(out, "%s%s", i ? "," : "", prefix_format(&v[i], buf, sizeof(buf)));
}

static const char *ctl_dtls_name(enum dtls_mode m)
{
	return m == DTLS_RELAY ? "relay" : m == DTLS_BLOCK ? "block" : "pass";
}

static void ctl_put_mss(struct strbuf *out, const struct group *g, int family)
{
	if (g->mss_mode == MSS_OFF)
		strbuf_printf(out, "off\n");
	else
		strbuf_printf(out, "%u\n", (unsigned)group_mss(g, family));
}

/* A pool that groups share (told apart by auth_group): how its addresses
 * are resolved. Only shown for such a group. */
static void ctl_put_shared(struct strbuf *out, const struct policy *p, const struct group *g)
{
	if (!g->pool_shared)
		return;
	for (size_t k = 0; k < g->npools; k++) {
		const struct prefix *px = &g->pools[k];
		const struct group *d = policy_by_pool(p, px->family, px->addr);
		char buf[64];

		for (size_t j = 0; j < policy_count(p); j++) {
			const struct group *h = policy_group(p, j);

			if (h == g || !group_has_addr(h, px->family, px->addr))
				continue;
			strbuf_printf(out, "group.%s.pool_shared\t%s with %s: a tunnel's group is the one"
				      " its login or session cookie named; an address no tunnel has"
				      " claimed counts as %s (the smallest mtu)\n", g->name,
				      prefix_format(px, buf, sizeof(buf)), h->name, d ? d->name : "-");
			break;
		}
	}
}

static void ctl_cmd_groups(const struct ctl_ops *ops, struct strbuf *out)
{
	struct policy *p;
	size_t i;

	if (!ops->box)
		return;
	p = policy_hold(ops->box);
	for (i = 0; i < policy_count(p); i++) {
		const struct group *g = policy_group(p, i);
		const char *n = g->name;

		strbuf_printf(out, "group.%s.name\t%s\n", n, n);
		strbuf_printf(out, "group.%s.auth_group\t%s\n", n, g->auth_group);
		strbuf_printf(out, "group.%s.file\t%s\n", n, g->file);
		strbuf_printf(out, "group.%s.pools\t", n);
		ctl_put_prefixes(out, g->pools, g->npools);
		strbuf_printf(out, "\n");
		ctl_put_shared(out, p, g);
		strbuf_printf(out, "group.%s.clients\t", n);
		ctl_put_prefixes(out, g->clients, g->nclients);
		strbuf_printf(out, "\ngroup.%s.mtu\t%u\n", n, g->mtu);
		strbuf_printf(out, "group.%s.mss\t", n);
		if (g->mss_mode == MSS_AUTO)
			strbuf_printf(out, "auto\n");
		else if (g->mss_mode == MSS_OFF)
			strbuf_printf(out, "off\n");
		else
			strbuf_printf(out, "%u\n", g->mss);
		strbuf_printf(out, "group.%s.mss_v4\t", n);
		ctl_put_mss(out, g, AF_INET);
		strbuf_printf(out, "group.%s.mss_v6\t", n);
		ctl_put_mss(out, g, AF_INET6);
		strbuf_printf(out, "group.%s.dtls\t%s\n", n, ctl_dtls_name(g->dtls));
		strbuf_printf(out, "group.%s.dtls_block\t%s\n", n,
			      g->dtls_block == DTLS_BLOCK_REJECT ? "reject" : "drop");
		strbuf_printf(out, "group.%s.pmtu\t%s\n", n, g->pmtu ? "yes" : "no");
		strbuf_printf(out, "group.%s.pmtu_rate\t%u\n", n, g->pmtu_rate);
		strbuf_printf(out, "group.%s.proxy\t%s\n", n, g->proxy_bypass ? "no" : "yes");
		strbuf_printf(out, "group.%s.mode\t%s\n", n,
			      g->mode == MODE_OBSERVE ? "observe" : "enforce");
	}
	policy_release(p);
}

static void ctl_cmd_reload(const struct ctl_ops *ops, struct strbuf *out)
{
	struct diag d = { 0 };
	size_t i;

	if (!ops->reload) {
		strbuf_printf(out, "error=EOPNOTSUPP\treload is not available\n");
		return;
	}
	int r = ops->reload(ops->arg, &d);

	if (r >= 0 && diag_count(&d) == 0) {
		strbuf_printf(out, "result\tok\n");
		if (r > 0)
			strbuf_printf(out, "rules\tchanged\n");
	} else if (diag_count(&d) == 0 || !d.msgs) {
		strbuf_printf(out, "error\treload failed\n");
	} else {
		for (i = 0; i < d.n && i < d.cap; i++) {
			if (!d.msgs[i])
				continue;
			strbuf_printf(out, "error\t");
			ctl_put_clean(out, d.msgs[i], strlen(d.msgs[i]), 4096);
			strbuf_printf(out, "\n");
		}
	}
	diag_free(&d);
}

static void ctl_cmd_sessions(const struct ctl_ops *ops, struct strbuf *out)
{
	if (ops->sessions)
		ops->sessions(ops->arg, out);
}

void ctl_handle(const struct ctl_ops *ops, const char *line, size_t len, struct strbuf *out)
{
	size_t cmdlen, i;

	if (len > CTL_MAX_LINE) {
		strbuf_printf(out, "error=EINVAL\trequest longer than %d bytes\n\n", CTL_MAX_LINE);
		return;
	}
	/* Accept "cmd", "cmd\n", "cmd\r\n" and surrounding blanks (socat, nc). */
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		       line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (len && (line[0] == ' ' || line[0] == '\t')) {
		line++;
		len--;
	}
	for (cmdlen = 0; cmdlen < len && line[cmdlen] != ' ' && line[cmdlen] != '\t'; cmdlen++)
		;
	for (i = cmdlen; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
#define CTL_IS(s) (cmdlen == sizeof(s) - 1 && memcmp(line, s, cmdlen) == 0)
	if (i < len && (CTL_IS("stats") || CTL_IS("groups") || CTL_IS("sessions") ||
			CTL_IS("reload") || CTL_IS("ping") || CTL_IS("version"))) {
		strbuf_printf(out, "error=EINVAL\t'");
		ctl_put_clean(out, line, cmdlen, 64);
		strbuf_printf(out, "' takes no argument\n");
	} else if (CTL_IS("stats")) {
		ctl_cmd_stats(ops, out);
	} else if (CTL_IS("groups")) {
		ctl_cmd_groups(ops, out);
	} else if (CTL_IS("sessions")) {
		ctl_cmd_sessions(ops, out);
	} else if (CTL_IS("reload")) {
		ctl_cmd_reload(ops, out);
	} else if (CTL_IS("ping")) {
		strbuf_printf(out, "pong\t1\n");
	} else if (CTL_IS("version")) {
		strbuf_printf(out, "version\t%s\n", MTUGATE_VERSION);
	} else if (len == 0) {
		strbuf_printf(out, "error=EINVAL\tempty request\n");
	} else {
		strbuf_printf(out, "error=EINVAL\tunknown command '");
		ctl_put_clean(out, line, cmdlen, 64);
		strbuf_printf(out, "'\n");
	}
#undef CTL_IS
	strbuf_printf(out, "\n");
}

struct ctl_client {
	struct ctl_server *s;
	int fd;
	char in[CTL_MAX_LINE + 1];	/* one maximal line and its newline */
	size_t inlen;
	struct strbuf out;
	size_t outoff;
	int64_t last;			/* monotonic ms of the last progress: ties are rare */
	unsigned errors;
	bool closing;			/* close once out is flushed */
	bool eof;			/* the client sends nothing more */
	uint32_t events;		/* current epoll interest */
	struct ctl_client *prev, *next;
};

struct ctl_server {
	struct loop *l;
	int fd, tfd;
	struct ctl_ops ops;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctl_client *clients;
	size_t nclients;
	bool paused;	/* out of descriptors: the listener rests until the next tick */
};

static int64_t ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ctl_client_close(struct ctl_client *c)
{
	struct ctl_server *s = c->s;

	loop_del(s->l, c->fd);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nclients--;
	strbuf_free(&c->out);
	free(c);
}

/* Handle every complete buffered line, as long as the client keeps reading
 * its replies; a line longer than the limit ends the connection. */
static void ctl_client_process(struct ctl_client *c)
{
	size_t start = 0;

	while (!c->closing && c->out.len - c->outoff < CTL_PIPELINE_OUT) {
		char *nl = memchr(c->in + start, '\n', c->inlen - start);
		size_t before = c->out.len, n;

		if (!nl) {
			if (start == 0 && c->inlen == sizeof(c->in)) {
				ctl_handle(&c->s->ops, c->in, c->inlen, &c->out);
				c->closing = true;
				start = c->inlen;
			} else if (c->eof && c->inlen > start) {
				/* "printf stats | nc -U": the last line needs no newline. */
				ctl_handle(&c->s->ops, c->in + start, c->inlen - start, &c->out);
				start = c->inlen;
			}
			break;
		}
		n = (size_t)(nl - (c->in + start));
		if (n && !(n == 1 && c->in[start] == '\r')) {
			ctl_handle(&c->s->ops, c->in + start, n, &c->out);
			if (c->out.len - before >= 6 && memcmp(c->out.buf + before, "error=", 6) == 0 &&
			    ++c->errors >= CTL_MAX_ERRORS)
				c->closing = true;
		}
		start += n + 1;
	}
	if (start) {
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
}

/* Write what is pending: 0, or -1 when the client is gone. */
static int ctl_client_flush(struct ctl_client *c)
{
	while (c->outoff < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->outoff, c->out.len - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		c->outoff += (size_t)n;
		c->last = ctl_now();
		if (c->outoff < c->out.len && c->outoff >= c->out.len / 2) {
			/* A slow reader must not make the sent prefix pile up. */
			memmove(c->out.buf, c->out.buf + c->outoff, c->out.len - c->outoff);
			c->out.len -= c->outoff;
			c->outoff = 0;
		}
	}
	strbuf_reset(&c->out);
	c->outoff = 0;
	return 0;
}

static void ctl_client_run(struct ctl_client *c, bool readable)
{
	uint32_t want = 0;
	int rounds;

	for (rounds = 0; readable && rounds < 4 && !c->closing && !c->eof &&
	     c->out.len - c->outoff < CTL_PIPELINE_OUT; rounds++) {
		ssize_t n;

		/* A read into no room would look like EOF. */
		if (c->inlen == sizeof(c->in))
			ctl_client_process(c);
		if (c->inlen == sizeof(c->in) || c->closing)
			break;
		n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* EOF: the requests already read still get their replies. */
			c->eof = true;
			break;
		}
		c->inlen += (size_t)n;
		c->last = ctl_now();
		ctl_client_process(c);
	}
	ctl_client_process(c);
	if (c->out.oom || ctl_client_flush(c) < 0 || c->out.len - c->outoff > CTL_MAX_OUT) {
		ctl_client_close(c);
		return;
	}
	/* Replies drained: requests held back by the pipeline limit can run. */
	if (c->out.len - c->outoff < CTL_PIPELINE_OUT && c->inlen && !c->closing) {
		ctl_client_process(c);
		if (c->out.oom || ctl_client_flush(c) < 0) {
			ctl_client_close(c);
			return;
		}
	}
	if (!c->closing && !c->eof && c->out.len - c->outoff < CTL_PIPELINE_OUT)
		want |= EPOLLIN;
	if (c->outoff < c->out.len)
		want |= EPOLLOUT;
	if (!want) {
		ctl_client_close(c);
		return;
	}
	if (want != c->events && loop_mod(c->s->l, c->fd, want) == 0)
		c->events = want;
}

static void ctl_on_client(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct ctl_client *c = arg;

	(void)l;
	(void)fd;
	if (events & EPOLLERR) {
		ctl_client_close(c);
		return;
	}
	ctl_client_run(c, events & (EPOLLIN | EPOLLHUP));
}

static void ctl_on_accept(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct ctl_server *s = arg;
	int i;

	(void)events;
	for (i = 0; i < 16; i++) {
		struct ctl_client *c, *old, *it;
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			/* A level-triggered listener that cannot accept would spin
			 * the main thread: rest it until the next tick. */
			if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			     errno == ENOMEM) && loop_mod(l, fd, 0) == 0)
				s->paused = true;
			return;
		}
		/* Full: the longest-silent client makes room, so a flood of
		 * half-open connections cannot lock the admin out. */
		if (s->nclients >= CTL_MAX_CLIENTS) {
			for (old = it = s->clients; it; it = it->next)
				if (it->last <= old->last)	/* ties: the oldest accepted (list tail) */
					old = it;
			if (old)
				ctl_client_close(old);
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			return;
		}
		c->s = s;
		c->fd = cfd;
		c->last = ctl_now();
		c->events = EPOLLIN;
		if (loop_add(l, cfd, EPOLLIN, ctl_on_client, c) < 0) {
			close(cfd);
			free(c);
			return;
		}
		c->next = s->clients;
		if (c->next)
			c->next->prev = c;
		s->clients = c;
		s->nclients++;
	}
}

static void ctl_on_tick(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct ctl_server *s = arg;
	struct ctl_client *c, *next;
	uint64_t ticks;
	int64_t now = ctl_now();

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	if (s->paused && loop_mod(l, s->fd, EPOLLIN) == 0)
		s->paused = false;
	for (c = s->clients; c; c = next) {
		next = c->next;
		if (now - c->last >= (int64_t)CTL_IDLE_S * 1000)
			ctl_client_close(c);
	}
}

/* An existing socket file is removed only when nothing answers on it. */
static int ctl_remove_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int ctl_listen(struct ctl_server *s, gid_t gid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	gid_t oldgid = 0;
	mode_t old;
	int r;

	memcpy(sun.sun_path, s->path, sizeof(sun.sun_path));
	r = ctl_remove_stale(s->path, &sun);
	if (r < 0)
		return r;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	/* Mode (umask) and group (fsgid) come with the bind itself: nothing
	 * after it operates on the path, which whoever owns the folder could
	 * have swapped for a symlink by then (chmod and chown follow it). */
	if (gid != (gid_t)-1) {
		oldgid = (gid_t)setfsgid(gid);
		if ((gid_t)setfsgid((gid_t)-1) != gid) {
			setfsgid(oldgid);
			return -EPERM;
		}
	}
	old = umask(0117);
	r = bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (gid != (gid_t)-1)
		setfsgid(oldgid);
	if (r < 0)
		return r;
	if (lstat(s->path, &st) < 0 || listen(s->fd, 16) < 0) {
		r = -errno;
		unlink(s->path);
		return r;
	}
	/* Swapped already: refuse it (unlink removes the link, not its target). */
	if (!S_ISSOCK(st.st_mode)) {
		unlink(s->path);
		return -EEXIST;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

struct ctl_server *ctl_server_new(struct loop *l, const char *path, gid_t gid,
				  const struct ctl_ops *ops)
{
	struct itimerspec its = { .it_interval = { CTL_TICK_MS / 1000, 0 },
				  .it_value = { CTL_TICK_MS / 1000, 0 } };
	struct ctl_server *s;
	int r;

	if (strlen(path) >= sizeof(s->path) || !*path) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->l = l;
	s->ops = *ops;
	s->fd = s->tfd = -1;
	strcpy(s->path, path);
	r = ctl_listen(s, gid);
	if (r < 0)
		goto err_sock;
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd < 0 || timerfd_settime(s->tfd, 0, &its, NULL) < 0) {
		r = -errno;
		goto err_bound;
	}
	r = loop_add(l, s->fd, EPOLLIN, ctl_on_accept, s);
	if (r < 0)
		goto err_bound;
	r = loop_add(l, s->tfd, EPOLLIN, ctl_on_tick, s);
	if (r < 0)
		goto err_added;
	return s;

err_added:
	loop_del(l, s->fd);
err_bound:
	unlink(s->path);
err_sock:
	if (s->tfd >= 0)
		close(s->tfd);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	errno = r < 0 ? -r : EINVAL;
	return NULL;
}

void ctl_server_free(struct ctl_server *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->clients)
		ctl_client_close(s->clients);
	loop_del(s->l, s->tfd);
	loop_del(s->l, s->fd);
	close(s->tfd);
	close(s->fd);
	/* Leave a socket file alone that a newer instance has put in its place. */
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}
