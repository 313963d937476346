/* The control protocol (exact replies for every command) and the server over a
 * real unix socket: many clients, pipelining, garbage, overlong lines, a client
 * that never reads, eviction when full, stale socket files. */
#define CTL_IDLE_S 2
#define CTL_MAX_CLIENTS 8
#include <sys/socket.h>
static int bind_and_plant(int fd, const struct sockaddr *sa, socklen_t len);
#define bind(fd, sa, len) bind_and_plant(fd, sa, len)
#include "daemon/control.c"
#undef bind

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>

#include "tests/unit/t.h"

struct fixture {
	struct stats st;
	struct policy_box *box;
	struct ctl_ops ops;
	int reloads;
	bool reload_fails;
	bool rules_change;	/* the reload reports rules to re-apply */
};

/* Wins the race that whoever owns the socket's folder can run: right after
 * the bind, the socket file is swapped for a symlink to plant_target. */
static const char *plant_target;

static int bind_and_plant(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	int r = bind(fd, sa, len);

	if (r == 0 && plant_target && sa->sa_family == AF_UNIX &&
	    (unlink(sun->sun_path) < 0 || symlink(plant_target, sun->sun_path) < 0))
		abort();
	return r;
}

static void add_prefix(struct prefix **v, size_t *n, const char *s)
{
	*v = realloc(*v, (*n + 1) * sizeof(**v));
	if (!*v || prefix_parse(&(*v)[*n], s) < 0)
		abort();
	(*n)++;
}

static unsigned slot_of(void *arg, const char *name)
{
	return stats_slot(arg, name);
}

static int fake_reload(void *arg, struct diag *d)
{
	struct fixture *f = arg;

	f->reloads++;
	if (!f->reload_fails)
		return f->rules_change ? 1 : 0;
	diag_add(d, "groups.d/a.conf", 3, "unknown key 'mtuu' (did you mean 'mtu'?)");
	diag_add(d, "groups.d/b.conf", 4, "pool 192.0.2.0/24 is also claimed by 'a'\twith a tab");
	return -1;
}

static void fake_sessions(void *arg, struct strbuf *out)
{
	(void)arg;
	strbuf_printf(out, "session\tclient=198.18.1.10 group=alpha addr=192.0.2.130\n");
}

/* Live tunnels: 2 in alpha, none in beta (or any other). */
static void fake_active(void *arg, const char *const *names, size_t n, uint64_t *counts)
{
	(void)arg;
	for (size_t i = 0; i < n; i++)
		counts[i] = strcmp(names[i], "alpha") ? 0 : 2;
}

static void fixture_init(struct fixture *f)
{
	struct group *g = calloc(2, sizeof(*g));
	struct counters *a, *b, *px;
	struct diag d = { 0 };
	struct policy *p;

	memset(f, 0, sizeof(*f));
	stats_init(&f->st);
	strcpy(g[0].name, "alpha");
	strcpy(g[0].auth_group, "alpha-auth");
	strcpy(g[0].file, "groups.d/alpha.conf");
	add_prefix(&g[0].pools, &g[0].npools, "192.0.2.128/26");
	add_prefix(&g[0].pools, &g[0].npools, "2001:db8:0:80::/64");
	add_prefix(&g[0].clients, &g[0].nclients, "198.18.1.0/24");
	g[0].mtu = 1380;
	g[0].dtls = DTLS_BLOCK;
	g[0].dtls_block = DTLS_BLOCK_REJECT;
	g[0].mss_mode = MSS_AUTO;
	g[0].pmtu = true;
	g[0].pmtu_rate = 100;
	g[0].proxy_bypass = true;
	strcpy(g[1].name, "beta");
	strcpy(g[1].auth_group, "beta");
	strcpy(g[1].file, "groups.d/beta.conf");
	add_prefix(&g[1].pools, &g[1].npools, "192.0.2.192/26");
	g[1].mtu = 1200;
	g[1].dtls = DTLS_RELAY;
	g[1].mss_mode = MSS_FIXED;
	g[1].mss = 1100;
	g[1].pmtu_rate = 10;
	p = policy_compile(g, 2, &d);
	if (!p) {
		diag_print(&d, stderr);
		abort();
	}
	/* beta first: slots follow the registry, not the policy order. */
	stats_slot(&f->st, "beta");
	policy_assign_slots(p, slot_of, &f->st);
	f->box = policy_box_new(p);
	/* Queue 3 is bound before queue 0: the reply lists queues by number. The
	 * proxy's set counts in the totals but is no queue. */
	a = stats_new_queue_set(&f->st, 3, "pmtu");
	b = stats_new_queue_set(&f->st, 0, "mss");
	stats_set_portid(&f->st, b, 4242);	/* queue 3's stays 0: not bound yet */
	px = stats_new_set(&f->st);
	ctr_add(&a->seen, 10);
	ctr_add(&b->seen, 5);
	ctr_add(&a->accepted, 14);
	ctr_add(&a->rewritten, 2);
	ctr_add(&b->malformed, 1);
	ctr_add(&b->queue_batches, 4);
	ctr_add(&px->verdict_errors, 8);
	ctr_add(&a->g[stats_slot(&f->st, "alpha")].mss_rewritten, 7);
	ctr_add(&b->g[stats_slot(&f->st, "alpha")].mss_rewritten, 2);
	ctr_add(&b->g[stats_slot(&f->st, "beta")].dtls_relayed, 3);
	ctr_add(&px->g[stats_slot(&f->st, "alpha")].connect_rewritten, 6);
	f->ops = (struct ctl_ops){ .stats = &f->st, .box = f->box, .reload = fake_reload,
				   .sessions = fake_sessions, .arg = f };
}

