/* maglev.c: weighted Maglev lookup table (Eisenbud et al., "Maglev: A Fast
 * and Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
 *
 * Every node walks its own permutation of the M slots, offset, offset+skip,
 * offset+2*skip, ... (mod M, M prime so the walk visits every slot), and on
 * each of its turns claims the first free slot of that walk.
 *
 * Weights decide who takes the next turn.  The k-th turn (k = 0, 1, ...) of
 * node i has the priority (2k + 1) / w_i, and turns are taken in increasing
 * priority, ties by node index: this is the Sainte-Lague / Webster
 * apportionment, so each node ends with round(w_i / d) slots for a common
 * divisor d, i.e. within about one slot of its exact share M * w_i / W.
 * With equal weights the order is the round robin of the paper.  The
 * relative order of two nodes' turns depends on their own weights only, so
 * adding or removing a node never reorders the others (low disruption).
 * A calendar of priority buckets yields the turns in O(M + N) whatever the
 * weight skew; each probe of a permutation tests a bit of an occupancy
 * bitmap, and positions advance by adding skip and subtracting M. */
#include <stdlib.h>
#include <string.h>

#include "chash.h"
#include "compiler.h"
#include "maglev.h"

/* Seeds of the two independent hashes giving each node's offset and skip. */
#define MAGLEV_SEED_OFFSET 0x6d61676c65762d6full /* "maglev-o" */
#define MAGLEV_SEED_SKIP   0x6d61676c65762d73ull /* "maglev-s" */

/* Turns are bucketed by priority: the k-th turn of node i falls into
 * bucket floor((2k + 1) * W / (2 * w_i * CAL_GRAIN)), a monotone function of
 * its priority (2k + 1) / w_i, and is sorted exactly within its bucket.
 * About CAL_GRAIN turns share a bucket. */
#define CAL_GRAIN 8
#define NO_NODE UINT32_MAX

/* Per-node state of the population: the node's permutation (position of
 * the next candidate slot, skip), its turns taken and weight, and the
 * calendar bucket of its next turn: bucket = floor(num / den) with
 * num = (2 * turns + 1) * W, den = 2 * w * CAL_GRAIN, rem = num mod den,
 * advanced without division by 2W = step_q * den + step_r. */
struct maglev_walk {
	uint32_t next;
	uint32_t skip;
	uint32_t turns;
	uint32_t weight;
	uint64_t bucket;
	uint64_t rem;
	uint64_t den;
	uint64_t step_q;
	uint64_t step_r;
	uint32_t link;  /* next node queued in the same bucket */
};

/* Scratch of the population; owned by flb_maglev_build, freed after. */
struct maglev_scratch {
	struct maglev_walk *w; /* n walks */
	uint32_t *work;        /* n entries: the sorted turns of one bucket */
	uint64_t *taken;       /* size bits: occupied slots */
	uint32_t *heads;       /* nb bucket lists: first node, or NO_NODE */
	uint32_t *tails;       /* nb bucket lists: last node */
	uint32_t nb;
};

/* Whether n is prime (trial division; n <= FLB_MAGLEV_MAX_SIZE so at most
 * ~2048 divisions).  Returns 1 if prime, else 0. */
static int is_prime(uint32_t n)
{
	if (n < 2)
		return 0;
	if (n % 2 == 0)
		return n == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= n; d += 2)
		if (n % d == 0)
			return 0;
	return 1;
}

/* Whether node a's next turn comes before node b's: priority
 * (2 * turns + 1) / weight, ties by index.  Products stay below 2^58.
 * Returns nonzero if a goes first. */
static inline int turn_before(const struct maglev_walk *w, uint32_t a, uint32_t b)
{
	uint64_t pa = (2 * (uint64_t)w[a].turns + 1) * w[b].weight;
	uint64_t pb = (2 * (uint64_t)w[b].turns + 1) * w[a].weight;

	return pa < pb || (pa == pb && a < b);
}

/* Claim the next free slot of node's permutation for node.
 * table: size entries; taken: occupancy bitmap of the slots (a probe reads
 * size / 8 bytes of bitmap that stay in L1, not the 4-byte entries);
 * nw: the node's walk, advanced past the claimed slot. */
static inline void maglev_claim(uint32_t *table, uint64_t *taken, uint32_t size,
                                struct maglev_walk *nw, uint32_t node)
{
	uint32_t pos = nw->next, skip = nw->skip;

	/* The permutation visits every slot, and one is free. */
	while (taken[pos / 64] & (1ull << (pos % 64))) {
		pos += skip;
		if (pos >= size)
			pos -= size;
	}
	taken[pos / 64] |= 1ull << (pos % 64);
	table[pos] = node;
	pos += skip;
	if (pos >= size)
		pos -= size;
	nw->next = pos;
}

