/* router.c: the HTTP/1.1 route matcher (see router-t.h for the semantics).
 *
 * Each route owns one allocation (its blob) holding its condition arrays and
 * every string it copied, lowercased where the comparison is
 * case-insensitive.  Matching first derives a view of the request (host
 * without port, path before '?'), then tries routes in order, cheapest
 * conditions first.  Nothing is allocated or written but *out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "ascii.h"
#include "router.h"

/* A copied string. */
struct rstr {
	const char *p;
	uint32_t len;
};

/* A header or cookie condition; has_value 0 means "present". */
struct rkv {
	struct rstr name;
	struct rstr value;
	int has_value;
};

#define R_HOST      0x01u /* host condition */
#define R_HOST_WILD 0x02u /* host is a suffix ".example.com" */
#define R_PATH      0x04u /* path condition */
#define R_PATH_EXACT 0x08u
#define R_REWRITE   0x10u /* cut/put apply */

struct route {
	uint32_t flags;
	uint32_t backend;
	struct rstr host;   /* lowercased; for R_HOST_WILD the suffix with its dot */
	struct rstr path;
	struct rstr cut;    /* prefix removed by the rewrite */
	struct rstr put;    /* prefix inserted by the rewrite */
	const struct rstr *methods;
	const struct rkv *headers; /* names lowercased */
	const struct rkv *cookies;
	uint32_t num_methods;
	uint32_t num_headers;
	uint32_t num_cookies;
	char *blob;         /* owns every pointer above */
};

struct flb_router {
	struct route *routes;
	uint32_t n;
	uint32_t cap;
};

/* The request as the conditions see it. */
struct req_view {
	const char *host;   /* NULL when the request has none */
	const char *path;   /* path part; the constant "/" for "http://a?q" */
	const char *tail;   /* what follows path in the target (query, or rest) */
	uint32_t host_len;
	uint32_t path_len;
	uint32_t tail_len;
	int host_ready;     /* 0 until view_host ran on host/host_len (lazily) */
};

static const char slash[] = "/";

/* Length of s bounded by FLB_ROUTER_MAX_STR.
 * Returns 0 and *len, -EINVAL when s is NULL, -E2BIG when too long. */
static int str_len(const char *s, size_t *len)
{
	if (!s)
		return -EINVAL;
	*len = strnlen(s, FLB_ROUTER_MAX_STR + 1);
	return *len > FLB_ROUTER_MAX_STR ? -E2BIG : 0;
}

/* 1 when s[0..n) holds only visible ASCII (no space, CTL, DEL, >= 0x80). */
static int visible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* Check a host pattern: visible bytes, '*' only as a leading "*." with a
 * non-empty rest, ':' only inside a bracketed IPv6 literal.
 * Returns 0 or -EINVAL. */
static int host_check(const char *h, size_t n)
{
	size_t i = 0;

	if (n && h[n - 1] == '.')
		n--;
	if (n == 0 || !visible(h, n))
		return -EINVAL;
	if (h[0] == '*') {
		if (n < 3 || h[1] != '.' || h[2] == '.')
			return -EINVAL;
		i = 2;
	}
	if (h[i] == '[')
		return (i == 0 && h[n - 1] == ']' && n > 2 && !memchr(h + 1, '[', n - 2)
		        && !memchr(h + 1, ']', n - 2)) ? 0 : -EINVAL;
	for (; i < n; i++)
		if (h[i] == '*' || h[i] == ':' || h[i] == '[' || h[i] == ']' || h[i] == '/')
			return -EINVAL;
	return 0;
}

/* Check a path or prefix: starts with '/', visible bytes, no '?'.
 * Returns 0 or -EINVAL. */
static int path_check(const char *p, size_t n)
{
	return (n >= 1 && p[0] == '/' && visible(p, n) && !memchr(p, '?', n)) ? 0 : -EINVAL;
}

/* Validate a kv list and add its string bytes to *bytes.
 * Returns 0, -EINVAL or -E2BIG. */
static int kv_check(const struct flb_route_kv *kv, size_t n, size_t *bytes)
{
	size_t len;
	int rc;

	if (n > FLB_ROUTER_MAX_CONDS)
		return -E2BIG;
	if (n && !kv)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if ((rc = str_len(kv[i].name, &len)) < 0)
			return rc;
		if (len == 0 || !visible(kv[i].name, len))
			return -EINVAL;
		*bytes += len + 1;
		if (kv[i].value) {
			if ((rc = str_len(kv[i].value, &len)) < 0)
				return rc;
			*bytes += len + 1;
		}
	}
	return 0;
}

/* Bump allocator over a route's blob. */
struct bump {
	char *p;
};

/* Copy s[0..n) (lowercased when low) into the blob, NUL-terminated.
 * Returns the copy. */
