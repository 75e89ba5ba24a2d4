/* hash.h: the 64-bit hash (XXH64, written from its published specification)
 * and Jump consistent hash (Lamping & Veach 2014). */
#ifndef FLB_HASH_H
#define FLB_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH64 of data[0..len) with the given seed.
 * Returns the 64-bit digest, equal to the reference XXH64 for the same input. */
uint64_t flb_hash64(const void *data, size_t len, uint64_t seed);

/* Jump consistent hash.
 * key: any 64-bit key; num_buckets: > 0.
 * Returns a bucket in [0, num_buckets), or -1 when num_buckets <= 0. */
int32_t flb_jump_hash(uint64_t key, int32_t num_buckets);

/* Map a 64-bit hash uniformly onto [0, n) without a division.
 * Returns (hash * n) >> 64. */
static inline uint32_t flb_hash_range(uint64_t hash, uint32_t n)
{
	return (uint32_t)(((unsigned __int128)hash * n) >> 64);
}

#endif /* FLB_HASH_H */
