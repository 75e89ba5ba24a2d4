/* test_http1.c: unit tests of http1.c, the HTTP/1.1 head parser and the
 * chunked decoder.  Built and run under ASan + UBSan by `make -C tests/c`.
 *
 * Every head is parsed whole and then prefix by prefix, twice: resuming with
 * last_len = the previous length (as a server does), and from scratch.  Each
 * parse gets its own exactly sized heap copy, so ASan catches any read past
 * the end.  A valid head must be INCOMPLETE for every shorter prefix and give
 * the same result for every longer one; an invalid one may fail early but
 * only with the error (code and offset) of the whole.
 *
 * Every chunked body is decoded and scanned whole, byte by byte and split in
 * two at every point; all must agree on the data, the error and where the
 * body ends. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http1.h"

#define CAP 128

/* Print the line of the test case when the check fails. */
#define CHECK_AT(line, cond) do { \
	unsigned long check_f_ = check_failed; \
	CHECK(cond); \
	if (check_failed != check_f_) \
		fprintf(stderr, "  (case at line %d)\n", (line)); \
} while (0)

enum kind { REQ, RESP };

/* The result of one parse, with slices as offsets into the input. */
struct outcome {
	int rc, err;
	uint32_t off;
	long method, target, reason;
	uint32_t method_len, target_len, reason_len;
	int status, minor;
	size_t nh;
	long hn[CAP], hv[CAP];
	uint32_t hn_len[CAP], hv_len[CAP];
	int64_t cl;
	uint32_t flags;
	int host_index;
};

/* Offset of slice p in buf, or -1 for NULL.  Returns it. */
static long rel(const char *p, const char *buf)
{
	return p ? (long)(p - buf) : -1;
}

/* Parse data[0..len) from a fresh heap copy.
 * kind: REQ or RESP; last_len, max_head: passed on; cap: header capacity.
 * out: the outcome.  Also checks that num_headers is left alone unless the
 * head is complete. */
static void parse_one(enum kind kind, const char *data, size_t len, size_t last_len,
                      size_t max_head, size_t cap, struct outcome *out)
{
	struct flb_http_header hdrs[CAP];
	struct flb_http_msg msg;
	char *buf = malloc(len ? len : 1);

	memcpy(buf, data, len);
	memset(&msg, 0x5a, sizeof(msg));
	memset(out, 0, sizeof(*out));
	msg.headers = hdrs;
	msg.num_headers = cap;
	out->rc = kind == REQ ? flb_http_parse_request(buf, len, last_len, max_head, &msg)
	                      : flb_http_parse_response(buf, len, last_len, max_head, &msg);
	if (out->rc == FLB_HTTP_INVALID) {
		out->err = msg.err;
		out->off = msg.err_offset;
		CHECK(msg.err > 0 && msg.err < FLB_HTTP_E__COUNT);
		CHECK(msg.err_offset <= len);
		CHECK(msg.num_headers == cap);
	} else if (out->rc == FLB_HTTP_INCOMPLETE) {
		CHECK(msg.err == 0);
		CHECK(msg.num_headers == cap);
	} else {
		CHECK(out->rc > 0 && (size_t)out->rc <= len);
		CHECK(msg.num_headers <= cap);
		CHECK(msg.err == 0);
		out->method = rel(msg.method, buf);
		out->target = rel(msg.target, buf);
		out->reason = rel(msg.reason, buf);
		out->method_len = msg.method_len;
		out->target_len = msg.target_len;
		out->reason_len = msg.reason_len;
		out->status = msg.status;
		out->minor = msg.minor_version;
		out->nh = msg.num_headers;
		for (size_t i = 0; i < msg.num_headers && i < CAP; i++) {
			out->hn[i] = rel(hdrs[i].name, buf);
			out->hv[i] = rel(hdrs[i].value, buf);
			out->hn_len[i] = hdrs[i].name_len;
			out->hv_len[i] = hdrs[i].value_len;
		}
		out->cl = msg.content_length;
		out->flags = msg.flags;
		out->host_index = msg.host_index;
	}
	free(buf);
}

/* Whether two outcomes are the same.  Returns 1 or 0. */
static int outcome_eq(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc)
		return 0;
	if (a->rc == FLB_HTTP_INVALID)
		return a->err == b->err && a->off == b->off;
	if (a->rc == FLB_HTTP_INCOMPLETE)
		return 1;
	if (a->method != b->method || a->target != b->target || a->reason != b->reason ||
	    a->method_len != b->method_len || a->target_len != b->target_len ||
	    a->reason_len != b->reason_len || a->status != b->status || a->minor != b->minor ||
	    a->nh != b->nh || a->cl != b->cl || a->flags != b->flags ||
	    a->host_index != b->host_index)
		return 0;
	for (size_t i = 0; i < a->nh; i++)
		if (a->hn[i] != b->hn[i] || a->hv[i] != b->hv[i] || a->hn_len[i] != b->hn_len[i] ||
		    a->hv_len[i] != b->hv_len[i])
			return 0;
	return 1;
}

/* Parse data whole, then each prefix (see the top).  line: the caller's line.
 * Returns the whole outcome in *whole. */
static void check_all(enum kind kind, const char *data, size_t len, size_t max_head,
                      size_t cap, int line, struct outcome *whole)
{
	struct outcome o;
	size_t step = len <= 4096 ? 1 : len / 512;

	parse_one(kind, data, len, 0, max_head, cap, whole);
	for (int resume = 0; resume < 2; resume++) {
		size_t prev = 0;
		int failed = 0;

		for (size_t i = 0; i <= len; i += (i < 128 || len - i < 128) ? 1 : step) {
			parse_one(kind, data, i, resume ? prev : 0, max_head, cap, &o);
			if (whole->rc > 0) {
				if (i < (size_t)whole->rc)
					CHECK_AT(line, o.rc == FLB_HTTP_INCOMPLETE);
				else
					CHECK_AT(line, outcome_eq(&o, whole));
			} else if (whole->rc == FLB_HTTP_INVALID) {
				CHECK_AT(line, o.rc == FLB_HTTP_INCOMPLETE || outcome_eq(&o, whole));
				if (o.rc == FLB_HTTP_INVALID) {
					failed = 1;
					break;
				}
			} else {
				CHECK_AT(line, o.rc == FLB_HTTP_INCOMPLETE);
			}
			if (o.rc == FLB_HTTP_INCOMPLETE)
				prev = i;
		}
		if (whole->rc == FLB_HTTP_INVALID)
			CHECK_AT(line, failed);
	}
}

/* Check that data parses to a head of exactly len bytes, whole and
 * prefix by prefix.  Returns the outcome. */
static struct outcome ok_n(enum kind kind, const char *data, size_t len, size_t max_head,
                           size_t cap, int line)
{
	struct outcome o;

	check_all(kind, data, len, max_head, cap, line, &o);
	CHECK_AT(line, o.rc > 0);
	if (o.rc < 0)
		fprintf(stderr, "  got rc %d err %d (%s) at %u\n", o.rc, o.err,
		        flb_http_strerror(o.err), o.off);
	return o;
}

/* Check that data fails with err, whole and prefix by prefix.
 * Returns the outcome. */
static struct outcome bad_n(enum kind kind, const char *data, size_t len, size_t max_head,
                            size_t cap, int err, int line)
{
	struct outcome o;

	check_all(kind, data, len, max_head, cap, line, &o);
	CHECK_AT(line, o.rc == FLB_HTTP_INVALID && o.err == err);
	if (o.rc != FLB_HTTP_INVALID || o.err != err)
		fprintf(stderr, "  want %s, got rc %d err %d (%s) at %u\n", flb_http_strerror(err),
		        o.rc, o.err, flb_http_strerror(o.err), o.off);
	return o;
}

#define REQ_OK(s)       ok_n(REQ, s, sizeof(s) - 1, 0, CAP, __LINE__)
#define REQ_BAD(s, e)   bad_n(REQ, s, sizeof(s) - 1, 0, CAP, FLB_HTTP_E_##e, __LINE__)
#define RESP_OK(s)      ok_n(RESP, s, sizeof(s) - 1, 0, CAP, __LINE__)
#define RESP_BAD(s, e)  bad_n(RESP, s, sizeof(s) - 1, 0, CAP, FLB_HTTP_E_##e, __LINE__)

/* Slice helpers over the original data: header i's name and value. */
#define HNAME(o, data, i) ((data) + (o).hn[i]), (o).hn_len[i]
#define HVAL(o, data, i)  ((data) + (o).hv[i]), (o).hv_len[i]
/* CHECK_MEM whose first two arguments come from HNAME/HVAL. */
#define XCHECK_MEM(...) CHECK_MEM(__VA_ARGS__)

/* A request built from a request line and field lines, with "\r\n" joins
 * and the empty line.  buf: at least 8 KiB.  Returns its length. */
