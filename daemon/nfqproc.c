#include "daemon/nfqproc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

/* A decimal number of at most 10 digits that fits 32 bits, then blanks. */
static bool nfqproc_num(const char **p, const char *end, uint32_t *out)
{
	uint64_t v = 0;
	int digits = 0;

	while (*p < end && **p == ' ')
		(*p)++;
	while (*p < end && **p >= '0' && **p <= '9' && digits <= 10) {
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
		digits++;
	}
	if (digits == 0 || digits > 10 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool nfqproc_line(const char *p, const char *end, struct nfqproc_row *r)
{
	uint32_t v[9];

	/* The last field is printed with %2d: " 1". */
	for (int i = 0; i < 9; i++)
		if (!nfqproc_num(&p, end, &v[i]))
			return false;
	while (p < end && *p == ' ')
		p++;
	if (p != end)
		return false;
	*r = (struct nfqproc_row){ .queue = v[0], .portid = v[1], .backlog = v[2],
				   .dropped = v[5], .user_dropped = v[6], .id_sequence = v[7] };
	return true;
}

size_t nfqproc_parse(const char *text, size_t len, struct nfqproc_row *rows, size_t max)
{
	const char *p = text, *end = text + len;
	size_t n = 0;

	while (p < end && n < max) {
		const char *nl = p;

		while (nl < end && *nl != '\n')
			nl++;
		if (nfqproc_line(p, nl, &rows[n]))
			n++;
		p = nl < end ? nl + 1 : end;
	}
	return n;
}

int nfqproc_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int nfqproc_read(int fd, struct nfqproc_row *rows, size_t max)
{
	char buf[16384];
	size_t len = 0;
	ssize_t got = 0;

	/* pread from 0: a seq_file starts over and prints the numbers of now.
	 * A line is some 45 bytes: this holds about 350 queues; a line cut
	 * short at the end does not parse and is left out. */
	while (len < sizeof(buf) && (got = pread(fd, buf + len, sizeof(buf) - len, (off_t)len)) > 0)
		len += (size_t)got;
	if (got < 0 && len == 0)
		return -errno;
	return (int)nfqproc_parse(buf, len, rows, max);
}

const struct nfqproc_row *nfqproc_find(const struct nfqproc_row *rows, size_t n, uint32_t num)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].queue == num)
			return &rows[i];
	return NULL;
}
