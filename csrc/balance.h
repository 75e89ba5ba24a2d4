/* balance.h: server selection for a backend, passive health and the shared
 * per-server connection counts.
 *
 * The snapshot holds the immutable part (servers, weights, hash tables); the
 * mutable part of an algorithm (round-robin position, smooth-WRR current
 * weights, PRNG) lives in a struct flb_balance_state owned by one worker for
 * one snapshot, so picking writes no shared memory.  The only shared writes
 * are the server's active count (flb_srv_acquire / flb_srv_put) and its
 * passive-health state (flb_srv_failed / flb_srv_succeeded), see struct
 * flb_srv in snapshot-t.h for why they are shared. */
#ifndef FLB_BALANCE_H
#define FLB_BALANCE_H

#include <stdatomic.h>
#include <stdint.h>

#include "balance-t.h"
#include "snapshot-t.h"

/* Allocate the state for snapshot s.  seed: PRNG seed (0 is replaced).
 * Returns 0 or -1 on ENOMEM (st then holds nothing). */
int flb_balance_state_init(struct flb_balance_state *st, const struct flb_snapshot *s,
                           uint64_t seed);

/* Free what flb_balance_state_init allocated.  Safe on a zeroed state. */
void flb_balance_state_free(struct flb_balance_state *st);

/* Whether a server may take a new connection now, ignoring per-connection
 * exclusions: state up, weight > 0, not out for passive health, and below
 * max_conn.  sv: the server; b: its backend; now_ms: monotonic ms.
 * Returns nonzero if it may. */
int flb_server_available(const struct flb_server *sv, const struct flb_backend *b,
                         uint64_t now_ms);

/* Pick a server of backend bk for a new connection attempt.
 * s: the snapshot; st: the worker's state for s; key: hash of the client
 * address (maglev and ring; ignored otherwise); now_ms: monotonic ms;
 * tried, ntried: backend-local indices to exclude (servers already tried).
 * Returns a backend-local server index, or -1 when no server is available. */
int32_t flb_balance_pick(const struct flb_snapshot *s, uint32_t bk,
                         struct flb_balance_state *st, uint64_t key, uint64_t now_ms,
                         const uint32_t *tried, uint32_t ntried);

/* Hash a client address for maglev/ring (the IP only, not the port).
 * Returns the XXH64 of the 4 or 16 address bytes, 0 for other families. */
uint64_t flb_client_key(const union flb_sockaddr *sa);

/* Count a new connection attempt on a server, enforcing max_conn exactly
 * across workers (add first, undo if over).  Returns 1 if taken, 0 if full. */
static inline int flb_srv_acquire(const struct flb_server *sv)
{
	uint32_t n = atomic_fetch_add_explicit(&sv->sh->active, 1, memory_order_relaxed);

	if (sv->maxconn != 0 && n >= sv->maxconn) {
		atomic_fetch_sub_explicit(&sv->sh->active, 1, memory_order_relaxed);
		return 0;
	}
	return 1;
}

/* Uncount a connection counted by flb_srv_acquire.  sv: the server. */
static inline void flb_srv_put(const struct flb_server *sv)
{
	atomic_fetch_sub_explicit(&sv->sh->active, 1, memory_order_relaxed);
}

/* Record a failed connect for passive health.
 * sv: the server; b: its backend; now_ms: monotonic ms.
 * Returns 1 when this failure took the server out (max_fails consecutive
 * failures, and it was not out already), else 0. */
int flb_srv_failed(const struct flb_server *sv, const struct flb_backend *b, uint64_t now_ms);

/* Record a successful connect: resets the failure count (written only when
 * it was nonzero, so the common case reads the line and writes nothing).
 * sv: the server. */
static inline void flb_srv_succeeded(const struct flb_server *sv)
{
	if (atomic_load_explicit(&sv->sh->fails, memory_order_relaxed) != 0)
		atomic_store_explicit(&sv->sh->fails, 0, memory_order_relaxed);
}

#endif /* FLB_BALANCE_H */