/* Queue node's next turn at the tail of its bucket, or drop it when the
 * bucket lies past the last one (the table is full before then). */
static inline void cal_push(struct maglev_scratch *sc, uint32_t node)
{
	uint64_t b = sc->w[node].bucket;

	if (b >= sc->nb)
		return;
	sc->w[node].link = NO_NODE;
	if (sc->heads[b] == NO_NODE)
		sc->heads[b] = node;
	else
		sc->w[sc->tails[b]].link = node;
	sc->tails[b] = node;
}

/* Fill table[0..size) in the order of the nodes' turns: increasing priority
 * (2k + 1) / w_i, ties by node index.  Every slot ends up owned.
 * sc: scratch with n walks at turn 0, a zeroed bitmap and empty buckets;
 * equal: nonzero when all weights are equal (the order is then a plain
 * round robin and the calendar is not used). */
static void maglev_populate(uint32_t *table, uint32_t size, struct maglev_scratch *sc,
                            uint32_t n, int equal)
{
	struct maglev_walk *w = sc->w;
	uint32_t filled = 0;

	if (equal) {
		for (;;)
			for (uint32_t i = 0; i < n; i++) {
				maglev_claim(table, sc->taken, size, &w[i], i);
				if (++filled == size)
					return;
			}
	}

	for (uint32_t i = 0; i < n; i++)
		cal_push(sc, i);
	/* The turns of buckets 0..B number at least (B + 1) * CAL_GRAIN - n / 2,
	 * so nb = (size + n) / CAL_GRAIN + 2 buckets hold more than size turns. */
	for (uint32_t b = 0; b < sc->nb; b++) {
		uint32_t pos = 0, cnt = 0;

		for (uint32_t x = sc->heads[b]; x != NO_NODE; x = w[x].link) {
			/* Insertion sort: lists arrive nearly sorted. */
			uint32_t j = cnt++;

			for (; j > 0 && turn_before(w, x, sc->work[j - 1]); j--)
				sc->work[j] = sc->work[j - 1];
			sc->work[j] = x;
		}
		while (pos < cnt) {
			uint32_t node = sc->work[pos++];
			struct maglev_walk *nw = &w[node];

			maglev_claim(table, sc->taken, size, nw, node);
			if (++filled == size)
				return;
			nw->turns++;
			nw->bucket += nw->step_q;
			nw->rem += nw->step_r;
			if (nw->rem >= nw->den) {
				nw->rem -= nw->den;
				nw->bucket++;
			}
			if (nw->bucket != b) {
				cal_push(sc, node);
				continue;
			}
			/* Another turn in this bucket: back into work[pos..cnt). */
			uint32_t j = --pos;

			for (; j + 1 < cnt && turn_before(w, sc->work[j + 1], node); j++)
				sc->work[j] = sc->work[j + 1];
			sc->work[j] = node;
		}
	}
	/* Unreachable (see above); keeps the table total if it were not. */
	for (uint32_t i = 0; filled < size; i = (i + 1) % n, filled++)
		maglev_claim(table, sc->taken, size, &w[i], i);
}

/* Free the scratch arrays of a build (safe on NULL members). */
static void maglev_scratch_free(struct maglev_scratch *sc)
{
	free(sc->w);
	free(sc->work);
	free(sc->taken);
	free(sc->heads);
	free(sc->tails);
}

/* Allocate the scratch of a build of n nodes into size slots, with empty
 * buckets and a zeroed bitmap.  Returns 0, or -1 when out of memory (the
 * members allocated so far are then to be freed by maglev_scratch_free). */
static int maglev_scratch_alloc(struct maglev_scratch *sc, uint32_t n, uint32_t size)
{
	sc->nb = (size + n) / CAL_GRAIN + 2;
	sc->w = malloc((size_t)n * sizeof(*sc->w));
	sc->work = malloc((size_t)n * sizeof(*sc->work));
	sc->taken = calloc(size / 64 + 1, sizeof(*sc->taken));
	sc->heads = malloc((size_t)sc->nb * sizeof(*sc->heads));
	sc->tails = malloc((size_t)sc->nb * sizeof(*sc->tails));
	if (sc->w == NULL || sc->work == NULL || sc->taken == NULL ||
	    sc->heads == NULL || sc->tails == NULL)
		return -1;
	memset(sc->heads, 0xff, (size_t)sc->nb * sizeof(*sc->heads));
	return 0;
}

/* Build a weighted Maglev table (see maglev.h).
 * Returns FLB_CHASH_OK, FLB_CHASH_EINVAL or FLB_CHASH_ENOMEM; on error *m
 * is zeroed. */
