/* pool.h: bounded pools of pipes, buffers and objects.  Types and bounds in
 * pool-t.h. */
#ifndef FLB_POOL_H
#define FLB_POOL_H

#include "pool-t.h"

/* Initialise a pipe pool.  max_used: most pipes handed out at once (>= 1);
 * max_free: most idle pipes kept open.  Opens no pipe yet. */
void flb_pipe_pool_init(struct flb_pipe_pool *p, uint32_t max_used, uint32_t max_free);

/* Close every idle pipe.  Pipes still handed out must have been put or
 * discarded before.  p: the pool. */
void flb_pipe_pool_free(struct flb_pipe_pool *p);

/* Take a pipe (an idle one, or a new non-blocking pipe2).
 * Returns the pipe, empty, or NULL when max_used pipes are out or pipe2
 * failed (errno set; EAGAIN for the bound). */
struct flb_pipe *flb_pipe_get(struct flb_pipe_pool *p);

/* Give back an EMPTY pipe: kept for reuse, or closed beyond max_free. */
void flb_pipe_put(struct flb_pipe_pool *p, struct flb_pipe *pp);

/* Give back a pipe that may still hold data: always closed. */
void flb_pipe_discard(struct flb_pipe_pool *p, struct flb_pipe *pp);

/* Initialise a buffer pool.  max_used: most buffers out at once (>= 1);
 * max_free: most idle buffers kept. */
void flb_buf_pool_init(struct flb_buf_pool *p, uint32_t max_used, uint32_t max_free);

/* Free every idle buffer.  p: the pool. */
void flb_buf_pool_free(struct flb_buf_pool *p);

/* Take a buffer.  Returns it (contents undefined) or NULL when used plus
 * reserved is at max_used, or when malloc fails. */
struct flb_buf *flb_buf_get(struct flb_buf_pool *p);

/* Promise n buffers for later flb_buf_get_reserved calls.
 * Returns 0, or -1 when used + reserved + n would pass max_used. */
int flb_buf_reserve(struct flb_buf_pool *p, uint32_t n);

/* Cancel n promised buffers not taken (taken ones go back with
 * flb_buf_put as usual).  n: at most p->reserved. */
void flb_buf_unreserve(struct flb_buf_pool *p, uint32_t n);

/* Take one promised buffer (p->reserved must be > 0; it drops by one).
 * Returns it, or NULL only when malloc fails (the promise is then kept). */
struct flb_buf *flb_buf_get_reserved(struct flb_buf_pool *p);

/* Give a buffer back: kept for reuse or freed beyond max_free. */
void flb_buf_put(struct flb_buf_pool *p, struct flb_buf *b);

/* Initialise an object pool.  size: object size (rounded up to hold a
 * pointer); max_used: most objects out at once; max_free: idle ones kept. */
void flb_obj_pool_init(struct flb_obj_pool *p, uint32_t size, uint32_t max_used,
                       uint32_t max_free);

/* Free every idle object.  p: the pool. */
void flb_obj_pool_free(struct flb_obj_pool *p);

/* Take a zeroed object.  Returns it, or NULL at the bound or on ENOMEM. */
void *flb_obj_get(struct flb_obj_pool *p);

/* Take an object whose contents are undefined (no zeroing: for byte
 * buffers).  Returns it, or NULL at the bound or on ENOMEM. */
void *flb_obj_take(struct flb_obj_pool *p);

/* Give an object back.  o: from flb_obj_get on the same pool. */
void flb_obj_put(struct flb_obj_pool *p, void *o);

#endif /* FLB_POOL_H */
