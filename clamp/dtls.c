/* DTLS record and ClientHello parsing, and the relay/block/pass decision. */
#include "clamp/dtls.h"

#include <string.h>

#include "policy/policy.h"

enum { CT_CHANGE_CIPHER_SPEC = 20, CT_TLS12_CID = 25, CT_HANDSHAKE = 22 };
enum { HS_CLIENT_HELLO = 1 };

static uint32_t get16(const uint8_t *b) { return (uint32_t)b[0] << 8 | b[1]; }
static uint32_t get24(const uint8_t *b) { return (uint32_t)b[0] << 16 | get16(b + 1); }

static bool version_known(uint32_t v)
{
	return v == DTLS_VERSION_CISCO || v == DTLS_VERSION_1_0 || v == DTLS_VERSION_1_2;
}

/* A cursor over one handshake body: every read is bounds-checked. */
struct cur {
	const uint8_t *p;
	size_t left;
};

static bool cur_skip(struct cur *c, size_t n)
{
	if (n > c->left)
		return false;
	c->p += n;
	c->left -= n;
	return true;
}

/* A vector with a 1- or 2-byte length prefix; its body goes to *body. */
static bool cur_vec(struct cur *c, size_t lenbytes, struct cur *body)
{
	size_t n;

	if (c->left < lenbytes)
		return false;
	n = lenbytes == 1 ? c->p[0] : get16(c->p);
	if (!cur_skip(c, lenbytes) || n > c->left)
		return false;
	body->p = c->p;
	body->left = n;
	return cur_skip(c, n);
}

/* Find the App-ID extension in an extensions block. A truncated block is
 * malformed only when the handshake message is complete in this datagram. */
static enum dtls_parse parse_extensions(struct dtls_info *info, struct cur *c, bool partial)
{
	struct cur exts, data, id;

	if (c->left == 0)
		return DTLS_CLIENT_HELLO;	/* extensions are optional */
	if (!cur_vec(c, 2, &exts))
		return partial ? DTLS_CLIENT_HELLO : DTLS_MALFORMED;
	if (c->left != 0)
		return DTLS_MALFORMED;		/* bytes after the extensions */
	while (exts.left > 0) {
		uint32_t type;

		if (exts.left < 4)
			return DTLS_MALFORMED;
		type = get16(exts.p);
		cur_skip(&exts, 2);
		if (!cur_vec(&exts, 2, &data))
			return DTLS_MALFORMED;
		if (type != DTLS_EXT_APP_ID)
			continue;
		/* opaque ApplicationID<1..2^8-1>, alone in the extension */
		if (!cur_vec(&data, 1, &id) || id.left == 0 || data.left != 0)
			return DTLS_MALFORMED;
		info->app_id = id.p;
		info->app_id_len = id.left;
	}
	return DTLS_CLIENT_HELLO;
}

/* The handshake message inside the first record (frag, n bytes). */
static enum dtls_parse parse_handshake(struct dtls_info *info, const uint8_t *frag, size_t n)
{
	struct cur c, v;
	uint32_t msglen, fragoff, fraglen;
	enum dtls_parse res;

	/* An encrypted handshake (epoch > 0: a renegotiation) has no readable
	 * header: a plain record to us, never malformed. */
	if (info->epoch != 0)
		return DTLS_RECORD;
	if (n < DTLS_HANDSHAKE_HEADER)
		return DTLS_MALFORMED;
	msglen = get24(frag + 1);
	fragoff = get24(frag + 6);
	fraglen = get24(frag + 9);
	if (fraglen > n - DTLS_HANDSHAKE_HEADER || fragoff + fraglen > msglen)
		return DTLS_MALFORMED;
	/* Later fragments carry no readable hello: plain records to us. */
	if (frag[0] != HS_CLIENT_HELLO || fragoff != 0)
		return DTLS_RECORD;
	info->hello_partial = fraglen < msglen;
	c.p = frag + DTLS_HANDSHAKE_HEADER;
	c.left = fraglen;
	if (c.left < 2 + 32 + 1)
		return DTLS_MALFORMED;
	info->hello_version = (uint16_t)get16(c.p);
	if (!version_known(info->hello_version))
		return DTLS_MALFORMED;
	cur_skip(&c, 2 + 32);			/* client_version, random */
	if (c.p[0] > DTLS_SESSION_ID_MAX || !cur_vec(&c, 1, &v))
		return DTLS_MALFORMED;
	info->session_id = v.p;
	info->session_id_len = v.left;
	info->id = v.p;
	info->id_len = v.left;
	/* The rest may be cut off in a fragmented hello: what we have is
	 * enough for the session ID, and the App-ID is searched if present. */
	res = DTLS_MALFORMED;
	if (!cur_vec(&c, 1, &v))		/* cookie */
		goto cut;
	if (!cur_vec(&c, 2, &v))		/* cipher_suites */
		goto cut;
	if (v.left < 2 || v.left % 2)
		return DTLS_MALFORMED;
	if (!cur_vec(&c, 1, &v))		/* compression_methods */
		goto cut;
	if (v.left < 1)
		return DTLS_MALFORMED;
	res = parse_extensions(info, &c, info->hello_partial);
	if (res == DTLS_CLIENT_HELLO && info->app_id) {
		info->id = info->app_id;
		info->id_len = info->app_id_len;
		info->id_is_app = true;
	}
	return res;
cut:
	return info->hello_partial ? DTLS_CLIENT_HELLO : res;
}