static size_t build(char *buf, size_t cap, const char *line, const char *const *fields,
                    size_t nfields)
{
	size_t n = 0;

	n += (size_t)snprintf(buf + n, cap - n, "%s\r\n", line);
	for (size_t i = 0; i < nfields; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s\r\n", fields[i]);
	n += (size_t)snprintf(buf + n, cap - n, "\r\n");
	return n;
}

/* ------------------------------------------------------------------------ */
/* Requests: valid */

/* A minimal GET: every field of the result. */
static void test_simple_get(void)
{
	static const char d[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
	struct outcome o = REQ_OK(d);

	CHECK_EQ(o.rc, sizeof(d) - 1);
	CHECK_MEM(d + o.method, o.method_len, "GET");
	CHECK_MEM(d + o.target, o.target_len, "/index.html");
	CHECK_EQ(o.minor, 1);
	CHECK_EQ(o.nh, 1);
	XCHECK_MEM(HNAME(o, d, 0), "Host");
	XCHECK_MEM(HVAL(o, d, 0), "example.com");
	CHECK_EQ(o.host_index, 0);
	CHECK_EQ(o.cl, -1);
	CHECK_EQ(o.flags, FLB_HTTP_F_KEEP_ALIVE);
}

/* HTTP/1.0 needs no Host, is not persistent by default, and works with no header array. */
static void test_http10(void)
{
	static const char d[] = "GET / HTTP/1.0\r\n\r\n";
	struct outcome o = REQ_OK(d);

	CHECK_EQ(o.rc, 18);
	CHECK_EQ(o.minor, 0);
	CHECK_EQ(o.nh, 0);
	CHECK_EQ(o.host_index, -1);
	CHECK_EQ(o.flags, 0);
	/* No header array at all is fine when there are no fields. */
	ok_n(REQ, d, sizeof(d) - 1, 0, 0, __LINE__);
}

/* Unusual but valid methods and target forms (origin, asterisk, authority, absolute). */
static void test_methods_and_targets(void)
{
	static const char *const cases[][2] = {
		{ "POST", "/submit?x=1&y=%20" },
		{ "OPTIONS", "*" },
		{ "CONNECT", "example.com:443" },
		{ "GET", "http://example.com/a/b?c#d" },
		{ "M-SEARCH", "*" },
		{ "X!#$%&'*+-.^_`|~9", "/~user/{x}[y]\"<z>|" },
		{ "get", "/" },
		{ "G", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: h\r\n\r\n",
		                 cases[i][0], cases[i][1]);
		struct outcome o = ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__);

		CHECK_MEM(buf + o.method, o.method_len, cases[i][0]);
		CHECK_MEM(buf + o.target, o.target_len, cases[i][1]);
	}
}

/* The benchmark's browser request: fields, host index and flags. */
static void test_browser_request(void)
{
	static const char d[] =
		"GET /products/42/reviews?page=2 HTTP/1.1\r\n"
		"Host: www.example-shop.com\r\n"
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
		"(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n"
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
		"Accept-Language: en-US,en;q=0.9\r\n"
		"Accept-Encoding: gzip, deflate, br\r\n"
		"Referer: https://www.example-shop.com/\r\n"
		"Cookie: session=8f2c1e9a; cart=3\r\n"
		"Upgrade-Insecure-Requests: 1\r\n"
		"Connection: keep-alive\r\n"
		"\r\n";
	struct outcome o = REQ_OK(d);

	CHECK_EQ(o.rc, sizeof(d) - 1);
	CHECK_EQ(o.nh, 9);
	CHECK_MEM(d + o.target, o.target_len, "/products/42/reviews?page=2");
	XCHECK_MEM(HNAME(o, d, 1), "User-Agent");
	XCHECK_MEM(HVAL(o, d, 1), "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
	                         "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36");
	XCHECK_MEM(HNAME(o, d, 8), "Connection");
	XCHECK_MEM(HVAL(o, d, 8), "keep-alive");
	CHECK_EQ(o.host_index, 0);
	CHECK_EQ(o.flags, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE);
}

/* Leading and trailing SP/HTAB are stripped from values, inner ones kept. */
static void test_value_whitespace(void)
{
	static const char d[] = "GET / HTTP/1.1\r\nHost: h\r\n"
		"A:  x y  \r\nB:\tx\ty\t\r\nC: \t x \t \r\nD:\r\nE:   \r\nF:\t\r\nG:x\r\n"
		"H: a long value that is longer than sixteen bytes\t \t  \r\n\r\n";
	static const char *const want[] = { "x y", "x\ty", "x", "", "", "", "x",
		"a long value that is longer than sixteen bytes" };
	struct outcome o = REQ_OK(d);

	CHECK_EQ(o.nh, 9);
	for (size_t i = 0; i < 8; i++)
		XCHECK_MEM(HVAL(o, d, i + 1), want[i]);
}

/* Bytes 0x80-0xFF and HTAB are allowed in values. */
static void test_obs_text_and_htab(void)
{
	static const char d[] = "GET / HTTP/1.1\r\nHost: h\r\n"
		"X-Utf8: caf\xc3\xa9 \xe2\x98\x83\r\nX-Latin1: \xff\x80\xa0\r\nX-Tab: a\tb\r\n"
		"X-Long: \x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\t\xfe\r\n"
		"X-Colon: 12:34:56\r\n\r\n";
	struct outcome o = REQ_OK(d);

	CHECK_EQ(o.nh, 6);
	XCHECK_MEM(HVAL(o, d, 1), "caf\xc3\xa9 \xe2\x98\x83");
	XCHECK_MEM(HVAL(o, d, 2), "\xff\x80\xa0");
	XCHECK_MEM(HVAL(o, d, 3), "a\tb");
	XCHECK_MEM(HVAL(o, d, 4), "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\t\xfe");
	XCHECK_MEM(HVAL(o, d, 5), "12:34:56");
}

/* Every tchar is allowed in a name, and long names work. */
static void test_name_chars(void)
{
	static const char d[] = "GET / HTTP/1.1\r\nHost: h\r\n"
		"!#$%&'*+-.^_`|~0123456789abcXYZ: v\r\n"
		"A-Very-Long-Header-Name-With-Many-Parts_and_underscores: w\r\n\r\n";
	struct outcome o = REQ_OK(d);

	XCHECK_MEM(HNAME(o, d, 1), "!#$%&'*+-.^_`|~0123456789abcXYZ");
	XCHECK_MEM(HNAME(o, d, 2), "A-Very-Long-Header-Name-With-Many-Parts_and_underscores");
}

/* Empty lines before a request line are skipped and counted; bare ones are not. */
static void test_leading_crlf(void)
{
	static const char d1[] = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char d5[] = "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct outcome o = REQ_OK(d1);

	CHECK_EQ(o.rc, sizeof(d1) - 1);
	CHECK_EQ(o.method, 2);
	o = REQ_OK(d5);
	CHECK_EQ(o.rc, sizeof(d5) - 1);
	CHECK_EQ(o.method, 10);
	REQ_BAD("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_LF);
	REQ_BAD("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_LF);
	REQ_BAD("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR);
	/* Only CRLFs so far: still waiting. */
	parse_one(REQ, "\r\n\r\n\r\n", 6, 0, 0, CAP, &o);
	CHECK_EQ(o.rc, FLB_HTTP_INCOMPLETE);
	/* Leading CRLFs count toward max_head. */
	{
		static const char d[] = "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";

		ok_n(REQ, d, sizeof(d) - 1, sizeof(d) - 1, CAP, __LINE__);
		bad_n(REQ, d, sizeof(d) - 1, sizeof(d) - 2, CAP, FLB_HTTP_E_HEAD_TOO_LARGE,
		      __LINE__);
	}
}

/* Valid Content-Length values, and identical repeats. */
static void test_content_length_ok(void)
{
	static const struct { const char *v; int64_t want; } cases[] = {
		{ "0", 0 }, { "1", 1 }, { "123456", 123456 }, { "007", 7 }, { " 42 ", 42 },
		{ "9223372036854775807", INT64_MAX },
		{ "0000000000000000000000000001", 1 },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf),
		                 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:%s\r\n\r\n", cases[i].v);
		struct outcome o = ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__);

		CHECK_EQ(o.cl, cases[i].want);
		CHECK(o.flags & FLB_HTTP_F_HAS_CL);
		CHECK(!(o.flags & FLB_HTTP_F_CHUNKED));
	}
	{
		static const char d[] = "POST / HTTP/1.1\r\ncontent-LENGTH: 10\r\nHost: a\r\n"
			"Content-Length: 10\r\nCONTENT-LENGTH: 010\r\n\r\n";
		struct outcome o = REQ_OK(d);

		CHECK_EQ(o.cl, 10);
		CHECK_EQ(o.host_index, 1);
	}
}

/* Transfer-Encoding lists ending in chunked, with parameters, over several lines. */
static void test_transfer_encoding_ok(void)
{
	static const char *const chunked[] = {
		"chunked", "Chunked", "CHUNKED", "gzip, chunked", "gzip,chunked",
		"deflate , gzip ,chunked", "gzip;level=9, chunked", "x ; a = b ; c=\"q v\", chunked",
		"chunked;foo=bar", "gzip;a=\"\\\"\", chunked",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(chunked) / sizeof(chunked[0]); i++) {
		int n = snprintf(buf, sizeof(buf),
		                 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
		                 chunked[i]);
		struct outcome o = ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__);

		CHECK_EQ(o.flags & (FLB_HTTP_F_CHUNKED | FLB_HTTP_F_HAS_TE | FLB_HTTP_F_HAS_CL),
		         FLB_HTTP_F_CHUNKED | FLB_HTTP_F_HAS_TE);
		CHECK_EQ(o.cl, -1);
	}
	{
		static const char d[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
			"transfer-encoding: chunked\r\n\r\n";

		CHECK(REQ_OK(d).flags & FLB_HTTP_F_CHUNKED);
	}
}

/* The KEEP_ALIVE formula and the Connection tokens over the version matrix. */
static void test_keep_alive(void)
{
	static const struct { const char *ver; const char *conn[2]; uint32_t want; } cases[] = {
		{ "1.1", { NULL }, FLB_HTTP_F_KEEP_ALIVE },
		{ "1.1", { "close" }, FLB_HTTP_F_CONN_CLOSE },
		{ "1.1", { "Close" }, FLB_HTTP_F_CONN_CLOSE },
		{ "1.1", { "keep-alive" }, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.1", { "keep-alive, close" }, FLB_HTTP_F_CONN_CLOSE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.1", { "foo, close, bar" }, FLB_HTTP_F_CONN_CLOSE },
		{ "1.1", { " ,close, " }, FLB_HTTP_F_CONN_CLOSE },
		{ "1.1", { "keep-alive", "close" }, FLB_HTTP_F_CONN_CLOSE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.1", { "closed" }, FLB_HTTP_F_KEEP_ALIVE },
		{ "1.1", { "close-ish" }, FLB_HTTP_F_KEEP_ALIVE },
		{ "1.1", { "Upgrade" }, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_UPGRADE },
		{ "1.1", { "" }, FLB_HTTP_F_KEEP_ALIVE },
		{ "1.1", { ",,, ,\t," }, FLB_HTTP_F_KEEP_ALIVE },
		{ "1.0", { NULL }, 0 },
		{ "1.0", { "keep-alive" }, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.0", { "Keep-Alive" }, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.0", { "foo,keep-alive" }, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.0", { "keep-alive, close" }, FLB_HTTP_F_CONN_CLOSE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.0", { "close", "KEEP-ALIVE" }, FLB_HTTP_F_CONN_CLOSE | FLB_HTTP_F_CONN_KEEPALIVE },
		{ "1.0", { "close" }, FLB_HTTP_F_CONN_CLOSE },
		{ "1.0", { "keep-alive-x" }, 0 },
		{ "1.0", { "keepalive" }, 0 },
		{ "1.0", { "upgrade, keep-alive" },
		  FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE | FLB_HTTP_F_CONN_UPGRADE },
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "GET / HTTP/%s\r\nHost: a\r\n", cases[i].ver);

		for (int k = 0; k < 2 && cases[i].conn[k]; k++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Connection: %s\r\n",
			              cases[i].conn[k]);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");
		CHECK_EQ(ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__).flags, cases[i].want);
	}
}

/* Expect: 100-continue, Upgrade, and names that merely look like framing fields. */
static void test_expect_and_upgrade(void)
{
	CHECK(REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").flags &
	      FLB_HTTP_F_EXPECT_CONTINUE);
	CHECK(REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nexpect:   100-Continue  \r\n\r\n").flags &
	      FLB_HTTP_F_EXPECT_CONTINUE);
	CHECK(!(REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").flags &
	        FLB_HTTP_F_EXPECT_CONTINUE));
	CHECK(!(REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nX-Expect: 100-continue\r\n\r\n").flags &
	        FLB_HTTP_F_EXPECT_CONTINUE));
	CHECK(!(REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-x\r\n\r\n").flags &
	        FLB_HTTP_F_EXPECT_CONTINUE));
	CHECK_EQ(REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	                "Upgrade: websocket\r\n\r\n").flags,
	         FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_UPGRADE | FLB_HTTP_F_HAS_UPGRADE);
	CHECK_EQ(REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nUpgrade:\r\n\r\n").flags,
	         FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_HAS_UPGRADE);
	CHECK_EQ(REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nUpgrade-Insecure-Requests: 1\r\n"
	                "Connection: upgrade\r\n\r\n").flags,
	         FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_UPGRADE);
	/* Names that share a length with a framing field but are not one. */
	CHECK_EQ(REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nHose: b\r\nAccept: c\r\nReferer: d\r\n"
	                "User-Agent: e\r\nSec-Fetch-Site: f\r\nTransfer-Encodinh: x\r\n"
	                "Content-Lengts: x\r\nConnectioN: close\r\n\r\n").flags,
	         FLB_HTTP_F_CONN_CLOSE);
}

