/* NFLOG messages as the kernel sends them: the packet of each, others and
 * malformed ones skipped, nothing read past the buffer. */
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <string.h>

#include "clamp/nflog.h"
#include "tests/unit/t.h"

/* One message of type sub at off: a nfgenmsg, an NFULA_PACKET_HDR, then a
 * payload attribute of plen bytes (pbyte each). Its aligned length. */
static size_t put_msg(uint8_t *b, uint16_t type, size_t plen, uint8_t pbyte)
{
	size_t off = NLMSG_SPACE(sizeof(struct nfgenmsg));
	struct nlmsghdr nh = { .nlmsg_type = (uint16_t)(NFNL_SUBSYS_ULOG << 8 | type) };
	struct nlattr hdr = { .nla_len = NLA_HDRLEN + 4, .nla_type = NFULA_PACKET_HDR };
	struct nlattr pay = { .nla_len = (uint16_t)(NLA_HDRLEN + plen), .nla_type = NFULA_PAYLOAD };

	memset(b, 0, NLMSG_SPACE(sizeof(struct nfgenmsg)));
	memcpy(b + off, &hdr, sizeof(hdr));
	memset(b + off + NLA_HDRLEN, 0x11, 4);
	off += NLA_ALIGN(hdr.nla_len);
	memcpy(b + off, &pay, sizeof(pay));
	memset(b + off + NLA_HDRLEN, pbyte, plen);
	off += NLA_ALIGN(pay.nla_len);
	nh.nlmsg_len = (uint32_t)off;
	memcpy(b, &nh, sizeof(nh));
	return NLMSG_ALIGN(off);
}

int main(void)
{
	static _Alignas(uint32_t) uint8_t b[4096];	/* as a netlink datagram */
	struct nflog_pkt pk[4];
	size_t len = 0, n;

	len += put_msg(b + len, NFULNL_MSG_PACKET, 41, 0x45);
	len += put_msg(b + len, NFULNL_MSG_CONFIG, 8, 0x99);	/* no packet */
	len += put_msg(b + len, NFULNL_MSG_PACKET, 60, 0x60);
	n = nflog_parse(b, len, pk, 4);
	CHECK_INT(n, 2);
	CHECK_INT(pk[0].len, 41);
	CHECK(pk[0].buf[0] == 0x45 && pk[0].buf[40] == 0x45);
	CHECK_INT(pk[1].len, 60);
	CHECK(pk[1].buf[0] == 0x60);
	/* At most max. */
	CHECK_INT(nflog_parse(b, len, pk, 1), 1);
	/* Every cut of the buffer: nothing past it (ASan checks), never more. */
	for (size_t cut = 0; cut < len; cut++) {
		n = nflog_parse(b, cut, pk, 4);
		CHECK(n <= 2);
		for (size_t i = 0; i < n; i++)
			CHECK(pk[i].buf + pk[i].len <= b + cut);
	}
	/* An attribute longer than its message, a message longer than the buffer. */
	{
		struct nlattr a;
		size_t off = NLMSG_SPACE(sizeof(struct nfgenmsg)) + NLA_ALIGN(NLA_HDRLEN + 4);

		memcpy(&a, b + off, sizeof(a));
		a.nla_len = 2000;
		memcpy(b + off, &a, sizeof(a));
		n = nflog_parse(b, len, pk, 4);
		CHECK_INT(n, 1);
		CHECK_INT(pk[0].len, 60);
		struct nlmsghdr nh;

		memcpy(&nh, b, sizeof(nh));
		nh.nlmsg_len = 100000;
		memcpy(b, &nh, sizeof(nh));
		CHECK_INT(nflog_parse(b, len, pk, 4), 0);
		/* 2^31 and more: negative as an int (libmnl compares it so). */
		nh.nlmsg_len = 0xa7004000;
		memcpy(b, &nh, sizeof(nh));
		CHECK_INT(nflog_parse(b, len, pk, 4), 0);
		nh.nlmsg_len = 3;
		memcpy(b, &nh, sizeof(nh));
		CHECK_INT(nflog_parse(b, len, pk, 4), 0);
	}
	return t_done("test_nflog");
}
