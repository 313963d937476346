#include "clamp/nflog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NFLOG_TYPE(m) ((NFNL_SUBSYS_ULOG << 8) | (m))

/* One config request with one attribute; 0 when the kernel acknowledged it. */
static int nflog_config(int fd, uint16_t group, uint16_t attr, const void *val, size_t vlen,
			uint32_t seq)
{
	uint8_t msg[NLMSG_SPACE(sizeof(struct nfgenmsg)) + NLA_HDRLEN + 16] = { 0 };
	struct nlmsghdr *nh = (struct nlmsghdr *)(void *)msg;
	struct nfgenmsg *g = NLMSG_DATA(nh);
	struct nlattr *a = (struct nlattr *)(void *)(msg + NLMSG_SPACE(sizeof(*g)));
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	uint8_t reply[1024];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	nh->nlmsg_len = (uint32_t)(NLMSG_SPACE(sizeof(*g)) + NLA_HDRLEN + vlen);
	nh->nlmsg_type = NFLOG_TYPE(NFULNL_MSG_CONFIG);
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nh->nlmsg_seq = seq;
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(group);
	a->nla_len = (uint16_t)(NLA_HDRLEN + vlen);
	a->nla_type = attr;
	memcpy((uint8_t *)a + NLA_HDRLEN, val, vlen);
	if (sendto(fd, msg, nh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	/* The ack, or the error, of this request (the socket is non-blocking). */
	for (;;) {
		ssize_t n;

		if (poll(&pfd, 1, 1000) <= 0)
			return -ETIMEDOUT;
		if ((n = recv(fd, reply, sizeof(reply), 0)) < 0)
			return -errno;
		for (struct nlmsghdr *r = (struct nlmsghdr *)(void *)reply; NLMSG_OK(r, (size_t)n);
		     r = NLMSG_NEXT(r, n))
			if (r->nlmsg_type == NLMSG_ERROR && r->nlmsg_seq == seq &&
			    r->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
	}
}

int nflog_open(uint16_t group, uint16_t snaplen)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
	struct nfulnl_msg_config_mode mode = { .copy_range = htonl(snaplen),
					       .copy_mode = NFULNL_COPY_PACKET };
	uint32_t one = htonl(1);
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
	int r;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		r = -errno;
		goto err;
	}
	/* Each packet at once: the kernel's default holds up to 100 for a second. */
	if ((r = nflog_config(fd, group, NFULA_CFG_CMD, &cmd, sizeof(cmd), 1)) < 0 ||
	    (r = nflog_config(fd, group, NFULA_CFG_MODE, &mode, sizeof(mode), 2)) < 0 ||
	    (r = nflog_config(fd, group, NFULA_CFG_QTHRESH, &one, sizeof(one), 3)) < 0)
		goto err;
	return fd;
err:
	close(fd);
	return r;
}

size_t nflog_parse(const uint8_t *buf, size_t len, struct nflog_pkt *out, size_t max)
{
	size_t n = 0, off = 0;

	while (n < max && len - off >= NLMSG_HDRLEN) {
		struct nlmsghdr nh;
		size_t mlen, aoff;

		memcpy(&nh, buf + off, sizeof(nh));
		mlen = nh.nlmsg_len;
		if (mlen < NLMSG_HDRLEN || mlen > len - off)
			break;
		aoff = off + NLMSG_SPACE(sizeof(struct nfgenmsg));
		if (nh.nlmsg_type == NFLOG_TYPE(NFULNL_MSG_PACKET)) {
			/* Attributes, each 4-aligned; NFULA_PAYLOAD is the packet. */
			while (aoff + NLA_HDRLEN <= off + mlen) {
				struct nlattr a;

				memcpy(&a, buf + aoff, sizeof(a));
				if (a.nla_len < NLA_HDRLEN || a.nla_len > off + mlen - aoff)
					break;
				if ((a.nla_type & NLA_TYPE_MASK) == NFULA_PAYLOAD) {
					out[n].buf = buf + aoff + NLA_HDRLEN;
					out[n++].len = a.nla_len - NLA_HDRLEN;
					break;
				}
				aoff += NLA_ALIGN(a.nla_len);
			}
		}
		off += NLMSG_ALIGN(mlen);
		if (off > len)
			break;
	}
	return n;
}
