/* h1proxy.c: the HTTP/1.1 reverse proxy, listener mode http (types in
 * h1proxy-t.h, API in h1proxy.h).
 *
 * The path of one request, on the worker that accepted the client:
 *   1. h1_start: TCP_NODELAY, the connection's struct flb_h1 from the
 *      worker's pool, the client address as text (X-Forwarded-For).
 *   2. read_head: recv into a pooled 16 KiB buffer (rq.in), parse with
 *      flb_http_parse_request (http1.c), resuming at last_len.  Malformed:
 *      400; too large: 431; not complete within head_timeout: 408.
 *   3. on_request: route (router.c; no route: 404), CONNECT: 405, body
 *      framing and max_body (413), balancing key, request id, and the
 *      upstream head written by flb_h1_rewrite_request (h1rewrite.c) into a
 *      second buffer (rq.hb).
 *   4. get_upstream: flb_balance_pick (balance.c), then an idle connection
 *      to that server from this worker's pool (the server slot's idle list,
 *      no syscall), or a non-blocking connect under connect_timeout; a
 *      failed connect tries the next server within the backend's retries.
 *   5. req_pump: head and buffered body in one sendmsg, then the rest of
 *      the body read from the client, bounded by Content-Length or tracked
 *      by flb_http_chunked_scan, never buffered whole (side_pump).
 *   6. resp_head / on_response: the response head read into rs.in within
 *      response_timeout (504), parsed with flb_http_parse_response, its
 *      framing derived (HEAD, 1xx, 204, 304: no body), rewritten for the
 *      client (rs.hb).  1xx are passed on and the wait goes on; 101 after an
 *      Upgrade request turns the connection into a two-way tunnel.
 *   7. resp_pump: head and body to the client; large Content-Length and
 *      close-delimited bodies move by splice(2) through a pooled pipe once
 *      a read fills the buffer, as in the L4 relay.
 *   8. txn_end: the upstream goes back to its pool when its response was
 *      persistent and complete, the buffers go back to theirs, and the
 *      client connection waits for its next request (keepalive_timeout)
 *      or closes.  Pipelined bytes already read stay in rq.in and are
 *      parsed at once, so requests are answered in order.
 *
 * Epoll.  Level-triggered, as conn.c.  The client socket is registered
 * with data c|0, an upstream socket with data up|FLB_TAG_UP, so a pooled
 * connection changes hands without epoll_ctl.  Read interest is kept on
 * when the state does not read (waiting for a response, say) and turned
 * off only if an event actually arrives then (a pipelining client): the
 * usual request/response cycle makes no epoll_ctl call at all.
 *
 * Retries.  A failed connect tries the next server.  A request whose head
 * and body are still wholly in our buffers (replayable) is sent again when
 * the upstream closes or resets before the first response byte, if the
 * method is idempotent or the connection came from the pool (the server
 * closed an idle keep-alive connection as we reused it); a pooled
 * connection that failed is replaced by another to the same server.
 *
 * Errors of our own (flb_h1_error_response) carry the request id and no
 * address.  After a 4xx that leaves request bytes unread, the client side
 * is shut for writing and drained for a moment (lingering close) so the
 * response is not destroyed by an RST. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "ascii.h"
#include "balance.h"
#include "compiler.h"
#include "conn.h"
#include "engine.h"
#include "h1proxy.h"
#include "h1rewrite.h"
#include "hash.h"
#include "http1.h"
#include "pool.h"
#include "router.h"
#include "snapshot.h"
#include "stats.h"
#include "timer.h"

#define PUMP_ROUNDS 4          /* reads per pump call (bounds one turn) */
#define SPLICE_MIN 4096        /* a smaller splice read goes back to copying */
#define LINGER_MS 1000         /* drain time after an error with unread input */
#define LINGER_BYTES (1u << 20)

/* Request states (h->rqs). */
enum { RQS_IDLE = 0, RQS_HEAD, RQS_BODY, RQS_DONE, RQS_LINGER };
/* Response states (h->rss). */
enum { RSS_NONE = 0, RSS_CONNECT, RSS_HEAD, RSS_BODY };

/* h->fl */
#define H1F_CLIENT_KA  0x0001u /* the client connection may persist */
#define H1F_HEADREQ    0x0002u /* HEAD request: the response has no body */
#define H1F_REPLAY     0x0004u /* the whole request is in rq.in / rq.hb */
#define H1F_UPGRADE    0x0008u /* the request asks for an Upgrade */
#define H1F_IDEMP      0x0010u /* idempotent method */
#define H1F_SENT       0x0020u /* response bytes went to the client */
#define H1F_REUSED     0x0040u /* the upstream came from the pool */
#define H1F_UP_KA      0x0080u /* the upstream may be pooled after this response */
#define H1F_CLOSE      0x0100u /* close the client after this response */
#define H1F_INTERIM    0x0200u /* the response being sent is a 1xx */
#define H1F_TUNNEL     0x0400u /* after 101: raw relay both ways */
#define H1F_NOIN       0x0800u /* client read interest off (lazy, see top) */
#define H1F_UPNOIN     0x1000u /* upstream read interest off (lazy) */
#define H1F_TIMEDOUT   0x2000u /* the last upstream failure was a timeout */
#define H1F_WAITRES    0x4000u /* queued for a buffer or pipe */
#define H1F_RESP_BYTES 0x8000u /* some response byte came from upstream */
#define H1F_LOCAL      0x10000u /* the response is our own error */
#define H1F_SETCOOKIE  0x20000u /* add the sticky cookie to the response */
#define H1F_STALE      0x40000u /* a stale pooled connection was replaced once */
#define H1F_LOGGED     0x80000u /* the access-log line of this request is out */
#define H1F_WROTE      0x100000u /* request bytes went to the current upstream */

/* Bounds of the strings the access log keeps (see alog.h). */
#define LOG_METHOD 32u
#define LOG_TARGET 2048u
#define LOG_REFERER 1024u
#define LOG_UA 512u

/* side_pump results. */
enum { SP_DONE, SP_WAIT, SP_EOF, SP_ERR_IN, SP_ERR_OUT, SP_NOBUF, SP_BADBODY };

static void h1_start(struct flb_worker *w, struct flb_conn *c, const union flb_sockaddr *peer);
static void h1_io(struct flb_worker *w, struct flb_conn *c, int side, uint32_t events);
static void h1_timeout(struct flb_worker *w, struct flb_conn *c);
static void h1_resume(struct flb_worker *w, struct flb_conn *c);
static void h1_release(struct flb_worker *w, struct flb_conn *c);
static void h1_drain(struct flb_worker *w, struct flb_conn *c);

const struct flb_conn_ops flb_h1_ops = {
	.name = "http",
	.start = h1_start,
	.io = h1_io,
	.timeout = h1_timeout,
	.resume = h1_resume,
	.release = h1_release,
	.drain = h1_drain,
};

static void get_upstream(struct flb_worker *w, struct flb_conn *c);
static int attach_server(struct flb_worker *w, struct flb_conn *c, uint32_t i);
static void connect_failed(struct flb_worker *w, struct flb_conn *c);
static void send_error(struct flb_worker *w, struct flb_conn *c, int status);
static void read_head(struct flb_worker *w, struct flb_conn *c, int recv_first);
static void resp_head(struct flb_worker *w, struct flb_conn *c, int recv_first);
static const char *header_value(const struct flb_http_msg *msg, const char *name, size_t n,
                                uint32_t *vlen);

/* ---- small helpers ---------------------------------------------------- */

/* The listener's http part.  c: an http connection. */
static inline const struct flb_http_lsn *hl(const struct flb_conn *c)
{
	return c->lsn->http;
}

/* Returns 1 when the connection was closed. */
static inline int dead(const struct flb_conn *c)
{
	return c->state == FLB_CS_DEAD;
}

/* ---- buffer accounting --------------------------------------------------
 *
 * A transaction holds 16 KiB buffers only while it moves bytes through
 * them; what it keeps while it waits on a peer lives in small side buffers
 * (FLB_SBUF_SIZE: a parked partial head, the log copies, the request kept
 * for a retry), so a slow client or a slow upstream costs no 16 KiB buffer.
 *
 * No deadlock: a transaction holds "units" of the worker's buffer budget,
 * the buffers it holds plus those promised to it (h->resv, see pool-t.h).
 * It asks for its units all at once, when it holds no buffer (need()), and
 * a buffer it gives back turns into a promise again, so it never waits for
 * a buffer while holding one.  h1_trim gives back the promises it will not
 * use: all of them once it holds no buffer (it waits on a peer), and those
 * past need() as the transaction moves on.  The one exception is a
 * pipelining client whose next head is already read: it keeps that buffer
 * while it asks for the next request's units.  A shortage queues only the
 * connections that need a buffer, first come first served (the worker's
 * waitq). */

/* Buffers a transaction may hold at once: rq.in, rq.hb, rs.in, rs.hb. */
#define H1_UNITS 4u

/* How many 16 KiB buffers the connection holds now.  h: its state. */
static inline uint32_t held(const struct flb_h1 *h)
{
	return (uint32_t)(h->rq.in != NULL) + (h->rq.hb != NULL) + (h->rs.in != NULL) +
	       (h->rs.hb != NULL);
}

/* How many buffers the transaction may hold at once from now on: one while
 * a head is read, all four from the whole head until the final response
 * head is out, then the response's buffer plus the request side's while it
 * still streams (a body, a tunnel) or keeps pipelined bytes.  h: the
 * state. */
static uint32_t need(const struct flb_h1 *h)
{
	if (h->rqs == RQS_IDLE || h->rqs == RQS_HEAD)
		return 1; /* the head's buffer; the rest comes with the whole head */
	if (h->rss != RSS_BODY || h->rs.hb != NULL)
		return H1_UNITS;
	return 1u + (h->rqs == RQS_BODY ? 2u : (uint32_t)(h->rq.in != NULL));
}

/* Give back the promises the transaction will not use (see above).
 * w: the worker; h: the state. */
static void h1_trim(struct flb_worker *w, struct flb_h1 *h)
{
	uint32_t hd = held(h), n, want = 0;

	if (h->resv == 0)
		return;
	if (hd) {
		n = need(h);
		want = n > hd ? n - hd : 0;
	}
	if (h->resv > want) {
		flb_buf_unreserve(&w->bufs, h->resv - want);
		h->resv = (uint8_t)want;
	}
}

/* A whole request head is read (held in rq.in): get the promises of the
 * transaction it starts.  This is the one wait that holds a buffer (the
 * head's), and the head timer still runs during it.  w: the worker;
 * h: the state.  Returns 0, or -1 when the budget has no room now. */
static int h1_units(struct flb_worker *w, struct flb_h1 *h)
{
	uint32_t have = held(h) + h->resv;

	if (have >= H1_UNITS)
		return 0;
	if (flb_buf_reserve(&w->bufs, H1_UNITS - have) < 0)
		return -1;
	h->resv = (uint8_t)(h->resv + H1_UNITS - have);
	return 0;
}

/* Give back every promise of the connection.  w: worker; h: its state. */
static void h1_unreserve(struct flb_worker *w, struct flb_h1 *h)
{
	if (h->resv)
		flb_buf_unreserve(&w->bufs, h->resv);
	h->resv = 0;
}

/* Take a buffer from the worker's pool into *b (no-op if set), from the
 * connection's promises; with none left, first ask for the units need()
 * says, all at once.  w: the worker; h: the connection's state.
 * Returns 0, or -1 when the budget has no room (the caller waits). */
static int buf_take(struct flb_worker *w, struct flb_h1 *h, struct flb_buf **b)
{
	if (*b != NULL)
		return 0;
	if (h->resv == 0) {
		uint32_t hd = held(h), n = need(h);
		uint32_t ask = n > hd ? n - hd : 1;

		if (flb_buf_reserve(&w->bufs, ask) < 0)
			return -1;
		h->resv = (uint8_t)ask;
	}
	*b = flb_buf_get_reserved(&w->bufs);
	if (*b == NULL)
		return -1;
	h->resv--;
	flb_ctr_add(&w->c.bufs_used, 1);
	return 0;
}

/* Give *b back to the pool (no-op if NULL); its unit stays with the
 * transaction as a promise (h1_trim decides).  w: worker; h: the state. */
