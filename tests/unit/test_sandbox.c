/* Landlock and seccomp as the proxy's processes and the packet process use
 * them, each in a child process (a sandbox cannot be undone). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/sandbox.h"
#include "tests/unit/t.h"

static char dir[64], key[128], conf[128], sub[128], pdir[128], pkey[160];

static void touch(const char *p)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, "x\n", 2) != 2)
		abort();
	close(fd);
}

static bool can_open(const char *p, int flags)
{
	int fd = open(p, flags | O_CLOEXEC, 0600);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* Runs fn in a child; its exit status is the number of failed checks. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(fn());
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int hide_child(void)
{
	char err[256], later[160];
	int bad = 0;

	if (sandbox_hide_file(key, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_hide_file: %s\n", err);
		return 50;
	}
	bad += can_open(key, O_RDONLY);		/* the key: no */
	bad += !can_open(conf, O_RDONLY);	/* its neighbour: yes */
	bad += !can_open(sub, O_RDONLY);	/* a folder next to it: yes */
	bad += !can_open("/etc/hostname", O_RDONLY) && !can_open("/proc/self/status", O_RDONLY);
	/* Replaced by a rename after the rules: a new inode, not readable. */
	snprintf(later, sizeof(later), "%s/later", dir);
	touch(later);
	bad += can_open(later, O_RDONLY);
	return bad;
}

/* The key in a folder of its own, beside the configuration's (groups.d
 * here): a file there replaced by a rename stays readable, the key does not. */
static int own_folder_child(void)
{
	char err[256], tmp[160], next[160];
	int bad = 0;

	if (sandbox_hide_file(pkey, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_hide_file: %s\n", err);
		return 50;
	}
	bad += can_open(pkey, O_RDONLY);
	snprintf(tmp, sizeof(tmp), "%s/cookies", sub);
	touch(tmp);
	snprintf(next, sizeof(next), "%s/a.conf.new", sub);
	touch(next);
	bad += rename(next, tmp) != 0;		/* as sed -i does */
	bad += !can_open(tmp, O_RDONLY);
	return bad;
}

static int write_child(void)
{
	char err[256], inside[160];
	int bad = 0;

	if (sandbox_write_only_under(sub, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_write_only_under: %s\n", err);
		return 50;
	}
	snprintf(inside, sizeof(inside), "%s/cookies", sub);
	bad += !can_open(inside, O_WRONLY | O_CREAT);	/* inside: yes */
	bad += can_open(conf, O_WRONLY);		/* outside: no */
	bad += !can_open(conf, O_RDONLY);		/* reading stays */
	return bad;
}

static int seccomp_child(void)
{
	char err[256];
	int bad = 0, s;

	if (sandbox_seccomp(SANDBOX_PROXY_WORKER, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_seccomp: %s\n", err);
		return 50;
	}
	s = socket(AF_INET, SOCK_STREAM, 0);
	bad += s < 0;
	close(s);
	s = socket(AF_NETLINK, SOCK_RAW, 0);
	bad += !(s < 0 && errno == EAFNOSUPPORT);
	/* No process of its own. */
	bad += fork() >= 0;
	return bad;
}

static int seccomp_kill_child(void)
{
	char err[256];

	if (sandbox_seccomp(SANDBOX_PROXY_WORKER, err, sizeof(err)) != 0)
		return 50;
	(void)!chroot("/");	/* outside the list: the process is killed */
	return 0;
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_sandbox.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(key, sizeof(key), "%s/headend.key", dir);
	snprintf(conf, sizeof(conf), "%s/mtugate.conf", dir);
	snprintf(sub, sizeof(sub), "%s/groups.d", dir);
	snprintf(pdir, sizeof(pdir), "%s/private", dir);
	snprintf(pkey, sizeof(pkey), "%s/headend.key", pdir);
	touch(key);
	touch(conf);
	mkdir(sub, 0700);
	mkdir(pdir, 0700);
	touch(pkey);
	if (sandbox_landlock_abi() < 1) {
		printf("no Landlock in this kernel: its checks skipped\n");
	} else {
		CHECK_INT(in_child(hide_child), 0);
		CHECK_INT(in_child(write_child), 0);
		CHECK_INT(in_child(own_folder_child), 0);
	}
	/* Which files a rename hides once the key is: those of a folder on its path. */
	CHECK(sandbox_rename_hidden("/etc/mtugate/headend.key", "/etc/mtugate/mtugate.conf"));
	CHECK(sandbox_rename_hidden("/etc/mtugate/private/headend.key", "/etc/mtugate/mtugate.conf"));
	CHECK(sandbox_rename_hidden("/etc/ssl/private/mtugate-headend.key", "/etc/hosts"));
	CHECK(sandbox_rename_hidden("/k", "/mtugate.conf"));
	CHECK(sandbox_rename_hidden("/etc/mtugate/groups.d/k.key", "/etc/mtugate/groups.d/a.conf"));
	CHECK(!sandbox_rename_hidden("/etc/ssl/private/mtugate-headend.key",
				     "/etc/mtugate/mtugate.conf"));
	CHECK(!sandbox_rename_hidden("/etc/mtugate/headend.key", "/etc/mtugate/groups.d/a.conf"));
	CHECK(!sandbox_rename_hidden("/etc/mtugate-key/headend.key", "/etc/mtugate/mtugate.conf"));
	CHECK(!sandbox_rename_hidden("/etc/mtugatex/headend.key", "/etc/mtugate/mtugate.conf"));
	CHECK(!sandbox_rename_hidden("/etc/mtugate", "/etc/mtugate/mtugate.conf"));
	CHECK_INT(in_child(seccomp_child), 0);
	CHECK_INT(in_child(seccomp_kill_child), 100 + SIGSYS);
	{
		char p[160];
		const char *const left[] = { "headend.key", "mtugate.conf", "later",
					     "groups.d/cookies",
					     "private/headend.key" };

		for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
			snprintf(p, sizeof(p), "%s/%s", dir, left[i]);
			unlink(p);
		}
		rmdir(sub);
		rmdir(pdir);
		rmdir(dir);
	}
	return t_done("test_sandbox");
}
