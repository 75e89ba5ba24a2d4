/* engine-t.h: the engine, its workers and their per-snapshot state.
 * Functions in engine.h; design notes at the top of engine.c. */
#ifndef FLB_ENGINE_T_H
#define FLB_ENGINE_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "balance-t.h"
#include "list.h"
#include "pool-t.h"
#include "snapshot-t.h"
#include "stats-t.h"
#include "timer-t.h"

/* Engine-wide settings fixed at creation. */
struct flb_engine_params {
	uint32_t workers;          /* worker threads, >= 1 */
	uint32_t max_conns;        /* connection structs per worker (bound) */
	uint32_t max_pipes;        /* pipes in use per worker */
	uint32_t max_free_pipes;   /* idle pipes kept per worker */
	uint32_t max_bufs;         /* 16 KiB buffers in use per worker */
	uint32_t max_free_bufs;    /* idle buffers kept per worker */
	uint32_t max_free_conns;   /* idle connection structs kept per worker */
	uint32_t accept_batch;     /* accepts per readiness event */
	int backlog;               /* listen(2) backlog */
	uint32_t no_splice;        /* nonzero: relay through buffers only (the
	                            * fallback path; for tests and for kernels
	                            * or sockets where splice is slow) */
};

/* A worker's handle on one snapshot: a reference on it, the number of this
 * worker's connections that started on it, and the worker's balancing
 * state for it.  The worker drops the reference once the snapshot is
 * neither its current one nor used by any of its connections: this is the
 * per-worker reclamation scheme (no atomic per connection). */
struct flb_wsnap {
	struct flb_wsnap *next;    /* the worker's list of old wsnaps */
	struct flb_snapshot *snap;
	uint32_t nconns;
	uint8_t current;
	struct flb_balance_state bal;
};

/* Commands from the control thread (flb_worker.cmd bits). */
#define FLB_WCMD_STOP 0x01

struct flb_engine;
struct flb_conn;

struct flb_worker {
	/* Set by the control thread, then read-only. */
	struct flb_engine *eng;
	uint32_t id;
	int epfd;
	int evfd;                  /* eventfd: the control thread's doorbell */
	pthread_t thr;
	uint8_t started;

	/* Mailbox from the control thread (atomics): a snapshot to adopt
	 * (exchanged, so an unread one is replaced and released), commands,
	 * and the drain deadline of a stop. */
	_Atomic(struct flb_snapshot *) pending;
	_Atomic uint32_t cmd;
	_Atomic uint64_t drain_deadline;   /* monotonic ms */
	/* Worker -> control: generation of the snapshot it runs on now. */
	_Atomic uint64_t adopted_gen;

	/* Owned by the worker thread. */
	struct flb_wsnap *cur;             /* current snapshot */
	struct flb_wsnap *old;             /* older ones still used by conns */
	struct flb_timers timers;
	struct flb_pipe_pool pipes;
	struct flb_buf_pool bufs;
	struct flb_obj_pool conns;
	struct flb_obj_pool h1s;           /* struct flb_h1 (http connections) */
	struct flb_obj_pool ups;           /* struct flb_upconn */
	struct flb_obj_pool sbufs;         /* FLB_SBUF_SIZE side buffers (http) */
	struct flb_list upidle;            /* idle upstream connections */
	struct flb_list updead;            /* closed this batch, to free */
	uint64_t rid_seq;                  /* request ids made by this worker */
	uint32_t rid_salt;                 /* random per worker start */
	struct flb_list live;              /* open connections */
	struct flb_list dead;              /* closed this batch, to free */
	struct flb_list waitq;             /* waiting for a pipe or buffer */
	uint32_t nconns;
	uint32_t conn_peak;                /* most connections since the last trim */
	uint64_t trim_at;                  /* no memory trim before this (ms) */
	uint32_t npaused_limit;            /* listener slots paused on limits */
	uint8_t stopping;
	uint64_t now_ms;                   /* loop time, monotonic */
	uint64_t rng;

	struct flb_wrk_ctr c __attribute__((aligned(FLB_CACHELINE)));
} __attribute__((aligned(FLB_CACHELINE)));

/* Engine life cycle. */
#define FLB_ENG_NEW      0
#define FLB_ENG_RUNNING  1
#define FLB_ENG_STOPPED  2

struct flb_engine {
	/* SHARED MUTABLE STATE: connections over all workers and listeners,
	 * for the global max_connections; atomic add/sub per accept and close,
	 * alone on its cache line. */
	_Atomic uint32_t active;
	char pad_[FLB_CACHELINE - 4];

	struct flb_engine_params p;
	pthread_mutex_t ctl;               /* serialises control-thread calls */
	struct flb_snapshot *cur;          /* current snapshot (one reference) */
	uint64_t gen;
	int state;                         /* FLB_ENG_* */
	struct flb_worker *workers;        /* p.workers, cache-line aligned */
};

#endif /* FLB_ENGINE_T_H */
