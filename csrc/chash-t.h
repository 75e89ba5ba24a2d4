/* chash-t.h: types of the consistent-hash tables (Maglev and the ketama-style
 * ring).  Both are immutable once built: workers read them from a config
 * snapshot without locks.  Functions are in maglev.h and ring.h; the
 * bounded-load helpers they share are in chash.h. */
#ifndef FLB_CHASH_T_H
#define FLB_CHASH_T_H

#include <stddef.h>
#include <stdint.h>

/* The identity of one node (server) as hashed to place it: usually its
 * name or address.  Not retained by the builders. */
struct flb_hkey {
	const void *data;
	size_t len;
};

/* Return codes of the builders. */
#define FLB_CHASH_OK      0
/* bad arguments: no nodes, zero weight, size not prime or <= n, a ring of
 * more than FLB_RING_MAX_POINTS points */
#define FLB_CHASH_EINVAL (-1)
#define FLB_CHASH_ENOMEM (-2)

#define FLB_MAGLEV_DEFAULT_SIZE 65537u
#define FLB_MAGLEV_MAX_SIZE     (1u << 24) /* bound on the table: 64 MiB */
#define FLB_RING_DEFAULT_VNODES 160u
#define FLB_RING_MAX_POINTS     (1u << 24) /* bound on vnodes * sum(w_i) / gcd(w) */
#define FLB_CHASH_MAX_NODES     65535u

/* Maglev lookup table (Eisenbud et al., NSDI 2016), weighted.
 * table[i] is a node index; lookups map hash -> table[flb_hash_range(hash,
 * size)], i.e. table[(hash * size) >> 64] (the high half of the 128-bit
 * product, not hash mod size). */
struct flb_maglev {
	uint32_t size;       /* M, a prime > num_nodes */
	uint32_t num_nodes;
	uint32_t *weights;   /* num_nodes entries; owned */
	uint64_t total_weight;
	uint32_t *table;     /* size entries; owned, freed by flb_maglev_free */
};

/* One point of the ring: a hash position and the node that owns it. */
struct flb_ring_point {
	uint64_t hash;
	uint32_t node;
	uint32_t pad;
};

/* Ketama-style ring with weighted virtual nodes: node i has
 * vnodes * weight_i / g points, g the gcd of all the weights (so equal
 * weights give exactly vnodes points each).  A node's count depends only on
 * its own weight and g, so removing a node leaves the others' points in place
 * unless g changes. */
struct flb_ring {
	uint32_t num_points;
	uint32_t num_nodes;
	uint32_t *weights;   /* num_nodes entries; owned */
	uint64_t total_weight;
	struct flb_ring_point *points; /* sorted by hash; owned */
};

/* The precomputed part of the load cap test of a bounded lookup (see
 * flb_chash_cap_init in chash.h).  Node i may take one more key iff
 * loads[i] + 1 <= ceil(c * (total + 1) * w_i / W), which for integers is
 * loads[i] < c * (total + 1) * w_i / W, i.e.
 * loads[i] * W * 2^F < cf * (total + 1) * w_i with cf = floor(c * 2^F) and
 * F = FLB_CHASH_CAP_FRAC_BITS.  Sizes: loads < 2^32, W < 2^48, F = 16: left
 * < 2^96; cf < 2^31, total + 1 <= 2^64, w_i < 2^32: right < 2^127. */
struct flb_chash_cap {
	__extension__ unsigned __int128 budget; /* cf * (total + 1) */
	__extension__ unsigned __int128 scale;  /* W * 2^F */
};

#endif /* FLB_CHASH_T_H */
