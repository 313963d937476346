/* CSTP: the CONNECT request/response rewriters and the record stream parser.
 * Pure: bytes in, bytes out; no I/O, no allocation, no logging. */
#ifndef MTUGATE_PROXY_CSTP_H
#define MTUGATE_PROXY_CSTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"	/* enum dtls_mode */

enum cstp_res {
	CSTP_OK,		/* a 200 response, rewritten: the tunnel starts */
	CSTP_REFUSED,		/* a well-formed non-200 response, rewritten the same way:
				 * relay it, no tunnel starts, HTTP goes on */
	CSTP_MORE,		/* the head is not complete yet: call again with more */
	CSTP_E_LINE,		/* a line longer than HTTP_MAX_LINE */
	CSTP_E_HEAD,		/* head larger than HTTP_MAX_HEAD */
	CSTP_E_HOLD,		/* the lines to rewrite exceed CSTP_HOLD_MAX */
	CSTP_E_SYNTAX,		/* status line, header syntax, NUL, bare CR, obs-fold */
	CSTP_E_VALUE,		/* an MTU or port that is not a number in range, where
				 * it counts: X-CSTP-MTU (relay, block), X-DTLS-MTU and
				 * X-DTLS-Port (relay); elsewhere it passes as sent */
	CSTP_E_NOMTU,		/* a 200 with no X-CSTP-MTU to rewrite (relay/block) */
	CSTP_E_SPACE,		/* the output buffer is too small */
};

/* What happens to a response the rewriter cannot parse (every CSTP_E_*):
 * the proxy forwards no more of it, and closes both sides giving
 * cstp_res_str() as the reason. The lines it may rewrite (X-CSTP-MTU,
 * X-DTLS-*) are held until the head ends, so what the client saw before the
 * error never holds a DTLS offer or an MTU: a TLS-only group's guarantee
 * ("never offered DTLS") holds. */

/* The group's policy for one tunnel. */
struct cstp_policy {
	enum dtls_mode dtls;
	unsigned mtu;		/* the group's tunnel MTU; 0: no cap */
	uint16_t dtls_port;	/* relay: the X-DTLS-Port to announce; 0: unchanged */
	bool observe;		/* mode = observe: decide the rewrite, send the head as it came */
};

/* What the headend offered and what the client was sent. */
struct cstp_offer {
	int status;		/* the response's status code */
	unsigned cstp_mtu;	/* X-CSTP-MTU offered (the last one); 0: absent */
	unsigned dtls_mtu;	/* X-DTLS-MTU offered (the last one); 0: absent */
	unsigned base_mtu;	/* X-CSTP-Base-MTU (never rewritten); 0: absent */
	unsigned sent_mtu;	/* X-CSTP-MTU sent to the client */
	unsigned sent_dtls_mtu;	/* X-DTLS-MTU sent; 0: none sent */
	uint16_t dtls_port;	/* X-DTLS-Port offered (the last one, as openconnect uses) */
	bool dtls_offered;	/* the response had an X-DTLS* header */
	bool dtls_removed;	/* block: every X-DTLS* header was removed */
	bool port_rewritten;
	bool ipv6_starved;	/* an IPv6 address with an X-CSTP-MTU sent below
				 * 1280: the client's IPv6 cannot work (Linux turns
				 * it off on such a link); the caller warns */
	bool compressed;	/* X-CSTP- or X-DTLS-Content-Encoding: COMPRESSED
				 * records may follow, and they cannot be clamped */
	bool psk;		/* X-DTLS-CipherSuite: PSK-NEGOTIATE */
	uint8_t session_id[32];	/* legacy X-DTLS-Session-ID (64 hex digits) */
	bool has_session_id;
	uint8_t app_id[64];	/* X-DTLS-App-ID (PSK-NEGOTIATE), hex decoded */
	size_t app_id_len;	/* 0: absent or not hex */
	uint8_t addr4[4];	/* X-CSTP-Address, for group attribution by pool */
	bool has_addr4;
	uint8_t addr6[16];	/* X-CSTP-Address-IP6 (or an IPv6 X-CSTP-Address) */
	bool has_addr6;
	unsigned dpd;		/* X-CSTP-DPD, seconds; 0: absent or not a number */
	unsigned keepalive;	/* X-CSTP-Keepalive, seconds; 0: the same */
	unsigned removed;	/* header lines removed */
	unsigned rewritten;	/* header lines whose value changed */
	size_t head_len;	/* input bytes of the head: what follows is tunnel data */
	bool observed;		/* the head went as sent (mode = observe) ... */
	bool would_rewrite;	/* ... where the group's rewrite would have changed it */
};

