#include "clamp/nflog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#define NFLOG_TYPE(m) ((NFNL_SUBSYS_ULOG << 8) | (m))

/* One config request with one attribute; 0 when the kernel acknowledged it. */
static int nflog_config(int fd, uint16_t group, uint16_t attr, const void *val, size_t vlen,
			uint32_t seq)
{
	_Alignas(struct nlmsghdr) char msg[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)) + MNL_ATTR_HDRLEN + 16];
	_Alignas(struct nlmsghdr) char reply[1024];
	struct nlmsghdr *nh = mnl_nlmsg_put_header(msg);
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nh, sizeof(*g));
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	nh->nlmsg_type = NFLOG_TYPE(NFULNL_MSG_CONFIG);
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nh->nlmsg_seq = seq;
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(group);
	mnl_attr_put(nh, attr, vlen, val);
	if (sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	/* The ack, or the error, of this request (the socket is non-blocking);
	 * a logged packet before it passes by. */
	do {
		ssize_t n;

		if (poll(&pfd, 1, 1000) <= 0)
			return -ETIMEDOUT;
		if ((n = recv(fd, reply, sizeof(reply), 0)) < 0)
			return -errno;
		r = mnl_cb_run(reply, (size_t)n, seq, 0, NULL, NULL);
	} while (r == MNL_CB_OK);
	return r < 0 ? -errno : 0;
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

/* The payload attribute of a packet message, when it has one. */
static int nflog_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **payload = data;

	if (mnl_attr_type_valid(a, NFULA_MAX) < 0 || mnl_attr_get_type(a) != NFULA_PAYLOAD)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_BINARY) < 0)
		return MNL_CB_ERROR;
	*payload = a;
	return MNL_CB_STOP;
}

/* mnl_nlmsg_ok() compares the length as an int: one of 2^31 or more would
 * pass as negative and send mnl_nlmsg_next() far past the buffer. And the
 * attribute walk runs to the aligned end: the padding must be there too
 * (the kernel always sends it). */
static bool nflog_msg_ok(const struct nlmsghdr *nh, int left)
{
	return mnl_nlmsg_ok(nh, left) && nh->nlmsg_len <= (uint32_t)left &&
	       MNL_ALIGN(nh->nlmsg_len) <= (uint32_t)left;
}

size_t nflog_parse(const uint8_t *buf, size_t len, struct nflog_pkt *out, size_t max)
{
	const struct nlmsghdr *nh = (const struct nlmsghdr *)(const void *)buf;
	int left = len > INT32_MAX ? INT32_MAX : (int)len;
	size_t n = 0;

	for (; n < max && nflog_msg_ok(nh, left); nh = mnl_nlmsg_next(nh, &left)) {
		const struct nlattr *a = NULL;

		if (nh->nlmsg_type != NFLOG_TYPE(NFULNL_MSG_PACKET) ||
		    mnl_nlmsg_get_payload_len(nh) < sizeof(struct nfgenmsg) ||
		    mnl_attr_parse(nh, sizeof(struct nfgenmsg), nflog_attr, &a) < 0 || !a)
			continue;
		out[n].buf = mnl_attr_get_payload(a);
		out[n++].len = mnl_attr_get_payload_len(a);
	}
	return n;
}
