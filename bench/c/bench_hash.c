/* bench_hash.c: micro benchmarks of hash.c, maglev.c and ring.c.
 * Build and run: make -C bench c/bench_hash && bench/c/bench_hash
 * Each figure is the median of RUNS runs; lookups go over NKEYS distinct
 * precomputed 20-byte keys (not one key in a loop). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "maglev.h"
#include "ring.h"

#define RUNS    9
#define NKEYS   (1u << 20)
#define KEYLEN  20
#define NNODES  100
#define BUFLEN  4096
#define BUFREPS 20000
#define BUILDS  15

/* Monotonic time in nanoseconds. */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* qsort comparator of doubles.  Returns <0, 0, >0. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v).  Returns the median. */
static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* SplitMix64 step: advances *state.  Returns the next pseudo-random value. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* The benchmark's inputs and tables; owns every buffer. */
struct bench {
	unsigned char *keys;  /* NKEYS * KEYLEN bytes */
	uint64_t *hashes;     /* NKEYS precomputed hashes (for jump) */
	unsigned char *buf;   /* BUFLEN bytes */
	char names[NNODES][32];
	struct flb_hkey nodes[NNODES];
	struct flb_maglev maglev;
	struct flb_ring ring;
	uint64_t sink;        /* folds results so no loop is optimized out */
};

/* ns per 20-byte flb_hash64 over the key set. */
static double run_hash20(struct bench *b)
{
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint32_t i = 0; i < NKEYS; i++)
		acc ^= flb_hash64(b->keys + (size_t)i * KEYLEN, KEYLEN, 0);
	b->sink ^= acc;
	return (now_ns() - t0) / NKEYS;
}

/* GB/s of flb_hash64 over a 4 KiB buffer. */
static double run_hash4k(struct bench *b)
{
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint32_t i = 0; i < BUFREPS; i++)
		acc ^= flb_hash64(b->buf, BUFLEN, i);
	b->sink ^= acc;
	return (double)BUFLEN * BUFREPS / (now_ns() - t0);
}

/* ns per Maglev lookup including the hash of the key. */
static double run_maglev_lookup(struct bench *b)
{
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint32_t i = 0; i < NKEYS; i++)
		acc += flb_maglev_lookup(&b->maglev, flb_hash64(b->keys + (size_t)i * KEYLEN, KEYLEN, 0));
	b->sink ^= acc;
	return (now_ns() - t0) / NKEYS;
}

/* ns per bounded Maglev lookup including the hash, c = 1.25, with the
 * loads left by assigning the key set one by one (so caps bind). */
static double run_maglev_bounded(struct bench *b)
{
	uint32_t loads[NNODES] = {0};
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint32_t i = 0; i < NKEYS; i++) {
		uint64_t h = flb_hash64(b->keys + (size_t)i * KEYLEN, KEYLEN, 0);
		int32_t n = flb_maglev_lookup_bounded(&b->maglev, h, loads, i, 1.25, NULL);

		loads[n]++;
		acc += (uint64_t)n;
	}
	b->sink ^= acc;
	return (now_ns() - t0) / NKEYS;
}

/* ns per ring lookup including the hash of the key. */
static double run_ring_lookup(struct bench *b)
{
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint32_t i = 0; i < NKEYS; i++)
		acc += flb_ring_lookup(&b->ring, flb_hash64(b->keys + (size_t)i * KEYLEN, KEYLEN, 0));
	b->sink ^= acc;
	return (now_ns() - t0) / NKEYS;
}

/* ns per Jump hash of a precomputed 64-bit key into nb buckets. */
static double run_jump(struct bench *b, int32_t nb)
{
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint32_t i = 0; i < NKEYS; i++)
		acc += (uint64_t)flb_jump_hash(b->hashes[i], nb);
	b->sink ^= acc;
	return (now_ns() - t0) / NKEYS;
}

/* ms to build a 100-node Maglev table of size 65537. */
static double run_maglev_build(struct bench *b)
{
	struct flb_maglev m;
	double t0 = now_ns(), t;

	if (flb_maglev_build(&m, b->nodes, NULL, NNODES, FLB_MAGLEV_DEFAULT_SIZE) != FLB_CHASH_OK)
		abort();
	t = now_ns() - t0;
	b->sink ^= m.table[0];
	flb_maglev_free(&m);
	return t / 1e6;
}

/* ms to build a weighted (1..4) 100-node Maglev table of size 65537. */
static double run_maglev_build_weighted(struct bench *b)
{
	struct flb_maglev m;
	uint32_t w[NNODES];
	double t0, t;

	for (uint32_t i = 0; i < NNODES; i++)
		w[i] = 1 + i % 4;
	t0 = now_ns();
	if (flb_maglev_build(&m, b->nodes, w, NNODES, FLB_MAGLEV_DEFAULT_SIZE) != FLB_CHASH_OK)
		abort();
	t = now_ns() - t0;
	b->sink ^= m.table[0];
	flb_maglev_free(&m);
	return t / 1e6;
}

