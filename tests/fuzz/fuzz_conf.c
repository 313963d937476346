/* libFuzzer: bytes as mtugate.conf (written to a file, as the daemon reads it). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char path[] = "/tmp/fuzz_conf.XXXXXX";
	int fd = mkstemp(path);
	struct diag d = { 0 };
	struct conf *c;

	if (fd < 0)
		return 0;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	c = malloc(sizeof(*c));
	if (c && conf_load(c, path, &d) < 0 && diag_count(&d) == 0)
		abort();	/* a failed load always says why */
	/* Loaded: the mark layout is the mask's (or the default one). */
	if (c && diag_count(&d) == 0 && c->queues.mark_mask &&
	    marks_all(&c->marks) != c->queues.mark_mask)
		abort();
	diag_free(&d);
	free(c);
	unlink(path);
	return 0;
}
