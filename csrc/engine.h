/* engine.h: the engine's public C API (control thread) and the few worker
 * helpers the connection code calls.  Types in engine-t.h.
 *
 * Control-thread calls are serialised by an internal mutex and may come from
 * any thread; they wait for workers only in flb_engine_stop (joins) and,
 * briefly and bounded, for the adoption of a new snapshot (start, update).
 * Error returns are negative errno values with a message in err. */
#ifndef FLB_ENGINE_H
#define FLB_ENGINE_H

#include <stddef.h>

#include "engine-t.h"
#include "snapshot.h"

/* Fill p with the defaults (1 worker, 1<<20 connections, 1024 pipes and
 * 1024 buffers in use, 64 idle pipes, 16 idle buffers, 256 idle connection
 * structs, accept batch 64, backlog 4096 per worker, splice on). */
void flb_engine_params_default(struct flb_engine_params *p);

/* Create an engine (workers not started).  p: settings (NULL: defaults).
 * Returns the engine or NULL (message in err). */
struct flb_engine *flb_engine_new(const struct flb_engine_params *p, char *err, size_t errlen);

/* Seal b, bind its listeners and start the workers on it.  Consumes b.
 * Returns 0; -EINVAL (bad config or not a new engine), -EADDRINUSE and other
 * bind errors, -ENOMEM, or the pthread_create error; nothing runs then. */
int flb_engine_start(struct flb_engine *e, struct flb_snap_builder *b, char *err, size_t errlen);

/* Swap in a new configuration.  Seals b against the current snapshot
 * (listeners with the same name and address keep their sockets, servers
 * with the same id keep their state and counters), binds new listeners,
 * then publishes the snapshot to every worker.  The workers are never
 * blocked: each adopts it at the end of its current event batch, and this
 * call (on the control thread) waits for that, up to 2 s, so that
 * connections accepted after it returns use the new configuration.
 * Connections keep running on the snapshot they started on.  Consumes b.
 * Returns 0, or a negative errno with nothing changed. */
int flb_engine_update(struct flb_engine *e, struct flb_snap_builder *b, char *err, size_t errlen);

/* Stop: workers close their listeners at once, let connections finish for
 * up to drain_ms, close the rest, exit; then the threads are joined.
 * Blocks up to about drain_ms.  Afterwards the engine holds no descriptor
 * and no worker memory; only the last snapshot is kept, for its counters,
 * until flb_engine_free.  Returns 0, or -EINVAL if not running. */
int flb_engine_stop(struct flb_engine *e, uint32_t drain_ms);

/* Stop (without drain) if running and free everything.  e: or NULL. */
void flb_engine_free(struct flb_engine *e);

/* Returns the current snapshot with a reference taken (release with
 * flb_snapshot_release), or NULL before start.  After a stop it is the last
 * one, kept (listeners closed) so final counters can still be read. */
struct flb_snapshot *flb_engine_snapshot(struct flb_engine *e);

/* Sum the counters of a listener over its worker slots into out (zeroed
 * first).  l: a listener of a snapshot held by the caller. */
void flb_listener_stats(const struct flb_listener *l, struct flb_lsn_stats *out);

/* Sum the counters of a server over its worker slots into out (zeroed
 * first).  sv: a server of a snapshot held by the caller. */
void flb_server_stats(const struct flb_server *sv, struct flb_srv_stats *out);

/* Read worker i's counters into out (zeroed first).  Returns 0 or -EINVAL. */
int flb_engine_worker_stats(struct flb_engine *e, uint32_t i, struct flb_wrk_stats *out);

/* Returns the number of connections open over all workers. */
uint32_t flb_engine_active(struct flb_engine *e);

/* Ask the access logs of the current snapshot to reopen their files (log
 * rotation: their writer threads reopen at their next turn).
 * Returns how many logs were asked (a log shared by listeners counts once
 * per listener; "-" is never reopened). */
int flb_engine_reopen_logs(struct flb_engine *e);

/* Whether server sv is currently out for passive health.
 * Returns nonzero if it is. */
int flb_server_health_out(const struct flb_server *sv, const struct flb_backend *b);

/* Returns the monotonic clock in milliseconds. */
uint64_t flb_now_ms(void);

/* Returns the monotonic clock in microseconds. */
uint64_t flb_now_us(void);

/* Worker helper for conn.c: drop one connection's use of ws; the last use
 * of a non-current wsnap releases its snapshot. */
void flb_worker_wsnap_put(struct flb_worker *w, struct flb_wsnap *ws);

/* Worker helper for conn.c: a connection closed; re-arm listeners paused
 * on a connection limit if there is room again. */
void flb_worker_conn_closed(struct flb_worker *w);

/* Worker helper for conn.c: the process ran out of descriptors or memory
 * while serving a connection of listener l (e.g. socket(2) for the server
 * side failed with EMFILE): pause accepting on l like an accept(2) EMFILE. */
void flb_worker_fd_pressure(struct flb_worker *w, const struct flb_listener *l);

#endif /* FLB_ENGINE_H */
