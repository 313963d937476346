#include "daemon/rulewatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conf/deploy.h"

#define RULEWATCH_BUF 65536

struct rulewatch {
	struct mnl_socket *nl;
	unsigned portid, seq;
	struct deploy_expect ipt, nft;	/* what each backend loads */
	uint64_t digest;		/* of everything the configuration prints */
	char state[256];		/* the rules unit's record of what it applied */
	uint8_t *buf;
};

/* A rule in the dump, with the jumps its expressions make. */
struct rulewatch_rule {
	const char *table, *chain;
	const char *targets[8];
	size_t ntargets;
};

static int rulewatch_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, NFTA_RULE_MAX) >= 0)
		tb[type] = a;
	return MNL_CB_OK;
}

/* A nested attribute's children by type, up to max. */
static void rulewatch_nested(const struct nlattr *nest, const struct nlattr **tb, int max)
{
	const struct nlattr *a;

	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	mnl_attr_for_each_nested(a, nest) {
		int t = mnl_attr_get_type(a);

		if (t <= max)
			tb[t] = a;
	}
}

/* The chain an "immediate" expression jumps or goes to, or NULL. */
static const char *rulewatch_jump(const struct nlattr *expr)
{
	const struct nlattr *e[NFTA_EXPR_MAX + 1], *im[NFTA_IMMEDIATE_MAX + 1],
		*d[NFTA_DATA_MAX + 1], *v[NFTA_VERDICT_MAX + 1];
	int code;

	rulewatch_nested(expr, e, NFTA_EXPR_MAX);
	if (!e[NFTA_EXPR_NAME] || !e[NFTA_EXPR_DATA] ||
	    strcmp(mnl_attr_get_str(e[NFTA_EXPR_NAME]), "immediate"))
		return NULL;
	rulewatch_nested(e[NFTA_EXPR_DATA], im, NFTA_IMMEDIATE_MAX);
	if (!im[NFTA_IMMEDIATE_DATA])
		return NULL;
	rulewatch_nested(im[NFTA_IMMEDIATE_DATA], d, NFTA_DATA_MAX);
	if (!d[NFTA_DATA_VERDICT])
		return NULL;
	rulewatch_nested(d[NFTA_DATA_VERDICT], v, NFTA_VERDICT_MAX);
	if (!v[NFTA_VERDICT_CODE] || !v[NFTA_VERDICT_CHAIN])
		return NULL;
	code = (int)ntohl(mnl_attr_get_u32(v[NFTA_VERDICT_CODE]));
	return code == NFT_JUMP || code == NFT_GOTO ? mnl_attr_get_str(v[NFTA_VERDICT_CHAIN]) : NULL;
}

struct rulewatch_dump {
	struct rulewatch *w;
	struct deploy_expect live;
};

/* Count the rule into live where want (either backend) has its chain or jump. */
static void rulewatch_count(struct rulewatch_dump *dp, uint8_t family, const struct rulewatch_rule *r)
{
	struct rulewatch *w = dp->w;
	struct deploy_chain *c;

	if (deploy_find(&w->ipt, family, r->table, r->chain, "") ||
	    deploy_find(&w->nft, family, r->table, r->chain, "")) {
		if (!(c = deploy_find(&dp->live, family, r->table, r->chain, "")) &&
		    dp->live.n < DEPLOY_MAX_CHAINS) {
			c = &dp->live.c[dp->live.n++];
			memset(c, 0, sizeof(*c));
			c->family = family;
			snprintf(c->table, sizeof(c->table), "%s", r->table);
			snprintf(c->chain, sizeof(c->chain), "%s", r->chain);
		}
		if (c)
			c->rules++;
	}
	for (size_t i = 0; i < r->ntargets; i++) {
		if (!deploy_find(&w->ipt, family, r->table, r->chain, r->targets[i]) ||
		    deploy_find(&dp->live, family, r->table, r->chain, r->targets[i]) ||
		    dp->live.n == DEPLOY_MAX_CHAINS)
			continue;
		c = &dp->live.c[dp->live.n++];
		memset(c, 0, sizeof(*c));
		c->family = family;
		snprintf(c->table, sizeof(c->table), "%s", r->table);
		snprintf(c->chain, sizeof(c->chain), "%s", r->chain);
		snprintf(c->target, sizeof(c->target), "%s", r->targets[i]);
		c->rules = 1;
	}
}

