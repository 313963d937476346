/* ctl_handle() on arbitrary request bytes: every reply is one well-formed
 * reply (text lines, no NUL, ending with the empty line), whatever comes in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/diag.h"
#include "daemon/control.h"
#include "daemon/stats.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"

static struct stats st;
static struct ctl_ops ops;

static int fuzz_reload(void *arg, struct diag *d)
{
	(void)arg;
	diag_add(d, "groups.d/x.conf", 7, "bad value 'a\nb\tc'");
	return -1;
}

static unsigned fuzz_slot(void *arg, const char *name)
{
	return stats_slot(arg, name);
}

static void fuzz_init(void)
{
	struct group *g = calloc(1, sizeof(*g));
	struct diag d = { 0 };
	struct policy *p;

	stats_init(&st);
	stats_new_set(&st);
	strcpy(g->name, "alpha");
	strcpy(g->auth_group, "alpha");
	g->pools = calloc(1, sizeof(*g->pools));
	g->npools = 1;
	prefix_parse(&g->pools[0], "192.0.2.0/24");
	g->mtu = 1380;
	p = policy_compile(g, 1, &d);
	diag_free(&d);
	if (!p)
		abort();
	policy_assign_slots(p, fuzz_slot, &st);
	ops = (struct ctl_ops){ .stats = &st, .box = policy_box_new(p), .reload = fuzz_reload };
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct strbuf out = { 0 };

	if (!ready) {
		fuzz_init();
		ready = 1;
	}
	ctl_handle(&ops, (const char *)data, size, &out);
	if (out.oom || !out.buf || out.len == 0 || strlen(out.buf) != out.len)
		__builtin_trap();
	if (out.buf[out.len - 1] != '\n' || (out.len > 1 && out.buf[out.len - 2] != '\n'))
		__builtin_trap();
	/* Exactly one empty line, at the end: a client reads one reply per request. */
	if (out.len > 1 && strstr(out.buf, "\n\n") != out.buf + out.len - 2)
		__builtin_trap();
	if (out.buf[0] == '\n' && out.len != 1)
		__builtin_trap();
	for (size_t i = 0; i < out.len; i++)
		if ((unsigned char)out.buf[i] < 0x20 && out.buf[i] != '\n' && out.buf[i] != '\t')
			__builtin_trap();
	if (size > 1024 && strncmp(out.buf, "error=EINVAL\t", 13) != 0)
		__builtin_trap();
	strbuf_free(&out);
	return 0;
}
