/* Logging: stderr under -f, syslog otherwise (relayd's log.c API). */
#ifndef MTUGATE_DAEMON_LOG_H
#define MTUGATE_DAEMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* level: enum log_level. Under -f with stderr connected to the journal
 * ($JOURNAL_STREAM names stderr's device:inode), each line starts with its
 * syslog priority, "<4>...", and without the program's name. */
void log_init(bool foreground, int level);
/* $JOURNAL_STREAM's value names this device and inode. */
bool log_is_journal_stream(const char *env, unsigned long long dev, unsigned long long ino);
void log_setlevel(int level);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* adds strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Packet-path messages: at most one per second per call site; the counters
 * carry the volume. */
struct log_limit {
	_Atomic int64_t last;	/* CLOCK_MONOTONIC seconds of the last message */
};
bool log_allow(struct log_limit *l);
#define log_limited(fn, ...) do { static struct log_limit ll_; \
	if (log_allow(&ll_)) fn(__VA_ARGS__); } while (0)

#endif