/* Requests back to back in one buffer parse one after another. */
static void test_pipelined(void)
{
	static const char d[] =
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
		"PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
		"\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
		"GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	static const char *const targets[] = { "/a", "/b", "/c", "/d", "/e", "/f" };
	size_t pos = 0, len = sizeof(d) - 1;
	int k = 0;

	while (pos < len && k < 6) {
		struct outcome o = ok_n(REQ, d + pos, len - pos, 0, CAP, __LINE__);

		if (o.rc <= 0)
			break;
		CHECK_MEM(d + pos + o.target, o.target_len, targets[k]);
		pos += (size_t)o.rc + (o.cl > 0 ? (size_t)o.cl : 0);
		k++;
	}
	CHECK_EQ(k, 6);
	CHECK_EQ(pos, len);
}

/* Bytes after the head do not change the result. */
static void test_trailing_bytes(void)
{
	static const char *const tails[] = { "", "body", "\x00\xff\r\n", "GET / HTTP/1.1\r\n",
		"\n\n\n", " " };
	static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n";
	char buf[256];

	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		size_t tl = i == 2 ? 4 : strlen(tails[i]);

		memcpy(buf, head, sizeof(head) - 1);
		memcpy(buf + sizeof(head) - 1, tails[i], tl);
		CHECK_EQ(ok_n(REQ, buf, sizeof(head) - 1 + tl, 0, CAP, __LINE__).rc, sizeof(head) - 1);
	}
}

/* ------------------------------------------------------------------------ */
/* Requests: one test per strictness rule */

/* Content-Length with Transfer-Encoding, either order, request and response. */
static void test_cl_and_te(void)
{
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n", CL_AND_TE);
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	        "Content-Length: 5\r\n\r\n", CL_AND_TE);
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	        "Content-Length: 0\r\n\r\n", CL_AND_TE);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	         CL_AND_TE);
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
	         CL_AND_TE);
}

/* Differing Content-Length values. */
static void test_content_length_conflict(void)
{
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	        CONTENT_LENGTH_CONFLICT);
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nContent-Length: 10\r\n"
	        "Content-Length: 11\r\n\r\n", CONTENT_LENGTH_CONFLICT);
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 01\r\n"
	        "Content-Length: 2\r\n\r\n", CONTENT_LENGTH_CONFLICT);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 0\r\ncontent-length: 1\r\n\r\n",
	         CONTENT_LENGTH_CONFLICT);
}

/* Content-Length that is not 1*DIGIT (lists included) or overflows. */
static void test_content_length_invalid(void)
{
	static const char *const cases[] = {
		"", "abc", "-1", "+1", "1.0", "0x10", "1 2", "1,1", "5, 5", "1e3", "\xd9\xa1",
		"9223372036854775808", "18446744073709551616", "99999999999999999999999", "5,",
		",5",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf),
		                 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n", cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_CONTENT_LENGTH, __LINE__);
	}
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", CONTENT_LENGTH);
}

/* A request whose final transfer coding is not chunked. */
static void test_te_not_chunked(void)
{
	static const char *const cases[] = { "gzip", "chunked, gzip", "identity", "chunked,deflate",
		"chunked;a=b, x" };
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf),
		                 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
		                 cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_TE_NOT_CHUNKED, __LINE__);
	}
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	        "Transfer-Encoding: gzip\r\n\r\n", TE_NOT_CHUNKED);
}

/* chunked applied twice, in one line or over two. */
static void test_te_chunked_twice(void)
{
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
	        TE_CHUNKED_TWICE);
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n", TE_CHUNKED_TWICE);
	REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked, gzip, CHUNKED\r\n\r\n",
	        TE_CHUNKED_TWICE);
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
	         TE_CHUNKED_TWICE);
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n"
	         "Transfer-Encoding: chunked\r\n\r\n", TE_CHUNKED_TWICE);
}

/* Transfer-Encoding lists that are not tokens with parameters. */
static void test_te_syntax(void)
{
	static const char *const cases[] = {
		"chunked gzip", "chu\"nked", "@chunked", "", "chunked,", ", chunked", "gzip,,chunked",
		"gzip;, chunked", "gzip;a, chunked", "gzip;a=, chunked", "gzip;=b, chunked",
		"gzip;a=\"x,y\", chunked", "gzip;a=\"open, chunked", "gzip;a=b c, chunked",
		"chunked;", "chunked; a", "chunked/1",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf),
		                 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
		                 cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_TE_SYNTAX, __LINE__);
	}
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,\r\n\r\n", TE_SYNTAX);
}

