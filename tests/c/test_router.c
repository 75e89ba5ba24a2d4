/* test_router.c: unit tests of the route matcher (csrc/router.c).
 * Requests are real heads parsed by flb_http_parse_request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compiler.h"
#include "http1.h"
#include "router.h"

#define NH 32

/* A parsed request kept with its buffer and header array. */
struct req {
	char buf[2048];
	struct flb_http_header hdrs[NH];
	struct flb_http_msg msg;
};

/* Parse head into q; CHECKs that it parses completely. */
static void parse(struct req *q, const char *head)
{
	size_t n = strlen(head);
	int rc;

	memset(q, 0, sizeof(*q));
	memcpy(q->buf, head, n);
	q->msg.headers = q->hdrs;
	q->msg.num_headers = NH;
	rc = flb_http_parse_request(q->buf, n, 0, 0, &q->msg);
	CHECK_EQ(rc, (long long)n);
}

/* Route "head" through r; returns the route index, writes the upstream
 * target (prefix + rest) as a C string into t. */
static int route(const struct flb_router *r, const char *head, char *t, size_t tn,
                 struct flb_route_result *res)
{
	struct req q;
	int idx;

	parse(&q, head);
	idx = flb_router_match(r, &q.msg, res);
	CHECK_EQ(idx, res->route);
	CHECK(res->prefix_len + res->rest_len < tn);
	memcpy(t, res->prefix, res->prefix_len);
	memcpy(t + res->prefix_len, res->rest, res->rest_len);
	t[res->prefix_len + res->rest_len] = '\0';
	return idx;
}

/* Route and return just the index. */
static int idx_of(const struct flb_router *r, const char *head)
{
	struct flb_route_result res;
	char t[2048];

	return route(r, head, t, sizeof(t), &res);
}

/* Build a router with a single route from spec. */
static struct flb_router *one(const struct flb_route_spec *s)
{
	struct flb_router *r = flb_router_new();

	CHECK(r != NULL);
	CHECK_EQ(flb_router_add(r, s), 0);
	return r;
}

