#include "proxy/cookiefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/strbuf.h"
#include "proxy/cookie.h"

/* A few lines per session: a bound keeps a planted huge file out. */
#define COOKIEFILE_MAX (16 * 1024 * 1024)

void cookiefile_path(const char *control_socket, char *out, size_t len)
{
	const char *slash = strrchr(control_socket, '/');
	int dlen = slash ? (int)(slash - control_socket) : 1;

	snprintf(out, len, "%.*s/cookies", dlen, slash ? control_socket : ".");
}

long cookiefile_load(const char *path, struct cookie_table *t, time_t now, size_t *bad)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	long r;

	*bad = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > COOKIEFILE_MAX) {
		r = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		goto out;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		r = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r = cookie_parse(t, buf, got, now, bad);
	if (r < 0)
		r = -EINVAL;
out:
	free(buf);
	close(fd);
	return r;
}

int cookiefile_save(const char *path, const struct cookie_table *t, time_t now)
{
	struct strbuf sb = { 0 };
	char tmp[4200];
	size_t off = 0;
	int fd, r = 0;

	cookie_format(t, now, &sb);
	if (sb.oom) {
		strbuf_free(&sb);
		return -ENOMEM;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		r = -errno;
		strbuf_free(&sb);
		return r;
	}
	while (off < sb.len) {
		ssize_t n = write(fd, sb.buf + off, sb.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	strbuf_free(&sb);
	return r;
}