static void buf_drop(struct flb_worker *w, struct flb_h1 *h, struct flb_buf **b)
{
	if (*b == NULL)
		return;
	flb_buf_put(&w->bufs, *b);
	*b = NULL;
	w->bufs.reserved++;
	h->resv++;
	flb_ctr_add(&w->c.bufs_used, (uint64_t)-1);
}

/* Take a side buffer (FLB_SBUF_SIZE bytes, contents undefined) into *p
 * (no-op if set).  Returns 0, or -1 when none is available. */
static int sbuf_take(struct flb_worker *w, char **p)
{
	if (*p == NULL)
		*p = flb_obj_take(&w->sbufs);
	return *p != NULL ? 0 : -1;
}

/* Give a side buffer back (no-op if NULL).  w: the worker. */
static void sbuf_drop(struct flb_worker *w, char **p)
{
	if (*p == NULL)
		return;
	flb_obj_put(&w->sbufs, *p);
	*p = NULL;
}

/* Release a side's pipe (discarded if it still holds bytes). */
static void pipe_drop(struct flb_worker *w, struct flb_h1_side *sd)
{
	if (sd->pipe == NULL)
		return;
	if (sd->ppend)
		flb_pipe_discard(&w->pipes, sd->pipe);
	else
		flb_pipe_put(&w->pipes, sd->pipe);
	sd->pipe = NULL;
	sd->ppend = 0;
	flb_ctr_add(&w->c.pipes_used, (uint64_t)-1);
}

/* Release everything a side holds and zero it.  w: worker; h: the state;
 * sd: the side. */
static void side_clear(struct flb_worker *w, struct flb_h1 *h, struct flb_h1_side *sd)
{
	buf_drop(w, h, &sd->in);
	buf_drop(w, h, &sd->hb);
	pipe_drop(w, sd);
	memset(sd, 0, sizeof(*sd));
}

/* Returns nonzero when a side has bytes waiting for its sink. */
static inline int side_pending(const struct flb_h1_side *sd)
{
	return sd->hlen > sd->hpos || sd->avail || sd->ppend;
}

/* Start a body.  b: the body; kind: enum flb_h1_body_kind; len: its
 * Content-Length for FLB_BODY_LENGTH (0 makes it NONE). */
static void body_init(struct flb_h1_body *b, int kind, uint64_t len)
{
	memset(b, 0, sizeof(*b));
	if (kind == FLB_BODY_LENGTH && len == 0)
		kind = FLB_BODY_NONE;
	b->kind = (uint8_t)kind;
	b->left = len;
	b->done = kind == FLB_BODY_NONE;
	if (kind == FLB_BODY_CHUNKED)
		flb_http_chunked_init(&b->ck);
}

/* Account n received bytes p[0..n) to a body.
 * Returns how many of them belong to it (the rest follow the message), or
 * -1 on malformed chunked framing. */
static long body_take(struct flb_h1_body *b, const char *p, size_t n)
{
	long t;

	switch (b->kind) {
	case FLB_BODY_LENGTH:
		t = (long)(n < b->left ? n : b->left);
		b->left -= (uint64_t)t;
		b->done = b->left == 0;
		break;
	case FLB_BODY_CHUNKED:
		t = flb_http_chunked_scan(&b->ck, p, n);
		if (t < 0)
			return -1;
		b->done = b->ck.done != 0;
		break;
	case FLB_BODY_CLOSE:
		t = (long)n;
		break;
	default:
		return 0;
	}
	b->seen += (uint64_t)t;
	return t;
}

/* Feed n bytes just received at sd->in->data[at..at+n) to the side's body
 * and add them to the buffer: the body's bytes become sendable (avail), the
 * rest stays after them.  A chunked body being decoded shrinks in place to
 * its data.  sd->len must equal at on entry.  Returns 0, or -1 on
 * malformed chunked framing. */
static int body_feed(struct flb_h1_side *sd, uint32_t at, size_t n)
{
	long t;

	if (sd->body.kind == FLB_BODY_CHUNKED && sd->body.decode) {
		size_t dl = n;

		t = flb_http_chunked_decode(&sd->body.ck, sd->in->data + at, &dl);
		if (t == FLB_HTTP_INVALID)
			return -1;
		sd->body.seen += dl;
		sd->avail += (uint32_t)dl;
		sd->len = at + (uint32_t)dl + (t >= 0 ? (uint32_t)t : 0);
		sd->body.done = t >= 0;
		return 0;
	}
	t = body_take(&sd->body, sd->in->data + at, n);
	if (t < 0)
		return -1;
	sd->avail += (uint32_t)t;
	sd->len = at + (uint32_t)n;
	return 0;
}

/* Count n bytes sent in direction d (0: to the server, 1: to the client). */
static void account(struct flb_worker *w, struct flb_conn *c, int d, uint64_t n)
{
	struct flb_lsn_ctr *lc = flb_conn_lsn_ctr(w, c);
	struct flb_srv_ctr *sc = c->srv != FLB_NO_SRV ? flb_srv_ctr_of(w, flb_conn_srv(c)) : NULL;

	if (d == 0) {
		flb_ctr_add(&w->c.bytes_in, n);
		flb_ctr_add(&lc->bytes_in, n);
		if (sc)
			flb_ctr_add(&sc->bytes_in, n);
	} else {
		c->h1->bytes_out += n;
		flb_ctr_add(&w->c.bytes_out, n);
		flb_ctr_add(&lc->bytes_out, n);
		if (sc)
			flb_ctr_add(&sc->bytes_out, n);
	}
}

/* Arm the connection timer ms from now (0: cancel).  Returns 0, or -1
 * when the timer could not be armed (the connection is then closed). */
static int arm(struct flb_worker *w, struct flb_conn *c, uint32_t ms)
{
	if (ms == 0) {
		flb_timer_cancel(&w->timers, &c->tmr);
		return 0;
	}
	if (flb_timer_arm(&w->timers, &c->tmr, w->now_ms + ms) < 0) {
		flb_conn_close(w, c, 1 | 2);
		return -1;
	}
	return 0;
}

/* The deadline of a transaction that moves bytes: idle_timeout since any
 * progress, request_body_timeout since the last read of a request body
 * that the client owes, send_timeout since the last write of a response
 * that the client does not read.  w, c: worker and connection.
 * Returns the deadline (monotonic ms), or 0 for none. */
static uint64_t io_deadline(const struct flb_worker *w, const struct flb_conn *c)
{
	const struct flb_h1 *h = c->h1;
	const struct flb_http_settings *set = &hl(c)->set;
	uint64_t d = c->lsn->idle_timeout_ms ? c->last_ms + c->lsn->idle_timeout_ms : 0;

	(void)w;
	if (set->body_timeout_ms && h->rqs == RQS_BODY && !(h->fl & H1F_TUNNEL) &&
	    !h->rq.body.done && !side_pending(&h->rq)) {
		uint64_t t = h->rd_ms + set->body_timeout_ms;

		if (d == 0 || t < d)
			d = t;
	}
	if (set->send_timeout_ms && h->rss == RSS_BODY && side_pending(&h->rs)) {
		uint64_t t = h->wr_ms + set->send_timeout_ms;

		if (d == 0 || t < d)
			d = t;
	}
	return d;
}

/* Arm the connection timer for a transaction that moves bytes: the
 * shortest of its io timeouts from now (h1_timeout works out which one
 * fired).  Returns 0, or -1 when the connection was closed. */
static int arm_io(struct flb_worker *w, struct flb_conn *c)
{
	const struct flb_http_settings *set = &hl(c)->set;
	uint32_t ms = c->lsn->idle_timeout_ms;

	if (set->body_timeout_ms && (ms == 0 || set->body_timeout_ms < ms))
		ms = set->body_timeout_ms;
	if (set->send_timeout_ms && (ms == 0 || set->send_timeout_ms < ms))
		ms = set->send_timeout_ms;
	return arm(w, c, ms);
}

/* Queue the connection until a buffer or pipe is free (h1_resume). */
static void wait_res(struct flb_worker *w, struct flb_conn *c)
{
	c->h1->fl |= H1F_WAITRES;
	if (flb_list_empty(&c->wnode))
		flb_list_add_tail(&w->waitq, &c->wnode);
	flb_ctr_add(&w->c.res_waits, 1);
}

/* ---- upstream connections ---------------------------------------------- */

/* Set an upstream socket's epoll interest (one epoll_ctl when it changes).
 * Returns 0 or -1 (errno from epoll_ctl). */
static int up_ep_set(struct flb_worker *w, struct flb_upconn *up, uint32_t want)
{
	struct epoll_event ev;
	int op = (up->ev & FLB_UP_REG) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if ((up->ev & FLB_UP_REG) && (up->ev & ~FLB_UP_REG) == want)
		return 0;
	ev.events = want;
	ev.data.u64 = (uint64_t)(uintptr_t)up | FLB_TAG_UP;
	if (epoll_ctl(w->epfd, op, up->fd, &ev) < 0)
		return -1;
	up->ev = want | FLB_UP_REG;
	return 0;
}

/* Close an upstream connection and retire it (freed at the end of the
 * batch).  rst: close with an RST.  w: worker; up: the connection. */
