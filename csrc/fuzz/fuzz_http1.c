/* fuzz_http1.c: libFuzzer target for http1.c.  See README.md in this
 * directory for how to build and run it.
 *
 * Each input is given to the request parser, the response parser and the
 * chunked decoder.  Where it splits the input, and which limits it uses, are
 * derived from a hash of the input, so the seeds stay plain HTTP.  It aborts
 * when two ways of feeding the same bytes disagree:
 *   - head parsers: whole buffer vs a prefix vs resuming from the prefix with
 *     last_len vs byte by byte (small inputs), vs re-parsing exactly the
 *     head; plus checks of the parsed fields against the grammar;
 *   - chunked decoder: decode vs scan, whole vs two pieces vs byte by byte,
 *     same verdict, error, data and end of body;
 *   - SIMD vs scalar: every head parse is repeated with a copy of http1.c
 *     built with FLB_HTTP_NO_SIMD (included below) and must match exactly.
 * Every parse reads its own exactly sized heap copy, so ASan sees overreads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "http1.h"

/* A second copy of the parser, built with FLB_HTTP_NO_SIMD and renamed, so
 * that every parse can be compared with the portable scalar code. */
#define FLB_HTTP_NO_SIMD 1
#define flb_http_parse_request  scalar_http_parse_request
#define flb_http_parse_response scalar_http_parse_response
#define flb_http_strerror       scalar_http_strerror
#define flb_http_chunked_init   scalar_http_chunked_init
#define flb_http_chunked_decode scalar_http_chunked_decode
#define flb_http_chunked_scan   scalar_http_chunked_scan
#include "http1.c"
#undef flb_http_parse_request
#undef flb_http_parse_response
#undef flb_http_strerror
#undef flb_http_chunked_init
#undef flb_http_chunked_decode
#undef flb_http_chunked_scan
#undef FLB_HTTP_NO_SIMD

#define CAP 64

/* Abort with a message naming the broken property. */
#define REQUIRE(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_http1: %s:%d: property failed: %s\n", __FILE__, __LINE__, \
		        #cond); \
		abort(); \
	} \
} while (0)

/* ------------------------------------------------------------------------ */
/* Seeding a missing corpus directory (so that `fuzz_http1 corpus` works on a
 * fresh checkout, where corpus/ is git-ignored). */

/* Copy file src to dst.  Best effort: errors are ignored. */
static void copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb"), *out;
	char buf[4096];
	size_t n;

	if (!in)
		return;
	out = fopen(dst, "wb");
	if (out) {
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
		fclose(out);
	}
	fclose(in);
}

/* Create directory dir and copy the regular files of seeds into it.
 * Best effort: errors are ignored. */
static void seed_dir(const char *dir, const char *seeds)
{
	DIR *d;
	struct dirent *e;
	char src[4096], dst[4096];

	if (mkdir(dir, 0755) != 0)
		return;
	d = opendir(seeds);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(src, sizeof(src), "%s/%s", seeds, e->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", dir, e->d_name);
		if (stat(src, &st) == 0 && S_ISREG(st.st_mode))
			copy_file(src, dst);
	}
	closedir(d);
}

/* libFuzzer hook, run before it opens the corpus: every positional argument
 * that names no existing path is created as a directory and filled from the
 * seeds/ directory next to the binary.
 * argc, argv: the command line.  Returns 0. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char seeds[4096];
	const char *self = (*argv)[0], *slash = strrchr(self, '/');
	struct stat st;

	if (slash)
		snprintf(seeds, sizeof(seeds), "%.*s/seeds", (int)(slash - self), self);
	else
		snprintf(seeds, sizeof(seeds), "seeds");
	for (int i = 1; i < *argc; i++) {
		const char *a = (*argv)[i];

		if (a[0] != '-' && stat(a, &st) != 0)
			seed_dir(a, seeds);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Head parsers */

enum kind { REQ, RESP };

/* The result of one parse, slices as offsets into its buffer. */
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

