#include "proxy/ticketkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Stores that the compiler may not drop as dead. */
static void ticketkey_zero(void *p, size_t n)
{
	volatile uint8_t *b = p;

	while (n--)
		*b++ = 0;
}

void ticketkey_wipe(struct ticketkeys *ks)
{
	ticketkey_zero(ks, sizeof(*ks));
}

int ticketkey_parse(struct ticketkeys *ks, const uint8_t *data, size_t len, char *err,
		    size_t errlen)
{
	size_t i, j;

	ticketkey_wipe(ks);
	if (len == 0) {
		snprintf(err, errlen, "empty: expected one or more %d-byte keys (openssl rand %d)",
			 TICKETKEY_LEN, TICKETKEY_LEN);
		return -1;
	}
	if (len % TICKETKEY_LEN) {
		snprintf(err, errlen, "%zu bytes: not a whole number of %d-byte keys (openssl rand %d)",
			 len, TICKETKEY_LEN, TICKETKEY_LEN);
		return -1;
	}
	if (len / TICKETKEY_LEN > TICKETKEY_MAX) {
		snprintf(err, errlen, "%zu keys: at most %d (drop the oldest, at the end)",
			 len / TICKETKEY_LEN, TICKETKEY_MAX);
		return -1;
	}
	for (i = 0; i < len / TICKETKEY_LEN; i++) {
		const uint8_t *p = data + i * TICKETKEY_LEN;
		struct ticketkey *k = &ks->k[i];

		/* nginx's layout of an 80-byte key. */
		memcpy(k->name, p, sizeof(k->name));
		memcpy(k->hmac, p + 16, sizeof(k->hmac));
		memcpy(k->aes, p + 48, sizeof(k->aes));
		for (j = 0; j < i; j++)
			if (!memcmp(ks->k[j].name, k->name, sizeof(k->name))) {
				snprintf(err, errlen, "keys %zu and %zu have the same name (their first"
					 " 16 bytes): a ticket would not say which decrypts it", j + 1, i + 1);
				ticketkey_wipe(ks);
				return -1;
			}
	}
	ks->n = len / TICKETKEY_LEN;
	return 0;
}

int ticketkey_load(const char *path, struct ticketkeys *ks, bool *exposed, char *err,
		   size_t errlen)
{
	uint8_t buf[TICKETKEY_MAX * TICKETKEY_LEN + 1];
	struct stat st;
	size_t len = 0;
	ssize_t r;
	int fd, rc;

	ticketkey_wipe(ks);
	*exposed = false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s", !st.st_mode ? strerror(errno) :
			 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
		close(fd);
		return -1;
	}
	*exposed = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	while (len < sizeof(buf)) {
		r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s", strerror(errno));
			close(fd);
			ticketkey_zero(buf, sizeof(buf));
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (len == sizeof(buf)) {
		snprintf(err, errlen, "more than %d keys of %d bytes", TICKETKEY_MAX, TICKETKEY_LEN);
		ticketkey_zero(buf, sizeof(buf));
		return -1;
	}
	rc = ticketkey_parse(ks, buf, len, err, errlen);
	ticketkey_zero(buf, sizeof(buf));
	return rc;
}

int ticketkey_random(struct ticketkeys *ks)
{
	uint8_t buf[TICKETKEY_LEN];
	char err[8];
	int rc;

	if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return -1;
	rc = ticketkey_parse(ks, buf, sizeof(buf), err, sizeof(err));
	ticketkey_zero(buf, sizeof(buf));
	return rc;
}

const struct ticketkey *ticketkey_find(const struct ticketkeys *ks,
				       const uint8_t name[TICKETKEY_NAME_LEN], bool *current)
{
	for (size_t i = 0; i < ks->n; i++)
		if (!memcmp(ks->k[i].name, name, TICKETKEY_NAME_LEN)) {
			*current = i == 0;
			return &ks->k[i];
		}
	return NULL;
}