static void up_close(struct flb_worker *w, struct flb_upconn *up, int rst)
{
	if (up->fd < 0)
		return;
	if (up->owner == NULL) {
		struct flb_srv_slot *sl = &up->sh->slots[w->id];

		flb_list_del(&up->node);
		flb_list_del(&up->wnode);
		sl->nidle--;
		flb_ctr_add(&w->c.upconns_idle, (uint64_t)-1);
	}
	flb_timer_cancel(&w->timers, &up->tmr);
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(up->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(up->fd);
	up->fd = -1;
	up->owner = NULL;
	flb_srv_release(up->sh);
	up->sh = NULL;
	flb_list_add_tail(&w->updead, &up->node);
}

/* Pool idle timer of an upstream connection: close it. */
static void up_timer_cb(struct flb_timer *t, void *ctx)
{
	up_close(ctx, flb_container_of(t, struct flb_upconn, tmr), 0);
}

/* Detach the connection's upstream and close it.  rst: with an RST. */
static void up_drop(struct flb_worker *w, struct flb_conn *c, int rst)
{
	struct flb_h1 *h = c->h1;

	if (h->up == NULL)
		return;
	up_close(w, h->up, rst);
	h->up = NULL;
}

/* Give the connection's upstream back to its server's idle pool on this
 * worker (or close it when the pool is full or disabled). */
static void up_pool_put(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	struct flb_upconn *up = h->up;
	const struct flb_http_bk *hb = &flb_conn_bk(c)->http;
	struct flb_srv_slot *sl = &up->sh->slots[w->id];

	h->up = NULL;
	if (hb->pool_max_idle == 0 || up_ep_set(w, up, EPOLLIN) < 0 ||
	    flb_timer_arm(&w->timers, &up->tmr, w->now_ms + hb->pool_idle_ms) < 0) {
		up_close(w, up, 0);
		return;
	}
	up->owner = NULL;
	flb_ctr_add(&w->c.upconns_idle, 1);
	flb_list_add_tail(&sl->idle, &up->node);
	flb_list_add_tail(&w->upidle, &up->wnode);
	if (++sl->nidle > hb->pool_max_idle)
		up_close(w, flb_container_of(sl->idle.next, struct flb_upconn, node), 0);
}

/* Whether an idle upstream connection is clean: nothing waits on it, not
 * even a FIN (one non-blocking MSG_PEEK).  up: the connection.
 * Returns 1 when clean, 0 on a FIN or an error, -1 when bytes wait. */
static int up_clean(const struct flb_upconn *up)
{
	char b;
	ssize_t n;

	do
		n = recv(up->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	return n > 0 ? -1 : 0;
}

/* Close an idle upstream connection that is not clean (see up_clean),
 * counting it when bytes nobody asked for were waiting.  w: the worker;
 * up: an idle connection. */
static void up_check_close(struct flb_worker *w, struct flb_upconn *up)
{
	if (up_clean(up) < 0)
		flb_ctr_add(&up->sh->slots[w->id].c.dirty_closes, 1);
	up_close(w, up, 0);
}

/* Take the most recently pooled idle connection to a server, for c, that
 * is still clean (up_clean: a connection with bytes waiting or closed by
 * the server is closed here, never reused).
 * Returns it (owned by c), or NULL when the pool has none. */
static struct flb_upconn *up_pool_take(struct flb_worker *w, struct flb_conn *c,
                                       const struct flb_server *sv)
{
	struct flb_srv_slot *sl = &sv->sh->slots[w->id];
	struct flb_upconn *up;

	for (;;) {
		if (flb_list_empty(&sl->idle))
			return NULL;
		up = flb_container_of(sl->idle.prev, struct flb_upconn, node);
		if (up_clean(up) > 0)
			break;
		up_check_close(w, up);
	}
	flb_list_del(&up->node);
	flb_list_del(&up->wnode);
	flb_list_init(&up->node);
	sl->nidle--;
	flb_ctr_add(&w->c.upconns_idle, (uint64_t)-1);
	flb_timer_cancel(&w->timers, &up->tmr);
	up->owner = c;
	return up;
}

/* Open a connection to sv for c, without blocking.
 * Returns 0 (connecting), a positive errno (the server failed) or a
 * negative errno (a local failure). */
static int up_connect(struct flb_worker *w, struct flb_conn *c, const struct flb_server *sv)
{
	const struct flb_srv *sh = sv->sh;
	struct flb_upconn *up;
	int one = 1, e, fd;

	up = flb_obj_get(&w->ups);
	if (up == NULL)
		return -ENOMEM;
	fd = socket(sh->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		flb_obj_put(&w->ups, up);
		return -e;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t0_us = flb_now_us();
	if (connect(fd, &sh->addr.sa, sh->addrlen) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		flb_obj_put(&w->ups, up);
		return (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) ? -e : e;
	}
	memset(up, 0, sizeof(*up));
	flb_list_init(&up->node);
	flb_list_init(&up->wnode);
	flb_timer_init(&up->tmr, up_timer_cb);
	up->fd = fd;
	up->owner = c;
	up->sh = sv->sh;
	flb_srv_ref(up->sh);
	if (up_ep_set(w, up, EPOLLOUT) < 0) {
		e = errno;
		up_close(w, up, 0);
		return -e;
	}
	c->h1->up = up;
	return 0;
}

/* Free the upstream connections closed this batch (contract in h1proxy.h). */
void flb_h1_free_dead(struct flb_worker *w)
{
	while (!flb_list_empty(&w->updead)) {
		struct flb_upconn *up = flb_container_of(w->updead.next, struct flb_upconn, node);

		flb_list_del(&up->node);
		flb_obj_put(&w->ups, up);
	}
}

/* Close every idle upstream connection (contract in h1proxy.h). */
void flb_h1_worker_cleanup(struct flb_worker *w)
{
	while (!flb_list_empty(&w->upidle))
		up_close(w, flb_container_of(w->upidle.next, struct flb_upconn, wnode), 0);
	flb_h1_free_dead(w);
}

/* ---- interest ---------------------------------------------------------- */

/* Whether the request side reads from the client now. */
static int client_reading(const struct flb_h1 *h)
{
	if (h->rqs == RQS_IDLE || h->rqs == RQS_HEAD || h->rqs == RQS_LINGER)
		return 1;
	return h->rqs == RQS_BODY && h->up != NULL && h->rss != RSS_CONNECT &&
	       !side_pending(&h->rq) && !h->rq.body.done && !h->rq.eof;
}

/* Whether the response side reads from the upstream now. */
static int up_reading(const struct flb_h1 *h)
{
	if (h->rss == RSS_HEAD)
		return !side_pending(&h->rs);
	return h->rss == RSS_BODY && !side_pending(&h->rs) && !h->rs.body.done && !h->rs.eof;
}

/* Bring both sockets' epoll interest in line with the state (see the top
 * of this file for the lazy read interest).  Returns 0 or -1 (closed). */
static int h1_update(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	uint32_t want = 0;

	h1_trim(w, h);
	if (client_reading(h))
		h->fl &= ~H1F_NOIN;
	if (!(h->fl & (H1F_NOIN | H1F_WAITRES)) && !h->rq.eof)
		want |= EPOLLIN;
	if (h->rss == RSS_BODY && side_pending(&h->rs))
		want |= EPOLLOUT;
	if (flb_conn_ep_set(w, c, 0, want) < 0)
		goto fail;
	if (h->up != NULL) {
		want = 0;
		if (h->rss == RSS_CONNECT) {
			want = EPOLLOUT;
		} else {
			if (up_reading(h))
				h->fl &= ~H1F_UPNOIN;
			if (!(h->fl & (H1F_UPNOIN | H1F_WAITRES)) && !h->rs.eof)
				want |= EPOLLIN;
			if (side_pending(&h->rq))
				want |= EPOLLOUT;
		}
		if (up_ep_set(w, h->up, want) < 0)
			goto fail;
	}
	return 0;
fail:
	flb_conn_close(w, c, 1 | 2);
	return -1;
}

/* ---- moving bytes ------------------------------------------------------ */

/* Note that bytes went out in direction d (0: to the server, 1: to the
 * client): the clocks of request_body_timeout and send_timeout restart.
 * w: the worker; h: the state. */
static inline void progress(struct flb_worker *w, struct flb_h1 *h, int d)
{
	if (d == 0) {
		h->fl |= H1F_WROTE;
		h->rd_ms = w->now_ms; /* the client is waited for from now on */
	} else {
		h->wr_ms = w->now_ms;
	}
}

/* Move one side's bytes: its head and buffered body (one sendmsg), its
 * pipe, then read more from src (up to PUMP_ROUNDS reads) and send it,
 * until the sink blocks, the source is empty, or the body is complete.
 * w, c: worker and connection; sd: the side; src, dst: source and sink
 * sockets (src < 0: nothing to read); d: 0 request, 1 response.
 * Returns SP_DONE (the body is complete and sent), SP_WAIT (blocked on
 * either socket), SP_EOF (the source closed before the body ended),
 * SP_ERR_IN / SP_ERR_OUT (read / write error), SP_NOBUF (no buffer or
 * pipe) or SP_BADBODY (malformed chunked framing). */
static int side_pump(struct flb_worker *w, struct flb_conn *c, struct flb_h1_side *sd,
                     int src, int dst, int d)
{
	int rounds = PUMP_ROUNDS;
	ssize_t n;

	for (;;) {
		if (sd->hlen > sd->hpos || sd->avail) {
			struct iovec iov[2];
			struct msghdr mh;
			size_t hn = sd->hlen - sd->hpos;
			int k = 0;

			if (hn) {
				iov[k].iov_base = sd->hb->data + sd->hpos;
				iov[k++].iov_len = hn;
			}
			if (sd->avail) {
				iov[k].iov_base = sd->in->data + sd->pos;
				iov[k++].iov_len = sd->avail;
			}
			memset(&mh, 0, sizeof(mh));
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)k;
			n = sendmsg(dst, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN)
					return SP_WAIT;
				if (errno == EINTR)
					continue;
				return SP_ERR_OUT;
			}
			account(w, c, d, (uint64_t)n);
			progress(w, c->h1, d);
			if ((size_t)n >= hn) {
				sd->hpos = sd->hlen;
				n -= (ssize_t)hn;
				sd->pos += (uint32_t)n;
				sd->avail -= (uint32_t)n;
			} else {
				sd->hpos += (uint32_t)n;
			}
			if (side_pending(sd) && sd->ppend == 0)
				return SP_WAIT;
		}
		if (sd->ppend) {
			n = splice(sd->pipe->rd, NULL, dst, NULL, sd->ppend,
			           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EAGAIN)
					return SP_WAIT;
				if (errno == EINTR)
					continue;
				return SP_ERR_OUT;
			}
			account(w, c, d, (uint64_t)n);
			progress(w, c->h1, d);
			sd->ppend -= (uint32_t)n;
			if (sd->ppend)
				return SP_WAIT;
		}
		if (sd->body.done)
			return SP_DONE;
		if (sd->eof) {
			if (sd->body.kind != FLB_BODY_CLOSE)
				return SP_EOF;
			sd->body.done = 1;
			return SP_DONE;
		}
		if (src < 0 || rounds-- == 0)
			return SP_WAIT;
		if (sd->pos == sd->len)
			sd->pos = sd->len = 0;

		/* Bulk bodies of known or open length: splice (see conn.c). */
		if (sd->bulk && sd->len == 0 && !w->eng->p.no_splice &&
		    (sd->body.kind == FLB_BODY_LENGTH || sd->body.kind == FLB_BODY_CLOSE)) {
			size_t want = w->pipes.size;

			if (sd->pipe == NULL) {
				sd->pipe = flb_pipe_get(&w->pipes);
				if (sd->pipe)
					flb_ctr_add(&w->c.pipes_used, 1);
			}
			if (sd->pipe != NULL) {
				if (sd->body.kind == FLB_BODY_LENGTH && sd->body.left < want)
					want = (size_t)sd->body.left;
				n = splice(src, NULL, sd->pipe->wr, NULL, want,
				           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
				if (n > 0) {
					(void)body_take(&sd->body, NULL, (size_t)n);
					sd->ppend = (uint32_t)n;
					if (n < SPLICE_MIN)
						sd->bulk = 0;
					c->last_ms = w->now_ms;
					if (d == 0)
						c->h1->rd_ms = w->now_ms;
					else
						c->h1->wr_ms = w->now_ms;
					continue;
				}
				if (n == 0) {
					sd->eof = 1;
					pipe_drop(w, sd);
					continue;
				}
				if (errno == EINTR)
					continue;
				pipe_drop(w, sd);
				if (errno == EAGAIN)
					return SP_WAIT;
				if (errno != EINVAL)
					return SP_ERR_IN;
				/* Splice refused: copy from now on. */
				sd->bulk = 0;
			}
		}
		if (buf_take(w, c->h1, &sd->in) < 0)
			return SP_NOBUF;
		{
			size_t space = FLB_BUF_SIZE - sd->len;

			/* A request body is read no further than its end (what
			 * follows is the next request, left in the kernel until
			 * then).  A response is read whole: bytes past its end
			 * are the server's mistake, found by txn_end. */
			if (d == 0 && sd->body.kind == FLB_BODY_LENGTH && sd->body.left < space)
				space = (size_t)sd->body.left;
			if (space == 0)
				return SP_BADBODY; /* never a zero-length read (taken for EOF) */
			n = recv(src, sd->in->data + sd->len, space, MSG_DONTWAIT);
			if (n > 0) {
				if (body_feed(sd, sd->len, (size_t)n) < 0)
					return SP_BADBODY;
				sd->bulk = (size_t)n == space && sd->body.kind != FLB_BODY_CHUNKED;
				c->last_ms = w->now_ms;
				if (d == 0)
					c->h1->rd_ms = w->now_ms;
				else
					c->h1->wr_ms = w->now_ms; /* nothing was pending */
				continue;
			}
		}
		if (n == 0) {
			sd->eof = 1;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			if (sd->pos == sd->len) {
				buf_drop(w, c->h1, &sd->in);
				sd->pos = sd->len = 0;
			}
			return SP_WAIT;
		}
		return SP_ERR_IN;
	}
}

/* ---- access log --------------------------------------------------------- */

/* Note that a request head starts now (its duration counts from here).
 * c: the connection. */
static inline void log_begin(struct flb_conn *c)
{
	c->h1->t_req_us = flb_now_us();
}

/* Copy one slice into the log buffer at *at (truncated to max).
 * h: the state; k: slot 0..3; p, n: the slice. */
static void log_keep(struct flb_h1 *h, int k, const char *p, uint32_t n, uint32_t max,
                     uint32_t *at)
{
	if (n > max)
		n = max;
	memcpy(h->lb + *at, p, n);
	h->loff[k] = (uint16_t)*at;
	h->llen[k] = (uint16_t)n;
	*at += n;
}

/* Keep what the log line needs from a parsed request head (its slices do
 * not outlive the body reads).  Does nothing when the log is off or no
 * buffer is free (the line then lacks these fields). */
static void log_copy(struct flb_worker *w, struct flb_conn *c, const struct flb_http_msg *msg)
{
	struct flb_h1 *h = c->h1;
	uint32_t at = 0, n = 0;
	const char *v;

	_Static_assert(LOG_METHOD + LOG_TARGET + LOG_REFERER + LOG_UA <= FLB_SBUF_SIZE,
	               "the log copies fit a side buffer");
	if (hl(c)->alog == NULL || sbuf_take(w, &h->lb) < 0)
		return;
	log_keep(h, 0, msg->method, msg->method_len, LOG_METHOD, &at);
	log_keep(h, 1, msg->target, msg->target_len, LOG_TARGET, &at);
	v = header_value(msg, "referer", 7, &n);
	log_keep(h, 2, v ? v : "", v ? n : 0, LOG_REFERER, &at);
	v = header_value(msg, "user-agent", 10, &n);
	log_keep(h, 3, v ? v : "", v ? n : 0, LOG_UA, &at);
}

/* A string of the log record: slot k of the log buffer. */
static struct flb_alog_str log_str(const struct flb_h1 *h, int k)
{
	struct flb_alog_str s = { "", 0 };

	if (h->lb != NULL) {
		s.ptr = h->lb + h->loff[k];
		s.len = h->llen[k];
	}
	return s;
}

/* Push the request's access-log line (once per request), if the listener
 * has a log.  status: what the client got (0: nothing, logged as 499). */
static void log_request(struct flb_worker *w, struct flb_conn *c, int status)
{
	struct flb_h1 *h = c->h1;
	struct flb_alog *al = hl(c)->alog;
	const struct flb_snapshot *s = c->ws->snap;
	struct flb_alog_rec r;
	struct timespec ts;
	uint64_t now;

	if (al == NULL || (h->fl & H1F_LOGGED))
		return;
	h->fl |= H1F_LOGGED;
	now = flb_now_us();
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&r, 0, sizeof(r));
	r.client.ptr = h->ip;
	r.client.len = h->ip_len;
	r.method = log_str(h, 0);
	r.target = log_str(h, 1);
	r.referer = log_str(h, 2);
	r.user_agent = log_str(h, 3);
	r.request_id.ptr = h->rid;
	r.request_id.len = h->rid_len;
	r.listener.ptr = c->lsn->sock->name;
	r.listener.len = strlen(c->lsn->sock->name);
	if (c->bk < s->nbk) {
		r.backend.ptr = s->bk[c->bk].name;
		r.backend.len = strlen(s->bk[c->bk].name);
	}
	if (h->up_addr != NULL) {
		r.upstream.ptr = h->up_addr;
		r.upstream.len = strlen(h->up_addr);
	}
	r.http_minor = h->minor;
	r.status = status ? status : 499;
	r.bytes_in = (uint64_t)h->hlen + h->rq.body.seen;
	r.bytes_out = h->bytes_out;
	r.start_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - (int64_t)(now - h->t_req_us);
	r.total_us = (int64_t)(now - h->t_req_us);
	r.connect_us = h->conn_us;
	r.upstream_us = h->t_head_us && h->t_sent_us ? (int64_t)(h->t_head_us - h->t_sent_us) : -1;
	flb_alog_push(al, w->id, &r);
}

