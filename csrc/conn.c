/* conn.c: connections and the L4 relay (splice through pooled pipes for
 * bulk traffic, copies through pooled 16 KiB buffers for small messages and
 * where splice is refused).
 *
 * Epoll mode: LEVEL-triggered, with the interest set of each socket kept
 * equal to what the relay can do right now (read when the direction has no
 * bytes pending, write when the other direction has bytes pending), changed
 * with one epoll_ctl only when that changes.  Why not edge-triggered: ET
 * needs every readable event drained until EAGAIN, but a splice into a pipe
 * can stop short with data still queued on the socket (the pipe has 16
 * slots, and TCP fills them with skb fragments of any size), so ET would
 * cost one more splice per event just to see EAGAIN, on every small
 * request and response.  With LT a short read simply ends the step: if more
 * is queued, the next epoll_wait says so.  The epoll_ctl calls LT costs
 * happen on backpressure transitions only (pipe stuck on a full socket),
 * which is rare on the request/response path and amortised over 64 KiB
 * pipes on bulk transfers.  A relay step is then: epoll_wait (shared by
 * the whole batch), splice in, splice out.
 *
 * Splice or copy: each direction chooses per read, like HAProxy's
 * splice-auto.  Small messages (requests, responses, interactive traffic)
 * are cheaper to copy through a pooled 16 KiB buffer (recv + send, the
 * buffer back in the pool as soon as it is written) than to move through a
 * pipe, whose page references cost more than copying a few hundred bytes;
 * bulk transfers are cheaper with splice (no copy).  So a direction starts
 * with the buffer and switches to splice (FLB_DIR_BULK) when a read fills
 * the whole buffer, and back when a splice read brings less than
 * SPLICE_MIN bytes.  Both take the same number of syscalls per step.
 *
 * A socket we neither read nor write (interest 0) stays registered with
 * an empty mask, so errors still wake us; if it reports EPOLLHUP while
 * nothing is wanted (peer gone both ways, but we still owe the other side
 * pending bytes) it is removed from epoll, since LT would repeat the HUP. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "balance.h"
#include "compiler.h"
#include "conn.h"
#include "engine.h"
#include "h1proxy.h"
#include "pool.h"
#include "stats.h"
#include "timer.h"

/* Read rounds of one pump call while the pipe keeps filling completely;
 * bounds the time one connection holds its worker (4 x 64 KiB). */
#define PUMP_ROUNDS 4
/* A splice read smaller than this goes back to copying (see the top). */
#define SPLICE_MIN 4096

#define RST_CLIENT 0x01
#define RST_SERVER 0x02

/* The L4 relay's ops (defined below; contracts at the definitions). */
static void l4_start(struct flb_worker *w, struct flb_conn *c, const union flb_sockaddr *peer);
static void l4_io(struct flb_worker *w, struct flb_conn *c, int side, uint32_t events);
static void l4_timeout(struct flb_worker *w, struct flb_conn *c);
static void l4_resume(struct flb_worker *w, struct flb_conn *c);

const struct flb_conn_ops flb_l4_ops = {
	.name = "tcp",
	.start = l4_start,
	.io = l4_io,
	.timeout = l4_timeout,
	.resume = l4_resume,
};

/* Ops for a mode (contract in conn.h). */
const struct flb_conn_ops *flb_conn_ops_for_mode(int mode)
{
	switch (mode) {
	case FLB_MODE_HTTP:
		return &flb_h1_ops;
	case FLB_MODE_TCP:
	default:
		return &flb_l4_ops;
	}
}

/* The RST mask bit for a side.  side: 0 client, 1 server. */
static inline int rst_bit(int side)
{
	return side ? RST_SERVER : RST_CLIENT;
}

/* Timer callback of every connection: dispatch to its ops.timeout.
 * t: the connection's timer; ctx: the worker. */
static void conn_timer_cb(struct flb_timer *t, void *ctx)
{
	struct flb_conn *c = flb_container_of(t, struct flb_conn, tmr);

	c->ops->timeout(ctx, c);
}

