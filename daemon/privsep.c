#include "daemon/privsep.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/diag.h"
#include "daemon/caps.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/sandbox.h"
#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/listen.h"
#include "proxy/proxy.h"
#include "proxy/sepmsg.h"
#include "proxy/sepstate.h"
#include "proxy/session.h"
#include "proxy/tls.h"

#define PRIVSEP_RESPAWN_MS 1000	/* a worker that died younger is restarted this much later */
#define PRIVSEP_EXIT_FATAL 78	/* the worker cannot sandbox itself: no point restarting it */
#define PRIVSEP_FD_WAIT_S 2	/* the worker's wait for an upstream socket */
#define PRIVSEP_STOP_MS 5000	/* the master's time to close every tunnel at a stop */
#define PRIVSEP_COUNTERS_MS 100	/* the worker sends its counters this often */
#define PRIVSEP_MAX CONF_MAX_PROXY_WORKERS
#define PRIVSEP_DRAIN_MS 3000	/* the packet process's wait for the workers to drain */

/* ---- the packet process's side ---- */

/* One worker's channels, as the packet process's loop sees them: the
 * channel a message came on names the worker (never the message). */
struct ps_chan {
	struct privsep *ps;
	unsigned w;
};

struct privsep {
	pid_t master;
	unsigned n;		/* workers */
	int ann[PRIVSEP_MAX];	/* announcements in, RELOAD out; one per worker */
	int fdq[PRIVSEP_MAX];	/* upstream socket requests in, sockets out */
	struct ps_chan chan[PRIVSEP_MAX];
	size_t max;		/* each worker's session handles are below this */
	struct session_table *sessions;
	struct sepstate *st;
	struct policy_box *box;
	struct loop *loop;
	bool failed;
	bool drain;		/* at stop, the proxy keeps its tunnels ([proxy] drain_timeout) */
};

/* What both proxy processes need, copied at the fork. */
struct child {
	struct conf conf;
	const char *conf_path;
	struct stats *stats;
	struct policy_box *box;
	uid_t uid;
	gid_t gid;
	unsigned n;		/* workers */
	int lfds[PRIVSEP_MAX][2];	/* each worker's listeners (SO_REUSEPORT) */
	int anns[PRIVSEP_MAX], fdqs[PRIVSEP_MAX];	/* the proxy's ends */
	struct tls_ctx *tls;
	uint8_t user_key[16];	/* the usernames' hashes: one key, drawn by the master */
	/* master */
	pid_t pid[PRIVSEP_MAX];		/* 0: none running */
	uint64_t started[PRIVSEP_MAX], due[PRIVSEP_MAX];	/* ms: its start, its next */
	bool respawned[PRIVSEP_MAX];	/* not the first: the policy may have been reloaded */
	bool draining;		/* a restart: tunnels kept, no listener, no new worker */
	/* worker */
	unsigned idx;		/* which worker this process is */
	int ann, fdq;		/* its channels */
	struct proxy *proxy;
	struct counters *ctr;
	uint32_t seq;
	uint64_t ticks;
	bool peer_gone;		/* draining, and the packet process has gone */
	uint8_t buf[SEPMSG_MAX];
};

static struct counters child_last;	/* the worker's counters as last sent */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the worker ---- */

/* Blocking: the packet process reads at once, and an announcement lost
 * would leave its table wrong. */
