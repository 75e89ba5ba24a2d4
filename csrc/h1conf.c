/* h1conf.c: building the http-mode parts of a snapshot (h1conf.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alog.h"
#include "h1conf.h"
#include "h1rewrite.h"
#include "pool-t.h"
#include "router.h"

#define DEFAULT_POOL_IDLE_MS 4000u
#define DEFAULT_POOL_MAX_IDLE 32u
#define MAX_COOKIE_NAME 64u

/* Fill a route's header-rewrite conf from the listener settings and the
 * route's own ops.  rt: the route (its req_ops/resp_ops set or NULL);
 * hs: the listener's settings.  Returns 0 or FLB_H1RW_E_NAME. */
static int route_h1_init(struct flb_http_route *rt, const struct flb_http_settings *hs)
{
	const char *rid = hs->request_id_header;

	return flb_h1_conf_init(&rt->h1, hs->rw_flags, rid, rid ? strlen(rid) : 0,
	                        rt->req_ops, rt->resp_ops);
}

/* Make a listener's http part (contract in h1conf.h). */
struct flb_http_lsn *flb_http_lsn_new(uint32_t default_bk, const struct flb_http_settings *hs,
                                      char *err, size_t errlen)
{
	struct flb_http_lsn *h;

	if (hs->max_head > FLB_BUF_SIZE || (hs->max_head && hs->max_head < 64)) {
		snprintf(err, errlen, "max_header_size must be in 64..%u bytes", FLB_BUF_SIZE);
		return NULL;
	}
	if (hs->access_log != NULL &&
	    (hs->access_log[0] == 0 || (hs->access_log_format != FLB_ALOG_COMBINED &&
	                                hs->access_log_format != FLB_ALOG_JSON))) {
		snprintf(err, errlen, "access_log: empty path or unknown format");
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL || (hs->access_log && (h->alog_path = strdup(hs->access_log)) == NULL)) {
		free(h);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->set = *hs;
	h->set.request_id_header = NULL;
	h->set.access_log = NULL;
	if (h->set.max_head == 0)
		h->set.max_head = FLB_H1_DEFAULT_MAX_HEAD;
	h->dflt.backend = default_bk;
	if (route_h1_init(&h->dflt, hs) < 0) {
		snprintf(err, errlen, "request_id: not a valid header name");
		flb_http_lsn_free(h);
		return NULL;
	}
	return h;
}

/* Build one ops list from the binding's array.
 * out: receives the list (NULL when n == 0); ops, n: the operations;
 * what: "request_headers" or "response_headers" for messages.
 * Returns 0, or a negative errno with a message in err. */
static int build_ops(struct flb_h1_ops **out, const struct flb_hdr_op *ops, uint32_t n,
                     const char *what, char *err, size_t errlen)
{
	struct flb_h1_ops *l;

	*out = NULL;
	if (n == 0)
		return 0;
	l = malloc(sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	flb_h1_ops_init(l);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = ops[i].name ? ops[i].name : "";
		const char *value = ops[i].value ? ops[i].value : "";
		int rc = flb_h1_ops_add(l, ops[i].kind, name, strlen(name), value, strlen(value));

		if (rc < 0) {
			snprintf(err, errlen, "%s: header %s: %s", what, name,
			         rc == FLB_H1RW_E_NAME ? "not a header name a route may change" :
			         rc == FLB_H1RW_E_VALUE ? "invalid value" :
			         rc == FLB_H1RW_E_FULL ? "too many operations" : "invalid operation");
			free(l);
			return -EINVAL;
		}
	}
	*out = l;
	return 0;
}

/* Free what a route owns.  rt: the route. */
static void route_free(struct flb_http_route *rt)
{
	free(rt->req_ops);
	free(rt->resp_ops);
	rt->req_ops = rt->resp_ops = NULL;
}

/* Append a route (contract in h1conf.h). */
int flb_http_lsn_add_route(struct flb_http_lsn *h, const struct flb_route_spec *spec,
                           const struct flb_route_extra *ex, uint32_t nbk,
                           char *err, size_t errlen)
{
	static const struct flb_route_extra none;
	struct flb_http_route rt;
	int rc;

	if (ex == NULL)
		ex = &none;
	if (spec->backend != FLB_NO_BK && spec->backend >= nbk) {
		snprintf(err, errlen, "route %u: no such backend", h->nroutes);
		return -EINVAL;
	}
	memset(&rt, 0, sizeof(rt));
	rt.backend = spec->backend;
	rt.connect_timeout_ms = ex->connect_timeout_ms;
	rt.response_timeout_ms = ex->response_timeout_ms;
	rt.max_body = ex->max_body;
	rc = build_ops(&rt.req_ops, ex->req_ops, ex->nreq, "request_headers", err, errlen);
	if (rc == 0)
		rc = build_ops(&rt.resp_ops, ex->resp_ops, ex->nresp, "response_headers", err, errlen);
	/* Same flags and request-id name as the listener's default route. */
	if (rc == 0 && flb_h1_conf_init(&rt.h1, h->dflt.h1.flags, h->dflt.h1.rid_name,
	                                h->dflt.h1.rid_name_len, rt.req_ops, rt.resp_ops) < 0)
		rc = -EINVAL;
	if (rc == 0 && h->nroutes == h->caproutes) {
		uint32_t cap = h->caproutes ? h->caproutes * 2 : 8;
		struct flb_http_route *n = realloc(h->routes, cap * sizeof(*n));

		if (n == NULL) {
			rc = -ENOMEM;
		} else {
			h->routes = n;
			h->caproutes = cap;
		}
	}
	if (rc == 0 && h->router == NULL && (h->router = flb_router_new()) == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		rc = flb_router_add(h->router, spec);
		if (rc < 0)
			snprintf(err, errlen, "route %u: %s", h->nroutes,
			         rc == -E2BIG ? "a string or list is too long" :
			         rc == -ENOSPC ? "too many routes" :
			         rc == -ENOMEM ? "out of memory" : "invalid match or prefix");
	}
	if (rc < 0) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		route_free(&rt);
		return rc;
	}
	/* The router's index and ours stay equal: both only append. */
	h->routes[h->nroutes] = rt;
	/* h1.req_ops/resp_ops point at the heap lists, which do not move. */
	return (int)h->nroutes++;
}