static struct rstr put_str(struct bump *b, const char *s, size_t n, int low)
{
	struct rstr r = { b->p, (uint32_t)n };

	for (size_t i = 0; i < n; i++)
		b->p[i] = low ? (char)flb_ascii_lower((unsigned char)s[i]) : s[i];
	b->p[n] = '\0';
	b->p += n + 1;
	return r;
}

/* Copy a kv list into the array a, strings into the blob. */
static void put_kv(struct bump *b, struct rkv *a, const struct flb_route_kv *kv,
                   size_t n, int low_name)
{
	for (size_t i = 0; i < n; i++) {
		a[i].name = put_str(b, kv[i].name, strlen(kv[i].name), low_name);
		a[i].has_value = kv[i].value != NULL;
		if (kv[i].value)
			a[i].value = put_str(b, kv[i].value, strlen(kv[i].value), 0);
		else
			a[i].value = (struct rstr){ NULL, 0 };
	}
}

struct flb_router *flb_router_new(void)
{
	return calloc(1, sizeof(struct flb_router));
}

unsigned flb_router_count(const struct flb_router *r)
{
	return r ? r->n : 0;
}

int flb_router_add(struct flb_router *r, const struct flb_route_spec *s)
{
	size_t bytes = 0, len, host_len = 0, path_len = 0, strip_len = 0, rw_len = 0;
	struct route rt;
	struct bump b;
	int rc;

	if (!r || !s)
		return -EINVAL;
	if (r->n >= FLB_ROUTER_MAX_ROUTES)
		return -ENOSPC;
	memset(&rt, 0, sizeof(rt));

	/* Validate and size. */
	if (s->host) {
		if ((rc = str_len(s->host, &host_len)) < 0)
			return rc;
		if ((rc = host_check(s->host, host_len)) < 0)
			return rc;
		bytes += host_len + 1;
	}
	if (s->path) {
		if ((rc = str_len(s->path, &path_len)) < 0)
			return rc;
		if ((rc = path_check(s->path, path_len)) < 0)
			return rc;
		if (s->path_kind != FLB_ROUTE_PATH_PREFIX && s->path_kind != FLB_ROUTE_PATH_EXACT)
			return -EINVAL;
		bytes += path_len + 1;
	}
	if (s->strip_prefix) {
		if ((rc = str_len(s->strip_prefix, &strip_len)) < 0)
			return rc;
		if ((rc = path_check(s->strip_prefix, strip_len)) < 0)
			return rc;
		bytes += strip_len + 1;
	}
	if (s->rewrite_prefix) {
		if ((rc = str_len(s->rewrite_prefix, &rw_len)) < 0)
			return rc;
		if ((rc = path_check(s->rewrite_prefix, rw_len)) < 0)
			return rc;
		if (!s->strip_prefix && !s->path)
			return -EINVAL;
		bytes += rw_len + 1;
	}
	if (s->num_methods > FLB_ROUTER_MAX_METHODS)
		return -E2BIG;
	if (s->num_methods && !s->methods)
		return -EINVAL;
	for (size_t i = 0; i < s->num_methods; i++) {
		if ((rc = str_len(s->methods[i], &len)) < 0)
			return rc;
		if (len == 0 || !visible(s->methods[i], len))
			return -EINVAL;
		bytes += len + 1;
	}
	if ((rc = kv_check(s->headers, s->num_headers, &bytes)) < 0)
		return rc;
	if ((rc = kv_check(s->cookies, s->num_cookies, &bytes)) < 0)
		return rc;

	/* Room in the route array (doubling, bounded by MAX_ROUTES). */
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 8;
		struct route *nr;

		if (cap > FLB_ROUTER_MAX_ROUTES)
			cap = FLB_ROUTER_MAX_ROUTES;
		nr = realloc(r->routes, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		r->routes = nr;
		r->cap = cap;
	}

	/* One blob: arrays first (pointer-aligned), then the strings. */
	size_t arrays = (s->num_headers + s->num_cookies) * sizeof(struct rkv)
	              + s->num_methods * sizeof(struct rstr);
	rt.blob = malloc(arrays + bytes + 1);
	if (!rt.blob)
		return -ENOMEM;
	struct rkv *hdrs = (struct rkv *)(void *)rt.blob;
	struct rkv *cks = hdrs + s->num_headers;
	struct rstr *meths = (struct rstr *)(void *)(cks + s->num_cookies);
	b.p = rt.blob + arrays;

	rt.backend = s->backend;
	if (s->host) {
		size_t n = host_len;

		if (s->host[n - 1] == '.')
			n--;
		rt.flags |= R_HOST;
		if (s->host[0] == '*') {
			rt.flags |= R_HOST_WILD;
			rt.host = put_str(&b, s->host + 1, n - 1, 1); /* ".example.com" */
		} else {
			rt.host = put_str(&b, s->host, n, 1);
		}
	}
	if (s->path) {
		rt.flags |= R_PATH | (s->path_kind == FLB_ROUTE_PATH_EXACT ? R_PATH_EXACT : 0);
		rt.path = put_str(&b, s->path, path_len, 0);
	}
	if (s->strip_prefix || s->rewrite_prefix) {
		rt.flags |= R_REWRITE;
		rt.cut = s->strip_prefix ? put_str(&b, s->strip_prefix, strip_len, 0) : rt.path;
		rt.put = s->rewrite_prefix ? put_str(&b, s->rewrite_prefix, rw_len, 0)
		                           : (struct rstr){ slash, 0 };
	}
	for (size_t i = 0; i < s->num_methods; i++)
		meths[i] = put_str(&b, s->methods[i], strlen(s->methods[i]), 0);
	put_kv(&b, hdrs, s->headers, s->num_headers, 1);
	put_kv(&b, cks, s->cookies, s->num_cookies, 0);
	rt.methods = meths;
	rt.headers = hdrs;
	rt.cookies = cks;
	rt.num_methods = (uint32_t)s->num_methods;
	rt.num_headers = (uint32_t)s->num_headers;
	rt.num_cookies = (uint32_t)s->num_cookies;

	r->routes[r->n] = rt;
	return (int)r->n++;
}

