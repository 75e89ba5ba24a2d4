/* test_h1rewrite.c: unit tests of h1rewrite.c, the HTTP/1.1 head rewriter.
 * Built and run under ASan + UBSan by `make -C tests/c`.
 *
 * Every case parses a real head with the http1.c parser, rewrites it,
 * compares the exact output bytes, and parses the output again to prove it
 * is a valid head.  Every successful rewrite is also repeated into exactly
 * sized heap buffers of every smaller capacity, each of which must fail with
 * FLB_H1RW_E_SPACE without writing past its end (ASan watches). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "h1rewrite.h"
#include "http1.h"

#define NH 64

/* Print the line of the test case when the check fails. */
#define CHECK_AT(line, cond) do { \
	unsigned long check_f_ = check_failed; \
	CHECK(cond); \
	if (check_failed != check_f_) \
		fprintf(stderr, "  (case at line %d)\n", (line)); \
} while (0)

static struct flb_http_header hdrs[NH];

/* Parse a request or response head from s into msg (headers in hdrs).
 * Returns the parser's result. */
static int parse(int resp, const char *s, struct flb_http_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	msg->headers = hdrs;
	msg->num_headers = NH;
	if (resp)
		return flb_http_parse_response(s, strlen(s), 0, 0, msg);
	return flb_http_parse_request(s, strlen(s), 0, 0, msg);
}

/* Rewrite msg into out (cap bytes) in the given direction. */
static long rewrite(int resp, char *out, size_t cap, const struct flb_http_msg *msg,
                    const struct flb_h1_conf *conf, const struct flb_h1_req_info *ri,
                    const struct flb_h1_resp_info *si)
{
	if (resp)
		return flb_h1_rewrite_response(out, cap, msg, conf, si);
	return flb_h1_rewrite_request(out, cap, msg, conf, ri);
}

/* One case: parse in, rewrite, expect want exactly, re-parse the output,
 * and check that every smaller capacity fails cleanly. */
static void run_case(int line, int resp, const char *in, const struct flb_h1_conf *conf,
                     const struct flb_h1_req_info *ri, const struct flb_h1_resp_info *si,
                     const char *want)
{
	struct flb_http_msg msg;
	int rc = parse(resp, in, &msg);
	CHECK_AT(line, rc == (int)strlen(in));
	if (rc <= 0)
		return;
	char out[4096];
	long n = rewrite(resp, out, sizeof(out), &msg, conf, ri, si);
	CHECK_AT(line, n == (long)strlen(want));
	if (n <= 0)
		return;
	unsigned long f = check_failed;
	CHECK_MEM(out, (size_t)n, want);
	if (check_failed != f)
		fprintf(stderr, "  (case at line %d)\n", line);

	/* the output is a valid head of exactly its length */
	char *copy = malloc((size_t)n + 1);
	memcpy(copy, out, (size_t)n);
	copy[n] = 0;
	struct flb_http_msg m2;
	struct flb_http_header h2[NH];
	memset(&m2, 0, sizeof(m2));
	m2.headers = h2;
	m2.num_headers = NH;
	int rc2 = resp ? flb_http_parse_response(copy, (size_t)n, 0, 0, &m2)
	               : flb_http_parse_request(copy, (size_t)n, 0, 0, &m2);
	CHECK_AT(line, rc2 == n);
	if (rc2 == n) {
		CHECK_AT(line, m2.minor_version == 1);
		CHECK_AT(line, m2.content_length == msg.content_length);
		CHECK_AT(line, (m2.flags & FLB_HTTP_F_CHUNKED) == (msg.flags & FLB_HTTP_F_CHUNKED));
	}
	free(copy);

	/* every smaller capacity: E_SPACE, nothing written past the end */
	int bad = 0;
	for (long cap = 0; cap < n; cap++) {
		char *b = malloc(cap ? (size_t)cap : 1);
		long r = rewrite(resp, b, (size_t)cap, &msg, conf, ri, si);
		if (r != FLB_H1RW_E_SPACE)
			bad++;
		free(b);
	}
	CHECK_AT(line, bad == 0);
	/* exactly n fits */
	char *b = malloc((size_t)n);
	CHECK_AT(line, rewrite(resp, b, (size_t)n, &msg, conf, ri, si) == n);
	CHECK_AT(line, memcmp(b, want, (size_t)n) == 0);
	free(b);
}

