/* DTLS datagrams between AnyConnect clients and the headend: record and
 * ClientHello parsing, and the per-group relay/block/pass decision. Pure. */
#ifndef MTUGATE_CLAMP_DTLS_H
#define MTUGATE_CLAMP_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct group;

/* Record versions on the wire. 0x0100 is OpenSSL's DTLS1_BAD_VER: the
 * pre-RFC "DTLS 0.9" that Cisco's legacy AnyConnect DTLS speaks. */
#define DTLS_VERSION_CISCO 0x0100
#define DTLS_VERSION_1_0 0xfeff
#define DTLS_VERSION_1_2 0xfefd

#define DTLS_RECORD_HEADER 13
#define DTLS_HANDSHAKE_HEADER 12
/* RFC 6347 4.1: a record never carries more than 2^14 + 2048 bytes. */
#define DTLS_RECORD_MAX (16384 + 2048)
#define DTLS_SESSION_ID_MAX 32
/* openconnect and ocserv carry the PSK-NEGOTIATE X-DTLS-App-ID in this
 * private ClientHello extension as opaque ApplicationID<1..2^8-1>. */
#define DTLS_EXT_APP_ID 48018

enum dtls_parse {
	DTLS_NOT,		/* not a DTLS record: wrong content type or version */
	DTLS_RECORD,		/* well-formed records, the first is no ClientHello */
	DTLS_CLIENT_HELLO,	/* a ClientHello; id/id_len set */
	DTLS_MALFORMED,		/* looks like DTLS but lengths or fields are wrong */
};

/* What dtls_parse() found. Pointers point into the caller's buffer. */
struct dtls_info {
	uint8_t type;		/* content type of the first record */
	uint16_t version;	/* record version */
	uint16_t epoch;
	uint64_t seq;		/* 48 bits */
	uint16_t length;	/* of the first record's fragment */
	unsigned nrecords;	/* records in the datagram */
	/* ClientHello only: */
	uint16_t hello_version;
	bool hello_partial;	/* a handshake fragment shorter than the message */
	const uint8_t *session_id;
	size_t session_id_len;	/* 0..32; legacy: the X-DTLS-Session-ID */
	const uint8_t *app_id;	/* NULL unless the App-ID extension is present */
	size_t app_id_len;
	/* The key the headend maps the hello to its session by (ocserv
	 * get_session_id()): the App-ID when present, else the session ID. */
	const uint8_t *id;
	size_t id_len;
	bool id_is_app;
};

/* Parse a UDP payload. Every record in the datagram must be framed
 * correctly; only the first is looked into. info is always written; the
 * ClientHello fields are set only with DTLS_CLIENT_HELLO. */
enum dtls_parse dtls_parse(struct dtls_info *info, const uint8_t *buf, size_t len);

/* Conntrack/packet marks of a decided DTLS flow. The daemon puts one in the
 * verdict of a flow's first datagram; `CONNMARK --save-mark` keeps it on the
 * connection; the rules printed by `mtugatectl rules` match it:
 *   queue only while  (ctmark & DTLS_MARK_MASK) == 0
 *   DNAT to dtls_port when (mark & DTLS_MARK_TAG_MASK|DTLS_MARK_NORMALIZE)
 *                          == DTLS_MARK_TAG|DTLS_MARK_NORMALIZE   (nat PREROUTING;
 *   from the headend's dtls_port, SNAT to the advertised port: nat POSTROUTING)
 *   drop/reject  when (mark & DTLS_MARK_TAG_MASK|DTLS_MARK_BLOCKED)
 *                          == DTLS_MARK_TAG|DTLS_MARK_BLOCKED
 * "MT" in the upper half keeps us clear of marks other tools put in the low
 * bits; bits of the mark outside DTLS_MARK_MASK are never ours to change.
 * These are the default bits and the terms dtls_decide() speaks in; with
 * `[queues] mark_mask` conf/marks.h maps them into the administrator's bits. */
