/* The session cookies' state file: read at start, written atomically
 * (a temporary file, then rename) when the table changed. I/O only; the
 * text is cookie_format()'s and cookie_parse()'s. */
#ifndef MTUGATE_PROXY_COOKIEFILE_H
#define MTUGATE_PROXY_COOKIEFILE_H

#include <stddef.h>
#include <time.h>

struct cookie_table;

/* The file next to the control socket: "DIR/cookies" for
 * "DIR/mtugate.sock" (RUNSTATEDIR/mtugate by default). */
void cookiefile_path(const char *control_socket, char *out, size_t len);

/* Load path into t: entries loaded (0 for a missing file), or -errno; a
 * file whose first line is wrong gives -EINVAL. *bad counts lines skipped. */
long cookiefile_load(const char *path, struct cookie_table *t, time_t now, size_t *bad);

/* Write t to path, mode 0600, replacing it atomically: 0 or -errno. */
int cookiefile_save(const char *path, const struct cookie_table *t, time_t now);

#endif
