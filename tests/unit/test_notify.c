/* daemon/notify (systemd's notification protocol) and daemon/watch (whether
 * a thread still turns). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/notify.h"
#include "daemon/watch.h"
#include "tests/unit/t.h"

static void test_addr(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	char big[200];

	CHECK_INT(notify_addr("/run/systemd/notify", &sa, &len), 0);
	CHECK_STR(sa.sun_path, "/run/systemd/notify");
	CHECK_INT(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
	/* Abstract: a leading NUL, and the length ends the name (no NUL after it). */
	CHECK_INT(notify_addr("@sd-notify", &sa, &len), 0);
	CHECK_INT(sa.sun_path[0], 0);
	CHECK_MEM(sa.sun_path + 1, "sd-notify", 9);
	CHECK_INT(len, offsetof(struct sockaddr_un, sun_path) + 10);
	CHECK_INT(notify_addr(NULL, &sa, &len), -EINVAL);
	CHECK_INT(notify_addr("", &sa, &len), -EINVAL);
	CHECK_INT(notify_addr("/", &sa, &len), -EINVAL);
	CHECK_INT(notify_addr("relative/path", &sa, &len), -EINVAL);
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[108] = '\0';	/* 108 characters: no room for the NUL */
	CHECK_INT(notify_addr(big, &sa, &len), -ENAMETOOLONG);
	big[107] = '\0';
	CHECK_INT(notify_addr(big, &sa, &len), 0);
	big[0] = '@';
	big[107] = 'a';
	big[108] = '\0';	/* abstract: all 108 bytes are the name */
	CHECK_INT(notify_addr(big, &sa, &len), 0);
	big[108] = 'a';
	big[109] = '\0';
	CHECK_INT(notify_addr(big, &sa, &len), -ENAMETOOLONG);
}

static void test_watchdog_env(void)
{
	uint64_t u = 7;

	CHECK_INT(notify_watchdog(NULL, NULL, 42, &u), 0);
	CHECK_INT(notify_watchdog("", NULL, 42, &u), 0);
	CHECK_INT(u, 7);
	CHECK_INT(notify_watchdog("30000000", NULL, 42, &u), 1);
	CHECK_INT(u, 30000000);
	CHECK_INT(notify_watchdog("1000000", "42", 42, &u), 1);
	CHECK_INT(u, 1000000);
	u = 7;
	CHECK_INT(notify_watchdog("1000000", "43", 42, &u), 0);	/* meant for another process */
	CHECK_INT(u, 7);
	CHECK_INT(notify_watchdog("0", NULL, 42, &u), -EINVAL);
	CHECK_INT(notify_watchdog("30s", NULL, 42, &u), -EINVAL);
	CHECK_INT(notify_watchdog("-5", NULL, 42, &u), -EINVAL);
	CHECK_INT(notify_watchdog("99999999999999999999999", NULL, 42, &u), -EINVAL);
	CHECK_INT(notify_watchdog("1000", "x", 42, &u), -EINVAL);
}

/* Messages arrive on a datagram socket at the path, and at an abstract name. */
static void test_send(void)
{
	char path[] = "/tmp/test_notify.XXXXXX", sock[64], buf[64], abs_env[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct notify *n;
	int fd;
	ssize_t got;

	CHECK(mkdtemp(path) != NULL);
	snprintf(sock, sizeof(sock), "%s/notify", path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = notify_open(sock);
	CHECK(n != NULL);
	CHECK_INT(notify_send(n, "READY=1\nSTATUS=3 queue(s)"), 0);
	got = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	CHECK_INT(got, 25);
	buf[got > 0 ? got : 0] = '\0';
	CHECK_STR(buf, "READY=1\nSTATUS=3 queue(s)");
	notify_close(n);
	close(fd);
	unlink(sock);

	/* Abstract, as systemd's own socket may be. */
	snprintf(abs_env, sizeof(abs_env), "@mtugate-test-%d", (int)getpid());
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, abs_env + 1, strlen(abs_env) - 1);
	CHECK_INT(bind(fd, (struct sockaddr *)&sa,
		       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(abs_env))), 0);
	n = notify_open(abs_env);
	CHECK(n != NULL);
	CHECK_INT(notify_send(n, "WATCHDOG=1"), 0);
	got = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	CHECK_INT(got, 10);
	notify_close(n);
	close(fd);

	/* Nobody listening: open fails with the reason; no socket at all: a no-op. */
	errno = 0;
	CHECK(notify_open(sock) == NULL);
	CHECK_INT(errno, ENOENT);
	errno = 0;
	CHECK(notify_open(NULL) == NULL);
	CHECK_INT(errno, 0);
	CHECK(notify_open("") == NULL);
	CHECK_INT(errno, 0);
	CHECK_INT(notify_send(NULL, "READY=1"), 0);
	rmdir(path);
}

static void test_watch(void)
{
	struct watch w;

	watch_init(&w, 10, 1000);
	CHECK_INT(watch_look(&w, 10, 1500, 5000), WATCH_OK);	/* still, but not for long */
	CHECK_INT(watch_look(&w, 11, 5900, 5000), WATCH_OK);	/* moved: the wait restarts */
	CHECK_INT(watch_look(&w, 11, 10899, 5000), WATCH_OK);
	CHECK_INT(watch_look(&w, 11, 10900, 5000), WATCH_STALLED);	/* 5 s without a move */
	CHECK_INT(watch_look(&w, 11, 11900, 5000), WATCH_STILL_STALLED);
	CHECK_INT(watch_look(&w, 11, 99000, 5000), WATCH_STILL_STALLED);
	CHECK_INT(watch_look(&w, 12, 99500, 5000), WATCH_RESUMED);
	CHECK_INT(watch_look(&w, 12, 100000, 5000), WATCH_OK);
	CHECK_INT(watch_look(&w, 13, 100000, 5000), WATCH_OK);
	/* The counter wrapping around is a move like any other. */
	watch_init(&w, UINT64_MAX, 0);
	CHECK_INT(watch_look(&w, 0, 6000, 5000), WATCH_OK);
	/* A clock that steps back restarts the wait instead of underflowing. */
	watch_init(&w, 5, 10000);
	CHECK_INT(watch_look(&w, 5, 9000, 5000), WATCH_OK);
	CHECK_INT(watch_look(&w, 5, 13999, 5000), WATCH_OK);
	CHECK_INT(watch_look(&w, 5, 14000, 5000), WATCH_STALLED);
}

int main(void)
{
	test_addr();
	test_watchdog_env();
	test_send();
	test_watch();
	return t_done("test_notify");
}
