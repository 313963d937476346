/* mtugated: binds the NFQUEUEs, serves the control socket, reloads on SIGHUP. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/diag.h"
#include "conf/rules.h"
#include "daemon/caps.h"
#include "daemon/control.h"
#include "daemon/dtlswatch.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/nfqproc.h"
#include "daemon/notify.h"
#include "daemon/privsep.h"
#include "daemon/rulewatch.h"
#include "daemon/sandbox.h"
#include "daemon/stats.h"
#include "daemon/watch.h"
#include "daemon/worker.h"
#include "policy/policy.h"
#include "proxy/session.h"

#define MAX_WORKERS 256
/* A thread whose progress counter stood still this long is stalled (its
 * idle tick alone moves it every WORKER_TICK_MS). */
#define DAEMON_STALL_MS 5000
#define DAEMON_RULES_MS 3000	/* a look at the ruleset: a flush is seen within 6 s */

struct daemon {
	const char *conf_path;
	struct conf conf;
	struct conf rules_conf;	/* the configuration of the policy in force (its rules) */
	struct stats stats;
	struct policy_box *box;
	struct loop *loop;
	struct ctl_server *ctl;
	struct ctl_ops ops;
	struct worker *workers[MAX_WORKERS];
	size_t nworkers;
	int sigfd;
	struct privsep *proxy;	/* [proxy] enable = yes: its processes */
	struct notify *notify;	/* systemd's $NOTIFY_SOCKET, or NULL */
	bool watchdog;		/* $WATCHDOG_USEC: WATCHDOG=1 while every thread turns */
	int nfqproc;		/* the kernel's queue table (root's only: opened at start), or -errno */
	/* the packet threads, then the proxy's workers */
	struct watch watch[MAX_WORKERS + CONF_MAX_PROXY_WORKERS];
	struct rulewatch *rules;	/* are our rules still loaded? NULL: not watched */
	unsigned rules_bad;		/* consecutive looks that found them wanting */
	struct dtlswatch *dtlswatch;	/* the tunnels' DTLS: proxy and DTLS queue on */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mtugated [-c FILE] [-f] [-t] [-V]\n"
		   "  -c, --config FILE  configuration (default %s/mtugate/mtugate.conf)\n"
		   "  -f, --foreground   stay in the foreground, log to stderr\n"
		   "  -t, --test         check the configuration and group files, then exit\n"
		   "  -V, --version      print the version\n"
		   "  -h, --help         this text\n", SYSCONFDIR);
}

static unsigned daemon_slot_of(void *arg, const char *name)
{
	return stats_slot(arg, name);
}

/* Load the config and the groups it names into a policy; NULL with every
 * error in d: those of the group files too when only the config is wrong. */
static struct policy *daemon_load(const char *path, struct conf *c, struct diag *d)
{
	if (conf_load(c, path, d) < 0) {
		if (c->daemon.groups_dir[0])
			policy_free(policy_load_dir(c->daemon.groups_dir, d));
		return NULL;
	}
	return policy_load_dir(c->daemon.groups_dir, d);
}

/* Whether path cannot be opened for reading, as Landlock refuses it. */
static bool daemon_denied(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == EACCES;
}

