/* The messages between the proxy processes and the packet process (one
 * SOCK_SEQPACKET datagram each). The proxy parses what the internet sends,
 * so the packet process treats every message as hostile: sepmsg_decode()
 * is pure (bytes in, a validated struct out) and refuses anything out of
 * bounds: lengths, enums, address families, strings (NUL-terminated, no
 * control characters), counter indexes, trailing bytes. */
#ifndef MTUGATE_PROXY_SEPMSG_H
#define MTUGATE_PROXY_SEPMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/cookie.h"
#include "proxy/session.h"

#define SEPMSG_MAX 4096		/* the largest datagram either side sends */
#define SEPMSG_BATCH 160	/* byte counts or counter deltas per message */

enum sepmsg_type {
	SEPMSG_HELLO = 1,	/* worker: started (pid) */
	SEPMSG_TICK,		/* worker: its loop turned (progress, for the watchdog) */
	SEPMSG_SESSION_ADD,	/* worker: a tunnel is up (handle, info) */
	SEPMSG_SESSION_DEL,	/* worker: it ended (handle) */
	SEPMSG_BYTES,		/* worker: byte counts (handle, up, down) x n */
	SEPMSG_COUNTERS,	/* worker: counter increments (group or "", field, delta) x n */
	SEPMSG_GONE,		/* master: the worker pid ended (wait status): forget its sessions */
	SEPMSG_RELOAD,		/* packet process -> proxy: re-read the configuration */
	SEPMSG_DTLS,		/* packet process -> worker: a tunnel's DTLS state (handle, info.dtls) */
	SEPMSG_COOKIE,		/* worker -> packet process -> the other workers: a session cookie's change */
	SEPMSG_DRAIN,		/* worker: listeners closed, draining (pid, status: tunnels held) */
	SEPMSG_TYPE_END
};

struct sepmsg_bytes {
	uint32_t handle;
	uint64_t up, down;
};

struct sepmsg_ctr {
	uint16_t field;		/* index into struct counters' proxy part, or grp_counters */
	uint64_t delta;
};

struct sepmsg {
	enum sepmsg_type type;
	uint32_t handle;		/* SESSION_ADD, SESSION_DEL, DTLS */
	struct session_info info;	/* SESSION_ADD; DTLS: its dtls only */
	int32_t pid, status;		/* HELLO (pid), GONE (pid, status), DRAIN (pid, tunnels) */
	uint64_t tick;			/* TICK */
	char group[SESSION_GROUP_MAX];	/* COUNTERS: "" for the proxy-wide counters */
	struct cookie_event cookie;	/* COOKIE */
	size_t n;			/* entries in bytes[] or ctr[] */
	struct sepmsg_bytes bytes[SEPMSG_BATCH];
	struct sepmsg_ctr ctr[SEPMSG_BATCH];
};

/* How many counters a COUNTERS message may name: the proxy-wide part of
 * struct counters (group ""), or one group's struct grp_counters. */
size_t sepmsg_ctr_fields(const char *group);

/* Encode m into buf: the length, or 0 when it does not fit or m is invalid
 * (n over SEPMSG_BATCH, an unknown type). */
size_t sepmsg_encode(const struct sepmsg *m, uint8_t *buf, size_t cap);

/* Decode one datagram into m (zeroed first): 0, or -EINVAL with nothing to
 * trust in m. */
int sepmsg_decode(const uint8_t *buf, size_t len, struct sepmsg *m);

const char *sepmsg_type_str(enum sepmsg_type t);

#endif