/* Whitespace between a field name and its colon. */
static void test_header_name_space(void)
{
	struct outcome o;

	o = REQ_BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HEADER_NAME_SPACE);
	CHECK_EQ(o.off, 20);
	REQ_BAD("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HEADER_NAME_SPACE);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX-Foo   : a\r\n\r\n", HEADER_NAME_SPACE);
	RESP_BAD("HTTP/1.1 200 OK\r\nServer : x\r\n\r\n", HEADER_NAME_SPACE);
	/* Whitespace inside a name is a bad name, not a space before the colon. */
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n", HEADER_NAME);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX \r\n\r\n", HEADER_NAME);
}

/* Line folding, also right after the start line. */
static void test_obs_fold(void)
{
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n", OBS_FOLD);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n\tb\r\n\r\n", OBS_FOLD);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  continued: x\r\n\r\n", OBS_FOLD);
	REQ_BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", OBS_FOLD);
	REQ_BAD("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", OBS_FOLD);
	RESP_BAD("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", OBS_FOLD);
	RESP_BAD("HTTP/1.1 200 OK\r\n X: a\r\n\r\n", OBS_FOLD);
}

/* Control bytes and DEL in values, with their offsets. */
static void test_header_value_ctl(void)
{
	static const char *const cases[] = {
		"a\x01", "\x1b[31m", "a\x7f" "b", "a\x0b" "b", "a\x0c" "b", "\x1f",
		"a long value then a control byte \x02 here",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX-Bad: %s\r\n\r\n",
		                 cases[i]);
		struct outcome o = bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_HEADER_VALUE,
		                         __LINE__);

		CHECK(o.off >= 25 && o.off < (uint32_t)n - 4);
	}
	{
		struct outcome o = REQ_BAD("GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", HEADER_VALUE);

		CHECK_EQ(o.off, 23);
		REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", HEADER_VALUE);
		REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef0123\x00\r\n\r\n",
		        HEADER_VALUE);
	}
	RESP_BAD("HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n", HEADER_VALUE);
}

/* Bytes outside tchar in names, empty names, lines without a colon. */
static void test_header_name_invalid(void)
{
	static const char *const cases[] = {
		"X\x01Y: a", "\x7fX: a", "X(Y): a", "X/Y: a", "X@: a", "X[1]: a", "X\"Y: a",
		"X,Y: a", "X;Y: a", "X=Y: a", "X?Y: a", "X{}: a", "\xc3\xa9: a", ": a", "NoColon",
		"X-\x80: a", "A-Long-Name-Before-The-Bad-Byte\x80: a",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n",
		                 cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_HEADER_NAME, __LINE__);
	}
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX-\x00: a\r\n\r\n", HEADER_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nX\x00: a\r\n\r\n", HEADER_NAME);
}

/* A CR not followed by LF anywhere in the head. */
static void test_bare_cr(void)
{
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX\r: y\r\n\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\r\rHost: a\r\n\r\n", BARE_CR);
	REQ_BAD("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR);
	REQ_BAD("\r\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR);
	REQ_BAD("GET\r / HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR);
	REQ_BAD("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", BARE_CR);
	REQ_BAD("GET / HTTP/1.1\rx\r\nHost: a\r\n\r\n", BARE_CR);
	RESP_BAD("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", BARE_CR);
	RESP_BAD("HTTP/1.1 200 OK\r\r\n\r\n", BARE_CR);
	RESP_BAD("HTTP/1.1 200\rX\r\n\r\n", BARE_CR);
}

/* A LF not preceded by CR anywhere in the head. */
static void test_bare_lf(void)
{
	REQ_BAD("GET / HTTP/1.1\nHost: a\r\n\r\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\n\r\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: b\n\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\nX: b\r\n\r\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\n\n", BARE_LF);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX\n: y\r\n\r\n", BARE_LF);
	REQ_BAD("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", BARE_LF);
	RESP_BAD("HTTP/1.1 200 OK\r\nX: a\n\r\n", BARE_LF);
	RESP_BAD("HTTP/1.1 200 OK\n\n", BARE_LF);
	RESP_BAD("HTTP/1.1 200\n\r\n", BARE_LF);
}

/* Bytes outside tchar in the method, the empty method, early detection. */
static void test_method_invalid(void)
{
	static const char *const cases[] = {
		"GE(T", "GE/T", "G\xc3\x89T", "GET:", "[GET]", "GE\x7fT", "GE\tT", "GE@T", "GE,T",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_METHOD, __LINE__);
	}
	CHECK_EQ(REQ_BAD("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", METHOD).off, 2);
	REQ_BAD("GE\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", METHOD);
	/* Empty method. */
	REQ_BAD(" / HTTP/1.1\r\nHost: a\r\n\r\n", METHOD);
	/* Reported before the head is complete. */
	{
		struct outcome o;

		parse_one(REQ, "GE(", 3, 0, 0, CAP, &o);
		CHECK_EQ(o.rc, FLB_HTTP_INVALID);
		CHECK_EQ(o.err, FLB_HTTP_E_METHOD);
	}
}

/* CTL, HTAB, DEL and non-ASCII bytes in the target. */
static void test_target_invalid(void)
{
	static const char *const cases[] = {
		"/a\x01", "/a\tb", "/\x7f", "/caf\xc3\xa9", "/\x80", "/\x1b",
		"/a/long/path/before/the/bad/byte/\xff",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_TARGET, __LINE__);
	}
	CHECK_EQ(REQ_BAD("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", TARGET).off, 5);
	REQ_BAD("GET /a\x00" "b HTTP/1.1\r\nHost: a\r\n\r\n", TARGET);
}

/* Request lines with other than two single spaces, or missing parts. */
static void test_request_line_spacing(void)
{
	static const char *const cases[] = {
		"GET  / HTTP/1.1", "GET /  HTTP/1.1", "GET / HTTP/1.1 extra", "GET /", "GET / ",
		"GET / HTTP/1.0 ", "GET", "GET ", "GET /a b HTTP/1.1", "GET / HTTP/1.1  ",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\r\nHost: a\r\n\r\n", cases[i]);
		struct outcome o = bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_REQUEST_LINE,
		                         __LINE__);

		CHECK(o.off <= strlen(cases[i]) + 2);
	}
}

/* Versions other than HTTP/1.0 and HTTP/1.1. */
static void test_version_invalid(void)
{
	static const char *const cases[] = {
		"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.10", "HTTP/1.1x", "HTTP/1",
		"HTTP/11", "HTTPS/1.1", "HTTP/1.1\t", "ICE/1.0", "HTTP/1.1/", "HTTP/1.",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "GET / %s\r\nHost: a\r\n\r\n", cases[i]);

		bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_VERSION, __LINE__);
	}
}

