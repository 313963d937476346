/* proxy/conn.c's buffers: the reader's room and the epoll interest agree, so
 * a buffer the reader cannot take more into is never polled for input (a
 * head rewritten past DIR_READ_MAX wrapped `DIR_READ_MAX - len`: the level-
 * triggered loop spun on a readable socket nobody read). */
#include "proxy/conn.c"

#include <stdlib.h>

#include "conf/diag.h"
#include "t.h"

/* An IPv4 SYN 198.18.1.2 -> 198.18.2.2 with MSS 1460 (tests/unit/test_mss.c). */
static const uint8_t syn4[44] = {
	0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x99, 0x6f, 0xc6, 0x12, 0x01, 0x02,
	0xc6, 0x12, 0x02, 0x02, 0xc0, 0x00, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x60, 0x02, 0xfa, 0xf0, 0x48, 0x4b, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
};

/* A SYN inside the tunnel's records: an observing group counts the clamp it
 * would do and forwards the packet as it came; enforce lowers it. */
static void check_clamp_observe(void)
{
	struct group *g = calloc(1, sizeof(*g));
	static struct counters ctr;
	struct diag d = { 0 };
	struct conn_env env = { .ctr = &ctr };
	struct conn c = { .env = &env };
	struct policy *p;
	uint8_t pkt[sizeof(syn4)];

	snprintf(g->name, sizeof(g->name), "obs");
	snprintf(g->auth_group, sizeof(g->auth_group), "obs");
	g->mtu = 1340;
	g->mode = MODE_OBSERVE;
	if (!(p = policy_compile(g, 1, &d)) || !(env.box = policy_box_new(p)))
		abort();
	snprintf(c.group, sizeof(c.group), "obs");
	memcpy(pkt, syn4, sizeof(pkt));
	conn_clamp(&c, pkt, sizeof(pkt));
	CHECK_MEM(pkt, syn4, sizeof(pkt));
	CHECK_INT(ctr.g[0].would_mss_rewrite, 1);
	CHECK_INT(ctr.g[0].mss_rewritten, 0);
	((struct group *)policy_group(p, 0))->mode = MODE_ENFORCE;
	conn_clamp(&c, pkt, sizeof(pkt));
	CHECK_INT(pkt[42] << 8 | pkt[43], 1300);
	CHECK_INT(ctr.g[0].mss_rewritten, 1);
	CHECK_INT(ctr.g[0].would_mss_rewrite, 1);
	policy_box_free(env.box);
	diag_free(&d);
}

/* One buffer state: the room never overflows the buffer, and EPOLLIN is asked
 * for exactly when the reader would read. */
static void check_state(size_t off, size_t ready, size_t len, size_t wpend)
{
	struct conn c = { .state = CONN_HTTP };
	struct side x = { .name = "client", .fd = -1 };
	struct dir in = { .buf = calloc(1, DIR_CAP), .off = off, .ready = ready, .len = len,
			  .wpend = wpend };
	struct dir out = { 0 };
	size_t room = dir_room(&in), kept = dir_compacts(&in) ? len - off : len;
	uint32_t ev = side_interest(&c, &x, &in, &out);

	CHECK(room == 0 || kept + room <= DIR_READ_MAX);
	CHECK(!!(ev & EPOLLIN) == (room > 0));
	free(in.buf);
}

int main(void)
{
	/* Empty, and no buffer at all (given back while idle). */
	check_state(0, 0, 0, 0);
	{
		struct dir none = { 0 };

		CHECK_INT(dir_room(&none), DIR_READ_MAX);
	}
	/* The wrap: a rewritten head left len past DIR_READ_MAX with written
	 * bytes below it. Compacted, ten bytes fit. */
	check_state(20, 30, DIR_READ_MAX + 10, 0);
	CHECK_INT(dir_room(&(struct dir){ .buf = (uint8_t *)"", .off = 20, .ready = 30,
					 .len = DIR_READ_MAX + 10 }), 10);
	/* The busy loop: a write pending at off == ready keeps the bytes where
	 * they are, len is past DIR_READ_MAX: no room, and no EPOLLIN (today's
	 * interest said len - off < DIR_READ_MAX and polled for input). */
	check_state(20, 20, DIR_READ_MAX + 10, 5);
	CHECK_INT(dir_room(&(struct dir){ .buf = (uint8_t *)"", .off = 20, .ready = 20,
					 .len = DIR_READ_MAX + 10, .wpend = 5 }), 0);
	check_state(0, 0, DIR_READ_MAX + 10, 0);
	check_state(0, 100, DIR_READ_MAX, 0);
	/* Room enough for a record: nothing moves. */
	check_state(100, 200, 300, 0);
	CHECK_INT(dir_room(&(struct dir){ .buf = (uint8_t *)"", .off = 100, .ready = 200,
					 .len = 300 }), DIR_READ_MAX - 300);
	/* Every state a connection can be in, on a coarse grid. */
	for (size_t len = 0; len <= DIR_CAP; len += 997)
		for (size_t ready = 0; ready <= len; ready += 1499)
			for (size_t off = 0; off <= ready; off += 1999)
				for (size_t wpend = 0; wpend <= 1; wpend++)
					check_state(off, ready, len, wpend);
	check_clamp_observe();
	return t_done("test_conn");
}
