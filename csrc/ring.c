/* ring.c: ketama-style consistent-hash ring with weighted virtual nodes.
 *
 * Node i owns vnodes * w_i / g points, g the gcd of all the weights, and its
 * point j sits at flb_hash64(key_i, seed = j).  Equal weights thus give
 * exactly vnodes points per node, and weights 1, 2, 3 give vnodes, 2 vnodes
 * and 3 vnodes.  A node's points depend on its own key and weight and on g
 * only, so removing (adding) a node that leaves g unchanged leaves every
 * other node's points in place: the only keys that move are the ones the
 * removed node owned (that the new node takes).  If g changes, e.g. the last
 * node of odd weight among even ones leaves, every count is rescaled and
 * points j >= the new count vanish (or appear), moving more keys.  The price
 * is ring size: sum(w_i) / g * vnodes points, so widely spread weights with
 * a small gcd (1 and 65535) make large rings, bounded by FLB_RING_MAX_POINTS.
 *
 * Points are sorted by (hash, node) so that equal hashes resolve the same
 * way on every build.  A key hash belongs to the first point at or after it,
 * wrapping to the first point. */
#include <stdlib.h>
#include <string.h>

#include "chash.h"
#include "compiler.h"
#include "ring.h"

/* Greatest common divisor (Euclid).  a, b: not both 0.
 * Returns gcd(a, b); gcd(a, 0) = a. */