/* Host missing in HTTP/1.1, repeated, and accepted variants. */
static void test_host(void)
{
	struct outcome o;

	o = REQ_BAD("GET / HTTP/1.1\r\n\r\n", HOST);
	CHECK_EQ(o.off, 16);
	REQ_BAD("GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n", HOST);
	REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", HOST);
	REQ_BAD("GET / HTTP/1.0\r\nHost: a\r\nX: y\r\nHOST: b\r\n\r\n", HOST);
	o = REQ_OK("GET / HTTP/1.1\r\nX: 1\r\nhOsT: \r\n\r\n");
	CHECK_EQ(o.host_index, 1);
	CHECK_EQ(o.hv_len[1], 0);
	REQ_OK("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
	/* Responses need no Host, but a repeated one is refused there too. */
	RESP_OK("HTTP/1.1 200 OK\r\n\r\n");
	RESP_BAD("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\n\r\n", HOST);
}

/* err_offset points at the offending byte. */
static void test_error_offsets(void)
{
	CHECK_EQ(REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", HEADER_NAME_SPACE).off, 26);
	CHECK_EQ(REQ_BAD("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", BARE_CR).off, 23);
	CHECK_EQ(REQ_BAD("GET / HTTP/1.1\r\nHost: a\n\r\n", BARE_LF).off, 23);
	CHECK_EQ(REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", OBS_FOLD).off, 25);
}

/* Field lines of every name length 1-20 and value length 0-36, so that the
 * colon, the CR, a HTAB or a bad byte fall on every place of the 16-byte
 * vectors (and the prefixes move the window end across them too). */
static void test_field_geometry(void)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\n";
	char buf[256], name[32], value[48];

	for (int nl = 1; nl <= 20; nl++) {
		for (int i = 0; i < nl; i++)
			name[i] = (char)("Ab-9xYz"[i % 7]);
		name[nl] = 0;
		for (int vl = 0; vl <= 36; vl += nl % 3 ? 1 : 2) {
			int n;
			struct outcome o;

			for (int i = 0; i < vl; i++)
				value[i] = (char)('a' + (i * 7 + nl) % 26);
			value[vl] = 0;
			n = snprintf(buf, sizeof(buf), "%s%s: %s\r\nX: y\r\n\r\n", pre, name, value);
			o = ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__);
			CHECK_EQ(o.nh, 3);
			CHECK_EQ(o.hn_len[1], nl);
			CHECK_EQ(o.hv_len[1], vl);
			CHECK(memcmp(buf + o.hv[1], value, (size_t)vl) == 0);
			if (vl == 0)
				continue;
			/* A HTAB inside (kept), around (stripped). */
			value[vl / 2] = '\t';
			n = snprintf(buf, sizeof(buf), "%s%s:\t%s\t\r\n\r\n", pre, name, value);
			o = ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__);
			{
				int a = 0, b = vl;

				while (a < b && value[a] == '\t')
					a++;
				while (b > a && value[b - 1] == '\t')
					b--;
				CHECK_EQ(o.hv_len[1], b - a);
			}
			/* A control byte, a bare CR, a bare LF, DEL. */
			value[vl / 2] = '\x01';
			n = snprintf(buf, sizeof(buf), "%s%s: %s\r\n\r\n", pre, name, value);
			o = bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_HEADER_VALUE, __LINE__);
			CHECK_EQ(o.off, sizeof(pre) - 1 + (size_t)nl + 2 + (size_t)vl / 2);
			value[vl / 2] = '\r';
			n = snprintf(buf, sizeof(buf), "%s%s: %s\r\n\r\n", pre, name, value);
			if (vl / 2 + 1 < vl || vl == 1)
				bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_BARE_CR, __LINE__);
			value[vl / 2] = '\n';
			n = snprintf(buf, sizeof(buf), "%s%s: %s\r\n\r\n", pre, name, value);
			bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_BARE_LF, __LINE__);
			value[vl / 2] = '\x7f';
			n = snprintf(buf, sizeof(buf), "%s%s: %s\r\n\r\n", pre, name, value);
			bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_HEADER_VALUE, __LINE__);
		}
		/* Other tchars, a bad byte and a space in every place of the name. */
		for (int k = 0; k < nl; k++) {
			char nm[32];
			int n;
			struct outcome o;

			memcpy(nm, name, (size_t)nl + 1);
			nm[k] = '_';
			n = snprintf(buf, sizeof(buf), "%s%s: v\r\n\r\n", pre, nm);
			o = ok_n(REQ, buf, (size_t)n, 0, CAP, __LINE__);
			CHECK_EQ(o.hn_len[1], nl);
			nm[k] = '@';
			n = snprintf(buf, sizeof(buf), "%s%s: v\r\n\r\n", pre, nm);
			o = bad_n(REQ, buf, (size_t)n, 0, CAP, FLB_HTTP_E_HEADER_NAME, __LINE__);
			CHECK_EQ(o.off, sizeof(pre) - 1 + (size_t)k);
			if (k > 0) {
				nm[k] = ' ';
				n = snprintf(buf, sizeof(buf), "%s%s: v\r\n\r\n", pre, nm);
				bad_n(REQ, buf, (size_t)n, 0, CAP, k == nl - 1 ?
				      FLB_HTTP_E_HEADER_NAME_SPACE : FLB_HTTP_E_HEADER_NAME, __LINE__);
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Limits */

/* Write into buf a valid request head of exactly n bytes (n > 40).
 * Returns n. */
static size_t sized_request(char *buf, size_t n)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
	size_t k = sizeof(pre) - 1;

	memcpy(buf, pre, k);
	memset(buf + k, 'p', n - k - 4);
	memcpy(buf + n - 4, "\r\n\r\n", 4);
	return n;
}

/* max_head: at, over and under the limit, default, incomplete heads. */
static void test_head_limit(void)
{
	static const size_t limits[] = { 64, 1000, 8192, 65536 };
	char *buf = malloc(70000);
	struct outcome o;

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		size_t lim = limits[i];

		sized_request(buf, lim);
		CHECK_EQ(ok_n(REQ, buf, lim, lim, CAP, __LINE__).rc, lim);
		sized_request(buf, lim + 1);
		o = bad_n(REQ, buf, lim + 1, lim, CAP, FLB_HTTP_E_HEAD_TOO_LARGE, __LINE__);
		CHECK_EQ(o.off, lim);
		sized_request(buf, lim + 1000);
		bad_n(REQ, buf, lim + 1000, lim, CAP, FLB_HTTP_E_HEAD_TOO_LARGE, __LINE__);
	}
	/* The default is 64 KiB. */
	sized_request(buf, 65536);
	CHECK_EQ(ok_n(REQ, buf, 65536, 0, CAP, __LINE__).rc, 65536);
	sized_request(buf, 65537);
	bad_n(REQ, buf, 65537, 0, CAP, FLB_HTTP_E_HEAD_TOO_LARGE, __LINE__);
	/* An incomplete head: INCOMPLETE below the limit, too large at it. */
	sized_request(buf, 200);
	parse_one(REQ, buf, 196, 0, 200, CAP, &o);
	CHECK_EQ(o.rc, FLB_HTTP_INCOMPLETE);
	parse_one(REQ, buf, 196, 0, 195, CAP, &o);
	CHECK_EQ(o.err, FLB_HTTP_E_HEAD_TOO_LARGE);
	parse_one(REQ, buf, 196, 0, 196, CAP, &o);
	CHECK_EQ(o.err, FLB_HTTP_E_HEAD_TOO_LARGE);
	/* An earlier error wins over the size. */
	memcpy(buf, "GE(", 3);
	parse_one(REQ, buf, 196, 0, 100, CAP, &o);
	CHECK_EQ(o.err, FLB_HTTP_E_METHOD);
	/* A huge target without an end. */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', 69995);
	bad_n(REQ, buf, 70000, 0, CAP, FLB_HTTP_E_HEAD_TOO_LARGE, __LINE__);
	/* Responses too. */
	{
		static const char d[] = "HTTP/1.1 200 OK\r\nX-Pad: 0123456789\r\n\r\n";

		ok_n(RESP, d, sizeof(d) - 1, sizeof(d) - 1, CAP, __LINE__);
		bad_n(RESP, d, sizeof(d) - 1, sizeof(d) - 2, CAP, FLB_HTTP_E_HEAD_TOO_LARGE,
		      __LINE__);
	}
	free(buf);
}

