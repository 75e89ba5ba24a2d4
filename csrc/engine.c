/* engine.c: engine life cycle, worker threads and their event loops,
 * listener handling (accept, limits, pauses) and snapshot adoption.
 *
 * Threads.  The control thread (whoever calls flb_engine_*; the Python
 * binding releases the GIL around these calls) builds and publishes
 * snapshots; N worker pthreads each run one epoll loop over their own
 * SO_REUSEPORT listener sockets and the connections they accepted.  A
 * connection never moves between workers.  Workers never call back into
 * the control side and never block except in epoll_wait.
 *
 * Control -> worker.  Each worker has a mailbox (engine-t.h): an atomic
 * pending-snapshot pointer, a command word and an eventfd registered in its
 * epoll.  Publishing a snapshot is an atomic exchange plus an eventfd write;
 * the worker adopts it at the end of its current event batch (so no event of
 * the batch can refer to a listener the adoption closes).  Nothing waits:
 * a worker busy with a long batch adopts a little later, and a snapshot
 * published twice before it looked is simply replaced (and released).
 *
 * Reclamation.  See flb_wsnap in engine-t.h: a worker holds one reference per
 * snapshot it still uses and counts its connections per snapshot locally.
 * Connections keep the snapshot they started on (listener settings, backend,
 * server), so an update never touches an established connection.
 *
 * Listeners.  The control thread binds every socket of a new listener
 * before publishing (errors reach the caller, nothing changes); a worker
 * adopting a snapshot registers the sockets of listeners new to it and
 * closes its own socket of listeners the snapshot dropped.  A listener kept
 * across snapshots keeps its sockets: no rebind, no accept gap.  Connection
 * limits are enforced by reserving a slot in the global and listener counts
 * before accept(2); at a limit the worker takes the socket out of its epoll
 * (the kernel backlog holds new clients) and re-arms it when one of its own
 * connections closes or, for closes on other workers, from a short timer. */
#define _GNU_SOURCE
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "balance.h"
#include "compiler.h"
#include "alog.h"
#include "conn.h"
#include "engine.h"
#include "h1proxy.h"
#include "pool.h"
#include "stats.h"
#include "timer.h"

/* epoll data tags (low 3 bits of the pointer; every tagged object is at
 * least 8-byte aligned): 0 and 1 are the client and server sides of a
 * connection, 2 a listener slot, 3 the eventfd, FLB_TAG_UP (4) an upstream
 * connection of the http mode. */
#define TAG_LSN 2u
#define TAG_CTL 3u
#define TAG_MASK 7u

#define MAX_EVENTS        256
#define LIMIT_RECHECK_MS  20    /* re-check a limit reached through other workers */
#define EMFILE_BACKOFF_MS 100   /* pause after accept ran out of fds */
#define TIMERS_PER_LOOP   4096
#define ADOPT_WAIT_MS     2000  /* bound on waiting for workers to adopt */

/* Monotonic clock in ms (contract in engine.h). */
uint64_t flb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Monotonic clock in µs (contract in engine.h). */
uint64_t flb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Default settings (contract in engine.h). */
void flb_engine_params_default(struct flb_engine_params *p)
{
	p->workers = 1;
	p->max_conns = 1u << 20;
	p->max_pipes = 1024;
	p->max_free_pipes = 64;
	p->max_bufs = 1024;
	p->max_free_bufs = 128;
	p->max_free_conns = 256;
	p->accept_batch = 64;
	p->backlog = 4096;
	p->no_splice = 0;
}

/* ---- worker side ---------------------------------------------------- */

/* Free a wsnap: its balancing state and its snapshot reference. */
static void wsnap_free(struct flb_wsnap *ws)
{
	flb_balance_state_free(&ws->bal);
	flb_snapshot_release(ws->snap);
	free(ws);
}

/* Drop a connection's use of ws (contract in engine.h). */
void flb_worker_wsnap_put(struct flb_worker *w, struct flb_wsnap *ws)
{
	struct flb_wsnap **pp;

	if (--ws->nconns != 0 || ws->current)
		return;
	for (pp = &w->old; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ws) {
			*pp = ws->next;
			break;
		}
	}
	wsnap_free(ws);
}

