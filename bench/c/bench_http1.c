/* bench_http1.c: micro benchmarks of http1.c (head parser, chunked decoder).
 * Build and run: make -C bench c/bench_http1 && bench/c/bench_http1
 * (pinning helps on a noisy machine: taskset -c 1 bench/c/bench_http1).
 * Each figure is the median of RUNS timed runs after one warm-up run; a run
 * parses the same message ITERS times.  Throughput is input bytes per second.
 * parse_request is the ~450-byte browser request of bench/samples.py.
 * chunked_decode_* decode in place, so each operation first copies the body
 * into a scratch buffer; the "(memcpy alone)" line below it is that copy.
 * chunked_scan_* only track the framing: chunk data is skipped unread, hence
 * the large byte rates for big chunks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http1.h"

#define RUNS  11
#define ITERS 200000

/* The realistic browser request of bench/samples.py (BROWSER_REQUEST). */
static const char browser_request[] =
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

/* A larger Chrome navigation request, with client hints and Sec-Fetch-*. */
static const char chrome_request[] =
	"GET /search?q=http%2F1.1+parser&hl=en HTTP/1.1\r\n"
	"Host: www.example.com\r\n"
	"Connection: keep-alive\r\n"
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
	"sec-ch-ua-mobile: ?0\r\n"
	"sec-ch-ua-platform: \"Linux\"\r\n"
	"Upgrade-Insecure-Requests: 1\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
	" Chrome/124.0.0.0 Safari/537.36\r\n"
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
	"image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
	"Sec-Fetch-Site: none\r\n"
	"Sec-Fetch-Mode: navigate\r\n"
	"Sec-Fetch-User: ?1\r\n"
	"Sec-Fetch-Dest: document\r\n"
	"Accept-Encoding: gzip, deflate, br, zstd\r\n"
	"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
	"Cookie: session=abc123; theme=dark; _ga=GA1.2.3456.7890\r\n"
	"If-None-Match: W/\"5e15153d-120f\"\r\n"
	"\r\n";

/* A typical response head. */
static const char response_head[] =
	"HTTP/1.1 200 OK\r\n"
	"Date: Mon, 27 Jul 2009 12:28:53 GMT\r\n"
	"Server: Apache/2.2.14 (Win32)\r\n"
	"Last-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\n"
	"ETag: \"34aa387-d-1568eb00\"\r\n"
	"Cache-Control: public, max-age=31536000, immutable\r\n"
	"Vary: Accept-Encoding\r\n"
	"Content-Encoding: gzip\r\n"
	"Content-Length: 88\r\n"
	"Content-Type: text/html; charset=UTF-8\r\n"
	"\r\n";

static volatile long sink;

/* Monotonic time in nanoseconds. */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* qsort comparator of doubles.  Returns <0, 0, >0. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v).  Returns the median. */
static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One timed workload: fn runs the operation iters times over its input. */
struct work {
	const char *label;
	const char *unit;                   /* what one operation is: "req", "body"... */
	size_t bytes;                       /* input bytes per operation */
	long iters;
	long (*fn)(const struct work *w);   /* returns a checksum */
	const char *buf;
	char *scratch;                      /* decode's working copy */
};

/* Parse w->buf as a request w->iters times.  Returns a checksum. */
static long run_request(const struct work *w)
{
	struct flb_http_header hdrs[64];
	struct flb_http_msg msg;
	long sum = 0;

	for (long i = 0; i < w->iters; i++) {
		msg.headers = hdrs;
		msg.num_headers = 64;
		sum += flb_http_parse_request(w->buf, w->bytes, 0, 0, &msg);
	}
	return sum + (long)msg.num_headers;
}

/* Parse w->buf as a response w->iters times.  Returns a checksum. */
static long run_response(const struct work *w)
{
	struct flb_http_header hdrs[64];
	struct flb_http_msg msg;
	long sum = 0;

	for (long i = 0; i < w->iters; i++) {
		msg.headers = hdrs;
		msg.num_headers = 64;
		sum += flb_http_parse_response(w->buf, w->bytes, 0, 0, &msg);
	}
	return sum + (long)msg.num_headers;
}

/* Copy w->buf to scratch and decode it in place, w->iters times.
 * Returns a checksum. */
static long run_decode(const struct work *w)
{
	struct flb_http_chunked d;
	long sum = 0;

	for (long i = 0; i < w->iters; i++) {
		size_t n = w->bytes;

		memcpy(w->scratch, w->buf, n);
		flb_http_chunked_init(&d);
		sum += flb_http_chunked_decode(&d, w->scratch, &n);
		sum += (long)n;
	}
	return sum;
}

/* Copy w->buf to scratch w->iters times: the share of run_decode that is
 * only the copy.  Returns a checksum. */