/* More field lines than the header array holds. */
static void test_too_many_headers(void)
{
	static const char *const f[] = { "Host: a", "X-1: 1", "X-2: 2", "X-3: 3", "X-4: 4" };
	char buf[1024];
	size_t n;
	struct outcome o;

	for (size_t k = 1; k <= 5; k++) {
		n = build(buf, sizeof(buf), "GET / HTTP/1.1", f, k);
		CHECK_EQ(ok_n(REQ, buf, n, 0, k, __LINE__).nh, k);
		if (k > 1)
			bad_n(REQ, buf, n, 0, k - 1, FLB_HTTP_E_TOO_MANY_HEADERS, __LINE__);
	}
	n = build(buf, sizeof(buf), "GET / HTTP/1.0", f, 5);
	o = bad_n(REQ, buf, n, 0, 0, FLB_HTTP_E_TOO_MANY_HEADERS, __LINE__);
	CHECK_EQ(o.off, 16);
	/* A bad extra line reports its own error. */
	{
		static const char d[] = "GET / HTTP/1.1\r\nHost: a\r\nX@: y\r\n\r\n";

		bad_n(REQ, d, sizeof(d) - 1, 0, 1, FLB_HTTP_E_HEADER_NAME, __LINE__);
	}
	{
		static const char d[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";

		ok_n(RESP, d, sizeof(d) - 1, 0, 2, __LINE__);
		bad_n(RESP, d, sizeof(d) - 1, 0, 1, FLB_HTTP_E_TOO_MANY_HEADERS, __LINE__);
	}
}

/* Resuming with last_len over a long head whose pieces hold no LF: the quick
 * check answers INCOMPLETE, and the error or the head shows up at the LF. */
static void test_incremental_resume(void)
{
	static const char d[] = "GET /a-rather-long-target-so-that-we-pass-64-bytes?x=1 HTTP/1.1\r\n"
		"Host: a\r\nX-Long: 0123456789012345678901234567890123456789\r\n\r\n";
	static const char bad[] = "GET /a-rather-long-target-so-that-we-pass-64-bytes?x=1 HTTP/1.1\r\n"
		"Host: a\r\nX-L@ng: 0123456789012345678901234567890123456789\r\n\r\n";
	struct flb_http_header hdrs[8];
	struct flb_http_msg msg = { .headers = hdrs, .num_headers = 8 };
	size_t n = sizeof(d) - 1, i, last = 0;
	int rc = FLB_HTTP_INCOMPLETE;

	for (i = 1; i <= n && rc == FLB_HTTP_INCOMPLETE; i++) {
		rc = flb_http_parse_request(d, i, last, 0, &msg);
		last = i;
	}
	CHECK_EQ(rc, n);
	CHECK_EQ(i - 1, n);
	CHECK_EQ(msg.num_headers, 2);
	/* In two pieces, the second one with the rest. */
	msg.num_headers = 8;
	CHECK_EQ(flb_http_parse_request(d, 70, 0, 0, &msg), FLB_HTTP_INCOMPLETE);
	CHECK_EQ(flb_http_parse_request(d, n, 70, 0, &msg), n);
	/* A bad name byte after byte 64: found when its line ends. */
	msg.num_headers = 8;
	last = 0;
	rc = FLB_HTTP_INCOMPLETE;
	for (i = 1; i <= sizeof(bad) - 1 && rc == FLB_HTTP_INCOMPLETE; i++) {
		rc = flb_http_parse_request(bad, i, last, 0, &msg);
		last = i;
	}
	CHECK_EQ(rc, FLB_HTTP_INVALID);
	CHECK_EQ(msg.err, FLB_HTTP_E_HEADER_NAME);
	CHECK_EQ(msg.err_offset, 77);
	CHECK_EQ(i - 1, sizeof(bad) - 1 - 2); /* at the LF ending the bad line */
	/* A NUL is found at once. */
	{
		char b2[sizeof(d)];

		memcpy(b2, d, sizeof(d));
		b2[100] = '\0';
		CHECK_EQ(flb_http_parse_request(b2, 100, 0, 0, &msg), FLB_HTTP_INCOMPLETE);
		CHECK_EQ(flb_http_parse_request(b2, 101, 100, 0, &msg), FLB_HTTP_INVALID);
		CHECK_EQ(msg.err, FLB_HTTP_E_HEADER_VALUE);
		/* And a bare CR at the seam. */
		memcpy(b2, d, sizeof(d));
		b2[99] = '\r';
		CHECK_EQ(flb_http_parse_request(b2, 100, 0, 0, &msg), FLB_HTTP_INCOMPLETE);
		CHECK_EQ(flb_http_parse_request(b2, 101, 100, 0, &msg), FLB_HTTP_INVALID);
		CHECK_EQ(msg.err, FLB_HTTP_E_BARE_CR);
	}
}

/* ------------------------------------------------------------------------ */
/* Responses */

static void test_response_basic(void)
{
	static const char d[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		"Content-Length: 5\r\n\r\nhello";
	struct outcome o = RESP_OK(d);

	CHECK_EQ(o.rc, sizeof(d) - 1 - 5);
	CHECK_EQ(o.status, 200);
	CHECK_MEM(d + o.reason, o.reason_len, "OK");
	CHECK_EQ(o.minor, 1);
	CHECK_EQ(o.nh, 2);
	CHECK_EQ(o.cl, 5);
	CHECK_EQ(o.flags, FLB_HTTP_F_HAS_CL | FLB_HTTP_F_KEEP_ALIVE);
	CHECK_EQ(o.host_index, -1);
	CHECK_EQ(o.method, -1);
}

/* Valid status lines and the reason phrases they give. */
static void test_status_lines(void)
{
	static const struct { const char *line; int status; const char *reason; } cases[] = {
		{ "HTTP/1.1 200 OK", 200, "OK" },
		{ "HTTP/1.0 404 Not Found", 404, "Not Found" },
		{ "HTTP/1.1 500 Internal  Server\tError ", 500, "Internal  Server\tError " },
		{ "HTTP/1.1 200 ", 200, "" },
		{ "HTTP/1.1 200", 200, "" },
		{ "HTTP/1.1 999 Custom", 999, "Custom" },
		{ "HTTP/1.1 100 Continue", 100, "Continue" },
		{ "HTTP/1.1 418 I'm a teapot", 418, "I'm a teapot" },
		{ "HTTP/1.1 200 \xc3\x93K \xff", 200, "\xc3\x93K \xff" },
		{ "HTTP/1.1 200 OK: fine / (really) ;-)", 200, "OK: fine / (really) ;-)" },
		{ "HTTP/1.1 200  two leading spaces", 200, " two leading spaces" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\r\nContent-Length: 0\r\n\r\n", cases[i].line);
		struct outcome o = ok_n(RESP, buf, (size_t)n, 0, CAP, __LINE__);

		CHECK_EQ(o.status, cases[i].status);
		CHECK_MEM(buf + o.reason, o.reason_len, cases[i].reason);
	}
}

/* Responses without bodies parse like any other. */
static void test_response_1xx_204_304(void)
{
	struct outcome o = RESP_OK("HTTP/1.1 100 Continue\r\n\r\n");

	CHECK_EQ(o.status, 100);
	CHECK_EQ(o.nh, 0);
	CHECK_EQ(RESP_OK("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
	                 "Upgrade: websocket\r\n\r\n").flags,
	         FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_UPGRADE | FLB_HTTP_F_HAS_UPGRADE);
	o = RESP_OK("HTTP/1.1 204 No Content\r\n\r\n");
	CHECK_EQ(o.status, 204);
	CHECK_EQ(o.cl, -1);
	o = RESP_OK("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1000\r\n\r\n");
	CHECK_EQ(o.status, 304);
	CHECK_EQ(o.cl, 1000);
	o = RESP_OK("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
	CHECK_EQ(o.flags, FLB_HTTP_F_KEEP_ALIVE | FLB_HTTP_F_CONN_KEEPALIVE);
}

/* In a response, a Transfer-Encoding not ending in chunked is valid. */
static void test_response_te(void)
{
	static const char *const cases[] = { "gzip", "chunked, gzip", "identity", "deflate, br" };
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\n\r\n",
		                 cases[i]);
		struct outcome o = ok_n(RESP, buf, (size_t)n, 0, CAP, __LINE__);

		CHECK_EQ(o.flags & (FLB_HTTP_F_CHUNKED | FLB_HTTP_F_HAS_TE), FLB_HTTP_F_HAS_TE);
	}
	CHECK(RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").flags &
	      FLB_HTTP_F_CHUNKED);
	CHECK(RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n").flags & FLB_HTTP_F_CHUNKED);
}

/* Malformed status codes, reasons and versions. */
static void test_response_bad(void)
{
	static const char *const status[] = {
		"HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 abc OK", "HTTP/1.1 099 Low",
		"HTTP/1.1 000 Zero", "HTTP/1.1 -20 OK", "HTTP/1.1 2x0 OK", "HTTP/1.1 ",
		"HTTP/1.1  200 OK", "HTTP/1.1 200\tOK", "HTTP/1.1 20",
	};
	static const char *const reason[] = {
		"HTTP/1.1 200 \x01", "HTTP/1.1 200 OK\x7f", "HTTP/1.1 200 \x1b[0m",
		"HTTP/1.1 200 a reason longer than sixteen \x02",
	};
	static const char *const version[] = {
		"HTTP/1.2 200 OK", "HTTP/2 200 OK", "HTTP/2.0 200 OK", "http/1.1 200 OK",
		"HTTP/1.1x 200 OK", "ICY 200 OK", "HTTP/1.1", "XTTP/1.1 200 OK", " HTTP/1.1 200 OK",
		"", "HTTP/1.1\t200 OK",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\r\n\r\n", status[i]);

		bad_n(RESP, buf, (size_t)n, 0, CAP, FLB_HTTP_E_STATUS, __LINE__);
	}
	for (size_t i = 0; i < sizeof(reason) / sizeof(reason[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\r\n\r\n", reason[i]);

		bad_n(RESP, buf, (size_t)n, 0, CAP, FLB_HTTP_E_REASON, __LINE__);
	}
	for (size_t i = 0; i < sizeof(version) / sizeof(version[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "%s\r\n\r\n", version[i]);

		bad_n(RESP, buf, (size_t)n, 0, CAP, FLB_HTTP_E_VERSION, __LINE__);
	}
	RESP_BAD("HTTP/1.1 200 O\x00K\r\n\r\n", REASON);
}

/* Responses back to back in one buffer. */
static void test_pipelined_responses(void)
{
	static const char d[] = "HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
		"HTTP/1.1 204 No Content\r\n\r\n"
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	static const int statuses[] = { 100, 200, 204, 404 };
	size_t pos = 0, len = sizeof(d) - 1;
	int k = 0;

	while (pos < len && k < 4) {
		struct outcome o = ok_n(RESP, d + pos, len - pos, 0, CAP, __LINE__);

		if (o.rc <= 0)
			break;
		CHECK_EQ(o.status, statuses[k]);
		pos += (size_t)o.rc + (o.status >= 200 && o.status != 204 && o.cl > 0 ?
		                       (size_t)o.cl : 0);
		k++;
	}
	CHECK_EQ(k, 4);
	CHECK_EQ(pos, len);
}

/* Every error code has its own message, and bad codes get one too. */
static void test_strerror(void)
{
	for (int e = 0; e < FLB_HTTP_E__COUNT; e++) {
		const char *s = flb_http_strerror(e);

		CHECK(s && *s);
		for (int k = 0; k < e; k++)
			CHECK(strcmp(s, flb_http_strerror(k)) != 0);
	}
	CHECK(flb_http_strerror(-1) != NULL);
	CHECK(flb_http_strerror(FLB_HTTP_E__COUNT) != NULL);
}

/* ------------------------------------------------------------------------ */
/* Chunked decoder */

/* What feeding a body gave. */
struct cres {
	int state;      /* 0 done, 1 incomplete, 2 error */
	int err;
	size_t end;     /* done: offset in the input where the body ended */
	size_t out_len; /* decoded data bytes */
	char out[70000];
};

static struct cres cres_a, cres_b;

/* Feed data[0..len) to a fresh decoder in pieces cut at cuts[0..ncuts)
 * (increasing offsets), each piece in its own exactly sized heap copy.
 * scan: use flb_http_chunked_scan instead of decode.  Also checks that
 * decode moves the bytes after the body right behind the data. */
static void feed(const char *data, size_t len, const size_t *cuts, size_t ncuts, int scan,
                 uint32_t max_line, uint32_t max_trailer, struct cres *r)
{
	struct flb_http_chunked d;
	size_t start = 0;

	flb_http_chunked_init(&d);
	if (max_line)
		d.max_line = max_line;
	if (max_trailer)
		d.max_trailer = max_trailer;
	r->state = 1;
	r->err = 0;
	r->end = 0;
	r->out_len = 0;
	for (size_t k = 0; k <= ncuts; k++) {
		size_t stop = k < ncuts ? cuts[k] : len;
		size_t n = stop - start;
		char *buf = malloc(n ? n : 1);
		long rc;

		memcpy(buf, data + start, n);
		if (scan) {
			rc = flb_http_chunked_scan(&d, buf, n);
			if (rc >= 0) {
				CHECK((size_t)rc <= n);
				if (d.done) {
					r->state = 0;
					r->end = start + (size_t)rc;
				} else {
					CHECK((size_t)rc == n);
				}
			}
		} else {
			size_t m = n;

			rc = flb_http_chunked_decode(&d, buf, &m);
			CHECK(m <= n);
			if (r->out_len + m <= sizeof(r->out)) {
				memcpy(r->out + r->out_len, buf, m);
				r->out_len += m;
			}
			if (rc >= 0) {
				CHECK(d.done);
				CHECK(m + (size_t)rc <= n);
				CHECK(memcmp(buf + m, data + stop - rc, (size_t)rc) == 0);
				r->state = 0;
				r->end = stop - (size_t)rc;
			} else if (rc == FLB_HTTP_INCOMPLETE) {
				CHECK(!d.done);
			}
		}
		free(buf);
		if (rc == FLB_HTTP_INVALID) {
			CHECK(d.err > 0);
			r->state = 2;
			r->err = d.err;
			/* Sticky. */
			CHECK_EQ(flb_http_chunked_scan(&d, "0\r\n\r\n", 5), FLB_HTTP_INVALID);
			return;
		}
		if (r->state == 0) {
			/* After the end, everything is left alone. */
			char more[4] = "abc";
			size_t ml = 3;

			if (scan)
				CHECK_EQ(flb_http_chunked_scan(&d, more, 3), 0);
			else
				CHECK_EQ(flb_http_chunked_decode(&d, more, &ml), 3);
			return;
		}
		start = stop;
	}
}

/* Whether two feeds agree.  scan results carry no data.  Returns 1 or 0. */
static int cres_eq(const struct cres *a, const struct cres *b, int data_too)
{
	if (a->state != b->state)
		return 0;
	if (a->state == 2)
		return a->err == b->err;
	if (a->state == 0 && a->end != b->end)
		return 0;
	return !data_too || (a->out_len == b->out_len && !memcmp(a->out, b->out, a->out_len));
}

/* Decode and scan data whole, byte by byte and split at every point.
 * want: 0 done, 1 incomplete, 2 error (then err).  body/body_len: the data
 * when done; end: where the body ends when done.  line: the caller's line. */
static void chunked_check(const char *data, size_t len, uint32_t max_line,
                          uint32_t max_trailer, int want, int err, const char *body,
                          size_t body_len, size_t end, int line)
{
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));

	feed(data, len, NULL, 0, 0, max_line, max_trailer, &cres_a);
	CHECK_AT(line, cres_a.state == want);
	if (cres_a.state != want || (want == 2 && cres_a.err != err))
		fprintf(stderr, "  want state %d err %d, got state %d err %d (%s)\n", want, err,
		        cres_a.state, cres_a.err, flb_http_strerror(cres_a.err));
	if (want == 2)
		CHECK_AT(line, cres_a.err == err);
	if (want == 0) {
		CHECK_AT(line, cres_a.end == end);
		CHECK_AT(line, cres_a.out_len == body_len && !memcmp(cres_a.out, body, body_len));
	}
	if (want != 2 && body)
		CHECK_AT(line, cres_a.out_len <= body_len && !memcmp(cres_a.out, body, cres_a.out_len));
	/* Scan whole. */
	feed(data, len, NULL, 0, 1, max_line, max_trailer, &cres_b);
	CHECK_AT(line, cres_eq(&cres_a, &cres_b, 0));
	/* Byte by byte. */
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	for (int scan = 0; scan < 2; scan++) {
		feed(data, len, cuts, len ? len - 1 : 0, scan, max_line, max_trailer, &cres_b);
		CHECK_AT(line, cres_eq(&cres_a, &cres_b, !scan));
	}
	/* Two pieces, cut everywhere (sampled when long). */
	for (size_t c = 0; c <= len; c += len < 2048 ? 1 : len / 509 + 1) {
		for (int scan = 0; scan < 2; scan++) {
			feed(data, len, &c, 1, scan, max_line, max_trailer, &cres_b);
			CHECK_AT(line, cres_eq(&cres_a, &cres_b, !scan));
		}
	}
	free(cuts);
}

#define CH_OK(s, body) chunked_check(s, sizeof(s) - 1, 0, 0, 0, 0, body, sizeof(body) - 1, \
                                     sizeof(s) - 1, __LINE__)
#define CH_OK_TAIL(s, body, tail) chunked_check(s tail, sizeof(s tail) - 1, 0, 0, 0, 0, body, \
                                                sizeof(body) - 1, sizeof(s) - 1, __LINE__)
#define CH_BAD(s, e) chunked_check(s, sizeof(s) - 1, 0, 0, 2, FLB_HTTP_E_##e, NULL, 0, 0, \
                                   __LINE__)
#define CH_MORE(s, body) chunked_check(s, sizeof(s) - 1, 0, 0, 1, 0, body, sizeof(body) - 1, \
                                       0, __LINE__)

