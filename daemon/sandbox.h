/* What a process of mtugated may still do once it runs: a seccomp filter
 * for the proxy's processes, and Landlock rules for files (the proxy writes
 * only its cookie folder; the packet process cannot open the headend's key). */
#ifndef MTUGATE_DAEMON_SANDBOX_H
#define MTUGATE_DAEMON_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

enum sandbox_role {
	SANDBOX_PROXY_MASTER,	/* forks and reaps the worker; no sockets of its own */
	SANDBOX_PROXY_WORKER,	/* TLS, epoll, TCP and UNIX sockets, its threads, the cookie file */
};

/* Install the seccomp filter for role (plain BPF, PR_SET_NO_NEW_PRIVS
 * first): a syscall outside its list kills the process; socket() other
 * than AF_UNIX, AF_INET and AF_INET6 fails (no netlink). 0 or -errno, with
 * the reason in err. */
int sandbox_seccomp(enum sandbox_role role, char *err, size_t errlen);

/* The Landlock ABI this kernel offers: 0 when it has none. */
int sandbox_landlock_abi(void);

/* Landlock: files may be written, made or removed only under dir. 0, 1 when
 * the kernel has no Landlock (nothing done), or -errno. */
int sandbox_write_only_under(const char *dir, char *err, size_t errlen);

/* Landlock: every file may be read but path (the headend's key): the
 * other entries of each folder on its way are allowed one by one, so a file
 * put into one of those folders later, or replaced by a rename, cannot be
 * read either. 0, 1 without Landlock, or -errno. */
int sandbox_hide_file(const char *path, char *err, size_t errlen);

/* Whether, once sandbox_hide_file(key) is in force, a file at path file that
 * is replaced by a rename (sed -i, most editors) or made anew cannot be read:
 * file's folder is one of those on the key's path (Landlock allows by
 * hierarchy only, so each of those folders is allowed entry by entry). Both
 * absolute and canonical (realpath). Pure. */
bool sandbox_rename_hidden(const char *key, const char *file);

#endif
