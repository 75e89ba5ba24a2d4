/* conn.h: connections and the L4 relay.  Types and the plug-in points in
 * conn-t.h.  Everything here runs on the connection's worker thread. */
#ifndef FLB_CONN_H
#define FLB_CONN_H

#include "conn-t.h"
#include "engine-t.h"
#include "snapshot-t.h"

/* The TCP (L4) relay. */
extern const struct flb_conn_ops flb_l4_ops;

/* The ops table for a listener mode.  mode: enum flb_mode.
 * Returns the table (flb_l4_ops for unknown modes). */
const struct flb_conn_ops *flb_conn_ops_for_mode(int mode);

/* The snapshot's server a connection is using.  c: with c->srv set. */
static inline const struct flb_server *flb_conn_srv(const struct flb_conn *c)
{
	const struct flb_snapshot *s = c->ws->snap;

	return &s->srv[s->bk[c->bk].first + c->srv];
}

/* The backend of the connection (or of its current request, in http mode).
 * c: the connection. */
static inline const struct flb_backend *flb_conn_bk(const struct flb_conn *c)
{
	return &c->ws->snap->bk[c->bk];
}

/* This worker's counter slot of the connection's listener. */
static inline struct flb_lsn_ctr *flb_conn_lsn_ctr(struct flb_worker *w,
                                                   const struct flb_conn *c)
{
	return &c->lsn->sock->slots[w->id].c;
}

/* This worker's counter slot of a server. */
static inline struct flb_srv_ctr *flb_srv_ctr_of(struct flb_worker *w,
                                                 const struct flb_server *sv)
{
	return &sv->sh->slots[w->id].c;
}

/* Set one side's epoll interest, with one epoll_ctl only when it changes.
 * w, c: worker and connection; side: 0 client, 1 server (its epoll data is
 * c | side); want: EPOLLIN/EPOLLOUT bits (0 keeps the socket registered with
 * an empty mask if it is registered, and does not register it otherwise).
 * Returns 0 or -1 (errno from epoll_ctl). */
int flb_conn_ep_set(struct flb_worker *w, struct flb_conn *c, int side, uint32_t want);

/* Make a connection for an accepted client and count it (worker and
 * listener stats, the wsnap's connection count).  The caller has already
 * counted it in the global and listener active counts (flb_conn_close
 * uncounts them).
 * w: the worker; fd: the accepted socket (owned by the connection from now
 * on, also on failure: then closed); ws: the worker's current wsnap;
 * l: the listener in ws->snap; peer: the client address.
 * Returns the connection, or NULL when the pool is exhausted. */
struct flb_conn *flb_conn_new(struct flb_worker *w, int fd, struct flb_wsnap *ws,
                              const struct flb_listener *l, const union flb_sockaddr *peer);

/* Close a connection: both sockets (with an RST, i.e. SO_LINGER 0, on the
 * sides in rst_mask: bit 0 client, bit 1 server), its pipes and buffers, its
 * timer and every count it holds.  The struct is freed later by
 * flb_conn_free_dead; events still queued for it are ignored.  No-op on a
 * closed connection. */
void flb_conn_close(struct flb_worker *w, struct flb_conn *c, int rst_mask);

/* Free the connections closed during this event batch.  w: the worker. */
void flb_conn_free_dead(struct flb_worker *w);

/* Give waiting connections the pipes and buffers freed meanwhile.
 * w: the worker. */
void flb_conn_run_waiters(struct flb_worker *w);

#endif /* FLB_CONN_H */