/* Whether c is a tchar.  Returns 1 or 0. */
static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Check the fields of a successful parse of buf against the grammar. */
static void check_fields(const char *buf, const struct flb_http_msg *m, int rc, enum kind kind)
{
	const unsigned char *b = (const unsigned char *)buf;

	if (kind == REQ) {
		long mo = m->method - buf, to = m->target - buf;

		REQUIRE(mo >= 0 && m->method_len > 0 && mo + (long)m->method_len < rc);
		for (uint32_t i = 0; i < m->method_len; i++)
			REQUIRE(is_tchar(b[mo + i]));
		REQUIRE(to > mo && m->target_len > 0 && to + (long)m->target_len < rc);
		for (uint32_t i = 0; i < m->target_len; i++)
			REQUIRE(b[to + i] > 0x20 && b[to + i] < 0x7f);
		REQUIRE(m->minor_version == 1 ? m->host_index >= 0 : 1);
	} else {
		long ro = m->reason - buf;

		REQUIRE(m->status >= 100 && m->status <= 999);
		REQUIRE(ro >= 12 && ro + (long)m->reason_len < rc);
		for (uint32_t i = 0; i < m->reason_len; i++)
			REQUIRE(b[ro + i] == '\t' || b[ro + i] >= 0x20);
	}
	REQUIRE(m->minor_version == 0 || m->minor_version == 1);
	REQUIRE(m->num_headers <= CAP);
	for (size_t k = 0; k < m->num_headers; k++) {
		const struct flb_http_header *h = &m->headers[k];
		long no = h->name - buf, vo = h->value - buf;

		REQUIRE(no > 0 && h->name_len > 0 && no + (long)h->name_len < rc);
		for (uint32_t i = 0; i < h->name_len; i++)
			REQUIRE(is_tchar(b[no + i]));
		REQUIRE(b[no + h->name_len] == ':');
		REQUIRE(vo > no && vo + (long)h->value_len <= rc - 4);
		for (uint32_t i = 0; i < h->value_len; i++)
			REQUIRE(b[vo + i] == '\t' || (b[vo + i] >= 0x20 && b[vo + i] != 0x7f));
		if (h->value_len) {
			REQUIRE(b[vo] != ' ' && b[vo] != '\t');
			REQUIRE(b[vo + h->value_len - 1] != ' ' && b[vo + h->value_len - 1] != '\t');
		}
	}
	REQUIRE(m->host_index < (int)m->num_headers);
	if (m->host_index >= 0)
		REQUIRE(m->headers[m->host_index].name_len == 4);
	REQUIRE((m->content_length >= 0) == !!(m->flags & FLB_HTTP_F_HAS_CL));
	REQUIRE(!((m->flags & FLB_HTTP_F_HAS_CL) && (m->flags & FLB_HTTP_F_HAS_TE)));
	REQUIRE(!(m->flags & FLB_HTTP_F_CHUNKED) || (m->flags & FLB_HTTP_F_HAS_TE));
	if (kind == REQ && (m->flags & FLB_HTTP_F_HAS_TE))
		REQUIRE(m->flags & FLB_HTTP_F_CHUNKED);
	/* Keep-alive per version and Connection, never for HTTP/1.0 with
	 * Transfer-Encoding (RFC 9112 6.1). */
	REQUIRE(!!(m->flags & FLB_HTTP_F_KEEP_ALIVE) ==
	        (!(m->flags & FLB_HTTP_F_CONN_CLOSE) &&
	         (m->minor_version == 1 || (m->flags & FLB_HTTP_F_CONN_KEEPALIVE)) &&
	         !(m->minor_version == 0 && (m->flags & FLB_HTTP_F_HAS_TE))));
	REQUIRE(b[rc - 2] == '\r' && b[rc - 1] == '\n');
}

/* Parse data[0..len) from an exactly sized heap copy into *o.
 * last_len, max_head, cap: passed on (cap <= CAP). */
