/* The per-queue packet handlers the packet threads call: one state per thread. */
#ifndef MTUGATE_DAEMON_QHANDLER_H
#define MTUGATE_DAEMON_QHANDLER_H

struct conf;
struct counters;
struct policy;
struct nfq_packet;
struct nfq_verdict;

/* Oversize DF packets toward group pools: ICMP frag-needed / Packet Too Big. */
struct pmtu_state;
struct pmtu_state *pmtu_state_new(const struct conf *c);	/* before dropping root */
void pmtu_state_free(struct pmtu_state *s);
/* The proxy's session table: in a shared pool, the tunnel's own group. */
struct session_table;
void pmtu_state_set_sessions(struct pmtu_state *s, struct session_table *t);
void pmtu_packet(struct pmtu_state *s, const struct policy *pol, struct counters *ctr,
		 const struct nfq_packet *pk, struct nfq_verdict *v);

/* DTLS datagrams between clients and the headend: relay, normalise, block. */
struct dtlsq_state;
struct dtlsq_state *dtlsq_state_new(const struct conf *c);
void dtlsq_state_free(struct dtlsq_state *s);
/* The proxy's session table: attribute DTLS flows by session ID / App-ID. */
struct session_table;
void dtlsq_state_set_sessions(struct dtlsq_state *s, struct session_table *t);
void dtlsq_packet(struct dtlsq_state *s, const struct policy *pol, struct counters *ctr,
		  const struct nfq_packet *pk, struct nfq_verdict *v);

#endif