static uint32_t ring_gcd(uint32_t a, uint32_t b)
{
	while (b != 0) {
		uint32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* Number of points of a node: vnodes * w / g.
 * vnodes <= FLB_RING_MAX_POINTS (2^24) and w / g < 2^32, so the product is
 * below 2^56.  Returns the count. */
static uint64_t ring_node_points(uint32_t vnodes, uint32_t w, uint32_t g)
{
	return (uint64_t)vnodes * (w / g);
}

/* Sort pts[0..n) by hash, stably, with an LSD radix sort of 8 passes of 8
 * bits.  Since points are generated in node order, the result is sorted by
 * (hash, node).  tmp: n scratch points.  An even number of passes leaves
 * the result in pts. */
static void ring_sort(struct flb_ring_point *pts, struct flb_ring_point *tmp, uint32_t n)
{
	struct flb_ring_point *src = pts, *dst = tmp, *swap;

	for (unsigned shift = 0; shift < 64; shift += 8) {
		uint32_t count[256] = {0};
		uint32_t sum = 0;

		for (uint32_t i = 0; i < n; i++)
			count[(src[i].hash >> shift) & 0xff]++;
		for (unsigned b = 0; b < 256; b++) {
			uint32_t c = count[b];

			count[b] = sum;
			sum += c;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[count[(src[i].hash >> shift) & 0xff]++] = src[i];
		swap = src;
		src = dst;
		dst = swap;
	}
}

/* Build a ring (see ring.h).
 * Returns FLB_CHASH_OK, FLB_CHASH_EINVAL (also when the ring would exceed
 * FLB_RING_MAX_POINTS points) or FLB_CHASH_ENOMEM; on error *r is zeroed. */
int flb_ring_build(struct flb_ring *r, const struct flb_hkey *keys,
                   const uint32_t *weights, uint32_t n, uint32_t vnodes)
{
	struct flb_ring_point *tmp = NULL;
	uint64_t total = 0, num_points = 0;
	uint32_t k = 0, g = 0;

	if (r == NULL)
		return FLB_CHASH_EINVAL;
	memset(r, 0, sizeof(*r));
	if (keys == NULL || n == 0 || n > FLB_CHASH_MAX_NODES ||
	    vnodes == 0 || vnodes > FLB_RING_MAX_POINTS)
		return FLB_CHASH_EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (keys[i].data == NULL && keys[i].len != 0)
			return FLB_CHASH_EINVAL;
		if (weights != NULL && weights[i] == 0)
			return FLB_CHASH_EINVAL;
		total += weights != NULL ? weights[i] : 1;
		g = ring_gcd(weights != NULL ? weights[i] : 1, g);
	}
	/* Checked after each node: the sum stays below 2^24 + 2^56. */
	for (uint32_t i = 0; i < n; i++) {
		num_points += ring_node_points(vnodes, weights != NULL ? weights[i] : 1, g);
		if (num_points > FLB_RING_MAX_POINTS)
			return FLB_CHASH_EINVAL;
	}

	r->weights = malloc((size_t)n * sizeof(*r->weights));
	r->points = malloc((size_t)num_points * sizeof(*r->points));
	tmp = malloc((size_t)num_points * sizeof(*tmp));
	if (r->weights == NULL || r->points == NULL || tmp == NULL) {
		free(tmp);
		flb_ring_free(r);
		return FLB_CHASH_ENOMEM;
	}

	for (uint32_t i = 0; i < n; i++) {
		uint32_t w = weights != NULL ? weights[i] : 1;
		uint32_t np = (uint32_t)ring_node_points(vnodes, w, g);

		r->weights[i] = w;
		for (uint32_t j = 0; j < np; j++, k++) {
			r->points[k].hash = flb_hash64(keys[i].data, keys[i].len, j);
			r->points[k].node = i;
			r->points[k].pad = 0;
		}
	}
	ring_sort(r->points, tmp, (uint32_t)num_points);
	free(tmp);

	r->num_points = (uint32_t)num_points;
	r->num_nodes = n;
	r->total_weight = total;
	return FLB_CHASH_OK;
}

/* Free a ring (see ring.h); safe on a zeroed struct, zeroes *r. */
void flb_ring_free(struct flb_ring *r)
{
	if (r == NULL)
		return;
	free(r->weights);
	free(r->points);
	memset(r, 0, sizeof(*r));
}

/* Index of the first point whose hash is >= hash, wrapping to 0 past the
 * last point (branchless binary search).  r must hold >= 1 point.
 * Returns an index in [0, num_points). */
static inline uint32_t ring_find(const struct flb_ring *r, uint64_t hash)
{
	const struct flb_ring_point *pts = r->points;
	uint32_t lo = 0, len = r->num_points;

	while (len > 1) {
		uint32_t half = len / 2;

		lo = pts[lo + half - 1].hash < hash ? lo + half : lo;
		len -= half;
	}
	lo += pts[lo].hash < hash;
	return lo == r->num_points ? 0 : lo;
}

/* Look a key hash up (see ring.h).  Returns the owning node index, or 0 on
 * an empty ring. */
uint32_t flb_ring_lookup(const struct flb_ring *r, uint64_t hash)
{
	if (flb_unlikely(r->num_points == 0))
		return 0;
	return r->points[ring_find(r, hash)].node;
}

/* Bounded-load lookup (see ring.h): walk the points from the key's point
 * on, at most all of them; if no node has room, the least loaded node (ties:
 * the first from index hash-range(n), so keys spread over equal nodes).
 * Saturation is common when nodes are excluded, so after
 * FLB_CHASH_BOUNDED_PROBES points one scan of the nodes (flb_chash_scan_nodes)
 * checks whether the rest of the walk can succeed at all; the result is the
 * same as that of the full walk.
 * Returns a node index, or -1 when every node is excluded (or r is empty). */
int32_t flb_ring_lookup_bounded(const struct flb_ring *r, uint64_t hash,
                                const uint32_t *loads, uint64_t total, double c,
                                const uint8_t *excluded)
{
	struct flb_chash_cap t;
	uint32_t p, limit;
	int32_t scanned = -1;
	int room = 1;

	if (r == NULL || r->num_points == 0 || loads == NULL)
		return -1;
	t = flb_chash_cap_init(c, total, r->total_weight);
	p = ring_find(r, hash);
	limit = r->num_points < FLB_CHASH_BOUNDED_PROBES ? r->num_points
	                                                 : FLB_CHASH_BOUNDED_PROBES;
	for (uint32_t k = 0; k < r->num_points; k++) {
		uint32_t node;

		if (flb_unlikely(k == limit)) {
			scanned = flb_chash_scan_nodes(loads, r->weights, r->num_nodes,
			                               flb_hash_range(hash, r->num_nodes), &t,
			                               excluded, &room);
			if (!room)
				return scanned;
		}
		node = r->points[p].node;
		if ((excluded == NULL || !excluded[node]) &&
		    flb_chash_cap_has_room(&t, loads[node], r->weights[node]))
			return (int32_t)node;
		if (++p == r->num_points)
			p = 0;
	}
	/* Every node owns a point, so no node had room. */
	if (scanned < 0 && room)
		scanned = flb_chash_scan_nodes(loads, r->weights, r->num_nodes,
		                               flb_hash_range(hash, r->num_nodes), &t,
		                               excluded, &room);
	return scanned;
}