void flb_router_free(struct flb_router *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n; i++)
		free(r->routes[i].blob);
	free(r->routes);
	free(r);
}

/* Reduce the raw Host value (or authority) in v->host/host_len to the host
 * name: drop the ":port", keep an IPv6 literal with its brackets, drop one
 * trailing dot.  Runs once, on the first route with a host condition;
 * routes then compare it case-insensitively with their lowercase host. */
static void view_host(struct req_view *v)
{
	const char *h = v->host, *e;
	uint32_t n = v->host_len, len = n;

	v->host_ready = 1;
	if (!h)
		return;
	if (n && h[0] == '[') {
		e = memchr(h, ']', n);
		if (e)
			len = (uint32_t)(e - h) + 1;
	} else {
		for (len = 0; len < n && h[len] != ':'; len++)
			;
		if (len && h[len - 1] == '.')
			len--;
	}
	v->host_len = len;
}

/* Build the request view of req (see struct req_view). */
static void view_init(struct req_view *v, const struct flb_http_msg *req)
{
	const char *t = req->target, *end = t + req->target_len, *p;
	uint32_t skip = 0;

	v->host = NULL;
	v->host_len = 0;
	v->host_ready = 0;
	if (req->host_index >= 0 && (size_t)req->host_index < req->num_headers) {
		v->host = req->headers[req->host_index].value;
		v->host_len = req->headers[req->host_index].value_len;
	}
	/* absolute-form: "http://authority/path?query" */
	if (req->target_len >= 7 && flb_ascii_ieq_lower(t, "http://", 7))
		skip = 7;
	else if (req->target_len >= 8 && flb_ascii_ieq_lower(t, "https://", 8))
		skip = 8;
	if (skip) {
		const char *a = t + skip, *ae = a, *at;

		while (ae < end && *ae != '/' && *ae != '?')
			ae++;
		at = a;
		for (const char *q = a; q < ae; q++)
			if (*q == '@')
				at = q + 1;
		v->host = at;
		v->host_len = (uint32_t)(ae - at);
		t = ae;
	}
	p = memchr(t, '?', (size_t)(end - t));
	if (!p)
		p = end;
	if (skip && p == t) {
		/* "http://a" or "http://a?q": the path is "/" */
		v->path = slash;
		v->path_len = 1;
		v->tail = t;
		v->tail_len = (uint32_t)(end - t);
		return;
	}
	v->path = t;
	v->path_len = (uint32_t)(p - t);
	v->tail = p;
	v->tail_len = (uint32_t)(end - p);
}

/* 1 when the request method is one of the route's. */
static int match_method(const struct route *rt, const struct flb_http_msg *req)
{
	for (uint32_t i = 0; i < rt->num_methods; i++)
		if (rt->methods[i].len == req->method_len
		    && flb_bytes_eq(rt->methods[i].p, req->method, req->method_len))
			return 1;
	return 0;
}

/* 1 when the request host satisfies the route's host condition. */
static int match_host(const struct route *rt, struct req_view *v)
{
	const char *h;

	if (flb_unlikely(!v->host_ready))
		view_host(v);
	if (!v->host)
		return 0;
	if (rt->flags & R_HOST_WILD) {
		if (v->host_len <= rt->host.len)
			return 0;
		h = v->host + v->host_len - rt->host.len;
	} else {
		if (v->host_len != rt->host.len)
			return 0;
		h = v->host;
	}
	return flb_ascii_ieq_lower(h, rt->host.p, rt->host.len);
}

