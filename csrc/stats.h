/* stats.h: single-writer counter updates and summed reads.  Types and the
 * reasoning in stats-t.h. */
#ifndef FLB_STATS_H
#define FLB_STATS_H

#include "stats-t.h"

/* Add n to a counter; only the counter's owning worker may call this.
 * c: the counter; n: the amount (use (uint64_t)-1 to subtract one). */
static inline void flb_ctr_add(flb_ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

/* Read a counter from any thread.  Returns its value. */
static inline uint64_t flb_ctr_get(const flb_ctr *c)
{
	return atomic_load_explicit((flb_ctr *)c, memory_order_relaxed);
}

#define FLB_SUM_FIELD(name) out->name += flb_ctr_get(&c->name);

/* Record one observation of us microseconds in a histogram slot (owning
 * worker only).  h: the slot. */
static inline void flb_hist_add(struct flb_hist_ctr *h, uint64_t us)
{
	static const uint64_t bounds[FLB_HIST_BUCKETS - 1] = FLB_HIST_BOUNDS_US;
	unsigned i = 0;

	while (i < FLB_HIST_BUCKETS - 1 && us > bounds[i])
		i++;
	flb_ctr_add(&h->b[i], 1);
	flb_ctr_add(&h->sum_us, us);
}

/* Add one histogram slot into out.  out: accumulator; h: slot. */
static inline void flb_hist_sum(struct flb_hist_stats *out, const struct flb_hist_ctr *h)
{
	for (unsigned i = 0; i < FLB_HIST_BUCKETS; i++)
		out->b[i] += flb_ctr_get(&h->b[i]);
	out->sum_us += flb_ctr_get(&h->sum_us);
}

/* Add one slot of listener counters into out.  out: accumulator; c: slot. */
static inline void flb_lsn_ctr_sum(struct flb_lsn_stats *out, const struct flb_lsn_ctr *c)
{
	FLB_LSN_CTRS(FLB_SUM_FIELD)
	flb_hist_sum(&out->duration, &c->duration);
}

/* Add one slot of server counters into out.  out: accumulator; c: slot. */
static inline void flb_srv_ctr_sum(struct flb_srv_stats *out, const struct flb_srv_ctr *c)
{
	FLB_SRV_CTRS(FLB_SUM_FIELD)
	flb_hist_sum(&out->upstream, &c->upstream);
}

/* Add one worker's counters into out.  out: accumulator; c: the worker's. */
static inline void flb_wrk_ctr_sum(struct flb_wrk_stats *out, const struct flb_wrk_ctr *c)
{
	FLB_WRK_CTRS(FLB_SUM_FIELD)
}

#undef FLB_SUM_FIELD

#endif /* FLB_STATS_H */
