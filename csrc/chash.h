/* chash.h: bounded-load helpers shared by maglev.c and ring.c (Mirrokni et
 * al., "Consistent Hashing with Bounded Loads", 2016).  Internal to the
 * consistent-hash tables; the type is in chash-t.h. */
#ifndef FLB_CHASH_H
#define FLB_CHASH_H

#include <stdint.h>

#include "chash-t.h"

/* Fractional bits of the fixed-point load factor of bounded lookups. */
#define FLB_CHASH_CAP_FRAC_BITS 16
/* Largest load factor honoured; larger ones are clamped (it keeps the cap
 * arithmetic within 128 bits, and such a factor barely bounds anything). */
#define FLB_CHASH_CAP_MAX_C 32767.0
/* Probes (table slots or ring points) of a bounded lookup before checking
 * with flb_chash_scan_nodes that some node has room. */
#define FLB_CHASH_BOUNDED_PROBES 64u

/* Prepare the cap test of a bounded lookup.
 * c: load factor, clamped to [1, FLB_CHASH_CAP_MAX_C] (NaN counts as 1);
 * total: the sum of the nodes' loads; total_weight: W, the sum of weights.
 * Returns the test, for flb_chash_cap_has_room and flb_chash_scan_nodes. */
static inline struct flb_chash_cap flb_chash_cap_init(double c, uint64_t total,
                                                      uint64_t total_weight)
{
	struct flb_chash_cap t;
	uint64_t cf;

	if (!(c >= 1.0))
		c = 1.0;
	if (c > FLB_CHASH_CAP_MAX_C)
		c = FLB_CHASH_CAP_MAX_C;
	/* Rounded down: a cap never exceeds the one of the exact c. */
	cf = (uint64_t)(c * (double)(1u << FLB_CHASH_CAP_FRAC_BITS));
	t.budget = (unsigned __int128)cf * ((unsigned __int128)total + 1);
	t.scale = (unsigned __int128)total_weight << FLB_CHASH_CAP_FRAC_BITS;
	return t;
}

/* Whether a node may take one more key.
 * t: from flb_chash_cap_init; load, weight: the node's load and weight.
 * Returns nonzero iff load + 1 <= ceil(c * (total + 1) * weight / W). */
static inline int flb_chash_cap_has_room(const struct flb_chash_cap *t, uint32_t load,
                                         uint32_t weight)
{
	return (unsigned __int128)load * t->scale < t->budget * weight;
}

/* Scan the nodes instead of the table or ring: the first node, from index
 * start onwards (wrapping), that is not excluded and has room; else the
 * non-excluded node with the least loads[i] / w_i (ties: first from start).
 * loads, weights: n entries each; n >= 1; start < n; t: the cap test;
 * excluded: NULL, or n flags (nonzero = skip).
 * room: out, set to whether the node returned has room.
 * Returns a node index, or -1 when every node is excluded. */
static inline int32_t flb_chash_scan_nodes(const uint32_t *loads, const uint32_t *weights,
                                           uint32_t n, uint32_t start,
                                           const struct flb_chash_cap *t,
                                           const uint8_t *excluded, int *room)
{
	int32_t best = -1;

	*room = 0;
	for (uint32_t k = 0, i = start; k < n; k++, i = (i + 1 == n) ? 0 : i + 1) {
		if (excluded != NULL && excluded[i])
			continue;
		if (flb_chash_cap_has_room(t, loads[i], weights[i])) {
			*room = 1;
			return (int32_t)i;
		}
		/* loads[i] / w_i < loads[best] / w_best, products < 2^64. */
		if (best < 0 || (uint64_t)loads[i] * weights[best] <
		                (uint64_t)loads[best] * weights[i])
			best = (int32_t)i;
	}
	return best;
}

#endif /* FLB_CHASH_H */