/* Whether listener l of snapshot s may take one more connection now. */
static int lsn_has_room(struct flb_worker *w, const struct flb_snapshot *s,
                        const struct flb_listener *l)
{
	if (s->maxconn && atomic_load_explicit(&w->eng->active, memory_order_relaxed) >= s->maxconn)
		return 0;
	if (l->maxconn &&
	    atomic_load_explicit(&l->sock->active, memory_order_relaxed) >= l->maxconn)
		return 0;
	return 1;
}

/* Register a listener slot in the worker's epoll if it is open, not paused
 * and the worker is not stopping.  Returns 0 or -1. */
static int lsn_register(struct flb_worker *w, struct flb_lsock_slot *slot)
{
	struct epoll_event ev;

	if (slot->reg || slot->paused || slot->fd < 0 || w->stopping)
		return 0;
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)(uintptr_t)slot | TAG_LSN;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, slot->fd, &ev) < 0)
		return -1;
	slot->reg = 1;
	return 0;
}

/* Take a listener slot out of the worker's epoll (it stays open). */
static void lsn_unregister(struct flb_worker *w, struct flb_lsock_slot *slot)
{
	if (slot->reg)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, slot->fd, NULL);
	slot->reg = 0;
}

/* Stop accepting on a slot for a while.  why: FLB_LPAUSE_*; ms: when to
 * look again. */
static void lsn_pause(struct flb_worker *w, struct flb_lsock_slot *slot, uint8_t why,
                      uint32_t ms)
{
	lsn_unregister(w, slot);
	if ((why & FLB_LPAUSE_LIMIT) && !(slot->paused & FLB_LPAUSE_LIMIT))
		w->npaused_limit++;
	slot->paused |= why;
	/* If the heap cannot grow, the next local close re-checks limits; an
	 * error pause then waits for the next snapshot or close. */
	(void)flb_timer_arm(&w->timers, &slot->tmr, w->now_ms + ms);
}

/* Clear the limit pause of a slot if there is room again; re-register it
 * when no pause remains.  s, l: the current snapshot and the slot's
 * listener in it. */
static void lsn_recheck(struct flb_worker *w, struct flb_lsock_slot *slot,
                        const struct flb_snapshot *s, const struct flb_listener *l)
{
	if ((slot->paused & FLB_LPAUSE_LIMIT) && lsn_has_room(w, s, l)) {
		slot->paused &= (uint8_t)~FLB_LPAUSE_LIMIT;
		w->npaused_limit--;
	}
	if (slot->paused == 0) {
		flb_timer_cancel(&w->timers, &slot->tmr);
		lsn_register(w, slot);
	}
}

/* Pause timer of a listener slot: end an error back-off, re-check limits. */
static void lsn_timer_cb(struct flb_timer *t, void *ctx)
{
	struct flb_worker *w = ctx;
	struct flb_lsock_slot *slot = flb_container_of(t, struct flb_lsock_slot, tmr);
	const struct flb_snapshot *s = w->cur->snap;

	slot->paused &= (uint8_t)~FLB_LPAUSE_ERR;
	lsn_recheck(w, slot, s, &s->lsn[slot->cur]);
	if (slot->paused)
		(void)flb_timer_arm(&w->timers, &slot->tmr, w->now_ms + LIMIT_RECHECK_MS);
}

/* A connection closed (contract in engine.h). */
void flb_worker_conn_closed(struct flb_worker *w)
{
	const struct flb_snapshot *s;

	if (w->npaused_limit == 0 || w->cur == NULL)
		return;
	s = w->cur->snap;
	for (uint32_t i = 0; i < s->nlsn && w->npaused_limit; i++) {
		struct flb_lsock_slot *slot = &s->lsn[i].sock->slots[w->id];

		if (slot->paused & FLB_LPAUSE_LIMIT)
			lsn_recheck(w, slot, s, &s->lsn[i]);
	}
}