/* ---- the end of things --------------------------------------------------- */

/* Drop the server the current request holds (its active count). */
static void srv_done(struct flb_conn *c)
{
	if (c->srv == FLB_NO_SRV)
		return;
	flb_srv_put(flb_conn_srv(c));
	c->srv = FLB_NO_SRV;
}

/* Abort: close the client and the upstream at once (RST both when rst). */
static void h1_abort(struct flb_worker *w, struct flb_conn *c, int rst)
{
	up_drop(w, c, rst);
	flb_conn_close(w, c, rst ? 1 : 0);
}

/* Start a lingering close: the response is out, request bytes are still
 * coming; shut our write side, then read and discard for a moment. */
static void linger_start(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;

	shutdown(c->fd[0], SHUT_WR);
	h->rqs = RQS_LINGER;
	h->rq.body.seen = 0;
	side_clear(w, h, &h->rs);
	side_clear(w, h, &h->rq);
	sbuf_drop(w, &h->rcopy);
	sbuf_drop(w, &h->park);
	if (arm(w, c, LINGER_MS) == 0)
		h1_update(w, c);
}

/* Read and discard during a lingering close; close at EOF, on error or
 * after LINGER_BYTES. */
static void linger_read(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	char sink[4096];

	for (;;) {
		ssize_t n = recv(c->fd[0], sink, sizeof(sink), MSG_DONTWAIT);

		if (n > 0) {
			h->rq.body.seen += (uint64_t)n;
			if (h->rq.body.seen > LINGER_BYTES)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break;
	}
	flb_conn_close(w, c, 0);
}

/* Move a kept connection, between two requests, onto the worker's current
 * snapshot, so that a long-lived keep-alive client sees config updates
 * (routes, backends, settings) from its next request on.  Its listener must
 * still exist there with the same mode.  w, c: worker and connection.
 * Returns 0, or -1 when the listener is gone (the caller closes). */
static int h1_migrate(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_wsnap *cur = w->cur, *old = c->ws;
	const struct flb_snapshot *s;

	if (cur == NULL || old == cur)
		return 0;
	s = cur->snap;
	for (uint32_t i = 0; i < s->nlsn; i++) {
		if (s->lsn[i].sock != c->lsn->sock || s->lsn[i].ops != c->ops)
			continue;
		cur->nconns++;
		c->ws = cur;
		c->lsn = &s->lsn[i];
		c->bk = c->lsn->backend;
		flb_worker_wsnap_put(w, old);
		return 0;
	}
	return -1;
}

/* Reset the per-request state for the next request on a kept connection. */
static void next_request(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	struct flb_h1_side *rq = &h->rq;
	uint32_t left = rq->len - rq->pos - rq->avail;

	buf_drop(w, h, &rq->hb);
	pipe_drop(w, rq);
	if (left && rq->in) {
		memmove(rq->in->data, rq->in->data + rq->len - left, left);
		rq->len = left;
	} else {
		buf_drop(w, h, &rq->in);
		rq->len = 0;
	}
	rq->pos = rq->avail = rq->hpos = rq->hlen = 0;
	rq->eof = rq->shut = rq->bulk = 0;
	memset(&rq->body, 0, sizeof(rq->body));
	side_clear(w, h, &h->rs);
	sbuf_drop(w, &h->rcopy);
	h->rt = NULL;
	h->last_len = 0;
	h->fl = 0;
	h->status = 0;
	h->rid_len = 0;
	h->ninterim = 0;
	sbuf_drop(w, &h->lb);
	h->hlen = 0;
	h->up_addr = NULL;
	h->t_sent_us = h->t_head_us = 0;
	h->conn_us = -1;
	h->bytes_out = 0;
	h->rss = RSS_NONE;
	h->sticky = -1;
	c->ntried = 0;
	c->attempts = 0;
	if (h1_migrate(w, c) < 0) {
		flb_conn_close(w, c, 0);
		return;
	}
	c->bk = c->lsn->backend;
	if (left) {
		h->rqs = RQS_HEAD;
		log_begin(c);
		if (arm(w, c, hl(c)->set.head_timeout_ms) == 0)
			read_head(w, c, 0);
		return;
	}
	h->rqs = RQS_IDLE;
	h1_unreserve(w, h);
	if (arm(w, c, hl(c)->set.keepalive_timeout_ms) == 0)
		h1_update(w, c);
}

/* Count a final response by status class on the listener.
 * w, c: worker and connection; status: the status sent. */
static void count_status(struct flb_worker *w, struct flb_conn *c, int status)
{
	/* resp_1xx..resp_5xx are consecutive counters (stats-t.h): index them. */
	int k = status >= 100 && status < 500 ? status / 100 - 1 : 4;

	_Static_assert(offsetof(struct flb_lsn_ctr, resp_5xx) - offsetof(struct flb_lsn_ctr, resp_1xx)
	               == 4 * sizeof(flb_ctr), "listener resp_* counters are consecutive");
	_Static_assert(offsetof(struct flb_srv_ctr, resp_5xx) - offsetof(struct flb_srv_ctr, resp_1xx)
	               == 4 * sizeof(flb_ctr), "server resp_* counters are consecutive");
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->resp_1xx + k, 1);
	if (c->srv != FLB_NO_SRV && !(c->h1->fl & H1F_LOCAL))
		flb_ctr_add(&flb_srv_ctr_of(w, flb_conn_srv(c))->resp_1xx + k, 1);
}

/* The response is complete and sent: pool or close the upstream, then keep
 * or close the client.  w, c: worker and connection. */
static void txn_end(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;

	log_request(w, c, h->status);
	count_status(w, c, h->status);
	if (h->t_req_us)
		flb_hist_add(&flb_conn_lsn_ctr(w, c)->duration, flb_now_us() - h->t_req_us);
	if (h->up != NULL) {
		/* Pooled only when provably clean: no byte past the response
		 * (bytes still in the kernel are looked for when it is taken). */
		if (h->rs.pos + h->rs.avail != h->rs.len && c->srv != FLB_NO_SRV)
			flb_ctr_add(&flb_srv_ctr_of(w, flb_conn_srv(c))->dirty_closes, 1);
		if ((h->fl & H1F_UP_KA) && h->rqs == RQS_DONE && h->rs.pos == h->rs.len &&
		    h->rs.ppend == 0)
			up_pool_put(w, c);
		else
			up_drop(w, c, 0);
	}
	srv_done(c);
	if (h->rqs != RQS_DONE) {
		/* The client is still sending a request we will not read. */
		linger_start(w, c);
		return;
	}
	if (!(h->fl & H1F_CLIENT_KA) || (h->fl & H1F_CLOSE)) {
		flb_conn_close(w, c, 0);
		return;
	}
	next_request(w, c);
}

/* ---- errors of our own ------------------------------------------------- */

/* Make the request id: the client's (kept in h->rid by on_request) or a new
 * one, 20 hex digits of worker salt, worker id and sequence. */
static void make_rid(struct flb_worker *w, struct flb_h1 *h)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t seq = ++w->rid_seq;
	uint32_t salt = w->rid_salt;
	char *p = h->rid;

	for (int i = 7; i >= 0; i--)
		*p++ = hex[(salt >> (i * 4)) & 15];
	*p++ = hex[(w->id >> 4) & 15];
	*p++ = hex[w->id & 15];
	for (int i = 9; i >= 0; i--)
		*p++ = hex[(seq >> (i * 4)) & 15];
	h->rid_len = 20;
	h->rid[20] = 0;
}

/* Answer the request with our own error (see flb_h1_error_response) and
 * then keep the client only if its request was read whole and it asked to
 * persist.  If response bytes already went out, close instead. */
static void send_error(struct flb_worker *w, struct flb_conn *c, int status)
{
	struct flb_h1 *h = c->h1;
	struct flb_h1_side *rs = &h->rs;
	long n;

	if (h->fl & H1F_SENT) {
		h1_abort(w, c, 1);
		return;
	}
	up_drop(w, c, 1);
	srv_done(c);
	if (h->rid_len == 0)
		make_rid(w, h);
	if (h->rqs == RQS_BODY && h->rq.body.done && !(h->fl & H1F_TUNNEL))
		h->rqs = RQS_DONE; /* read whole, only not sent */
	if (h->rqs != RQS_DONE || status == 400 || status == 408 || status == 431)
		h->fl |= H1F_CLOSE;
	side_clear(w, h, rs);
	sbuf_drop(w, &h->rcopy);
	if (buf_take(w, h, &rs->hb) < 0) {
		flb_conn_close(w, c, 1);
		return;
	}
	n = flb_h1_error_response(rs->hb->data, FLB_BUF_SIZE, status, h->rid,
	                          (h->fl & H1F_CLOSE) != 0);
	if (n <= 0) {
		flb_conn_close(w, c, 1);
		return;
	}
	h->status = (uint16_t)status;
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->local_responses, 1);
	if (status >= 500)
		flb_ctr_add(&flb_conn_lsn_ctr(w, c)->local_5xx, 1);
	else
		flb_ctr_add(&flb_conn_lsn_ctr(w, c)->local_4xx, 1);
	rs->hlen = (uint32_t)n;
	body_init(&rs->body, FLB_BODY_NONE, 0);
	h->fl |= H1F_LOCAL | H1F_SENT;
	h->fl &= ~(H1F_INTERIM | H1F_TUNNEL);
	h->rss = RSS_BODY;
	h->wr_ms = w->now_ms;
	if (arm_io(w, c) < 0)
		return;
	switch (side_pump(w, c, rs, -1, c->fd[0], 1)) {
	case SP_DONE:
		txn_end(w, c);
		return;
	case SP_WAIT:
		h1_update(w, c);
		return;
	default:
		flb_conn_close(w, c, 0);
	}
}

/* ---- the request ------------------------------------------------------- */

