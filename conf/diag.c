#include "conf/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static char *diag_vformat(const char *file, int line, const char *fmt, va_list ap)
{
	char *msg = NULL, *out = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		return NULL;
	if (line > 0) {
		if (asprintf(&out, "%s:%d: %s", file, line, msg) < 0)
			out = NULL;
	} else if (asprintf(&out, "%s: %s", file, msg) < 0) {
		out = NULL;
	}
	free(msg);
	return out;
}

void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = diag_vformat(file ? file : "(null)", line, fmt, ap);
	va_end(ap);
	if (d->n >= d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 8;
		char **nm;

		if (ncap <= d->n)
			ncap = d->n + 8;
		nm = realloc(d->msgs, ncap * sizeof(*nm));

		if (!nm) {
			/* Keep counting: an error lost to ENOMEM must still fail the load. */
			free(msg);
			d->n++;
			return;
		}
		/* Slots counted while memory was short stay NULL. */
		memset(nm + d->cap, 0, (ncap - d->cap) * sizeof(*nm));
		d->msgs = nm;
		d->cap = ncap;
	}
	d->msgs[d->n++] = msg;
}

size_t diag_count(const struct diag *d)
{
	return d->n;
}

void diag_print(const struct diag *d, FILE *f)
{
	for (size_t i = 0; i < d->n && i < d->cap; i++)
		fprintf(f, "%s\n", d->msgs[i] ? d->msgs[i] : "(out of memory)");
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n && i < d->cap; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = d->cap = 0;
}