#define DTLS_MARK_TAG 0x4d540000u	/* "MT" */
#define DTLS_MARK_TAG_MASK 0xffff0000u
#define DTLS_MARK_DECIDED 0x1u		/* seen by the daemon: do not queue again */
#define DTLS_MARK_NORMALIZE 0x2u	/* to advertised port: DNAT to dtls_port */
#define DTLS_MARK_BLOCKED 0x4u		/* group says dtls = block */
#define DTLS_MARK_REJECT 0x8u		/* ... with dtls_block = reject */
#define DTLS_MARK_MASK (DTLS_MARK_TAG_MASK | 0xfu)

/* Which way a datagram goes, from the headend's addresses and ports. */
enum dtls_dir {
	DTLS_DIR_NONE,		/* not to or from a DTLS port of the headend */
	DTLS_DIR_TO_ADVERTISED,	/* client -> headend:advertised_dtls_port */
	DTLS_DIR_TO_REAL,	/* client -> headend:dtls_port (ports differ) */
	DTLS_DIR_FROM_HEADEND,	/* headend -> client, either port */
};

enum dtls_action { DTLS_ACCEPT, DTLS_DROP, DTLS_REJECT };

/* Counters a verdict asks the caller to bump (bit set). */
#define DTLS_CNT_RELAYED 0x1u		/* group dtls_relayed */
#define DTLS_CNT_BLOCKED 0x2u		/* group dtls_blocked */
#define DTLS_CNT_PORT_REWRITTEN 0x4u	/* group dtls_port_rewritten */
#define DTLS_CNT_PASSED 0x8u		/* group packets (dtls = pass) */
#define DTLS_CNT_NOGROUP 0x10u		/* packet nogroup */
#define DTLS_CNT_REPAIRED 0x20u		/* group dtls_repaired */
#define DTLS_CNT_WOULD_BLOCK 0x40u	/* group would_dtls_block (mode = observe) */
#define DTLS_CNT_WOULD_PORT_FIX 0x80u	/* group would_dtls_port_fix */
#define DTLS_CNT_WOULD_REPAIR 0x100u	/* group would_dtls_repair */

struct dtls_verdict {
	enum dtls_action action;
	uint32_t mark;		/* 0: leave the mark alone; else within DTLS_MARK_MASK */
	unsigned counters;	/* DTLS_CNT_* */
};

/* Classify by ports. from_headend: the source address is a headend address
 * (else the destination is). Equal ports classify as TO_ADVERTISED. */
enum dtls_dir dtls_direction(bool from_headend, uint16_t sport, uint16_t dport,
			     uint16_t advertised_port, uint16_t real_port);

/* The decision for one datagram of group g (NULL: no group matched). */
struct dtls_verdict dtls_decide(const struct group *g, enum dtls_dir dir, bool ports_differ);

/* The headend speaks first in a flow conntrack does not know (flushed, a
 * reboot, a failover without UDP in conntrackd's sync): from dtls_port, its
 * datagrams would reach a client whose socket expects the advertised port.
 * For a relay group's client, v (dtls_decide()'s verdict for such a
 * datagram) gets DECIDED|NORMALIZE, which the nat POSTROUTING rule turns
 * into an SNAT back to the advertised port, and DTLS_CNT_REPAIRED. */
struct dtls_verdict dtls_repair(struct dtls_verdict v, const struct group *g, enum dtls_dir dir,
				uint16_t sport, uint16_t real_port, uint16_t advertised_port);

/* The verdict of a group with mode = observe: v (the decision enforce would
 * apply) turned into an accept whose mark keeps only DECIDED (the flow stays
 * in the kernel, unchanged: no block, no DNAT, no SNAT), and its blocked,
 * port-rewritten and repaired counters into the would_* ones. Any other
 * group's verdict comes back as it is. */
struct dtls_verdict dtls_observe(struct dtls_verdict v, const struct group *g);

#endif