#define REQ(conf, ri, in, want) run_case(__LINE__, 0, (in), (conf), (ri), NULL, (want))
#define RESP(conf, si, in, want) run_case(__LINE__, 1, (in), (conf), NULL, (si), (want))

static struct flb_h1_conf plain;

/* A req_info with a client address, nothing else. */
static struct flb_h1_req_info ri_ip(const char *ip)
{
	struct flb_h1_req_info ri;
	memset(&ri, 0, sizeof(ri));
	ri.client_ip = ip;
	ri.client_ip_len = ip ? (uint32_t)strlen(ip) : 0;
	return ri;
}

static void test_passthrough(void)
{
	struct flb_h1_req_info ri = ri_ip("10.0.0.1");
	REQ(&plain, &ri,
	    "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8  \r\nAccept: */*\r\n\r\n",
	    "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n");
	/* framing passes unchanged */
	REQ(&plain, &ri,
	    "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
	    "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
	REQ(&plain, &ri,
	    "POST /u HTTP/1.1\r\nContent-Length: 0005\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
	    "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
	/* a chunked request is relayed as exactly "chunked" (h1proxy answers
	 * 501 to any other coding before rewriting), after the other lines */
	REQ(&plain, &ri,
	    "POST /u HTTP/1.1\r\nTransfer-Encoding: cHuNkEd\r\nHost: h\r\n\r\n",
	    "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
	/* HTTP/1.0 without Host: a Host is written (default or empty) */
	REQ(&plain, &ri, "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n",
	    "GET / HTTP/1.1\r\nAccept: */*\r\nHost: \r\n\r\n");
	ri.default_host = "backend.internal";
	ri.default_host_len = 16;
	REQ(&plain, &ri, "GET / HTTP/1.0\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: backend.internal\r\n\r\n");
}

static void test_target(void)
{
	struct flb_h1_req_info ri = ri_ip(NULL);
	ri.target_prefix = "/v2";
	ri.target_prefix_len = 3;
	ri.target_rest = "/items?x=1";
	ri.target_rest_len = 10;
	REQ(&plain, &ri, "GET /api/items?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET /v2/items?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
	ri.target_prefix = "/";
	ri.target_prefix_len = 1;
	ri.target_rest = NULL;
	ri.target_rest_len = 0;
	REQ(&plain, &ri, "OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n", "OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n");

	/* a space in a target slice is refused */
	struct flb_http_msg msg;
	char out[256];
	CHECK(parse(0, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &msg) > 0);
	ri.target_prefix = "/a b";
	ri.target_prefix_len = 4;
	CHECK_EQ(flb_h1_rewrite_request(out, sizeof(out), &msg, &plain, &ri), FLB_H1RW_E_ARG);
	ri.target_prefix = "";
	ri.target_prefix_len = 0;
	CHECK_EQ(flb_h1_rewrite_request(out, sizeof(out), &msg, &plain, &ri), FLB_H1RW_E_ARG);
	ri = ri_ip("1.2.3.4\r\nX: y");
	CHECK_EQ(flb_h1_rewrite_request(out, sizeof(out), &msg, &plain, &ri), FLB_H1RW_E_ARG);
}

static void test_hop_by_hop(void)
{
	struct flb_h1_req_info ri = ri_ip(NULL);
	/* each fixed hop-by-hop field */
	REQ(&plain, &ri,
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
	    "TE: trailers\r\nTrailer: X-Sum\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\n"
	    "Accept: a\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\n\r\n");
	/* case-insensitive names */
	REQ(&plain, &ri,
	    "GET / HTTP/1.1\r\nHOST: h\r\nCONNECTION: close\r\nkeep-ALIVE: 1\r\nte: x\r\n\r\n",
	    "GET / HTTP/1.1\r\nHOST: h\r\n\r\n");
	/* Connection-listed fields, several lines, odd spacing, case */
	REQ(&plain, &ri,
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Foo , ,x-bar\r\nX-Foo: 1\r\nX-Keep: 2\r\n"
	    "X-BAR: 3\r\nConnection: close, X-Baz\r\nx-baz: 4\r\nX-Foo2: 5\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: 2\r\nX-Foo2: 5\r\n\r\n");
	/* a listed field before the Connection line is dropped too */
	REQ(&plain, &ri,
	    "GET / HTTP/1.1\r\nX-Early: 1\r\nHost: h\r\nConnection: X-Early\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	/* Host, Content-Length and Transfer-Encoding survive being listed */
	REQ(&plain, &ri,
	    "POST / HTTP/1.1\r\nHost: h\r\nConnection: Host, Content-Length\r\nContent-Length: 3\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n");
	REQ(&plain, &ri,
	    "POST / HTTP/1.1\r\nHost: h\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
	/* upstream persistence is the caller's */
	ri.conn = FLB_H1_CONN_KEEPALIVE;
	REQ(&plain, &ri, "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
	ri.conn = FLB_H1_CONN_CLOSE;
	REQ(&plain, &ri, "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");

	/* too many Connection tokens */
	struct flb_http_msg msg;
	char in[1024], out[1024];
	strcpy(in, "GET / HTTP/1.1\r\nHost: h\r\nConnection: ");
	for (int i = 0; i < FLB_H1RW_MAX_CONN_TOKENS; i++)
		sprintf(in + strlen(in), "x-%d,", i);
	strcat(in, "close, keep-alive, upgrade\r\n\r\n");
	CHECK(parse(0, in, &msg) > 0);
	ri.conn = 0;
	CHECK(flb_h1_rewrite_request(out, sizeof(out), &msg, &plain, &ri) > 0);
	strcpy(in + strlen(in) - 4, ", one-more\r\n\r\n");
	CHECK(parse(0, in, &msg) > 0);
	CHECK_EQ(flb_h1_rewrite_request(out, sizeof(out), &msg, &plain, &ri), FLB_H1RW_E_CONN);
}

static void test_upgrade(void)
{
	struct flb_h1_req_info ri = ri_ip(NULL);
	ri.flags = FLB_H1RW_I_UPGRADE;
	ri.conn = FLB_H1_CONN_CLOSE; /* ignored while upgrading */
	REQ(&plain, &ri,
	    "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
	    "Sec-WebSocket-Key: abc==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	    "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc==\r\n"
	    "Sec-WebSocket-Version: 13\r\nConnection: upgrade\r\n\r\n");
	/* h2c: HTTP2-Settings is listed, so dropped; not upgrading drops Upgrade */
	ri.flags = 0;
	ri.conn = 0;
	REQ(&plain, &ri,
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
	    "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	/* response 101 kept with Upgrade */
	struct flb_h1_resp_info si = { FLB_H1RW_I_UPGRADE, 0 };
	RESP(&plain, &si,
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nConnection: upgrade\r\n\r\n");
}

static void test_forwarding(void)
{
	struct flb_h1_conf c;
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_XFF | FLB_H1RW_XFP | FLB_H1RW_XFH, NULL, 0, NULL, NULL), 0);
	struct flb_h1_req_info ri = ri_ip("203.0.113.7");
	/* no existing XFF; client's XFP/XFH replaced */
	REQ(&c, &ri,
	    "GET / HTTP/1.1\r\nHost: shop.example:8443\r\nX-Forwarded-Proto: https\r\n"
	    "X-Forwarded-Host: evil\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: shop.example:8443\r\nX-Forwarded-For: 203.0.113.7\r\n"
	    "X-Forwarded-Proto: http\r\nX-Forwarded-Host: shop.example:8443\r\n\r\n");
	/* append to one existing line */
	ri.flags = FLB_H1RW_I_HTTPS;
	REQ(&c, &ri,
	    "GET / HTTP/1.1\r\nX-Forwarded-For: 198.51.100.1\r\nHost: h\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n"
	    "X-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n\r\n");
	/* combine several lines in order, skip empty ones */
	REQ(&c, &ri,
	    "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 1.1.1.1, 2.2.2.2\r\nA: b\r\n"
	    "X-Forwarded-For:\r\nX-FORWARDED-FOR: 3.3.3.3\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.7\r\n"
	    "X-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n\r\n");
	/* IPv6 client */
	ri = ri_ip("2001:db8::1");
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 2001:db8::1\r\n"
	    "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n");
	/* no client address, HTTP/1.0 without Host: XFF only from existing, no XFH */
	ri = ri_ip(NULL);
	REQ(&c, &ri, "GET / HTTP/1.0\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: \r\nX-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Proto: http\r\n\r\n");
	/* flags off: the client's lines pass through */
	ri = ri_ip("1.2.3.4");
	REQ(&plain, &ri,
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 5.5.5.5\r\nX-Forwarded-Proto: https\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 5.5.5.5\r\nX-Forwarded-Proto: https\r\n\r\n");

	/* Forwarded and Via */
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_FORWARDED | FLB_H1RW_VIA, NULL, 0, NULL, NULL), 0);
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: example.com\r\nForwarded: for=1.2.3.4;proto=http;host=example.com\r\n"
	    "Via: 1.1 fastlb\r\n\r\n");
	ri = ri_ip("::1");
	ri.flags = FLB_H1RW_I_HTTPS;
	REQ(&c, &ri,
	    "GET / HTTP/1.0\r\nHost: ex.com:81\r\nForwarded: for=192.0.2.60\r\nVia: 1.1 cdn\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: ex.com:81\r\nForwarded: for=192.0.2.60\r\nVia: 1.1 cdn\r\n"
	    "Forwarded: for=\"[::1]\";proto=https;host=\"ex.com:81\"\r\n"
	    "Via: 1.0 fastlb\r\n\r\n");
	/* quotes and backslashes in Host are escaped */
	ri = ri_ip(NULL);
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: a\"b\\c\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\"b\\c\r\nForwarded: proto=http;host=\"a\\\"b\\\\c\"\r\n"
	    "Via: 1.1 fastlb\r\n\r\n");
}

static void test_request_id(void)
{
	struct flb_h1_conf c;
	struct flb_h1_req_info ri = ri_ip(NULL);
	ri.request_id = "0af7651916cd43dd";
	ri.request_id_len = 16;
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_REQUEST_ID, NULL, 0, NULL, NULL), 0);
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: 0af7651916cd43dd\r\n\r\n");
	/* present (any case): kept, not added */
	REQ(&c, &ri, "GET / HTTP/1.1\r\nx-request-id: abc\r\nHost: h\r\n\r\n",
	    "GET / HTTP/1.1\r\nx-request-id: abc\r\nHost: h\r\n\r\n");
	/* configurable name */
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_REQUEST_ID, "X-Trace", 7, NULL, NULL), 0);
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\nX-Trace: 0af7651916cd43dd\r\n\r\n");
	/* flag off, or no id: nothing */
	ri.request_id_len = 0;
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	/* a request-id line listed in Connection is hop-by-hop: dropped, ours added */
	ri.request_id_len = 16;
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_REQUEST_ID, NULL, 0, NULL, NULL), 0);
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-request-id\r\nX-Request-Id: abc\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: 0af7651916cd43dd\r\n\r\n");
	/* a bad byte in the id is refused */
	struct flb_http_msg msg;
	char out[256];
	CHECK(parse(0, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &msg) > 0);
	ri.request_id = "a b";
	ri.request_id_len = 3;
	CHECK_EQ(flb_h1_rewrite_request(out, sizeof(out), &msg, &c, &ri), FLB_H1RW_E_ARG);
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_REQUEST_ID, "X Trace", 7, NULL, NULL), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_REQUEST_ID, "Host", 4, NULL, NULL), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_REQUEST_ID, "", 0, NULL, NULL), FLB_H1RW_E_NAME);
}