/* Valid chunked bodies. */
static void test_chunked_valid(void)
{
	CH_OK("5\r\nhello\r\n0\r\n\r\n", "hello");
	CH_OK("0\r\n\r\n", "");
	CH_OK("4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n",
	      "Wikipedia in\r\n\r\nchunks.");
	CH_OK("a\r\n0123456789\r\nA\r\nabcdefghij\r\n00000\r\n\r\n", "0123456789abcdefghij");
	CH_OK("3\r\nabc\r\n000\r\n\r\n", "abc");
	CH_OK("000000000000000000000000001\r\nx\r\n0\r\n\r\n", "x");
	CH_OK("b\r\n\r\n0\r\n\r\n\x00\xff\n\r\r\n0\r\n\r\n", "\r\n0\r\n\r\n\x00\xff\n\r");
}

/* Chunk sizes in every case and length, up to the 2^63 - 1 bound. */
static void test_chunked_sizes(void)
{
	static const size_t sizes[] = { 1, 9, 10, 15, 16, 255, 256, 4095, 4096, 65536 };
	static const char *const fmts[] = { "%zx\r\n", "%zX\r\n", "000%zx\r\n" };
	char *data = malloc(70000), *body = malloc(65536);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t f = 0; f < 3; f++) {
			size_t n = (size_t)sprintf(data, fmts[f], sizes[i]);

			for (size_t k = 0; k < sizes[i]; k++)
				body[k] = data[n + k] = (char)(k % 251);
			n += sizes[i];
			memcpy(data + n, "\r\n0\r\n\r\n", 7);
			n += 7;
			chunked_check(data, n, 0, 0, 0, 0, body, sizes[i], n, __LINE__);
		}
	}
	free(data);
	free(body);
	/* The largest size accepted is 2^63 - 1 (then it waits for data). */
	CH_MORE("7fffffffffffffff\r\nabc", "abc");
	CH_MORE("07fffffffffffffff\r\n", "");
	CH_BAD("8000000000000000\r\n", CHUNK_SIZE);
	CH_BAD("10000000000000000\r\n", CHUNK_SIZE);
	CH_BAD("fffffffffffffffff\r\n", CHUNK_SIZE);
	CH_BAD("123456789abcdef012345\r\n", CHUNK_SIZE);
}

/* Valid chunk extensions, dropped from the data. */
static void test_chunked_extensions(void)
{
	static const char *const exts[] = {
		";foo", ";foo=bar", ";a=1;b=2", "; a = b", "\t;\tname", ";q=\"quoted value\"",
		";q=\"with \\\" escape\"", ";x=\"\"", ";!#$%&'*+-.^_`|~=token", " ;a ;b=c",
		";a=\"\\\\\" ;b", ";a=\"\xff\x80\t\"",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		int n = snprintf(buf, sizeof(buf), "5%s\r\nhello\r\n0%s\r\n\r\n", exts[i], exts[i]);

		chunked_check(buf, (size_t)n, 0, 0, 0, 0, "hello", 5, (size_t)n, __LINE__);
	}
}

