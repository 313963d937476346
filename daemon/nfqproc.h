/* The kernel's own view of the NFQUEUEs, /proc/net/netfilter/nfnetlink_queue:
 * how many packets wait in each queue right now, and what it dropped. */
#ifndef MTUGATE_DAEMON_NFQPROC_H
#define MTUGATE_DAEMON_NFQPROC_H

#include <stddef.h>
#include <stdint.h>

#define NFQPROC_PATH "/proc/net/netfilter/nfnetlink_queue"

struct nfqproc_row {
	uint32_t queue;
	uint32_t portid;	/* the bound socket */
	uint32_t backlog;	/* queue_total: packets waiting for a verdict */
	uint32_t dropped;	/* queue full, without fail-open */
	uint32_t user_dropped;	/* the socket's buffer full, without fail-open */
	uint32_t id_sequence;	/* the last packet id handed out */
};

/* One row per well-formed line of text (the kernel prints nine numbers:
 * queue, portid, total, copy mode, copy range, dropped, user dropped, id
 * sequence, 1); other lines are skipped. Returns the rows found, at most max. */
size_t nfqproc_parse(const char *text, size_t len, struct nfqproc_row *rows, size_t max);
/* The file is root's only (0440): the daemon opens it while still root and
 * keeps the descriptor, which reads fresh numbers every time. -errno. */
int nfqproc_open(const char *path);
/* The rows from fd, read afresh from its start: how many, or -errno. */
int nfqproc_read(int fd, struct nfqproc_row *rows, size_t max);
/* The row of queue num in rows, or NULL. */
const struct nfqproc_row *nfqproc_find(const struct nfqproc_row *rows, size_t n, uint32_t num);

#endif
