/* mtugate.conf as a plain struct: loaded, range-checked, no side effects. */
#ifndef MTUGATE_CONF_CONF_H
#define MTUGATE_CONF_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/addr.h"
#include "conf/marks.h"

struct diag;

#define CONF_MAX_HEADENDS 16

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
/* Usernames in logs and `sessions`: as sent, a short keyed hash (stable
 * while the daemon runs), or not at all. */
enum log_users { LOG_USERS_YES, LOG_USERS_HASH, LOG_USERS_NO };

/* A queue number or a range "0-1"; first < 0 means the queue is not used ("off"). */
struct qrange {
	int first, last;
};

struct conf {
	char path[PATH_MAX];
	struct {
		char user[64];			/* empty: stay root */
		char control_socket[108];	/* sun_path size */
		char groups_dir[PATH_MAX];	/* relative paths are taken from the config file's folder */
		enum log_level log_level;
		enum log_users log_users;
	} daemon;
	struct {
		struct qrange mss, pmtu, dtls;
		unsigned max_len;
		bool fail_open;
		uint32_t mark_mask;		/* 0: the default layout */
	} queues;
	struct marks marks;			/* from mark_mask, set by conf_load */
	struct {
		struct ipaddr addr[CONF_MAX_HEADENDS];
		size_t naddr;
		/* Where clients reach addr[i] when this firewall's own DNAT forwards
		 * them to it (a port forward): none, or naddr entries (the address
		 * itself where there is no forward). Read it by conf_headend_public(). */
		struct ipaddr public_address[CONF_MAX_HEADENDS];
		size_t npublic;
		uint16_t tls_port, dtls_port, advertised_dtls_port;
	} headend;
	struct conf_proxy {
		bool enable;
		uint16_t listen_port;
		char certificate[PATH_MAX];
		char private_key[PATH_MAX];
		char upstream_ca[PATH_MAX];
		char upstream_name[256];	/* name to verify; empty: the headend address */
		bool insecure_upstream;		/* no verification: warned at every start */
		bool upstream_resume;		/* resume headend TLS sessions */
		/* Session ticket keys shared by a pair of gateways; empty: a
		 * random key of this process's own (proxy/ticketkey.h). */
		char ticket_key_file[PATH_MAX];
		unsigned max_sessions;
		unsigned handshake_timeout;	/* seconds */
		unsigned idle_timeout;		/* seconds */
		unsigned route_table;		/* TPROXY's local routes (ip rule fwmark) */
		/* Connections that are not tunnels yet (TLS handshake, login). */
		unsigned login_max;		/* in all */
		unsigned login_per_source;	/* per source prefix */
		unsigned source_prefix4, source_prefix6;
		unsigned login_timeout;		/* seconds from accept to the CONNECT's answer */
		/* Worker processes, each with its own listener and loop; 0:
		 * one per online CPU (daemon/privsep.h). */
		unsigned workers;
		/* Seconds a stopping daemon's proxy keeps its tunnels (0: closes
		 * them at once): a restart drops none (daemon/privsep.h). */
		unsigned drain_timeout;
	} proxy;
};

/* [proxy] workers at most: one per CPU of a large firewall. */
#define CONF_MAX_PROXY_WORKERS 64

/* Whether two configurations' [proxy] sections are alike, key by key (the
 * proxy keeps the one it started with: a reload says when they differ). */
bool conf_proxy_same(const struct conf *a, const struct conf *b);

/* Where clients reach headend i: its public_address, or its address. */
const struct ipaddr *conf_headend_public(const struct conf *c, size_t i);
/* Whether headend i is behind a port forward (its public address differs). */
bool conf_headend_forwarded(const struct conf *c, size_t i);
/* The headend address clients reach at public (family AF_INET or AF_INET6,
 * 4 or 16 bytes), or NULL when public is none of them. */
const struct ipaddr *conf_headend_by_public(const struct conf *c, int family, const uint8_t *public);

/* Defaults as documented in conf/mtugate.conf. */
void conf_defaults(struct conf *c);
/* Load and validate path into c. Returns 0, or -1 with every error added to d
 * as FILE:LINE (not only the first); then c->daemon.groups_dir is still the
 * folder the file names (so its group files can be checked too), or empty
 * when that is not known (the file unreadable, groups_dir refused, or absent
 * from a file with lines that could not be read). */
/* Upgrades: a mtugate.conf that never named private_key relied on the old
 * default beside it (OLD_DEFAULT). While the new default is missing and the
 * old one exists, the old one stays in use (mtugated and check warn that
 * edits by rename then need a restart). True if it switched. */
bool conf_key_compat(struct conf *c, const char *old_default);
int conf_load(struct conf *c, const char *path, struct diag *d);

#endif