/* Set one side's epoll interest (contract in conn.h). */
int flb_conn_ep_set(struct flb_worker *w, struct flb_conn *c, int side, uint32_t want)
{
	uint8_t cur = c->ev[side];
	struct epoll_event ev;
	int op;

	if (c->fd[side] < 0)
		return 0;
	if (cur & FLB_EV_REG) {
		if ((uint32_t)(cur & ~FLB_EV_REG) == want)
			return 0;
		op = EPOLL_CTL_MOD;
	} else {
		if (want == 0)
			return 0;
		op = EPOLL_CTL_ADD;
	}
	ev.events = want;
	ev.data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)side;
	if (epoll_ctl(w->epfd, op, c->fd[side], &ev) < 0)
		return -1;
	c->ev[side] = (uint8_t)(want | FLB_EV_REG);
	return 0;
}

/* Remove one side of a connection from epoll (no-op if not registered).
 * w, c: the worker and connection; side: 0 client, 1 server. */
static void ep_del(struct flb_worker *w, struct flb_conn *c, int side)
{
	if (c->fd[side] >= 0 && (c->ev[side] & FLB_EV_REG))
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd[side], NULL);
	c->ev[side] = 0;
}

/* What side wants from epoll in the relay state.
 * Returns EPOLLIN (its direction may read) | EPOLLOUT (the other direction
 * has bytes stuck for it). */
static uint32_t relay_want(const struct flb_conn *c, int side)
{
	const struct flb_dir *in = &c->dir[side], *out = &c->dir[!side];
	uint32_t ev = 0;

	if (!(in->flags & (FLB_DIR_EOF | FLB_DIR_WAITRES)) && in->pending == 0)
		ev |= EPOLLIN;
	if (out->pending)
		ev |= EPOLLOUT;
	return ev;
}

/* Bring both sides' epoll interest in line with the relay state.
 * Returns 0, or -1 after closing the connection on an epoll error. */
static int relay_update(struct flb_worker *w, struct flb_conn *c)
{
	for (int side = 0; side < 2; side++) {
		if (flb_conn_ep_set(w, c, side, relay_want(c, side)) < 0) {
			flb_conn_close(w, c, RST_CLIENT | RST_SERVER);
			return -1;
		}
	}
	return 0;
}

/* Return a direction's pipe or buffer to the pools (it must be empty).
 * w: the worker; d: the direction. */
static void dir_release(struct flb_worker *w, struct flb_dir *d)
{
	if (d->pipe) {
		flb_pipe_put(&w->pipes, d->pipe);
		d->pipe = NULL;
		flb_ctr_add(&w->c.pipes_used, (uint64_t)-1);
	}
	if (d->buf) {
		flb_buf_put(&w->bufs, d->buf);
		d->buf = NULL;
		flb_ctr_add(&w->c.bufs_used, (uint64_t)-1);
	}
}

/* What the pump does after a read that brought no data. */
enum { READ_AGAIN, READ_WAIT, READ_CLOSED };

/* A read (recv or splice) from the source of direction d returned n <= 0,
 * with errno set when n < 0.  Marks EOF, releases the direction's pipe or
 * buffer, switches a socket that refuses splice (EINVAL) to buffers, or
 * closes the connection (passing a reset on) on any other error.
 * w, c: the worker and connection; d: the direction; spliced: 1 when the
 * read was a splice.  Returns READ_AGAIN (go on pumping), READ_WAIT (wait
 * for readiness) or READ_CLOSED (the connection is gone). */
static int read_ended(struct flb_worker *w, struct flb_conn *c, int d, ssize_t n, int spliced)
{
	struct flb_dir *dr = &c->dir[d];
	int err = errno;

	if (n == 0) {
		dr->flags |= FLB_DIR_EOF;
		dir_release(w, dr);
		return READ_AGAIN;
	}
	if (err == EINTR)
		return READ_AGAIN;
	dir_release(w, dr);
	if (err == EAGAIN)
		return READ_WAIT;
	if (spliced && err == EINVAL) {
		/* This socket cannot splice: buffers from now on. */
		dr->flags |= FLB_DIR_NOSPLICE;
		return READ_AGAIN;
	}
	flb_conn_close(w, c, rst_bit(!d));
	return READ_CLOSED;
}

