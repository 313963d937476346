/* One NFQUEUE: the only user of libmnl and libnetfilter_queue. */
#ifndef MTUGATE_CLAMP_NFQ_H
#define MTUGATE_CLAMP_NFQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nfq_action { NFQ_ACCEPT, NFQ_DROP };

/* Set on every packet mtugated accepts, whose hook then runs again (NF_REPEAT):
 * mtugate's rules skip such a packet and clear the bit, so the rules after
 * mtugate's jump in the same built-in chain still see it. This is the
 * default bit; `[queues] mark_mask` picks another (conf/marks.h). */
#define NFQ_DONE_MARK 0x200u

/* What the handler decided for one packet. Defaults: accept, unchanged, no mark. */
struct nfq_verdict {
	enum nfq_action action;
	const uint8_t *payload;	/* non-NULL: the packet was rewritten into this */
	size_t len;		/* length of payload */
	bool set_mark;
	uint32_t mark;
};

struct nfq_packet {
	uint8_t *buf;		/* the packet, writable in place (no room to grow) */
	size_t len;
	uint32_t mark;
	bool gso;		/* a GSO/GRO super-packet: longer than any one wire packet */
	bool csum_unready;	/* checksum left to offload: treat as valid */
	uint32_t indev, outdev;
};

typedef void (*nfq_handler)(void *arg, const struct nfq_packet *pk, struct nfq_verdict *v);

struct nfq_stats {
	uint64_t received, batches, verdict_errors, recv_errors;
	uint64_t unguarded;	/* came back with the done mark: rules without the guard */
};

struct nfq_queue;

/* Bind queue num: copy whole packets, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO,
 * NETLINK_NO_ENOBUFS, queue length max_len and a receive buffer sized for it;
 * done_mark is the NF_REPEAT bit (NFQ_DONE_MARK by default).
 * NULL with errno set on failure. */
struct nfq_queue *nfq_queue_open(uint16_t num, unsigned max_len, bool fail_open,
				 uint32_t done_mark, nfq_handler fn, void *arg);
int nfq_queue_fd(const struct nfq_queue *q);
/* The netlink port the queue is bound to: the kernel's nfnetlink_queue
 * table names the same one, so `mtugatectl check` tells our queues from
 * another program's. */
uint32_t nfq_queue_portid(const struct nfq_queue *q);
/* Drain the socket: batched reads (recvmmsg), one callback per packet, one
 * batch verdict per run of unchanged packets with the same verdict and mark,
 * one message per rewritten packet, all sent together. An accepted packet
 * gets NF_REPEAT and the done mark; one that already carries the bit (it came
 * back) gets NF_ACCEPT with the bit cleared, counted in unguarded.
 * Returns packets handled, or -errno on a socket error. */
int nfq_queue_process(struct nfq_queue *q);
const struct nfq_stats *nfq_queue_stats(const struct nfq_queue *q);
void nfq_queue_close(struct nfq_queue *q);	/* unbinds the queue */

#endif
