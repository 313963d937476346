/* Tunnel groups and the compiled, immutable policy the packet path reads. */
#ifndef MTUGATE_POLICY_POLICY_H
#define MTUGATE_POLICY_POLICY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/addr.h"

struct diag;
struct conf;

enum dtls_mode { DTLS_RELAY, DTLS_BLOCK, DTLS_PASS };
enum dtls_block { DTLS_BLOCK_DROP, DTLS_BLOCK_REJECT };
enum mss_mode { MSS_AUTO, MSS_FIXED, MSS_OFF };
/* observe: every decision is made and counted (would_*), none applied. */
enum group_mode { MODE_ENFORCE, MODE_OBSERVE };

/* Never include <grp.h> beside this header: it has its own struct group. */
struct group {
	char name[64];
	char auth_group[64];
	char file[PATH_MAX];		/* the groups.d file it came from */
	int line_name, line_pool, line_clients, line_proxy;	/* for FILE:LINE messages */
	int line_auth;			/* 0: auth_group not set, the name stands in */
	struct prefix *pools;
	size_t npools;
	struct prefix *clients;
	size_t nclients;
	unsigned mtu;
	enum dtls_mode dtls;
	enum dtls_block dtls_block;
	enum mss_mode mss_mode;
	unsigned mss;			/* MSS_FIXED only */
	bool pmtu;
	unsigned pmtu_rate;		/* ICMP messages per second (and burst) */
	bool proxy_bypass;		/* proxy = no: its clients' TLS passes the proxy by */
	enum group_mode mode;
	bool pool_shared;		/* another group names a pool of its own too */
	unsigned index;			/* position in the policy */
	unsigned slot;			/* stable counter slot across reloads (see policy_assign_slots) */
};

/* The MSS this group allows for a family (AF_INET/AF_INET6): mss, or mtu-40 /
 * mtu-60 for auto; 0 when mss = off. */
uint16_t group_mss(const struct group *g, int family);

struct policy;

/* Parse one group file into g (zeroed first). 0, or -1 with errors added to d. */
int group_parse_file(struct group *g, const char *path, struct diag *d);
/* Free what group_parse_file allocated inside g. */
void group_release(struct group *g);

/* Every *.conf in dir, in name order, parsed and compiled. NULL with every
 * error in d (as FILE:LINE) when anything is wrong. */
struct policy *policy_load_dir(const char *dir, struct diag *d);
/* Compile parsed groups (takes ownership of groups[] and its contents, also on
 * failure). Rejects duplicate names and a pool claimed by two groups, reported
 * at the later group's pool line, naming the other; except that groups that
 * set auth_group (distinct by rule) may name the very same prefix: pool_shared,
 * and policy_by_pool() gives the one with the smallest mtu (then the earlier)
 * for its addresses, which the caller refines by the tunnel's own group. */
struct policy *policy_compile(struct group *groups, size_t n, struct diag *d);
void policy_free(struct policy *p);

/* Lookups: pure, lock-free, O(log n). family is AF_INET or AF_INET6, addr is
 * 4 or 16 bytes in network order. NULL when nothing matches. */
const struct group *policy_by_pool(const struct policy *p, int family, const uint8_t *addr);
const struct group *policy_by_clients(const struct policy *p, int family, const uint8_t *addr);
/* addr lies in one of g's pools. */
bool group_has_addr(const struct group *g, int family, const uint8_t *addr);
const struct group *policy_by_auth(const struct policy *p, const char *auth, size_t len);
const struct group *policy_by_name(const struct policy *p, const char *name);
size_t policy_count(const struct policy *p);
const struct group *policy_group(const struct policy *p, size_t i);
/* Set every group's slot from a name -> slot function (the daemon's stable
 * counter registry), before the policy is published. */
void policy_assign_slots(struct policy *p, unsigned (*slot_of)(void *arg, const char *name),
			 void *arg);

/* Publication: readers take a reference for a batch and give it back; a reload
 * swaps the pointer, and the old policy is freed when its last reader is done.
 * No packet ever sees a half-built policy. */
struct policy_box;
struct policy_box *policy_box_new(struct policy *initial);
struct policy *policy_hold(struct policy_box *b);	/* never NULL once created */
void policy_release(struct policy *p);
void policy_box_swap(struct policy_box *b, struct policy *np);
void policy_box_free(struct policy_box *b);

#endif