/* Count n bytes written by direction d (0: to the server, 1: to the
 * client) on the worker's, the listener's and the server's counters. */
static void account(struct flb_worker *w, struct flb_conn *c, int d, uint64_t n)
{
	struct flb_lsn_ctr *lc = flb_conn_lsn_ctr(w, c);
	struct flb_srv_ctr *sc = flb_srv_ctr_of(w, flb_conn_srv(c));

	if (d == 0) {
		flb_ctr_add(&w->c.bytes_in, n);
		flb_ctr_add(&lc->bytes_in, n);
		flb_ctr_add(&sc->bytes_in, n);
	} else {
		flb_ctr_add(&w->c.bytes_out, n);
		flb_ctr_add(&lc->bytes_out, n);
		flb_ctr_add(&sc->bytes_out, n);
	}
}

/* Park direction d of connection c until a pipe or buffer is free (its
 * read interest is off meanwhile); flb_conn_run_waiters resumes it. */
static void dir_wait(struct flb_worker *w, struct flb_conn *c, struct flb_dir *d)
{
	d->flags |= FLB_DIR_WAITRES;
	if (flb_list_empty(&c->wnode))
		flb_list_add_tail(&w->waitq, &c->wnode);
	flb_ctr_add(&w->c.res_waits, 1);
}

/* Move bytes of direction d (source fd[d], sink fd[!d]): first write what
 * is pending, then read more and write it, until the sink blocks, the
 * source has nothing more (a short read ends the step: epoll is level
 * triggered), a FIN is passed on, or PUMP_ROUNDS full pipes were moved.
 * Returns 0, or -1 when the connection was closed (read or write error:
 * an RST from the source's peer is passed on as an RST to the sink's, and a
 * failed write to the sink resets the source). */
static int pump(struct flb_worker *w, struct flb_conn *c, int d)
{
	struct flb_dir *dr = &c->dir[d];
	int src = c->fd[d], dst = c->fd[!d];
	int rounds = PUMP_ROUNDS, more = 1;
	ssize_t n;
	int rc;

	if (dr->flags & (FLB_DIR_SHUT | FLB_DIR_WAITRES))
		return 0;
	for (;;) {
		if (dr->pending) {
			if (dr->pipe)
				n = splice(dr->pipe->rd, NULL, dst, NULL, dr->pending,
				           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			else
				n = send(dst, dr->buf->data + dr->boff, dr->pending,
				         MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN)
					return 0;
				if (errno == EINTR)
					continue;
				flb_conn_close(w, c, rst_bit(d));
				return -1;
			}
			account(w, c, d, (uint64_t)n);
			dr->pending -= (uint32_t)n;
			if (dr->pending) {
				/* Partial write: the sink's buffer is full. */
				if (dr->buf)
					dr->boff = (uint16_t)(dr->boff + n);
				return 0;
			}
			dir_release(w, dr);
		}
		if (dr->flags & FLB_DIR_EOF) {
			/* Half-close: pass the FIN on once everything is written. */
			shutdown(dst, SHUT_WR);
			dr->flags |= FLB_DIR_SHUT;
			return 0;
		}
		if (!more || rounds-- == 0)
			return 0;

		/* A pipe for bulk traffic, or when no buffer is left. */
		if (!(dr->flags & FLB_DIR_NOSPLICE) && dr->pipe == NULL &&
		    ((dr->flags & FLB_DIR_BULK) || w->bufs.used >= w->bufs.max_used)) {
			dr->pipe = flb_pipe_get(&w->pipes);
			if (dr->pipe)
				flb_ctr_add(&w->c.pipes_used, 1);
		}
		if (dr->pipe) {
			n = splice(src, NULL, dr->pipe->wr, NULL, w->pipes.size,
			           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				dr->pending = (uint32_t)n;
				more = (uint32_t)n == w->pipes.size;
				if (n < SPLICE_MIN)
					dr->flags &= (uint8_t)~FLB_DIR_BULK;
				c->last_ms = w->now_ms;
				continue;
			}
			rc = read_ended(w, c, d, n, 1);
			if (rc == READ_AGAIN)
				continue;
			return rc == READ_WAIT ? 0 : -1;
		}
		/* Buffer path: small traffic, splice refused, or no pipe left. */
		if (dr->buf == NULL) {
			dr->buf = flb_buf_get(&w->bufs);
			if (dr->buf == NULL) {
				dir_wait(w, c, dr);
				return 0;
			}
			flb_ctr_add(&w->c.bufs_used, 1);
		}
		n = recv(src, dr->buf->data, FLB_BUF_SIZE, MSG_DONTWAIT);
		if (n > 0) {
			dr->pending = (uint32_t)n;
			dr->boff = 0;
			more = (uint32_t)n == FLB_BUF_SIZE;
			if (more)
				dr->flags |= FLB_DIR_BULK; /* next reads: splice */
			c->last_ms = w->now_ms;
			continue;
		}
		rc = read_ended(w, c, d, n, 0);
		if (rc == READ_AGAIN)
			continue;
		return rc == READ_WAIT ? 0 : -1;
	}
}