static char *handle(const struct ctl_ops *ops, const char *line, size_t len)
{
	static struct strbuf out;

	strbuf_reset(&out);
	ctl_handle(ops, line, len, &out);
	return out.buf ? out.buf : "";
}

#define H(ops, s) handle((ops), (s), strlen(s))

static void test_commands(struct fixture *f)
{
	struct ctl_ops bare = { 0 };
	const char *r;
	char big[1100];

	r = H(&f->ops, "stats\n");
	CHECK(strncmp(r, "uptime_s\t0\n", 11) == 0 || strncmp(r, "uptime_s\t1\n", 11) == 0);
	r = strchr(r, '\n') + 1;
	/* The version, and the configuration load (the fixture's stats_init counts as one). */
	CHECK(strncmp(r, "version\t" MTUGATE_VERSION "\nconfig_last_reload_successful\t1\n"
		      "config_loaded_s\t1", 50) == 0);
	for (int i = 0; i < 3; i++)
		r = strchr(r, '\n') + 1;
	CHECK_STR(r,
		  "packets.seen\t15\npackets.accepted\t14\npackets.rewritten\t2\npackets.dropped\t0\n"
		  "packets.malformed\t1\npackets.nogroup\t0\npackets.queue_batches\t4\n"
		  "packets.verdict_errors\t8\npackets.lookups_limited\t0\n"
		  "proxy.not_diverted\t0\nproxy.local_source\t0\nproxy.login_evicted\t0\n"
		  "proxy.login_deadline\t0\nproxy.tunnels_full\t0\n"
		  "proxy_tls.handshakes\t0\nproxy_tls.resumed\t0\n"
		  "proxy_tls.upstream_cert_requested\t0\n"
		  "queue.0.kind\tmss\nqueue.0.portid\t4242\nqueue.0.seen\t5\nqueue.0.accepted\t0\nqueue.0.rewritten\t0\n"
		  "queue.0.dropped\t0\nqueue.0.malformed\t1\nqueue.0.nogroup\t0\n"
		  "queue.0.queue_batches\t4\nqueue.0.verdict_errors\t0\nqueue.0.lookups_limited\t0\n"
		  "queue.3.kind\tpmtu\nqueue.3.portid\t0\nqueue.3.seen\t10\nqueue.3.accepted\t14\nqueue.3.rewritten\t2\n"
		  "queue.3.dropped\t0\nqueue.3.malformed\t0\nqueue.3.nogroup\t0\n"
		  "queue.3.queue_batches\t0\nqueue.3.verdict_errors\t0\nqueue.3.lookups_limited\t0\n"
		  "group.alpha.packets\t0\ngroup.alpha.mss_rewritten\t9\ngroup.alpha.mss_inserted\t0\n"
		  "group.alpha.mss_unchanged\t0\ngroup.alpha.pmtu_sent\t0\ngroup.alpha.pmtu_suppressed\t0\n"
		  "group.alpha.dtls_relayed\t0\ngroup.alpha.dtls_blocked\t0\n"
		  "group.alpha.dtls_port_rewritten\t0\ngroup.alpha.dtls_repaired\t0\n"
		  "group.alpha.connect_rewritten\t6\n"
		  "group.alpha.sessions\t0\ngroup.alpha.upstream_resumed\t0\n"
		  "group.alpha.tls_rekeys\t0\ngroup.alpha.tls_rekeys_refused\t0\n"
		  "group.alpha.upstream_cert_requested\t0\n"
		  "group.alpha.reconnects\t0\ngroup.alpha.dtls_established\t0\ngroup.alpha.dtls_failed\t0\n"
		  "group.alpha.reconnects_predicted\t0\ngroup.alpha.reconnects_as_predicted\t0\n"
		  "group.alpha.would_mss_rewrite\t0\ngroup.alpha.would_mss_insert\t0\n"
		  "group.alpha.would_pmtu_send\t0\n"
		  "group.alpha.would_dtls_block\t0\ngroup.alpha.would_dtls_port_fix\t0\n"
		  "group.alpha.would_dtls_repair\t0\ngroup.alpha.would_connect_rewrite\t0\n"
		  "group.alpha.sessions_active\t0\n"
		  "group.beta.packets\t0\ngroup.beta.mss_rewritten\t0\ngroup.beta.mss_inserted\t0\n"
		  "group.beta.mss_unchanged\t0\ngroup.beta.pmtu_sent\t0\ngroup.beta.pmtu_suppressed\t0\n"
		  "group.beta.dtls_relayed\t3\ngroup.beta.dtls_blocked\t0\n"
		  "group.beta.dtls_port_rewritten\t0\ngroup.beta.dtls_repaired\t0\n"
		  "group.beta.connect_rewritten\t0\n"
		  "group.beta.sessions\t0\ngroup.beta.upstream_resumed\t0\n"
		  "group.beta.tls_rekeys\t0\ngroup.beta.tls_rekeys_refused\t0\n"
		  "group.beta.upstream_cert_requested\t0\n"
		  "group.beta.reconnects\t0\ngroup.beta.dtls_established\t0\ngroup.beta.dtls_failed\t0\n"
		  "group.beta.reconnects_predicted\t0\ngroup.beta.reconnects_as_predicted\t0\n"
		  "group.beta.would_mss_rewrite\t0\ngroup.beta.would_mss_insert\t0\n"
		  "group.beta.would_pmtu_send\t0\n"
		  "group.beta.would_dtls_block\t0\ngroup.beta.would_dtls_port_fix\t0\n"
		  "group.beta.would_dtls_repair\t0\ngroup.beta.would_connect_rewrite\t0\n"
		  "group.beta.sessions_active\t0\n\n");
	CHECK_STR(H(&f->ops, "groups"),
		  "group.alpha.name\talpha\ngroup.alpha.auth_group\talpha-auth\n"
		  "group.alpha.file\tgroups.d/alpha.conf\n"
		  "group.alpha.pools\t192.0.2.128/26,2001:db8:0:80::/64\n"
		  "group.alpha.clients\t198.18.1.0/24\ngroup.alpha.mtu\t1380\ngroup.alpha.mss\tauto\n"
		  "group.alpha.mss_v4\t1340\ngroup.alpha.mss_v6\t1320\ngroup.alpha.dtls\tblock\n"
		  "group.alpha.dtls_block\treject\ngroup.alpha.pmtu\tyes\ngroup.alpha.pmtu_rate\t100\n"
		  "group.alpha.proxy\tno\ngroup.alpha.mode\tenforce\n"
		  "group.beta.name\tbeta\ngroup.beta.auth_group\tbeta\n"
		  "group.beta.file\tgroups.d/beta.conf\ngroup.beta.pools\t192.0.2.192/26\n"
		  "group.beta.clients\t\ngroup.beta.mtu\t1200\ngroup.beta.mss\t1100\n"
		  "group.beta.mss_v4\t1100\ngroup.beta.mss_v6\t1100\ngroup.beta.dtls\trelay\n"
		  "group.beta.dtls_block\tdrop\ngroup.beta.pmtu\tno\ngroup.beta.pmtu_rate\t10\n"
		  "group.beta.proxy\tyes\ngroup.beta.mode\tenforce\n\n");
	CHECK_STR(H(&f->ops, "sessions\n"),
		  "session\tclient=198.18.1.10 group=alpha addr=192.0.2.130\n\n");
	CHECK_STR(H(&bare, "sessions\n"), "\n");
	CHECK_STR(H(&bare, "stats\n"), "\n");
	CHECK_STR(H(&f->ops, "ping\r\n"), "pong\t1\n\n");
	CHECK_STR(H(&f->ops, "  ping  "), "pong\t1\n\n");
	CHECK_STR(H(&f->ops, "version\n"), "version\t" MTUGATE_VERSION "\n\n");
	CHECK_STR(H(&f->ops, "frobnicate\n"), "error=EINVAL\tunknown command 'frobnicate'\n\n");
	CHECK_STR(H(&f->ops, "stats --json\n"), "error=EINVAL\t'stats' takes no argument\n\n");
	CHECK_STR(H(&f->ops, "\n"), "error=EINVAL\tempty request\n\n");
	CHECK_STR(handle(&f->ops, "a\tb\x01\xff\n", 6), "error=EINVAL\tunknown command 'a'\n\n");
	CHECK_STR(handle(&f->ops, "x\x01\xff\x1b[2J", 7), "error=EINVAL\tunknown command 'x???[2J'\n\n");
	memset(big, 'A', sizeof(big));
	CHECK_STR(handle(&f->ops, big, 1025), "error=EINVAL\trequest longer than 1024 bytes\n\n");
	r = handle(&f->ops, big, 1024);
	CHECK(strncmp(r, "error=EINVAL\tunknown command 'AAAA", 34) == 0);
	CHECK(strstr(r, "...'\n\n") != NULL);

	f->reload_fails = false;
	CHECK_STR(H(&f->ops, "reload\n"), "result\tok\n\n");
	f->rules_change = true;
	CHECK_STR(H(&f->ops, "reload\n"), "result\tok\nrules\tchanged\n\n");
	f->rules_change = false;
	f->reload_fails = true;
	CHECK_STR(H(&f->ops, "reload\n"),
		  "error\tgroups.d/a.conf:3: unknown key 'mtuu' (did you mean 'mtu'?)\n"
		  "error\tgroups.d/b.conf:4: pool 192.0.2.0/24 is also claimed by 'a'?with a tab\n\n");
	CHECK_INT(f->reloads, 3);
	CHECK_STR(H(&bare, "reload\n"), "error=EOPNOTSUPP\treload is not available\n\n");
}

