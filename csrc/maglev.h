/* maglev.h: build and query a weighted Maglev table.  Types in chash-t.h. */
#ifndef FLB_MAGLEV_H
#define FLB_MAGLEV_H

#include "chash-t.h"
#include "hash.h"

/* Build a table.
 * m: out; owns its arrays afterwards (free with flb_maglev_free).
 * keys: n node identities (hashed for each node's offset and skip).
 * weights: n weights > 0, or NULL for all 1.
 * n: 1..FLB_CHASH_MAX_NODES; size: a prime, n < size <= FLB_MAGLEV_MAX_SIZE.
 * Returns FLB_CHASH_OK, FLB_CHASH_EINVAL or FLB_CHASH_ENOMEM (m then empty). */
int flb_maglev_build(struct flb_maglev *m, const struct flb_hkey *keys,
                     const uint32_t *weights, uint32_t n, uint32_t size);

/* Free a table built by flb_maglev_build; safe on a zeroed struct.
 * m: the table; its fields are zeroed afterwards. */
void flb_maglev_free(struct flb_maglev *m);

/* Look a key hash up: its slot is flb_hash_range(hash, size), i.e.
 * (hash * size) >> 64 (not hash mod size).
 * Returns the node index owning hash, table[slot]. */
static inline uint32_t flb_maglev_lookup(const struct flb_maglev *m, uint64_t hash)
{
	return m->table[flb_hash_range(hash, m->size)];
}

/* Look up with bounded loads (Mirrokni et al. 2016): probe the table from the
 * key's slot (as in flb_maglev_lookup) onwards, wrapping, and return the
 * first node that is not excluded and whose load stays within its cap,
 * cap_i = ceil(c * (total + 1) * w_i / W).
 * loads: current load per node (num_nodes entries); total: their sum.
 * c: load factor >= 1.0.  excluded: NULL, or num_nodes flags (nonzero = skip).
 * Returns a node index, or -1 when every node is excluded. */
int32_t flb_maglev_lookup_bounded(const struct flb_maglev *m, uint64_t hash,
                                  const uint32_t *loads, uint64_t total, double c,
                                  const uint8_t *excluded);

#endif /* FLB_MAGLEV_H */
