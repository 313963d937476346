/* daemon/log: the journald priority prefix when stderr is the journal's
 * stream ($JOURNAL_STREAM), the plain form otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "daemon/log.h"
#include "tests/unit/t.h"

static void test_env(void)
{
	CHECK(log_is_journal_stream("8:12345", 8, 12345));
	CHECK(!log_is_journal_stream("8:12345", 8, 12346));
	CHECK(!log_is_journal_stream("9:12345", 8, 12345));
	CHECK(!log_is_journal_stream(NULL, 8, 12345));
	CHECK(!log_is_journal_stream("", 8, 12345));
	CHECK(!log_is_journal_stream("8", 8, 12345));
	CHECK(!log_is_journal_stream("8:12345x", 8, 12345));
	CHECK(!log_is_journal_stream("8:12345:1", 8, 12345));
}

/* Log three lines with stderr on a file, JOURNAL_STREAM set to env (NULL:
 * unset, "match": the file's own device:inode); return what was written. */
static char *capture(const char *env)
{
	static char out[1024];
	char path[] = "/tmp/mtugate-test-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	struct stat st;
	char val[64];
	ssize_t n;

	unlink(path);
	fstat(fd, &st);
	if (env && !strcmp(env, "match")) {
		snprintf(val, sizeof(val), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", val, 1);
	} else if (env) {
		setenv("JOURNAL_STREAM", env, 1);
	} else {
		unsetenv("JOURNAL_STREAM");
	}
	fflush(stderr);
	dup2(fd, 2);
	log_init(true, LOG_LEVEL_INFO);
	log_warnx("queue %d stalled", 3);
	log_info("tunnel up");
	log_error("bad");
	log_debug("not shown at info");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return out;
}

int main(void)
{
	test_env();
	CHECK_STR(capture("match"), "<4>queue 3 stalled\n<6>tunnel up\n<3>bad\n");
	CHECK_STR(capture(NULL), "mtugated: queue 3 stalled\nmtugated: tunnel up\nmtugated: bad\n");
	/* Another stream's (stderr redirected elsewhere by a wrapper): plain. */
	CHECK_STR(capture("1:1"), "mtugated: queue 3 stalled\nmtugated: tunnel up\nmtugated: bad\n");
	return t_done("test_log");
}