/* Returns nonzero when the method is idempotent (RFC 9110 9.2.2). */
static int idempotent(const char *m, size_t n)
{
	switch (n) {
	case 3: return memcmp(m, "GET", 3) == 0 || memcmp(m, "PUT", 3) == 0;
	case 4: return memcmp(m, "HEAD", 4) == 0;
	case 5: return memcmp(m, "TRACE", 5) == 0;
	case 6: return memcmp(m, "DELETE", 6) == 0;
	case 7: return memcmp(m, "OPTIONS", 7) == 0;
	default: return 0;
	}
}

/* The first value of header name in a parsed head, or NULL.
 * msg: the head; name, n: the name (any case); vlen: out, its length. */
static const char *header_value(const struct flb_http_msg *msg, const char *name, size_t n,
                                uint32_t *vlen)
{
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct flb_http_header *hd = &msg->headers[i];

		if (hd->name_len == n && flb_ascii_ieq(hd->name, name, n)) {
			*vlen = hd->value_len;
			return hd->value;
		}
	}
	return NULL;
}

/* The value of cookie name in the Cookie lines of a request, or NULL.
 * msg: the head; name, n: the cookie name (case-sensitive); vlen: out. */
static const char *cookie_value(const struct flb_http_msg *msg, const char *name, size_t n,
                                uint32_t *vlen)
{
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct flb_http_header *hd = &msg->headers[i];
		const char *p, *end;

		if (hd->name_len != 6 || !flb_ascii_ieq(hd->name, "cookie", 6))
			continue;
		p = hd->value;
		end = p + hd->value_len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *pe = semi ? semi : end;
			const char *eq;

			while (p < pe && (*p == ' ' || *p == '\t'))
				p++;
			eq = memchr(p, '=', (size_t)(pe - p));
			if (eq && (size_t)(eq - p) == n && memcmp(p, name, n) == 0) {
				const char *v = eq + 1, *ve = pe;

				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
					v++;
					ve--;
				}
				*vlen = (uint32_t)(ve - v);
				return v;
			}
			p = semi ? semi + 1 : end;
		}
	}
	return NULL;
}

/* The balancing key of a request for its backend's hash algorithm.
 * c: the connection (c->bk set); msg: the parsed head. */
static uint64_t request_key(const struct flb_conn *c, const struct flb_http_msg *msg)
{
	const struct flb_backend *b = flb_conn_bk(c);
	const struct flb_http_bk *hb = &b->http;
	const char *v = NULL;
	uint32_t n = 0;

	if (b->algo != FLB_ALGO_MAGLEV && b->algo != FLB_ALGO_RING)
		return 0;
	switch (hb->hkey) {
	case FLB_HKEY_PATH:
		v = msg->target;
		n = msg->target_len;
		for (uint32_t i = 0; i < n; i++) {
			if (v[i] == '?') {
				n = i;
				break;
			}
		}
		break;
	case FLB_HKEY_URI:
		v = msg->target;
		n = msg->target_len;
		break;
	case FLB_HKEY_HEADER:
		v = header_value(msg, hb->hkey_name, hb->hkey_name_len, &n);
		break;
	case FLB_HKEY_COOKIE:
		v = cookie_value(msg, hb->hkey_name, hb->hkey_name_len, &n);
		break;
	default:
		break;
	}
	return v ? flb_hash64(v, n, 0) : c->h1->ckey;
}

/* The server a sticky cookie names, if it is in the request's backend and
 * may take the request now.  c: the connection (c->bk set); msg: the head.
 * Returns the backend-local server index, or -1. */
static int32_t sticky_server(struct flb_worker *w, const struct flb_conn *c,
                             const struct flb_http_msg *msg)
{
	const struct flb_snapshot *s = c->ws->snap;
	const struct flb_backend *b = flb_conn_bk(c);
	uint32_t n = 0;
	const char *v = cookie_value(msg, b->http.sticky, b->http.sticky_len, &n);
	uint64_t id = 0;

	if (v == NULL || n != 16)
		return -1;
	for (uint32_t i = 0; i < 16; i++) {
		int d = flb_ascii_lower((unsigned char)v[i]);

		if (d >= '0' && d <= '9')
			d -= '0';
		else if (d >= 'a' && d <= 'f')
			d = d - 'a' + 10;
		else
			return -1;
		id = id << 4 | (uint64_t)d;
	}
	for (uint32_t i = 0; i < b->nsrv; i++) {
		const struct flb_server *sv = &s->srv[b->first + i];

		if (sv->cookie == id)
			return flb_server_available(sv, b, w->now_ms) ? (int32_t)i : -1;
	}
	return -1;
}

/* Append "Set-Cookie: NAME=ID; Path=/; HttpOnly" to a rewritten response
 * head of n bytes in buf (cap bytes).  Returns the new length, or -1 when
 * it does not fit. */
static long add_sticky_cookie(char *buf, size_t cap, long n, const struct flb_backend *b,
                              const struct flb_server *sv)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 12 + b->http.sticky_len + 1 + 16 + 20 + 4;
	char *p;

	if (n < 4 || (size_t)n + need > cap)
		return -1;
	p = buf + n - 2; /* over the final CRLF */
	memcpy(p, "Set-Cookie: ", 12);
	p += 12;
	memcpy(p, b->http.sticky, b->http.sticky_len);
	p += b->http.sticky_len;
	*p++ = '=';
	for (int i = 15; i >= 0; i--)
		*p++ = hex[(sv->cookie >> (i * 4)) & 15];
	memcpy(p, "; Path=/; HttpOnly\r\n\r\n", 22);
	p += 22;
	return p - buf;
}

/* Keep the client's request id when it sent a usable one, else make one.
 * h: the state; msg: the parsed head; conf: the route's rewrite conf. */
static void request_id(struct flb_worker *w, struct flb_h1 *h, const struct flb_http_msg *msg,
                       const struct flb_h1_conf *conf)
{
	uint32_t n = 0;
	const char *v = header_value(msg, conf->rid_name, conf->rid_name_len, &n);

	if (v != NULL && n > 0 && n < sizeof(h->rid)) {
		uint32_t i;

		for (i = 0; i < n; i++)
			if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
				break;
		if (i == n) {
			memcpy(h->rid, v, n);
			h->rid[n] = 0;
			h->rid_len = (uint8_t)n;
			return;
		}
	}
	make_rid(w, h);
}

/* RFC 9112 3.2.2: an absolute-form target ("http://authority/path?q")
 * names the host, and its authority replaces Host, so that routing, the
 * Host and X-Forwarded-Host sent on, the hash keys and the log all see one
 * value; the request goes on in origin form.  The head is edited where it
 * lies (rq.in, which is never sent as it is): the authority moves over the
 * scheme, and a '/' goes in front of a bare query.  msg: the parsed head
 * (its target and Host slices change; a Host line is added when there was
 * none).  Returns 0, or -1 when the target cannot be used (400): userinfo,
 * or an empty host. */
static int absolute_form(struct flb_http_msg *msg)
{
	char *t = (char *)msg->target; /* a slice of rq.in */
	size_t n = msg->target_len, skip, i, alen, plen;
	struct flb_http_header *hd;

	if (n >= 7 && flb_ascii_ieq(t, "http://", 7))
		skip = 7;
	else if (n >= 8 && flb_ascii_ieq(t, "https://", 8))
		skip = 8;
	else
		return 0;
	for (i = skip; i < n && t[i] != '/' && t[i] != '?'; i++)
		if (t[i] == '@')
			return -1; /* RFC 9110 4.2.4: userinfo is an error */
	alen = i - skip;
	if (alen == 0)
		return -1;
	memmove(t, t + skip, alen);
	plen = n - i;
	if (plen == 0 || t[i] == '?') {
		memmove(t + alen + 1, t + i, plen);
		t[alen] = '/';
		plen++;
		i = alen;
	}
	msg->target = t + i;
	msg->target_len = (uint32_t)plen;
	if (msg->host_index < 0) {
		if (msg->num_headers >= FLB_H1_MAX_HEADERS)
			return -1;
		msg->host_index = (int)msg->num_headers++;
		hd = &msg->headers[msg->host_index];
		hd->name = "Host";
		hd->name_len = 4;
	}
	hd = &msg->headers[msg->host_index];
	hd->value = t;
	hd->value_len = (uint32_t)alen;
	return 0;
}

/* Whether a request's Transfer-Encoding is the one coding fastlb
 * implements: a single "chunked" (any case), no parameters, no other
 * coding.  Anything else gets 501, as HAProxy answers, rather than being
 * passed to a server that may read it another way.  msg: a head with
 * FLB_HTTP_F_HAS_TE. */
static int te_chunked_only(const struct flb_http_msg *msg)
{
	int lines = 0;

	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct flb_http_header *hd = &msg->headers[i];

		if (hd->name_len != 17 || !flb_ascii_ieq(hd->name, "transfer-encoding", 17))
			continue;
		if (++lines > 1 || hd->value_len != 7 || !flb_ascii_ieq(hd->value, "chunked", 7))
			return 0;
	}
	return lines == 1;
}

/* A request head is parsed (hlen bytes of rq.in): route it, check it,
 * rewrite it and find an upstream.  w, c: worker and connection. */
static void on_request(struct flb_worker *w, struct flb_conn *c, struct flb_http_msg *msg,
                       uint32_t hlen)
{
	struct flb_h1 *h = c->h1;
	struct flb_h1_side *rq = &h->rq;
	const struct flb_http_lsn *H = hl(c);
	const struct flb_http_route *rt = &H->dflt;
	struct flb_route_result rr;
	struct flb_h1_req_info info;
	uint32_t left = rq->len - hlen;
	long n;

	h->minor = (uint8_t)msg->minor_version;
	if (msg->flags & FLB_HTTP_F_KEEP_ALIVE)
		h->fl |= H1F_CLIENT_KA;
	if (msg->method_len == 4 && memcmp(msg->method, "HEAD", 4) == 0)
		h->fl |= H1F_HEADREQ;
	if (idempotent(msg->method, msg->method_len))
		h->fl |= H1F_IDEMP;
	if (absolute_form(msg) < 0) {
		rq->pos = hlen;
		h->rqs = RQS_BODY;
		send_error(w, c, 400);
		return;
	}
	rr.route = -1;
	if (H->router != NULL && flb_router_match(H->router, msg, &rr) >= 0)
		rt = &H->routes[rr.route];
	h->rt = rt;
	request_id(w, h, msg, &rt->h1);
	h->hlen = hlen;
	h->conn_us = -1;
	log_copy(w, c, msg);

	/* Body framing (the parser already refused CL with TE, bad CL...). */
	if (msg->flags & FLB_HTTP_F_CHUNKED)
		body_init(&rq->body, FLB_BODY_CHUNKED, 0);
	else if (msg->flags & FLB_HTTP_F_HAS_CL)
		body_init(&rq->body, FLB_BODY_LENGTH, (uint64_t)msg->content_length);
	else
		body_init(&rq->body, FLB_BODY_NONE, 0);
	rq->pos = hlen;
	h->rqs = RQS_BODY;
	if (msg->method_len == 7 && memcmp(msg->method, "CONNECT", 7) == 0) {
		send_error(w, c, 405);
		return;
	}
	if ((msg->flags & FLB_HTTP_F_HAS_TE) && !te_chunked_only(msg)) {
		send_error(w, c, 501);
		return;
	}
	if (rt->backend == FLB_NO_BK) {
		send_error(w, c, 404);
		return;
	}
	if (rt->max_body && (msg->flags & FLB_HTTP_F_HAS_CL) &&
	    (uint64_t)msg->content_length > rt->max_body) {
		send_error(w, c, 413);
		return;
	}
	if ((msg->flags & FLB_HTTP_F_CONN_UPGRADE) && (msg->flags & FLB_HTTP_F_HAS_UPGRADE) &&
	    rq->body.kind == FLB_BODY_NONE)
		h->fl |= H1F_UPGRADE;
	c->bk = rt->backend;
	c->key = request_key(c, msg);
	h->sticky = flb_conn_bk(c)->http.sticky ? sticky_server(w, c, msg) : -1;

	/* The upstream head. */
	if (buf_take(w, h, &rq->hb) < 0) {
		send_error(w, c, 503);
		return;
	}
	memset(&info, 0, sizeof(info));
	if (rr.route >= 0 && rr.rewritten) {
		info.target_prefix = rr.prefix;
		info.target_prefix_len = rr.prefix_len;
		info.target_rest = rr.rest;
		info.target_rest_len = rr.rest_len;
	}
	info.client_ip = h->ip;
	info.client_ip_len = h->ip_len;
	info.request_id = h->rid;
	info.request_id_len = h->rid_len;
	info.conn = FLB_H1_CONN_NONE;
	if (h->fl & H1F_UPGRADE)
		info.flags |= FLB_H1RW_I_UPGRADE;
	n = flb_h1_rewrite_request(rq->hb->data, FLB_BUF_SIZE, msg, &rt->h1, &info);
	if (n <= 0) {
		send_error(w, c, n == FLB_H1RW_E_SPACE ? 431 : 400);
		return;
	}
	rq->hpos = 0;
	rq->hlen = (uint32_t)n;

	/* Body bytes that came with the head. */
	rq->avail = 0;
	if (body_feed(rq, hlen, left) < 0) {
		send_error(w, c, 400);
		return;
	}
	if (rt->max_body && rq->body.seen > rt->max_body) {
		send_error(w, c, 413);
		return;
	}
	if (rq->body.done) {
		h->fl |= H1F_REPLAY;
		h->replay_pos = rq->pos;
		h->replay_avail = rq->avail;
	}
	get_upstream(w, c);
}