/* Rewrite the headend's answer to CONNECT in one piece, per group:
 *   DTLS_BLOCK: remove every header whose name starts with X-DTLS (X-DTLS-*,
 *     X-DTLS12-*); X-CSTP-MTU = min(offered, mtu).
 *   DTLS_RELAY: X-CSTP-MTU and X-DTLS-MTU (only if present) = min(X-CSTP-MTU,
 *     X-DTLS-MTU, mtu) (the note's remedy 1: one MTU whatever the transport);
 *     every X-DTLS-Port = dtls_port.
 *   DTLS_PASS: unchanged (still parsed strictly, and reported).
 * X-CSTP-Base-MTU, every other header, their order and spelling, and each
 * line's terminator (CRLF or LF) stay byte for byte; a rewritten value keeps
 * the name and the separator as sent. The held lines (X-CSTP-MTU, X-DTLS*)
 * come last, before the blank line, in the order sent (see struct
 * cstp_head). in holds what arrived so far; only the head is read
 * (offer->head_len). cap >= head_len + CSTP_HOLD_MAX always suffices.
 * Errors: see above. */
enum cstp_res cstp_rewrite_response(const uint8_t *in, size_t inlen, const struct cstp_policy *pol,
				    uint8_t *out, size_t cap, size_t *outlen, struct cstp_offer *offer);

/* How long a healthy tunnel's TLS connection may stay silent, in seconds:
 * the client sends a DPD request when it has heard nothing for X-CSTP-DPD
 * seconds, a keepalive when it has sent nothing for X-CSTP-Keepalive, on the
 * TLS connection even while DTLS carries the data; three of the shorter
 * interval, and never less than idle (the configured idle_timeout). 0 when the
 * headend set neither (ASA "dpd-interval none", say): nothing bounds the
 * silence, and only TCP keepalive tells a dead peer. ocserv gives mobile
 * clients DPD 1800 s: a fixed 300 s would cut their tunnels, the very
 * reconnect mtugate is there to prevent. */
unsigned cstp_quiet_limit(const struct cstp_offer *o, unsigned idle);

/* What cstp_rewrite_request() takes out of the client's CONNECT request. */
enum cstp_req_opt {
	/* Compression hides inner TCP headers from the MSS clamp, and the
	 * response's Content-Encoding only confirms what the client offered, so
	 * the cure is here: remove X-CSTP-Accept-Encoding and
	 * X-DTLS-Accept-Encoding. */
	CSTP_REQ_NO_COMPRESSION = 1 << 0,
	/* For DTLS_BLOCK: remove X-DTLS-Master-Secret and every
	 * X-DTLS*-CipherSuite, so the headend offers no DTLS at all. */
	CSTP_REQ_NO_DTLS = 1 << 1,
	/* Remove every PSK-NEGOTIATE token from X-DTLS-CipherSuite, keeping the
	 * other suites as sent (a header left empty goes). PSK-NEGOTIATE takes
	 * its key from the TLS session's exporter, which differs on the two
	 * legs of a TLS-terminating proxy: it can never work through it. With
	 * X-DTLS-Master-Secret, the headend answers with legacy DTLS
	 * (X-DTLS-Session-ID), which can. A client that sent no Master-Secret
	 * and PSK-NEGOTIATE alone is offered no DTLS: it stays on TLS. */
	CSTP_REQ_NO_PSK = 1 << 2,
};

/* Rewrite the client's CONNECT request head in one piece: opts is a set of
 * enum cstp_req_opt; every other header keeps its bytes and order, the held
 * ones (X-CSTP-Accept-Encoding, X-DTLS*) come last. *head_len: input bytes
 * of the head; the output is never longer. CSTP_OK, CSTP_MORE or an error as
 * above. */
enum cstp_res cstp_rewrite_request(const uint8_t *in, size_t inlen, unsigned opts, uint8_t *out,
				   size_t cap, size_t *outlen, size_t *head_len);

/* The streaming form of both rewriters, for heads of any length: 2 x 2,500
 * split routes and a 100 KB X-CSTP-Post-Auth-XML line pass through line by
 * line, and only the lines a rewrite may touch are held (response:
 * X-CSTP-MTU and X-DTLS*; request: X-CSTP-Accept-Encoding and X-DTLS*),
 * at most CSTP_HOLD_MAX bytes in the caller's hold buffer. The rewrite is
 * decided when the head is complete (a tunnel's group follows from its
 * X-CSTP-Address), so the held lines are written then, rewritten, followed by
 * the blank line. Every other line passes with its bytes and order. Empty
 * lines before the start line are dropped (RFC 9112 2.2); an interim 1xx
 * response (101 aside) passes whole but for the held lines, which go, and the
 * head that follows it is the one rewritten. Memory per head: the hold
 * buffer and this struct; a line may be any length up to HTTP_MAX_LINE and
 * the head up to HTTP_MAX_HEAD. */
#define CSTP_HOLD_MAX 8192	/* held lines of one head, terminators included */
#define CSTP_KEEP 256		/* first bytes of each line, for its name and value */

struct cstp_head {
	bool response;
	uint8_t *hold;		/* the caller's, CSTP_HOLD_MAX bytes */
	size_t hold_len;
	/* results */
	struct cstp_offer offer;	/* response: what was offered (complete at the end) */
	/* Set by the caller before the first byte when the tunnel's group is
	 * known to observe: the held lines are passed in place as well, so the
	 * head goes byte for byte as sent (without it, an observed head has its
	 * held lines, unchanged, moved to its end). */
	bool observe;
	size_t head_len;		/* input bytes consumed: the head's, once complete */
	unsigned interim;		/* 1xx responses passed before this head */
	/* state */
	bool done, cr, value, bad_cstp, bad_dtls, cstp_ce, dtls_ce;
	int disp;
	unsigned line;			/* lines of the current head so far */
	size_t line_len, line_hold, keep_len;
	unsigned min_cstp, min_dtls;
	uint8_t keep[CSTP_KEEP];
	uint8_t blank[2];
	size_t blank_len;
};

