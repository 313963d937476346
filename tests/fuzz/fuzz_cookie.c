/*
 * libFuzzer: the session-cookie parsers on arbitrary bytes. The input is
 * read as a response head (Set-Cookie), a request head (Cookie), single
 * header values and as a state file; every token found must lie inside the
 * input and be a valid cookie-octet run, and a state file that loaded must
 * come back the same through cookie_format() and cookie_parse().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"
#include "proxy/cookie.h"

static void check_span(size_t n, size_t off, size_t len)
{
	if (!len || off > n || len > n - off)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct cookie_table *t, *u;
	struct strbuf a = { 0 }, b = { 0 };
	size_t off, len, bad, bad2;
	long loaded;

	if (cookie_in_response(data, n, &off, &len))
		check_span(n, off, len);
	if (cookie_in_request(data, n, &off, &len))
		check_span(n, off, len);
	if (cookie_from_set_cookie(data, n, &off, &len))
		check_span(n, off, len);
	if (cookie_from_cookie(data, n, &off, &len))
		check_span(n, off, len);
	(void)cookie_is_logout(data, n);

	if (!(t = cookie_table_new(16)) || !(u = cookie_table_new(16)))
		abort();
	loaded = cookie_parse(t, (const char *)data, n, 1000, &bad);
	if (loaded > 16 || cookie_count(t) > 16)
		abort();
	cookie_format(t, 1000, &a);
	if (cookie_parse(u, a.buf, a.len, 1000, &bad2) != (long)cookie_count(t) || bad2)
		abort();
	cookie_format(u, 1000, &b);
	if (a.len != b.len)
		abort();
	strbuf_free(&a);
	strbuf_free(&b);
	cookie_table_free(t);
	cookie_table_free(u);
	return 0;
}
