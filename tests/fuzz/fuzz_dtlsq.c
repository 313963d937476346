/* Fuzz the DTLS queue handler: arbitrary IP packets, and arbitrary UDP
 * payloads between a client and the headend's DTLS ports (so the DTLS parser
 * and the session lookup are reached), with a policy of each group mode.
 * The verdict must stay within what the rules expect: a mark only inside
 * DTLS_MARK_MASK, never a rewritten payload, DROP only without a mark. The
 * top bit of the last input byte puts every group in mode = observe: then
 * every verdict is an accept whose mark asks for nothing but DECIDED. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/diag.h"
#include "daemon/dtlsq.c"

static struct policy *pol;
static struct dtlsq_state *st;
static struct session_table *sessions;
static struct counters cnt;

static void fuzz_setup(void)
{
	static const char *const names[] = { "relay", "drop", "reject", "pass" };
	static const char *const clients[] = { "198.18.1.0/26", "198.18.1.64/26", "2001:db8:1::/64",
					       "198.18.1.192/26" };
	struct group *g = calloc(4, sizeof(*g));
	struct session_info si = { 0 };
	struct diag d = { 0 };
	struct conf c;

	for (int i = 0; i < 4; i++) {
		strcpy(g[i].name, names[i]);
		g[i].mtu = 1400;
		g[i].clients = calloc(1, sizeof(struct prefix));
		g[i].nclients = 1;
		if (prefix_parse(g[i].clients, clients[i]) < 0)
			abort();
		g[i].dtls = i == 0 ? DTLS_RELAY : i == 3 ? DTLS_PASS : DTLS_BLOCK;
		g[i].dtls_block = i == 2 ? DTLS_BLOCK_REJECT : DTLS_BLOCK_DROP;
	}
	pol = policy_compile(g, 4, &d);
	if (!pol)
		abort();
	for (size_t i = 0; i < policy_count(pol); i++)
		((struct group *)policy_group(pol, i))->slot = (unsigned)i;
	conf_defaults(&c);
	c.headend.naddr = 2;
	addr_parse(&c.headend.addr[0], "198.18.2.2");
	addr_parse(&c.headend.addr[1], "2001:db8:2::2");
	c.headend.dtls_port = 443;
	c.headend.advertised_dtls_port = 444;
	st = dtlsq_state_new(&c);
	sessions = session_table_new(4);
	memset(si.id, 0xa0, 32);		/* any 32 bytes of 0xa0 are a known session */
	si.id_len = 32;
	strcpy(si.group, "drop");
	session_add(sessions, &si);
	dtlsq_state_set_sessions(st, sessions);
}

/* An IPv4 or IPv6 UDP header around payload; byte 0 of the input picks the
 * family, the direction and the port. */
static size_t fuzz_wrap(uint8_t *out, uint8_t sel, const uint8_t *pl, size_t n)
{
	static const uint8_t cli4[4] = { 198, 18, 1, 2 }, he4[4] = { 198, 18, 2, 2 };
	static const uint8_t cli6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 2 };
	static const uint8_t he6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 2 };
	bool v6 = sel & 2, back = sel & 4;
	uint16_t port = sel & 8 ? 443 : 444, cport = 40000;
	size_t hl = v6 ? 40 : 20, ul = 8 + n;

	memset(out, 0, hl);
	if (v6) {
		out[0] = 0x60;
		out[4] = (uint8_t)(ul >> 8);
		out[5] = (uint8_t)ul;
		out[6] = 17;
		out[7] = 64;
		memcpy(out + 8, back ? he6 : cli6, 16);
		memcpy(out + 24, back ? cli6 : he6, 16);
		if (sel & 16)
			out[23] = (uint8_t)(0x40 + (sel >> 5));	/* another client */
	} else {
		out[0] = 0x45;
		out[2] = (uint8_t)((hl + ul) >> 8);
		out[3] = (uint8_t)(hl + ul);
		out[8] = 64;
		out[9] = 17;
		memcpy(out + 12, back ? he4 : cli4, 4);
		memcpy(out + 16, back ? cli4 : he4, 4);
		out[back ? 19 : 15] = (uint8_t)(sel & 0xe0);	/* picks the group */
	}
	out[hl] = (uint8_t)((back ? port : cport) >> 8);
	out[hl + 1] = (uint8_t)(back ? port : cport);
	out[hl + 2] = (uint8_t)((back ? cport : port) >> 8);
	out[hl + 3] = (uint8_t)(back ? cport : port);
	out[hl + 4] = (uint8_t)(ul >> 8);
	out[hl + 5] = (uint8_t)ul;
	memcpy(out + hl + 8, pl, n);
	return hl + ul;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65535];
	struct nfq_packet pk = { .buf = buf };
	struct nfq_verdict v = { 0 };
	bool observe;

	if (!pol)
		fuzz_setup();
	if (size < 1 || size > 60000)
		return 0;
	if (data[0] & 1) {
		memcpy(buf, data + 1, size - 1);
		pk.len = size - 1;
	} else {
		pk.len = fuzz_wrap(buf, data[0], data + 1, size - 1);
	}
	pk.mark = 0x12345670u;
	observe = data[size - 1] & 0x80;
	for (size_t i = 0; i < policy_count(pol); i++)
		((struct group *)policy_group(pol, i))->mode = observe ? MODE_OBSERVE : MODE_ENFORCE;
	dtlsq_packet(st, pol, &cnt, &pk, &v);
	if (observe && (v.action != NFQ_ACCEPT ||
			(v.mark & (DTLS_MARK_NORMALIZE | DTLS_MARK_BLOCKED | DTLS_MARK_REJECT))))
		abort();
	if (v.payload || (v.action == NFQ_DROP && v.set_mark))
		abort();
	if (v.set_mark && ((v.mark & ~DTLS_MARK_MASK) != (pk.mark & ~DTLS_MARK_MASK) ||
			   (v.mark & DTLS_MARK_TAG_MASK) != DTLS_MARK_TAG))
		abort();
	/* A blocked verdict is an accept the filter rules turn into drop/reject. */
	if ((v.mark & DTLS_MARK_BLOCKED) && v.action != NFQ_ACCEPT)
		abort();
	return 0;
}