/* Trailers, bytes after the body, and bodies not finished yet. */
static void test_chunked_trailers(void)
{
	CH_OK("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nExpires:  never \r\nX-Empty:\r\n\r\n",
	      "hello");
	CH_OK("0\r\nX: \xff\t\x80\r\n\r\n", "");
	CH_OK_TAIL("3\r\nabc\r\n0\r\n\r\n", "abc", "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
	CH_OK_TAIL("3\r\nabc\r\n0\r\nT: 1\r\n\r\n", "abc", "xyz");
	CH_OK_TAIL("0\r\n\r\n", "", "\r\n");
	CH_MORE("3\r\nabc\r\n0\r\n", "abc");
	CH_MORE("3\r\nabc\r\n0\r\nX: y\r\n", "abc");
	CH_MORE("3\r\nabc\r\n0\r\nX: y\r\n\r", "abc");
	CH_MORE("a\r\n01234", "01234");
	CH_MORE("", "");
}

/* max_line and max_trailer, at and over their bounds. */
static void test_chunked_limits(void)
{
	char *buf = malloc(200000);
	size_t n;

	/* max_line bounds the size line without its CRLF. */
	n = (size_t)sprintf(buf, "5;%0100d\r\nhello\r\n0\r\n\r\n", 0);
	chunked_check(buf, n, 200, 0, 0, 0, "hello", 5, n, __LINE__);
	chunked_check(buf, n, 102, 0, 0, 0, "hello", 5, n, __LINE__);
	chunked_check(buf, n, 101, 0, 2, FLB_HTTP_E_CHUNK_LINE_TOO_LONG, NULL, 0, 0, __LINE__);
	chunked_check(buf, n, 50, 0, 2, FLB_HTTP_E_CHUNK_LINE_TOO_LONG, NULL, 0, 0, __LINE__);
	/* Without an end of line in sight, found early. */
	memcpy(buf, "5;", 2);
	memset(buf + 2, 'x', 10000);
	chunked_check(buf, 10002, 0, 0, 2, FLB_HTTP_E_CHUNK_LINE_TOO_LONG, NULL, 0, 0, __LINE__);
	/* The default is 4096. */
	buf[0] = '1';
	memset(buf + 2, 'e', 4094);
	memcpy(buf + 4096, "\r\nx\r\n0\r\n\r\n", 10);
	chunked_check(buf, 4106, 0, 0, 0, 0, "x", 1, 4106, __LINE__);
	buf[4096] = 'e';
	chunked_check(buf, 4106, 0, 0, 2, FLB_HTTP_E_CHUNK_LINE_TOO_LONG, NULL, 0, 0, __LINE__);
	/* max_trailer bounds the trailer fields with their CRLFs, not the last CRLF. */
	n = (size_t)sprintf(buf, "0\r\n");
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(buf + n, "X-T%02d: %050d\r\n", i, 0);
	n += (size_t)sprintf(buf + n, "\r\n");
	chunked_check(buf, n, 0, 4000, 0, 0, "", 0, n, __LINE__);
	chunked_check(buf, n, 0, (uint32_t)(n - 5), 0, 0, "", 0, n, __LINE__);
	chunked_check(buf, n, 0, (uint32_t)(n - 6), 2, FLB_HTTP_E_TRAILER_TOO_LARGE, NULL, 0, 0,
	              __LINE__);
	chunked_check(buf, n, 0, 500, 2, FLB_HTTP_E_TRAILER_TOO_LARGE, NULL, 0, 0, __LINE__);
	n = (size_t)sprintf(buf, "0\r\n");
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(buf + n, "X: y\r\n");
	chunked_check(buf, n, 0, 0, 2, FLB_HTTP_E_TRAILER_TOO_LARGE, NULL, 0, 0, __LINE__);
	free(buf);
}

/* One case per chunked error code. */
static void test_chunked_errors(void)
{
	/* chunk-size */
	CH_BAD("g\r\nx\r\n0\r\n\r\n", CHUNK_SIZE);
	CH_BAD("\r\n", CHUNK_SIZE);
	CH_BAD("-1\r\nx\r\n", CHUNK_SIZE);
	CH_BAD("+1\r\nx\r\n", CHUNK_SIZE);
	CH_BAD(" 1\r\nx\r\n", CHUNK_SIZE);
	CH_BAD("0x5\r\nhello\r\n", CHUNK_SIZE);
	CH_BAD("5x\r\nhello\r\n", CHUNK_SIZE);
	CH_BAD(";ext\r\n", CHUNK_SIZE);
	CH_BAD("5\r\nhello\r\nz\r\n", CHUNK_SIZE);
	CH_BAD("5\r\r\nhello\r\n", CHUNK_SIZE);
	CH_BAD("\n", CHUNK_SIZE);
	/* chunk-ext */
	CH_BAD("5;\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;=x\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=\"unterminated\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=b c\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5 x\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5 \r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a \r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=\x00\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a@\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a==b\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n", CHUNK_EXT);
	CH_BAD("5;a\rb\r\nhello\r\n", CHUNK_EXT);
	CH_BAD("5\n", CHUNK_EXT);
	CH_BAD("5;a\n", CHUNK_EXT);
	/* chunk-data */
	CH_BAD("3\r\nhello\r\n0\r\n\r\n", CHUNK_DATA);
	CH_BAD("3\r\nab\r\n0\r\n\r\n", CHUNK_DATA);
	CH_BAD("3\r\nabc\n0\r\n\r\n", CHUNK_DATA);
	CH_BAD("3\r\nabc\r0\r\n\r\n", CHUNK_DATA);
	CH_BAD("3\r\nabcxy0\r\n\r\n", CHUNK_DATA);
	/* trailer */
	CH_BAD("0\r\nNo colon\r\n\r\n", TRAILER);
	CH_BAD("0\r\nX : y\r\n\r\n", TRAILER);
	CH_BAD("0\r\nX: y\x00\r\n\r\n", TRAILER);
	CH_BAD("0\r\nX\x01: y\r\n\r\n", TRAILER);
	CH_BAD("0\r\n: y\r\n\r\n", TRAILER);
	CH_BAD("0\r\nX: y\r\n folded\r\n\r\n", TRAILER);
	CH_BAD("0\r\nX: y\rz\r\n\r\n", TRAILER);
	CH_BAD("0\r\nX: y\n\r\n", TRAILER);
	CH_BAD("0\r\n\rX\r\n\r\n", TRAILER);
	CH_BAD("0\r\n\n", TRAILER);
	CH_BAD("0\r\nX: \x7f\r\n\r\n", TRAILER);
}

/* Decode with the output counted across many small calls, as a relay would. */
static void test_chunked_partial_output(void)
{
	struct flb_http_chunked d;
	char b1[] = "a\r\n01234", b2[] = "56789\r", b3[] = "\n0\r\n\r\nNEXT";
	size_t n;

	flb_http_chunked_init(&d);
	CHECK_EQ(d.max_line, 4096);
	CHECK_EQ(d.max_trailer, 65536);
	n = sizeof(b1) - 1;
	CHECK_EQ(flb_http_chunked_decode(&d, b1, &n), FLB_HTTP_INCOMPLETE);
	CHECK_MEM(b1, n, "01234");
	n = sizeof(b2) - 1;
	CHECK_EQ(flb_http_chunked_decode(&d, b2, &n), FLB_HTTP_INCOMPLETE);
	CHECK_MEM(b2, n, "56789");
	n = 0;
	CHECK_EQ(flb_http_chunked_decode(&d, b3, &n), FLB_HTTP_INCOMPLETE);
	CHECK_EQ(n, 0);
	n = sizeof(b3) - 1;
	CHECK_EQ(flb_http_chunked_decode(&d, b3, &n), 4);
	CHECK_EQ(n, 0);
	CHECK_MEM(b3, 4, "NEXT");
	CHECK(d.done);
	/* scan of the same stream. */
	flb_http_chunked_init(&d);
	CHECK_EQ(flb_http_chunked_scan(&d, "a\r\n01234", 8), 8);
	CHECK_EQ(flb_http_chunked_scan(&d, "56789\r", 6), 6);
	CHECK_EQ(flb_http_chunked_scan(&d, "\n0\r\n\r\nNEXT", 10), 6);
	CHECK(d.done);
}

/* Run every test.  Returns 0 when all checks passed. */
int main(void)
{
	test_simple_get();
	test_http10();
	test_methods_and_targets();
	test_browser_request();
	test_value_whitespace();
	test_obs_text_and_htab();
	test_name_chars();
	test_leading_crlf();
	test_content_length_ok();
	test_transfer_encoding_ok();
	test_keep_alive();
	test_expect_and_upgrade();
	test_pipelined();
	test_trailing_bytes();
	test_cl_and_te();
	test_content_length_conflict();
	test_content_length_invalid();
	test_te_not_chunked();
	test_te_chunked_twice();
	test_te_syntax();
	test_header_name_space();
	test_obs_fold();
	test_header_value_ctl();
	test_header_name_invalid();
	test_bare_cr();
	test_bare_lf();
	test_method_invalid();
	test_target_invalid();
	test_request_line_spacing();
	test_version_invalid();
	test_host();
	test_error_offsets();
	test_field_geometry();
	test_head_limit();
	test_too_many_headers();
	test_incremental_resume();
	test_response_basic();
	test_status_lines();
	test_response_1xx_204_304();
	test_response_te();
	test_response_bad();
	test_pipelined_responses();
	test_strerror();
	test_chunked_valid();
	test_chunked_sizes();
	test_chunked_extensions();
	test_chunked_trailers();
	test_chunked_limits();
	test_chunked_errors();
	test_chunked_partial_output();
	return CHECK_REPORT();
}
