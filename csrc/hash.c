/* hash.c: XXH64 (written from the xxHash specification, "xxHash fast digest
 * algorithm", XXH64 section) and Jump consistent hash (Lamping & Veach,
 * "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014). */
#include <string.h>

#include "compiler.h"
#include "hash.h"

/* The five 64-bit primes of the specification. */
#define XXH_PRIME64_1 0x9E3779B185EBCA87ull
#define XXH_PRIME64_2 0xC2B2AE3D27D4EB4Full
#define XXH_PRIME64_3 0x165667B19E3779F9ull
#define XXH_PRIME64_4 0x85EBCA77C2B2AE63ull
#define XXH_PRIME64_5 0x27D4EB2F165667C5ull

/* Rotate x left by r bits, 0 < r < 64.  Returns the rotated value. */
static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

/* Read a little-endian 64-bit lane at p (any alignment).  Returns it. */
static inline uint64_t read_le64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Read a little-endian 32-bit lane at p (any alignment).  Returns it. */
static inline uint32_t read_le32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

/* One accumulator round: mix lane into acc.  Returns the new accumulator. */
static inline uint64_t xxh64_round(uint64_t acc, uint64_t lane)
{
	acc += lane * XXH_PRIME64_2;
	acc = rotl64(acc, 31);
	return acc * XXH_PRIME64_1;
}

/* Merge accumulator v into the converged accumulator acc.  Returns acc'. */
static inline uint64_t xxh64_merge(uint64_t acc, uint64_t v)
{
	acc ^= xxh64_round(0, v);
	return acc * XXH_PRIME64_1 + XXH_PRIME64_4;
}

/* Final mix so that every input bit affects every output bit.
 * Returns the avalanched value. */
static inline uint64_t xxh64_avalanche(uint64_t h)
{
	h ^= h >> 33;
	h *= XXH_PRIME64_2;
	h ^= h >> 29;
	h *= XXH_PRIME64_3;
	h ^= h >> 32;
	return h;
}

/* XXH64 of data[0..len) with seed (see hash.h).  data may be NULL when len
 * is 0 (no pointer arithmetic is then done on it).  Returns the digest. */
uint64_t flb_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	size_t left = len;
	uint64_t acc;

	if (len >= 32) {
		/* Stripes of 32 bytes feed four independent accumulators. */
		uint64_t v1 = seed + XXH_PRIME64_1 + XXH_PRIME64_2;
		uint64_t v2 = seed + XXH_PRIME64_2;
		uint64_t v3 = seed;
		uint64_t v4 = seed - XXH_PRIME64_1;

		do {
			v1 = xxh64_round(v1, read_le64(p));
			v2 = xxh64_round(v2, read_le64(p + 8));
			v3 = xxh64_round(v3, read_le64(p + 16));
			v4 = xxh64_round(v4, read_le64(p + 24));
			p += 32;
			left -= 32;
		} while (left >= 32);

		acc = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		acc = xxh64_merge(acc, v1);
		acc = xxh64_merge(acc, v2);
		acc = xxh64_merge(acc, v3);
		acc = xxh64_merge(acc, v4);
	} else {
		acc = seed + XXH_PRIME64_5;
	}

	acc += (uint64_t)len;

	/* Remaining 0..31 bytes: 8-byte lanes, one 4-byte lane, then bytes. */
	for (; left >= 8; left -= 8, p += 8) {
		acc ^= xxh64_round(0, read_le64(p));
		acc = rotl64(acc, 27) * XXH_PRIME64_1 + XXH_PRIME64_4;
	}
	if (left >= 4) {
		acc ^= (uint64_t)read_le32(p) * XXH_PRIME64_1;
		acc = rotl64(acc, 23) * XXH_PRIME64_2 + XXH_PRIME64_3;
		p += 4;
		left -= 4;
	}
	for (; left > 0; left--, p++) {
		acc ^= (uint64_t)*p * XXH_PRIME64_5;
		acc = rotl64(acc, 11) * XXH_PRIME64_1;
	}

	return xxh64_avalanche(acc);
}

/* Jump consistent hash (see hash.h).  A 64-bit LCG drives the jumps: each
 * step draws the next bucket j at which the key would move, in
 * ((b + 1) * 2^31 / (r + 1)) with r the top 31 bits of the LCG state.
 * Returns a bucket in [0, num_buckets), or -1 when num_buckets <= 0. */
int32_t flb_jump_hash(uint64_t key, int32_t num_buckets)
{
	int64_t b = -1, j = 0;

	if (num_buckets <= 0)
		return -1;
	while (j < num_buckets) {
		b = j;
		key = key * 2862933555777941757ull + 1;
		j = (int64_t)((double)(b + 1) *
		              ((double)(1ll << 31) / (double)((key >> 33) + 1)));
	}
	return (int32_t)b;
}
