/* Whether a thread still turns: its progress counter (packets, loop ticks)
 * moved within the last stall_ms. Pure: the caller brings the clock. */
#ifndef MTUGATE_DAEMON_WATCH_H
#define MTUGATE_DAEMON_WATCH_H

#include <stdbool.h>
#include <stdint.h>

struct watch {
	uint64_t progress;	/* the counter at the last change seen */
	uint64_t since_ms;	/* when it was seen to change */
	bool stalled;		/* reported stalled, not yet seen moving again */
};

enum watch_event { WATCH_OK, WATCH_STALLED, WATCH_STILL_STALLED, WATCH_RESUMED };

/* Start watching at now_ms. */
void watch_init(struct watch *w, uint64_t progress, uint64_t now_ms);
/* One look: WATCH_STALLED the first time the counter has not moved for
 * stall_ms, WATCH_STILL_STALLED after that, WATCH_RESUMED when it moves again. */
enum watch_event watch_look(struct watch *w, uint64_t progress, uint64_t now_ms, uint64_t stall_ms);

#endif
