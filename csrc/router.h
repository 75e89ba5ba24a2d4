/* router.h: the HTTP/1.1 route matcher.  Types are in router-t.h.
 * Build a router on one thread, then share it read-only: flb_router_match is
 * reentrant, lock-free and allocates nothing. */
#ifndef FLB_ROUTER_H
#define FLB_ROUTER_H

#include "http1-t.h"
#include "router-t.h"

/* Create an empty router.
 * Returns the router (owned by the caller, freed by flb_router_free), or
 * NULL when out of memory. */
struct flb_router *flb_router_new(void);

/* Append a route (it is tried after every route added before it).
 * r: the router, not yet shared with readers.
 * spec: the route; every string and array is copied, so spec may be freed
 *   after the call.  See struct flb_route_spec for the fields and bounds.
 * Returns the new route's index (>= 0), or a negative errno: -EINVAL for a
 * NULL argument or an invalid field (bad host pattern, path or prefix not
 * starting with '/', empty name or method, bad path_kind, rewrite_prefix
 * without strip_prefix nor path), -E2BIG for a string over
 * FLB_ROUTER_MAX_STR or a list over FLB_ROUTER_MAX_METHODS/_CONDS, -ENOSPC
 * past FLB_ROUTER_MAX_ROUTES routes, -ENOMEM.  On error r is unchanged. */
int flb_router_add(struct flb_router *r, const struct flb_route_spec *spec);

/* Number of routes.
 * r: the router.
 * Returns how many routes flb_router_add accepted. */
unsigned flb_router_count(const struct flb_router *r);

/* Find the first route matching a parsed request.
 * r: the router.
 * req: a head parsed by flb_http_parse_request (method, target, headers,
 *   num_headers, host_index; its slices must still be valid).  For an
 *   absolute-form target the authority stands for Host (RFC 9112 3.2.2).
 * out: receives the route, backend and upstream target; always written.
 * Returns the route index, or -1 when no route matches (then out->route is
 * -1 and the target is passed as for a route without rewrite). */
int flb_router_match(const struct flb_router *r, const struct flb_http_msg *req,
                     struct flb_route_result *out);

/* Free a router and everything it owns.
 * r: the router, or NULL (nothing happens). */
void flb_router_free(struct flb_router *r);

#endif /* FLB_ROUTER_H */