/* Free a listener's http part (contract in h1conf.h). */
void flb_http_lsn_free(struct flb_http_lsn *h)
{
	if (h == NULL)
		return;
	for (uint32_t i = 0; i < h->nroutes; i++)
		route_free(&h->routes[i]);
	free(h->routes);
	flb_router_free(h->router);
	flb_alog_release(h->alog);
	free(h->alog_path);
	free(h);
}

/* Returns 1 when s is a non-empty token of at most MAX_COOKIE_NAME bytes. */
static int is_token(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > MAX_COOKIE_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", ch))
			return 0;
	}
	return 1;
}

/* Fill a backend's http part with the defaults (contract in h1conf.h). */
void flb_http_bk_default(struct flb_http_bk *hb)
{
	memset(hb, 0, sizeof(*hb));
	hb->hkey = FLB_HKEY_CLIENT_IP;
	hb->pool_max_idle = DEFAULT_POOL_MAX_IDLE;
	hb->pool_idle_ms = DEFAULT_POOL_IDLE_MS;
}

/* Free a backend's http strings (contract in h1conf.h). */
void flb_http_bk_free(struct flb_http_bk *hb)
{
	free(hb->hkey_name);
	free(hb->sticky);
	hb->hkey_name = hb->sticky = NULL;
	hb->hkey_name_len = hb->sticky_len = 0;
}

/* Set a backend's http part (contract in h1conf.h). */
int flb_http_bk_set(struct flb_http_bk *hb, int hkey, const char *hkey_name,
                    const char *sticky, uint32_t pool_max_idle, uint32_t pool_idle_ms,
                    int retry_unsafe)
{
	char *name = NULL, *st = NULL;

	if (hkey < 0 || hkey >= FLB_HKEY_COUNT)
		return -EINVAL;
	if (hkey == FLB_HKEY_HEADER || hkey == FLB_HKEY_COOKIE) {
		if (!is_token(hkey_name))
			return -EINVAL;
		if ((name = strdup(hkey_name)) == NULL)
			return -ENOMEM;
	}
	if (sticky != NULL) {
		if (!is_token(sticky)) {
			free(name);
			return -EINVAL;
		}
		if ((st = strdup(sticky)) == NULL) {
			free(name);
			return -ENOMEM;
		}
	}
	flb_http_bk_free(hb);
	hb->hkey = (uint8_t)hkey;
	hb->hkey_name = name;
	hb->hkey_name_len = name ? (uint32_t)strlen(name) : 0;
	hb->sticky = st;
	hb->sticky_len = st ? (uint32_t)strlen(st) : 0;
	hb->pool_max_idle = pool_max_idle;
	hb->pool_idle_ms = pool_idle_ms ? pool_idle_ms : DEFAULT_POOL_IDLE_MS;
	hb->retry_unsafe = retry_unsafe != 0;
	return 0;
}
