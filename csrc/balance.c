/* balance.c: the balancing algorithms and passive health (see balance.h). */
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "chash.h"
#include "hash.h"
#include "maglev.h"
#include "ring.h"

/* Allocate the per-worker state (contract in balance.h). */
int flb_balance_state_init(struct flb_balance_state *st, const struct flb_snapshot *s,
                           uint64_t seed)
{
	size_t m = s->max_bk_srv ? s->max_bk_srv : 1;

	memset(st, 0, sizeof(*st));
	st->rr = calloc(s->nbk ? s->nbk : 1, sizeof(*st->rr));
	st->wrr = calloc(s->nsrv ? s->nsrv : 1, sizeof(*st->wrr));
	st->loads = calloc(m, sizeof(*st->loads));
	st->excl = calloc(m, sizeof(*st->excl));
	st->cand = calloc(m, sizeof(*st->cand));
	st->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
	if (!st->rr || !st->wrr || !st->loads || !st->excl || !st->cand) {
		flb_balance_state_free(st);
		return -1;
	}
	return 0;
}

/* Free the per-worker state (contract in balance.h). */
void flb_balance_state_free(struct flb_balance_state *st)
{
	free(st->rr);
	free(st->wrr);
	free(st->loads);
	free(st->excl);
	free(st->cand);
	memset(st, 0, sizeof(*st));
}

