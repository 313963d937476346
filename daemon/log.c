#include "daemon/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "conf/conf.h"

/* Process-wide by nature (stderr and syslog are), set once at startup. */
static bool log_fg = true;
static bool log_journal;	/* stderr is the journal: "<N>" prefixes, no name */
static _Atomic int log_lvl = LOG_LEVEL_INFO;

bool log_is_journal_stream(const char *env, unsigned long long dev, unsigned long long ino)
{
	unsigned long long d, i;
	int n = 0;

	/* sd-daemon(3): "DEVICE:INODE" of the stream, both decimal. */
	if (!env || sscanf(env, "%llu:%llu%n", &d, &i, &n) != 2 || env[n])
		return false;
	return d == dev && i == ino;
}

void log_init(bool foreground, int level)
{
	struct stat st;

	log_fg = foreground;
	log_lvl = level;
	/* Under systemd, stderr is a stream into journald, which reads a leading
	 * "<N>" as the line's priority (sd-daemon.h) and adds the unit's name:
	 * without the prefix every line lands at info. */
	log_journal = foreground && fstat(2, &st) == 0 &&
		      log_is_journal_stream(getenv("JOURNAL_STREAM"), (unsigned long long)st.st_dev,
					    (unsigned long long)st.st_ino);
	if (!foreground)
		openlog("mtugated", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_setlevel(int level)
{
	log_lvl = level;
}

static void log_vwrite(int lvl, int prio, const char *err, const char *fmt, va_list ap)
{
	char msg[1024];

	if (lvl > log_lvl)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_fg && log_journal) {
		if (err)
			fprintf(stderr, "<%d>%s: %s\n", prio, msg, err);
		else
			fprintf(stderr, "<%d>%s\n", prio, msg);
	} else if (log_fg) {
		if (err)
			fprintf(stderr, "mtugated: %s: %s\n", msg, err);
		else
			fprintf(stderr, "mtugated: %s\n", msg);
	} else if (err) {
		syslog(prio, "%s: %s", msg, err);
	} else {
		syslog(prio, "%s", msg);
	}
}

#define LOG_FN(name, lvl, prio, with_errno) \
	void name(const char *fmt, ...) \
	{ \
		int saved = errno; \
		va_list ap; \
		va_start(ap, fmt); \
		log_vwrite(lvl, prio, with_errno ? strerror(saved) : NULL, fmt, ap); \
		va_end(ap); \
		errno = saved; \
	}

LOG_FN(log_warn, LOG_LEVEL_WARNING, LOG_WARNING, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARNING, LOG_WARNING, 0)
LOG_FN(log_error, LOG_LEVEL_ERROR, LOG_ERR, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, LOG_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, LOG_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, LOG_CRIT, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

bool log_allow(struct log_limit *l)
{
	struct timespec now;
	int64_t last;

	clock_gettime(CLOCK_MONOTONIC, &now);
	last = atomic_load_explicit(&l->last, memory_order_relaxed);
	if (last != 0 && now.tv_sec - last < 1)
		return false;
	return atomic_compare_exchange_strong(&l->last, &last, (int64_t)now.tv_sec ? now.tv_sec : 1);
}