/* Out of descriptors while serving listener l (contract in engine.h). */
void flb_worker_fd_pressure(struct flb_worker *w, const struct flb_listener *l)
{
	struct flb_lsock_slot *slot = &l->sock->slots[w->id];

	if (slot->fd < 0 || (slot->paused & FLB_LPAUSE_ERR))
		return;
	flb_ctr_add(&w->c.emfile_pauses, 1);
	lsn_pause(w, slot, FLB_LPAUSE_ERR, EMFILE_BACKOFF_MS);
}

/* Close this worker's socket of a listener for good. */
static void lsn_close(struct flb_worker *w, struct flb_lsock_slot *slot)
{
	flb_timer_cancel(&w->timers, &slot->tmr);
	lsn_unregister(w, slot);
	if (slot->paused & FLB_LPAUSE_LIMIT)
		w->npaused_limit--;
	slot->paused = 0;
	if (slot->fd >= 0)
		close(slot->fd);
	slot->fd = -1;
}

/* Reserve a connection in the global and listener counts, or fail at a
 * limit.  Returns 1 when reserved. */
static int reserve(struct flb_worker *w, const struct flb_snapshot *s,
                   const struct flb_listener *l)
{
	uint32_t g = atomic_fetch_add_explicit(&w->eng->active, 1, memory_order_relaxed);
	uint32_t a;

	if (s->maxconn && g >= s->maxconn) {
		atomic_fetch_sub_explicit(&w->eng->active, 1, memory_order_relaxed);
		return 0;
	}
	a = atomic_fetch_add_explicit(&l->sock->active, 1, memory_order_relaxed);
	if (l->maxconn && a >= l->maxconn) {
		atomic_fetch_sub_explicit(&l->sock->active, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&w->eng->active, 1, memory_order_relaxed);
		return 0;
	}
	return 1;
}

/* Undo reserve().  l: the listener. */
static void unreserve(struct flb_worker *w, const struct flb_listener *l)
{
	atomic_fetch_sub_explicit(&l->sock->active, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&w->eng->active, 1, memory_order_relaxed);
}

/* A listener socket is readable: accept a batch of clients. */
static void lsn_accept(struct flb_worker *w, struct flb_lsock_slot *slot)
{
	const struct flb_snapshot *s = w->cur->snap;
	const struct flb_listener *l = &s->lsn[slot->cur];

	for (uint32_t k = 0; k < w->eng->p.accept_batch; k++) {
		union flb_sockaddr peer;
		socklen_t plen = sizeof(peer);
		struct flb_conn *c;
		int fd;

		if (!reserve(w, s, l)) {
			flb_ctr_add(&slot->c.limit_pauses, 1);
			flb_ctr_add(&w->c.limit_pauses, 1);
			lsn_pause(w, slot, FLB_LPAUSE_LIMIT, LIMIT_RECHECK_MS);
			return;
		}
		fd = accept4(slot->fd, &peer.sa, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			unreserve(w, l);
			if (e == EAGAIN)
				return;
			if (e == EINTR || e == ECONNABORTED)
				continue;
			flb_ctr_add(&slot->c.accept_errors, 1);
			flb_ctr_add(&w->c.accept_errors, 1);
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				flb_ctr_add(&w->c.emfile_pauses, 1);
				lsn_pause(w, slot, FLB_LPAUSE_ERR, EMFILE_BACKOFF_MS);
			}
			return;
		}
		c = flb_conn_new(w, fd, w->cur, l, &peer);
		if (c == NULL) {
			/* Connection structs exhausted (params.max_conns). */
			unreserve(w, l);
			flb_ctr_add(&slot->c.accept_errors, 1);
			flb_ctr_add(&w->c.accept_errors, 1);
			lsn_pause(w, slot, FLB_LPAUSE_ERR, EMFILE_BACKOFF_MS);
			return;
		}
		c->ops->start(w, c, &peer);
	}
}

/* Switch the worker to snapshot s (whose reference it now owns): register
 * listeners new to it, close its sockets of listeners s dropped, and retire
 * the previous snapshot (freed once its last connection closes). */