int flb_maglev_build(struct flb_maglev *m, const struct flb_hkey *keys,
                     const uint32_t *weights, uint32_t n, uint32_t size)
{
	struct maglev_scratch sc = {0};
	uint64_t total = 0;
	int equal = 1;

	if (m == NULL)
		return FLB_CHASH_EINVAL;
	memset(m, 0, sizeof(*m));
	if (keys == NULL || n == 0 || n > FLB_CHASH_MAX_NODES ||
	    size <= n || size > FLB_MAGLEV_MAX_SIZE || !is_prime(size))
		return FLB_CHASH_EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (keys[i].data == NULL && keys[i].len != 0)
			return FLB_CHASH_EINVAL;
		if (weights != NULL && weights[i] == 0)
			return FLB_CHASH_EINVAL;
		total += weights != NULL ? weights[i] : 1;
		equal &= weights == NULL || weights[i] == weights[0];
	}

	m->weights = malloc((size_t)n * sizeof(*m->weights));
	m->table = malloc((size_t)size * sizeof(*m->table));
	if (m->weights == NULL || m->table == NULL || maglev_scratch_alloc(&sc, n, size) < 0) {
		maglev_scratch_free(&sc);
		flb_maglev_free(m);
		return FLB_CHASH_ENOMEM;
	}

	for (uint32_t i = 0; i < n; i++) {
		uint64_t h1 = flb_hash64(keys[i].data, keys[i].len, MAGLEV_SEED_OFFSET);
		uint64_t h2 = flb_hash64(keys[i].data, keys[i].len, MAGLEV_SEED_SKIP);
		struct maglev_walk *w = &sc.w[i];

		m->weights[i] = weights != NULL ? weights[i] : 1;
		w->next = (uint32_t)(h1 % size);
		w->skip = (uint32_t)(h2 % (size - 1)) + 1;
		w->turns = 0;
		w->weight = m->weights[i];
		/* W < 2^48 and den < 2^35: no overflow. */
		w->den = 2 * (uint64_t)w->weight * CAL_GRAIN;
		w->bucket = total / w->den;
		w->rem = total % w->den;
		w->step_q = 2 * total / w->den;
		w->step_r = 2 * total % w->den;
		w->link = NO_NODE;
	}
	maglev_populate(m->table, size, &sc, n, equal);
	maglev_scratch_free(&sc);

	m->size = size;
	m->num_nodes = n;
	m->total_weight = total;
	return FLB_CHASH_OK;
}

/* Free a table (see maglev.h); safe on a zeroed struct, zeroes *m. */
void flb_maglev_free(struct flb_maglev *m)
{
	if (m == NULL)
		return;
	free(m->weights);
	free(m->table);
	memset(m, 0, sizeof(*m));
}

/* Bounded-load lookup (see maglev.h): probe slots from the key's slot on, at
 * most M of them; if none has room, the least loaded node.  Saturation is
 * common when nodes are excluded, so after FLB_CHASH_BOUNDED_PROBES probes
 * one scan of the nodes (flb_chash_scan_nodes) checks whether the rest of the
 * walk can succeed at all; the result is the same as that of the full walk.
 * Returns a node index, or -1 when every node is excluded (or m is empty). */
int32_t flb_maglev_lookup_bounded(const struct flb_maglev *m, uint64_t hash,
                                  const uint32_t *loads, uint64_t total, double c,
                                  const uint8_t *excluded)
{
	struct flb_chash_cap t;
	uint32_t s, limit;
	int32_t scanned = -1;
	int room = 1;

	if (m == NULL || m->num_nodes == 0 || loads == NULL)
		return -1;
	t = flb_chash_cap_init(c, total, m->total_weight);
	s = flb_hash_range(hash, m->size);
	limit = m->size < FLB_CHASH_BOUNDED_PROBES ? m->size : FLB_CHASH_BOUNDED_PROBES;
	for (uint32_t k = 0; k < m->size; k++) {
		uint32_t node;

		if (flb_unlikely(k == limit)) {
			scanned = flb_chash_scan_nodes(loads, m->weights, m->num_nodes,
			                               flb_hash_range(hash, m->num_nodes), &t,
			                               excluded, &room);
			if (!room)
				return scanned;
		}
		node = m->table[s];
		if ((excluded == NULL || !excluded[node]) &&
		    flb_chash_cap_has_room(&t, loads[node], m->weights[node]))
			return (int32_t)node;
		if (++s == m->size)
			s = 0;
	}
	/* The nodes with room own no slot (tiny weights): the scan's pick. */
	if (scanned < 0 && room)
		scanned = flb_chash_scan_nodes(loads, m->weights, m->num_nodes,
		                               flb_hash_range(hash, m->num_nodes), &t,
		                               excluded, &room);
	return scanned;
}