static int daemon_reload(void *arg, struct diag *d)
{
	struct daemon *dm = arg;
	struct conf nc;
	struct policy *np = daemon_load(dm->conf_path, &nc, d);

	if (!np) {
		for (size_t i = 0; i < d->n; i++)
			log_error("reload: %s", d->msgs[i]);
		if (dm->proxy && daemon_denied(dm->conf_path))
			log_error("reload: %s is a new file (replaced by a rename, as sed -i and most"
				  " editors do) in a folder of the private key's path, which this"
				  " process may no longer read (Landlock): restart mtugated, and move"
				  " the key to a folder of its own (mtugatectl check)", dm->conf_path);
		log_error("reload failed: %zu error(s), keeping the running policy", diag_count(d));
		stats_config_loaded(&dm->stats, false);
		return -1;
	}
	policy_assign_slots(np, daemon_slot_of, &dm->stats);
	/* The kernel's rules were printed from the old configuration: say when
	 * they no longer fit (a new pool, mtu, headend, or proxy = no client). */
	struct policy *old = policy_hold(dm->box);
	int changed = rules_changed(&dm->rules_conf, old, &nc, np);

	policy_release(old);
	policy_box_swap(dm->box, np);
	stats_config_loaded(&dm->stats, true);
	if (dm->rules && rulewatch_reset(dm->rules, &nc, np, changed) < 0)
		log_warnx("rules: cannot print this configuration's rules to watch them");
	dm->rules_conf = nc;
	privsep_reload(dm->proxy);
	log_setlevel(nc.daemon.log_level);
	/* Queues, headend, proxy, socket and user are taken at start (the threads
	 * hold copies; a proxy off at start stays off): say so rather than ignore it. */
	if (!conf_proxy_same(&nc, &dm->conf))
		log_warnx("reload: [proxy] takes effect only at restart");
	if (memcmp(&nc.queues, &dm->conf.queues, sizeof(nc.queues)) ||
	    memcmp(&nc.headend, &dm->conf.headend, sizeof(nc.headend)) ||
	    strcmp(nc.daemon.control_socket, dm->conf.daemon.control_socket) ||
	    strcmp(nc.daemon.user, dm->conf.daemon.user))
		log_warnx("reload: [queues], [headend], control_socket and user take effect only at"
			  " restart");
	dm->conf.daemon.log_level = nc.daemon.log_level;
	dm->conf.proxy.drain_timeout = nc.proxy.drain_timeout;
	privsep_set_drain(dm->proxy, nc.proxy.drain_timeout > 0);
	log_info("reloaded: %zu group(s) in force", policy_count(np));
	if (changed)
		log_warnx("reload: the firewall rules this configuration needs have changed:"
			  " re-apply them (mtugatectl rules, or restart mtugate-rules.service)");
	return changed ? 1 : 0;
}

static void daemon_signal(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct daemon *dm = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			struct diag d = { 0 };

			log_info("SIGHUP: reloading %s", dm->conf_path);
			daemon_reload(dm, &d);
			diag_free(&d);
		} else {
			log_info("signal %u: stopping", si.ssi_signo);
			loop_stop(l);
		}
	}
}

static uint64_t daemon_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every thread that must turn: the packet threads, and each of the proxy's
 * workers if any. Returns the progress of thread i, false past the last one. */
static bool daemon_thread(struct daemon *dm, size_t i, uint64_t *progress, char *name, size_t len)
{
	if (i < dm->nworkers) {
		*progress = worker_progress(dm->workers[i]);
		snprintf(name, len, "queue %u: packet thread", worker_queue(dm->workers[i]));
		return true;
	}
	if (i - dm->nworkers < privsep_workers(dm->proxy)) {
		*progress = privsep_progress(dm->proxy, (unsigned)(i - dm->nworkers));
		snprintf(name, len, "proxy: worker %zu", i - dm->nworkers);
		return true;
	}
	return false;
}

static void daemon_watch_start(struct daemon *dm)
{
	uint64_t now = daemon_now_ms(), p;
	char name[48];

	for (size_t i = 0; daemon_thread(dm, i, &p, name, sizeof(name)); i++)
		watch_init(&dm->watch[i], p, now);
}

/* A stalled thread (a bug, never a busy one: packets count as progress) is
 * logged, and systemd hears no WATCHDOG=1 until it turns again, so that
 * WatchdogSec restarts mtugated; fail-open carries the traffic meanwhile. */
static void daemon_watchdog(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct daemon *dm = arg;
	uint64_t now = daemon_now_ms(), p;
	bool alive = true;
	char name[48];

	(void)l;
	(void)fd;
	(void)events;
	for (size_t i = 0; daemon_thread(dm, i, &p, name, sizeof(name)); i++) {
		switch (watch_look(&dm->watch[i], p, now, DAEMON_STALL_MS)) {
		case WATCH_STALLED:
			log_error("%s made no progress for %d s%s", name, DAEMON_STALL_MS / 1000,
				  dm->watchdog ? ": no more WATCHDOG=1 to systemd, which restarts mtugated"
						 " (fail-open carries the traffic meanwhile)" : "");
			alive = false;
			break;
		case WATCH_STILL_STALLED:
			alive = false;
			break;
		case WATCH_RESUMED:
			log_warnx("%s turns again", name);
			break;
		case WATCH_OK:
			break;
		}
	}
	if (alive && dm->watchdog && notify_send(dm->notify, "WATCHDOG=1") < 0)
		log_warn("systemd notification (WATCHDOG=1)");
}

