#include "daemon/watch.h"

void watch_init(struct watch *w, uint64_t progress, uint64_t now_ms)
{
	*w = (struct watch){ .progress = progress, .since_ms = now_ms };
}

enum watch_event watch_look(struct watch *w, uint64_t progress, uint64_t now_ms, uint64_t stall_ms)
{
	if (progress != w->progress) {
		bool was = w->stalled;

		watch_init(w, progress, now_ms);
		return was ? WATCH_RESUMED : WATCH_OK;
	}
	/* A clock that went back (it should not: CLOCK_MONOTONIC) restarts the wait. */
	if (now_ms < w->since_ms)
		w->since_ms = now_ms;
	if (now_ms - w->since_ms < stall_ms)
		return w->stalled ? WATCH_STILL_STALLED : WATCH_OK;
	if (w->stalled)
		return WATCH_STILL_STALLED;
	w->stalled = true;
	return WATCH_STALLED;
}
