/* Collected configuration diagnostics: every error as "FILE:LINE: message". */
#ifndef MTUGATE_CONF_DIAG_H
#define MTUGATE_CONF_DIAG_H

#include <stddef.h>
#include <stdio.h>

struct diag {
	char **msgs;	/* each "FILE:LINE: message" (or "FILE: message" when line is 0) */
	size_t n, cap;
};

/* Append one error. line 0 means the whole file. Never fails silently: on
 * allocation failure the count still grows so callers see an error. */
void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
size_t diag_count(const struct diag *d);
void diag_print(const struct diag *d, FILE *f);	/* one message per line */
void diag_free(struct diag *d);

#endif
