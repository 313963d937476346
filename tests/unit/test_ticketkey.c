/* Ticket keys: nginx's 80-byte layout, the sizes a file may have, rotation
 * (the first key is the current one), and the file's errors and mode. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/ticketkey.h"
#include "tests/unit/t.h"

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i);
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, data, len);
	if (fchmod(fd, mode) < 0)
		w = -1;
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static void test_parse(void)
{
	uint8_t buf[3 * TICKETKEY_LEN];
	struct ticketkeys ks;
	const struct ticketkey *k;
	char err[160];
	bool cur = false;

	fill(buf, sizeof(buf), 1);
	CHECK_INT(ticketkey_parse(&ks, buf, TICKETKEY_LEN, err, sizeof(err)), 0);
	CHECK_INT(ks.n, 1);
	/* nginx: name, then the HMAC secret, then the AES key. */
	CHECK_MEM(ks.k[0].name, buf, 16);
	CHECK_MEM(ks.k[0].hmac, buf + 16, 32);
	CHECK_MEM(ks.k[0].aes, buf + 48, 32);

	CHECK_INT(ticketkey_parse(&ks, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_INT(ks.n, 3);
	CHECK_MEM(ks.k[2].name, buf + 160, 16);
	/* The first encrypts; the older ones only decrypt. */
	CHECK((k = ticketkey_find(&ks, buf, &cur)) == &ks.k[0] && cur);
	CHECK((k = ticketkey_find(&ks, buf + 80, &cur)) == &ks.k[1] && !cur);
	CHECK((k = ticketkey_find(&ks, buf + 160, &cur)) == &ks.k[2] && !cur);
	CHECK(ticketkey_find(&ks, buf + 1, &cur) == NULL);

	/* Sizes that are no whole key, and none. */
	CHECK_INT(ticketkey_parse(&ks, buf, 0, err, sizeof(err)), -1);
	CHECK(strstr(err, "empty") != NULL);
	CHECK_INT(ks.n, 0);
	CHECK_INT(ticketkey_parse(&ks, buf, 48, err, sizeof(err)), -1);
	CHECK(strstr(err, "48 bytes") != NULL);
	CHECK_INT(ticketkey_parse(&ks, buf, 81, err, sizeof(err)), -1);
	CHECK(strstr(err, "80-byte") != NULL);
	CHECK_INT(ticketkey_parse(&ks, buf, 159, err, sizeof(err)), -1);

	/* Two keys with one name: a ticket could not say which. */
	memcpy(buf + 80, buf, 16);
	CHECK_INT(ticketkey_parse(&ks, buf, 160, err, sizeof(err)), -1);
	CHECK(strstr(err, "same name") != NULL);
	CHECK_INT(ks.n, 0);
}

static void test_limit(void)
{
	static uint8_t big[(TICKETKEY_MAX + 1) * TICKETKEY_LEN];
	struct ticketkeys ks;
	char err[160];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + i / TICKETKEY_LEN);
	CHECK_INT(ticketkey_parse(&ks, big, TICKETKEY_MAX * TICKETKEY_LEN, err, sizeof(err)), 0);
	CHECK_INT(ks.n, TICKETKEY_MAX);
	CHECK_INT(ticketkey_parse(&ks, big, sizeof(big), err, sizeof(err)), -1);
	CHECK(strstr(err, "at most") != NULL);
}

static void test_file(void)
{
	char dir[] = "/tmp/test_ticketkey.XXXXXX", path[64], err[160];
	static uint8_t big[(TICKETKEY_MAX + 1) * TICKETKEY_LEN];
	uint8_t buf[2 * TICKETKEY_LEN];
	struct ticketkeys ks;
	bool exposed = true;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/ticket.key", dir);
	fill(buf, sizeof(buf), 9);

	CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), -1);
	CHECK(strstr(err, "No such file") != NULL);

	CHECK_INT(write_file(path, buf, sizeof(buf), 0600), 0);
	CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), 0);
	CHECK_INT(ks.n, 2);
	CHECK(!exposed);
	CHECK_MEM(ks.k[1].aes, buf + 80 + 48, 32);

	/* Readable by the group or by everyone: loaded, and said so. */
	CHECK_INT(chmod(path, 0640), 0);
	CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), 0);
	CHECK(exposed);
	CHECK_INT(chmod(path, 0604), 0);
	CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), 0);
	CHECK(exposed);

	/* Short, and too long to be a handful of keys. */
	CHECK_INT(write_file(path, buf, 100, 0600), 0);
	CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), -1);
	CHECK(strstr(err, "100 bytes") != NULL);
	CHECK_INT(write_file(path, big, sizeof(big), 0600), 0);
	CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), -1);
	CHECK(strstr(err, "more than") != NULL);

	/* A directory is no key file. */
	CHECK_INT(ticketkey_load(dir, &ks, &exposed, err, sizeof(err)), -1);
	CHECK(strstr(err, "directory") != NULL);

	/* Unreadable (as the daemon's user after a chmod 0): only when not root. */
	if (geteuid() != 0) {
		CHECK_INT(write_file(path, buf, sizeof(buf), 0), 0);
		CHECK_INT(ticketkey_load(path, &ks, &exposed, err, sizeof(err)), -1);
		CHECK(strstr(err, "Permission denied") != NULL);
	}
	unlink(path);
	rmdir(dir);
}

static void test_random(void)
{
	struct ticketkeys a, b;

	CHECK_INT(ticketkey_random(&a), 0);
	CHECK_INT(ticketkey_random(&b), 0);
	CHECK_INT(a.n, 1);
	CHECK(memcmp(&a.k[0], &b.k[0], sizeof(a.k[0])) != 0);
	ticketkey_wipe(&a);
	CHECK_INT(a.n, 0);
	CHECK(a.k[0].aes[0] == 0 && a.k[0].aes[31] == 0);
}

int main(void)
{
	test_parse();
	test_limit();
	test_file();
	test_random();
	return t_done("test_ticketkey");
}
