#include "daemon/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#define FAIL(what) do { int e_ = errno; snprintf(err, errlen, "%s: %s", what, strerror(e_)); \
	return -e_; } while (0)

/* ---- seccomp ---- */

#if defined(__x86_64__)
#define SB_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SB_ARCH AUDIT_ARCH_AARCH64
#endif

/* What glibc, OpenSSL, the event loop, the proxy's sockets and threads, the
 * cookie file, the log and AddressSanitizer call. */
static const long sb_common[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_close, SYS_lseek,
	SYS_fstat, SYS_newfstatat, SYS_statx, SYS_fstatfs, SYS_statfs, SYS_openat,
	SYS_faccessat, SYS_readlinkat, SYS_getdents64, SYS_getcwd,
	SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_madvise, SYS_brk, SYS_mincore,
	SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_sigaltstack,
	SYS_fcntl, SYS_dup, SYS_dup3, SYS_renameat, SYS_unlinkat, SYS_fsync, SYS_fdatasync,
	SYS_ftruncate, SYS_fchmod, SYS_umask,
	SYS_getpid, SYS_gettid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
	SYS_getresuid, SYS_getresgid, SYS_getgroups,
	SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_nanosleep, SYS_clock_nanosleep,
	SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_eventfd2, SYS_timerfd_create,
	SYS_timerfd_settime, SYS_timerfd_gettime, SYS_signalfd4, SYS_ppoll, SYS_pselect6,
	SYS_connect, SYS_accept4, SYS_bind, SYS_listen, SYS_setsockopt, SYS_getsockopt,
	SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg,
	SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown,
	SYS_futex, SYS_set_robust_list, SYS_get_robust_list, SYS_set_tid_address,
	SYS_exit, SYS_exit_group, SYS_getrandom, SYS_sched_yield, SYS_sched_getaffinity,
	SYS_tgkill, SYS_restart_syscall, SYS_uname, SYS_sysinfo, SYS_prlimit64, SYS_getrusage,
	SYS_rt_sigtimedwait, SYS_membarrier,
#ifdef SYS_rseq
	SYS_rseq,
#endif
#ifdef SYS_epoll_pwait2
	SYS_epoll_pwait2,
#endif
#ifdef SYS_faccessat2
	SYS_faccessat2,
#endif
#ifdef SYS_renameat2
	SYS_renameat2,
#endif
#ifdef SYS_open
	SYS_open, SYS_stat, SYS_lstat, SYS_access, SYS_readlink, SYS_rename, SYS_unlink,
	SYS_dup2, SYS_epoll_wait, SYS_epoll_create, SYS_poll, SYS_select, SYS_time,
	SYS_getrlimit, SYS_accept,
#endif
};

/* The master forks, reaps and signals its worker, which sets up its
 * Landlock rules under the master's filter before adding its own. */
static const long sb_master[] = {
	SYS_wait4, SYS_waitid, SYS_kill, SYS_landlock_create_ruleset, SYS_landlock_add_rule,
	SYS_landlock_restrict_self,
#ifdef SYS_fork
	SYS_fork, SYS_vfork,
#endif
};

#define SB_LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define SB_LD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define SB_RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define SB_JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define SB_ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

struct sb_prog {
	struct sock_filter f[512];
	size_t n;
};

static void sb_emit(struct sb_prog *p, struct sock_filter ins)
{
	if (p->n < sizeof(p->f) / sizeof(p->f[0]))
		p->f[p->n++] = ins;
}

static void sb_allow(struct sb_prog *p, long nr)
{
	sb_emit(p, (struct sock_filter)SB_JEQ((uint32_t)nr, 0, 1));
	sb_emit(p, (struct sock_filter)SB_RET(SECCOMP_RET_ALLOW));
}

/* nr is allowed when its argument arg is one of vals (the low 32 bits),
 * else it fails with errno e. */