/* Every DAEMON_RULES_MS: are our rules still in the kernel? A firewall
 * reload flushes them without a word (`systemctl reload nftables` runs flush
 * ruleset); said after two looks in a row, so a rules unit still applying
 * them at start is not a problem. */
static void daemon_rules(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct daemon *dm = arg;
	char why[192];
	enum rulewatch_res r;

	(void)l;
	(void)fd;
	(void)events;
	r = rulewatch_poll(dm->rules, why, sizeof(why));
	if (r == RULEWATCH_OK) {
		if (dm->rules_bad >= 2)
			log_info("rules: in place again");
		dm->rules_bad = 0;
		stats_rules_set(&dm->stats, 1, "");
		return;
	}
	if (++dm->rules_bad < 2)
		return;
	stats_rules_set(&dm->stats, 0, why);
	if (dm->rules_bad == 2)
		log_warnx("rules: %s%s: packets pass unclamped; re-apply them (systemctl restart"
			  " mtugate-rules, or mtugatectl rules)", r == RULEWATCH_STALE ? "stale: " :
			  r == RULEWATCH_ERROR ? "cannot tell: " : "not loaded: ", why);
}

static int daemon_kernel_queues(void *arg, struct nfqproc_row *rows, size_t max)
{
	struct daemon *dm = arg;

	return dm->nfqproc < 0 ? dm->nfqproc : nfqproc_read(dm->nfqproc, rows, max);
}

/* proxy: the control socket's arg is the daemon; the table is the copy the
 * proxy's worker keeps up to date. */
static void daemon_sessions(void *arg, struct strbuf *out)
{
	struct session_table *t = privsep_sessions(((struct daemon *)arg)->proxy);

	if (t)
		session_format(t, out);
}

static void daemon_sessions_active(void *arg, const char *const *names, size_t n,
				   uint64_t *counts)
{
	struct daemon *dm = arg;

	if (dm->proxy)
		session_count_groups(privsep_sessions(dm->proxy), names, n, counts);
}

static void daemon_dtlsread(struct loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	dtlswatch_read(((struct daemon *)arg)->dtlswatch);
}

static void daemon_dtlswatch(struct loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	dtlswatch_tick(((struct daemon *)arg)->dtlswatch);
}

static int daemon_bind_range(struct daemon *dm, enum queue_kind kind, const struct qrange *r)
{
	if (r->first < 0)
		return 0;
	for (int n = r->first; n <= r->last; n++) {
		struct worker *w;

		if (dm->nworkers == MAX_WORKERS) {
			log_error("more than %d queues", MAX_WORKERS);
			return -1;
		}
		if (!(w = worker_new(kind, (uint16_t)n, &dm->conf, &dm->stats, dm->box))) {
			/* The kernel answers EPERM both without CAP_NET_ADMIN and
			 * for a queue another program (Suricata, a second
			 * mtugated) has bound. */
			int e = errno;
			const char *why = e == EPERM && !caps_have_net() ? ": needs CAP_NET_ADMIN" :
					  e == EPERM || e == EBUSY ? ": another program has bound it;"
					  " choose other queue numbers in [queues]" : "";

			errno = e;
			log_warn("cannot bind NFQUEUE %d (%s)%s", n, worker_kind_name(kind), why);
			return -1;
		}
		dm->workers[dm->nworkers++] = w;
		log_info("queue %d bound (%s)", n, worker_kind_name(kind));
	}
	return 0;
}

/* The socket's folder, for a run by hand (systemd's RuntimeDirectory
 * otherwise): root's, group gid, 0750. Its group enters it; the daemon's
 * user cannot swap the socket inside for a symlink. Fixed through the
 * descriptor (O_NOFOLLOW), never the path; a folder the daemon's user owns
 * (made so by an older version) is taken back. */