/* Make a connection (contract in conn.h). */
struct flb_conn *flb_conn_new(struct flb_worker *w, int fd, struct flb_wsnap *ws,
                              const struct flb_listener *l, const union flb_sockaddr *peer)
{
	struct flb_conn *c = flb_obj_get(&w->conns);
	struct flb_lsn_ctr *lc = &l->sock->slots[w->id].c;
	const struct flb_backend *b = l->backend < ws->snap->nbk ? &ws->snap->bk[l->backend] : NULL;

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	flb_list_init(&c->wnode);
	flb_list_add_tail(&w->live, &c->node);
	flb_timer_init(&c->tmr, conn_timer_cb);
	c->ops = l->ops;
	c->ws = ws;
	c->lsn = l;
	c->fd[0] = fd;
	c->fd[1] = -1;
	c->srv = FLB_NO_SRV;
	c->bk = l->backend;
	c->h1 = NULL;
	c->state = FLB_CS_NEW;
	c->last_ms = w->now_ms;
	if (b != NULL && (b->algo == FLB_ALGO_MAGLEV || b->algo == FLB_ALGO_RING))
		c->key = flb_client_key(peer);
	if (w->eng->p.no_splice)
		c->dir[0].flags = c->dir[1].flags = FLB_DIR_NOSPLICE;
	ws->nconns++;
	w->nconns++;
	flb_ctr_add(&w->c.conn_total, 1);
	flb_ctr_add(&w->c.conn_active, 1);
	flb_ctr_add(&lc->conn_total, 1);
	flb_ctr_add(&lc->conn_active, 1);
	return c;
}