static void worker_adopt(struct flb_worker *w, struct flb_snapshot *s)
{
	struct flb_wsnap *ws = calloc(1, sizeof(*ws)), *old = w->cur;

	w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull;
	if (ws == NULL || flb_balance_state_init(&ws->bal, s, w->rng | 1) < 0) {
		/* Out of memory: stay on the current snapshot. */
		free(ws);
		flb_snapshot_release(s);
		return;
	}
	ws->snap = s;
	ws->current = 1;
	for (uint32_t i = 0; i < s->nlsn; i++) {
		struct flb_lsock_slot *slot = &s->lsn[i].sock->slots[w->id];

		slot->cur = i;
		slot->seen_gen = s->gen;
		slot->tmr.cb = lsn_timer_cb;
		lsn_register(w, slot);
	}
	w->cur = ws;
	if (old != NULL) {
		const struct flb_snapshot *os = old->snap;

		for (uint32_t i = 0; i < os->nlsn; i++) {
			struct flb_lsock_slot *slot = &os->lsn[i].sock->slots[w->id];

			if (slot->seen_gen != s->gen)
				lsn_close(w, slot);
		}
		old->current = 0;
		if (old->nconns == 0) {
			wsnap_free(old);
		} else {
			old->next = w->old;
			w->old = old;
		}
	}
	/* Limits may have changed: look at paused listeners again. */
	for (uint32_t i = 0; i < s->nlsn; i++) {
		struct flb_lsock_slot *slot = &s->lsn[i].sock->slots[w->id];

		if (slot->paused & FLB_LPAUSE_LIMIT)
			lsn_recheck(w, slot, s, &s->lsn[i]);
	}
	flb_ctr_add(&w->c.snapshots, 1);
	atomic_store_explicit(&w->adopted_gen, s->gen, memory_order_release);
}

/* Start draining: close every listener socket of this worker. */
static void worker_begin_stop(struct flb_worker *w)
{
	struct flb_list *n, *next;

	w->stopping = 1;
	if (w->cur == NULL)
		return;
	for (uint32_t i = 0; i < w->cur->snap->nlsn; i++)
		lsn_close(w, &w->cur->snap->lsn[i].sock->slots[w->id]);
	/* Tell the connections (an idle keep-alive client closes now). */
	for (n = w->live.next; n != &w->live; n = next) {
		struct flb_conn *c = flb_container_of(n, struct flb_conn, node);

		next = n->next;
		if (c->ops->drain != NULL)
			c->ops->drain(w, c);
	}
}

/* Read the mailbox: adopt a pending snapshot, begin a stop. */
static void worker_control(struct flb_worker *w)
{
	uint64_t v;
	struct flb_snapshot *s;

	if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		v = 0;
	s = atomic_exchange_explicit(&w->pending, NULL, memory_order_acq_rel);
	if (s != NULL) {
		if (w->stopping)
			flb_snapshot_release(s);
		else
			worker_adopt(w, s);
	}
	if ((atomic_load_explicit(&w->cmd, memory_order_acquire) & FLB_WCMD_STOP) && !w->stopping)
		worker_begin_stop(w);
}

/* Release everything the worker thread owns (after its loop). */
static void worker_cleanup(struct flb_worker *w)
{
	struct flb_snapshot *s;

	while (!flb_list_empty(&w->live))
		flb_conn_close(w, flb_container_of(w->live.next, struct flb_conn, node), 0);
	flb_conn_free_dead(w);
	flb_h1_worker_cleanup(w);
	if (w->cur != NULL) {
		for (uint32_t i = 0; i < w->cur->snap->nlsn; i++)
			lsn_close(w, &w->cur->snap->lsn[i].sock->slots[w->id]);
		w->cur->current = 0;
		if (w->cur->nconns == 0)
			wsnap_free(w->cur);
		w->cur = NULL;
	}
	while (w->old != NULL) {
		/* Unreachable after closing every connection; kept for safety. */
		struct flb_wsnap *ws = w->old;

		w->old = ws->next;
		wsnap_free(ws);
	}
	s = atomic_exchange_explicit(&w->pending, NULL, memory_order_acq_rel);
	flb_snapshot_release(s);
	flb_timers_free(&w->timers);
	flb_pipe_pool_free(&w->pipes);
	flb_buf_pool_free(&w->bufs);
	flb_obj_pool_free(&w->conns);
	flb_obj_pool_free(&w->h1s);
	flb_obj_pool_free(&w->ups);
	flb_obj_pool_free(&w->sbufs);
}

