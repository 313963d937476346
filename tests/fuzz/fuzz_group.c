/* libFuzzer: bytes as one groups.d file, parsed and compiled. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/diag.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char path[] = "/tmp/fuzz_group.XXXXXX";
	int fd = mkstemp(path);
	struct diag d = { 0 };
	struct group *g;
	struct policy *p;

	if (fd < 0)
		return 0;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	g = calloc(1, sizeof(*g));
	if (!g)
		goto out;
	if (group_parse_file(g, path, &d) < 0) {
		if (diag_count(&d) == 0)
			abort();	/* a failed parse always says why */
		group_release(g);
		free(g);
		goto out;
	}
	/* A parsed group is sane enough for the packet path. */
	if (g->mtu < 576 || g->mtu > 9000 || g->npools == 0 || !g->name[0])
		abort();
	if (g->mss_mode != MSS_OFF && group_mss(g, AF_INET) < 88)
		abort();
	p = policy_compile(g, 1, &d);
	if (p) {
		if (policy_count(p) != 1 || !policy_by_name(p, policy_group(p, 0)->name))
			abort();
		policy_free(p);
	}
out:
	diag_free(&d);
	unlink(path);
	return 0;
}
