#include "daemon/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &s->start);
	stats_config_loaded(s, true);	/* the start's load: the daemon refuses to start without one */
	atomic_store(&s->rules_ok, -1);
}

void stats_rules_set(struct stats *s, int ok, const char *why)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->rules_why, sizeof(s->rules_why), "%s", ok == 1 ? "" : why);
	atomic_store(&s->rules_ok, ok);
	pthread_mutex_unlock(&s->lock);
}

int stats_rules_get(struct stats *s, char *why, size_t cap)
{
	int ok;

	pthread_mutex_lock(&s->lock);
	snprintf(why, cap, "%s", s->rules_why);
	ok = atomic_load(&s->rules_ok);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

void stats_config_loaded(struct stats *s, bool ok)
{
	atomic_store(&s->config_ok, ok);
	if (ok)
		atomic_store(&s->config_loaded, (int64_t)time(NULL));
}

/* What each group counter means, for the HELP lines: an administrator reads
 * them in Prometheus without the man page at hand. */
static const struct {
	const char *field, *help;
} stats_group_helps[] = {
	{ "packets", "Packets of this group's traffic that mtugated decided on." },
	{ "mss_rewritten", "TCP SYNs whose MSS option was lowered to fit the group's tunnel MTU." },
	{ "mss_inserted", "TCP SYNs without an MSS option that got one fitting the group's tunnel MTU." },
	{ "mss_unchanged", "TCP SYNs whose MSS already fitted the group's tunnel MTU." },
	{ "pmtu_sent", "ICMP fragmentation-needed and ICMPv6 Packet Too Big messages sent for"
		       " oversize packets toward the group's pool." },
	{ "pmtu_suppressed", "Oversize packets left unanswered because an ICMP rate limit was reached." },
	{ "dtls_relayed", "DTLS flows of the group's clients relayed to the headend." },
	{ "dtls_blocked", "DTLS flows of the group's clients blocked (dtls = block)." },
	{ "dtls_port_rewritten", "DTLS flows sent on to the headend's real DTLS port (CSCuh61321)." },
	{ "dtls_repaired", "DTLS flows the headend restarted from its real port that conntrack did not"
			   " know, sent on from the advertised port (CSCuh61321)." },
	{ "connect_rewritten", "Tunnels whose CONNECT exchange the proxy rewrote." },
	{ "sessions", "Tunnels set up through the proxy since the daemon started." },
	{ "upstream_resumed", "Proxied tunnels whose TLS handshake toward the headend resumed a session." },
	{ "tls_rekeys", "TLS 1.2 renegotiations (the client's rekey) the proxy took on its tunnels." },
	{ "tls_rekeys_refused", "Tunnels closed for renegotiating again within 10 seconds." },
	{ "upstream_cert_requested", "Proxied connections whose headend asked for a client"
				     " certificate, which the proxy cannot pass on (set proxy = no"
				     " for these users)." },
	{ "would_mss_rewrite", "mode = observe: TCP SYNs that passed with an MSS enforce would have"
			       " lowered." },
	{ "would_mss_insert", "mode = observe: TCP SYNs without an MSS option that enforce would have"
			      " given one." },
	{ "would_pmtu_send", "mode = observe: oversize DF packets that passed where enforce would have"
			     " answered with ICMP and dropped them." },
	{ "would_dtls_block", "mode = observe: DTLS flows that passed where enforce would have blocked"
			      " them (dtls = block)." },
	{ "would_dtls_port_fix", "mode = observe: DTLS flows toward the advertised port that enforce would"
				 " have sent on to the real one (CSCuh61321)." },
	{ "would_dtls_repair", "mode = observe: DTLS flows from the headend's real port that enforce would"
			       " have sent on from the advertised one (CSCuh61321)." },
	{ "would_connect_rewrite", "mode = observe: tunnels whose CONNECT exchange passed unchanged where"
				   " enforce would have rewritten it." },
	{ "reconnects", "Proxied tunnels that presented the session cookie of an earlier tunnel:"
			" the client reconnected (AnyConnect's reason 16 after a failed DTLS, a"
			" roam, a rekey by new tunnel)." },
	{ "dtls_established", "Proxied tunnels whose DTLS the headend answered." },
	{ "dtls_failed", "Proxied tunnels offered DTLS that the headend had not answered 30 s later"
			 " (UDP blocked on the path)." },
	{ "reconnects_predicted", "Tunnels mtugate left unchanged (dtls = pass, mode = observe) whose"
				  " DTLS failed while the client's adapter MTU exceeds the TLS MTU:"
				  " AnyConnect will reconnect (reason 16)." },
	{ "reconnects_as_predicted", "Predicted reconnects that came: the session reconnected within"
				     " 120 s of its prediction." },
	{ "sessions_active", "Proxied tunnels open now." },
};

const char *stats_group_help(const char *field)
{
	for (size_t i = 0; i < sizeof(stats_group_helps) / sizeof(stats_group_helps[0]); i++)
		if (strcmp(field, stats_group_helps[i].field) == 0)
			return stats_group_helps[i].help;
	return NULL;
}

const char *stats_proxy_tls_help(const char *field)
{
	if (!strcmp(field, "handshakes"))
		return "TLS handshakes the proxy completed with clients.";
	if (!strcmp(field, "resumed"))
		return "Client TLS handshakes that resumed a session: a ticket of this gateway's or,"
		       " sharing ticket_key_file, of its pair's.";
	if (!strcmp(field, "upstream_cert_requested"))
		return "Headend TLS handshakes that asked the proxy for a client certificate.";
	return "A counter of the TLS proxy (see mtugatectl(8)).";
}

void stats_destroy(struct stats *s)
{
	for (size_t i = 0; i < s->nsets; i++)
		free(s->sets[i].c);
	s->nsets = 0;
	pthread_mutex_destroy(&s->lock);
}

static struct counters *stats_add_set(struct stats *s, int queue, const char *kind)
{
	struct counters *c = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->nsets < STATS_MAX_SETS && (c = calloc(1, sizeof(*c))))
		s->sets[s->nsets++] = (struct stats_set){ .c = c, .queue = queue, .kind = kind };
	pthread_mutex_unlock(&s->lock);
	return c;
}