/* xorshift64* step.  st: the state.  Returns 64 random bits. */
static uint64_t rnd(struct flb_balance_state *st)
{
	uint64_t x = st->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	st->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Whether a server is available (contract in balance.h). */
int flb_server_available(const struct flb_server *sv, const struct flb_backend *b,
                         uint64_t now_ms)
{
	const struct flb_srv *sh = sv->sh;

	if (sv->state != FLB_SRV_UP || sv->weight == 0)
		return 0;
	if (b->max_fails != 0 &&
	    atomic_load_explicit(&sh->fails, memory_order_relaxed) >= b->max_fails &&
	    now_ms < atomic_load_explicit(&sh->down_until, memory_order_relaxed))
		return 0;
	if (sv->maxconn != 0 &&
	    atomic_load_explicit(&sh->active, memory_order_relaxed) >= sv->maxconn)
		return 0;
	return 1;
}

/* Whether backend-local server i may be picked for this attempt.
 * b: backend; srv: its first server; i: local index; now_ms: time;
 * tried, ntried: exclusions.  Returns nonzero if it may. */
static int can_pick(const struct flb_backend *b, const struct flb_server *srv, uint32_t i,
                    uint64_t now_ms, const uint32_t *tried, uint32_t ntried)
{
	for (uint32_t k = 0; k < ntried; k++)
		if (tried[k] == i)
			return 0;
	return flb_server_available(&srv[i], b, now_ms);
}

/* Active connections of a server.  sv: the server.  Returns the count. */
static uint32_t active_of(const struct flb_server *sv)
{
	return atomic_load_explicit(&sv->sh->active, memory_order_relaxed);
}

/* Pick a server (contract in balance.h). */
int32_t flb_balance_pick(const struct flb_snapshot *s, uint32_t bk,
                         struct flb_balance_state *st, uint64_t key, uint64_t now_ms,
                         const uint32_t *tried, uint32_t ntried)
{
	const struct flb_backend *b = &s->bk[bk];
	const struct flb_server *srv = &s->srv[b->first];
	uint32_t n = b->nsrv, start;
	int32_t best = -1;

	if (n == 0)
		return -1;
	switch (b->algo) {
	case FLB_ALGO_RR:
		start = st->rr[bk] % n;
		for (uint32_t k = 0; k < n; k++) {
			uint32_t i = start + k < n ? start + k : start + k - n;

			if (can_pick(b, srv, i, now_ms, tried, ntried)) {
				/* A retry does not move the rotation, so a failing
				 * server still gets only its share of first attempts. */
				if (ntried == 0)
					st->rr[bk] = i + 1;
				return (int32_t)i;
			}
		}
		return -1;

	case FLB_ALGO_WRR: {
		/* Smooth weighted round robin: every available server gains its
		 * weight, the largest current weight wins and pays the total. */
		int64_t *cur = &st->wrr[b->first], total = 0;

		for (uint32_t i = 0; i < n; i++) {
			if (!can_pick(b, srv, i, now_ms, tried, ntried))
				continue;
			cur[i] += srv[i].weight;
			total += srv[i].weight;
			if (best < 0 || cur[i] > cur[best])
				best = (int32_t)i;
		}
		if (best >= 0)
			cur[best] -= total;
		return best;
	}

	case FLB_ALGO_LEASTCONN: {
		/* min active/weight, compared as products; ties go to the first
		 * from a rotating start so equal servers share the load. */
		uint64_t ba = 0, bw = 1;

		start = st->rr[bk]++ % n;
		for (uint32_t k = 0; k < n; k++) {
			uint32_t i = start + k < n ? start + k : start + k - n;
			uint64_t a;

			if (!can_pick(b, srv, i, now_ms, tried, ntried))
				continue;
			a = active_of(&srv[i]);
			if (best < 0 || a * bw < ba * srv[i].weight) {
				best = (int32_t)i;
				ba = a;
				bw = srv[i].weight;
			}
		}
		return best;
	}

	case FLB_ALGO_RANDOM2: {
		uint32_t m = 0, x, y;
		uint64_t ax, ay;

		for (uint32_t i = 0; i < n; i++)
			if (can_pick(b, srv, i, now_ms, tried, ntried))
				st->cand[m++] = i;
		if (m == 0)
			return -1;
		if (m == 1)
			return (int32_t)st->cand[0];
		x = (uint32_t)((rnd(st) >> 32) % m);
		y = (uint32_t)((rnd(st) >> 32) % (m - 1));
		if (y >= x)
			y++;
		x = st->cand[x];
		y = st->cand[y];
		/* Better of the two: fewer active connections per unit of weight. */
		ax = (uint64_t)active_of(&srv[x]) * srv[y].weight;
		ay = (uint64_t)active_of(&srv[y]) * srv[x].weight;
		return (int32_t)(ay < ax ? y : x);
	}

	case FLB_ALGO_MAGLEV:
	case FLB_ALGO_RING: {
		double c = b->load_factor;
		uint64_t total = 0;

		if (c == 0.0) {
			/* Plain consistent hashing: the key's owner if it can take the
			 * connection, else walk on from its place (an unbounded cap
			 * with the unavailable servers excluded). */
			uint32_t i = b->algo == FLB_ALGO_MAGLEV ? flb_maglev_lookup(&b->maglev, key)
			                                        : flb_ring_lookup(&b->ring, key);

			if (can_pick(b, srv, i, now_ms, tried, ntried))
				return (int32_t)i;
			c = FLB_CHASH_CAP_MAX_C;
		}
		for (uint32_t i = 0; i < n; i++) {
			st->excl[i] = !can_pick(b, srv, i, now_ms, tried, ntried);
			st->loads[i] = active_of(&srv[i]);
			total += st->loads[i];
		}
		if (b->algo == FLB_ALGO_MAGLEV)
			return flb_maglev_lookup_bounded(&b->maglev, key, st->loads, total, c, st->excl);
		return flb_ring_lookup_bounded(&b->ring, key, st->loads, total, c, st->excl);
	}
	}
	return -1;
}

/* Hash a client address (contract in balance.h). */
uint64_t flb_client_key(const union flb_sockaddr *sa)
{
	if (sa->sa.sa_family == AF_INET)
		return flb_hash64(&sa->in4.sin_addr, 4, 0);
	if (sa->sa.sa_family == AF_INET6)
		return flb_hash64(&sa->in6.sin6_addr, 16, 0);
	return 0;
}

/* Record a failed connect (contract in balance.h). */
int flb_srv_failed(const struct flb_server *sv, const struct flb_backend *b, uint64_t now_ms)
{
	struct flb_srv *sh = sv->sh;
	uint32_t f = atomic_fetch_add_explicit(&sh->fails, 1, memory_order_relaxed) + 1;
	uint64_t du;

	if (b->max_fails == 0 || f < b->max_fails)
		return 0;
	du = atomic_load_explicit(&sh->down_until, memory_order_relaxed);
	if (du > now_ms)
		return 0; /* already out: a late failure of an older attempt */
	/* One worker wins the transition, and counts it. */
	return atomic_compare_exchange_strong_explicit(&sh->down_until, &du,
	                                               now_ms + b->fail_timeout_ms,
	                                               memory_order_relaxed,
	                                               memory_order_relaxed);
}
