/* ring.h: build and query a ketama-style consistent-hash ring.  Types in
 * chash-t.h. */
#ifndef FLB_RING_H
#define FLB_RING_H

#include "chash-t.h"
#include "hash.h"

/* Build a ring.
 * r: out; owns its arrays afterwards (free with flb_ring_free).
 * keys: n node identities; point j of node i sits at flb_hash64(key_i, j).
 * weights: n weights > 0, or NULL for all 1.
 * n: 1..FLB_CHASH_MAX_NODES; vnodes: >= 1, points per unit of weight once the
 * weights are divided by their gcd g: node i gets vnodes * w_i / g points
 * (equal weights: vnodes each), so removing a node that leaves g unchanged
 * moves only the keys it owned.
 * Returns FLB_CHASH_OK, FLB_CHASH_EINVAL (also when vnodes * sum(w_i) / g
 * exceeds FLB_RING_MAX_POINTS) or FLB_CHASH_ENOMEM (r then empty). */
int flb_ring_build(struct flb_ring *r, const struct flb_hkey *keys,
                   const uint32_t *weights, uint32_t n, uint32_t vnodes);

/* Free a ring built by flb_ring_build; safe on a zeroed struct.
 * r: the ring; its fields are zeroed afterwards. */
void flb_ring_free(struct flb_ring *r);

/* Look a key hash up: the first point at or after hash, wrapping.
 * Returns the node index owning that point. */
uint32_t flb_ring_lookup(const struct flb_ring *r, uint64_t hash);

/* Look up with bounded loads: walk clockwise from the key's point and return
 * the first node that is not excluded and whose load stays within its cap,
 * cap_i = ceil(c * (total + 1) * w_i / W).
 * loads: current load per node; total: their sum; c: load factor >= 1.0.
 * excluded: NULL, or num_nodes flags (nonzero = skip).
 * Returns a node index, or -1 when every node is excluded. */
int32_t flb_ring_lookup_bounded(const struct flb_ring *r, uint64_t hash,
                                const uint32_t *loads, uint64_t total, double c,
                                const uint8_t *excluded);

#endif /* FLB_RING_H */