static void sb_allow_if(struct sb_prog *p, long nr, int arg, const uint32_t *vals, size_t n, int e)
{
	sb_emit(p, (struct sock_filter)SB_JEQ((uint32_t)nr, 0, (uint8_t)(n + 3)));
	sb_emit(p, (struct sock_filter)SB_LD_ARG(arg));
	for (size_t i = 0; i < n; i++)
		sb_emit(p, (struct sock_filter)SB_JEQ(vals[i], (uint8_t)(n - i), 0));
	sb_emit(p, (struct sock_filter)SB_RET(SB_ERRNO(e)));
	sb_emit(p, (struct sock_filter)SB_RET(SECCOMP_RET_ALLOW));
}

int sandbox_seccomp(enum sandbox_role role, char *err, size_t errlen)
{
#ifndef SB_ARCH
	(void)role;
	snprintf(err, errlen, "no seccomp filter for this architecture");
	return -ENOSYS;
#else
	static const uint32_t families[] = { AF_UNIX, AF_INET, AF_INET6 };
	static const uint32_t ioctls[] = { TCGETS, FIONREAD, FIONBIO, FIOCLEX };
	/* Those that only take away (a filter more, a signal at the master's
	 * death); never PR_SET_DUMPABLE, which could give a ptrace back. */
	static const uint32_t prctls[] = { PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE,
					   PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS, PR_SET_NO_NEW_PRIVS,
					   PR_SET_SECCOMP, PR_SET_PDEATHSIG };
	static struct sb_prog p;
	struct sock_fprog prog;

	p.n = 0;
	sb_emit(&p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						 offsetof(struct seccomp_data, arch)));
	sb_emit(&p, (struct sock_filter)SB_JEQ(SB_ARCH, 1, 0));
	sb_emit(&p, (struct sock_filter)SB_RET(SECCOMP_RET_KILL_PROCESS));
	sb_emit(&p, (struct sock_filter)SB_LD_NR);
