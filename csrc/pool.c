/* pool.c: bounded pools of pipes, buffers and objects (see pool-t.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

/* Initialise a pipe pool (contract in pool.h). */
void flb_pipe_pool_init(struct flb_pipe_pool *p, uint32_t max_used, uint32_t max_free)
{
	p->free = NULL;
	p->nfree = p->used = 0;
	p->max_used = max_used ? max_used : 1;
	p->max_free = max_free;
	p->size = 65536;
}

/* Close both ends of a pipe and free its node.  pp: the pipe. */
static void pipe_close(struct flb_pipe *pp)
{
	close(pp->rd);
	close(pp->wr);
	free(pp);
}

/* Close every idle pipe (contract in pool.h). */
void flb_pipe_pool_free(struct flb_pipe_pool *p)
{
	while (p->free) {
		struct flb_pipe *pp = p->free;

		p->free = pp->next;
		pipe_close(pp);
	}
	p->nfree = 0;
}

/* Take a pipe (contract in pool.h). */
struct flb_pipe *flb_pipe_get(struct flb_pipe_pool *p)
{
	struct flb_pipe *pp;
	int fds[2];

	if (p->used >= p->max_used) {
		errno = EAGAIN;
		return NULL;
	}
	if (p->free) {
		pp = p->free;
		p->free = pp->next;
		p->nfree--;
		p->used++;
		return pp;
	}
	pp = malloc(sizeof(*pp));
	if (pp == NULL)
		return NULL;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(pp);
		return NULL;
	}
	pp->rd = fds[0];
	pp->wr = fds[1];
	pp->next = NULL;
	if (p->used == 0 && p->nfree == 0) {
		/* Learn the capacity once; every pipe of the pool has the default. */
		int sz = fcntl(fds[1], F_GETPIPE_SZ);

		if (sz > 0)
			p->size = (uint32_t)sz;
	}
	p->used++;
	return pp;
}

/* Give back an empty pipe (contract in pool.h). */
void flb_pipe_put(struct flb_pipe_pool *p, struct flb_pipe *pp)
{
	p->used--;
	if (p->nfree >= p->max_free) {
		pipe_close(pp);
		return;
	}
	pp->next = p->free;
	p->free = pp;
	p->nfree++;
}

/* Give back a pipe that may hold data (contract in pool.h). */
void flb_pipe_discard(struct flb_pipe_pool *p, struct flb_pipe *pp)
{
	p->used--;
	pipe_close(pp);
}

static struct flb_buf *buf_take(struct flb_buf_pool *p);

/* Initialise a buffer pool (contract in pool.h). */
void flb_buf_pool_init(struct flb_buf_pool *p, uint32_t max_used, uint32_t max_free)
{
	p->free = NULL;
	p->nfree = p->used = p->reserved = 0;
	p->max_used = max_used ? max_used : 1;
	p->max_free = max_free;
}

/* Free every idle buffer (contract in pool.h). */
void flb_buf_pool_free(struct flb_buf_pool *p)
{
	while (p->free) {
		struct flb_buf *b = p->free;

		p->free = b->next;
		free(b);
	}
	p->nfree = 0;
}

/* Take a buffer (contract in pool.h). */
struct flb_buf *flb_buf_get(struct flb_buf_pool *p)
{
	if (p->used + p->reserved >= p->max_used) {
		errno = EAGAIN;
		return NULL;
	}
	return buf_take(p);
}

/* Reserve buffers (contract in pool.h). */
int flb_buf_reserve(struct flb_buf_pool *p, uint32_t n)
{
	if (p->used + p->reserved + n > p->max_used)
		return -1;
	p->reserved += n;
	return 0;
}

/* Cancel a reservation (contract in pool.h). */
void flb_buf_unreserve(struct flb_buf_pool *p, uint32_t n)
{
	p->reserved -= n;
}

/* Take a reserved buffer (contract in pool.h). */
struct flb_buf *flb_buf_get_reserved(struct flb_buf_pool *p)
{
	struct flb_buf *b = buf_take(p);

	if (b != NULL)
		p->reserved--;
	return b;
}

/* Pop a free buffer or allocate one, and count it used.  p: the pool.
 * Returns it, or NULL when malloc fails. */
static struct flb_buf *buf_take(struct flb_buf_pool *p)
{
	struct flb_buf *b;

	if (p->free) {
		b = p->free;
		p->free = b->next;
		p->nfree--;
	} else {
		b = malloc(sizeof(*b));
		if (b == NULL)
			return NULL;
	}
	p->used++;
	return b;
}

/* Give a buffer back (contract in pool.h). */
void flb_buf_put(struct flb_buf_pool *p, struct flb_buf *b)
{
	p->used--;
	if (p->nfree >= p->max_free) {
		free(b);
		return;
	}
	b->next = p->free;
	p->free = b;
	p->nfree++;
}

/* Initialise an object pool (contract in pool.h). */
void flb_obj_pool_init(struct flb_obj_pool *p, uint32_t size, uint32_t max_used,
                       uint32_t max_free)
{
	p->free = NULL;
	p->nfree = p->used = 0;
	p->size = size < sizeof(void *) ? (uint32_t)sizeof(void *) : size;
	p->max_used = max_used ? max_used : 1;
	p->max_free = max_free;
}

/* Free every idle object (contract in pool.h). */
void flb_obj_pool_free(struct flb_obj_pool *p)
{
	while (p->free) {
		void *o = p->free;

		memcpy(&p->free, o, sizeof(void *));
		free(o);
	}
	p->nfree = 0;
}

/* Take an object, contents undefined (contract in pool.h). */
void *flb_obj_take(struct flb_obj_pool *p)
{
	void *o;

	if (p->used >= p->max_used) {
		errno = EAGAIN;
		return NULL;
	}
	if (p->free) {
		o = p->free;
		memcpy(&p->free, o, sizeof(void *));
		p->nfree--;
	} else {
		o = malloc(p->size);
		if (o == NULL)
			return NULL;
	}
	p->used++;
	return o;
}

/* Take a zeroed object (contract in pool.h). */
void *flb_obj_get(struct flb_obj_pool *p)
{
	void *o = flb_obj_take(p);

	if (o != NULL)
		memset(o, 0, p->size);
	return o;
}

/* Give an object back (contract in pool.h). */
void flb_obj_put(struct flb_obj_pool *p, void *o)
{
	p->used--;
	if (p->nfree >= p->max_free) {
		free(o);
		return;
	}
	memcpy(o, &p->free, sizeof(void *));
	p->free = o;
	p->nfree++;
}
