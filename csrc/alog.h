/* alog.h: the access log of the HTTP proxy mode.  Types and bounds in
 * alog-t.h; design notes at the top of alog.c.
 *
 * Threads: flb_alog_push runs on worker threads (worker i only ever pushes
 * with index i: one producer per ring); everything else may be called from
 * any thread.  A NULL sink means "access log off" wherever a sink is taken. */
#ifndef FLB_ALOG_H
#define FLB_ALOG_H

#include <stddef.h>
#include <stdint.h>

#include "alog-t.h"

/* Open a sink and start its writer thread.
 * path: a file, opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC mode 0640 (a
 * FIFO works too), or "-" for standard output (never closed).
 * format: FLB_ALOG_COMBINED or FLB_ALOG_JSON.
 * nworkers: rings to make (1..65536), one per worker thread.
 * ring_bytes: ring size per worker; 0: FLB_ALOG_RING_DEFAULT; clamped to
 * FLB_ALOG_RING_MIN..FLB_ALOG_RING_MAX and rounded up to a power of two.
 * err: message buffer (errlen bytes) on failure.
 * Returns the sink with one reference, or NULL (bad argument, the file
 * cannot be opened, out of memory, no thread). */
struct flb_alog *flb_alog_open(const char *path, int format, uint32_t nworkers,
                               uint32_t ring_bytes, char *err, size_t errlen);

/* Take a reference.  l: a live sink (or NULL: no-op).  Returns l. */
struct flb_alog *flb_alog_ref(struct flb_alog *l);

/* Drop a reference.  l: the sink, or NULL (no-op).  The last release never
 * blocks either (it may run on a worker thread): it tells the writer thread
 * to write out everything pushed, close the output and free the sink, which
 * it does on its own (see flb_alog_wait_closed).  No push may follow the
 * caller's last release. */
void flb_alog_release(struct flb_alog *l);

/* Wait until every sink whose last reference is gone has written
 * everything and freed itself (for shutdown, before process exit, and tests).
 * timeout_ms: most time to wait; < 0: no limit.
 * Returns 0, or -ETIMEDOUT with some writer still busy (e.g. stuck writing
 * to a full pipe). */
int flb_alog_wait_closed(int timeout_ms);

/* Log one request.  Runs on worker thread `worker` and never blocks, never
 * allocates, takes no lock: the record is copied into that worker's ring
 * (strings cut to their bounds), or dropped and counted when the ring lacks
 * space.  At most once per quarter ring it writes the writer's eventfd
 * (non-blocking) when the ring is half full.
 * l: the sink, or NULL (logging off: no-op), on which the caller holds a
 * reference (e.g. through its snapshot); worker: < nworkers (others are
 * ignored); r: the record, read only during the call. */
void flb_alog_push(struct flb_alog *l, uint32_t worker, const struct flb_alog_rec *r);

/* Ask the writer to reopen the path at its next turn (log rotation: after
 * the file was renamed, new lines go to a new file of the same name).
 * Safe from any thread; does not wait.  A failed reopen keeps the old file
 * and is counted in write_errors / last_errno.
 * Returns 0, or 1 for standard output (nothing to reopen). */
int flb_alog_reopen(struct flb_alog *l);

/* The path given to flb_alog_open ("-" for standard output). */
const char *flb_alog_path(const struct flb_alog *l);

/* The format (FLB_ALOG_*). */
int flb_alog_format(const struct flb_alog *l);

/* Parse a format name: "combined" or "json".  Returns FLB_ALOG_* or -1. */
int flb_alog_format_from_name(const char *name);

/* Records dropped so far because a ring was full, summed over workers. */
uint64_t flb_alog_dropped(const struct flb_alog *l);

/* Sum the sink's counters into out (overwritten).  Any thread. */
void flb_alog_get_stats(const struct flb_alog *l, struct flb_alog_stats *out);

/* Format one record as a log line, exactly as the writer does (also for
 * tests).  Strings are cut to their bounds first, as flb_alog_push does.
 * format: FLB_ALOG_*; r: the record; buf: at least FLB_ALOG_LINE_MAX bytes
 * (len).  Returns the line length, '\n' included (no NUL is written), or 0
 * when len < FLB_ALOG_LINE_MAX. */
size_t flb_alog_format_line(int format, const struct flb_alog_rec *r, char *buf, size_t len);

/* Wait until every record pushed so far has been formatted and handed to
 * write(2) (for a clean stop: the workers have stopped pushing).  Wakes the
 * writer at once.  l: the sink; timeout_ms: the bound (< 0: none).
 * Returns 0, or -ETIMEDOUT. */
int flb_alog_sync(struct flb_alog *l, int timeout_ms);

#endif /* FLB_ALOG_H */