static void parse(enum kind kind, const uint8_t *data, size_t len, size_t last_len,
                  size_t max_head, size_t cap, struct outcome *o)
{
	struct flb_http_header hdrs[CAP];
	struct flb_http_msg m;
	char *buf = malloc(len ? len : 1);

	memcpy(buf, data, len);
	memset(o, 0, sizeof(*o));
	memset(&m, 0, sizeof(m));
	m.headers = hdrs;
	m.num_headers = cap;
	o->rc = kind == REQ ? flb_http_parse_request(buf, len, last_len, max_head, &m)
	                    : flb_http_parse_response(buf, len, last_len, max_head, &m);
	{
		/* The scalar copy must say exactly the same. */
		struct flb_http_header sh[CAP];
		struct flb_http_msg sm;
		int src;

		memset(&sm, 0, sizeof(sm));
		sm.headers = sh;
		sm.num_headers = cap;
		src = kind == REQ ? scalar_http_parse_request(buf, len, last_len, max_head, &sm)
		                  : scalar_http_parse_response(buf, len, last_len, max_head, &sm);
		REQUIRE(src == o->rc);
		REQUIRE(sm.err == m.err && sm.err_offset == m.err_offset);
		if (src > 0) {
			REQUIRE(sm.method == m.method && sm.method_len == m.method_len);
			REQUIRE(sm.target == m.target && sm.target_len == m.target_len);
			REQUIRE(sm.reason == m.reason && sm.reason_len == m.reason_len);
			REQUIRE(sm.status == m.status && sm.minor_version == m.minor_version);
			REQUIRE(sm.num_headers == m.num_headers);
			REQUIRE(sm.content_length == m.content_length && sm.flags == m.flags);
			REQUIRE(sm.host_index == m.host_index);
			REQUIRE(memcmp(sh, hdrs, m.num_headers * sizeof(sh[0])) == 0);
		}
	}
	if (o->rc == FLB_HTTP_INVALID) {
		REQUIRE(m.err > 0 && m.err < FLB_HTTP_E__COUNT);
		REQUIRE(m.err_offset <= len);
		REQUIRE(m.num_headers == cap);
		o->err = m.err;
		o->off = m.err_offset;
	} else if (o->rc == FLB_HTTP_INCOMPLETE) {
		REQUIRE(m.num_headers == cap);
	} else {
		REQUIRE(o->rc >= 4 && (size_t)o->rc <= len);
		REQUIRE(max_head == 0 || (size_t)o->rc <= max_head);
		check_fields(buf, &m, o->rc, kind);
		o->method = m.method ? m.method - buf : -1;
		o->target = m.target ? m.target - buf : -1;
		o->reason = m.reason ? m.reason - buf : -1;
		o->method_len = m.method_len;
		o->target_len = m.target_len;
		o->reason_len = m.reason_len;
		o->status = m.status;
		o->minor = m.minor_version;
		o->nh = m.num_headers;
		for (size_t i = 0; i < m.num_headers; i++) {
			o->hn[i] = hdrs[i].name - buf;
			o->hv[i] = hdrs[i].value - buf;
			o->hn_len[i] = hdrs[i].name_len;
			o->hv_len[i] = hdrs[i].value_len;
		}
		o->cl = m.content_length;
		o->flags = m.flags;
		o->host_index = m.host_index;
	}
	free(buf);
}

/* Whether two outcomes are the same.  Returns 1 or 0. */
static int same(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc)
		return 0;
	if (a->rc == FLB_HTTP_INVALID)
		return a->err == b->err && a->off == b->off;
	if (a->rc == FLB_HTTP_INCOMPLETE)
		return 1;
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* A parse of a prefix (or a resumed parse) must not contradict the whole:
 * p is the outcome on the first plen bytes; deferred: whether an error may
 * show up later than in a parse from scratch (a resumed parse). */
static void consistent(const struct outcome *whole, const struct outcome *p, size_t plen,
                       int deferred)
{
	if (whole->rc > 0) {
		if (plen < (size_t)whole->rc)
			REQUIRE(p->rc == FLB_HTTP_INCOMPLETE);
		else
			REQUIRE(same(p, whole));
	} else if (whole->rc == FLB_HTTP_INVALID) {
		REQUIRE(p->rc == FLB_HTTP_INCOMPLETE || same(p, whole));
	} else {
		REQUIRE(p->rc == FLB_HTTP_INCOMPLETE);
	}
	(void)deferred;
}

/* Run every head-parser property over data for one kind. */
static void fuzz_head(enum kind kind, const uint8_t *data, size_t n, uint64_t h)
{
	struct outcome whole, o, r;
	size_t split = n ? (size_t)(h % (n + 1)) : 0;
	size_t max_head = 0, cap = CAP;

	if ((h >> 20) % 4 == 0)
		max_head = 1 + (size_t)((h >> 24) % (n + 8));
	switch ((h >> 32) % 8) {
	case 0: cap = 0; break;
	case 1: cap = 1; break;
	case 2: cap = 3; break;
	}
	parse(kind, data, n, 0, max_head, cap, &whole);
	/* A prefix from scratch. */
	parse(kind, data, split, 0, max_head, cap, &o);
	consistent(&whole, &o, split, 0);
	/* Resumed from the prefix: may defer an error, never invent one. */
	if (o.rc == FLB_HTTP_INCOMPLETE && split > 0) {
		parse(kind, data, n, split, max_head, cap, &r);
		consistent(&whole, &r, n, 1);
		if (whole.rc > 0)
			REQUIRE(same(&r, &whole));
		else if (whole.rc == FLB_HTTP_INVALID && r.rc == FLB_HTTP_INCOMPLETE)
			/* Deferred only while nothing decisive arrived: no LF after split. */
			REQUIRE(memchr(data + split, '\n', n - split) == NULL);
	}
	/* Exactly the head. */
	if (whole.rc > 0) {
		parse(kind, data, (size_t)whole.rc, 0, max_head, cap, &o);
		REQUIRE(same(&o, &whole));
	}
	/* Byte by byte, resuming each time, for small inputs. */
	if (n <= 200) {
		size_t last = 0;

		for (size_t i = 1; i <= n; i++) {
			parse(kind, data, i, last, max_head, cap, &o);
			consistent(&whole, &o, i, 1);
			if (o.rc != FLB_HTTP_INCOMPLETE)
				break;
			last = i;
		}
		if (whole.rc > 0)
			REQUIRE(o.rc > 0);
	}
}