struct counters *stats_new_set(struct stats *s)
{
	return stats_add_set(s, -1, NULL);
}

struct counters *stats_new_queue_set(struct stats *s, uint16_t num, const char *kind)
{
	return stats_add_set(s, num, kind);
}

unsigned stats_slot(struct stats *s, const char *name)
{
	unsigned slot;

	pthread_mutex_lock(&s->lock);
	for (slot = 0; slot < s->nnames; slot++)
		if (strcmp(s->names[slot], name) == 0)
			goto out;
	/* The last slot absorbs overflow so a counter index is always valid. */
	if (s->nnames < STATS_MAX_GROUPS - 1) {
		snprintf(s->names[s->nnames], sizeof(s->names[0]), "%s", name);
		slot = (unsigned)s->nnames++;
	} else {
		slot = STATS_MAX_GROUPS - 1;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return slot;
}

#define SUM_FIELD(f) ctr_add(&out->f, ctr_get(&c->f));
#define SUM_TLS_FIELD(f) ctr_add(&out->tls_##f, ctr_get(&c->tls_##f));
#define SUM_GFIELD(f) ctr_add(&out->g[i].f, ctr_get(&c->g[i].f));

void stats_sum(struct stats *s, struct counters *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	for (size_t k = 0; k < s->nsets; k++) {
		struct counters *c = s->sets[k].c;

		STATS_PACKET_FIELDS(SUM_FIELD)
		STATS_PROXY_FIELDS(SUM_FIELD)
		STATS_PROXY_TLS_FIELDS(SUM_TLS_FIELD)
		for (size_t i = 0; i < STATS_MAX_GROUPS; i++) {
			STATS_GROUP_FIELDS(SUM_GFIELD)
		}
	}
	pthread_mutex_unlock(&s->lock);
}

#define COPY_FIELD(f) q.f = ctr_get(&c->f);

void stats_set_portid(struct stats *s, struct counters *c, uint32_t portid)
{
	pthread_mutex_lock(&s->lock);
	for (size_t k = 0; k < s->nsets; k++)
		if (s->sets[k].c == c)
			s->sets[k].portid = portid;
	pthread_mutex_unlock(&s->lock);
}

size_t stats_queues(struct stats *s, struct stats_queue out[STATS_MAX_SETS])
{
	size_t n = 0, i;

	pthread_mutex_lock(&s->lock);
	for (size_t k = 0; k < s->nsets; k++) {
		struct counters *c = s->sets[k].c;
		struct stats_queue q = { .num = (unsigned)s->sets[k].queue, .kind = s->sets[k].kind,
					 .portid = s->sets[k].portid };

		if (s->sets[k].queue < 0)
			continue;
		STATS_PACKET_FIELDS(COPY_FIELD)
		/* Insertion by number: the sets come in the order the queues were bound. */
		for (i = n++; i > 0 && out[i - 1].num > q.num; i--)
			out[i] = out[i - 1];
		out[i] = q;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t stats_uptime(const struct stats *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - s->start.tv_sec);
}