/* ms to build a 100-node ring of 160 vnodes per node. */
static double run_ring_build(struct bench *b)
{
	struct flb_ring r;
	double t0 = now_ns(), t;

	if (flb_ring_build(&r, b->nodes, NULL, NNODES, FLB_RING_DEFAULT_VNODES) != FLB_CHASH_OK)
		abort();
	t = now_ns() - t0;
	b->sink ^= r.points[0].hash;
	flb_ring_free(&r);
	return t / 1e6;
}

/* ms to build a weighted (1..4) 100-node ring of 160 vnodes per unit of
 * weight (vnodes * w_i points: 40000 in all). */
static double run_ring_build_weighted(struct bench *b)
{
	struct flb_ring r;
	uint32_t w[NNODES];
	double t0, t;

	for (uint32_t i = 0; i < NNODES; i++)
		w[i] = 1 + i % 4;
	t0 = now_ns();
	if (flb_ring_build(&r, b->nodes, w, NNODES, FLB_RING_DEFAULT_VNODES) != FLB_CHASH_OK)
		abort();
	t = now_ns() - t0;
	b->sink ^= r.points[0].hash;
	flb_ring_free(&r);
	return t / 1e6;
}

/* Median over n runs of fn(b).  Returns the median figure. */
static double med_of(double (*fn)(struct bench *), struct bench *b, int n)
{
	double v[64];

	for (int i = 0; i < n; i++)
		v[i] = fn(b);
	return median(v, n);
}

/* Median over RUNS runs of run_jump(b, nb).  Returns the median. */
static double med_jump(struct bench *b, int32_t nb)
{
	double v[RUNS];

	for (int i = 0; i < RUNS; i++)
		v[i] = run_jump(b, nb);
	return median(v, RUNS);
}

/* Run every benchmark and print one line per figure.  Returns 0, or 1
 * when out of memory. */
int main(void)
{
	struct bench *b = calloc(1, sizeof(*b));
	uint64_t st = 42;

	if (b == NULL)
		return 1;
	b->keys = malloc((size_t)NKEYS * KEYLEN);
	b->hashes = malloc((size_t)NKEYS * sizeof(*b->hashes));
	b->buf = malloc(BUFLEN);
	if (b->keys == NULL || b->hashes == NULL || b->buf == NULL)
		return 1;
	for (size_t i = 0; i < (size_t)NKEYS * KEYLEN; i += 4) {
		uint32_t v = (uint32_t)splitmix64(&st);

		memcpy(b->keys + i, &v, 4);
	}
	for (uint32_t i = 0; i < NKEYS; i++)
		b->hashes[i] = flb_hash64(b->keys + (size_t)i * KEYLEN, KEYLEN, 0);
	for (size_t i = 0; i < BUFLEN; i++)
		b->buf[i] = (unsigned char)splitmix64(&st);
	for (uint32_t i = 0; i < NNODES; i++) {
		snprintf(b->names[i], sizeof(b->names[i]), "10.0.%u.%u:8080", i / 256, i % 256);
		b->nodes[i].data = b->names[i];
		b->nodes[i].len = strlen(b->names[i]);
	}
	if (flb_maglev_build(&b->maglev, b->nodes, NULL, NNODES, FLB_MAGLEV_DEFAULT_SIZE) != FLB_CHASH_OK ||
	    flb_ring_build(&b->ring, b->nodes, NULL, NNODES, FLB_RING_DEFAULT_VNODES) != FLB_CHASH_OK)
		return 1;

	printf("bench_hash: median of %d runs, %u distinct %d-byte keys\n", RUNS, NKEYS, KEYLEN);
	printf("hash64 20 B:                          %6.2f ns/hash\n", med_of(run_hash20, b, RUNS));
	printf("hash64 4 KiB:                         %6.2f GB/s\n", med_of(run_hash4k, b, RUNS));
	printf("maglev lookup incl. hash (100 @65537): %6.2f ns\n", med_of(run_maglev_lookup, b, RUNS));
	printf("maglev bounded lookup incl. hash c=1.25: %4.2f ns\n", med_of(run_maglev_bounded, b, RUNS));
	printf("maglev build 100 @65537:              %6.3f ms\n", med_of(run_maglev_build, b, BUILDS));
	printf("maglev build 100 w=1..4 @65537:       %6.3f ms\n", med_of(run_maglev_build_weighted, b, BUILDS));
	printf("ring lookup incl. hash (100 x160):    %6.2f ns\n", med_of(run_ring_lookup, b, RUNS));
	printf("ring build 100 x160:                  %6.3f ms\n", med_of(run_ring_build, b, BUILDS));
	printf("ring build 100 w=1..4 x160:           %6.3f ms\n", med_of(run_ring_build_weighted, b, BUILDS));
	printf("jump 100 buckets:                     %6.2f ns\n", med_jump(b, 100));
	printf("jump 10000 buckets:                   %6.2f ns\n", med_jump(b, 10000));
	printf("(checksum %016llx)\n", (unsigned long long)b->sink);

	flb_maglev_free(&b->maglev);
	flb_ring_free(&b->ring);
	free(b->buf);
	free(b->hashes);
	free(b->keys);
	free(b);
	return 0;
}
