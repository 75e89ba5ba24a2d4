/* test_chash.c: unit tests of hash.c (XXH64, Jump), maglev.c, ring.c and
 * the bounded-load helpers of chash.h.
 * Built and run under ASan + UBSan by `make -C tests/c`. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chash.h"
#include "check.h"
#include "compiler.h"
#include "hash.h"
#include "maglev.h"
#include "ring.h"

#define MAXN 128
#define SEED_B 0x9E3779B185EBCA8Dull

/* Node names "backend-<i>" and the hkeys pointing at them. */
struct nodeset {
	char names[MAXN][24];
	struct flb_hkey keys[MAXN];
	uint32_t n;
};

/* Fill s with n nodes named backend-0 .. backend-(n-1), skipping index skip
 * (pass UINT32_MAX to keep all), so node i of the result is the i-th kept. */
static void nodeset_init(struct nodeset *s, uint32_t n, uint32_t skip)
{
	s->n = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i == skip)
			continue;
		snprintf(s->names[s->n], sizeof(s->names[0]), "backend-%u", i);
		s->keys[s->n].data = s->names[s->n];
		s->keys[s->n].len = strlen(s->names[s->n]);
		s->n++;
	}
}

/* A well-spread 64-bit key hash for sample i. */
static uint64_t sample_hash(uint64_t i)
{
	return flb_hash64(&i, sizeof(i), 12345);
}

/* ------------------------------------------------------------------ XXH64 */

/* Digests of the strings below and of prefixes of buf[i] = i * 31 + 7,
 * generated with the Python package xxhash 4.1.0 (xxhash.xxh64_intdigest,
 * which wraps the reference C implementation).  The empty-input digest
 * 0xEF46DB3751D8E999 is the one published in the xxHash specification. */
static void test_xxh64_vectors(void)
{
	static const struct { const char *s; uint64_t seed; uint64_t h; } strs[] = {
		{"", 0, 0xef46db3751d8e999ull},
		{"", 1, 0xd5afba1336a3be4bull},
		{"", SEED_B, 0x0b303d920ec349dfull},
		{"a", 0, 0xd24ec4f1a98c6e5bull},
		{"a", 1, 0xdec2bc81c3cd46c6ull},
		{"abc", 0, 0x44bc2cf5ad770999ull},
		{"abc", 1, 0xbea9ca8199328908ull},
		{"message digest", 0, 0x066ed728fceeb3beull},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 0, 0xfd5e2ce9520872ddull},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 1, 0x324fcd3c949340e1ull},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", SEED_B, 0x9498077c6343adefull},
		{"01234567890123456789012345678901", 0, 0xe5cc9f411ea110baull},
	};
	static const struct { uint32_t len; uint64_t h0, hb; } bufs[] = {
		{   0, 0xef46db3751d8e999ull, 0x0b303d920ec349dfull},
		{   1, 0xa96c7f0ce858bbb7ull, 0x76349a430e97f416ull},
		{   3, 0x56e6957632a487f9ull, 0xc42da545eb6f8983ull},
		{   4, 0xc60d15b1e3ff8f04ull, 0x52c5131f0829d5fdull},
		{   7, 0xafbefc3d6c6f9a8eull, 0xf1a46cf925e5669eull},
		{   8, 0x3da5c7aa269683e0ull, 0x6580dc86eca50f6cull},
		{   9, 0x4b17a9ba9e215c09ull, 0xc1987cf0f755cd92ull},
		{  15, 0xae2a37eb9357caa7ull, 0x9a18e944c774d93bull},
		{  16, 0xa19ad429b02bc413ull, 0xc683e593fc6dcafdull},
		{  17, 0xfe9f0feb7eeedc09ull, 0x9799b0c21453486cull},
		{  31, 0x4a74f3a1a39ad4a1ull, 0x99f222ff5e6379d1ull},
		{  32, 0x8d57d6a4671cc43dull, 0xa784ae39e74a5a70ull},
		{  33, 0x62c9fd21ed857664ull, 0xd39b34c79f789080ull},
		{  63, 0x5c320a0d2707057full, 0x83f6300c55e3f539ull},
		{  64, 0x7bbabbc45729d17eull, 0x0961219ab771dd46ull},
		{  65, 0xf3980c34bae65dc1ull, 0x62439e445492849full},
		{ 100, 0xefa0ad2d3e70c151ull, 0x8da83ba6a3c5979dull},
		{1000, 0x99594f4828043d35ull, 0x96657c997118f796ull},
	};
	unsigned char buf[1000 + 8];

	for (size_t i = 0; i < FLB_ARRAY_SIZE(strs); i++)
		CHECK(flb_hash64(strs[i].s, strlen(strs[i].s), strs[i].seed) == strs[i].h);
	CHECK(flb_hash64(NULL, 0, 0) == 0xef46db3751d8e999ull);

	for (size_t i = 0; i < 1000; i++)
		buf[i] = (unsigned char)(i * 31 + 7);
	for (size_t i = 0; i < FLB_ARRAY_SIZE(bufs); i++) {
		CHECK(flb_hash64(buf, bufs[i].len, 0) == bufs[i].h0);
		CHECK(flb_hash64(buf, bufs[i].len, SEED_B) == bufs[i].hb);
	}

	/* Unaligned input gives the same digest. */
	for (size_t off = 1; off < 8; off++) {
		memmove(buf + off, buf + off - 1, 1000);
		CHECK(flb_hash64(buf + off, 1000, 0) == 0x99594f4828043d35ull);
		CHECK(flb_hash64(buf + off, 33, SEED_B) == 0xd39b34c79f789080ull);
	}
}

/* ------------------------------------------------------------------- Jump */

/* Range, argument checks, balance and monotonicity of Jump hash. */
static void test_jump(void)
{
	enum { K = 20000 };
	static const int32_t ns[] = {1, 2, 3, 5, 9, 10, 16, 31, 64, 100, 127, 1000};
	uint32_t counts[10] = {0};
	int bad_range = 0, bad_move = 0;

	CHECK_EQ(flb_jump_hash(1, 0), -1);
	CHECK_EQ(flb_jump_hash(1, -5), -1);
	CHECK_EQ(flb_jump_hash(UINT64_MAX, 1), 0);
	CHECK_EQ(flb_jump_hash(0, 1), 0);

	for (uint64_t i = 0; i < K; i++) {
		int32_t b = flb_jump_hash(sample_hash(i), 10);

		bad_range += b < 0 || b >= 10;
		if (b >= 0 && b < 10)
			counts[b]++;
	}
	CHECK_EQ(bad_range, 0);
	for (int b = 0; b < 10; b++)
		CHECK(counts[b] > K / 10 * 0.9 && counts[b] < K / 10 * 1.1);

	/* Growing n -> n + 1 moves keys only to the new bucket, ~1/(n+1). */
	for (size_t t = 0; t < FLB_ARRAY_SIZE(ns); t++) {
		int32_t n = ns[t];
		double p = 1.0 / (n + 1), sd = sqrt(K * p * (1 - p));
		uint32_t moved = 0;

		for (uint64_t i = 0; i < K; i++) {
			uint64_t key = sample_hash(i);
			int32_t a = flb_jump_hash(key, n), b = flb_jump_hash(key, n + 1);

			bad_range += a < 0 || a >= n || b < 0 || b > n;
			if (a != b) {
				moved++;
				bad_move += b != n;
			}
		}
		CHECK(fabs(moved - K * p) <= 5 * sd + 1);
	}
	CHECK_EQ(bad_range, 0);
	CHECK_EQ(bad_move, 0);

	/* Large bucket counts stay in range. */
	for (uint64_t i = 0; i < 1000; i++) {
		int32_t b = flb_jump_hash(sample_hash(i), INT32_MAX);

		bad_range += b < 0;
	}
	CHECK_EQ(bad_range, 0);
}

