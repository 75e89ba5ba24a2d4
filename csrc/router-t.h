/* router-t.h: types of the HTTP/1.1 route matcher.
 *
 * A router is an ordered list of routes built once (flb_router_new,
 * flb_router_add) and then only read: the first route whose conditions all
 * hold wins.  It will live in a config snapshot and be read by workers
 * without locks.  Functions are in router.h. */
#ifndef FLB_ROUTER_T_H
#define FLB_ROUTER_T_H

#include <stddef.h>
#include <stdint.h>

/* Bounds enforced by flb_router_add. */
#define FLB_ROUTER_MAX_ROUTES  4096 /* routes per router */
#define FLB_ROUTER_MAX_STR     4096 /* bytes in one host, path, prefix, method, name or value */
#define FLB_ROUTER_MAX_METHODS 16   /* methods per route */
#define FLB_ROUTER_MAX_CONDS   16   /* header conditions, and cookie conditions, per route */

/* How flb_route_spec.path is compared with the request path. */
enum flb_route_path_kind {
	FLB_ROUTE_PATH_PREFIX = 0, /* the request path starts with it (bytes, no segment rule) */
	FLB_ROUTE_PATH_EXACT = 1   /* the request path equals it */
};

/* A header or cookie condition.  name is required; value NULL means "is
 * present", otherwise some occurrence must equal value exactly.  Header
 * names compare case-insensitively, cookie names case-sensitively. */
struct flb_route_kv {
	const char *name;
	const char *value;
};

/* What flb_router_add copies into a route.  Strings are NUL-terminated;
 * NULL (or 0 counts) means "no such condition".  A spec with no condition
 * is a default route.
 *  host: "api.example.com" (exact) or "*.example.com" (one or more labels
 *    before ".example.com"); case-insensitive; no port; an IPv6 literal is
 *    written with its brackets, "[::1]".  One trailing dot is ignored.
 *  path, path_kind: compared with the request path (the target before '?'),
 *    case-sensitive, no decoding or normalisation.  Must start with '/'.
 *  methods: the request method must be one of these (case-sensitive).
 *  headers, cookies: all of them must hold.
 *  backend: returned as is in flb_route_result.backend.
 *  strip_prefix, rewrite_prefix: the target rewrite.  If the request path
 *    starts with the cut prefix (strip_prefix, or the route's path when only
 *    rewrite_prefix is given), that prefix is replaced by rewrite_prefix
 *    ("" when NULL); an empty result path becomes "/".  Both must start
 *    with '/'; rewrite_prefix without strip_prefix needs a path. */
struct flb_route_spec {
	const char *host;
	const char *path;
	int path_kind;                 /* enum flb_route_path_kind */
	const char *const *methods;
	size_t num_methods;
	const struct flb_route_kv *headers;
	size_t num_headers;
	const struct flb_route_kv *cookies;
	size_t num_cookies;
	uint32_t backend;
	const char *strip_prefix;
	const char *rewrite_prefix;
};

/* The outcome of flb_router_match.  The target to send upstream is
 * prefix[0..prefix_len) followed by rest[0..rest_len): prefix points into
 * the router (or a constant "/"), rest into the request buffer, so both live
 * as long as the router and the buffer.  It is always origin-form for an
 * origin- or absolute-form request; "*" and authority-form pass as is. */
struct flb_route_result {
	int route;            /* index of the matching route, or -1 */
	uint32_t backend;     /* the route's backend (0 when route is -1) */
	int rewritten;        /* 1 when the route's strip/rewrite applied */
	uint32_t prefix_len;
	uint32_t rest_len;
	const char *prefix;
	const char *rest;
};

/* The router; opaque, see router.c. */
struct flb_router;

#endif /* FLB_ROUTER_T_H */