static void daemon_mkdir_socket(const char *path, uid_t uid, gid_t gid)
{
	char tmp[sizeof(((struct conf *)0)->daemon.control_socket)];
	bool made;
	struct stat st;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s", path);
	char *dir = dirname(tmp);
	made = mkdir(dir, 0750) == 0;
	if (geteuid() != 0 || (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return;
	if (fstat(fd, &st) == 0 && (made || (uid != (uid_t)-1 && uid != 0 && st.st_uid == uid)) &&
	    (fchown(fd, 0, gid) < 0 || fchmod(fd, 0750) < 0))
		log_warn("%s: root:%d 0750", dir, (int)gid);
	close(fd);
}

/* $NOTIFY_SOCKET is connected now, as root; the watch runs with or without
 * systemd's watchdog (a stall is logged either way), every second, or at
 * half of WatchdogSec when that is shorter. */
static int daemon_notify_setup(struct daemon *dm)
{
	uint64_t usec = 0, period = 1000;
	int r;

	if (!(dm->notify = notify_open(getenv("NOTIFY_SOCKET"))) && errno)
		log_warn("NOTIFY_SOCKET %s: no notifications to systemd", getenv("NOTIFY_SOCKET"));
	r = notify_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid(), &usec);
	if (r < 0)
		log_warnx("WATCHDOG_USEC '%s' is not a number of microseconds: no watchdog",
			  getenv("WATCHDOG_USEC"));
	dm->watchdog = r > 0 && dm->notify;
	if (dm->watchdog && usec / 2000 < period)
		period = usec / 2000 > 100 ? usec / 2000 : 100;
	if ((r = loop_every(dm->loop, (unsigned)period, daemon_watchdog, dm)) < 0) {
		errno = -r;
		log_warn("watchdog timer");
		return -1;
	}
	return 0;
}

/* Whether the configuration sits in a folder on the key's path, whose new
 * files Landlock will hide from this process too. */
static bool daemon_key_beside(const struct daemon *dm)
{
	char key[PATH_MAX], conf[PATH_MAX];

	return realpath(dm->conf.proxy.private_key, key) && realpath(dm->conf_path, conf) &&
	       sandbox_rename_hidden(key, conf);
}

/* The proxy's master holds the headend's key; this process, which the
 * packet paths run in, cannot open the file from here on (Landlock, before
 * any thread starts: threads inherit it). */
static void daemon_hide_key(struct daemon *dm)
{
	char err[256];
	bool beside = daemon_key_beside(dm);
	int r = sandbox_hide_file(dm->conf.proxy.private_key, err, sizeof(err));

	if (r > 0)
		log_warnx("proxy: this kernel has no Landlock: the packet process could still open"
			  " the private key %s", dm->conf.proxy.private_key);
	else if (r < 0)
		log_warnx("proxy: Landlock: %s: the packet process could still open the private key",
			  err);
	else
		log_info("proxy: the packet process cannot open %s (Landlock ABI %d)",
			 dm->conf.proxy.private_key, sandbox_landlock_abi());
	if (r == 0 && beside)
		log_warnx("proxy: the private key %s lies on the way to %s: an edit of it by rename"
			  " (sed -i, most editors) will need a restart, not a reload; move the key"
			  " to a folder of its own", dm->conf.proxy.private_key, dm->conf_path);
}

static int daemon_run(struct daemon *dm)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	bool root = geteuid() == 0;
	sigset_t mask;
	char err[256];
	int ret = 1;

	/* The proxy holds the headend's private key, session cookies and, in
	 * the login exchange, passwords: no core dump, no ptrace by the same
	 * user, /proc/PID/mem and environ root's. (A drop of privileges sets
	 * this anyway; a start as the user, as the unit does, would not.) */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("PR_SET_DUMPABLE");
	if (dm->conf.daemon.user[0]) {
		if (caps_lookup_user(dm->conf.daemon.user, &uid, &gid) < 0) {
			log_error("%s: [daemon] user '%s' does not exist", dm->conf_path,
				  dm->conf.daemon.user);
			return 1;
		}
	}
	/* Each proxied tunnel holds two sockets: take the whole hard limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!root && !caps_have_net()) {
		log_error("needs root, or CAP_NET_ADMIN and CAP_NET_RAW, to bind NFQUEUEs");
		return 1;
	}
	/* proxy: its processes are forked first, with nothing to inherit but
	 * the listeners (opened here, IP_TRANSPARENT needs CAP_NET_ADMIN) and
	 * the socketpairs; they load the key, this process never does. */
	if (dm->conf.proxy.enable) {
		const struct privsep_args pa = { .conf = &dm->conf, .conf_path = dm->conf_path,
						 .stats = &dm->stats, .box = dm->box,
						 .uid = root ? uid : (uid_t)-1, .gid = gid };

		if (!(dm->proxy = privsep_start(&pa)))
			return 1;
	}

	/* Signals are read from a signalfd on the main loop, never delivered to threads. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((dm->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		fatal("signalfd");
	if (!(dm->loop = loop_new()))
		fatal("loop");
	loop_add(dm->loop, dm->sigfd, EPOLLIN, daemon_signal, dm);
	if (dm->proxy) {
		struct counters *pc = stats_new_set(&dm->stats);

		if (!pc || privsep_attach(dm->proxy, dm->loop, pc) < 0) {
			log_error("proxy: cannot follow its processes");
			goto out;
		}
	}
	if (daemon_notify_setup(dm) < 0)
		goto out;

	if (daemon_bind_range(dm, QUEUE_MSS, &dm->conf.queues.mss) < 0 ||
	    daemon_bind_range(dm, QUEUE_PMTU, &dm->conf.queues.pmtu) < 0 ||
	    daemon_bind_range(dm, QUEUE_DTLS, &dm->conf.queues.dtls) < 0)
		goto out;

	/* Stats show each queue's backlog from here; the file is root's only. */
	if ((dm->nfqproc = nfqproc_open(NFQPROC_PATH)) < 0)
		log_info("%s: %s: stats leave out the kernel's backlog and drops (the file is"
			 " root's: a daemon started as root reads it, then drops to its user; the"
			 " shipped unit starts it unprivileged)", NFQPROC_PATH, strerror(-dm->nfqproc));
	dm->ops = (struct ctl_ops){ .stats = &dm->stats, .box = dm->box,
				    .reload = daemon_reload, .sessions = daemon_sessions,
				    .sessions_active = daemon_sessions_active,
				    .kernel_queues = daemon_kernel_queues, .arg = dm };
	daemon_mkdir_socket(dm->conf.daemon.control_socket, uid, gid);
	if (!(dm->ctl = ctl_server_new(dm->loop, dm->conf.daemon.control_socket, gid, &dm->ops))) {
		log_warn("control socket %s", dm->conf.daemon.control_socket);
		goto out;
	}

	{
		struct policy *pol = policy_hold(dm->box);

		if (!(dm->rules = rulewatch_new(&dm->conf, pol)))
			log_warn("rules: cannot watch the ruleset");
		else if (loop_every(dm->loop, DAEMON_RULES_MS, daemon_rules, dm) < 0)
			log_warn("rules: no timer to watch the ruleset");
		policy_release(pol);
	}

	for (size_t i = 0; dm->proxy && i < dm->nworkers; i++)
		worker_set_sessions(dm->workers[i], privsep_sessions(dm->proxy));
	/* Without the DTLS queue no hello names a flow: DTLS stays "offered".
	 * The table is the one the packet paths read (with the proxy in a
	 * process of its own: the packet process's copy, proxy/sepstate.h). */
	if (dm->proxy && dm->conf.queues.dtls.first >= 0) {
		uint16_t group = (uint16_t)dm->conf.queues.dtls.first;

		if (!(dm->dtlswatch = dtlswatch_new(&dm->stats, dm->box, privsep_sessions(dm->proxy),
						    group)))
			log_warn("sessions: NFLOG group %u: DTLS stays \"offered\" in sessions, none"
				 " fails, no reconnect is predicted", group);
		else if (loop_add(dm->loop, dtlswatch_fd(dm->dtlswatch), EPOLLIN, daemon_dtlsread,
				  dm) < 0 || loop_every(dm->loop, 1000, daemon_dtlswatch, dm) < 0)
			log_warnx("sessions: no watch of their DTLS");
	}
	if (dm->proxy)
		daemon_hide_key(dm);

	if (root && uid != (uid_t)-1 && uid != 0) {
		if (caps_drop(uid, gid, err, sizeof(err)) < 0) {
			log_error("cannot drop to user '%s' keeping CAP_NET_ADMIN and CAP_NET_RAW: %s",
				  dm->conf.daemon.user, err);
			goto out;
		}
		log_info("running as %s with CAP_NET_ADMIN and CAP_NET_RAW only",
			 dm->conf.daemon.user);
	} else if (root) {
		log_warnx("[daemon] user is empty: running as root");
	}

	for (size_t i = 0; i < dm->nworkers; i++) {
		int r = worker_start(dm->workers[i]);

		if (r < 0) {
			errno = -r;
			log_warn("starting a packet thread");
			goto out;
		}
	}
	log_info("started: %zu queue(s), control socket %s", dm->nworkers,
		 dm->conf.daemon.control_socket);
	daemon_watch_start(dm);
	{
		char msg[128];

		struct policy *pol = policy_hold(dm->box);

		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%zu queue(s), %zu group(s)", dm->nworkers,
			 policy_count(pol));
		policy_release(pol);
		if (notify_send(dm->notify, msg) < 0)
			log_warn("systemd notification (READY=1)");
	}
	if (loop_run(dm->loop) < 0)
		log_warn("main loop");
	else
		ret = privsep_failed(dm->proxy) ? 1 : 0;
	notify_send(dm->notify, "STOPPING=1");
