/* The control socket: a line protocol (WireGuard UAPI style).
 * Request: one command line, e.g. "stats\n". Reply: "name\tvalue" lines, then an
 * empty line. Errors: "error=EINVAL\tmessage". */
#ifndef MTUGATE_DAEMON_CONTROL_H
#define MTUGATE_DAEMON_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stats;
struct policy_box;
struct diag;
struct loop;
struct strbuf;
struct nfqproc_row;

struct ctl_ops {
	struct stats *stats;
	struct policy_box *box;
	/* Reload now, on the control thread: 0, 1 when the firewall rules the new
	 * configuration needs differ from the old one's, or -1 with every error in d. */
	int (*reload)(void *arg, struct diag *d);
	/* Append one "session\t..." line per proxied tunnel; NULL without a proxy. */
	void (*sessions)(void *arg, struct strbuf *out);
	/* Live proxied tunnels of each group: counts[i] for names[i]; NULL
	 * without a proxy (every group shows 0). */
	void (*sessions_active)(void *arg, const char *const *names, size_t n, uint64_t *counts);
	/* The kernel's rows for the queues (daemon/nfqproc.h): how many, or
	 * -errno; NULL: stats leave the kernel's numbers out. */
	int (*kernel_queues)(void *arg, struct nfqproc_row *rows, size_t max);
	void *arg;
};

/* Pure request handling: one request line in, the full reply (ending with the
 * empty line) appended to out. */
void ctl_handle(const struct ctl_ops *ops, const char *line, size_t len, struct strbuf *out);

struct ctl_server;
/* Listen on path (mode 0660, group gid unless gid == (gid_t)-1) in loop l. */
struct ctl_server *ctl_server_new(struct loop *l, const char *path, gid_t gid,
				  const struct ctl_ops *ops);
void ctl_server_free(struct ctl_server *s);	/* closes clients, unlinks the socket */

#endif
