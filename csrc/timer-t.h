/* timer-t.h: per-worker timers, a binary min-heap of intrusive timer nodes.
 *
 * Why a heap and not a wheel: the engine arms at most one timer per
 * connection (connect timeout, then idle timeout) and one per paused
 * listener, and re-arms idle timers lazily: activity only stores a
 * timestamp in the connection, and when the timer fires the owner checks the
 * real deadline and pushes the timer further out if there was activity.  So
 * heap operations happen per connection (accept, connect, close, and once per
 * idle period), never per relayed byte, and log2(n) stays small; in exchange
 * the next deadline is exact and the structure has no tick to tune.
 *
 * Functions in timer.h.  Everything here is owned by one worker thread. */
#ifndef FLB_TIMER_T_H
#define FLB_TIMER_T_H

#include <stdint.h>

struct flb_timer;

/* Called when a timer expires, after it has been removed from the heap (the
 * callback may re-arm it).  t: the timer; ctx: what flb_timers_run got. */
typedef void (*flb_timer_cb)(struct flb_timer *t, void *ctx);

#define FLB_TIMER_UNARMED UINT32_MAX

/* One timer, embedded in its owner (a connection, a listener slot). */
struct flb_timer {
	uint64_t expire;   /* monotonic ms */
	uint32_t idx;      /* position in the heap, FLB_TIMER_UNARMED if none */
	flb_timer_cb cb;
};

/* The heap.  Its array grows by doubling and is bounded by the number of
 * armed timers, i.e. by the live connections and listeners of a worker. */
struct flb_timers {
	struct flb_timer **heap;
	uint32_t n, cap;
};

#endif /* FLB_TIMER_T_H */