/* Read more of a head into sd->in (which must be attached), after the
 * bytes already there.  sd: the side; fd: its source socket.
 * Returns the bytes read (> 0), 0 at EOF, or -1 with errno set (EAGAIN:
 * nothing yet). */
static ssize_t head_recv(struct flb_h1_side *sd, int fd)
{
	ssize_t n;

	if (sd->len >= FLB_BUF_SIZE) {
		errno = ENOBUFS; /* never a zero-length read (taken for EOF) */
		return -1;
	}
	do
		n = recv(fd, sd->in->data + sd->len, FLB_BUF_SIZE - sd->len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		sd->len += (uint32_t)n;
	return n;
}

/* Prepare msg for a parse into the header array hdrs
 * (FLB_H1_MAX_HEADERS entries). */
static inline void msg_init(struct flb_http_msg *msg, struct flb_http_header *hdrs)
{
	memset(msg, 0, sizeof(*msg));
	msg->headers = hdrs;
	msg->num_headers = FLB_H1_MAX_HEADERS;
}

/* A head read blocked: a partial head of a side buffer's size or less
 * moves there (parked), so a slow client holds no 16 KiB buffer; an empty
 * buffer goes back.  w: the worker; h: the state. */
static void head_park(struct flb_worker *w, struct flb_h1 *h)
{
	struct flb_h1_side *rq = &h->rq;

	if (rq->len > FLB_SBUF_SIZE || (rq->len > 0 && sbuf_take(w, &h->park) < 0))
		return;
	if (rq->len)
		memcpy(h->park, rq->in->data, rq->len);
	buf_drop(w, h, &rq->in);
}

/* Attach rq.in for a head read, with the parked bytes back in it.
 * w: the worker; h: the state.  Returns 0, or -1 when no buffer is free. */
static int head_unpark(struct flb_worker *w, struct flb_h1 *h)
{
	struct flb_h1_side *rq = &h->rq;

	if (rq->in != NULL)
		return 0;
	if (buf_take(w, h, &rq->in) < 0)
		return -1;
	if (h->park != NULL) {
		memcpy(rq->in->data, h->park, rq->len);
		sbuf_drop(w, &h->park);
	}
	return 0;
}

/* Read (when recv_first) and parse the request head in rq.in.
 * w, c: worker and connection in RQS_IDLE or RQS_HEAD. */
static void read_head(struct flb_worker *w, struct flb_conn *c, int recv_first)
{
	struct flb_h1 *h = c->h1;
	struct flb_h1_side *rq = &h->rq;
	const struct flb_http_lsn *H = hl(c);
	struct flb_http_header hdrs[FLB_H1_MAX_HEADERS];
	struct flb_http_msg msg;
	int rc;

	if (head_unpark(w, h) < 0) {
		wait_res(w, c);
		h1_update(w, c);
		return;
	}
	for (;;) {
		if (recv_first) {
			ssize_t n = head_recv(rq, c->fd[0]);

			if (n < 0 && errno == EAGAIN) {
				head_park(w, h);
				h1_update(w, c);
				return;
			}
			if (n < 0 && errno == ENOBUFS) {
				h->rqs = RQS_BODY;
				send_error(w, c, 431);
				return;
			}
			if (n <= 0) {
				/* Closed or reset between or inside heads: just close. */
				flb_conn_close(w, c, 0);
				return;
			}
			if (h->rqs == RQS_IDLE) {
				if (h1_migrate(w, c) < 0) {
					flb_conn_close(w, c, 0);
					return;
				}
				H = hl(c);
				h->rqs = RQS_HEAD;
				log_begin(c);
				if (arm(w, c, H->set.head_timeout_ms) < 0)
					return;
			}
			c->last_ms = w->now_ms;
		}
		recv_first = 1;
		msg_init(&msg, hdrs);
		rc = flb_http_parse_request(rq->in->data, rq->len, h->last_len, H->set.max_head, &msg);
		if (rc > 0 && h1_units(w, h) < 0) {
			/* Parsed again when resumed (h1_resume). */
			wait_res(w, c);
			h1_update(w, c);
			return;
		}
		if (rc > 0 || rc == FLB_HTTP_INVALID) {
			flb_ctr_add(&w->c.requests, 1);
			flb_ctr_add(&flb_conn_lsn_ctr(w, c)->requests, 1);
		}
		if (rc > 0) {
			arm(w, c, 0);
			on_request(w, c, &msg, (uint32_t)rc);
			return;
		}
		if (rc == FLB_HTTP_INVALID) {
			h->rqs = RQS_BODY; /* not read whole: close after the error */
			send_error(w, c, (msg.err == FLB_HTTP_E_HEAD_TOO_LARGE ||
			                  msg.err == FLB_HTTP_E_TOO_MANY_HEADERS) ? 431 : 400);
			return;
		}
		h->last_len = rq->len;
		if (rq->len >= FLB_BUF_SIZE) {
			h->rqs = RQS_BODY;
			send_error(w, c, 431);
			return;
		}
	}
}

/* Pump the request side; on completion, mark it done.  Handles failures
 * of either end.  Returns 0, or -1 when the connection is gone or a new
 * state took over (the caller must not touch it further). */
static int req_pump(struct flb_worker *w, struct flb_conn *c);

/* The request is sent whole and its response not begun: keep what a retry
 * needs (the rewritten head and the body as first sent) in a side buffer
 * and let its 16 KiB buffers go, so that a long wait (a long poll) holds
 * none.  With pipelined bytes behind the request, or more than a side
 * buffer holds, the buffers stay.  w: the worker; h: the state. */
static void replay_park(struct flb_worker *w, struct flb_h1 *h)
{
	struct flb_h1_side *rq = &h->rq;
	uint32_t hlen = rq->hlen, blen = h->replay_avail;

	if (!(h->fl & H1F_REPLAY) || h->rcopy != NULL || rq->hb == NULL || rq->len != rq->pos ||
	    (blen && rq->in == NULL) || hlen + blen > FLB_SBUF_SIZE || sbuf_take(w, &h->rcopy) < 0)
		return;
	memcpy(h->rcopy, rq->hb->data, hlen);
	if (blen)
		memcpy(h->rcopy + hlen, rq->in->data + h->replay_pos, blen);
	h->rc_hlen = (uint16_t)hlen;
	h->rc_blen = (uint16_t)blen;
	buf_drop(w, h, &rq->hb);
	buf_drop(w, h, &rq->in);
	rq->hpos = rq->hlen = rq->pos = rq->len = rq->avail = 0;
}

/* Make the request sendable again from its start, from its buffers or
 * from the side copy replay_park made.  w: the worker; h: the state.
 * Returns 0, or -1 when no buffer is available. */
static int replay_restore(struct flb_worker *w, struct flb_h1 *h)
{
	struct flb_h1_side *rq = &h->rq;

	if (h->rcopy == NULL) {
		rq->hpos = 0;
		rq->pos = h->replay_pos;
		rq->avail = h->replay_avail;
		return 0;
	}
	if (buf_take(w, h, &rq->hb) < 0 || (h->rc_blen && buf_take(w, h, &rq->in) < 0))
		return -1;
	memcpy(rq->hb->data, h->rcopy, h->rc_hlen);
	rq->hpos = 0;
	rq->hlen = h->rc_hlen;
	if (h->rc_blen)
		memcpy(rq->in->data, h->rcopy + h->rc_hlen, h->rc_blen);
	rq->pos = 0;
	rq->len = rq->avail = h->rc_blen;
	h->replay_pos = 0;
	h->replay_avail = h->rc_blen;
	sbuf_drop(w, &h->rcopy);
	return 0;
}

/* The upstream failed before any response byte (write error, reset or
 * close): resend a replayable request on another connection, or 502. */
static void up_failed(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	int reused = (h->fl & H1F_REUSED) != 0;
	int rc;

	up_drop(w, c, 1);
	/* RFC 9112 9.3.1: a request that reached a connection is sent again
	 * only if it is idempotent, or its backend allows it. */
	if (!(h->fl & H1F_REPLAY) || (h->fl & H1F_RESP_BYTES) ||
	    ((h->fl & H1F_WROTE) && !(h->fl & H1F_IDEMP) && !flb_conn_bk(c)->http.retry_unsafe)) {
		send_error(w, c, 502);
		return;
	}
	side_clear(w, h, &h->rs);
	if (replay_restore(w, h) < 0) {
		send_error(w, c, 503);
		return;
	}
	h->rqs = RQS_BODY;
	h->rss = RSS_NONE;
	h->fl &= ~(H1F_REUSED | H1F_UP_KA | H1F_UPNOIN | H1F_WROTE);
	flb_ctr_add(&w->c.retries, 1);
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->retries, 1);
	if (reused && !(h->fl & H1F_STALE) && c->srv != FLB_NO_SRV) {
		/* A stale pooled connection (the server closed it, maybe
		 * restarted): its siblings are suspect too, so drop them and
		 * open a fresh connection to the same server, once, without
		 * spending a retry; if that fails, the usual retries follow. */
		const struct flb_server *sv = flb_conn_srv(c);
		struct flb_srv_slot *sl = &sv->sh->slots[w->id];

		h->fl |= H1F_STALE;
		while (!flb_list_empty(&sl->idle))
			up_close(w, flb_container_of(sl->idle.next, struct flb_upconn, node), 0);
		rc = attach_server(w, c, c->srv);
		if (rc == 0) {
			h1_update(w, c);
			return;
		}
		if (rc < 0) {
			srv_done(c);
			send_error(w, c, 503);
			return;
		}
		connect_failed(w, c);
		get_upstream(w, c);
		return;
	}
	if (c->attempts >= flb_conn_bk(c)->retries + 1) {
		send_error(w, c, 502);
		return;
	}
	c->attempts++;
	srv_done(c);
	get_upstream(w, c);
}

/* The upstream is ready for the request (connected or from the pool). */
static void up_ready(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	struct flb_srv_ctr *sc = flb_srv_ctr_of(w, flb_conn_srv(c));

	h->rss = RSS_HEAD;
	h->up->reqs++;
	flb_ctr_add(&sc->requests, 1);
	if (h->fl & H1F_REUSED)
		flb_ctr_add(&sc->reuses, 1);
	h->rd_ms = w->now_ms;
	if (arm_io(w, c) < 0)
		return;
	if (req_pump(w, c) < 0)
		return;
	h1_update(w, c);
}