/* 1 when the request path satisfies the route's path condition. */
static int match_path(const struct route *rt, const struct req_view *v)
{
	if (rt->flags & R_PATH_EXACT) {
		if (v->path_len != rt->path.len)
			return 0;
	} else if (v->path_len < rt->path.len) {
		return 0;
	}
	return flb_bytes_eq(v->path, rt->path.p, rt->path.len);
}

/* 1 when every header condition of the route holds. */
static int match_headers(const struct route *rt, const struct flb_http_msg *req)
{
	for (uint32_t c = 0; c < rt->num_headers; c++) {
		const struct rkv *kv = &rt->headers[c];
		int ok = 0;

		for (size_t i = 0; i < req->num_headers && !ok; i++) {
			const struct flb_http_header *h = &req->headers[i];

			if (h->name_len != kv->name.len || !flb_ascii_ieq_lower(h->name, kv->name.p, kv->name.len))
				continue;
			ok = !kv->has_value || (h->value_len == kv->value.len
			                        && flb_bytes_eq(h->value, kv->value.p, kv->value.len));
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* 1 when the Cookie value s[0..n) ("a=1; b=2") holds the cookie kv.
 * Pairs without '=' are ignored; names and values are compared exactly,
 * after trimming spaces and tabs around them (quotes are kept). */
static int cookie_in(const char *s, uint32_t n, const struct rkv *kv)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *ne, *ve, *semi;

		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		semi = memchr(p, ';', (size_t)(end - p));
		if (!semi)
			semi = end;
		ne = memchr(p, '=', (size_t)(semi - p));
		if (ne) {
			const char *v = ne + 1;

			while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
				ne--;
			while (v < semi && (*v == ' ' || *v == '\t'))
				v++;
			ve = semi;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if ((uint32_t)(ne - p) == kv->name.len && flb_bytes_eq(p, kv->name.p, kv->name.len)
			    && (!kv->has_value || ((uint32_t)(ve - v) == kv->value.len
			                           && flb_bytes_eq(v, kv->value.p, kv->value.len))))
				return 1;
		}
		p = semi;
	}
	return 0;
}

/* 1 when every cookie condition of the route holds, over all Cookie lines. */
static int match_cookies(const struct route *rt, const struct flb_http_msg *req)
{
	for (uint32_t c = 0; c < rt->num_cookies; c++) {
		int ok = 0;

		for (size_t i = 0; i < req->num_headers && !ok; i++) {
			const struct flb_http_header *h = &req->headers[i];

			if (h->name_len == 6 && flb_ascii_ieq_lower(h->name, "cookie", 6))
				ok = cookie_in(h->value, h->value_len, &rt->cookies[c]);
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* Write the upstream target for route rt (NULL: no route) into out. */
static void set_target(const struct route *rt, const struct req_view *v,
                       struct flb_route_result *out)
{
	int implicit = v->path == slash;

	out->rewritten = 0;
	if (rt && (rt->flags & R_REWRITE) && v->path_len >= rt->cut.len
	    && flb_bytes_eq(v->path, rt->cut.p, rt->cut.len)) {
		/* rest: what follows the cut prefix, up to the end of the target */
		if (implicit) {
			out->rest = v->tail;
			out->rest_len = v->tail_len;
		} else {
			out->rest = v->path + rt->cut.len;
			out->rest_len = v->path_len - rt->cut.len + v->tail_len;
		}
		out->prefix = rt->put.p;
		out->prefix_len = rt->put.len;
		if (rt->put.len == 0 && (out->rest_len == 0 || out->rest[0] != '/')) {
			out->prefix = slash;
			out->prefix_len = 1;
		}
		out->rewritten = 1;
		return;
	}
	if (implicit) {
		out->prefix = slash;
		out->prefix_len = 1;
		out->rest = v->tail;
		out->rest_len = v->tail_len;
	} else {
		out->prefix = slash;
		out->prefix_len = 0;
		out->rest = v->path;
		out->rest_len = v->path_len + v->tail_len;
	}
}

int flb_router_match(const struct flb_router *r, const struct flb_http_msg *req,
                     struct flb_route_result *out)
{
	struct req_view v;

	view_init(&v, req);
	for (uint32_t i = 0; i < r->n; i++) {
		const struct route *rt = &r->routes[i];

		if (rt->num_methods && !match_method(rt, req))
			continue;
		if ((rt->flags & R_HOST) && !match_host(rt, &v))
			continue;
		if ((rt->flags & R_PATH) && !match_path(rt, &v))
			continue;
		if (rt->num_headers && !match_headers(rt, req))
			continue;
		if (rt->num_cookies && !match_cookies(rt, req))
			continue;
		out->route = (int)i;
		out->backend = rt->backend;
		set_target(rt, &v, out);
		return (int)i;
	}
	out->route = -1;
	out->backend = 0;
	set_target(NULL, &v, out);
	return -1;
}