static long run_copy(const struct work *w)
{
	long sum = 0;

	for (long i = 0; i < w->iters; i++) {
		memcpy(w->scratch, w->buf, w->bytes);
		__asm__ volatile("" : : "r"(w->scratch) : "memory");
		sum += w->scratch[i % (long)w->bytes];
	}
	return sum;
}

/* Scan w->buf for the end of the chunked body, w->iters times.
 * Returns a checksum. */
static long run_scan(const struct work *w)
{
	struct flb_http_chunked d;
	long sum = 0;

	for (long i = 0; i < w->iters; i++) {
		flb_http_chunked_init(&d);
		sum += flb_http_chunked_scan(&d, w->buf, w->bytes);
	}
	return sum;
}

/* Warm up, time RUNS runs of w and print the median.
 * Returns the median in ns per operation. */
static double measure(const struct work *w)
{
	double t[RUNS];

	sink += w->fn(w);
	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();

		sink += w->fn(w);
		t[r] = (now_ns() - t0) / (double)w->iters;
	}
	double ns = median(t, RUNS);
	printf("%-20s %6zu B  %9.1f ns/%-4s  %6.2f GB/s\n", w->label, w->bytes, ns, w->unit,
	       (double)w->bytes / ns);
	return ns;
}

/* Build a chunked body of total data bytes in chunks of chunk bytes (the
 * last one shorter), with a final "0\r\n\r\n".  Returns a malloc'd buffer
 * and its length in *len. */
static char *make_chunked(size_t total, size_t chunk, size_t *len)
{
	size_t cap = total + (total / chunk + 2) * 32 + 16, n = 0;
	char *b = malloc(cap);

	if (!b)
		exit(1);
	for (size_t done = 0; done < total; done += chunk) {
		size_t c = total - done < chunk ? total - done : chunk;

		n += (size_t)sprintf(b + n, "%zx\r\n", c);
		for (size_t i = 0; i < c; i++)
			b[n + i] = (char)('a' + (done + i) % 26);
		n += c;
		memcpy(b + n, "\r\n", 2);
		n += 2;
	}
	memcpy(b + n, "0\r\n\r\n", 5);
	*len = n + 5;
	return b;
}

/* Check that the sample inputs parse, so the figures measure success. */
static void sanity(void)
{
	struct flb_http_header hdrs[64];
	struct flb_http_msg msg = { .headers = hdrs, .num_headers = 64 };

	if (flb_http_parse_request(browser_request, sizeof(browser_request) - 1, 0, 0, &msg) !=
	        (int)(sizeof(browser_request) - 1) || msg.num_headers != 9) {
		fprintf(stderr, "browser request does not parse\n");
		exit(1);
	}
	msg.num_headers = 64;
	if (flb_http_parse_request(chrome_request, sizeof(chrome_request) - 1, 0, 0, &msg) !=
	    (int)(sizeof(chrome_request) - 1)) {
		fprintf(stderr, "chrome request does not parse\n");
		exit(1);
	}
	msg.num_headers = 64;
	if (flb_http_parse_response(response_head, sizeof(response_head) - 1, 0, 0, &msg) !=
	    (int)(sizeof(response_head) - 1)) {
		fprintf(stderr, "response does not parse\n");
		exit(1);
	}
}

/* Run every benchmark.  Returns 0. */
int main(void)
{
	size_t big_len, small_len;
	char *big = make_chunked(64 * 1024, 4096, &big_len);
	char *small = make_chunked(4 * 1024, 64, &small_len);
	char *scratch = malloc(big_len > small_len ? big_len : small_len);
	struct work works[] = {
		{ "parse_request", "req", sizeof(browser_request) - 1, ITERS, run_request,
		  browser_request, NULL },
		{ "parse_request_big", "req", sizeof(chrome_request) - 1, ITERS, run_request,
		  chrome_request, NULL },
		{ "parse_response", "resp", sizeof(response_head) - 1, ITERS, run_response,
		  response_head, NULL },
		{ "chunked_decode_4k", "body", big_len, ITERS / 100, run_decode, big, scratch },
		{ "  (memcpy alone)", "body", big_len, ITERS / 100, run_copy, big, scratch },
		{ "chunked_scan_4k", "body", big_len, ITERS / 20, run_scan, big, NULL },
		{ "chunked_decode_64", "body", small_len, ITERS / 20, run_decode, small, scratch },
		{ "  (memcpy alone)", "body", small_len, ITERS / 20, run_copy, small, scratch },
		{ "chunked_scan_64", "body", small_len, ITERS / 20, run_scan, small, NULL },
	};

	if (!scratch)
		return 1;
	sanity();
	printf("http1: median of %d runs\n", RUNS);
	for (size_t i = 0; i < sizeof(works) / sizeof(works[0]); i++)
		measure(&works[i]);
	free(big);
	free(small);
	free(scratch);
	return 0;
}