static int rulewatch_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[NFTA_RULE_MAX + 1] = { 0 }, *a;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	struct rulewatch_rule r = { 0 };

	if (mnl_attr_parse(nlh, sizeof(*g), rulewatch_attr, tb) < 0 || !tb[NFTA_RULE_TABLE] ||
	    !tb[NFTA_RULE_CHAIN])
		return MNL_CB_OK;
	r.table = mnl_attr_get_str(tb[NFTA_RULE_TABLE]);
	r.chain = mnl_attr_get_str(tb[NFTA_RULE_CHAIN]);
	if (tb[NFTA_RULE_EXPRESSIONS])
		mnl_attr_for_each_nested(a, tb[NFTA_RULE_EXPRESSIONS]) {
			const char *t = rulewatch_jump(a);

			if (t && r.ntargets < sizeof(r.targets) / sizeof(r.targets[0]))
				r.targets[r.ntargets++] = t;
		}
	rulewatch_count(data, g->nfgen_family, &r);
	return MNL_CB_OK;
}

/* Every rule of every family, through cb. 0 or -errno. */
static int rulewatch_dump_rules(struct rulewatch *w, struct rulewatch_dump *dp)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(w->buf);
	struct nfgenmsg *g;
	int rc;

	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++w->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = NFPROTO_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	if (mnl_socket_sendto(w->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(w->nl, w->buf, RULEWATCH_BUF);

		if (n < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		rc = mnl_cb_run(w->buf, (size_t)n, w->seq, w->portid, rulewatch_rule_cb, dp);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc < 0)
			return -errno;
	}
}

static int rulewatch_load(struct rulewatch *w, const struct conf *c, const struct policy *p)
{
	memset(&w->ipt, 0, sizeof(w->ipt));
	memset(&w->nft, 0, sizeof(w->nft));
	return deploy_expect_conf(&w->ipt, &w->nft, &w->digest, c, p);
}

struct rulewatch *rulewatch_new(const struct conf *c, const struct policy *p)
{
	struct rulewatch *w = calloc(1, sizeof(*w));
	const char *st = getenv("MTUGATE_RULES_STATE");
	int e;

	if (!w)
		return NULL;
	snprintf(w->state, sizeof(w->state), "%s/digest", st && *st ? st : RUNSTATEDIR "/mtugate-rules");
	w->seq = (unsigned)time(NULL);
	if (!(w->buf = malloc(RULEWATCH_BUF)) || !(w->nl = mnl_socket_open(NETLINK_NETFILTER)) ||
	    mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0 || (e = rulewatch_load(w, c, p)) < 0) {
		e = errno;
		rulewatch_free(w);
		errno = e;
		return NULL;
	}
	w->portid = mnl_socket_get_portid(w->nl);
	return w;
}

void rulewatch_free(struct rulewatch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w->buf);
	free(w);
}

int rulewatch_reset(struct rulewatch *w, const struct conf *c, const struct policy *p,
		    bool changed)
{
	(void)changed;	/* the digest the rules unit recorded tells */
	return rulewatch_load(w, c, p);
}

/* The digest the rules unit recorded when it applied the rules: 0 when it
 * recorded none (rules applied by hand), 1 when read. */
static int rulewatch_applied(const struct rulewatch *w, uint64_t *d)
{
	char buf[64] = "";
	int fd = open(w->state, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	*d = strtoull(buf, NULL, 16);
	return 1;
}

enum rulewatch_res rulewatch_poll(struct rulewatch *w, char *why, size_t cap)
{
	struct rulewatch_dump dp = { .w = w };
	char ipt_why[160], nft_why[160];
	uint64_t applied;
	bool nft_seen = false;
	int rc;

	if ((rc = rulewatch_dump_rules(w, &dp)) < 0) {
		snprintf(why, cap, "reading the ruleset over netlink: %s", strerror(-rc));
		return RULEWATCH_ERROR;
	}
	for (size_t i = 0; i < dp.live.n; i++)
		nft_seen |= dp.live.c[i].family == NFPROTO_INET;
	if (deploy_compare(&w->ipt, &dp.live, ipt_why, sizeof(ipt_why)) < 0 &&
	    deploy_compare(&w->nft, &dp.live, nft_why, sizeof(nft_why)) < 0) {
		snprintf(why, cap, "%s", nft_seen ? nft_why : ipt_why);
		return RULEWATCH_MISSING;
	}
	if (rulewatch_applied(w, &applied) && applied != w->digest) {
		snprintf(why, cap, "the rules applied are another configuration's (%016llx, this one"
			 " prints %016llx)", (unsigned long long)applied, (unsigned long long)w->digest);
		return RULEWATCH_STALE;
	}
	return RULEWATCH_OK;
}