#ifdef __x86_64__
	/* x32 numbers alias the 64-bit ones: refused outright. */
	sb_emit(&p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
	sb_emit(&p, (struct sock_filter)SB_RET(SECCOMP_RET_KILL_PROCESS));
#endif
	/* glibc falls back to clone(2), whose flags a filter can read. */
	sb_emit(&p, (struct sock_filter)SB_JEQ(SYS_clone3, 0, 1));
	sb_emit(&p, (struct sock_filter)SB_RET(SB_ERRNO(ENOSYS)));
	for (size_t i = 0; i < sizeof(sb_common) / sizeof(sb_common[0]); i++)
		sb_allow(&p, sb_common[i]);
	sb_allow_if(&p, SYS_socket, 0, families, 3, EAFNOSUPPORT);
	sb_allow_if(&p, SYS_ioctl, 1, ioctls, 4, ENOTTY);
	sb_allow_if(&p, SYS_prctl, 0, prctls, 8, EPERM);
	if (role == SANDBOX_PROXY_MASTER) {
		for (size_t i = 0; i < sizeof(sb_master) / sizeof(sb_master[0]); i++)
			sb_allow(&p, sb_master[i]);
		sb_allow(&p, SYS_clone);
	} else {
		/* Threads only: no process of its own. */
		sb_emit(&p, (struct sock_filter)SB_JEQ(SYS_clone, 0, 4));
		sb_emit(&p, (struct sock_filter)SB_LD_ARG(0));
		sb_emit(&p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1));
		sb_emit(&p, (struct sock_filter)SB_RET(SECCOMP_RET_ALLOW));
		sb_emit(&p, (struct sock_filter)SB_RET(SB_ERRNO(EPERM)));
	}
	sb_emit(&p, (struct sock_filter)SB_RET(SECCOMP_RET_KILL_PROCESS));
	if (p.n == sizeof(p.f) / sizeof(p.f[0])) {
		snprintf(err, errlen, "seccomp filter too long");
		return -E2BIG;
	}
	prog = (struct sock_fprog){ .len = (unsigned short)p.n, .filter = p.f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		FAIL("PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		FAIL("PR_SET_SECCOMP");
	return 0;
#endif
}

/* ---- Landlock ---- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

int sandbox_landlock_abi(void)
{
	long r = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return r < 0 ? 0 : (int)r;
}

static int ll_ruleset(uint64_t handled)
{
	struct landlock_ruleset_attr a = { .handled_access_fs = handled };

	return (int)syscall(SYS_landlock_create_ruleset, &a, sizeof(a), 0);
}

static int ll_rule(int rfd, int fd, uint64_t allowed)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = allowed, .parent_fd = fd };

	return (int)syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
}

static int ll_enforce(int rfd, char *err, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		close(rfd);
		FAIL("PR_SET_NO_NEW_PRIVS");
	}
	if (syscall(SYS_landlock_restrict_self, rfd, 0) < 0) {
		int e = errno;

		close(rfd);
		errno = e;
		FAIL("landlock_restrict_self");
	}
	close(rfd);
	return 0;
}

int sandbox_write_only_under(const char *dir, char *err, size_t errlen)
{
	int abi = sandbox_landlock_abi(), rfd, fd;
	uint64_t w = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
		     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
		     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
		     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
		     LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;

	if (abi < 1)
		return 1;
	if (abi >= 2)
		w |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		w |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if ((rfd = ll_ruleset(w)) < 0)
		FAIL("landlock_create_ruleset");
	if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		int e = errno;

		close(rfd);
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if (ll_rule(rfd, fd, w) < 0) {
		int e = errno;

		close(fd);
		close(rfd);
		snprintf(err, errlen, "landlock_add_rule %s: %s", dir, strerror(e));
		return -e;
	}
	close(fd);
	return ll_enforce(rfd, err, errlen);
}

/* Allow reading every entry of folder dirfd but skip (and symbolic links,
 * whose targets are checked where they lie). */
static int ll_allow_entries(int rfd, int dirfd, const char *skip)
{
	int dfd = dup(dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return -errno;
	}
	while ((e = readdir(d))) {
		int fd;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, skip) ||
		    e->d_type == DT_LNK)
			continue;
		if ((fd = openat(dirfd, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;	/* gone meanwhile */
		if (ll_rule(rfd, fd, LANDLOCK_ACCESS_FS_READ_FILE) < 0 && errno != EINVAL) {
			int er = errno;

			close(fd);
			closedir(d);
			return -er;
		}
		close(fd);
	}
	closedir(d);
	return 0;
}

int sandbox_hide_file(const char *path, char *err, size_t errlen)
{
	char real[PATH_MAX], *comp, *next, *save = NULL;
	int rfd, dirfd, r = 0;

	if (sandbox_landlock_abi() < 1)
		return 1;
	if (!realpath(path, real)) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if ((rfd = ll_ruleset(LANDLOCK_ACCESS_FS_READ_FILE)) < 0)
		FAIL("landlock_create_ruleset");
	/* Folders opened to be read (an O_PATH descriptor lists nothing). */
	if ((dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		close(rfd);
		FAIL("/");
	}
	/* Down the key's path: at each folder, everything but the next step
	 * (the key itself is never opened here). */
	for (comp = strtok_r(real, "/", &save); comp && !r; comp = next) {
		int nfd;

		next = strtok_r(NULL, "/", &save);
		if ((r = ll_allow_entries(rfd, dirfd, comp)) < 0 || !next)
			break;
		nfd = openat(dirfd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(dirfd);
		if ((dirfd = nfd) < 0)
			r = -errno;
	}
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0) {
		close(rfd);
		snprintf(err, errlen, "landlock rules on the way to %s: %s", path, strerror(-r));
		return r;
	}
	return ll_enforce(rfd, err, errlen);
}

bool sandbox_rename_hidden(const char *key, const char *file)
{
	const char *slash = strrchr(file, '/');
	size_t n = slash ? (size_t)(slash - file) : 0;

	/* "/" is on every path; else the folder, then a slash, begins the key's. */
	return slash && (n == 0 || (!strncmp(key, file, n) && key[n] == '/'));
}