/* Close a socket, with an RST when rst is set.  fd: the socket. */
static void close_sock(int fd, int rst)
{
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

/* Close a connection (contract in conn.h). */
void flb_conn_close(struct flb_worker *w, struct flb_conn *c, int rst_mask)
{
	struct flb_lsn_ctr *lc;

	if (c->state == FLB_CS_DEAD)
		return;
	if (c->ops->release != NULL)
		c->ops->release(w, c);
	flb_timer_cancel(&w->timers, &c->tmr);
	for (int side = 0; side < 2; side++) {
		if (c->fd[side] >= 0)
			close_sock(c->fd[side], rst_mask & rst_bit(side));
		c->fd[side] = -1;
		c->ev[side] = 0;
	}
	for (int d = 0; d < 2; d++) {
		struct flb_dir *dr = &c->dir[d];

		if (dr->pipe && dr->pending) {
			/* Bytes still in it: a pipe cannot be emptied cheaply. */
			flb_pipe_discard(&w->pipes, dr->pipe);
			dr->pipe = NULL;
			flb_ctr_add(&w->c.pipes_used, (uint64_t)-1);
		}
		dr->pending = 0;
		dir_release(w, dr);
	}
	if (!flb_list_empty(&c->wnode))
		flb_list_del(&c->wnode);
	if (c->srv != FLB_NO_SRV) {
		const struct flb_server *sv = flb_conn_srv(c);

		flb_srv_put(sv);
		if (c->state == FLB_CS_RELAY)
			flb_ctr_add(&flb_srv_ctr_of(w, sv)->conn_active, (uint64_t)-1);
		c->srv = FLB_NO_SRV;
	}
	lc = flb_conn_lsn_ctr(w, c);
	flb_ctr_add(&lc->conn_active, (uint64_t)-1);
	flb_ctr_add(&w->c.conn_active, (uint64_t)-1);
	atomic_fetch_sub_explicit(&c->lsn->sock->active, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&w->eng->active, 1, memory_order_relaxed);
	c->state = FLB_CS_DEAD;
	flb_list_del(&c->node);
	flb_list_add_tail(&w->dead, &c->node);
	w->nconns--;
	flb_worker_conn_closed(w);
}

/* Free closed connections (contract in conn.h). */
void flb_conn_free_dead(struct flb_worker *w)
{
	while (!flb_list_empty(&w->dead)) {
		struct flb_conn *c = flb_container_of(w->dead.next, struct flb_conn, node);
		struct flb_wsnap *ws = c->ws;

		flb_list_del(&c->node);
		flb_obj_put(&w->conns, c);
		flb_worker_wsnap_put(w, ws);
	}
	flb_h1_free_dead(w);
}

/* Resume waiting connections (contract in conn.h).  Waiters are visited in
 * FIFO order while some pipe or buffer is free, until one still finds
 * nothing (it queued itself again): it and the rest keep their places at
 * the head of the queue. */
void flb_conn_run_waiters(struct flb_worker *w)
{
	struct flb_list todo;

	if (flb_list_empty(&w->waitq))
		return;
	/* Move the queue to todo. */
	todo.next = w->waitq.next;
	todo.prev = w->waitq.prev;
	todo.next->prev = &todo;
	todo.prev->next = &todo;
	flb_list_init(&w->waitq);
	while (!flb_list_empty(&todo) &&
	       (w->pipes.used < w->pipes.max_used ||
	        w->bufs.used + w->bufs.reserved < w->bufs.max_used)) {
		struct flb_conn *c = flb_container_of(todo.next, struct flb_conn, wnode);

		flb_list_del(&c->wnode);
		c->ops->resume(w, c);
		if (!flb_list_empty(&c->wnode)) {
			/* Still short of what it needs: it keeps its place at the
			 * head, and the rest wait for the next turn (FIFO, and no
			 * pass over every waiter per loop). */
			flb_list_del(&c->wnode);
			c->wnode.next = todo.next;
			c->wnode.prev = &todo;
			todo.next->prev = &c->wnode;
			todo.next = &c->wnode;
			break;
		}
	}
	/* Put the unvisited ones back in front of those that re-queued. */
	if (!flb_list_empty(&todo)) {
		todo.prev->next = w->waitq.next;
		w->waitq.next->prev = todo.prev;
		todo.next->prev = &w->waitq;
		w->waitq.next = todo.next;
	}
}

/* Record a server in the connection's tried ring.  i: backend-local index. */
static void tried_add(struct flb_conn *c, uint32_t i)
{
	c->tried[c->ntried % FLB_MAX_TRIED] = i;
	if (c->ntried < UINT8_MAX)
		c->ntried++;
}

/* Start a non-blocking connect to sv and watch it.
 * Returns 0 (in progress), a positive errno (the server failed: refused,
 * unreachable...), or a negative errno (a local failure: no fd, no memory). */
static int connect_start(struct flb_worker *w, struct flb_conn *c, const struct flb_server *sv)
{
	const struct flb_srv *sh = sv->sh;
	int one = 1, e;
	int fd = socket(sh->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t0_us = flb_now_us();
	if (connect(fd, &sh->addr.sa, sh->addrlen) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
			return -e;
		return e;
	}
	c->fd[1] = fd;
	c->ev[1] = 0;
	c->state = FLB_CS_CONNECTING;
	if (flb_conn_ep_set(w, c, 1, EPOLLOUT) < 0) {
		e = errno;
		close(fd);
		c->fd[1] = -1;
		return -e;
	}
	if (c->lsn->connect_timeout_ms) {
		if (flb_timer_arm(&w->timers, &c->tmr, w->now_ms + c->lsn->connect_timeout_ms) < 0) {
			close(fd);
			c->fd[1] = -1;
			c->ev[1] = 0;
			return -ENOMEM;
		}
	}
	return 0;
}

/* Account a failed attempt on the current server and forget the socket.
 * w, c: worker and connection (c->srv set). */
static void connect_failed(struct flb_worker *w, struct flb_conn *c)
{
	const struct flb_server *sv = flb_conn_srv(c);
	struct flb_srv_ctr *sc = flb_srv_ctr_of(w, sv);

	flb_timer_cancel(&w->timers, &c->tmr);
	if (c->fd[1] >= 0)
		close(c->fd[1]);
	c->fd[1] = -1;
	c->ev[1] = 0;
	flb_srv_put(sv);
	flb_ctr_add(&sc->connect_fails, 1);
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->connect_fails, 1);
	flb_ctr_add(&w->c.connect_fails, 1);
	if (flb_srv_failed(sv, flb_conn_bk(c), w->now_ms))
		flb_ctr_add(&sc->health_downs, 1);
	c->srv = FLB_NO_SRV;
	if (c->attempts < UINT8_MAX)
		c->attempts++;
	c->state = FLB_CS_NEW;
}

/* Pick a server and connect, trying further servers on immediate failures,
 * within the backend's retries; with none left, close the client cleanly
 * and count it as rejected.  w, c: worker and connection (no server). */
static void l4_connect(struct flb_worker *w, struct flb_conn *c)
{
	const struct flb_snapshot *s = c->ws->snap;
	const struct flb_backend *b = flb_conn_bk(c);
	uint32_t guard = b->nsrv + b->retries + 1;

	while (guard-- > 0 && c->attempts <= b->retries) {
		uint32_t nt = c->ntried < FLB_MAX_TRIED ? c->ntried : FLB_MAX_TRIED;
		int32_t i = flb_balance_pick(s, c->bk, &c->ws->bal, c->key, w->now_ms,
		                             c->tried, nt);
		const struct flb_server *sv;
		int rc;

		if (i < 0)
			break;
		tried_add(c, (uint32_t)i);
		sv = &s->srv[b->first + (uint32_t)i];
		if (!flb_srv_acquire(sv))
			continue; /* filled up meanwhile by another worker */
		c->srv = (uint32_t)i;
		if (c->attempts) {
			flb_ctr_add(&flb_srv_ctr_of(w, sv)->retries, 1);
			flb_ctr_add(&flb_conn_lsn_ctr(w, c)->retries, 1);
			flb_ctr_add(&w->c.retries, 1);
		}
		rc = connect_start(w, c, sv);
		if (rc == 0)
			return;
		if (rc < 0) {
			/* Not the server's fault: give up without blaming it, and
			 * stop accepting for a while if descriptors ran out. */
			flb_srv_put(sv);
			c->srv = FLB_NO_SRV;
			if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM)
				flb_worker_fd_pressure(w, c->lsn);
			break;
		}
		connect_failed(w, c);
	}
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->rejected_noserver, 1);
	flb_ctr_add(&w->c.rejected_noserver, 1);
	flb_conn_close(w, c, 0);
}

