/* Shared by the proxy benchmark tools (cstpload, stubheadend): clock,
 * addresses, RSS, OpenSSL setup, and a CSTP record scanner that counts
 * records split anywhere across reads. Header-only: each tool is one
 * program (see the Makefile), so everything here is static inline. */
#ifndef MTUGATE_TESTS_TOOLS_TLSBENCH_H
#define MTUGATE_TESTS_TOOLS_TLSBENCH_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clamp/csum.h"
#include "proxy/cstp.h"
#include "proxy/http.h"

/* The inner packets the benchmarks carry: IPv4/UDP from a pool address to
 * the discard port of a LAN address, so the proxy's SYN peek passes them. */
#define TLSBENCH_INNER_SRC "192.0.2.10"
#define TLSBENCH_INNER_DST "198.18.3.2"

static inline double tlsbench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "198.18.2.2:443", "[2001:db8:2::2]:443", or an address alone (port 0). */
static inline bool tlsbench_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *port = NULL, *end;
	struct sockaddr_in *a4 = (void *)ss;
	struct sockaddr_in6 *a6 = (void *)ss;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		if (!(end = strchr(s, ']')))
			return false;
		n = (size_t)(end - s - 1);
		memcpy(host, s + 1, n < sizeof(host) ? n : 0);
		port = end[1] == ':' ? end + 2 : NULL;
	} else {
		end = strrchr(s, ':');
		if (end && strchr(s, ':') != end)
			end = NULL;	/* a bare IPv6 address */
		n = end ? (size_t)(end - s) : strlen(s);
		memcpy(host, s, n < sizeof(host) ? n : 0);
		port = end ? end + 1 : NULL;
	}
	if (n == 0 || n >= sizeof(host))
		return false;
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)(port ? atoi(port) : 0));
		*sl = sizeof(*a4);
		return true;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)(port ? atoi(port) : 0));
		*sl = sizeof(*a6);
		return true;
	}
	return false;
}

static inline int tlsbench_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* VmRSS of this process in KiB, 0 if unreadable. */
static inline long tlsbench_rss_kib(void)
{
	char line[128];
	long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* The same modes as proxy/tls.c, so per-connection memory compares:
 * released buffers keep an idle connection at its SSL object alone. */
static inline SSL_CTX *tlsbench_ctx(bool server)
{
	SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!c)
		return NULL;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
	return c;
}

/* One DATA record carrying an inner IPv4/UDP packet of size bytes. */
static inline size_t tlsbench_data_record(uint8_t *rec, size_t size)
{
	uint8_t *ip = rec + CSTP_HDR_LEN;

	if (size < 28)
		size = 28;
	if (size > 65535)
		size = 65535;
	cstp_write_header(rec, CSTP_DATA, size);
	memset(ip, 0xa5, size);
	memset(ip, 0, 28);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(size >> 8);
	ip[3] = (uint8_t)size;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	inet_pton(AF_INET, TLSBENCH_INNER_SRC, ip + 12);
	inet_pton(AF_INET, TLSBENCH_INNER_DST, ip + 16);
	{
		uint16_t sum = csum_fold(csum_partial(ip, 20, 0));

		memcpy(ip + 10, &sum, 2);
	}
	ip[20] = 0x9c;		/* source port 40000 */
	ip[21] = 0x40;
	ip[23] = 9;		/* discard; UDP checksum 0: none (IPv4) */
	ip[24] = (uint8_t)((size - 20) >> 8);
	ip[25] = (uint8_t)(size - 20);
	return CSTP_HDR_LEN + size;
}

/* The value of header name (lower case) in a captured head, copied into
 * buf, or NULL. */
static inline const char *tlsbench_header(const struct http_capture *cap, const char *name,
					  char *buf, size_t len)
{
	size_t off = 0, end, next, nl, vo, vl;

	while (off < cap->head_len &&
	       http_find_line(cap->buf + off, cap->head_len - off, &end, &next) == HTTP_DONE) {
		if (end > 0 && http_split_header(cap->buf + off, end, &nl, &vo, &vl) &&
		    http_name_is(cap->buf + off, nl, name)) {
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, cap->buf + off + vo, vl);
			buf[vl] = '\0';
			return buf;
		}
		off += next;
	}
	return NULL;
}

/* Counts the records of one direction; a header may arrive in pieces. */
struct tlsbench_scan {
	uint8_t hdr[CSTP_HDR_LEN];
	unsigned hlen;
	size_t left;
	uint64_t records[CSTP_NTYPES + 1];	/* by type; the last: unknown types */
	uint64_t data_bytes;			/* DATA payload bytes */
	bool bad;				/* not CSTP: give up on the stream */
};

static inline void tlsbench_scan_feed(struct tlsbench_scan *s, const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && !s->bad) {
		if (s->left) {
			size_t n = len - i < s->left ? len - i : s->left;

			s->left -= n;
			i += n;
			continue;
		}
		s->hdr[s->hlen++] = p[i++];
		if (s->hlen < CSTP_HDR_LEN)
			continue;
		s->hlen = 0;
		if (memcmp(s->hdr, "STF\x01", 4) || s->hdr[7]) {
			s->bad = true;
			break;
		}
		s->left = (size_t)s->hdr[4] << 8 | s->hdr[5];
		s->records[s->hdr[6] < CSTP_NTYPES ? s->hdr[6] : CSTP_NTYPES]++;
		if (s->hdr[6] == CSTP_DATA)
			s->data_bytes += s->left;
	}
}

#endif