/* ----------------------------------------------------------------- Maglev */

/* Whether a struct flb_maglev is all zero.  Returns 1 if so. */
static int maglev_is_zero(const struct flb_maglev *m)
{
	return m->size == 0 && m->num_nodes == 0 && m->weights == NULL &&
	       m->total_weight == 0 && m->table == NULL;
}

/* Count the slots of each node into counts[0..n). */
static void maglev_counts(const struct flb_maglev *m, uint32_t *counts)
{
	memset(counts, 0, m->num_nodes * sizeof(*counts));
	for (uint32_t s = 0; s < m->size; s++)
		counts[m->table[s]]++;
}

/* Argument validation of flb_maglev_build and flb_maglev_free. */
static void test_maglev_args(void)
{
	struct nodeset s;
	struct flb_maglev m;
	uint32_t w[3] = {1, 0, 2};
	struct flb_hkey nullkey = {NULL, 3};

	nodeset_init(&s, 3, UINT32_MAX);
	memset(&m, 0x5a, sizeof(m));
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 0, 7), FLB_CHASH_EINVAL);
	CHECK(maglev_is_zero(&m));
	CHECK_EQ(flb_maglev_build(&m, NULL, NULL, 3, 7), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_maglev_build(NULL, s.keys, NULL, 3, 7), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 3, 9), FLB_CHASH_EINVAL);  /* not prime */
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 3, 1), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 3, 3), FLB_CHASH_EINVAL);  /* size <= n */
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 3, 2), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_maglev_build(&m, s.keys, w, 3, 7), FLB_CHASH_EINVAL);     /* weight 0 */
	CHECK_EQ(flb_maglev_build(&m, &nullkey, NULL, 1, 7), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, FLB_CHASH_MAX_NODES + 1, 16777213), FLB_CHASH_EINVAL);
	/* 16777259 is the first prime above FLB_MAGLEV_MAX_SIZE = 2^24. */
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 3, 16777259), FLB_CHASH_EINVAL);
	CHECK(maglev_is_zero(&m));

	flb_maglev_free(&m);
	flb_maglev_free(NULL);
	CHECK(maglev_is_zero(&m));

	/* Smallest legal tables. */
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 1, 2), FLB_CHASH_OK);
	CHECK(m.table[0] == 0 && m.table[1] == 0 && m.size == 2 && m.num_nodes == 1);
	CHECK_EQ(flb_maglev_lookup(&m, 12345), 0);
	flb_maglev_free(&m);
	CHECK(maglev_is_zero(&m));
	CHECK_EQ(flb_maglev_build(&m, s.keys, NULL, 3, 5), FLB_CHASH_OK);
	CHECK(m.total_weight == 3 && m.weights[0] == 1 && m.weights[2] == 1);
	flb_maglev_free(&m);
	w[1] = 5;
	CHECK_EQ(flb_maglev_build(&m, s.keys, w, 3, 7), FLB_CHASH_OK);
	CHECK(m.total_weight == 8 && m.weights[1] == 5);
	flb_maglev_free(&m);
	/* Keys of length 0 are allowed (all such nodes share a permutation). */
	{
		struct flb_hkey empty[2] = {{NULL, 0}, {"", 0}};

		CHECK_EQ(flb_maglev_build(&m, empty, NULL, 2, 3), FLB_CHASH_OK);
		flb_maglev_free(&m);
	}
}

/* Every node's share of the table is within tol (relative) of
 * size * w_i / W, and within abs_slots slots.  weights NULL = equal. */
static void check_maglev_shares(uint32_t n, const uint32_t *weights, uint32_t size,
                                double tol, double abs_slots)
{
	struct nodeset s;
	struct flb_maglev m;
	uint32_t counts[MAXN];
	uint64_t total = 0;
	int bad_rel = 0, bad_abs = 0, bad_entry = 0;

	nodeset_init(&s, n, UINT32_MAX);
	for (uint32_t i = 0; i < n; i++)
		total += weights ? weights[i] : 1;
	CHECK_EQ(flb_maglev_build(&m, s.keys, weights, n, size), FLB_CHASH_OK);
	for (uint32_t i = 0; i < size; i++)
		bad_entry += m.table[i] >= n;
	CHECK_EQ(bad_entry, 0);
	maglev_counts(&m, counts);
	for (uint32_t i = 0; i < n; i++) {
		double want = (double)size * (weights ? weights[i] : 1) / (double)total;

		bad_rel += tol > 0 && fabs(counts[i] - want) > tol * want;
		bad_abs += fabs(counts[i] - want) > abs_slots;
	}
	if (bad_rel || bad_abs)
		fprintf(stderr, "maglev shares n=%u size=%u weighted=%d\n", n, size, weights != NULL);
	CHECK_EQ(bad_rel, 0);
	CHECK_EQ(bad_abs, 0);
	flb_maglev_free(&m);
}

/* Shares within +-3% of the weight share when M >= 100 N, equal and
 * unequal weights; within 2 slots of the exact share in every case. */
static void test_maglev_distribution(void)
{
	uint32_t w[MAXN];

	check_maglev_shares(10, NULL, 1009, 0.03, 2);    /* M ~ 100 N */
	check_maglev_shares(100, NULL, 10007, 0.03, 2);
	check_maglev_shares(10, NULL, 65537, 0.03, 2);
	check_maglev_shares(100, NULL, 65537, 0.03, 2);
	check_maglev_shares(3, NULL, 5, 0, 1);

	for (uint32_t i = 0; i < MAXN; i++)
		w[i] = i + 1;
	/* weights 1..10: smallest share 65537 / 55 slots. */
	check_maglev_shares(10, w, 65537, 0.03, 2);
	/* Shares of 100 / 55 * w_i >= 100 slots: M = 5501 (prime) >= 100 N. */
	check_maglev_shares(10, w, 5501, 0.03, 2);
	/* weights 1..100: shares 13..1298 slots, too small for 3% at the low end. */
	check_maglev_shares(100, w, 65537, 0, 2);
	for (uint32_t i = 0; i < MAXN; i++)
		w[i] = 1 + i % 4;
	check_maglev_shares(100, w, 65537, 0.03, 2);
	/* Large and skewed weights: no overflow, still proportional. */
	for (uint32_t i = 0; i < MAXN; i++)
		w[i] = UINT32_MAX - i * 7;
	check_maglev_shares(50, w, 65537, 0.03, 2);
	w[0] = UINT32_MAX;
	for (uint32_t i = 1; i < MAXN; i++)
		w[i] = 1;
	check_maglev_shares(20, w, 1009, 0, 2); /* the others get 0 slots */
}