/* ops.start of the L4 relay: set TCP_NODELAY on the client and connect to a
 * server.  w: the worker; c: a new connection (client socket only); peer:
 * unused (flb_conn_new already hashed it when the backend needs it). */
static void l4_start(struct flb_worker *w, struct flb_conn *c, const union flb_sockaddr *peer)
{
	int one = 1;

	(void)peer;
	setsockopt(c->fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l4_connect(w, c);
}

/* Returns the pending error of socket fd (SO_ERROR, which it clears), or
 * fallback when there is none. */
static int sock_error(int fd, int fallback)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err ? err : fallback;
}

/* The server socket of a connecting connection reported events: connected
 * (count the connect time, arm the idle timer, start relaying) or failed
 * (account it and try the next server).  w, c: worker and connection in
 * FLB_CS_CONNECTING; events: the epoll events of the server socket. */
static void l4_connected(struct flb_worker *w, struct flb_conn *c, uint32_t events)
{
	const struct flb_server *sv;
	struct flb_srv_ctr *sc;
	uint64_t dt;

	if (events & (EPOLLERR | EPOLLHUP)) {
		(void)sock_error(c->fd[1], ECONNREFUSED);
		connect_failed(w, c);
		l4_connect(w, c);
		return;
	}
	if (!(events & EPOLLOUT))
		return;
	sv = flb_conn_srv(c);
	sc = flb_srv_ctr_of(w, sv);
	dt = flb_now_us() - c->t0_us;
	flb_ctr_add(&sc->connect_time_us, dt);
	flb_ctr_add(&sc->connect_count, 1);
	flb_ctr_add(&sc->conn_total, 1);
	flb_ctr_add(&sc->conn_active, 1);
	flb_srv_succeeded(sv);
	c->state = FLB_CS_RELAY;
	c->last_ms = w->now_ms;
	if (c->lsn->idle_timeout_ms) {
		if (flb_timer_arm(&w->timers, &c->tmr, w->now_ms + c->lsn->idle_timeout_ms) < 0) {
			flb_conn_close(w, c, RST_CLIENT | RST_SERVER);
			return;
		}
	} else {
		flb_timer_cancel(&w->timers, &c->tmr);
	}
	relay_update(w, c);
}

