#include "daemon/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for need more bytes plus a NUL; false (and oom set) when it cannot. */
static bool strbuf_reserve(struct strbuf *s, size_t need)
{
	size_t want, cap;
	char *nb;

	if (s->oom)
		return false;
	if (need > (size_t)-1 / 2 - s->len) {
		s->oom = true;
		return false;
	}
	want = s->len + need + 1;
	if (want <= s->cap)
		return true;
	cap = s->cap ? s->cap : 256;
	while (cap < want)
		cap *= 2;
	nb = realloc(s->buf, cap);
	if (!nb) {
		s->oom = true;
		return false;
	}
	s->buf = nb;
	s->cap = cap;
	return true;
}

void strbuf_append(struct strbuf *s, const char *data, size_t len)
{
	if (!strbuf_reserve(s, len))
		return;
	if (len)
		memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
}

void strbuf_printf(struct strbuf *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!strbuf_reserve(s, 0))
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->oom = true;
		return;
	}
	if ((size_t)n >= s->cap - s->len) {
		/* The first pass only measured: grow and format again. */
		if (!strbuf_reserve(s, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
		va_end(ap);
	}
	s->len += (size_t)n;
}

void strbuf_reset(struct strbuf *s)
{
	s->len = 0;
	s->oom = false;
	if (s->buf)
		s->buf[0] = '\0';
}

void strbuf_free(struct strbuf *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
	s->oom = false;
}