/* Fraction of the table that changes owner when node r of n is removed.
 * weights: NULL or n weights.  Returns the moved fraction. */
static double maglev_disruption(uint32_t n, uint32_t r, const uint32_t *weights, uint32_t size)
{
	struct nodeset all, rest;
	struct flb_maglev a, b;
	uint32_t w2[MAXN], moved = 0, lost = 0;

	nodeset_init(&all, n, UINT32_MAX);
	nodeset_init(&rest, n, r);
	for (uint32_t i = 0, k = 0; weights && i < n; i++)
		if (i != r)
			w2[k++] = weights[i];
	CHECK_EQ(flb_maglev_build(&a, all.keys, weights, n, size), FLB_CHASH_OK);
	CHECK_EQ(flb_maglev_build(&b, rest.keys, weights ? w2 : NULL, n - 1, size), FLB_CHASH_OK);
	for (uint32_t s = 0; s < size; s++) {
		uint32_t old = a.table[s], now = b.table[s];

		now += now >= r; /* back to the numbering of the full set */
		moved += old != now;
		lost += old == r && now == r;
	}
	CHECK_EQ(lost, 0);
	flb_maglev_free(&a);
	flb_maglev_free(&b);
	return (double)moved / size;
}

/* Removing 1 of N backends moves <= 2/N of the keys, N = 10..100. */
static void test_maglev_disruption(void)
{
	static const uint32_t ns[] = {10, 20, 37, 50, 100};
	uint32_t w[MAXN];
	int bad = 0;

	for (uint32_t i = 0; i < MAXN; i++)
		w[i] = 1 + i % 5;
	for (size_t t = 0; t < FLB_ARRAY_SIZE(ns); t++) {
		uint32_t n = ns[t];
		uint32_t rs[3] = {0, n / 2, n - 1};

		for (int k = 0; k < 3; k++) {
			double d = maglev_disruption(n, rs[k], NULL, 65537);

			if (d > 2.0 / n) {
				bad++;
				fprintf(stderr, "maglev disruption n=%u r=%u: %.4f > %.4f\n", n, rs[k], d, 2.0 / n);
			}
			/* Weighted: at most the removed share plus 1/N. */
			uint64_t tw = 0;
			for (uint32_t i = 0; i < n; i++)
				tw += w[i];
			d = maglev_disruption(n, rs[k], w, 65537);
			if (d > (double)w[rs[k]] / tw + 1.0 / n) {
				bad++;
				fprintf(stderr, "weighted maglev disruption n=%u r=%u: %.4f\n", n, rs[k], d);
			}
		}
	}
	CHECK_EQ(bad, 0);
	/* Smaller tables: the extra churn of Maglev grows with N / M (about
	 * 1.3/N at M = 100 N for N = 10, 2.8/N for N = 100), so 2/N holds
	 * while M >= ~500 N, as with the default M = 65537 and N <= 100. */
	CHECK(maglev_disruption(10, 3, NULL, 1009) <= 2.0 / 10);
	CHECK(maglev_disruption(20, 7, NULL, 10007) <= 2.0 / 20);
}

/* Identical inputs give identical tables; node order follows the keys. */
static void test_maglev_determinism(void)
{
	struct nodeset s;
	struct flb_maglev a, b;

	nodeset_init(&s, 17, UINT32_MAX);
	CHECK_EQ(flb_maglev_build(&a, s.keys, NULL, 17, 1009), FLB_CHASH_OK);
	CHECK_EQ(flb_maglev_build(&b, s.keys, NULL, 17, 1009), FLB_CHASH_OK);
	CHECK(memcmp(a.table, b.table, 1009 * sizeof(uint32_t)) == 0);
	for (uint64_t i = 0; i < 1000; i++) {
		uint64_t h = sample_hash(i);

		CHECK(flb_maglev_lookup(&a, h) == a.table[flb_hash_range(h, a.size)]);
	}
	flb_maglev_free(&a);
	flb_maglev_free(&b);
}

/* ------------------------------------------------------- bounded (common) */

/* A table of either kind, so the bounded tests run on both. */
struct chash {
	int is_ring;
	struct flb_maglev m;
	struct flb_ring r;
};

/* Build c over n nodes with weights (NULL = equal).  Returns the status. */
static int chash_build(struct chash *c, int is_ring, uint32_t n, const uint32_t *weights)
{
	struct nodeset s;

	nodeset_init(&s, n, UINT32_MAX);
	memset(c, 0, sizeof(*c));
	c->is_ring = is_ring;
	if (is_ring)
		return flb_ring_build(&c->r, s.keys, weights, n, FLB_RING_DEFAULT_VNODES);
	return flb_maglev_build(&c->m, s.keys, weights, n, FLB_MAGLEV_DEFAULT_SIZE);
}

/* Free c. */
static void chash_free(struct chash *c)
{
	flb_maglev_free(&c->m);
	flb_ring_free(&c->r);
}

/* Plain lookup on c.  Returns the node. */
static uint32_t chash_lookup(const struct chash *c, uint64_t h)
{
	return c->is_ring ? flb_ring_lookup(&c->r, h) : flb_maglev_lookup(&c->m, h);
}

/* Bounded lookup on c.  Returns the node or -1. */
static int32_t chash_bounded(const struct chash *c, uint64_t h, const uint32_t *loads,
                             uint64_t total, double f, const uint8_t *excluded)
{
	return c->is_ring ? flb_ring_lookup_bounded(&c->r, h, loads, total, f, excluded)
	                  : flb_maglev_lookup_bounded(&c->m, h, loads, total, f, excluded);
}

/* Assign K keys one by one with bounded lookups (loads updated) and check
 * that no node ever exceeds ceil(f * K * w_i / W) nor its running cap. */