static void worker_send(struct child *c, const struct sepmsg *m)
{
	size_t n = sepmsg_encode(m, c->buf, sizeof(c->buf));

	if (!n || c->peer_gone)
		return;
	while (send(c->ann, c->buf, n, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void worker_added(void *arg, int h, const struct session_info *s)
{
	static struct sepmsg m;

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_SESSION_ADD;
	m.handle = (uint32_t)h;
	m.info = *s;
	worker_send(arg, &m);
}

static void worker_removed(void *arg, int h)
{
	struct sepmsg m = { .type = SEPMSG_SESSION_DEL, .handle = (uint32_t)h };

	worker_send(arg, &m);
}

static void worker_bytes(void *arg, const struct session_bytes *v, size_t n)
{
	static struct sepmsg m;

	while (n) {
		memset(&m, 0, sizeof(m));
		m.type = SEPMSG_BYTES;
		for (; n && m.n < SEPMSG_BATCH; v++, n--)
			m.bytes[m.n++] = (struct sepmsg_bytes){ .handle = (uint32_t)v->handle,
								.up = v->up, .down = v->down };
		worker_send(arg, &m);
	}
}

/* Counters are sent as increments: a new worker starts from zero, and the
 * packet process's sums only grow. */
static void worker_counter_run(struct child *c, const char *group, ctr *cur, uint64_t *last,
			       size_t nfields)
{
	static struct sepmsg m;

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_COUNTERS;
	snprintf(m.group, sizeof(m.group), "%s", group);
	for (size_t f = 0; f < nfields; f++) {
		uint64_t v = ctr_get(&cur[f]);

		if (v == last[f])
			continue;
		m.ctr[m.n++] = (struct sepmsg_ctr){ .field = (uint16_t)f, .delta = v - last[f] };
		last[f] = v;
		if (m.n == SEPMSG_BATCH) {
			worker_send(c, &m);
			m.n = 0;
		}
	}
	if (m.n)
		worker_send(c, &m);
}

static void worker_tick(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct child *c = arg;
	struct sepmsg m = { .type = SEPMSG_TICK };
	size_t np = sepmsg_ctr_fields(""), ng = sepmsg_ctr_fields("g");
	char name[sizeof(c->stats->names[0])];

	(void)l;
	(void)fd;
	(void)events;
	worker_counter_run(c, "", (ctr *)(void *)c->ctr, (uint64_t *)(void *)&child_last, np);
	for (size_t s = 0; s < STATS_MAX_GROUPS; s++) {
		ctr *cur = (ctr *)(void *)&c->ctr->g[s];
		uint64_t *last = (uint64_t *)(void *)&child_last.g[s];
		size_t f;

		for (f = 0; f < ng && ctr_get(&cur[f]) == last[f]; f++)
			;
		if (f == ng)
			continue;
		pthread_mutex_lock(&c->stats->lock);
		snprintf(name, sizeof(name), "%s", s < c->stats->nnames ? c->stats->names[s] : "");
		pthread_mutex_unlock(&c->stats->lock);
		if (name[0])
			worker_counter_run(c, name, cur, last, ng);
	}
	/* Counters every 100 ms (`stats` right after a login shows it), the
	 * watchdog's tick every second. */
	if (++c->ticks % (1000 / PRIVSEP_COUNTERS_MS))
		return;
	m.tick = c->ticks;
	worker_send(c, &m);
}

/* A change of its session cookies: the packet process tells the other workers. */
static void worker_cookie(void *arg, const struct cookie_event *ev)
{
	static struct sepmsg m;

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_COOKIE;
	m.cookie = *ev;
	worker_send(arg, &m);
}

static unsigned worker_slot_of(void *arg, const char *name)
{
	return stats_slot(arg, name);
}

/* The policy is needed on both sides: the worker reads the files itself.
 * The packet process has said what was wrong with them. */
static void worker_reload(struct child *c)
{
	struct conf nc;
	struct diag d = { 0 };
	struct policy *np = NULL;

	if (conf_load(&nc, c->conf_path, &d) == 0)
		np = policy_load_dir(nc.daemon.groups_dir, &d);
	diag_free(&d);
	if (!np) {
		log_debug("proxy: reload: the configuration has errors, the policy stays");
		return;
	}
	policy_assign_slots(np, worker_slot_of, c->stats);
	policy_box_swap(c->box, np);
	log_setlevel(nc.daemon.log_level);
	proxy_reloaded(c->proxy, &nc);
}

static void worker_input(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct child *c = arg;
	static struct sepmsg m;
	ssize_t n;

	(void)events;
	while ((n = recv(fd, c->buf, sizeof(c->buf), MSG_DONTWAIT)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				loop_stop(l);
			return;
		}
		if (sepmsg_decode(c->buf, (size_t)n, &m) < 0)
			continue;
		if (m.type == SEPMSG_RELOAD)
			worker_reload(c);
		else if (m.type == SEPMSG_DTLS)
			session_set_dtls(proxy_session_table(c->proxy), (int)m.handle, m.info.dtls);
		else if (m.type == SEPMSG_COOKIE)
			proxy_cookie_apply(c->proxy, &m.cookie);
	}
	/* The packet process is gone: a drain goes on without it (its
	 * announcements and counters have no reader), else the proxy stops. */
	if (c->draining) {
		c->peer_gone = true;
		loop_del(l, fd);
		return;
	}
	loop_stop(l);
}

/* SIGUSR1 from the master: the packet process is stopping for a restart. */
static void worker_drain(struct child *c)
{
	struct sepmsg m = { .type = SEPMSG_DRAIN, .pid = getpid() };

	if (c->draining)
		return;
	c->draining = true;
	m.status = (int32_t)proxy_drain(c->proxy);
	worker_send(c, &m);
}

static void worker_signal(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			worker_drain(arg);
		else
			loop_stop(l);
	}
}

/* An upstream socket from the packet process: a request, and an answer
 * with the same number carrying the socket (or an errno). */
static int worker_socket(void *arg, int family)
{
	struct child *c = arg;
	uint32_t seq = ++c->seq;
	uint8_t req[5];

	memcpy(req, &seq, 4);
	req[4] = family == AF_INET6 ? 6 : 4;
	if (send(c->fdq, req, sizeof(req), MSG_NOSIGNAL) < 0)
		return -errno;
	for (;;) {
		uint8_t rep[8];
		union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
		struct iovec iov = { .iov_base = rep, .iov_len = sizeof(rep) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
				     .msg_controllen = sizeof(cb.b) };
		struct cmsghdr *cm;
		uint32_t rseq;
		int32_t rerr;
		int fd = -1;
		ssize_t n = recvmsg(c->fdq, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? (errno == EAGAIN ? -ETIMEDOUT : -errno) : -EPIPE;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
			    cm->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		memcpy(&rseq, rep, 4);
		memcpy(&rerr, rep + 4, 4);
		if (n != sizeof(rep) || rseq != seq) {
			/* An answer to a request that timed out. */
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (fd < 0)
			return rerr > 0 ? -rerr : -EPROTO;
		return fd;
	}
}

static void worker_main(struct child *c)
{
	const struct session_hooks hooks = { .added = worker_added, .removed = worker_removed,
					     .bytes = worker_bytes, .arg = c };
	const struct listen_supply supply = { worker_socket, c };
	const struct timeval tv = { .tv_sec = PRIVSEP_FD_WAIT_S };
	struct sepmsg hello = { .type = SEPMSG_HELLO, .pid = getpid() };
	pid_t master = getppid();
	char dir[sizeof(c->conf.daemon.control_socket)], err[256], *slash;
	sigset_t mask;
	int sigfd, r;

	prctl(PR_SET_NAME, "mtugated-pwork", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != master)
		_exit(0);
	/* Nothing of the other workers': a worker taken over cannot speak as
	 * another one, nor accept on its listeners. */
	for (unsigned i = 0; i < c->n; i++) {
		if (i == c->idx)
			continue;
		close(c->anns[i]);
		close(c->fdqs[i]);
		for (int f = 0; f < 2; f++)
			if (c->lfds[i][f] >= 0)
				close(c->lfds[i][f]);
	}
	c->ann = c->anns[c->idx];
	c->fdq = c->fdqs[c->idx];
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	signal(SIGHUP, SIG_IGN);
	if ((sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		_exit(1);
	setsockopt(c->fdq, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Writes only in the cookie file's folder (the control socket's). */
	snprintf(dir, sizeof(dir), "%s", c->conf.daemon.control_socket);
	if ((slash = strrchr(dir, '/')))
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if ((r = sandbox_write_only_under(dir, err, sizeof(err))) < 0) {
		log_error("proxy: Landlock: %s", err);
		_exit(PRIVSEP_EXIT_FATAL);
	}
	if (r > 0)
		log_limited(log_warnx, "proxy: this kernel has no Landlock: the proxy may write"
			    " wherever its user may");
	if ((r = sandbox_seccomp(SANDBOX_PROXY_WORKER, err, sizeof(err))) == -ENOSYS) {
		log_limited(log_warnx, "proxy: %s: the proxy runs without one", err);
	} else if (r < 0) {
		log_error("proxy: seccomp: %s", err);
		_exit(PRIVSEP_EXIT_FATAL);
	}
	if (!(c->ctr = stats_new_set(c->stats)))
		_exit(1);
	memset(&child_last, 0, sizeof(child_last));
	if (!(c->proxy = proxy_new(&c->conf, c->box, c->ctr, c->tls, c->lfds[c->idx], &supply)))
		_exit(PRIVSEP_EXIT_FATAL);
	session_table_hooks(proxy_session_table(c->proxy), &hooks);
	/* Worker 0 writes the cookies' file (the others' tables are alike) and
	 * compares the headend's certificate: once, not once per worker. */
	if (c->n > 1)
		proxy_share_cookies(c->proxy, worker_cookie, c);
	proxy_set_primary(c->proxy, c->idx == 0);
	proxy_user_key(c->proxy, c->user_key, sizeof(c->user_key));
	/* The master's copy of the policy is the one of the start. */
	if (c->respawned[c->idx])
		worker_reload(c);
	if (loop_add(proxy_loop(c->proxy), c->ann, EPOLLIN, worker_input, c) < 0 ||
	    loop_add(proxy_loop(c->proxy), sigfd, EPOLLIN, worker_signal, c) < 0 ||
	    loop_every(proxy_loop(c->proxy), PRIVSEP_COUNTERS_MS, worker_tick, c) < 0)
		_exit(1);
	worker_send(c, &hello);
	r = proxy_run(c->proxy);
	proxy_free(c->proxy);
	_exit(r < 0 ? 1 : 0);
}

/* ---- the master ---- */

/* Worker i's death, told on its own channel (after anything it sent). */
static void master_gone(struct child *c, unsigned i, pid_t pid, int status)
{
	struct sepmsg m = { .type = SEPMSG_GONE, .pid = pid, .status = status };

	c->ann = c->anns[i];
	worker_send(c, &m);
}

static pid_t master_spawn(struct child *c, unsigned i)
{
	pid_t pid;

	c->idx = i;
	if ((pid = fork()) == 0)
		worker_main(c);
	if (pid < 0)
		log_warn("proxy: fork of its worker %u", i);
	c->pid[i] = pid > 0 ? pid : 0;
	c->started[i] = now_ms();
	/* A failed fork is tried again a second later. */
	c->due[i] = pid > 0 ? 0 : c->started[i] + PRIVSEP_RESPAWN_MS;
	return pid;
}

/* Waits for one of the signals in mask, at most ms (-1: for ever). */
static int master_wait(const sigset_t *mask, long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	int s;

	do
		s = sigtimedwait(mask, NULL, ms < 0 ? NULL : &ts);
	while (s < 0 && errno == EINTR);
	return s;
}

/* Stop: the workers close their tunnels; those that take too long are killed. */
static void master_stop(struct child *c, const sigset_t *mask)
{
	uint64_t until = now_ms() + PRIVSEP_STOP_MS;
	unsigned live = 0;

	for (unsigned i = 0; i < c->n; i++)
		if (c->pid[i] > 0 && kill(c->pid[i], SIGTERM) == 0)
			live++;
	while (live) {
		uint64_t now = now_ms();
		pid_t pid;

		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			for (unsigned i = 0; i < c->n; i++)
				if (c->pid[i] == pid) {
					c->pid[i] = 0;
					live--;
				}
		if (!live)
			break;
		if (now >= until) {
			for (unsigned i = 0; i < c->n; i++)
				if (c->pid[i] > 0) {
					kill(c->pid[i], SIGKILL);
					waitpid(c->pid[i], NULL, 0);
				}
			break;
		}
		master_wait(mask, (long)(until - now));
	}
	_exit(0);
}

/* Reap the workers that ended: each is told to the packet process and
 * restarted at once, or a second after its last start when it died
 * younger (a crash at every login is not restarted in a tight loop). */
static void master_reap(struct child *c)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < c->n; i++) {
			if (c->pid[i] != pid)
				continue;
			c->pid[i] = 0;
			master_gone(c, i, pid, status);
			c->respawned[i] = true;
			if (WIFEXITED(status) && WEXITSTATUS(status) == PRIVSEP_EXIT_FATAL)
				_exit(1);
			c->due[i] = c->started[i] + PRIVSEP_RESPAWN_MS;
		}
	}
}

static bool master_any_live(const struct child *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->pid[i] > 0)
			return true;
	return false;
}

/* SIGUSR1 from the packet process (a restart): outlive it, leave the
 * listeners to the next daemon, and have the workers drain. A worker
 * between two lives is not started again; with none, nothing to keep. */
static void master_drain(struct child *c)
{
	c->draining = true;
	for (unsigned i = 0; i < c->n; i++)
		for (int f = 0; f < 2; f++) {
			if (c->lfds[i][f] >= 0)
				close(c->lfds[i][f]);
			c->lfds[i][f] = -1;
		}
	if (!master_any_live(c))
		_exit(0);
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	for (unsigned i = 0; i < c->n; i++)
		if (c->pid[i] > 0)
			kill(c->pid[i], SIGUSR1);
}

static void master_main(struct child *c)
{
	pid_t parent = getppid();
	char err[512];
	sigset_t mask;
	int r;

	prctl(PR_SET_NAME, "mtugated-proxy", 0, 0, 0);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	signal(SIGHUP, SIG_IGN);
	/* The key is read here, once: the packet process never has it. The
	 * ticket key too (the file's, or a random one made here): every worker
	 * inherits this context, so a client resumes on any of them. */
	if (!(c->tls = tls_ctx_new(&c->conf, err, sizeof(err)))) {
		log_error("proxy: %s", err);
		_exit(1);
	}
	if (getrandom(c->user_key, sizeof(c->user_key), 0) != (ssize_t)sizeof(c->user_key)) {
		log_warn("proxy: getrandom: no key for the usernames' hashes");
		_exit(1);
	}
	if (c->conf.proxy.insecure_upstream)
		log_warnx("proxy: insecure_upstream = yes: the headend's certificate is NOT verified;"
			  " anyone on the path to it can read every tunnel");
	if (caps_drop_all(c->uid, c->gid, err, sizeof(err)) < 0) {
		log_error("proxy: dropping every capability: %s", err);
		_exit(1);
	}
	/* After the drop, which resets both. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (getppid() != parent)
		_exit(1);
	if ((r = sandbox_seccomp(SANDBOX_PROXY_MASTER, err, sizeof(err))) == -ENOSYS) {
		log_warnx("proxy: %s: the proxy runs without one", err);
	} else if (r < 0) {
		log_error("proxy: seccomp: %s", err);
		_exit(1);
	}
	for (unsigned i = 0; i < c->n; i++)
		if (master_spawn(c, i) < 0)
			_exit(1);
	for (;;) {
		uint64_t now = now_ms(), next = UINT64_MAX;
		int s;

		/* Drained workers are not replaced: the new daemon has its own. */
		if (c->draining && !master_any_live(c))
			_exit(0);
		for (unsigned i = 0; i < c->n && !c->draining; i++) {
			if (c->pid[i] > 0)
				continue;
			if (c->due[i] <= now)
				master_spawn(c, i);
			if (c->pid[i] == 0 && c->due[i] < next)
				next = c->due[i];
		}
		s = master_wait(&mask, next == UINT64_MAX ? -1 : (long)(next > now ? next - now : 0));
		if (s == SIGTERM || s == SIGINT)
			master_stop(c, &mask);
		if (s == SIGUSR1 && !c->draining)
			master_drain(c);
		if (s == SIGCHLD)
			master_reap(c);
	}
}

/* ---- the packet process ---- */

static void ps_describe(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "ended");
}

