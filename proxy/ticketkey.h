/* TLS session ticket keys as nginx's ssl_session_ticket_key takes them: a
 * file of one or more 80-byte keys (`openssl rand 80`), each a 16-byte name,
 * a 32-byte HMAC-SHA256 secret and a 32-byte AES-256 key. The first key
 * encrypts new tickets and decrypts; the others only decrypt, so rotation is
 * "prepend a new key, reload", and a pair of gateways that share the file
 * resume each other's sessions. Parsing is pure; ticketkey_load() reads the
 * file; no OpenSSL here (proxy/tls.c uses the keys). */
#ifndef MTUGATE_PROXY_TICKETKEY_H
#define MTUGATE_PROXY_TICKETKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TICKETKEY_LEN 80
#define TICKETKEY_NAME_LEN 16
/* A file holds the current key and the previous ones still accepted: a
 * handful, never a list that grows with every rotation. */
#define TICKETKEY_MAX 16

struct ticketkey {
	uint8_t name[TICKETKEY_NAME_LEN];
	uint8_t hmac[32];
	uint8_t aes[32];
};

struct ticketkeys {
	size_t n;			/* >= 1 once loaded */
	struct ticketkey k[TICKETKEY_MAX];	/* k[0] encrypts */
};

/* The file's bytes into ks: 0, or -1 with the reason in err (empty, not a
 * whole number of 80-byte keys, more than TICKETKEY_MAX, two keys with one
 * name). ks is left empty on failure. */
int ticketkey_parse(struct ticketkeys *ks, const uint8_t *data, size_t len, char *err,
		    size_t errlen);

/* Read and parse path: 0, or -1 with the reason in err (missing,
 * unreadable, a directory, too long, or as ticketkey_parse()). *exposed is
 * set when the file is readable by its group or by everyone: the caller
 * warns (a ticket key decrypts every session it issued). */
int ticketkey_load(const char *path, struct ticketkeys *ks, bool *exposed, char *err,
		   size_t errlen);

/* One random key (getrandom): 0, or -1 when the kernel gave too few bytes. */
int ticketkey_random(struct ticketkeys *ks);

/* The key named name, or NULL; *current is true for the one that encrypts. */
const struct ticketkey *ticketkey_find(const struct ticketkeys *ks,
				       const uint8_t name[TICKETKEY_NAME_LEN], bool *current);

/* Zero the secrets (before the memory is freed or reused). */
void ticketkey_wipe(struct ticketkeys *ks);

#endif