#define TRIM_MIN_PEAK 1024      /* connections: smaller crowds are not worth a trim */
#define TRIM_EVERY_MS 250

/* Give memory back to the system after a crowd of connections left (an
 * attack of slow clients, a spike): the pools keep only max_free idle
 * objects, but what they free stays in the heap unless trimmed.  Once the
 * worker's connections fall to half the most it had since the last trim
 * (at least TRIM_MIN_PEAK), malloc_trim runs once, at most every
 * TRIM_EVERY_MS.  w: the worker. */
static void worker_trim(struct flb_worker *w)
{
	if (w->nconns > w->conn_peak)
		w->conn_peak = w->nconns;
	if (w->conn_peak < TRIM_MIN_PEAK || w->nconns > w->conn_peak / 2 || w->now_ms < w->trim_at)
		return;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	w->conn_peak = w->nconns;
	w->trim_at = w->now_ms + TRIM_EVERY_MS;
}

/* A worker thread: one epoll loop until stopped and drained.
 * arg: the struct flb_worker.  Returns NULL. */
static void *worker_main(void *arg)
{
	struct flb_worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];

	w->now_ms = flb_now_ms();
	worker_control(w);
	for (;;) {
		int32_t timeout = flb_timers_next(&w->timers, w->now_ms);
		uint64_t deadline = 0;
		int n, ctl = 0;

		if (w->stopping) {
			deadline = atomic_load_explicit(&w->drain_deadline, memory_order_relaxed);
			if (w->nconns == 0 || w->now_ms >= deadline)
				break;
			if (timeout < 0 || (uint64_t)timeout > deadline - w->now_ms)
				timeout = (int32_t)(deadline - w->now_ms);
		}
		n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
		w->now_ms = flb_now_ms();
		flb_ctr_add(&w->c.loops, 1);
		for (int i = 0; i < n; i++) {
			uint64_t u = evs[i].data.u64;
			unsigned tag = (unsigned)(u & TAG_MASK);
			void *p = (void *)(uintptr_t)(u & ~(uint64_t)TAG_MASK);

			if (tag == TAG_CTL) {
				ctl = 1; /* after the batch: see the top of this file */
			} else if (tag == TAG_LSN) {
				struct flb_lsock_slot *slot = p;

				if (slot->reg)
					lsn_accept(w, slot);
			} else if (tag == FLB_TAG_UP) {
				flb_h1_up_io(w, p, evs[i].events);
			} else {
				struct flb_conn *c = p;

				if (c->state != FLB_CS_DEAD)
					c->ops->io(w, c, (int)tag, evs[i].events);
			}
		}
		flb_timers_run(&w->timers, w->now_ms, w, TIMERS_PER_LOOP);
		flb_conn_run_waiters(w);
		flb_conn_free_dead(w);
		worker_trim(w);
		if (ctl)
			worker_control(w);
	}
	worker_cleanup(w);
	return NULL;
}

/* ---- control side ----------------------------------------------------- */

/* Ring a worker's doorbell. */
static void worker_wake(struct flb_worker *w)
{
	uint64_t one = 1;

	if (write(w->evfd, &one, sizeof(one)) < 0) {
		/* Only EAGAIN (counter saturated) is possible: it is awake anyway. */
	}
}

/* Wait until every running worker runs on generation gen or a later one,
 * for up to timeout_ms (workers adopt at the end of their event batch, so
 * this is normally well under a millisecond).  Only the control thread
 * waits; workers are never blocked.  Returns 1 if all did, 0 on timeout. */
static int wait_adopted(struct flb_engine *e, uint64_t gen, uint32_t timeout_ms)
{
	uint64_t end = flb_now_ms() + timeout_ms;
	struct timespec pause = { .tv_sec = 0, .tv_nsec = 100000 };

	for (;;) {
		uint32_t done = 0;

		for (uint32_t i = 0; i < e->p.workers; i++) {
			struct flb_worker *w = &e->workers[i];

			if (!w->started ||
			    atomic_load_explicit(&w->adopted_gen, memory_order_acquire) >= gen)
				done++;
		}
		if (done == e->p.workers)
			return 1;
		if (flb_now_ms() >= end)
			return 0;
		nanosleep(&pause, NULL);
	}
}

