/* h1proxy.h: the HTTP/1.1 reverse proxy (listener mode http).  Types in
 * h1proxy-t.h; the request path is described at the top of h1proxy.c.
 * Everything here runs on the connection's worker thread. */
#ifndef FLB_H1PROXY_H
#define FLB_H1PROXY_H

#include <stdint.h>

#include "h1proxy-t.h"

struct flb_worker;

/* The connection ops of mode http (conn-t.h). */
extern const struct flb_conn_ops flb_h1_ops;

/* Readiness on an upstream connection (epoll data tagged FLB_TAG_UP).
 * w: the worker; up: the upstream connection; events: epoll events.
 * Drives its owner's transaction, or closes an idle one the server closed. */
void flb_h1_up_io(struct flb_worker *w, struct flb_upconn *up, uint32_t events);

/* Free the upstream connections closed during this event batch.
 * w: the worker. */
void flb_h1_free_dead(struct flb_worker *w);

/* Close every idle upstream connection of the worker (at its exit).
 * w: the worker. */
void flb_h1_worker_cleanup(struct flb_worker *w);

#endif /* FLB_H1PROXY_H */