/* ------------------------------------------------------------------------ */
/* Chunked decoder */

/* What feeding a body gave. */
struct cres {
	int state;      /* 0 done, 1 incomplete, 2 error */
	int err;
	size_t end;     /* done: where the body ended in the input */
	size_t out_len;
	uint8_t *out;   /* decoded data (decode only), at most the input size */
};

/* Feed data[0..n) in pieces cut at cuts[0..ncuts) to a fresh decoder with
 * the given bounds (0: default), decoding or scanning.  r->out must hold n
 * bytes. */
static void feed(const uint8_t *data, size_t n, const size_t *cuts, size_t ncuts, int scan,
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
		size_t stop = k < ncuts ? cuts[k] : n, len = stop - start;
		char *buf = malloc(len ? len : 1);
		long rc;

		memcpy(buf, data + start, len);
		if (scan) {
			rc = flb_http_chunked_scan(&d, buf, len);
			if (rc >= 0) {
				REQUIRE((size_t)rc <= len);
				REQUIRE(d.done || (size_t)rc == len);
				if (d.done) {
					r->state = 0;
					r->end = start + (size_t)rc;
				}
			}
		} else {
			size_t m = len;

			rc = flb_http_chunked_decode(&d, buf, &m);
			REQUIRE(m <= len);
			REQUIRE(r->out_len + m <= n);
			memcpy(r->out + r->out_len, buf, m);
			r->out_len += m;
			if (rc >= 0) {
				REQUIRE(d.done);
				REQUIRE(m + (size_t)rc <= len);
				REQUIRE(memcmp(buf + m, data + stop - (size_t)rc, (size_t)rc) == 0);
				r->state = 0;
				r->end = stop - (size_t)rc;
			} else {
				REQUIRE(!d.done);
			}
		}
		free(buf);
		if (rc == FLB_HTTP_INVALID) {
			REQUIRE(d.err > 0 && d.err < FLB_HTTP_E__COUNT);
			REQUIRE(flb_http_chunked_scan(&d, "0\r\n\r\n", 5) == FLB_HTTP_INVALID);
			r->state = 2;
			r->err = d.err;
			return;
		}
		if (r->state == 0)
			return;
		start = stop;
	}
}

/* Whether two feeds agree (data too when both decoded).  Returns 1 or 0. */
static int cres_same(const struct cres *a, const struct cres *b, int data_too)
{
	if (a->state != b->state)
		return 0;
	if (a->state == 2)
		return a->err == b->err;
	if (a->state == 0 && a->end != b->end)
		return 0;
	return !data_too ||
	       (a->out_len == b->out_len && memcmp(a->out, b->out, a->out_len) == 0);
}

/* Run every chunked-decoder property over data. */
static void fuzz_chunked(const uint8_t *data, size_t n, uint64_t h)
{
	struct cres a, b;
	size_t cut = n ? (size_t)((h >> 8) % (n + 1)) : 0;
	uint32_t max_line = 0, max_trailer = 0;

	if ((h >> 40) % 4 == 0)
		max_line = 1 + (uint32_t)((h >> 44) % 40);
	if ((h >> 50) % 4 == 0)
		max_trailer = (uint32_t)((h >> 52) % 100);
	a.out = malloc(n + 1);
	b.out = malloc(n + 1);
	feed(data, n, NULL, 0, 0, max_line, max_trailer, &a);
	if (a.state == 0)
		REQUIRE(a.out_len < a.end);
	feed(data, n, NULL, 0, 1, max_line, max_trailer, &b);
	REQUIRE(cres_same(&a, &b, 0));
	for (int scan = 0; scan < 2; scan++) {
		feed(data, n, &cut, 1, scan, max_line, max_trailer, &b);
		REQUIRE(cres_same(&a, &b, !scan));
	}
	if (n <= 4096) {
		size_t *cuts = malloc((n + 1) * sizeof(*cuts));

		for (size_t i = 0; i + 1 < n; i++)
			cuts[i] = i + 1;
		for (int scan = 0; scan < 2; scan++) {
			feed(data, n, cuts, n > 1 ? n - 1 : 0, scan, max_line, max_trailer, &b);
			REQUIRE(cres_same(&a, &b, !scan));
		}
		free(cuts);
	}
	free(a.out);
	free(b.out);
}

/* libFuzzer entry point.  data, size: one input.  Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	fuzz_head(REQ, data, size, h);
	fuzz_head(RESP, data, size, h * 0x9e3779b97f4a7c15ull);
	fuzz_chunked(data, size, h);
	return 0;
}