static int req_pump(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	int src = (h->rqs == RQS_BODY) ? c->fd[0] : -1;
	int rc;

	if (h->up == NULL || h->rss == RSS_CONNECT || h->rqs != RQS_BODY)
		return 0;
	rc = side_pump(w, c, &h->rq, src, h->up->fd, 0);
	if (h->rq.hb != NULL && h->rq.hpos == h->rq.hlen && !(h->fl & H1F_REPLAY)) {
		/* The head is out and will not be sent again: its buffer goes. */
		buf_drop(w, h, &h->rq.hb);
		h->rq.hpos = h->rq.hlen = 0;
	}
	switch (rc) {
	case SP_DONE:
		if (h->fl & H1F_TUNNEL) {
			if (!h->rq.shut) {
				shutdown(h->up->fd, SHUT_WR);
				h->rq.shut = 1;
			}
			if (h->rs.shut) {
				h1_abort(w, c, 0);
				return -1;
			}
			return 0;
		}
		h->rqs = RQS_DONE;
		h->t_sent_us = flb_now_us();
		if (h->rss == RSS_HEAD) {
			const struct flb_http_route *rt = h->rt;

			replay_park(w, h);
			return arm(w, c, rt->response_timeout_ms ? rt->response_timeout_ms
			                                         : hl(c)->set.response_timeout_ms);
		}
		return 0;
	case SP_WAIT:
		if (h->rt && h->rt->max_body && h->rq.body.seen > h->rt->max_body) {
			send_error(w, c, 413);
			return -1;
		}
		return 0;
	case SP_NOBUF:
		wait_res(w, c);
		return 0;
	case SP_ERR_OUT:
		if (h->fl & H1F_TUNNEL) {
			h1_abort(w, c, 1);
			return -1;
		}
		up_failed(w, c);
		return -1;
	case SP_BADBODY:
		send_error(w, c, 400);
		return -1;
	default: /* the client went away in the middle of its request */
		h1_abort(w, c, 1);
		return -1;
	}
}

/* Count a failed connect on the current server and forget its socket. */
static void connect_failed(struct flb_worker *w, struct flb_conn *c)
{
	const struct flb_server *sv = flb_conn_srv(c);
	struct flb_srv_ctr *sc = flb_srv_ctr_of(w, sv);

	up_drop(w, c, 0);
	flb_ctr_add(&sc->connect_fails, 1);
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->connect_fails, 1);
	flb_ctr_add(&w->c.connect_fails, 1);
	if (flb_srv_failed(sv, flb_conn_bk(c), w->now_ms))
		flb_ctr_add(&sc->health_downs, 1);
	srv_done(c);
	if (c->attempts < UINT8_MAX)
		c->attempts++;
	c->h1->rss = RSS_NONE;
}

/* Attach an upstream to server i of the request's backend: a pooled
 * connection, or a new connect.  Returns 0 (attached or connecting), a
 * positive errno (the server failed at once) or a negative errno (local). */
static int attach_server(struct flb_worker *w, struct flb_conn *c, uint32_t i)
{
	const struct flb_snapshot *s = c->ws->snap;
	const struct flb_server *sv = &s->srv[s->bk[c->bk].first + i];
	struct flb_h1 *h = c->h1;
	uint32_t cto;
	int rc;

	c->srv = i;
	h->up_addr = sv->sh->address;
	if (s->bk[c->bk].http.sticky != NULL && h->sticky != (int32_t)i)
		h->fl |= H1F_SETCOOKIE;
	else
		h->fl &= ~H1F_SETCOOKIE;
	h->up = up_pool_take(w, c, sv);
	if (h->up != NULL) {
		h->fl |= H1F_REUSED;
		h->conn_us = 0;
		return 0;
	}
	rc = up_connect(w, c, sv);
	if (rc != 0)
		return rc;
	h->rss = RSS_CONNECT;
	cto = h->rt->connect_timeout_ms ? h->rt->connect_timeout_ms : c->lsn->connect_timeout_ms;
	if (flb_timer_arm(&w->timers, &c->tmr, w->now_ms + (cto ? cto : 60000)) < 0) {
		up_drop(w, c, 0);
		return -ENOMEM;
	}
	return 0;
}

/* Find an upstream for the request: pick servers within the backend's
 * retries; 503 when none is available, 502 (or 504 after a timeout) when
 * every attempt failed. */
static void get_upstream(struct flb_worker *w, struct flb_conn *c)
{
	const struct flb_snapshot *s = c->ws->snap;
	const struct flb_backend *b = flb_conn_bk(c);
	struct flb_h1 *h = c->h1;
	uint32_t guard = b->nsrv + b->retries + 1;
	int picked = 0;

	if (h->sticky >= 0 && c->ntried == 0) {
		const struct flb_server *sv = &s->srv[b->first + (uint32_t)h->sticky];

		c->tried[0] = (uint32_t)h->sticky;
		c->ntried = 1;
		if (flb_srv_acquire(sv)) {
			int rc = attach_server(w, c, (uint32_t)h->sticky);

			picked = 1;
			if (rc == 0) {
				if (h->rss != RSS_CONNECT)
					up_ready(w, c);
				else
					h1_update(w, c);
				return;
			}
			if (rc < 0) {
				srv_done(c);
				send_error(w, c, 503);
				return;
			}
			connect_failed(w, c);
		}
	}
	while (guard-- > 0 && c->attempts <= b->retries) {
		uint32_t nt = c->ntried < FLB_MAX_TRIED ? c->ntried : FLB_MAX_TRIED;
		int32_t i = flb_balance_pick(s, c->bk, &c->ws->bal, c->key, w->now_ms, c->tried, nt);
		const struct flb_server *sv;
		int rc;

		if (i < 0)
			break;
		c->tried[c->ntried % FLB_MAX_TRIED] = (uint32_t)i;
		if (c->ntried < UINT8_MAX)
			c->ntried++;
		sv = &s->srv[b->first + (uint32_t)i];
		if (!flb_srv_acquire(sv))
			continue;
		picked = 1;
		rc = attach_server(w, c, (uint32_t)i);
		if (rc == 0) {
			if (h->rss != RSS_CONNECT)
				up_ready(w, c);
			else
				h1_update(w, c);
			return;
		}
		if (rc < 0) {
			srv_done(c);
			if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM)
				flb_worker_fd_pressure(w, c->lsn);
			send_error(w, c, 503);
			return;
		}
		c->h1->up = NULL;
		connect_failed(w, c);
	}
	flb_ctr_add(&flb_conn_lsn_ctr(w, c)->rejected_noserver, 1);
	flb_ctr_add(&w->c.rejected_noserver, 1);
	if (!picked && c->attempts == 0)
		send_error(w, c, 503);
	else
		send_error(w, c, (h->fl & H1F_TIMEDOUT) ? 504 : 502);
}

/* The upstream socket of a connecting request reported events. */
static void up_connected(struct flb_worker *w, struct flb_conn *c, uint32_t events)
{
	const struct flb_server *sv;
	struct flb_srv_ctr *sc;

	if (events & (EPOLLERR | EPOLLHUP)) {
		c->h1->fl &= ~H1F_TIMEDOUT;
		connect_failed(w, c);
		get_upstream(w, c);
		return;
	}
	if (!(events & EPOLLOUT))
		return;
	sv = flb_conn_srv(c);
	sc = flb_srv_ctr_of(w, sv);
	c->h1->conn_us = (int64_t)(flb_now_us() - c->t0_us);
	flb_ctr_add(&sc->connect_time_us, (uint64_t)c->h1->conn_us);
	flb_ctr_add(&sc->connect_count, 1);
	flb_ctr_add(&sc->conn_total, 1);
	flb_srv_succeeded(sv);
	up_ready(w, c);
}

/* ---- the response ------------------------------------------------------ */

/* Drop a passed-on 1xx head from rs.in: what follows it moves to the
 * front (the buffer goes back when nothing does).  w: the worker; h: the
 * state.  Returns nonzero when bytes of the next head are there. */
static int interim_shift(struct flb_worker *w, struct flb_h1 *h)
{
	struct flb_h1_side *rs = &h->rs;
	uint32_t left = rs->len - rs->pos;

	if (left && rs->pos)
		memmove(rs->in->data, rs->in->data + rs->pos, left);
	rs->pos = rs->avail = 0;
	rs->len = left;
	if (left == 0)
		buf_drop(w, h, &rs->in);
	return left != 0;
}

/* Pump the response side to the client and finish the transaction when it
 * is complete.  Returns 0, or -1 when the connection changed state or is
 * gone. */
static int resp_pump(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	int src = h->up ? h->up->fd : -1;
	int rc;

	if (h->rss != RSS_BODY)
		return 0;
	rc = side_pump(w, c, &h->rs, src, c->fd[0], 1);
	if (h->rs.hb != NULL && h->rs.hpos == h->rs.hlen &&
	    !(h->fl & (H1F_INTERIM | H1F_TUNNEL | H1F_LOCAL))) {
		/* The final head is out: its buffer goes back for good. */
		buf_drop(w, h, &h->rs.hb);
		h->rs.hpos = h->rs.hlen = 0;
		h1_trim(w, h);
	}
	switch (rc) {
	case SP_DONE:
		if (h->fl & H1F_INTERIM) {
			/* A 1xx went out: its bytes leave the buffer, and the
			 * wait for the final head goes on. */
			h->fl &= ~H1F_INTERIM;
			buf_drop(w, h, &h->rs.hb);
			h->rs.hpos = h->rs.hlen = 0;
			h->rss = RSS_HEAD;
			if (interim_shift(w, h)) {
				resp_head(w, c, 0);
				return -1;
			}
			return 0;
		}
		if (h->fl & H1F_TUNNEL) {
			if (!h->rs.shut) {
				shutdown(c->fd[0], SHUT_WR);
				h->rs.shut = 1;
			}
			if (h->rq.shut) {
				h1_abort(w, c, 0);
				return -1;
			}
			return 0;
		}
		txn_end(w, c);
		return -1;
	case SP_WAIT:
		return 0;
	case SP_NOBUF:
		wait_res(w, c);
		return 0;
	case SP_EOF:   /* upstream closed inside the body: truncate */
	case SP_ERR_IN:
	case SP_BADBODY:
		h1_abort(w, c, 1);
		return -1;
	default:       /* the client is gone */
		h1_abort(w, c, 1);
		return -1;
	}
}