static void check_bounded_caps(int is_ring, uint32_t n, const uint32_t *weights,
                               double f, uint32_t K)
{
	struct chash c;
	uint32_t loads[MAXN] = {0};
	uint64_t tw = 0;
	int bad_cap = 0, bad_step = 0, bad_node = 0;

	CHECK_EQ(chash_build(&c, is_ring, n, weights), FLB_CHASH_OK);
	for (uint32_t i = 0; i < n; i++)
		tw += weights ? weights[i] : 1;
	for (uint32_t k = 0; k < K; k++) {
		int32_t node = chash_bounded(&c, sample_hash(k), loads, k, f, NULL);

		if (node < 0 || (uint32_t)node >= n) {
			bad_node++;
			continue;
		}
		loads[node]++;
		/* Running cap: ceil(f * (k + 1) * w / W). */
		double w = weights ? weights[node] : 1;
		if (loads[node] > ceil(f * (k + 1) * w / tw - 1e-9))
			bad_step++;
	}
	for (uint32_t i = 0; i < n; i++) {
		double w = weights ? weights[i] : 1;

		bad_cap += loads[i] > ceil(f * K * w / tw - 1e-9);
	}
	if (bad_cap || bad_step || bad_node)
		fprintf(stderr, "bounded %s n=%u f=%.2f weighted=%d\n", is_ring ? "ring" : "maglev",
		        n, f, weights != NULL);
	CHECK_EQ(bad_node, 0);
	CHECK_EQ(bad_step, 0);
	CHECK_EQ(bad_cap, 0);
	chash_free(&c);
}

/* Bounded loads: caps, no pressure = plain lookup, exclusions, fallbacks. */
static void test_bounded(int is_ring)
{
	uint32_t w[MAXN], loads[MAXN] = {0};
	uint8_t excl[MAXN] = {0};
	struct chash c;
	int bad = 0;

	for (uint32_t i = 0; i < MAXN; i++)
		w[i] = i + 1;
	check_bounded_caps(is_ring, 10, NULL, 1.25, 10000);
	check_bounded_caps(is_ring, 10, NULL, 1.0, 10000);
	check_bounded_caps(is_ring, 10, w, 1.25, 10000);
	check_bounded_caps(is_ring, 10, w, 1.0, 10000);
	check_bounded_caps(is_ring, 7, NULL, 1.1, 3001);

	CHECK_EQ(chash_build(&c, is_ring, 10, NULL), FLB_CHASH_OK);

	/* Without load, bounded = plain lookup; c < 1 and NaN act as 1. */
	for (uint64_t k = 0; k < 2000; k++) {
		uint64_t h = sample_hash(k);
		int32_t want = (int32_t)chash_lookup(&c, h);

		bad += chash_bounded(&c, h, loads, 0, 1.25, NULL) != want;
		bad += chash_bounded(&c, h, loads, 0, 0.5, NULL) != want;
		bad += chash_bounded(&c, h, loads, 0, NAN, excl) != want;
	}
	CHECK_EQ(bad, 0);
	/* c < 1 behaves as 1: with 10 keys on 10 nodes every node takes one. */
	for (uint64_t k = 0; k < 10; k++) {
		int32_t node = chash_bounded(&c, sample_hash(k), loads, k, 0.1, NULL);

		CHECK(node >= 0 && node < 10);
		if (node >= 0 && node < 10)
			loads[node]++;
	}
	for (uint32_t i = 0; i < 10; i++)
		CHECK_EQ(loads[i], 1);

	/* Excluded nodes are never returned. */
	memset(loads, 0, sizeof(loads));
	excl[1] = excl[4] = excl[7] = 1;
	for (uint64_t k = 0; k < 5000; k++) {
		int32_t node = chash_bounded(&c, sample_hash(k), loads, k, 1.25, excl);

		if (node < 0 || node >= 10 || excl[node]) {
			bad++;
			continue;
		}
		loads[node]++;
	}
	CHECK_EQ(bad, 0);
	/* With 3 of 10 excluded and caps of 1.25 / 10, nodes reach their cap and
	 * the least loaded takes the rest: loads stay within 1 of each other. */
	{
		uint32_t lo = UINT32_MAX, hi = 0;

		for (uint32_t i = 0; i < 10; i++) {
			if (excl[i])
				continue;
			lo = loads[i] < lo ? loads[i] : lo;
			hi = loads[i] > hi ? loads[i] : hi;
		}
		CHECK(hi - lo <= 1);
		CHECK_EQ(loads[1] + loads[4] + loads[7], 0);
	}

	/* All at cap except exclusions: the least loads[i] / w_i wins. */
	for (uint32_t i = 0; i < 10; i++)
		loads[i] = 1000;
	loads[6] = 999;
	CHECK_EQ(chash_bounded(&c, sample_hash(1), loads, 10000, 1.0, excl), 6);
	loads[6] = 1000;
	loads[4] = 10; /* excluded */
	{
		int32_t node = chash_bounded(&c, sample_hash(2), loads, 9010, 1.0, excl);

		CHECK(node >= 0 && node < 10 && !excl[node]);
	}

	/* Only one node left. */
	memset(excl, 1, 10);
	excl[8] = 0;
	for (uint64_t k = 0; k < 100; k++)
		bad += chash_bounded(&c, sample_hash(k), loads, 9010, 1.0, excl) != 8;
	CHECK_EQ(bad, 0);

	/* Everything excluded. */
	excl[8] = 1;
	CHECK_EQ(chash_bounded(&c, sample_hash(3), loads, 9010, 1.0, excl), -1);
	CHECK_EQ(chash_bounded(&c, sample_hash(3), loads, 0, 2.0, excl), -1);
	chash_free(&c);

	/* Empty (zeroed) tables. */
	CHECK_EQ(chash_bounded(&c, 1, loads, 0, 1.0, NULL), -1);

	/* Weighted fallback: least loads / w. */
	CHECK_EQ(chash_build(&c, is_ring, 3, w), FLB_CHASH_OK); /* weights 1, 2, 3 */
	memset(excl, 0, sizeof(excl));
	excl[0] = 1;
	loads[0] = 0;
	loads[1] = 100; /* 50 per unit of weight */
	loads[2] = 147; /* 49 per unit */
	CHECK_EQ(chash_bounded(&c, sample_hash(9), loads, 247, 1.0, excl), 2);
	loads[2] = 153;
	CHECK_EQ(chash_bounded(&c, sample_hash(9), loads, 253, 1.0, excl), 1);
	/* Huge loads and load factors: no overflow. */
	loads[1] = UINT32_MAX;
	loads[2] = UINT32_MAX - 1;
	CHECK_EQ(chash_bounded(&c, sample_hash(9), loads, UINT64_MAX, 1e300, NULL) >= 0, 1);
	CHECK_EQ(chash_bounded(&c, sample_hash(9), loads, UINT64_MAX - 1, INFINITY, excl) >= 1, 1);
	chash_free(&c);
}