/* Close the epoll and eventfd descriptors of the first n workers, then
 * free the workers, the mutex and the engine.  e: a stopped engine. */
static void engine_release(struct flb_engine *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (e->workers[i].epfd >= 0)
			close(e->workers[i].epfd);
		if (e->workers[i].evfd >= 0)
			close(e->workers[i].evfd);
	}
	free(e->workers);
	pthread_mutex_destroy(&e->ctl);
	free(e);
}

/* Create an engine (contract in engine.h). */
struct flb_engine *flb_engine_new(const struct flb_engine_params *p, char *err, size_t errlen)
{
	struct flb_engine *e;
	size_t esz = (sizeof(*e) + FLB_CACHELINE - 1) & ~(size_t)(FLB_CACHELINE - 1);
	size_t wsz;

	e = aligned_alloc(FLB_CACHELINE, esz);
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(e, 0, esz);
	if (p != NULL)
		e->p = *p;
	else
		flb_engine_params_default(&e->p);
	if (e->p.workers == 0 || e->p.workers > 1024) {
		snprintf(err, errlen, "workers must be in 1..1024");
		free(e);
		return NULL;
	}
	if (e->p.accept_batch == 0)
		e->p.accept_batch = 1;
	if (e->p.backlog <= 0)
		e->p.backlog = 4096;
	atomic_init(&e->active, 0);
	pthread_mutex_init(&e->ctl, NULL);
	wsz = (size_t)e->p.workers * sizeof(struct flb_worker);
	e->workers = aligned_alloc(FLB_CACHELINE, wsz);
	if (e->workers == NULL) {
		snprintf(err, errlen, "out of memory");
		pthread_mutex_destroy(&e->ctl);
		free(e);
		return NULL;
	}
	memset(e->workers, 0, wsz);
	for (uint32_t i = 0; i < e->p.workers; i++) {
		struct flb_worker *w = &e->workers[i];
		struct epoll_event ev;

		w->eng = e;
		w->id = i;
		w->rng = (flb_now_us() ^ ((uint64_t)i << 32)) | 1;
		w->rid_salt = (uint32_t)(w->rng * 0x9e3779b97f4a7c15ull >> 32);
		atomic_init(&w->pending, NULL);
		atomic_init(&w->cmd, 0);
		atomic_init(&w->drain_deadline, 0);
		atomic_init(&w->adopted_gen, 0);
		flb_timers_init(&w->timers);
		flb_pipe_pool_init(&w->pipes, e->p.max_pipes, e->p.max_free_pipes);
		flb_buf_pool_init(&w->bufs, e->p.max_bufs, e->p.max_free_bufs);
		flb_obj_pool_init(&w->conns, sizeof(struct flb_conn), e->p.max_conns,
		                  e->p.max_free_conns);
		flb_obj_pool_init(&w->h1s, sizeof(struct flb_h1), e->p.max_conns,
		                  e->p.max_free_conns);
		flb_obj_pool_init(&w->ups, sizeof(struct flb_upconn), e->p.max_conns,
		                  e->p.max_free_conns);
		/* At most three per http connection: a parked head or the log
		 * copies, and the request kept for a retry. */
		flb_obj_pool_init(&w->sbufs, FLB_SBUF_SIZE,
		                  e->p.max_conns > UINT32_MAX / 3 ? UINT32_MAX : e->p.max_conns * 3,
		                  e->p.max_free_bufs);
		flb_list_init(&w->upidle);
		flb_list_init(&w->updead);
		flb_list_init(&w->live);
		flb_list_init(&w->dead);
		flb_list_init(&w->waitq);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ev.events = EPOLLIN;
		ev.data.u64 = TAG_CTL;
		if (w->epfd < 0 || w->evfd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
			snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
			engine_release(e, i + 1);
			return NULL;
		}
	}
	e->state = FLB_ENG_NEW;
	return e;
}

