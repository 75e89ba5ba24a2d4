/* alog-t.h: types of the access log of the HTTP proxy mode: the record a
 * worker hands over per request, the per-field bounds, and the sink (an
 * output, a format, one ring per worker, a writer thread).  Functions in
 * alog.h; design notes at the top of alog.c. */
#ifndef FLB_ALOG_T_H
#define FLB_ALOG_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stats-t.h"

/* Line formats. */
#define FLB_ALOG_COMBINED 0   /* NGINX/Apache "combined" plus key=value fields */
#define FLB_ALOG_JSON     1   /* one JSON object per line */

/* Bounds of the string fields, in bytes.  Longer values are cut (at a UTF-8
 * character boundary when the cut would split one), so a record, and a
 * formatted line, has a bounded size. */
#define FLB_ALOG_MAX_CLIENT     64
#define FLB_ALOG_MAX_METHOD     32
#define FLB_ALOG_MAX_TARGET     2048
#define FLB_ALOG_MAX_REFERER    1024
#define FLB_ALOG_MAX_USER_AGENT 512
#define FLB_ALOG_MAX_REQUEST_ID 64
#define FLB_ALOG_MAX_LISTENER   64
#define FLB_ALOG_MAX_BACKEND    64
#define FLB_ALOG_MAX_UPSTREAM   128
#define FLB_ALOG_MAX_STRS \
	(FLB_ALOG_MAX_CLIENT + FLB_ALOG_MAX_METHOD + FLB_ALOG_MAX_TARGET + \
	 FLB_ALOG_MAX_REFERER + FLB_ALOG_MAX_USER_AGENT + FLB_ALOG_MAX_REQUEST_ID + \
	 FLB_ALOG_MAX_LISTENER + FLB_ALOG_MAX_BACKEND + FLB_ALOG_MAX_UPSTREAM)

/* Longest formatted line, '\n' included: every string byte may become six
 * ("\u00XX"), plus the keys, numbers and punctuation (under 1 KiB). */
#define FLB_ALOG_LINE_MAX (6 * FLB_ALOG_MAX_STRS + 1024)

/* Ring size per worker: default and bounds (rounded up to a power of two).
 * The minimum holds a few records of the maximum size (about 4 KiB). */
#define FLB_ALOG_RING_DEFAULT (256u * 1024)
#define FLB_ALOG_RING_MIN     (16u * 1024)
#define FLB_ALOG_RING_MAX     (64u * 1024 * 1024)

/* A byte string: ptr may be NULL when len is 0. */
struct flb_alog_str {
	const char *ptr;
	size_t len;
};

/* One request, as the worker hands it to flb_alog_push.  The slices are
 * only read during that call (they are copied, cut to their bound).  An
 * empty slice is printed "-" in the combined format and "" in JSON. */
struct flb_alog_rec {
	struct flb_alog_str client;     /* client address, "192.0.2.1", "2001:db8::1" */
	struct flb_alog_str method;     /* empty when the request line was unusable */
	struct flb_alog_str target;     /* request target as received */
	struct flb_alog_str referer;    /* Referer header value */
	struct flb_alog_str user_agent; /* User-Agent header value */
	struct flb_alog_str request_id; /* our request id (or the propagated one) */
	struct flb_alog_str listener;   /* listener name */
	struct flb_alog_str backend;    /* backend name (empty: none chosen) */
	struct flb_alog_str upstream;   /* server address "10.0.0.1:8080" (empty:
	                                 * none, e.g. an error we answered) */
	int http_minor;                 /* 0: HTTP/1.0, 1: HTTP/1.1 */
	int status;                     /* status sent to the client */
	uint64_t bytes_in;              /* request bytes received from the client */
	uint64_t bytes_out;             /* response bytes sent to the client */
	int64_t start_us;               /* request start, CLOCK_REALTIME microseconds */
	int64_t total_us;               /* request start to response end */
	int64_t connect_us;             /* upstream connect time; 0: a pooled
	                                 * connection was reused; < 0: none */
	int64_t upstream_us;            /* request sent to response head received;
	                                 * < 0: no upstream response */
};

/* One worker's single-producer / single-consumer ring.  The producer (the
 * worker) owns the first cache line, the consumer (the writer thread) the
 * second; each reads the other's position with an acquire load only when
 * it needs to. */
struct flb_alog_ring {
	/* Written by the producer only. */
	_Atomic uint64_t head;       /* bytes ever published */
	uint64_t tail_cache;         /* last tail seen (<= the real tail) */
	uint64_t kick_at;            /* head position of the next fill check */
	flb_ctr records;             /* records accepted */
	flb_ctr dropped;             /* records dropped: ring full */

	/* Written by the consumer only. */
	_Atomic uint64_t tail __attribute__((aligned(FLB_CACHELINE)));
} __attribute__((aligned(FLB_CACHELINE)));

/* Summed counters of a sink (flb_alog_get_stats). */
struct flb_alog_stats {
	uint64_t records;        /* records accepted into the rings */
	uint64_t dropped;        /* records dropped because a ring was full */
	uint64_t lines;          /* lines formatted and handed to write(2) */
	uint64_t bytes_written;  /* bytes write(2) accepted */
	uint64_t lost_bytes;     /* bytes discarded after a write error */
	uint64_t write_errors;   /* failed write(2) or reopen attempts */
	uint64_t reopens;        /* successful reopens */
	int last_errno;          /* errno of the last failure, 0 if none */
};

/* An access-log sink.  Shared (reference counted) by every snapshot and
 * listener that logs to it.  Three groups, each on its own cache lines so
 * that pushing workers (which only read the first) never share a line with
 * what the writer thread writes. */
struct flb_alog {
	/* Set by flb_alog_open, then read-only. */
	char *path;                  /* "-": standard output */
	int format;                  /* FLB_ALOG_* */
	uint32_t nworkers;
	uint32_t ring_size;          /* per worker, power of two */
	int evfd;                    /* eventfd: wakes the writer */
	char *ring_mem;              /* nworkers * ring_size bytes */
	struct flb_alog_ring *rings; /* nworkers, cache-line aligned */
	pthread_t thr;

	/* Written by ref/release and reopen (any thread, rare).  The stop
	 * request of the last release goes through evfd only (alog.c). */
	_Atomic uint32_t refcnt __attribute__((aligned(FLB_CACHELINE)));
	_Atomic uint32_t reopen;     /* set by flb_alog_reopen */

	/* Owned by the writer thread. */
	int fd __attribute__((aligned(FLB_CACHELINE)));
	char *out;                   /* batch buffer, ALOG_OUT_BUF bytes */
	size_t out_len;
	uint64_t out_lines;          /* lines in out */
	/* Written by the writer only, read by anyone. */
	flb_ctr lines;
	flb_ctr bytes_written;
	flb_ctr lost_bytes;
	flb_ctr write_errors;
	flb_ctr reopens;
	_Atomic int last_errno;
} __attribute__((aligned(FLB_CACHELINE)));

#endif /* FLB_ALOG_T_H */