/* The server side, with the loop on its own thread as in the daemon. */
static void *run_loop(void *arg)
{
	loop_run(arg);
	return NULL;
}

static int client(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Read n complete replies (each ends with an empty line); NULL on timeout. */
static char *replies(int fd, int n)
{
	static char buf[1 << 16];
	size_t len = 0;
	int seen = 0;

	while (seen < n && len < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (r <= 0)
			return NULL;
		for (ssize_t i = 0; i < r; i++) {
			size_t at = len + (size_t)i;

			if (buf[at] == '\n' && (at == 0 || buf[at - 1] == '\n'))
				seen++;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	return buf;
}

/* 0 when the server closed the connection (EOF or reset) within the timeout. */
static int closed_by_server(int fd)
{
	char buf[4096];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		;
	return r == 0 || errno == ECONNRESET ? 0 : -1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The kernel's side of each queue (/proc/net/netfilter/nfnetlink_queue),
 * through the op: rows for queues 3 and 9 (9 is not ours), none for 0. */
static int fake_kernel_queues(void *arg, struct nfqproc_row *rows, size_t max)
{
	static const char proc[] = "    3  12345    17 2 65535     4     5   123456  1\n"
				   "    9      7     1 2 65535     0     0        9  1\n";

	(void)arg;
	return (int)nfqproc_parse(proc, sizeof(proc) - 1, rows, max);
}

static int failing_kernel_queues(void *arg, struct nfqproc_row *rows, size_t max)
{
	(void)arg;
	(void)rows;
	(void)max;
	return -ENOENT;
}

static void test_kernel_queues(struct fixture *f)
{
	struct ctl_ops ops = f->ops;
	const char *r;

	ops.kernel_queues = fake_kernel_queues;
	r = H(&ops, "stats\n");
	CHECK(strstr(r, "queue.3.lookups_limited\t0\nqueue.3.backlog\t17\nqueue.3.kernel_dropped\t4\n"
			"queue.3.user_dropped\t5\ngroup.alpha.") != NULL);
	CHECK(strstr(r, "queue.0.backlog") == NULL);	/* no row for it: left out */
	CHECK(strstr(r, "queue.9.") == NULL);		/* not one of ours */
	ops.kernel_queues = failing_kernel_queues;
	r = H(&ops, "stats\n");
	CHECK(strstr(r, "backlog") == NULL);
	CHECK(strstr(r, "queue.3.lookups_limited\t0\ngroup.alpha.") != NULL);
}

/* The gauge of live tunnels per group comes from the sessions' owner, after
 * the group's counters; without one every group shows 0. */
static void test_sessions_active(struct fixture *f)
{
	struct ctl_ops ops = f->ops;
	const char *r;

	ops.sessions_active = fake_active;
	r = H(&ops, "stats\n");
	CHECK(strstr(r, "group.alpha.would_connect_rewrite\t0\ngroup.alpha.sessions_active\t2\n"
			"group.beta.packets") != NULL);
	CHECK(strstr(r, "group.beta.sessions_active\t0\n") != NULL);
	r = H(&f->ops, "stats\n");
	CHECK(strstr(r, "group.alpha.sessions_active\t0\n") != NULL);
}

static void test_server(struct fixture *f)
{
	char dir[] = "/tmp/test_ctl.XXXXXX", path[128];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_server *s, *s2;
	struct loop *l = loop_new();
	pthread_t th;
	struct stat st;
	int fds[CTL_MAX_CLIENTS + 4], fd, i, stale;
	char *r, junk[4096];
	double t0;

	if (!mkdtemp(dir) || !l)
		abort();
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);

	/* A stale socket file (nobody listening) is replaced. */
	strcpy(sun.sun_path, path);
	stale = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_INT(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(stale);
	s = ctl_server_new(l, path, getgid(), &f->ops);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0660);
	CHECK(S_ISSOCK(st.st_mode));
	/* A live one is not. */
	s2 = ctl_server_new(l, path, (gid_t)-1, &f->ops);
	CHECK(s2 == NULL && errno == EADDRINUSE);
	/* Nor is a file that is no socket. */
	{
		char other[160];
		FILE *fp;

		snprintf(other, sizeof(other), "%s/plain", dir);
		fp = fopen(other, "w");
		if (fp)
			fclose(fp);
		CHECK(ctl_server_new(l, other, (gid_t)-1, &f->ops) == NULL && errno == EEXIST);
		unlink(other);
	}
	pthread_create(&th, NULL, run_loop, l);

	/* Several clients at once, each with a pipelined pair of requests. */
	for (i = 0; i < 6; i++) {
		fds[i] = client(path);
		CHECK(fds[i] >= 0);
	}
	for (i = 0; i < 6; i++)
		send_all(fds[i], "ping\nversion\n", 13);
	for (i = 0; i < 6; i++) {
		r = replies(fds[i], 2);
		CHECK_STR(r, "pong\t1\n\nversion\t" MTUGATE_VERSION "\n\n");
		close(fds[i]);
	}

	/* Half-close without a final newline still gets its reply, then EOF. */
	fd = client(path);
	send_all(fd, "ping", 4);
	shutdown(fd, SHUT_WR);
	CHECK_STR(replies(fd, 1), "pong\t1\n\n");
	CHECK_INT(closed_by_server(fd), 0);
	close(fd);

	/* An overlong request: one error, then the connection is closed. */
	fd = client(path);
	memset(junk, 'x', sizeof(junk));
	send_all(fd, junk, 2000);
	CHECK_STR(replies(fd, 1), "error=EINVAL\trequest longer than 1024 bytes\n\n");
	CHECK_INT(closed_by_server(fd), 0);
	close(fd);

	/* Garbage lines: dropped after CTL_MAX_ERRORS errors. */
	fd = client(path);
	for (i = 0; i < 50; i++)
		send_all(fd, "\x01\x02garbage\n", 10);
	r = replies(fd, CTL_MAX_ERRORS);
	CHECK(r && strstr(r, "unknown command '??garbage'") != NULL);
	CHECK_INT(closed_by_server(fd), 0);
	close(fd);

	/* A client that floods requests and never reads does not hold up others,
	 * and is dropped once idle. */
	fd = client(path);
	{
		int fl = fcntl(fd, F_GETFL);
		long sent = 0;

		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		for (i = 0; i < 200000; i++) {
			ssize_t n = send(fd, "stats\n", 6, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			sent += n;
		}
		fcntl(fd, F_SETFL, fl);
		CHECK(sent > 0);
	}
	t0 = now_s();
	fds[0] = client(path);
	send_all(fds[0], "ping\n", 5);
	CHECK_STR(replies(fds[0], 1), "pong\t1\n\n");
	CHECK(now_s() - t0 < 1.0);
	close(fds[0]);
	/* Dropped after CTL_IDLE_S without progress: the unread data is discarded. */
	t0 = now_s();
	{
		int rcvbuf = 4096;
		struct timeval tv = { 10, 0 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	sleep(CTL_IDLE_S + 2);	/* not polling: the point is that we do not read */
	CHECK_INT(closed_by_server(fd), 0);
	CHECK(now_s() - t0 < CTL_IDLE_S + 8);
	close(fd);

	/* Full: half-open clients are evicted, oldest first, for a new one. */
	for (i = 0; i < CTL_MAX_CLIENTS + 2; i++)
		fds[i] = client(path);
	fd = client(path);
	send_all(fd, "ping\n", 5);
	CHECK_STR(replies(fd, 1), "pong\t1\n\n");
	close(fd);
	CHECK_INT(closed_by_server(fds[0]), 0);
	for (i = 0; i < CTL_MAX_CLIENTS + 2; i++)
		close(fds[i]);

	/* reload through the socket reaches ops->reload. */
	f->reload_fails = false;
	fd = client(path);
	send_all(fd, "reload\n", 7);
	CHECK_STR(replies(fd, 1), "result\tok\n\n");
	close(fd);

	loop_stop(l);
	pthread_join(th, NULL);
	ctl_server_free(s);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	loop_free(l);
	rmdir(dir);
}

/* A symlink planted at the socket path between bind and the socket's
 * mode and group: the file it points to keeps its own, and the server
 * refuses a path that is no longer its socket. */
static void test_symlink_race(struct fixture *f)
{
	char dir[] = "/tmp/test_ctl.XXXXXX", path[128], victim[128];
	gid_t gid = geteuid() == 0 ? 4242 : getgid();
	struct loop *l = loop_new();
	struct ctl_server *s;
	struct stat before, after, st;
	int fd;

	if (!mkdtemp(dir) || !l)
		abort();
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	fd = open(victim, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 || fstat(fd, &before) < 0)
		abort();
	close(fd);
	plant_target = victim;
	s = ctl_server_new(l, path, gid, &f->ops);
	plant_target = NULL;
	CHECK(s == NULL);
	CHECK_INT(stat(victim, &after), 0);
	CHECK_INT(after.st_mode & 07777, 0600);
	CHECK_INT(after.st_gid, before.st_gid);
	CHECK_INT(after.st_uid, before.st_uid);
	/* Without the swap the socket gets its mode and group from the bind itself. */
	s = ctl_server_new(l, path, gid, &f->ops);
	CHECK(s != NULL);
	CHECK_INT(lstat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_INT(st.st_mode & 07777, 0660);
	CHECK_INT(st.st_gid, gid);
	ctl_server_free(s);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	unlink(victim);
	loop_free(l);
	rmdir(dir);
}

int main(void)
{
	struct fixture f;

	fixture_init(&f);
	test_commands(&f);
	test_kernel_queues(&f);
	test_sessions_active(&f);
	test_server(&f);
	test_symlink_race(&f);
	policy_box_free(f.box);
	stats_destroy(&f.st);
	return t_done("test_ctl");
}
