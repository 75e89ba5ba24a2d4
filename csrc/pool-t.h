/* pool-t.h: bounded per-worker pools of pipes, 16 KiB relay buffers and
 * fixed-size objects (connections).  Functions in pool.h.
 *
 * Every pool has two bounds: max_used, the most objects handed out at once
 * (a get beyond it fails and the caller degrades or waits), and max_free, the
 * most idle objects kept for reuse (a put beyond it really frees).  So a
 * worker's memory in pipes and buffers is at most max_used of each, and its
 * idle footprint at most max_free of each.  A pool belongs to one worker and
 * is never touched by another thread. */
#ifndef FLB_POOL_T_H
#define FLB_POOL_T_H

#include <stdint.h>

/* Size of a relay buffer, the fallback when splice(2) is not possible. */
#define FLB_BUF_SIZE 16384u

/* One pipe: rd is its read end, wr its write end, both non-blocking. */
struct flb_pipe {
	struct flb_pipe *next;   /* free-list link while idle */
	int rd, wr;
};

struct flb_pipe_pool {
	struct flb_pipe *free;
	uint32_t nfree, used;
	uint32_t max_free, max_used;
	uint32_t size;           /* pipe capacity in bytes (F_GETPIPE_SZ) */
};

/* One relay buffer. */
struct flb_buf {
	struct flb_buf *next;    /* free-list link while idle */
	char data[FLB_BUF_SIZE];
};

/* Buffers can also be promised ahead, for users that need several at once
 * (an HTTP transaction: request head, rewritten head, response head...).
 * Such a user reserves what it may still need with flb_buf_reserve, all at
 * once, before it holds any buffer, and then takes buffers with
 * flb_buf_get_reserved, which cannot fail for want of room.  So a user never
 * waits for a buffer while holding others (no deadlock).  Taken and promised
 * buffers share one bound: used + reserved <= max_used, always, so a plain
 * flb_buf_get fails once the promises fill what is left. */
struct flb_buf_pool {
	struct flb_buf *free;
	uint32_t nfree, used;
	uint32_t max_free, max_used;
	uint32_t reserved;       /* buffers promised and not yet taken */
};

/* Size of a small side buffer (an object pool of this size): where an HTTP
 * connection keeps a few bytes while it waits on a peer, so that a slow
 * client or a slow upstream holds no 16 KiB buffer (a parked partial head,
 * the access-log copies, the request kept for a retry). */
#define FLB_SBUF_SIZE 4096u

/* Fixed-size objects (e.g. connections): a free list in front of malloc. */
struct flb_obj_pool {
	void *free;              /* each idle object starts with its next link */
	uint32_t nfree, used;
	uint32_t max_free, max_used;
	uint32_t size;           /* object size, >= sizeof(void *) */
};

#endif /* FLB_POOL_T_H */