static struct flb_h1_ops ops, rops;

static void test_ops(void)
{
	flb_h1_ops_init(&ops);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X-Env", 5, "prod", 4), 0);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_ADD, "X-Tag", 5, "b", 1), 0);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_REMOVE, "cookie", 6, NULL, 0), 0);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X-Empty", 7, "", 0), 0);
	/* validation */
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X Bad", 5, "v", 1), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X:Bad", 5, "v", 1), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "", 0, "v", 1), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X-V", 3, "a\r\nb", 4), FLB_H1RW_E_VALUE);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X-V", 3, "a\nb", 3), FLB_H1RW_E_VALUE);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X-V", 3, "a\0b", 3), FLB_H1RW_E_VALUE);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "X-V", 3, " a", 2), FLB_H1RW_E_VALUE);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_REMOVE, "Content-Length", 14, NULL, 0), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "Connection", 10, "x", 1), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_ops_add(&ops, FLB_H1_OP_SET, "host", 4, "x", 1), FLB_H1RW_E_NAME);
	CHECK_EQ(flb_h1_ops_add(&ops, 9, "X-V", 3, "x", 1), FLB_H1RW_E_ARG);
	CHECK_EQ(ops.n, 4);

	/* bounds */
	struct flb_h1_ops big;
	flb_h1_ops_init(&big);
	for (int i = 0; i < FLB_H1RW_MAX_OPS; i++)
		CHECK_EQ(flb_h1_ops_add(&big, FLB_H1_OP_ADD, "X-A", 3, "v", 1), 0);
	CHECK_EQ(flb_h1_ops_add(&big, FLB_H1_OP_ADD, "X-A", 3, "v", 1), FLB_H1RW_E_FULL);
	static char longv[FLB_H1RW_OPS_STORE];
	memset(longv, 'v', sizeof(longv));
	flb_h1_ops_init(&big);
	CHECK_EQ(flb_h1_ops_add(&big, FLB_H1_OP_ADD, "X-A", 3, longv, FLB_H1RW_OPS_STORE - 3), 0);
	CHECK_EQ(flb_h1_ops_add(&big, FLB_H1_OP_ADD, "X", 1, "", 0), FLB_H1RW_E_FULL);

	struct flb_h1_conf c;
	CHECK_EQ(flb_h1_conf_init(&c, 0, NULL, 0, &ops, NULL), 0);
	struct flb_h1_req_info ri = ri_ip(NULL);
	REQ(&c, &ri,
	    "GET / HTTP/1.1\r\nHost: h\r\nx-env: dev\r\nCookie: a=1\r\nX-Tag: a\r\nCOOKIE: b=2\r\n"
	    "X-Env: test\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Tag: a\r\nX-Env: prod\r\nX-Tag: b\r\nX-Empty: \r\n\r\n");
	/* ops on X-Forwarded-For drop the client's values */
	flb_h1_ops_init(&rops);
	CHECK_EQ(flb_h1_ops_add(&rops, FLB_H1_OP_REMOVE, "X-Forwarded-For", 15, NULL, 0), 0);
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_XFF, NULL, 0, &rops, NULL), 0);
	ri = ri_ip("1.2.3.4");
	REQ(&c, &ri, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
}