enum dtls_parse dtls_parse(struct dtls_info *info, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	const uint8_t *first = NULL;
	enum dtls_parse res;

	memset(info, 0, sizeof(*info));
	/* The first record decides whether this is DTLS at all; a header cut
	 * short after a plausible type and version is a truncated record. */
	if (len < 1 || buf[0] < CT_CHANGE_CIPHER_SPEC || buf[0] > CT_TLS12_CID)
		return DTLS_NOT;
	if (len < 3)
		return len == 2 && buf[1] != 0x01 && buf[1] != 0xfe ? DTLS_NOT : DTLS_MALFORMED;
	if (!version_known(get16(buf + 1)))
		return DTLS_NOT;
	while (off < len) {
		const uint8_t *r = buf + off;
		size_t rlen;

		if (len - off < DTLS_RECORD_HEADER)
			return DTLS_MALFORMED;
		if (r[0] < CT_CHANGE_CIPHER_SPEC || r[0] > CT_TLS12_CID ||
		    !version_known(get16(r + 1)))
			return DTLS_MALFORMED;
		rlen = get16(r + 11);
		if (rlen > DTLS_RECORD_MAX || rlen > len - off - DTLS_RECORD_HEADER)
			return DTLS_MALFORMED;
		if (!first)
			first = r;
		off += DTLS_RECORD_HEADER + rlen;
		info->nrecords++;
	}
	info->type = first[0];
	info->version = (uint16_t)get16(first + 1);
	info->epoch = (uint16_t)get16(first + 3);
	info->seq = (uint64_t)get24(first + 5) << 24 | get24(first + 8);
	info->length = (uint16_t)get16(first + 11);
	if (info->type != CT_HANDSHAKE)
		return DTLS_RECORD;
	res = parse_handshake(info, first + DTLS_RECORD_HEADER, info->length);
	if (res != DTLS_CLIENT_HELLO) {
		/* No half-parsed ID may reach a session lookup. */
		info->session_id = info->app_id = info->id = NULL;
		info->session_id_len = info->app_id_len = info->id_len = 0;
		info->id_is_app = info->hello_partial = false;
		info->hello_version = 0;
	}
	return res;
}

enum dtls_dir dtls_direction(bool from_headend, uint16_t sport, uint16_t dport,
			     uint16_t advertised_port, uint16_t real_port)
{
	if (from_headend)
		return sport == advertised_port || sport == real_port ?
			DTLS_DIR_FROM_HEADEND : DTLS_DIR_NONE;
	if (dport == advertised_port)
		return DTLS_DIR_TO_ADVERTISED;
	if (dport == real_port)
		return DTLS_DIR_TO_REAL;
	return DTLS_DIR_NONE;
}