/* A response head is parsed (hlen bytes at rs.in): pass it on. */
static void on_response(struct flb_worker *w, struct flb_conn *c, struct flb_http_msg *msg,
                        uint32_t hlen)
{
	struct flb_h1 *h = c->h1;
	struct flb_h1_side *rs = &h->rs;
	struct flb_h1_resp_info info;
	int st = msg->status, kind;
	long n;

	memset(&info, 0, sizeof(info));
	if (st == 101) {
		if (!(h->fl & H1F_UPGRADE) || h->rqs != RQS_DONE) {
			send_error(w, c, 502);
			return;
		}
		info.flags = FLB_H1RW_I_UPGRADE;
		h->fl |= H1F_TUNNEL;
		h->status = 101;
		count_status(w, c, 101);
		kind = FLB_BODY_CLOSE;
	} else if (st < 200) {
		if (++h->ninterim > FLB_H1_MAX_INTERIM) {
			send_error(w, c, 502);
			return;
		}
		if (h->minor == 0) {
			/* No 1xx for an HTTP/1.0 client: drop it. */
			rs->pos += hlen;
			h->rss = RSS_HEAD;
			if (interim_shift(w, h))
				resp_head(w, c, 0);
			else
				h1_update(w, c);
			return;
		}
		h->fl |= H1F_INTERIM;
		kind = FLB_BODY_NONE;
	} else if ((h->fl & H1F_HEADREQ) || st == 204 || st == 304) {
		kind = FLB_BODY_NONE;
	} else if (msg->flags & FLB_HTTP_F_CHUNKED) {
		kind = FLB_BODY_CHUNKED;
	} else if (msg->flags & FLB_HTTP_F_HAS_TE) {
		kind = FLB_BODY_CLOSE;
	} else if (msg->flags & FLB_HTTP_F_HAS_CL) {
		kind = FLB_BODY_LENGTH;
	} else {
		kind = FLB_BODY_CLOSE;
	}
	body_init(&rs->body, kind, kind == FLB_BODY_LENGTH ? (uint64_t)msg->content_length : 0);
	if (kind == FLB_BODY_CHUNKED && h->minor == 0) {
		/* No chunked coding for an HTTP/1.0 client: decode, then close. */
		rs->body.decode = 1;
		info.flags |= FLB_H1RW_I_DECHUNK;
		h->fl |= H1F_CLOSE;
	}
	if (!(h->fl & H1F_INTERIM)) {
		h->t_head_us = flb_now_us();
		if (h->t_sent_us && c->srv != FLB_NO_SRV)
			flb_hist_add(&flb_srv_ctr_of(w, flb_conn_srv(c))->upstream,
			             h->t_head_us - h->t_sent_us);
	}
	if (!(h->fl & (H1F_INTERIM | H1F_TUNNEL))) {
		h->status = (uint16_t)st;
		if ((msg->flags & FLB_HTTP_F_KEEP_ALIVE) && kind != FLB_BODY_CLOSE)
			h->fl |= H1F_UP_KA;
		if (kind == FLB_BODY_CLOSE || h->rqs != RQS_DONE || !(h->fl & H1F_CLIENT_KA))
			h->fl |= H1F_CLOSE;
		if (h->fl & H1F_CLOSE)
			info.conn = FLB_H1_CONN_CLOSE;
		else
			info.conn = h->minor == 0 ? FLB_H1_CONN_KEEPALIVE : FLB_H1_CONN_NONE;
	}
	if (buf_take(w, h, &rs->hb) < 0) {
		send_error(w, c, 503);
		return;
	}
	n = flb_h1_rewrite_response(rs->hb->data, FLB_BUF_SIZE, msg, &h->rt->h1, &info);
	if (n > 0 && (h->fl & H1F_SETCOOKIE) && !(h->fl & H1F_INTERIM) && c->srv != FLB_NO_SRV)
		n = add_sticky_cookie(rs->hb->data, FLB_BUF_SIZE, n, flb_conn_bk(c), flb_conn_srv(c));
	if (n <= 0) {
		send_error(w, c, 502);
		return;
	}
	rs->hpos = 0;
	rs->hlen = (uint32_t)n;
	rs->pos += hlen;
	rs->avail = 0;
	if (body_feed(rs, rs->pos, rs->len - rs->pos) < 0) {
		send_error(w, c, 502);
		return;
	}
	if (h->fl & H1F_TUNNEL) {
		/* Bytes the client sent after its request belong to the tunnel. */
		struct flb_h1_side *rq = &h->rq;

		body_init(&rq->body, FLB_BODY_CLOSE, 0);
		buf_drop(w, h, &rq->hb);
		sbuf_drop(w, &h->rcopy);
		rq->hpos = rq->hlen = 0;
		rq->avail = rq->len - rq->pos;
		h->rqs = RQS_BODY;
	}
	if (!(h->fl & H1F_INTERIM))
		h->fl |= H1F_SENT; /* after a 1xx, an error of ours can still follow */
	h->rss = RSS_BODY;
	h->wr_ms = h->rd_ms = w->now_ms;
	if (h->rqs == RQS_DONE && !(h->fl & (H1F_INTERIM | H1F_TUNNEL))) {
		/* The request will not be sent again: its buffers go back (but
		 * pipelined bytes stay), so a long response holds only its own. */
		struct flb_h1_side *rq = &h->rq;

		buf_drop(w, h, &rq->hb);
		sbuf_drop(w, &h->rcopy);
		rq->hpos = rq->hlen = 0;
		if (rq->in == NULL || rq->pos + rq->avail == rq->len) {
			buf_drop(w, h, &rq->in);
			rq->pos = rq->len = rq->avail = 0;
		}
		h1_trim(w, h);
	}
	if (arm_io(w, c) < 0)
		return;
	if (resp_pump(w, c) < 0)
		return;
	if ((h->fl & H1F_TUNNEL) && req_pump(w, c) < 0)
		return;
	h1_update(w, c);
}

/* Read (when recv_first) and parse the response head in rs.in. */
static void resp_head(struct flb_worker *w, struct flb_conn *c, int recv_first)
{
	struct flb_h1 *h = c->h1;
	struct flb_h1_side *rs = &h->rs;
	struct flb_http_header hdrs[FLB_H1_MAX_HEADERS];
	struct flb_http_msg msg;
	int rc;

	if (buf_take(w, h, &rs->in) < 0) {
		wait_res(w, c);
		h1_update(w, c);
		return;
	}
	for (;;) {
		if (recv_first) {
			ssize_t n = head_recv(rs, h->up->fd);

			if (n < 0 && errno == EAGAIN) {
				if (rs->len == 0) {
					buf_drop(w, h, &rs->in);
					rs->pos = 0;
				}
				h1_update(w, c);
				return;
			}
			if (n <= 0) {
				if (n < 0 && errno == ENOBUFS) {
					send_error(w, c, 502);
					return;
				}
				if (rs->len == 0 && !(h->fl & H1F_RESP_BYTES))
					up_failed(w, c);
				else
					send_error(w, c, 502);
				return;
			}
			h->fl |= H1F_RESP_BYTES;
			c->last_ms = w->now_ms;
		}
		recv_first = 1;
		msg_init(&msg, hdrs);
		rc = flb_http_parse_response(rs->in->data + rs->pos, rs->len - rs->pos, 0,
		                             FLB_H1_MAX_RESP_HEAD, &msg);
		if (rc > 0) {
			on_response(w, c, &msg, (uint32_t)rc);
			return;
		}
		if (rc == FLB_HTTP_INVALID || rs->len >= FLB_BUF_SIZE) {
			send_error(w, c, 502);
			return;
		}
	}
}

/* ---- ops ----------------------------------------------------------------- */

/* ops.start of mode http: allocate the state, note the client address and
 * wait for the first request head.  w: worker; c: new connection; peer:
 * the client address from accept. */
static void h1_start(struct flb_worker *w, struct flb_conn *c, const union flb_sockaddr *peer)
{
	struct flb_h1 *h = flb_obj_get(&w->h1s);
	int one = 1;
	uint16_t port;

	if (h == NULL) {
		flb_conn_close(w, c, 1);
		return;
	}
	memset(h, 0, sizeof(*h));
	h->sticky = -1;
	c->h1 = h;
	c->state = FLB_CS_RELAY;
	setsockopt(c->fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h->ip_len = (uint8_t)strlen(flb_sockaddr_host(peer, h->ip, sizeof(h->ip), &port));
	h->ckey = flb_client_key(peer);
	h->rqs = RQS_HEAD;
	h->conn_us = -1;
	log_begin(c);
	if (arm(w, c, hl(c)->set.head_timeout_ms) < 0)
		return;
	/* The first bytes often arrive with the connection. */
	read_head(w, c, 1);
}

/* Whether a client that is not being read has closed (or failed), rather
 * than sent its next request early.  fd: its socket; events: from epoll.
 * One MSG_PEEK, only when an event came while nothing is read. */
static int client_gone(int fd, uint32_t events)
{
	char b;
	ssize_t n;

	if (events & EPOLLHUP)
		return 1;
	do
		n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n == 0 || (n < 0 && errno != EAGAIN);
}

/* ops.io of mode http.  side 0: the client socket; side 1: the upstream
 * (from flb_h1_up_io).  w, c: worker and connection; events: epoll. */
static void h1_io(struct flb_worker *w, struct flb_conn *c, int side, uint32_t events)
{
	struct flb_h1 *h = c->h1;

	c->last_ms = w->now_ms;
	if (side == 0) {
		if (h->rqs == RQS_LINGER) {
			linger_read(w, c);
			return;
		}
		if ((events & EPOLLERR) || ((events & EPOLLHUP) && !(events & EPOLLIN))) {
			h1_abort(w, c, 1);
			return;
		}
		if (events & EPOLLOUT) {
			if (resp_pump(w, c) < 0)
				return;
		}
		if (events & (EPOLLIN | EPOLLHUP)) {
			if (h->rqs == RQS_IDLE || h->rqs == RQS_HEAD) {
				read_head(w, c, 1);
				return;
			}
			if (client_reading(h)) {
				if (req_pump(w, c) < 0)
					return;
			} else if (client_gone(c->fd[0], events)) {
				/* It closed while its response is awaited: the
				 * request is given up (NGINX's 499), not kept
				 * open on the upstream until it answers. */
				h1_abort(w, c, 1);
				return;
			} else {
				h->fl |= H1F_NOIN; /* pipelined bytes: read later */
			}
		}
	} else {
		if (h->rss == RSS_CONNECT) {
			up_connected(w, c, events);
			return;
		}
		if ((events & EPOLLERR) && h->rss != RSS_HEAD && !(h->fl & H1F_TUNNEL)) {
			h1_abort(w, c, 1);
			return;
		}
		if (events & EPOLLOUT) {
			if (req_pump(w, c) < 0)
				return;
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			if (h->rss == RSS_HEAD) {
				resp_head(w, c, 1);
				return;
			}
			if (up_reading(h)) {
				if (resp_pump(w, c) < 0)
					return;
			} else if (h->rss == RSS_BODY || (events & (EPOLLHUP | EPOLLERR))) {
				h->fl |= H1F_UPNOIN;
				if ((events & (EPOLLHUP | EPOLLERR)) && !side_pending(&h->rs)) {
					h1_abort(w, c, 1);
					return;
				}
			} else {
				h->fl |= H1F_UPNOIN;
			}
		}
	}
	if (!dead(c))
		h1_update(w, c);
}

/* ops.timeout of mode http: the one timer means what the state says. */
static void h1_timeout(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;
	uint64_t deadline;

	if (h->rqs == RQS_IDLE || h->rqs == RQS_LINGER) {
		flb_conn_close(w, c, 0);
		return;
	}
	if (h->rqs == RQS_HEAD) {
		h->rqs = RQS_BODY;
		send_error(w, c, 408);
		return;
	}
	if (h->rss == RSS_CONNECT) {
		h->fl |= H1F_TIMEDOUT;
		connect_failed(w, c);
		get_upstream(w, c);
		return;
	}
	if (h->rss == RSS_HEAD && h->rqs == RQS_DONE) {
		send_error(w, c, 504);
		return;
	}
	deadline = io_deadline(w, c);
	if (deadline == 0)
		return;
	if (w->now_ms >= deadline) {
		/* A request body the client stopped sending gets 408 while no
		 * response byte went out (NGINX's client_body_timeout); any
		 * other stall ends the connection. */
		if (h->rqs == RQS_BODY && !(h->fl & (H1F_SENT | H1F_TUNNEL)) && !h->rq.body.done &&
		    hl(c)->set.body_timeout_ms && w->now_ms >= h->rd_ms + hl(c)->set.body_timeout_ms) {
			send_error(w, c, 408);
			return;
		}
		h1_abort(w, c, 1);
		return;
	}
	if (flb_timer_arm(&w->timers, &c->tmr, deadline) < 0)
		h1_abort(w, c, 1);
}

/* ops.resume of mode http: a buffer or pipe may be free; redo the step
 * that waited for one. */
static void h1_resume(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;

	if (!(h->fl & H1F_WAITRES))
		return;
	h->fl &= ~H1F_WAITRES;
	if (h->rqs == RQS_IDLE || h->rqs == RQS_HEAD) {
		read_head(w, c, h->rq.len == 0);
		return;
	}
	if (h->rss == RSS_HEAD && h->up != NULL) {
		resp_head(w, c, 1);
		return;
	}
	if (req_pump(w, c) < 0 || resp_pump(w, c) < 0)
		return;
	h1_update(w, c);
}

/* ops.release of mode http: the connection is closing; drop its upstream,
 * server count, buffers and state. */
static void h1_release(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;

	if (h == NULL)
		return;
	if (h->rq.len > 0 || h->rqs >= RQS_BODY)
		log_request(w, c, h->status);
	up_drop(w, c, 1);
	srv_done(c);
	side_clear(w, h, &h->rq);
	side_clear(w, h, &h->rs);
	h1_unreserve(w, h);
	sbuf_drop(w, &h->lb);
	sbuf_drop(w, &h->park);
	sbuf_drop(w, &h->rcopy);
	flb_obj_put(&w->h1s, h);
	c->h1 = NULL;
}

/* ops.drain of mode http: the engine is stopping.  A client between
 * requests is closed at once; one with a request in flight gets its
 * response with "Connection: close" (when its head is not out yet) and is
 * closed after it.  w, c: worker and connection. */
static void h1_drain(struct flb_worker *w, struct flb_conn *c)
{
	struct flb_h1 *h = c->h1;

	if (h == NULL || h->rqs == RQS_IDLE || (h->rqs == RQS_HEAD && h->rq.len == 0)) {
		flb_conn_close(w, c, 0);
		return;
	}
	h->fl |= H1F_CLOSE;
}

/* Readiness on an upstream connection (contract in h1proxy.h). */
void flb_h1_up_io(struct flb_worker *w, struct flb_upconn *up, uint32_t events)
{
	if (up->fd < 0)
		return;
	if (up->owner == NULL) {
		/* Idle: the server closed it, or sent what nobody asked for. */
		up_check_close(w, up);
		return;
	}
	if (up->owner->state != FLB_CS_DEAD)
		h1_io(w, up->owner, 1, events);
}
