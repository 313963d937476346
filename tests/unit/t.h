/* Tiny test harness: every CHECK counts; t_done() prints "NAME: N passed, N failed". */
#ifndef MTUGATE_TESTS_T_H
#define MTUGATE_TESTS_T_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond) do { \
	if (cond) t_pass++; \
	else { t_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_INT(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ == b_) t_pass++; \
	else { t_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
				 __FILE__, __LINE__, #a, #b, a_, b_); } \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (a_ && b_ && strcmp(a_, b_) == 0) t_pass++; \
	else { t_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
				 __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } \
} while (0)

#define CHECK_MEM(a, b, n) do { \
	if (memcmp((a), (b), (n)) == 0) t_pass++; \
	else { t_fail++; fprintf(stderr, "%s:%d: CHECK failed: memcmp(%s, %s, %s)\n", \
				 __FILE__, __LINE__, #a, #b, #n); } \
} while (0)

static inline int t_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
