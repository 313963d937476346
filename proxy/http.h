/* HTTP/1.1 framing of the authentication exchange, and the group names it
 * carries. Pure: bytes in, results out; no I/O, no allocation. */
#ifndef MTUGATE_PROXY_HTTP_H
#define MTUGATE_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on what streams through, not on what is kept: an ASA sends 2,500
 * split routes per family and its X-CSTP-Post-Auth-XML on one line. No
 * header count: the head's size bounds it. */
#define HTTP_MAX_LINE (256 * 1024)	/* one line, terminator included */
#define HTTP_MAX_HEAD (2 * 1024 * 1024)	/* start line + headers + blank line;
					 * the trailer section has the same limit */
#define HTTP_GROUP_MAX 64		/* a group name, NUL included (as struct group) */

enum http_res {
	HTTP_MORE,		/* everything consumed, the message goes on */
	HTTP_DONE,		/* the message ended; *used bytes were its last */
	HTTP_E_LINE,		/* a line longer than HTTP_MAX_LINE */
	HTTP_E_HEAD,		/* head larger than HTTP_MAX_HEAD */
	HTTP_E_SYNTAX,		/* bad start line, header, NUL, bare CR, obs-fold */
	HTTP_E_LENGTH,		/* bad or conflicting Content-Length, or CL with TE */
	HTTP_E_CHUNK,		/* bad chunk size line or chunk terminator */
	HTTP_E_UNSUPPORTED,	/* a Transfer-Encoding other than one "chunked" */
	HTTP_E_EOF,		/* the stream ended inside a message */
};

/* What the framer expects on its side of the connection. */
enum http_kind {
	HTTP_REQUEST,
	HTTP_RESPONSE,
	HTTP_RESPONSE_NOBODY,	/* the answer to a HEAD request */
	HTTP_RESPONSE_CONNECT,	/* the answer to a CONNECT: 2xx ends at the head */
};

/* Optional copy of a message for group extraction: the head verbatim, then
 * the body with any chunked framing removed. The caller owns buf and picks
 * cap (the framer itself holds no message bytes). A head longer than
 * HTTP_CAPTURE_HEAD() keeps its complete lines up to there, so that long
 * cookies leave room for the login's XML. */
struct http_capture {
	uint8_t *buf;
	size_t cap;
	size_t len;
	size_t head_len;	/* valid once the head is complete */
	bool head_cut;		/* lines of the head past HTTP_CAPTURE_HEAD() were not copied */
	bool truncated;		/* cap was reached: what follows was not copied */
};
#define HTTP_CAPTURE_BODY 4096	/* at least this much of cap is left for the body */
#define HTTP_CAPTURE_HEAD(cap) ((cap) > 2 * HTTP_CAPTURE_BODY ? (cap) - HTTP_CAPTURE_BODY : (cap) / 2)

/* Incremental framer: embed it, http_framer_init() it, feed it slices. The
 * fields after "results" are for reading; the rest is parser state. */
struct http_framer {
	enum http_kind kind;
	struct http_capture *capture;	/* NULL: nothing copied */
	unsigned interim;	/* 1xx responses (101 aside) read before the final one:
				 * each is framed and skipped, the request stays pending */
	/* results, valid once the head is complete */
	char method[16];	/* request method, "" if longer */
	int status;		/* response status code */
	bool connect;		/* CONNECT /CSCOSSLC/tunnel */
	bool tunnel;		/* 2xx answer to a CONNECT: raw tunnel bytes follow */
	bool chunked;
	bool until_eof;		/* a response delimited by the connection's close */
	bool has_length;
	uint64_t content_length;
	size_t head_len;
	uint64_t body_len;	/* body bytes seen, chunk framing excluded */
	uint64_t trailer_len;
	/* state */
	int state;
	bool cr, in_trailer, te_seen;
	size_t line_len;
	uint64_t left;
	unsigned name_len, match, value_len;
	bool value_end, value_digit, hex_end;
	uint64_t value_num;
	char te[16];
	char start[96];		/* first bytes of the start line */
	char tail[12];		/* last bytes of the start line */
	size_t start_len;
};

/* Reset f for the next message of the given kind (capture may be NULL; its
 * len and flags are reset too). */
void http_framer_init(struct http_framer *f, enum http_kind kind, struct http_capture *capture);

/* Consume bytes of the stream. *used is how many were consumed: all of them
 * for HTTP_MORE, up to and including the message's last byte for HTTP_DONE
 * (what follows belongs to the next message, or to the tunnel), up to the
 * offending byte for an error. After HTTP_DONE, init again. */
enum http_res http_feed(struct http_framer *f, const uint8_t *data, size_t len, size_t *used);

/* The stream closed: HTTP_DONE ends a close-delimited response, HTTP_MORE
 * means no message was under way, HTTP_E_EOF that one was cut short. */
enum http_res http_framer_eof(struct http_framer *f);

/* A short reason for logs ("line too long"). */
const char *http_res_str(enum http_res r);

/* Line helpers shared with the CONNECT rewriter. A line ends with LF or
 * CRLF (as openconnect reads them, so nothing can hide from us behind a bare
 * LF); a bare CR or a NUL is an error. HTTP_DONE: *end is where the
 * terminator starts, *next the byte after it. HTTP_MORE: no LF yet. */
enum http_res http_find_line(const uint8_t *buf, size_t len, size_t *end, size_t *next);

/* Split a header line (terminator excluded): a token name, ':' with no space
 * before it, a value of visible characters, spaces and tabs, returned with
 * surrounding whitespace trimmed. false if malformed (obs-fold included). */
bool http_split_header(const uint8_t *line, size_t n, size_t *name_len, size_t *voff, size_t *vlen);

/* A header name's byte (RFC 9110 tchar); a field value's (VCHAR, obs-text,
 * SP, HTAB). Inline: the head parsers ask for every byte. */
static inline bool http_is_tchar(uint8_t c)
{
	/* Bit c of the ASCII tchar set: "!#$%&'*+-.^_`|~", digits, letters. */
	static const uint32_t set[4] = { 0, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff };

	return c < 128 && (set[c >> 5] >> (c & 31) & 1);
}

static inline bool http_is_vbyte(uint8_t c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/* Case-insensitive comparison of a header name with a lower-case name. */
bool http_name_is(const uint8_t *name, size_t n, const char *lower);

/* Group name candidates of one message; "" where absent. Names longer than
 * HTTP_GROUP_MAX - 1, empty, or with control characters are ignored. */
struct http_groups {
	char select[HTTP_GROUP_MAX];	/* <group-select> in the client's XML, or a
					 * legacy form's group_list= field */
	char url[HTTP_GROUP_MAX];	/* group-url: the path of a POST, or of <group-access> */
	char tunnel[HTTP_GROUP_MAX];	/* <tunnel-group>, e.g. inside <opaque> */
	char user[HTTP_GROUP_MAX];	/* <username> in the XML login (AnyConnect's
					 * and openconnect's <auth>), or a legacy form's
					 * username= field: shown, never the password */
};

/* Read the candidates of a complete message (head as captured, body
 * de-chunked). Precedence is the caller's: select, then tunnel, then url. */
void http_extract_groups(const uint8_t *head, size_t head_len, const uint8_t *body,
			 size_t body_len, struct http_groups *g);

#endif
