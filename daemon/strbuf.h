/* A growable text buffer for control replies. */
#ifndef MTUGATE_DAEMON_STRBUF_H
#define MTUGATE_DAEMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len, cap;
	bool oom;	/* an allocation failed: the content is truncated */
};

void strbuf_printf(struct strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_append(struct strbuf *s, const char *data, size_t len);
void strbuf_reset(struct strbuf *s);
void strbuf_free(struct strbuf *s);

#endif