/* Maglev walks give up after M slots: nodes with no slot still get keys. */
static void test_maglev_bounded_slotless(void)
{
	struct nodeset s;
	struct flb_maglev m;
	uint32_t w[3] = {1000000, 1, 1}, counts[3], loads[3] = {0, 0, 0};
	uint8_t excl[3] = {1, 0, 0};

	nodeset_init(&s, 3, UINT32_MAX);
	CHECK_EQ(flb_maglev_build(&m, s.keys, w, 3, 7), FLB_CHASH_OK);
	maglev_counts(&m, counts);
	CHECK_EQ(counts[0], 7);
	/* Node 0 excluded: nodes 1 and 2 own no slot but take the keys. */
	for (uint64_t k = 0; k < 100; k++) {
		int32_t node = flb_maglev_lookup_bounded(&m, sample_hash(k), loads, k, 1.0, excl);

		CHECK(node == 1 || node == 2);
		if (node == 1 || node == 2)
			loads[node]++;
	}
	CHECK(loads[1] == 50 && loads[2] == 50);
	flb_maglev_free(&m);
}

/* Reference bounded lookup, the rule written out plainly: walk the whole
 * sequence seq[0..len) (node ids, starting at the key's place) and return
 * the first node not excluded with loads[i] + 1 <= ceil(q / 4 * (total + 1)
 * * w_i / W) (load factor c = q / 4, exact); else the least loads[i] / w_i,
 * ties to the first from index start.  Returns a node or -1. */
static int32_t ref_bounded(const uint32_t *seq, uint32_t len, uint32_t start,
                           const uint32_t *weights, uint32_t n, uint64_t tw,
                           const uint32_t *loads, uint64_t total, uint32_t q,
                           const uint8_t *excluded)
{
	int32_t best = -1;

	for (uint32_t k = 0; k < len; k++) {
		uint32_t i = seq[k];
		unsigned __int128 num = (unsigned __int128)q * (total + 1) * weights[i];
		unsigned __int128 den = (unsigned __int128)4 * tw;
		unsigned __int128 cap = (num + den - 1) / den;

		if (!excluded[i] && (unsigned __int128)loads[i] + 1 <= cap)
			return (int32_t)i;
	}
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (start + k) % n;

		if (excluded[i])
			continue;
		if (best < 0 || (uint64_t)loads[i] * weights[best] < (uint64_t)loads[best] * weights[i])
			best = (int32_t)i;
	}
	return best;
}

/* Bounded lookups equal the reference on random load states, exclusions
 * and weights, for both kinds of table. */
static void test_bounded_vs_reference(void)
{
	static const uint32_t qs[] = {4, 5, 6, 8}; /* c = 1.0, 1.25, 1.5, 2.0 */
	uint32_t *seq = malloc(sizeof(uint32_t) * FLB_MAGLEV_DEFAULT_SIZE);
	uint32_t w[MAXN], loads[MAXN];
	uint8_t excl[MAXN];
	uint64_t st = 99;
	int bad = 0;

	CHECK(seq != NULL);
	if (seq == NULL)
		return;
	for (int round = 0; round < 30; round++) {
		int is_ring = round % 2;
		uint32_t n = 2 + (uint32_t)(sample_hash(st++) % 40);
		struct chash c;
		uint64_t tw = 0;

		for (uint32_t i = 0; i < n; i++) {
			w[i] = round % 3 == 0 ? 1 : 1 + (uint32_t)(sample_hash(st++) % 9);
			tw += w[i];
		}
		CHECK_EQ(chash_build(&c, is_ring, n, w), FLB_CHASH_OK);
		for (int trial = 0; trial < 45; trial++) {
			uint64_t total = 0, h = sample_hash(st++);
			uint32_t q = qs[trial % 4], base = 1 + (uint32_t)(sample_hash(st++) % 200);
			uint32_t start, len;

			uint32_t low = (uint32_t)(sample_hash(st++) % n);

			for (uint32_t i = 0; i < n; i++) {
				/* Loads around the average (or all saturated but one, for
				 * long walks; or equal), some nodes excluded. */
				switch (trial % 3) {
				case 0:
					loads[i] = (uint32_t)(base * w[i] * (80 + sample_hash(st++) % 60) / 100);
					break;
				case 1:
					loads[i] = i == low ? 0 : base * w[i] * 3;
					break;
				default:
					loads[i] = base;
				}
				excl[i] = sample_hash(st++) % 100 < (uint64_t)(trial * 2);
				total += loads[i];
			}
			if (is_ring) {
				uint32_t p = 0;

				while (p < c.r.num_points && c.r.points[p].hash < h)
					p++;
				len = c.r.num_points;
				for (uint32_t k = 0; k < len; k++)
					seq[k] = c.r.points[(p + k) % len].node;
			} else {
				uint32_t s0 = flb_hash_range(h, c.m.size);

				len = c.m.size;
				for (uint32_t k = 0; k < len; k++)
					seq[k] = c.m.table[(s0 + k) % len];
			}
			start = flb_hash_range(h, n);
			if (chash_bounded(&c, h, loads, total, q / 4.0, excl) !=
			    ref_bounded(seq, len, start, w, n, tw, loads, total, q, excl))
				bad++;
		}
		chash_free(&c);
	}
	CHECK_EQ(bad, 0);
	free(seq);
}

/* A long Maglev walk (M > the probes before the node scan) where only
 * slotless nodes have room. */
static void test_maglev_bounded_slotless_long(void)
{
	struct nodeset s;
	struct flb_maglev m;
	uint32_t w[3] = {1000000, 1, 1}, counts[3], loads[3] = {0, 0, 0};
	uint8_t excl[3] = {1, 0, 0};

	nodeset_init(&s, 3, UINT32_MAX);
	CHECK_EQ(flb_maglev_build(&m, s.keys, w, 3, 1009), FLB_CHASH_OK);
	maglev_counts(&m, counts);
	CHECK_EQ(counts[0], 1009);
	for (uint64_t k = 0; k < 100; k++) {
		int32_t node = flb_maglev_lookup_bounded(&m, sample_hash(k), loads, k, 1.25, excl);

		CHECK(node == 1 || node == 2);
		if (node == 1 || node == 2)
			loads[node]++;
	}
	CHECK(loads[1] == 50 && loads[2] == 50);
	/* Node 0 not excluded but full (total = 0: every cap is 1): a slotless
	 * node with room takes the key; when all are full, the least loaded
	 * per weight, node 0. */
	excl[0] = 0;
	loads[0] = 1000;
	loads[1] = 0;
	loads[2] = 1;
	CHECK_EQ(flb_maglev_lookup_bounded(&m, sample_hash(1), loads, 0, 1.0, excl), 1);
	loads[1] = 1;
	CHECK_EQ(flb_maglev_lookup_bounded(&m, sample_hash(1), loads, 0, 1.0, excl), 0);
	flb_maglev_free(&m);
}

/* ------------------------------------------------------------------- Ring */

/* Whether a struct flb_ring is all zero.  Returns 1 if so. */
static int ring_is_zero(const struct flb_ring *r)
{
	return r->num_points == 0 && r->num_nodes == 0 && r->weights == NULL &&
	       r->total_weight == 0 && r->points == NULL;
}

/* Reference lookup: linear scan for the first point >= h, else point 0. */
static uint32_t ring_lookup_ref(const struct flb_ring *r, uint64_t h)
{
	for (uint32_t i = 0; i < r->num_points; i++)
		if (r->points[i].hash >= h)
			return r->points[i].node;
	return r->points[0].node;
}