/* Close the connection if both directions have passed their FIN on.
 * w, c: worker and connection.  Returns 1 if it was closed, else 0. */
static int relay_done(struct flb_worker *w, struct flb_conn *c)
{
	if ((c->dir[0].flags & FLB_DIR_SHUT) && (c->dir[1].flags & FLB_DIR_SHUT)) {
		flb_conn_close(w, c, 0);
		return 1;
	}
	return 0;
}

/* ops.io of the L4 relay: readiness on one side.  Completes a connect, or
 * pumps the direction reading from that side (EPOLLIN) and the one writing
 * to it (EPOLLOUT), then closes the connection when both directions are
 * done or updates the epoll interest.  w, c: worker and connection;
 * side: 0 client, 1 server; events: epoll events. */
static void l4_io(struct flb_worker *w, struct flb_conn *c, int side, uint32_t events)
{
	if (c->state == FLB_CS_CONNECTING) {
		if (side == 1)
			l4_connected(w, c, events);
		return;
	}
	if (c->state != FLB_CS_RELAY)
		return;
	c->last_ms = w->now_ms;
	if (events & EPOLLERR) {
		int err = sock_error(c->fd[side], 0);

		if (err) {
			/* Reset (or other error) on this side: reset the other. */
			flb_conn_close(w, c, rst_bit(!side));
			return;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pump(w, c, side) < 0)
		return;
	if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && pump(w, c, !side) < 0)
		return;
	if (relay_done(w, c))
		return;
	if ((events & EPOLLHUP) && relay_want(c, side) == 0)
		ep_del(w, c, side);
	relay_update(w, c);
}

/* ops.timeout of the L4 relay: the connection's timer fired.  While
 * connecting it is the connect timeout (try the next server); while
 * relaying, the lazy idle timer: close if idle long enough, else re-arm at
 * the real deadline.  w, c: worker and connection. */
static void l4_timeout(struct flb_worker *w, struct flb_conn *c)
{
	uint64_t deadline;

	if (c->state == FLB_CS_CONNECTING) {
		connect_failed(w, c);
		l4_connect(w, c);
		return;
	}
	if (c->state != FLB_CS_RELAY || c->lsn->idle_timeout_ms == 0)
		return;
	deadline = c->last_ms + c->lsn->idle_timeout_ms;
	if (w->now_ms >= deadline) {
		flb_conn_close(w, c, 0);
		return;
	}
	if (flb_timer_arm(&w->timers, &c->tmr, deadline) < 0)
		flb_conn_close(w, c, RST_CLIENT | RST_SERVER);
}

/* ops.resume of the L4 relay: a pipe or buffer may be free, so pump again
 * the directions that waited for one.  w, c: worker and connection. */
static void l4_resume(struct flb_worker *w, struct flb_conn *c)
{
	for (int d = 0; d < 2; d++) {
		if (!(c->dir[d].flags & FLB_DIR_WAITRES))
			continue;
		c->dir[d].flags &= (uint8_t)~FLB_DIR_WAITRES;
		if (pump(w, c, d) < 0)
			return;
	}
	if (!relay_done(w, c))
		relay_update(w, c);
}