/* Stop and join the workers that were started (lock held). */
static void stop_locked(struct flb_engine *e, uint32_t drain_ms)
{
	uint64_t deadline = flb_now_ms() + drain_ms;

	for (uint32_t i = 0; i < e->p.workers; i++) {
		struct flb_worker *w = &e->workers[i];

		if (!w->started)
			continue;
		atomic_store_explicit(&w->drain_deadline, deadline, memory_order_relaxed);
		atomic_fetch_or_explicit(&w->cmd, FLB_WCMD_STOP, memory_order_release);
		worker_wake(w);
	}
	for (uint32_t i = 0; i < e->p.workers; i++) {
		struct flb_worker *w = &e->workers[i];

		if (w->started)
			pthread_join(w->thr, NULL);
		w->started = 0;
		/* A snapshot published to a worker that never ran. */
		flb_snapshot_release(atomic_exchange(&w->pending, NULL));
		/* A stopped engine holds no descriptor. */
		close(w->epfd);
		close(w->evfd);
		w->epfd = w->evfd = -1;
	}
	/* The workers are gone: let the access logs write what they pushed. */
	for (uint32_t i = 0; e->cur != NULL && i < e->cur->nlsn; i++) {
		const struct flb_http_lsn *h = e->cur->lsn[i].http;

		if (h != NULL && h->alog != NULL)
			flb_alog_sync(h->alog, 1000);
	}
	e->state = FLB_ENG_STOPPED;
}

/* Start the workers (contract in engine.h). */
int flb_engine_start(struct flb_engine *e, struct flb_snap_builder *b, char *err, size_t errlen)
{
	struct flb_snapshot *s;
	sigset_t all, old;
	int rc;

	pthread_mutex_lock(&e->ctl);
	if (e->state != FLB_ENG_NEW) {
		flb_snap_builder_free(b);
		snprintf(err, errlen, "engine already started");
		pthread_mutex_unlock(&e->ctl);
		return -EINVAL;
	}
	rc = flb_snap_seal(b, NULL, e->p.workers, ++e->gen, &s, err, errlen);
	if (rc == 0) {
		rc = flb_snap_bind(s, e->p.backlog, err, errlen);
		if (rc != 0)
			flb_snapshot_release(s);
	}
	if (rc != 0) {
		pthread_mutex_unlock(&e->ctl);
		return rc;
	}
	e->cur = s;
	for (uint32_t i = 0; i < e->p.workers; i++) {
		flb_snapshot_ref(s);
		atomic_store_explicit(&e->workers[i].pending, s, memory_order_release);
	}
	/* Workers block every signal: signals go to the embedding process's
	 * threads, and a SIGPIPE raised by splice(2) on a dead peer is only
	 * left pending on the worker (send() uses MSG_NOSIGNAL). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (uint32_t i = 0; i < e->p.workers && rc == 0; i++) {
		rc = -pthread_create(&e->workers[i].thr, NULL, worker_main, &e->workers[i]);
		if (rc == 0)
			e->workers[i].started = 1;
		else
			snprintf(err, errlen, "pthread_create: %s", strerror(-rc));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	e->state = FLB_ENG_RUNNING;
	if (rc != 0)
		stop_locked(e, 0);
	else
		(void)wait_adopted(e, s->gen, ADOPT_WAIT_MS);
	pthread_mutex_unlock(&e->ctl);
	return rc;
}

/* Publish a new configuration (contract in engine.h). */
int flb_engine_update(struct flb_engine *e, struct flb_snap_builder *b, char *err, size_t errlen)
{
	struct flb_snapshot *s;
	int rc;

	pthread_mutex_lock(&e->ctl);
	if (e->state != FLB_ENG_RUNNING) {
		flb_snap_builder_free(b);
		snprintf(err, errlen, "engine not running");
		pthread_mutex_unlock(&e->ctl);
		return -EINVAL;
	}
	rc = flb_snap_seal(b, e->cur, e->p.workers, ++e->gen, &s, err, errlen);
	if (rc == 0) {
		rc = flb_snap_bind(s, e->p.backlog, err, errlen);
		if (rc != 0)
			flb_snapshot_release(s);
	}
	if (rc != 0) {
		pthread_mutex_unlock(&e->ctl);
		return rc;
	}
	for (uint32_t i = 0; i < e->p.workers; i++) {
		struct flb_worker *w = &e->workers[i];
		struct flb_snapshot *prev;

		flb_snapshot_ref(s);
		prev = atomic_exchange_explicit(&w->pending, s, memory_order_acq_rel);
		flb_snapshot_release(prev);
		worker_wake(w);
	}
	flb_snapshot_release(e->cur);
	e->cur = s;
	(void)wait_adopted(e, s->gen, ADOPT_WAIT_MS);
	pthread_mutex_unlock(&e->ctl);
	return 0;
}

/* Stop with a drain (contract in engine.h). */
int flb_engine_stop(struct flb_engine *e, uint32_t drain_ms)
{
	pthread_mutex_lock(&e->ctl);
	if (e->state != FLB_ENG_RUNNING) {
		pthread_mutex_unlock(&e->ctl);
		return -EINVAL;
	}
	stop_locked(e, drain_ms);
	pthread_mutex_unlock(&e->ctl);
	return 0;
}

/* Free the engine (contract in engine.h). */
void flb_engine_free(struct flb_engine *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&e->ctl);
	if (e->state == FLB_ENG_RUNNING)
		stop_locked(e, 0);
	flb_snapshot_release(e->cur);
	e->cur = NULL;
	pthread_mutex_unlock(&e->ctl);
	/* Access-log writers finish draining on their own threads; give them
	 * a bounded moment so the last lines reach the file. */
	flb_alog_wait_closed(2000);
	engine_release(e, e->p.workers);
}