/* Argument validation, point counts, order and lookups of the ring. */
static void test_ring_build(void)
{
	struct nodeset s;
	struct flb_ring r;
	uint32_t w[MAXN], per[MAXN];
	struct flb_hkey nullkey = {NULL, 1};
	int bad = 0;

	nodeset_init(&s, 10, UINT32_MAX);
	memset(&r, 0x5a, sizeof(r));
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 0, 160), FLB_CHASH_EINVAL);
	CHECK(ring_is_zero(&r));
	CHECK_EQ(flb_ring_build(NULL, s.keys, NULL, 3, 160), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, NULL, NULL, 3, 160), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 3, 0), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, &nullkey, NULL, 1, 10), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, FLB_CHASH_MAX_NODES + 1, 1), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 2, FLB_RING_MAX_POINTS), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 10, FLB_RING_MAX_POINTS / 8), FLB_CHASH_EINVAL);
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 3, UINT32_MAX), FLB_CHASH_EINVAL);
	w[0] = 1; w[1] = 0; w[2] = 1;
	CHECK_EQ(flb_ring_build(&r, s.keys, w, 3, 160), FLB_CHASH_EINVAL);
	CHECK(ring_is_zero(&r));
	flb_ring_free(&r);
	flb_ring_free(NULL);
	CHECK_EQ(flb_ring_lookup(&r, 5), 0); /* empty ring */

	/* Equal weights: exactly vnodes points each, sorted by (hash, node). */
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 10, 160), FLB_CHASH_OK);
	CHECK_EQ(r.num_points, 1600);
	CHECK_EQ(r.num_nodes, 10);
	CHECK(r.total_weight == 10);
	memset(per, 0, sizeof(per));
	for (uint32_t i = 0; i < r.num_points; i++) {
		per[r.points[i].node]++;
		if (i > 0 && (r.points[i - 1].hash > r.points[i].hash ||
		              (r.points[i - 1].hash == r.points[i].hash &&
		               r.points[i - 1].node > r.points[i].node)))
			bad++;
	}
	CHECK_EQ(bad, 0);
	for (uint32_t i = 0; i < 10; i++)
		CHECK_EQ(per[i], 160);
	/* Point j of node i is at flb_hash64(key_i, j). */
	{
		uint64_t h = flb_hash64(s.keys[3].data, s.keys[3].len, 17);
		int found = 0;

		for (uint32_t i = 0; i < r.num_points; i++)
			found += r.points[i].hash == h && r.points[i].node == 3;
		CHECK_EQ(found, 1);
	}

	/* Lookups agree with a linear scan, including at and around points. */
	for (uint64_t k = 0; k < 3000; k++) {
		uint64_t h = sample_hash(k);

		bad += flb_ring_lookup(&r, h) != ring_lookup_ref(&r, h);
	}
	for (uint32_t i = 0; i < r.num_points; i += 7) {
		uint64_t h = r.points[i].hash;

		bad += flb_ring_lookup(&r, h) != r.points[i].node;
		bad += flb_ring_lookup(&r, h - 1) != ring_lookup_ref(&r, h - 1);
		bad += flb_ring_lookup(&r, h + 1) != ring_lookup_ref(&r, h + 1);
	}
	bad += flb_ring_lookup(&r, 0) != r.points[0].node;
	bad += flb_ring_lookup(&r, UINT64_MAX) != ring_lookup_ref(&r, UINT64_MAX);
	bad += flb_ring_lookup(&r, r.points[r.num_points - 1].hash + 1) != r.points[0].node;
	CHECK_EQ(bad, 0);
	flb_ring_free(&r);
	CHECK(ring_is_zero(&r));

	/* Weighted: vnodes * w_i / gcd(w) points. */
	for (uint32_t i = 0; i < 10; i++)
		w[i] = i + 1; /* gcd 1 */
	CHECK_EQ(flb_ring_build(&r, s.keys, w, 10, 160), FLB_CHASH_OK);
	CHECK_EQ(r.num_points, 160 * 55);
	CHECK(r.total_weight == 55);
	memset(per, 0, sizeof(per));
	for (uint32_t i = 0; i < r.num_points; i++)
		per[r.points[i].node]++;
	for (uint32_t i = 0; i < 10; i++)
		CHECK_EQ(per[i], 160 * w[i]);
	flb_ring_free(&r);
	{
		/* {weights}, n, vnodes, expected points per node. */
		static const struct {
			uint32_t w[4], n, vnodes, points[4];
		} cases[] = {
			{{1, 2, 3}, 3, 160, {160, 320, 480}},
			{{7, 7, 7, 7}, 4, 160, {160, 160, 160, 160}},   /* equal: vnodes each */
			{{6, 4, 10}, 3, 160, {480, 320, 800}},          /* gcd 2 */
			{{1000, 3000}, 2, 160, {160, 480}},             /* gcd 1000 */
			{{65536, 65536 * 3, 65536 * 2}, 3, 5, {5, 15, 10}},
			{{UINT32_MAX, UINT32_MAX}, 2, 3, {3, 3}},
			{{5}, 1, 9, {9}},                               /* one node: vnodes */
		};

		for (size_t t = 0; t < FLB_ARRAY_SIZE(cases); t++) {
			uint32_t sum = 0;

			CHECK_EQ(flb_ring_build(&r, s.keys, cases[t].w, cases[t].n, cases[t].vnodes),
			         FLB_CHASH_OK);
			memset(per, 0, sizeof(per));
			for (uint32_t i = 0; i < r.num_points; i++)
				per[r.points[i].node]++;
			for (uint32_t i = 0; i < cases[t].n; i++) {
				CHECK_EQ(per[i], cases[t].points[i]);
				sum += cases[t].points[i];
			}
			CHECK_EQ(r.num_points, sum);
			flb_ring_free(&r);
		}
	}
	/* Over FLB_RING_MAX_POINTS in total: EINVAL, checked before allocating. */
	w[0] = 1;
	w[1] = 1000000; /* 160 * 1000001 points */
	CHECK_EQ(flb_ring_build(&r, s.keys, w, 2, 160), FLB_CHASH_EINVAL);
	CHECK(ring_is_zero(&r));
	w[1] = FLB_RING_MAX_POINTS; /* 1 + 2^24 points */
	CHECK_EQ(flb_ring_build(&r, s.keys, w, 2, 1), FLB_CHASH_EINVAL);
	w[0] = UINT32_MAX;
	w[1] = UINT32_MAX - 1; /* gcd 1: vnodes * (2^33 - 3) */
	CHECK_EQ(flb_ring_build(&r, s.keys, w, 2, FLB_RING_MAX_POINTS), FLB_CHASH_EINVAL);
	w[0] = 2;
	w[1] = 2 * (FLB_RING_MAX_POINTS / 4); /* gcd 2: 4 * (1 + 2^22) = 2^24 + 4 points */
	CHECK_EQ(flb_ring_build(&r, s.keys, w, 2, 4), FLB_CHASH_EINVAL);
	CHECK(ring_is_zero(&r));

	/* One node, one point: everything maps to it. */
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 1, 1), FLB_CHASH_OK);
	CHECK_EQ(r.num_points, 1);
	CHECK_EQ(flb_ring_lookup(&r, 0), 0);
	CHECK_EQ(flb_ring_lookup(&r, UINT64_MAX), 0);
	flb_ring_free(&r);

	/* Duplicate keys: equal hashes order by node. */
	{
		struct flb_hkey dup[3] = {{"x", 1}, {"x", 1}, {"x", 1}};

		CHECK_EQ(flb_ring_build(&r, dup, NULL, 3, 4), FLB_CHASH_OK);
		for (uint32_t i = 0; i < 12; i++)
			CHECK_EQ(r.points[i].node, i % 3);
		flb_ring_free(&r);
	}
}