void cstp_head_init(struct cstp_head *h, bool response, uint8_t *hold);

/* Consume stream bytes up to the end of the head. in[0..*used) is replaced
 * by out[0..*outlen): what may go on now. cap >= len + CSTP_KEEP always
 * suffices. CSTP_MORE: everything was consumed, the head goes on. CSTP_OK:
 * the head ended with in[*used - 1]; call a finish function. Errors: as
 * above (CSTP_E_LINE, _HEAD, _HOLD, _SYNTAX, _SPACE); the stream is then
 * dead. */
enum cstp_res cstp_head_feed(struct cstp_head *h, const uint8_t *in, size_t len, size_t *used,
			     uint8_t *out, size_t cap, size_t *outlen);

/* The response head is complete: h->offer says what was offered (the group
 * may follow from it). Write the held lines rewritten for pol and the blank
 * line: CSTP_OK for a 200, CSTP_REFUSED, or an error as cstp_rewrite_response.
 * With pol->observe or h->observe the rewrite for pol is decided only
 * (offer->would_rewrite) and the head goes unchanged, as for DTLS_PASS.
 * *offer gets the complete offer. cap >= 2 * CSTP_HOLD_MAX always suffices. */
enum cstp_res cstp_head_finish_response(struct cstp_head *h, const struct cstp_policy *pol,
					uint8_t *out, size_t cap, size_t *outlen,
					struct cstp_offer *offer);

/* The request head is complete: write the held lines filtered by opts and the
 * blank line. *removed: lines taken out or shortened. CSTP_OK or
 * CSTP_E_SPACE; cap >= CSTP_HOLD_MAX + 2 always suffices. */
enum cstp_res cstp_head_finish_request(struct cstp_head *h, unsigned opts, uint8_t *out,
				       size_t cap, size_t *outlen, unsigned *removed);

const char *cstp_res_str(enum cstp_res r);

/* The CSTP record stream. */
#define CSTP_HDR_LEN 8
#define CSTP_RECORD_MAX (CSTP_HDR_LEN + 65535)

enum cstp_type {
	CSTP_DATA = 0x00, CSTP_DPD_REQ = 0x03, CSTP_DPD_RESP = 0x04, CSTP_DISCONNECT = 0x05,
	CSTP_KEEPALIVE = 0x07, CSTP_COMPRESSED = 0x08, CSTP_TERMINATE = 0x09,
};
#define CSTP_NTYPES 10	/* counters indexed by type; unknown types count in other */

enum cstp_ev {
	CSTP_EV_FORWARD,	/* buf[0..len) may be forwarded now (consumed) */
	CSTP_EV_PACKET,		/* buf[0..len) is one whole DATA record carrying an inner TCP
				 * SYN: clamp buf[pkt_off..+pkt_len) in place, then forward */
	CSTP_EV_NEED,		/* keep every byte given, call again with more appended;
				 * need: how many bytes (<= CSTP_RECORD_MAX) are wanted */
	CSTP_EV_ERROR,		/* malformed record header at buf[0]: close the tunnel */
};

struct cstp_event {
	size_t len;
	size_t pkt_off, pkt_len;
	size_t need;
	uint8_t type;
};

/* Parser state and counters of one direction. Zero it to start. */
struct cstp_stream {
	size_t left;			/* payload bytes of the current record not yet passed */
	uint64_t records[CSTP_NTYPES];	/* whole records seen, by type */
	uint64_t other;			/* records of an unknown type (forwarded) */
	uint64_t bytes;			/* record bytes, headers included */
	uint64_t data_bytes;		/* DATA payload bytes */
	uint64_t held;			/* DATA records given as CSTP_EV_PACKET */
};

/* The next event for the unconsumed stream bytes buf[0..len). The state only
 * moves on FORWARD and PACKET, so after NEED the caller keeps buf and appends.
 * Non-DATA records, and DATA records whose inner packet is shown not to be a
 * TCP SYN once its first bytes are in, flow through as they arrive, split
 * anywhere; only a SYN's whole record (at most CSTP_RECORD_MAX) is held, so
 * the caller's buffer needs that capacity. In-stream clamping may only
 * lower the MSS in place (mss_clamp with cap = pkt_len): inserting an option
 * changes the length; a caller that wants it re-frames the record with
 * cstp_write_header(). */
enum cstp_ev cstp_stream_next(struct cstp_stream *s, const uint8_t *buf, size_t len,
			      struct cstp_event *ev);

/* Write a record header for a payload of len (<= 65535) bytes. */
void cstp_write_header(uint8_t hdr[CSTP_HDR_LEN], enum cstp_type type, size_t len);

#endif
