#include "clamp/nfq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NFQ_RXN 32			/* datagrams per recvmmsg */
#define NFQ_RXSZ (0xffff + 1024)	/* one packet plus netlink attributes */
#define NFQ_TXSZ (4 * NFQ_RXSZ)		/* verdicts sent per sendto */

/* What goes back to the kernel for one packet. */
struct nfq_out {
	uint32_t verdict;	/* NF_DROP, NF_ACCEPT or NF_REPEAT */
	bool set_mark;
	uint32_t mark;
};

struct nfq_queue {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t num;
	uint32_t done_mark;
	nfq_handler fn;
	void *arg;
	struct nfq_stats st;
	/* Pending batch: the highest id of consecutive unchanged packets with
	 * the same verdict and outgoing mark. */
	uint32_t batch_id;
	bool batch_pending;
	struct nfq_out batch;
	char *tx;
	size_t txlen;
	char *rx;
	struct mmsghdr msgs[NFQ_RXN];
	struct iovec iov[NFQ_RXN];
};

static int nfq_send_cfg(struct nfq_queue *q, struct nlmsghdr *nlh)
{
	return mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

/* Send and wait for the kernel's answer: a queue another program holds
 * answers EPERM, which an unacknowledged message would never show (the
 * daemon would say "bound" and see nothing). Only before BIND is done: once
 * bound, packet messages could come first. */
static int nfq_send_cfg_acked(struct nfq_queue *q, struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	static const uint32_t seq = 0x6d747567;	/* "mtug" */
	ssize_t n;
	int r;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if ((r = nfq_send_cfg(q, nlh)) < 0)
		return r;
	n = mnl_socket_recvfrom(q->nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	return mnl_cb_run(buf, (size_t)n, seq, q->portid, NULL, NULL) < 0 ? -errno : 0;
}

struct nfq_queue *nfq_queue_open(uint16_t num, unsigned max_len, bool fail_open,
				 uint32_t done_mark, nfq_handler fn, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nfq_queue *q = calloc(1, sizeof(*q));
	int one = 1, err;

	if (!q)
		return NULL;
	q->num = num;
	q->done_mark = done_mark;
	q->fn = fn;
	q->arg = arg;
	q->tx = malloc(NFQ_TXSZ);
	q->rx = malloc((size_t)NFQ_RXN * NFQ_RXSZ);
	if (!q->tx || !q->rx)
		goto err;
	if (!(q->nl = mnl_socket_open(NETLINK_NETFILTER)))
		goto err;
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto err;
	q->portid = mnl_socket_get_portid(q->nl);

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if ((err = nfq_send_cfg_acked(q, nlh)) < 0) {
		errno = -err;
		goto err;
	}
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	/* Fail-open and GSO in one attribute: a second one would replace the first. */
	uint32_t flags = NFQA_CFG_F_GSO | (fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	nfq_nlmsg_cfg_put_qmaxlen(nlh, max_len);
	if ((err = nfq_send_cfg(q, nlh)) < 0) {
		errno = -err;
		goto err;
	}

	int fd = mnl_socket_get_fd(q->nl);
	/* Overflow is the kernel's to handle (fail-open); ENOBUFS would only stall us. */
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	/* Room for max_len queued packets (2 KiB each: a SYN's message and its skb), as
	 * mtugate.conf(5) promises: a full buffer fails open like a full queue. The kernel
	 * doubles the value and takes at most INT_MAX / 2. */
	uint64_t want = (uint64_t)max_len * 2048;
	int rcvbuf = want > INT_MAX / 2 ? INT_MAX / 2 : (int)want;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	int fl = 1;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &fl, sizeof(fl));

	for (int i = 0; i < NFQ_RXN; i++) {
		q->iov[i].iov_base = q->rx + (size_t)i * NFQ_RXSZ;
		q->iov[i].iov_len = NFQ_RXSZ;
		q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
		q->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return q;
err:
	err = errno;
	nfq_queue_close(q);
	errno = err;
	return NULL;
}

int nfq_queue_fd(const struct nfq_queue *q)
{
	return mnl_socket_get_fd(q->nl);
}

uint32_t nfq_queue_portid(const struct nfq_queue *q)
{
	return q->portid;
}

const struct nfq_stats *nfq_queue_stats(const struct nfq_queue *q)
{
	return &q->st;
}

static void nfq_tx_flush(struct nfq_queue *q)
{
	if (q->txlen == 0)
		return;
	if (mnl_socket_sendto(q->nl, q->tx, q->txlen) < 0)
		q->st.verdict_errors++;
	q->txlen = 0;
}

/* Room for a message of need bytes in the transmit buffer. */
static struct nlmsghdr *nfq_tx_msg(struct nfq_queue *q, int type, size_t need)
{
	if (q->txlen + MNL_ALIGN(need) > NFQ_TXSZ)
		nfq_tx_flush(q);
	struct nlmsghdr *nlh = nfq_nlmsg_put(q->tx + q->txlen, type, q->num);
	return nlh;
}

static void nfq_tx_commit(struct nfq_queue *q, struct nlmsghdr *nlh)
{
	q->txlen += MNL_ALIGN(nlh->nlmsg_len);
}

static void nfq_batch_flush(struct nfq_queue *q)
{
	if (!q->batch_pending)
		return;
	struct nlmsghdr *nlh = nfq_tx_msg(q, NFQNL_MSG_VERDICT_BATCH, 64);
	nfq_nlmsg_verdict_put(nlh, (int)q->batch_id, (int)q->batch.verdict);
	if (q->batch.set_mark)
		nfq_nlmsg_verdict_put_mark(nlh, q->batch.mark);
	nfq_tx_commit(q, nlh);
	q->batch_pending = false;
	q->st.batches++;
}

/* The verdict and mark for the kernel (see nfq.h: NF_REPEAT and the done mark). */
static struct nfq_out nfq_out_of(struct nfq_queue *q, const struct nfq_packet *pk,
				 const struct nfq_verdict *v)
{
	struct nfq_out o = { NF_DROP, v->set_mark, v->set_mark ? v->mark : pk->mark };

	if (v->action == NFQ_DROP)
		return o;
	if (pk->mark & q->done_mark) {
		q->st.unguarded++;
		o.verdict = NF_ACCEPT;
		o.mark &= ~q->done_mark;
	} else {
		o.verdict = NF_REPEAT;
		o.mark |= q->done_mark;
	}
	o.set_mark = true;
	return o;
}

static bool nfq_out_same(const struct nfq_out *a, const struct nfq_out *b)
{
	return a->verdict == b->verdict && a->set_mark == b->set_mark &&
	       (!a->set_mark || a->mark == b->mark);
}

static int nfq_packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nfq_queue *q = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	struct nfq_packet pk = { 0 };
	struct nfq_verdict v = { .action = NFQ_ACCEPT };

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return MNL_CB_OK;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);
	q->st.received++;
	if (attr[NFQA_PAYLOAD]) {
		pk.buf = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		pk.len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	if (attr[NFQA_MARK])
		pk.mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
	if (attr[NFQA_SKB_INFO]) {
		uint32_t info = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO]));
		pk.gso = info & NFQA_SKB_GSO;
		pk.csum_unready = info & NFQA_SKB_CSUMNOTREADY;
	}
	if (attr[NFQA_IFINDEX_INDEV])
		pk.indev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
	if (attr[NFQA_IFINDEX_OUTDEV])
		pk.outdev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV]));

	if (pk.buf)
		q->fn(q->arg, &pk, &v);
	struct nfq_out o = nfq_out_of(q, &pk, &v);

	if (!v.payload) {
		/* A batch verdict covers every id up to its own: a change of
		 * verdict or mark closes the batch before the next one opens. */
		if (q->batch_pending && !nfq_out_same(&q->batch, &o))
			nfq_batch_flush(q);
		q->batch_id = id;
		q->batch = o;
		q->batch_pending = true;
		return MNL_CB_OK;
	}
	/* Earlier packets go first, so a flow is never reordered. */
	nfq_batch_flush(q);
	struct nlmsghdr *vh = nfq_tx_msg(q, NFQNL_MSG_VERDICT, 128 + v.len);
	nfq_nlmsg_verdict_put(vh, (int)id, (int)o.verdict);
	if (o.set_mark)
		nfq_nlmsg_verdict_put_mark(vh, o.mark);
	nfq_nlmsg_verdict_put_pkt(vh, v.payload, (uint32_t)v.len);
	nfq_tx_commit(q, vh);
	return MNL_CB_OK;
}

int nfq_queue_process(struct nfq_queue *q)
{
	int fd = mnl_socket_get_fd(q->nl), total = 0;

	for (;;) {
		int n = recvmmsg(fd, q->msgs, NFQ_RXN, MSG_DONTWAIT, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {	/* dropped by the kernel: fail-open covers it */
				q->st.recv_errors++;
				continue;
			}
			nfq_batch_flush(q);
			nfq_tx_flush(q);
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int r = mnl_cb_run(q->iov[i].iov_base, q->msgs[i].msg_len, 0, q->portid,
					   nfq_packet_cb, q);
			if (r < 0)
				q->st.verdict_errors++;	/* an error reply to an earlier verdict */
		}
		total += n;
		/* Verdicts for this round go out before the next read: bounded latency. */
		nfq_batch_flush(q);
		nfq_tx_flush(q);
		if (n < NFQ_RXN)
			break;
	}
	return total;
}

void nfq_queue_close(struct nfq_queue *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	if (!q)
		return;
	if (q->nl) {
		struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
		nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
		nfq_send_cfg(q, nlh);
		mnl_socket_close(q->nl);
	}
	free(q->tx);
	free(q->rx);
	free(q);
}
