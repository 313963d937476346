/* mtugatectl sessions: one control-socket "session" line (proxy/session.h's
 * session_format()) read back into fields, rendered as a table row for
 * people or a JSON object for scripts. Pure: text in, text out. */
#ifndef MTUGATE_DAEMON_SESSVIEW_H
#define MTUGATE_DAEMON_SESSVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

struct sessview {
	char user[256];			/* decoded; has_user false: not seen */
	bool has_user;
	char group[64], client[64], dtls[16];
	char addr[2][48];		/* IPv4 and/or IPv6, "" when absent */
	int64_t since;
	unsigned offered_cstp, offered_dtls, sent_cstp, sent_dtls;	/* 0: none */
	unsigned reconnects;
	uint64_t bytes_in, bytes_out;
	unsigned worker;		/* the proxy worker that holds it */
};

/* The value of a "session" line (what follows the tab): 0, or -1 when a
 * field is missing or malformed. Unknown keys are skipped. */
int sessview_parse(const char *val, struct sessview *v);
/* The table: a heading line, then a row per session, each column as wide
 * as its widest cell (now: Unix seconds, for UP). */
void sessview_table(const struct sessview *v, size_t n, int64_t now, struct strbuf *out);
/* One JSON object, keys as mtugatectl(8) lists them; no newline. */
void sessview_json(const struct sessview *v, struct strbuf *out);

#endif