/* A worker's session cookie change, to every other worker (validated and
 * encoded again: one worker never writes to another's bytes). Not waited
 * for: a worker too busy to read loses it, and its CONNECTs of that session
 * get the group by address instead. */
static void ps_relay(struct privsep *ps, unsigned from, const struct sepmsg *m)
{
	uint8_t buf[SEPMSG_MAX];
	size_t n = sepmsg_encode(m, buf, sizeof(buf));

	for (unsigned i = 0; n && i < ps->n; i++)
		if (i != from && send(ps->ann[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_limited(log_warn, "proxy: passing a session cookie on to worker %u", i);
}

static void ps_announce(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct ps_chan *ch = arg;
	struct privsep *ps = ch->ps;
	static struct sepmsg m;
	uint8_t buf[SEPMSG_MAX + 1];
	char how[96];
	ssize_t n;
	int r;

	(void)events;
	for (int i = 0; i < 256; i++) {
		if ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("proxy: reading its messages");
			return;
		}
		if (n == 0) {
			/* The master holds every worker's channel: one closes when it is gone. */
			if (!ps->failed)
				log_error("proxy: its processes are gone (its master ended): stopping,"
					  " non-zero, so that the service manager starts mtugated again"
					  " with its key");
			ps->failed = true;
			loop_del(l, fd);
			loop_stop(l);
			return;
		}
		if (sepmsg_decode(buf, (size_t)n, &m) < 0 ||
		    (r = sepstate_apply(ps->st, ch->w, &m)) < 0) {
			log_limited(log_warnx, "proxy: a malformed message (%zd bytes) refused", n);
			continue;
		}
		if (m.type == SEPMSG_SESSION_ADD && r == 1) {
			char cl[64];

			log_info("proxy %s: user %s, group %s: reconnected as predicted",
				 session_addr_str(&m.info.client, cl, sizeof(cl)),
				 m.info.user[0] ? m.info.user : "-", m.info.group);
		}
		if (m.type == SEPMSG_COOKIE)
			ps_relay(ps, ch->w, &m);
		if (m.type == SEPMSG_HELLO)
			log_info("proxy: worker process %d (worker %u of %u) started", (int)m.pid,
				 ch->w, ps->n);
		if (m.type == SEPMSG_GONE) {
			ps_describe(m.status, how, sizeof(how));
			log_warnx("proxy: worker process %d (worker %u) %s: its %d tunnel(s) are gone"
				  " (their clients reconnect; the other workers' stay); a new worker"
				  " takes over its listeners", (int)m.pid, ch->w, how, r);
		}
	}
}

/* A transparent upstream socket for the worker, which has no capability. */
static void ps_socket(struct loop *l, int fd, uint32_t events, void *arg)
{
	(void)arg;
	(void)events;
	for (int i = 0; i < 64; i++) {
		uint8_t req[8], rep[8];
		union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
		struct iovec iov = { .iov_base = rep, .iov_len = sizeof(rep) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recv(fd, req, sizeof(req), MSG_DONTWAIT);
		int32_t err = 0;
		int s = -1;

		if (n == 0) {
			loop_del(l, fd);
			return;
		}
		if (n < 0)
			return;
		if (n != 5 || (req[4] != 4 && req[4] != 6)) {
			log_limited(log_warnx, "proxy: a malformed socket request refused");
			continue;
		}
		if ((s = listen_transparent_socket(req[4] == 6 ? AF_INET6 : AF_INET)) < 0)
			err = -s;
		memcpy(rep, req, 4);
		memcpy(rep + 4, &err, 4);
		if (s >= 0) {
			struct cmsghdr *cm;

			mh.msg_control = cb.b;
			mh.msg_controllen = sizeof(cb.b);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &s, sizeof(int));
		}
		if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_limited(log_warn, "proxy: handing over an upstream socket");
		if (s >= 0)
			close(s);
	}
}

/* [proxy] workers, 0: one per online CPU. */
static unsigned ps_nworkers(const struct conf *c)
{
	long n = c->proxy.workers ? (long)c->proxy.workers : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > PRIVSEP_MAX ? PRIVSEP_MAX : (unsigned)n;
}

static void ps_close_child(struct child *c)
{
	for (unsigned i = 0; i < PRIVSEP_MAX; i++) {
		for (int f = 0; f < 2; f++)
			if (c->lfds[i][f] >= 0)
				close(c->lfds[i][f]);
		if (c->anns[i] >= 0)
			close(c->anns[i]);
		if (c->fdqs[i] >= 0)
			close(c->fdqs[i]);
	}
}

struct privsep *privsep_start(const struct privsep_args *a)
{
	struct privsep *ps = calloc(1, sizeof(*ps));
	static struct child c;

	if (!ps) {
		log_error("proxy: out of memory");
		return NULL;
	}
	c = (struct child){ .conf = *a->conf, .conf_path = a->conf_path, .stats = a->stats,
			    .box = a->box, .uid = a->uid, .gid = a->gid };
	for (unsigned i = 0; i < PRIVSEP_MAX; i++) {
		ps->ann[i] = ps->fdq[i] = c.anns[i] = c.fdqs[i] = -1;
		c.lfds[i][0] = c.lfds[i][1] = -1;
	}
	ps->box = a->box;
	ps->drain = a->conf->proxy.drain_timeout > 0;
	ps->n = c.n = ps_nworkers(a->conf);
	/* Logins in flight when the last tunnel slot goes may still become
	 * tunnels: room for their sessions too (each worker's table is as big).
	 * The limits hold per worker, as nginx's worker_connections. */
	ps->max = (size_t)a->conf->proxy.max_sessions + a->conf->proxy.login_max;
	if (!(ps->sessions = session_table_new(ps->max * ps->n))) {
		log_error("proxy: out of memory");
		goto err;
	}
	for (unsigned i = 0; i < ps->n; i++) {
		int ann[2], fdq[2];

		if (proxy_listen_open(a->conf, c.lfds[i]) < 0)
			goto err;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ann) < 0) {
			log_warn("proxy: socketpair");
			goto err;
		}
		ps->ann[i] = ann[0];
		c.anns[i] = ann[1];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fdq) < 0) {
			log_warn("proxy: socketpair");
			goto err;
		}
		ps->fdq[i] = fdq[0];
		c.fdqs[i] = fdq[1];
		ps->chan[i] = (struct ps_chan){ .ps = ps, .w = i };
	}
	fflush(NULL);
	if ((ps->master = fork()) < 0) {
		log_warn("proxy: fork");
		goto err;
	}
	if (ps->master == 0) {
		for (unsigned i = 0; i < ps->n; i++) {
			close(ps->ann[i]);
			close(ps->fdq[i]);
		}
		master_main(&c);
		_exit(1);
	}
	ps_close_child(&c);
	log_info("proxy: listening on port %u in process %d, %u worker%s, headend verified %s",
		 a->conf->proxy.listen_port, (int)ps->master, ps->n, ps->n == 1 ? "" : "s",
		 a->conf->proxy.insecure_upstream ? "NOT AT ALL" :
		 a->conf->proxy.upstream_name[0] ? "by name" : "by address");
	return ps;