static void test_response(void)
{
	struct flb_h1_resp_info si = { 0, 0 };
	RESP(&plain, &si,
	    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\nConnection: keep-alive, X-Hop\r\n"
	    "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTrailer: X-Sum\r\nUpgrade: h2\r\nProxy-Connection: close\r\n"
	    "TE: trailers\r\nServer: nginx\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: nginx\r\nContent-Length: 12\r\n\r\n");
	/* Content-Length is written once, in plain decimal, after the lines */
	RESP(&plain, &si,
	    "HTTP/1.1 200 OK\r\nContent-Length: 012\r\nContent-Length: 12\r\nX-A: 1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 12\r\n\r\n");
	/* HTTP/1.0 backend, empty reason, chunked passes */
	si.conn = FLB_H1_CONN_CLOSE;
	RESP(&plain, &si, "HTTP/1.0 404\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 404 \r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	si.conn = FLB_H1_CONN_KEEPALIVE;
	RESP(&plain, &si, "HTTP/1.1 204 No Content\r\n\r\n",
	    "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");

	/* hide_backend, Via, resp ops */
	struct flb_h1_ops o;
	flb_h1_ops_init(&o);
	CHECK_EQ(flb_h1_ops_add(&o, FLB_H1_OP_SET, "Cache-Control", 13, "no-store", 8), 0);
	CHECK_EQ(flb_h1_ops_add(&o, FLB_H1_OP_REMOVE, "Set-Cookie", 10, NULL, 0), 0);
	CHECK_EQ(flb_h1_ops_add(&o, FLB_H1_OP_ADD, "Strict-Transport-Security", 25, "max-age=63072000", 16), 0);
	struct flb_h1_conf c;
	CHECK_EQ(flb_h1_conf_init(&c, FLB_H1RW_HIDE_BACKEND | FLB_H1RW_VIA, NULL, 0, NULL, &o), 0);
	si.conn = 0;
	RESP(&c, &si,
	    "HTTP/1.1 200 OK\r\nServer: Apache/2.4\r\nX-Powered-By: PHP/8\r\nX-AspNet-Version: 4.0\r\n"
	    "X-AspNetMvc-Version: 5.2\r\nX-Runtime: 0.01\r\nX-Backend-Server: 10.1.2.3:8080\r\n"
	    "cache-control: public\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\nVia: 1.1 fastlb\r\n"
	    "Cache-Control: no-store\r\nStrict-Transport-Security: max-age=63072000\r\n\r\n");
	/* request ops do not touch responses */
	CHECK_EQ(flb_h1_conf_init(&c, 0, NULL, 0, &o, NULL), 0);
	RESP(&c, &si, "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nServer: s\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nServer: s\r\n\r\n");
}

static void test_error_responses(void)
{
	static const struct { int status; const char *line; } st[] = {
		{ 400, "400 Bad Request" }, { 405, "405 Method Not Allowed" },
		{ 408, "408 Request Timeout" }, { 413, "413 Content Too Large" },
		{ 431, "431 Request Header Fields Too Large" }, { 502, "502 Bad Gateway" },
		{ 503, "503 Service Unavailable" }, { 504, "504 Gateway Timeout" },
	};
	char buf[1024], want[1024], body[256];
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		for (int variant = 0; variant < 2; variant++) {
			const char *id = variant ? "req-42" : NULL;
			int close = variant;
			int bn = variant ? snprintf(body, sizeof(body), "%s\nrequest id: req-42\n", st[i].line)
			                 : snprintf(body, sizeof(body), "%s\n", st[i].line);
			snprintf(want, sizeof(want),
			         "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
			         "%s%s\r\n%s",
			         st[i].line, bn, close ? "Connection: close\r\n" : "",
			         id ? "X-Request-Id: req-42\r\n" : "", body);
			long n = flb_h1_error_response(buf, sizeof(buf), st[i].status, id, close);
			CHECK_EQ(n, (long)strlen(want));
			if (n <= 0)
				continue;
			CHECK_MEM(buf, (size_t)n, want);
			/* valid response whose body is exactly Content-Length */
			struct flb_http_msg m;
			struct flb_http_header h[16];
			memset(&m, 0, sizeof(m));
			m.headers = h;
			m.num_headers = 16;
			int hl = flb_http_parse_response(buf, (size_t)n, 0, 0, &m);
			CHECK(hl > 0);
			CHECK_EQ(m.status, st[i].status);
			CHECK_EQ(m.content_length, n - hl);
			CHECK_EQ(!!(m.flags & FLB_HTTP_F_CONN_CLOSE), close);
			/* exact boundary */
			char *b = malloc((size_t)n);
			CHECK_EQ(flb_h1_error_response(b, (size_t)n - 1, st[i].status, id, close), FLB_H1RW_E_SPACE);
			CHECK_EQ(flb_h1_error_response(b, (size_t)n, st[i].status, id, close), n);
			free(b);
		}
	}
	CHECK_EQ(flb_h1_error_response(buf, sizeof(buf), 500, NULL, 0), FLB_H1RW_E_ARG);
	CHECK_EQ(flb_h1_error_response(buf, sizeof(buf), 200, NULL, 0), FLB_H1RW_E_ARG);
	CHECK_EQ(flb_h1_error_response(buf, sizeof(buf), 502, "a\r\nb", 0), FLB_H1RW_E_ARG);
	CHECK_EQ(flb_h1_error_response(buf, 0, 502, NULL, 0), FLB_H1RW_E_SPACE);
	CHECK(flb_h1_error_reason(413) != NULL);
	CHECK(flb_h1_error_reason(418) == NULL);
}

int main(void)
{
	CHECK_EQ(flb_h1_conf_init(&plain, 0, NULL, 0, NULL, NULL), 0);
	test_passthrough();
	test_target();
	test_hop_by_hop();
	test_upgrade();
	test_forwarding();
	test_request_id();
	test_ops();
	test_response();
	test_error_responses();
	return CHECK_REPORT();
}