/* Exact share of each node: the arcs ending at its points.  shares[0..n). */
static void ring_shares(const struct flb_ring *r, double *shares)
{
	const double full = 18446744073709551616.0;

	memset(shares, 0, r->num_nodes * sizeof(*shares));
	for (uint32_t i = 0; i < r->num_points; i++) {
		uint64_t prev = r->points[i == 0 ? r->num_points - 1 : i - 1].hash;

		/* Arc (prev, hash], wrapping modulo 2^64. */
		shares[r->points[i].node] += (double)(r->points[i].hash - prev) / full;
	}
}

/* Shares of a 160-vnode ring: within +-30% of 1/N (ketama's spread). */
static void test_ring_distribution(void)
{
	struct nodeset s;
	struct flb_ring r;
	double shares[MAXN], sum = 0;
	int bad = 0;

	nodeset_init(&s, 50, UINT32_MAX);
	CHECK_EQ(flb_ring_build(&r, s.keys, NULL, 50, 160), FLB_CHASH_OK);
	ring_shares(&r, shares);
	for (uint32_t i = 0; i < 50; i++) {
		sum += shares[i];
		bad += fabs(shares[i] - 1.0 / 50) > 0.3 / 50;
	}
	CHECK_EQ(bad, 0);
	CHECK(fabs(sum - 1.0) < 1e-9);
	flb_ring_free(&r);
}

/* Fraction of key hashes that change owner when node rm of n is removed,
 * over K sampled hashes.  Returns the moved fraction. */
static double ring_disruption(uint32_t n, uint32_t rm, uint32_t K)
{
	struct nodeset all, rest;
	struct flb_ring a, b;
	uint32_t moved = 0, lost = 0;

	nodeset_init(&all, n, UINT32_MAX);
	nodeset_init(&rest, n, rm);
	CHECK_EQ(flb_ring_build(&a, all.keys, NULL, n, 160), FLB_CHASH_OK);
	CHECK_EQ(flb_ring_build(&b, rest.keys, NULL, n - 1, 160), FLB_CHASH_OK);
	for (uint32_t k = 0; k < K; k++) {
		uint64_t h = sample_hash(k);
		uint32_t old = flb_ring_lookup(&a, h), now = flb_ring_lookup(&b, h);

		now += now >= rm;
		moved += old != now;
		lost += now == rm;
	}
	CHECK_EQ(lost, 0);
	flb_ring_free(&a);
	flb_ring_free(&b);
	return (double)moved / K;
}

/* Removing 1 of N moves <= 1/N + 2% of keys. */
static void test_ring_disruption(void)
{
	static const uint32_t ns[] = {10, 20, 50, 100};
	int bad = 0;

	for (size_t t = 0; t < FLB_ARRAY_SIZE(ns); t++) {
		uint32_t n = ns[t];

		for (uint32_t rm = 0; rm < n; rm += (n + 4) / 5) {
			double d = ring_disruption(n, rm, 20000);

			if (d > 1.0 / n + 0.02) {
				bad++;
				fprintf(stderr, "ring disruption n=%u r=%u: %.4f\n", n, rm, d);
			}
		}
	}
	CHECK_EQ(bad, 0);
}

/* Weights 1, 2, 3, 2, 1, 2, 3, 2, ... (gcd 1 as long as a 1 remains). */
static uint32_t ring_pattern_weight(uint32_t i)
{
	static const uint32_t pattern[4] = {1, 2, 3, 2};

	return pattern[i % 4];
}

/* Removing node rm of n with weights ring_pattern_weight: the other nodes
 * keep their points (the gcd stays 1), so exactly the keys rm owned move,
 * and they are about its weight share.  K sampled hashes.
 * Returns the moved fraction. */