err:
	ps_close_child(&c);
	for (unsigned i = 0; i < PRIVSEP_MAX; i++) {
		if (ps->ann[i] >= 0)
			close(ps->ann[i]);
		if (ps->fdq[i] >= 0)
			close(ps->fdq[i]);
	}
	session_table_free(ps->sessions);
	free(ps);
	return NULL;
}

/* The DTLS watch (main loop) decided a tunnel's DTLS: the worker's copy
 * learns it, for the tunnel's end line. */
static void ps_dtls(void *arg, int h, enum session_dtls d)
{
	struct privsep *ps = arg;
	struct sepmsg m = { .type = SEPMSG_DTLS };
	uint8_t buf[16];
	size_t n;
	unsigned w = 0;
	int ph = sepstate_proxy_handle(ps->st, h, &w);

	if (ph < 0 || ps->failed)
		return;
	m.handle = (uint32_t)ph;
	m.info.dtls = d;
	if ((n = sepmsg_encode(&m, buf, sizeof(buf))) &&
	    send(ps->ann[w], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_limited(log_warn, "proxy: telling it a tunnel's DTLS state");
}

int privsep_attach(struct privsep *ps, struct loop *l, struct counters *ctr)
{
	const struct session_hooks hooks = { .dtls = ps_dtls, .arg = ps };

	if (!(ps->st = sepstate_new(ps->sessions, ps->max, ps->n, ctr, ps->box)))
		return -1;
	session_table_hooks(ps->sessions, &hooks);
	ps->loop = l;
	for (unsigned i = 0; i < ps->n; i++)
		if (loop_add(l, ps->ann[i], EPOLLIN, ps_announce, &ps->chan[i]) < 0 ||
		    loop_add(l, ps->fdq[i], EPOLLIN, ps_socket, &ps->chan[i]) < 0)
			return -1;
	return 0;
}

struct session_table *privsep_sessions(struct privsep *ps)
{
	return ps ? ps->sessions : NULL;
}

unsigned privsep_workers(const struct privsep *ps)
{
	return ps ? ps->n : 0;
}

uint64_t privsep_progress(const struct privsep *ps, unsigned w)
{
	return ps && ps->st ? sepstate_progress(ps->st, w) : 0;
}

void privsep_reload(struct privsep *ps)
{
	const struct sepmsg m = { .type = SEPMSG_RELOAD };
	uint8_t buf[16];
	size_t n;

	if (!ps || ps->failed || !(n = sepmsg_encode(&m, buf, sizeof(buf))))
		return;
	for (unsigned i = 0; i < ps->n; i++)
		if (send(ps->ann[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_warn("proxy: telling worker %u to reload", i);
}

bool privsep_failed(const struct privsep *ps)
{
	return ps && ps->failed;
}

void privsep_set_drain(struct privsep *ps, bool drain)
{
	if (ps)
		ps->drain = drain;
}

/* Asks the proxy to drain and waits for each worker to say so (its
 * listeners are closed then, so that the next daemon can bind the port):
 * true when they drain or the proxy has ended, false when none answered
 * (then it is stopped). A worker between two lives never answers: the
 * others' answers do after PRIVSEP_DRAIN_MS. */
static bool ps_drain(struct privsep *ps)
{
	uint64_t until = now_ms() + PRIVSEP_DRAIN_MS;
	static struct sepmsg m;
	uint8_t buf[SEPMSG_MAX + 1];
	bool done[PRIVSEP_MAX] = { false };
	unsigned ndone = 0, held = 0;

	if (kill(ps->master, SIGUSR1) < 0)
		return false;
	for (uint64_t now = now_ms(); now < until && ndone < ps->n; now = now_ms()) {
		struct pollfd pfd[PRIVSEP_MAX];

		for (unsigned i = 0; i < ps->n; i++)
			pfd[i] = (struct pollfd){ .fd = done[i] ? -1 : ps->ann[i], .events = POLLIN };
		if (poll(pfd, ps->n, (int)(until - now)) <= 0)
			continue;
		for (unsigned i = 0; i < ps->n; i++) {
			ssize_t n;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if ((n = recv(ps->ann[i], buf, sizeof(buf), MSG_DONTWAIT)) < 0)
				continue;
			if (n == 0) {
				/* The master has ended: no worker to drain. */
				waitpid(ps->master, NULL, 0);
				return true;
			}
			/* The rest of what it says is of no use: this process is leaving. */
			if (sepmsg_decode(buf, (size_t)n, &m) == 0 && m.type == SEPMSG_DRAIN) {
				done[i] = true;
				ndone++;
				held += (unsigned)m.status;
			}
		}
	}
	if (!ndone) {
		log_warnx("proxy: no worker answered the drain within %d ms: stopping it",
			  PRIVSEP_DRAIN_MS);
		return false;
	}
	log_debug("stopping: proxy process %d drains %u tunnel(s) in %u worker(s)",
		  (int)ps->master, held, ndone);
	return true;
}

void privsep_free(struct privsep *ps)
{
	uint64_t until = now_ms() + PRIVSEP_STOP_MS + 1000;
	bool reaped = false;

	if (!ps)
		return;
	/* Draining: the master outlives this process and reaps its workers. */
	if (ps->drain && !ps->failed && ps->master > 0 && ps_drain(ps))
		ps->master = 0;
	/* Closed first: the worker's last announcements (every tunnel closing)
	 * fail at once rather than wait for a reader. */
	for (unsigned i = 0; i < ps->n; i++) {
		if (ps->loop && !ps->failed)
			loop_del(ps->loop, ps->ann[i]);
		if (ps->loop)
			loop_del(ps->loop, ps->fdq[i]);
		if (ps->ann[i] >= 0)
			close(ps->ann[i]);
		if (ps->fdq[i] >= 0)
			close(ps->fdq[i]);
	}
	if (ps->master > 0) {
		kill(ps->master, SIGTERM);
		while (!(reaped = waitpid(ps->master, NULL, WNOHANG) != 0) && now_ms() < until)
			usleep(20000);
		if (!reaped) {
			kill(ps->master, SIGKILL);
			waitpid(ps->master, NULL, 0);
		}
	}
	sepstate_free(ps->st);
	session_table_free(ps->sessions);
	free(ps);
}