out:
	rulewatch_free(dm->rules);
	for (size_t i = 0; i < dm->nworkers; i++)
		worker_free(dm->workers[i]);	/* stops the thread, unbinds the queue */
	dm->nworkers = 0;
	/* Only a stop by signal drains; an error stops the proxy with the rest. */
	if (ret != 0)
		privsep_set_drain(dm->proxy, false);
	privsep_free(dm->proxy);	/* closes the tunnels with a reason, or drains */
	if (dm->dtlswatch)
		loop_del(dm->loop, dtlswatch_fd(dm->dtlswatch));
	dtlswatch_free(dm->dtlswatch);
	dm->dtlswatch = NULL;
	dm->proxy = NULL;
	ctl_server_free(dm->ctl);
	loop_free(dm->loop);
	close(dm->sigfd);
	notify_close(dm->notify);
	dm->notify = NULL;
	if (dm->nfqproc >= 0)
		close(dm->nfqproc);
	dm->nfqproc = -1;
	if (ret == 0)
		log_info("stopped");
	return ret;
}

int main(int argc, char **argv)
{
	struct daemon dm = { .conf_path = SYSCONFDIR "/mtugate/mtugate.conf", .sigfd = -1,
			     .nfqproc = -EBADF };
	bool foreground = false, test = false;
	struct diag d = { 0 };
	struct policy *pol;
	int opt, ret;

	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "c:ftVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': dm.conf_path = optarg; break;
		case 'f': foreground = true; break;
		case 't': test = true; break;
		case 'V': printf("mtugated %s\n", MTUGATE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	pol = daemon_load(dm.conf_path, &dm.conf, &d);
	if (test && pol && dm.conf.daemon.user[0]) {
		uid_t uid;
		gid_t gid;

		/* A start would refuse it: so does the check (nginx -t does the same). */
		if (caps_lookup_user(dm.conf.daemon.user, &uid, &gid) < 0) {
			diag_add(&d, dm.conf_path, 0, "[daemon] user '%s' does not exist",
				 dm.conf.daemon.user);
			policy_free(pol);
			pol = NULL;
		}
	}
	if (test) {
		diag_print(&d, stderr);
		if (pol)
			printf("configuration OK\n");
		policy_free(pol);
		diag_free(&d);
		return pol ? 0 : 1;
	}
	log_init(foreground, pol ? (int)dm.conf.daemon.log_level : LOG_LEVEL_INFO);
	if (!pol) {
		for (size_t i = 0; i < d.n; i++)
			log_error("%s", d.msgs[i]);
		diag_free(&d);
		return 1;
	}
	diag_free(&d);
	stats_init(&dm.stats);
	policy_assign_slots(pol, daemon_slot_of, &dm.stats);
	dm.rules_conf = dm.conf;
	dm.box = policy_box_new(pol);
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	ret = daemon_run(&dm);
	policy_box_free(dm.box);
	stats_destroy(&dm.stats);
	return ret;
}