/* Current snapshot, referenced (contract in engine.h). */
struct flb_snapshot *flb_engine_snapshot(struct flb_engine *e)
{
	struct flb_snapshot *s;

	pthread_mutex_lock(&e->ctl);
	s = e->cur;
	if (s != NULL)
		flb_snapshot_ref(s);
	pthread_mutex_unlock(&e->ctl);
	return s;
}

/* Sum a listener's counters (contract in engine.h). */
void flb_listener_stats(const struct flb_listener *l, struct flb_lsn_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t w = 0; w < l->sock->nworkers; w++)
		flb_lsn_ctr_sum(out, &l->sock->slots[w].c);
}

/* Sum a server's counters (contract in engine.h). */
void flb_server_stats(const struct flb_server *sv, struct flb_srv_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t w = 0; w < sv->sh->nworkers; w++)
		flb_srv_ctr_sum(out, &sv->sh->slots[w].c);
}

/* Read a worker's counters (contract in engine.h). */
int flb_engine_worker_stats(struct flb_engine *e, uint32_t i, struct flb_wrk_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= e->p.workers)
		return -EINVAL;
	flb_wrk_ctr_sum(out, &e->workers[i].c);
	return 0;
}

/* Open connections (contract in engine.h). */
uint32_t flb_engine_active(struct flb_engine *e)
{
	return atomic_load_explicit(&e->active, memory_order_relaxed);
}

/* Reopen the access logs (contract in engine.h). */
int flb_engine_reopen_logs(struct flb_engine *e)
{
	int n = 0;

	pthread_mutex_lock(&e->ctl);
	for (uint32_t i = 0; e->cur != NULL && i < e->cur->nlsn; i++) {
		const struct flb_http_lsn *h = e->cur->lsn[i].http;

		if (h != NULL && h->alog != NULL && flb_alog_reopen(h->alog) == 0)
			n++;
	}
	pthread_mutex_unlock(&e->ctl);
	return n;
}

/* Passive-health state of a server (contract in engine.h). */
int flb_server_health_out(const struct flb_server *sv, const struct flb_backend *b)
{
	return b->max_fails != 0 &&
	       atomic_load_explicit(&sv->sh->fails, memory_order_relaxed) >= b->max_fails &&
	       flb_now_ms() < atomic_load_explicit(&sv->sh->down_until, memory_order_relaxed);
}