/*
 * The decision table. Every client->headend verdict carries DTLS_MARK_DECIDED
 * so the flow's later datagrams stay in the kernel (issue 6: at most a packet
 * or two per flow reach user space).
 *
 *   group  dtls   direction                 action       mark bits         counters
 *   none   -      to either port            ACCEPT       DECIDED           nogroup
 *   any    -      DTLS_DIR_NONE             ACCEPT       (none)            -
 *   X      relay  to advertised, differ     ACCEPT       DECIDED|NORMALIZE relayed, port_rewritten
 *   X      relay  to advertised, same port  ACCEPT       DECIDED           relayed
 *   X      relay  to dtls_port              ACCEPT       DECIDED           relayed
 *   X      pass   to either port            ACCEPT       DECIDED           passed
 *   X      block  to either port            DROP/REJECT  DECIDED|BLOCKED   blocked
 *                                                        (|REJECT)
 *   none   -      from headend              ACCEPT       (none)            nogroup
 *   X      relay  from headend              ACCEPT       (none)            relayed
 *   X      pass   from headend              ACCEPT       (none)            passed
 *   X      block  from headend              DROP         (none)            blocked
 *
 * Why:
 * - No group: interface.md says such packets pass unchanged, so no port
 *   normalization either; DECIDED still keeps the flow out of the queue.
 * - Normalization only toward the advertised port: that is where clients
 *   are sent and where CSCuh61321 leaves nobody listening. A client that
 *   already uses dtls_port (the proxy rewrote X-DTLS-Port) needs nothing.
 * - dtls_port is DNATed by the kernel on the mark; conntrack rewrites the
 *   replies' source back to the advertised port, so the client sees the
 *   port it expects without us touching a reply.
 * - Block drops both directions so no DTLS datagram crosses the gateway.
 *   A headend's datagram is never rejected: an ICMP error toward the
 *   headend would only make it log, the client is the one to give up.
 * - Replies get no mark: the connection's mark was set by its first packet,
 *   and a reply seen here (conntrack lost the flow) must not start a DNAT
 *   of the headend's own traffic. The one exception, dtls_repair(), marks
 *   it for the SNAT that makes it a reply again.
 */
struct dtls_verdict dtls_decide(const struct group *g, enum dtls_dir dir, bool ports_differ)
{
	struct dtls_verdict v = { DTLS_ACCEPT, 0, 0 };
	bool reply = dir == DTLS_DIR_FROM_HEADEND;

	if (dir == DTLS_DIR_NONE)
		return v;
	if (!reply)
		v.mark = DTLS_MARK_TAG | DTLS_MARK_DECIDED;
	if (!g) {
		v.counters = DTLS_CNT_NOGROUP;
		return v;
	}
	switch (g->dtls) {
	case DTLS_RELAY:
		v.counters = DTLS_CNT_RELAYED;
		if (dir == DTLS_DIR_TO_ADVERTISED && ports_differ) {
			v.mark |= DTLS_MARK_NORMALIZE;
			v.counters |= DTLS_CNT_PORT_REWRITTEN;
		}
		break;
	case DTLS_PASS:
		v.counters = DTLS_CNT_PASSED;
		break;
	case DTLS_BLOCK:
		v.counters = DTLS_CNT_BLOCKED;
		v.action = DTLS_DROP;
		if (reply)
			break;
		v.mark |= DTLS_MARK_BLOCKED;
		if (g->dtls_block == DTLS_BLOCK_REJECT) {
			v.action = DTLS_REJECT;
			v.mark |= DTLS_MARK_REJECT;
		}
		break;
	}
	return v;
}

/* Only from the real port with the ports split: from the advertised port
 * (or equal ports) the client's socket matches already. Pass and no group
 * get no port fix anywhere (interface.md), block drops it in dtls_decide(). */
struct dtls_verdict dtls_repair(struct dtls_verdict v, const struct group *g, enum dtls_dir dir,
				uint16_t sport, uint16_t real_port, uint16_t advertised_port)
{
	if (dir != DTLS_DIR_FROM_HEADEND || !g || g->dtls != DTLS_RELAY || sport != real_port ||
	    real_port == advertised_port)
		return v;
	v.mark = DTLS_MARK_TAG | DTLS_MARK_DECIDED | DTLS_MARK_NORMALIZE;
	v.counters |= DTLS_CNT_REPAIRED;
	return v;
}

struct dtls_verdict dtls_observe(struct dtls_verdict v, const struct group *g)
{
	static const unsigned would[][2] = {
		{ DTLS_CNT_BLOCKED, DTLS_CNT_WOULD_BLOCK },
		{ DTLS_CNT_PORT_REWRITTEN, DTLS_CNT_WOULD_PORT_FIX },
		{ DTLS_CNT_REPAIRED, DTLS_CNT_WOULD_REPAIR },
	};

	if (!g || g->mode != MODE_OBSERVE)
		return v;
	v.action = DTLS_ACCEPT;
	if (v.mark)
		v.mark &= ~(DTLS_MARK_NORMALIZE | DTLS_MARK_BLOCKED | DTLS_MARK_REJECT);
	for (size_t i = 0; i < sizeof(would) / sizeof(would[0]); i++)
		if (v.counters & would[i][0])
			v.counters = (v.counters & ~would[i][0]) | would[i][1];
	return v;
}