static double ring_weighted_disruption(uint32_t n, uint32_t rm, uint32_t K)
{
	struct nodeset all, rest;
	struct flb_ring a, b;
	uint32_t w[MAXN], wr[MAXN], moved = 0, owned = 0, bad = 0;

	nodeset_init(&all, n, UINT32_MAX);
	nodeset_init(&rest, n, rm);
	for (uint32_t i = 0, j = 0; i < n; i++) {
		w[i] = ring_pattern_weight(i);
		if (i != rm)
			wr[j++] = w[i];
	}
	CHECK_EQ(flb_ring_build(&a, all.keys, w, n, 160), FLB_CHASH_OK);
	CHECK_EQ(flb_ring_build(&b, rest.keys, wr, n - 1, 160), FLB_CHASH_OK);
	/* Same points apart from rm's: the rings differ by rm's points only. */
	CHECK_EQ(a.num_points, b.num_points + 160 * w[rm]);
	for (uint32_t k = 0; k < K; k++) {
		uint64_t h = sample_hash(k);
		uint32_t old = flb_ring_lookup(&a, h), now = flb_ring_lookup(&b, h);

		now += now >= rm;
		moved += old != now;
		owned += old == rm;
		/* A key moves iff rm owned it. */
		bad += (old != now) != (old == rm);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(moved, owned);
	flb_ring_free(&a);
	flb_ring_free(&b);
	return (double)moved / K;
}

/* Weighted ring: removing 1 node moves only its keys, <= its weight share +
 * 2% (the share it owns deviates from its weight share by ~1/sqrt(points),
 * 8% relative for weight 1, i.e. < 0.5% absolute here). */
static void test_ring_weighted_disruption(void)
{
	static const uint32_t ns[] = {10, 20, 50};
	int bad = 0;

	for (size_t t = 0; t < FLB_ARRAY_SIZE(ns); t++) {
		uint32_t n = ns[t], W = 0;

		for (uint32_t i = 0; i < n; i++)
			W += ring_pattern_weight(i);
		/* Nodes 0..3 cover the weights 1, 2, 3, 2; plus a few others. */
		for (uint32_t rm = 0; rm < n; rm += rm < 3 ? 1 : (n + 2) / 3) {
			double d = ring_weighted_disruption(n, rm, 20000);

			if (d > (double)ring_pattern_weight(rm) / W + 0.02) {
				bad++;
				fprintf(stderr, "weighted ring disruption n=%u r=%u: %.4f\n", n, rm, d);
			}
		}
	}
	CHECK_EQ(bad, 0);
}

/* Weighted ring shares (exact arcs) against weight shares.  A node with p
 * points owns a sum of p arcs between random points, whose relative spread
 * is ~1/sqrt(p): 7.9% for weight 1 (160 points), 5.6% for weight 2, 4.6% for
 * weight 3.  Bounds: each node within 4/sqrt(p) (4 sigma: 32%, 22%, 18%),
 * each weight class as a whole within 4/sqrt(its points) (1600 to 6400
 * points: <= 10%), and the mean relative error of the nodes <= 1.5 times its
 * expectation sqrt(2/pi)/sqrt(p).  Keys are fixed, so the figures are
 * deterministic; the bounds leave room for other names. */
static void test_ring_weighted_shares(void)
{
	enum { N = 40 };
	struct nodeset s;
	struct flb_ring r;
	uint32_t w[N], W = 0;
	double shares[N], cls[4] = {0}, clsw[4] = {0}, err = 0, experr = 0, worst = 0;
	int bad = 0;

	nodeset_init(&s, N, UINT32_MAX);
	for (uint32_t i = 0; i < N; i++) {
		w[i] = ring_pattern_weight(i);
		W += w[i];
	}
	CHECK_EQ(flb_ring_build(&r, s.keys, w, N, 160), FLB_CHASH_OK);
	ring_shares(&r, shares);
	for (uint32_t i = 0; i < N; i++) {
		double want = (double)w[i] / W, rel = fabs(shares[i] / want - 1);
		double sigma = 1 / sqrt(160.0 * w[i]);

		cls[w[i]] += shares[i];
		clsw[w[i]] += want;
		err += rel;
		experr += sqrt(2 / M_PI) * sigma;
		if (rel > worst)
			worst = rel;
		if (rel > 4 * sigma) {
			bad++;
			fprintf(stderr, "weighted ring share node %u w=%u: %.4f want %.4f\n",
			        i, w[i], shares[i], want);
		}
	}
	for (uint32_t c = 1; c <= 3; c++) {
		double rel = fabs(cls[c] / clsw[c] - 1);

		if (rel > 4 / sqrt(160.0 * clsw[c] * W)) {
			bad++;
			fprintf(stderr, "weighted ring class w=%u: %.4f want %.4f\n", c, cls[c], clsw[c]);
		}
	}
	if (err > 1.5 * experr) {
		bad++;
		fprintf(stderr, "weighted ring mean error %.4f, expected %.4f\n", err / N, experr / N);
	}
	if (getenv("FLB_TEST_VERBOSE") != NULL)
		fprintf(stderr, "weighted ring: worst node %.4f, mean %.4f (expected %.4f), "
		        "classes %+.4f %+.4f %+.4f\n", worst, err / N, experr / N,
		        cls[1] / clsw[1] - 1, cls[2] / clsw[2] - 1, cls[3] / clsw[3] - 1);
	CHECK_EQ(bad, 0);
	flb_ring_free(&r);
}

/* ---------------------------------------------------- bounded-load helpers */

/* flb_chash_cap_init / flb_chash_cap_has_room / flb_chash_scan_nodes. */
static void test_chash_helpers(void)
{
	struct flb_chash_cap t;
	uint32_t loads[4] = {3, 1, 2, 0}, weights[4] = {1, 1, 2, 1};
	uint8_t excl[4] = {0, 0, 0, 1};
	int room = -1;

	/* c = 1, total 9, W = 10: cap of weight 1 is ceil(10 / 10) = 1. */
	t = flb_chash_cap_init(1.0, 9, 10);
	CHECK(flb_chash_cap_has_room(&t, 0, 1));
	CHECK(!flb_chash_cap_has_room(&t, 1, 1));
	CHECK(flb_chash_cap_has_room(&t, 1, 2)); /* cap 2 */
	CHECK(!flb_chash_cap_has_room(&t, 2, 2));
	/* NaN and c < 1 count as 1. */
	t = flb_chash_cap_init(NAN, 9, 10);
	CHECK(!flb_chash_cap_has_room(&t, 1, 1));
	t = flb_chash_cap_init(0.5, 9, 10);
	CHECK(flb_chash_cap_has_room(&t, 0, 1));
	CHECK(!flb_chash_cap_has_room(&t, 1, 1));
	/* c = 1.5, total 3, W = 4: cap ceil(1.5) = 2. */
	t = flb_chash_cap_init(1.5, 3, 4);
	CHECK(flb_chash_cap_has_room(&t, 1, 1));
	CHECK(!flb_chash_cap_has_room(&t, 2, 1));
	/* Huge c is clamped, and still leaves room. */
	t = flb_chash_cap_init(1e300, UINT64_MAX - 1, (uint64_t)UINT32_MAX * 65535);
	CHECK(flb_chash_cap_has_room(&t, UINT32_MAX - 1, UINT32_MAX));

	/* loads 3, 1, 2, 0 (node 3 excluded), total 6, W = 5, c = 1: caps
	 * ceil(7/5) = 2 for weight 1, ceil(14/5) = 3 for weight 2. */
	t = flb_chash_cap_init(1.0, 6, 5);
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 0, &t, excl, &room), 1);
	CHECK_EQ(room, 1);
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 2, &t, excl, &room), 2);
	CHECK_EQ(room, 1);
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 3, &t, NULL, &room), 3);
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 3, &t, excl, &room), 1); /* wraps */
	/* No room anywhere: the least loads / weight (ties: first from start). */
	loads[0] = 5; loads[1] = 4; loads[2] = 8; /* 5, 4, 4 per unit */
	t = flb_chash_cap_init(1.0, 17, 5);
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 0, &t, excl, &room), 1);
	CHECK_EQ(room, 0);
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 2, &t, excl, &room), 2);
	CHECK_EQ(room, 0);
	memset(excl, 1, sizeof(excl));
	CHECK_EQ(flb_chash_scan_nodes(loads, weights, 4, 1, &t, excl, &room), -1);
	CHECK_EQ(room, 0);
}

/* Run every test.  Returns the exit status. */
int main(void)
{
	test_xxh64_vectors();
	test_jump();
	test_maglev_args();
	test_maglev_distribution();
	test_maglev_disruption();
	test_maglev_determinism();
	test_bounded(0);
	test_maglev_bounded_slotless();
	test_maglev_bounded_slotless_long();
	test_bounded_vs_reference();
	test_ring_build();
	test_ring_distribution();
	test_ring_disruption();
	test_ring_weighted_disruption();
	test_ring_weighted_shares();
	test_bounded(1);
	test_chash_helpers();
	return CHECK_REPORT();
}
