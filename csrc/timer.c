/* timer.c: binary min-heap of timers (see timer-t.h for the design). */
#include <stdlib.h>

#include "compiler.h"
#include "timer.h"

/* Initialise an empty heap (contract in timer.h). */
void flb_timers_init(struct flb_timers *ts)
{
	ts->heap = NULL;
	ts->n = ts->cap = 0;
}

/* Free the heap array, unarming what is left (contract in timer.h). */
void flb_timers_free(struct flb_timers *ts)
{
	for (uint32_t i = 0; i < ts->n; i++)
		ts->heap[i]->idx = FLB_TIMER_UNARMED;
	free(ts->heap);
	ts->heap = NULL;
	ts->n = ts->cap = 0;
}

/* Move the timer at index i up while it expires before its parent.
 * ts: the heap; i: an index < ts->n. */
static void sift_up(struct flb_timers *ts, uint32_t i)
{
	struct flb_timer *t = ts->heap[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (ts->heap[p]->expire <= t->expire)
			break;
		ts->heap[i] = ts->heap[p];
		ts->heap[i]->idx = i;
		i = p;
	}
	ts->heap[i] = t;
	t->idx = i;
}

/* Move the timer at index i down while a child expires before it.
 * ts: the heap; i: an index < ts->n. */
static void sift_down(struct flb_timers *ts, uint32_t i)
{
	struct flb_timer *t = ts->heap[i];

	for (;;) {
		uint32_t l = 2 * i + 1, m;

		if (l >= ts->n)
			break;
		m = l;
		if (l + 1 < ts->n && ts->heap[l + 1]->expire < ts->heap[l]->expire)
			m = l + 1;
		if (ts->heap[m]->expire >= t->expire)
			break;
		ts->heap[i] = ts->heap[m];
		ts->heap[i]->idx = i;
		i = m;
	}
	ts->heap[i] = t;
	t->idx = i;
}

/* Arm or move a timer (contract in timer.h). */
int flb_timer_arm(struct flb_timers *ts, struct flb_timer *t, uint64_t expire)
{
	if (flb_timer_armed(t)) {
		uint64_t old = t->expire;

		t->expire = expire;
		if (expire < old)
			sift_up(ts, t->idx);
		else if (expire > old)
			sift_down(ts, t->idx);
		return 0;
	}
	if (ts->n == ts->cap) {
		uint32_t cap = ts->cap ? ts->cap * 2 : 64;
		struct flb_timer **h = realloc(ts->heap, (size_t)cap * sizeof(*h));

		if (h == NULL)
			return -1;
		ts->heap = h;
		ts->cap = cap;
	}
	t->expire = expire;
	ts->heap[ts->n] = t;
	t->idx = ts->n++;
	sift_up(ts, t->idx);
	return 0;
}

/* Disarm a timer (contract in timer.h). */
void flb_timer_cancel(struct flb_timers *ts, struct flb_timer *t)
{
	uint32_t i = t->idx;
	struct flb_timer *last;

	if (i == FLB_TIMER_UNARMED)
		return;
	t->idx = FLB_TIMER_UNARMED;
	last = ts->heap[--ts->n];
	if (i == ts->n)
		return;
	ts->heap[i] = last;
	last->idx = i;
	if (i > 0 && ts->heap[(i - 1) / 2]->expire > last->expire)
		sift_up(ts, i);
	else
		sift_down(ts, i);
}

/* Delay until the earliest expiry (contract in timer.h). */
int32_t flb_timers_next(const struct flb_timers *ts, uint64_t now)
{
	uint64_t e;

	if (ts->n == 0)
		return -1;
	e = ts->heap[0]->expire;
	if (e <= now)
		return 0;
	return (e - now) > INT32_MAX ? INT32_MAX : (int32_t)(e - now);
}

/* Fire due timers (contract in timer.h). */
uint32_t flb_timers_run(struct flb_timers *ts, uint64_t now, void *ctx, uint32_t max)
{
	uint32_t fired = 0;

	while (ts->n > 0 && fired < max && ts->heap[0]->expire <= now) {
		struct flb_timer *t = ts->heap[0];

		flb_timer_cancel(ts, t);
		fired++;
		t->cb(t, ctx);
	}
	return fired;
}
