/* The proxied tunnels' DTLS (issue 18). The printed rules log the
 * headend's first datagram in each DTLS flow to an NFLOG group (a copy: the
 * packet goes on at once): its session is established. Once a second, a
 * session offered DTLS that the headend has not answered after 30 s failed
 * (counted, logged), and one mtugate left unchanged whose client will
 * reconnect for it is predicted with a warning. */
#ifndef MTUGATE_DAEMON_DTLSWATCH_H
#define MTUGATE_DAEMON_DTLSWATCH_H

#include <stdint.h>

struct stats;
struct policy_box;
struct session_table;
struct dtlswatch;

/* Bound to NFLOG group (the DTLS queue's number); NULL with errno set. */
struct dtlswatch *dtlswatch_new(struct stats *s, struct policy_box *box, struct session_table *t,
				uint16_t group);
void dtlswatch_free(struct dtlswatch *w);
/* The NFLOG socket, readable when answers came: dtlswatch_read() then. */
int dtlswatch_fd(const struct dtlswatch *w);
void dtlswatch_read(struct dtlswatch *w);
void dtlswatch_tick(struct dtlswatch *w);

#endif
