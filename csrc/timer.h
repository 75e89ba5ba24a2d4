/* timer.h: per-worker timer heap.  Types and design in timer-t.h. */
#ifndef FLB_TIMER_H
#define FLB_TIMER_H

#include "timer-t.h"

/* Initialise an empty heap.  ts: the heap. */
void flb_timers_init(struct flb_timers *ts);

/* Free the heap's array; timers still armed are left unarmed.  ts: the heap. */
void flb_timers_free(struct flb_timers *ts);

/* Prepare a timer node.  t: the node; cb: its expiry callback. */
static inline void flb_timer_init(struct flb_timer *t, flb_timer_cb cb)
{
	t->expire = 0;
	t->idx = FLB_TIMER_UNARMED;
	t->cb = cb;
}

/* Returns nonzero when t is in a heap. */
static inline int flb_timer_armed(const struct flb_timer *t)
{
	return t->idx != FLB_TIMER_UNARMED;
}

/* Arm t to expire at `expire` (monotonic ms), or move it there if armed.
 * Returns 0, or -1 when growing the heap failed (t is then unchanged). */
int flb_timer_arm(struct flb_timers *ts, struct flb_timer *t, uint64_t expire);

/* Disarm t; no-op when it is not armed.  ts: the heap holding it. */
void flb_timer_cancel(struct flb_timers *ts, struct flb_timer *t);

/* Milliseconds from now until the earliest expiry: 0 when one is due,
 * -1 when no timer is armed, else the delay clamped to INT32_MAX. */
int32_t flb_timers_next(const struct flb_timers *ts, uint64_t now);

/* Fire due timers: every timer with expire <= now is removed and its
 * callback called with ctx, earliest first, at most max of them (a callback
 * re-arming at or before now is fired again only within that budget).
 * Returns the number fired. */
uint32_t flb_timers_run(struct flb_timers *ts, uint64_t now, void *ctx, uint32_t max);

#endif /* FLB_TIMER_H */