static void test_host_exact(void)
{
	struct flb_route_spec s = { .host = "API.Example.com", .backend = 7 };
	struct flb_router *r = one(&s);
	struct flb_route_result res;
	char t[256];

	CHECK_EQ(route(r, "GET /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_EQ(res.backend, 7);
	CHECK_EQ(res.rewritten, 0);
	CHECK_MEM(t, strlen(t), "/x");
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: API.EXAMPLE.COM\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: api.example.com:8080\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: api.example.com.\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: api.example.com.:80\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: api.example.co\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: xapi.example.com\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: api.example.com.evil\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: \r\n\r\n"), -1);
	/* HTTP/1.0 without Host: host routes never match */
	CHECK_EQ(idx_of(r, "GET / HTTP/1.0\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.0\r\nHost: api.example.com\r\n\r\n"), 0);
	flb_router_free(r);
}

static void test_host_wildcard(void)
{
	struct flb_route_spec s = { .host = "*.Example.com", .backend = 1 };
	struct flb_router *r = one(&s);

	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a.b.example.com\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: A.EXAMPLE.COM:443\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: .example.com\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: aexample.com\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a.example.com.evil\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n"), -1);
	flb_router_free(r);
}

static void test_host_ipv6(void)
{
	struct flb_route_spec s = { .host = "[::1]" };
	struct flb_route_spec s4 = { .host = "127.0.0.1" };
	struct flb_router *r = flb_router_new();

	CHECK_EQ(flb_router_add(r, &s), 0);
	CHECK_EQ(flb_router_add(r, &s4), 1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: [::2]:8080\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"), 1);
	flb_router_free(r);
	/* upper-case hex in the pattern and in the request */
	struct flb_route_spec s6 = { .host = "[2001:DB8::A]" };
	r = one(&s6);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: [2001:db8::a]:1\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: [2001:DB8::A]\r\n\r\n"), 0);
	flb_router_free(r);
}

static void test_path(void)
{
	struct flb_route_spec a = { .path = "/v1/", .backend = 1 };
	struct flb_route_spec b = { .path = "/health", .path_kind = FLB_ROUTE_PATH_EXACT, .backend = 2 };
	struct flb_router *r = flb_router_new();

	CHECK_EQ(flb_router_add(r, &a), 0);
	CHECK_EQ(flb_router_add(r, &b), 1);
	CHECK_EQ(flb_router_count(r), 2);
	CHECK_EQ(idx_of(r, "GET /v1/items HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET /v1/ HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET /v1 HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET /V1/items HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
	CHECK_EQ(idx_of(r, "GET /health?full=1 HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
	CHECK_EQ(idx_of(r, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET /health/ HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	/* the query is not part of the path */
	CHECK_EQ(idx_of(r, "GET /x?p=/v1/ HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	flb_router_free(r);
}

static void test_method(void)
{
	static const char *const m[] = { "GET", "HEAD" };
	struct flb_route_spec s = { .methods = m, .num_methods = 2 };
	struct flb_router *r = one(&s);

	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "get / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GETS / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "HEA / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	flb_router_free(r);
}

static void test_header(void)
{
	static const struct flb_route_kv present[] = { { "X-Canary", NULL } };
	static const struct flb_route_kv equal[] = { { "x-env", "staging" }, { "X-Team", "a" } };
	struct flb_route_spec a = { .headers = present, .num_headers = 1, .backend = 1 };
	struct flb_route_spec b = { .headers = equal, .num_headers = 2, .backend = 2 };
	struct flb_router *r = flb_router_new();

	CHECK_EQ(flb_router_add(r, &a), 0);
	CHECK_EQ(flb_router_add(r, &b), 1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nx-canary: \r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-CANARY: 1\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Canar: 1\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: staging\r\nX-Team: a\r\n\r\n"), 1);
	/* value exact, case-sensitive; OWS is trimmed by the parser */
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Env:   staging  \r\nx-team:a\r\n\r\n"), 1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: Staging\r\nX-Team: a\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: staging\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: stag\r\nX-Team: a\r\n\r\n"), -1);
	/* any of several lines may carry the value */
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: prod\r\nX-Team: a\r\nX-Env: staging\r\n\r\n"), 1);
	flb_router_free(r);
}

static void test_cookie(void)
{
	static const struct flb_route_kv ck[] = { { "session", NULL }, { "ab", "b" } };
	struct flb_route_spec s = { .cookies = ck, .num_cookies = 2, .backend = 3 };
	struct flb_router *r = one(&s);

	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: session=xyz; ab=b\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: ab=b;session=\r\n\r\n"), 0);
	/* across several Cookie lines */
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1; session=1\r\n"
	                   "Accept: */*\r\ncookie: y=2; ab=b\r\n\r\n"), 0);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: session=1\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: session=1; ab=bb\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: session=1; xab=b\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: Session=1; ab=b\r\n\r\n"), -1);
	/* a value containing the name, a pair without '=', empty pairs */
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: x=session; ab=b\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: session; ab=b\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nCookie: ;; session=1 ;; ab = b ;\r\n\r\n"), 0);
	/* not a Cookie header */
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\nX-Cookie: session=1; ab=b\r\n\r\n"), -1);
	CHECK_EQ(idx_of(r, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
	flb_router_free(r);
}

static void test_order_default(void)
{
	static const char *const post[] = { "POST" };
	struct flb_route_spec s[] = {
		{ .host = "api.example.com", .path = "/v1/", .backend = 10 },
		{ .host = "*.example.com", .backend = 11 },
		{ .path = "/v1/", .methods = post, .num_methods = 1, .backend = 12 },
		{ .backend = 13 },                       /* default */
		{ .host = "other.org", .backend = 14 },  /* shadowed by the default */
	};
	struct flb_router *r = flb_router_new();
	struct flb_route_result res;
	char t[256];

	for (size_t i = 0; i < FLB_ARRAY_SIZE(s); i++)
		CHECK_EQ(flb_router_add(r, &s[i]), (long long)i);
	CHECK_EQ(route(r, "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_EQ(res.backend, 10);
	CHECK_EQ(route(r, "GET /v2/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n", t, sizeof(t), &res), 1);
	CHECK_EQ(res.backend, 11);
	CHECK_EQ(route(r, "POST /v1/x HTTP/1.1\r\nHost: other.org\r\nContent-Length: 0\r\n\r\n",
	               t, sizeof(t), &res), 2);
	CHECK_EQ(res.backend, 12);
	CHECK_EQ(route(r, "GET /v1/x HTTP/1.1\r\nHost: other.org\r\n\r\n", t, sizeof(t), &res), 3);
	CHECK_EQ(res.backend, 13);
	CHECK_EQ(route(r, "GET / HTTP/1.0\r\n\r\n", t, sizeof(t), &res), 3);
	CHECK_MEM(t, strlen(t), "/");
	flb_router_free(r);
}

static void test_strip(void)
{
	struct flb_route_spec s = { .path = "/v1", .strip_prefix = "/v1", .backend = 2 };
	struct flb_router *r = one(&s);
	struct flb_route_result res;
	char t[256];

	CHECK_EQ(route(r, "GET /v1/items?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_EQ(res.rewritten, 1);
	CHECK_MEM(t, strlen(t), "/items?x=1");
	CHECK_EQ(route(r, "GET /v1/items HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/items");
	CHECK_EQ(res.prefix_len, 0);
	CHECK_EQ(route(r, "GET /v1 HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/");
	CHECK_EQ(route(r, "GET /v1?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/?x=1");
	CHECK_EQ(route(r, "GET /v1/ HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/");
	/* the query never takes part in the strip */
	CHECK_EQ(route(r, "GET /v1x?/v1 HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/x?/v1");
	flb_router_free(r);

	/* strip_prefix that the path does not start with: target unchanged */
	struct flb_route_spec s2 = { .strip_prefix = "/api/" };
	r = one(&s2);
	CHECK_EQ(route(r, "GET /api/a/b?q HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/a/b?q");
	CHECK_EQ(route(r, "GET /ap?q HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_EQ(res.rewritten, 0);
	CHECK_MEM(t, strlen(t), "/ap?q");
	flb_router_free(r);
}

static void test_rewrite(void)
{
	struct flb_route_spec s = { .path = "/old/", .rewrite_prefix = "/new/v2/" };
	struct flb_route_spec e = { .path = "/ping", .path_kind = FLB_ROUTE_PATH_EXACT,
	                            .rewrite_prefix = "/health" };
	struct flb_route_spec both = { .path = "/x/", .strip_prefix = "/x", .rewrite_prefix = "/y" };
	struct flb_router *r = flb_router_new();
	struct flb_route_result res;
	char t[256];

	CHECK_EQ(flb_router_add(r, &s), 0);
	CHECK_EQ(flb_router_add(r, &e), 1);
	CHECK_EQ(flb_router_add(r, &both), 2);
	CHECK_EQ(route(r, "GET /old/a/b HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/new/v2/a/b");
	CHECK_MEM(res.prefix, res.prefix_len, "/new/v2/");
	CHECK_MEM(res.rest, res.rest_len, "a/b");
	CHECK_EQ(route(r, "GET /old/?k=v HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/new/v2/?k=v");
	CHECK_EQ(route(r, "GET /ping?x HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 1);
	CHECK_MEM(t, strlen(t), "/health?x");
	CHECK_EQ(route(r, "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 1);
	CHECK_MEM(t, strlen(t), "/health");
	CHECK_EQ(route(r, "GET /x/z HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), 2);
	CHECK_MEM(t, strlen(t), "/y/z");
	CHECK_EQ(route(r, "GET /nope?q HTTP/1.1\r\nHost: a\r\n\r\n", t, sizeof(t), &res), -1);
	CHECK_EQ(res.backend, 0);
	CHECK_EQ(res.rewritten, 0);
	CHECK_MEM(t, strlen(t), "/nope?q");
	flb_router_free(r);
}

static void test_absolute_form(void)
{
	struct flb_route_spec s = { .host = "api.example.com", .path = "/v1/", .strip_prefix = "/v1" };
	struct flb_route_spec d = { .strip_prefix = "/" };
	struct flb_router *r = flb_router_new();
	struct flb_route_result res;
	char t[256];

	CHECK_EQ(flb_router_add(r, &s), 0);
	CHECK_EQ(flb_router_add(r, &d), 1);
	/* the authority stands for Host, and the target goes out origin-form */
	CHECK_EQ(route(r, "GET http://API.example.com:80/v1/a?b HTTP/1.1\r\nHost: other\r\n\r\n",
	               t, sizeof(t), &res), 0);
	CHECK_MEM(t, strlen(t), "/a?b");
	CHECK_EQ(route(r, "GET https://other/v1/a HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
	               t, sizeof(t), &res), 1);
	CHECK_MEM(t, strlen(t), "/v1/a");
	CHECK_EQ(route(r, "GET http://api.example.com HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
	               t, sizeof(t), &res), 1);
	CHECK_MEM(t, strlen(t), "/");
	CHECK_EQ(route(r, "GET http://api.example.com?q=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
	               t, sizeof(t), &res), 1);
	CHECK_MEM(t, strlen(t), "/?q=1");
	flb_router_free(r);

	r = flb_router_new();
	CHECK_EQ(route(r, "GET http://a.b?q=1 HTTP/1.1\r\nHost: a.b\r\n\r\n", t, sizeof(t), &res), -1);
	CHECK_MEM(t, strlen(t), "/?q=1");
	CHECK_EQ(route(r, "GET http://a.b/c HTTP/1.1\r\nHost: a.b\r\n\r\n", t, sizeof(t), &res), -1);
	CHECK_MEM(t, strlen(t), "/c");
	flb_router_free(r);
}

static void test_builder_errors(void)
{
	struct flb_router *r = flb_router_new();
	static const char *const bad_m[] = { "GET", "" };
	static const char *const null_m[] = { NULL };
	static const struct flb_route_kv no_name[] = { { NULL, "v" } };
	static const struct flb_route_kv empty_name[] = { { "", NULL } };
	char *big = malloc(FLB_ROUTER_MAX_STR + 2);
	struct flb_route_kv big_val[] = { { "x", big } };
	struct flb_route_kv many[FLB_ROUTER_MAX_CONDS + 1];
	const char *methods[FLB_ROUTER_MAX_METHODS + 1];

	CHECK(big != NULL);
	memset(big, 'a', FLB_ROUTER_MAX_STR + 1);
	big[FLB_ROUTER_MAX_STR + 1] = '\0';
	for (size_t i = 0; i < FLB_ARRAY_SIZE(many); i++)
		many[i] = (struct flb_route_kv){ "x", NULL };
	for (size_t i = 0; i < FLB_ARRAY_SIZE(methods); i++)
		methods[i] = "GET";

	CHECK_EQ(flb_router_add(NULL, &(struct flb_route_spec){ 0 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, NULL), -EINVAL);
	/* hosts */
	static const char *const bad_hosts[] = {
		"", "*", "*.", "**.a", "a.*.b", "*a.b", "a:80", "[::1", "::1", "[::1]:80",
		"a b", "a/b", "*.[::1]", "[]", ".", "*..a",
	};
	for (size_t i = 0; i < FLB_ARRAY_SIZE(bad_hosts); i++) {
		int rc = flb_router_add(r, &(struct flb_route_spec){ .host = bad_hosts[i] });
		if (rc != -EINVAL)
			fprintf(stderr, "host %s accepted\n", bad_hosts[i]);
		CHECK_EQ(rc, -EINVAL);
	}
	/* paths and prefixes */
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .path = "" }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .path = "v1" }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .path = "/a?b" }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .path = "/a b" }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .path = "/", .path_kind = 2 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .strip_prefix = "v1" }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .path = "/", .rewrite_prefix = "" }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .rewrite_prefix = "/x" }), -EINVAL);
	/* methods, headers, cookies */
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .methods = bad_m, .num_methods = 2 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .methods = null_m, .num_methods = 1 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .num_methods = 1 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .methods = methods,
	                        .num_methods = FLB_ROUTER_MAX_METHODS + 1 }), -E2BIG);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .headers = no_name, .num_headers = 1 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .cookies = empty_name, .num_cookies = 1 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .num_cookies = 1 }), -EINVAL);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .headers = many,
	                        .num_headers = FLB_ROUTER_MAX_CONDS + 1 }), -E2BIG);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .headers = many,
	                        .num_headers = FLB_ROUTER_MAX_CONDS }), 0);
	/* string bounds: MAX_STR + 1 is refused, MAX_STR is accepted */
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .cookies = big_val, .num_cookies = 1 }), -E2BIG);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .host = big }), -E2BIG);
	big[FLB_ROUTER_MAX_STR] = '\0';
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .cookies = big_val, .num_cookies = 1 }), 1);
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ .host = big }), 2);
	CHECK_EQ(flb_router_count(r), 3);
	flb_router_free(r);

	/* route count bound; strings are copied (spec may go away) */
	r = flb_router_new();
	char host[32];
	for (int i = 0; i < FLB_ROUTER_MAX_ROUTES; i++) {
		snprintf(host, sizeof(host), "h%d.example", i);
		if (flb_router_add(r, &(struct flb_route_spec){ .host = host, .backend = (uint32_t)i }) != i) {
			CHECK(0);
			break;
		}
	}
	memset(host, 0, sizeof(host));
	CHECK_EQ(flb_router_add(r, &(struct flb_route_spec){ 0 }), -ENOSPC);
	CHECK_EQ(flb_router_count(r), FLB_ROUTER_MAX_ROUTES);
	struct flb_route_result res;
	char t[64];
	CHECK_EQ(route(r, "GET / HTTP/1.1\r\nHost: h4095.example\r\n\r\n", t, sizeof(t), &res), 4095);
	CHECK_EQ(res.backend, 4095);
	CHECK_EQ(route(r, "GET / HTTP/1.1\r\nHost: h17.EXAMPLE:1\r\n\r\n", t, sizeof(t), &res), 17);
	flb_router_free(r);
	flb_router_free(NULL);
	free(big);
}

int main(void)
{
	test_host_exact();
	test_host_wildcard();
	test_host_ipv6();
	test_path();
	test_method();
	test_header();
	test_cookie();
	test_order_default();
	test_strip();
	test_rewrite();
	test_absolute_form();
	test_builder_errors();
	return CHECK_REPORT();
}
