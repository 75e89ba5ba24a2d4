/* test_alog.c: unit tests of the access log (csrc/alog.c): both line
 * formats, escaping and bounds, the rings (drops when full, whole lines
 * only), concurrent producers, reopen for log rotation, standard output,
 * write errors.  Files live in a mkdtemp directory under /tmp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "check.h"
#include "compiler.h"

static char tmpdir[64];

#define S(lit) ((struct flb_alog_str){ (lit), sizeof(lit) - 1 })

/* The sample record of the format tests (10/Oct/2000:13:55:36.123456 UTC). */
static struct flb_alog_rec sample(void)
{
	struct flb_alog_rec r = {
		.client = S("192.0.2.1"),
		.method = S("GET"),
		.target = S("/x?a=1"),
		.referer = S("http://ref/"),
		.user_agent = S("curl/8.0"),
		.request_id = S("abc123"),
		.listener = S("web"),
		.backend = S("api"),
		.upstream = S("10.0.0.1:8080"),
		.http_minor = 1,
		.status = 200,
		.bytes_in = 321,
		.bytes_out = 2326,
		.start_us = 971186136123456LL,
		.total_us = 12345,
		.connect_us = 1000,
		.upstream_us = 10500,
	};
	return r;
}

static const char sample_combined[] =
	"192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /x?a=1 HTTP/1.1\" 200 2326 "
	"\"http://ref/\" \"curl/8.0\" rid=abc123 listener=web backend=api "
	"upstream=10.0.0.1:8080 bytes_in=321 rt=0.012 uct=0.001 urt=0.010\n";

static const char sample_json[] =
	"{\"time\":\"2000-10-10T13:55:36.123Z\",\"client\":\"192.0.2.1\",\"method\":\"GET\","
	"\"target\":\"/x?a=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":321,"
	"\"bytes_out\":2326,\"referer\":\"http://ref/\",\"user_agent\":\"curl/8.0\","
	"\"request_id\":\"abc123\",\"listener\":\"web\",\"backend\":\"api\","
	"\"upstream\":\"10.0.0.1:8080\",\"duration_ms\":12.345,\"connect_ms\":1.000,"
	"\"upstream_ms\":10.500}\n";

/* Format r in format f into a fresh buffer of exactly FLB_ALOG_LINE_MAX
 * bytes (so ASan sees any overflow); returns it NUL-terminated (free it). */
static char *fmt(int f, const struct flb_alog_rec *r)
{
	char *buf = malloc(FLB_ALOG_LINE_MAX);
	char *s;
	size_t n;

	n = flb_alog_format_line(f, r, buf, FLB_ALOG_LINE_MAX);
	CHECK(n > 0 && n <= FLB_ALOG_LINE_MAX);
	CHECK(n > 0 && buf[n - 1] == '\n');
	CHECK(memchr(buf, '\n', n) == buf + n - 1);
	s = malloc(n + 1);
	memcpy(s, buf, n);
	s[n] = '\0';
	free(buf);
	return s;
}

/* CHECK that r formats as want in format f. */
#define CHECK_LINE(f, r, want) do { \
	char *line_ = fmt((f), (r)); \
	CHECK_MEM(line_, strlen(line_), (want)); \
	free(line_); \
} while (0)

/* Read a whole file; returns a NUL-terminated buffer (free it) and its
 * length in *len, or NULL if it cannot be opened. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, n = 0;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	for (;;) {
		ssize_t k;

		if (n + 1 >= cap)
			buf = realloc(buf, cap *= 2);
		k = read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Path of a file in the temp directory (static buffer per slot). */
static const char *tpath(int slot, const char *name)
{
	static char bufs[4][128];

	snprintf(bufs[slot], sizeof(bufs[slot]), "%s/%s", tmpdir, name);
	return bufs[slot];
}

/* Sleep ms milliseconds. */
static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Count the '\n' in buf[0..n). */
static size_t count_lines(const char *buf, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += buf[i] == '\n';
	return c;
}

static void test_formats(void)
{
	struct flb_alog_rec r = sample();

	CHECK_LINE(FLB_ALOG_COMBINED, &r, sample_combined);
	CHECK_LINE(FLB_ALOG_JSON, &r, sample_json);

	/* our own error: no upstream, HTTP/1.0, empty strings, no timings */
	r = (struct flb_alog_rec){
		.client = S("2001:db8::1"),
		.method = S("POST"),
		.target = S("/"),
		.listener = S("web"),
		.http_minor = 0,
		.status = 503,
		.bytes_in = 0,
		.bytes_out = 97,
		.start_us = 0,
		.total_us = 999,
		.connect_us = -1,
		.upstream_us = -1,
	};
	CHECK_LINE(FLB_ALOG_COMBINED, &r,
	           "2001:db8::1 - - [01/Jan/1970:00:00:00 +0000] \"POST / HTTP/1.0\" 503 97 \"-\" \"-\" "
	           "rid=- listener=web backend=- upstream=- bytes_in=0 rt=0.000 uct=- urt=-\n");
	CHECK_LINE(FLB_ALOG_JSON, &r,
	           "{\"time\":\"1970-01-01T00:00:00.000Z\",\"client\":\"2001:db8::1\",\"method\":\"POST\","
	           "\"target\":\"/\",\"protocol\":\"HTTP/1.0\",\"status\":503,\"bytes_in\":0,"
	           "\"bytes_out\":97,\"referer\":\"\",\"user_agent\":\"\",\"request_id\":\"\","
	           "\"listener\":\"web\",\"backend\":\"\",\"upstream\":\"\",\"duration_ms\":0.999,"
	           "\"connect_ms\":null,\"upstream_ms\":null}\n");

	/* no usable request line; a reused pooled connection (connect 0);
	 * leap day, large numbers, negative start clamped to the epoch */
	r = sample();
	r.method = (struct flb_alog_str){ NULL, 0 };
	r.target = (struct flb_alog_str){ NULL, 0 };
	r.status = 400;
	r.connect_us = 0;
	r.total_us = 61001999;
	r.bytes_out = UINT64_MAX;
	r.start_us = 951782400000000LL + 86399999999LL; /* 2000-02-29T23:59:59.999999 */
	CHECK_LINE(FLB_ALOG_COMBINED, &r,
	           "192.0.2.1 - - [29/Feb/2000:23:59:59 +0000] \"-\" 400 18446744073709551615 "
	           "\"http://ref/\" \"curl/8.0\" rid=abc123 listener=web backend=api "
	           "upstream=10.0.0.1:8080 bytes_in=321 rt=61.001 uct=0.000 urt=0.010\n");
	r.start_us = -5;
	{
		char *line = fmt(FLB_ALOG_JSON, &r);

		CHECK(strncmp(line, "{\"time\":\"1970-01-01T00:00:00.000Z\",", 35) == 0);
		CHECK(strstr(line, "\"duration_ms\":61001.999,\"connect_ms\":0.000,") != NULL);
		free(line);
	}
	r.start_us = INT64_MAX;
	{
		char *line = fmt(FLB_ALOG_COMBINED, &r);

		CHECK(strstr(line, "[31/Dec/9999:23:59:59 +0000]") != NULL);
		free(line);
	}
}

static void test_escaping(void)
{
	struct flb_alog_rec r = sample();

	r.user_agent = S("a\"b\\c\x01\x7f\xc3\xa9 d\t");
	r.referer = S("\xf0\x9f\x98\x80|\xff\xc3(|\xc0\xaf|\xed\xa0\x80|\xe2\x82");
	r.target = S("/a b");
	r.request_id = S("id 1\n");
	CHECK_LINE(FLB_ALOG_COMBINED, &r,
	           "192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\x20b HTTP/1.1\" 200 2326 "
	           "\"\\xF0\\x9F\\x98\\x80|\\xFF\\xC3(|\\xC0\\xAF|\\xED\\xA0\\x80|\\xE2\\x82\" "
	           "\"a\\x22b\\x5Cc\\x01\\x7F\\xC3\\xA9 d\\x09\" rid=id\\x201\\x0A listener=web "
	           "backend=api upstream=10.0.0.1:8080 bytes_in=321 rt=0.012 uct=0.001 urt=0.010\n");
	CHECK_LINE(FLB_ALOG_JSON, &r,
	           "{\"time\":\"2000-10-10T13:55:36.123Z\",\"client\":\"192.0.2.1\",\"method\":\"GET\","
	           "\"target\":\"/a b\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":321,"
	           "\"bytes_out\":2326,"
	           "\"referer\":\"\xf0\x9f\x98\x80|\\u00ff\\u00c3(|\\u00c0\\u00af|\\u00ed\\u00a0\\u0080|\\u00e2\\u0082\","
	           "\"user_agent\":\"a\\\"b\\\\c\\u0001\\u007f\xc3\xa9 d\\u0009\","
	           "\"request_id\":\"id 1\\u000a\",\"listener\":\"web\",\"backend\":\"api\","
	           "\"upstream\":\"10.0.0.1:8080\",\"duration_ms\":12.345,\"connect_ms\":1.000,"
	           "\"upstream_ms\":10.500}\n");

	/* a NUL byte inside a field, and three-byte characters */
	r = sample();
	r.user_agent = (struct flb_alog_str){ "x\0y\xe2\x82\xac", 6 };
	{
		char *c = fmt(FLB_ALOG_COMBINED, &r), *j = fmt(FLB_ALOG_JSON, &r);

		CHECK(strstr(c, "\"x\\x00y\\xE2\\x82\\xAC\"") != NULL);
		CHECK(strstr(j, "\"user_agent\":\"x\\u0000y\xe2\x82\xac\"") != NULL);
		free(c);
		free(j);
	}
}

/* Length of the JSON string value of key in line (escapes counted as
 * written), or -1. */
static long json_field_len(const char *line, const char *key)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (p == NULL)
		return -1;
	p += strlen(pat);
	for (q = p; *q && *q != '"'; q++)
		if (*q == '\\')
			q++;
	return *q == '"' ? q - p : -1;
}

static void test_bounds(void)
{
	static char big[5000], ctl[5000];
	struct flb_alog_rec r = sample();
	struct flb_alog_str *fields[] = {
		&r.client, &r.method, &r.target, &r.referer, &r.user_agent,
		&r.request_id, &r.listener, &r.backend, &r.upstream,
	};
	static const long maxes[] = {
		FLB_ALOG_MAX_CLIENT, FLB_ALOG_MAX_METHOD, FLB_ALOG_MAX_TARGET,
		FLB_ALOG_MAX_REFERER, FLB_ALOG_MAX_USER_AGENT, FLB_ALOG_MAX_REQUEST_ID,
		FLB_ALOG_MAX_LISTENER, FLB_ALOG_MAX_BACKEND, FLB_ALOG_MAX_UPSTREAM,
	};
	static const char *keys[] = {
		"client", "method", "target", "referer", "user_agent",
		"request_id", "listener", "backend", "upstream",
	};
	char *line;
	char small[16];

	memset(big, 'a', sizeof(big));
	memset(ctl, 0x01, sizeof(ctl));

	/* every field over its bound: cut to exactly the bound */
	for (unsigned i = 0; i < FLB_ARRAY_SIZE(fields); i++)
		*fields[i] = (struct flb_alog_str){ big, sizeof(big) };
	line = fmt(FLB_ALOG_JSON, &r);
	for (unsigned i = 0; i < FLB_ARRAY_SIZE(fields); i++)
		CHECK_EQ(json_field_len(line, keys[i]), maxes[i]);
	free(line);

	/* the worst case (every byte escaped to 6) fits FLB_ALOG_LINE_MAX,
	 * which fmt() allocates exactly */
	for (unsigned i = 0; i < FLB_ARRAY_SIZE(fields); i++)
		*fields[i] = (struct flb_alog_str){ ctl, sizeof(ctl) };
	r.bytes_in = r.bytes_out = UINT64_MAX;
	r.status = INT32_MIN;
	r.http_minor = INT32_MIN;
	r.total_us = r.connect_us = r.upstream_us = INT64_MAX;
	line = fmt(FLB_ALOG_JSON, &r);
	CHECK(strlen(line) > 6 * (size_t)FLB_ALOG_MAX_STRS);
	CHECK_EQ(json_field_len(line, "target"), 6 * FLB_ALOG_MAX_TARGET);
	free(line);
	line = fmt(FLB_ALOG_COMBINED, &r);
	CHECK(strlen(line) > 4 * (size_t)FLB_ALOG_MAX_STRS);
	free(line);

	/* a cut never splits a UTF-8 character */
	r = sample();
	memset(big, 'x', FLB_ALOG_MAX_USER_AGENT - 1);
	memcpy(big + FLB_ALOG_MAX_USER_AGENT - 1, "\xc3\xa9zz", 4);
	r.user_agent = (struct flb_alog_str){ big, FLB_ALOG_MAX_USER_AGENT + 3 };
	line = fmt(FLB_ALOG_JSON, &r);
	CHECK_EQ(json_field_len(line, "user_agent"), FLB_ALOG_MAX_USER_AGENT - 1);
	free(line);
	memcpy(big + FLB_ALOG_MAX_USER_AGENT - 3, "\xf0\x9f\x98\x80z", 5);
	r.user_agent = (struct flb_alog_str){ big, FLB_ALOG_MAX_USER_AGENT + 2 };
	line = fmt(FLB_ALOG_JSON, &r);
	CHECK_EQ(json_field_len(line, "user_agent"), FLB_ALOG_MAX_USER_AGENT - 3);
	free(line);
	/* exactly at the bound: kept whole */
	memset(big, 'x', FLB_ALOG_MAX_USER_AGENT);
	memcpy(big + FLB_ALOG_MAX_USER_AGENT - 2, "\xc3\xa9", 2);
	r.user_agent = (struct flb_alog_str){ big, FLB_ALOG_MAX_USER_AGENT };
	line = fmt(FLB_ALOG_JSON, &r);
	CHECK_EQ(json_field_len(line, "user_agent"), FLB_ALOG_MAX_USER_AGENT);
	free(line);

	/* too small a buffer */
	CHECK_EQ(flb_alog_format_line(FLB_ALOG_JSON, &r, small, sizeof(small)), 0);
}

static void test_names_and_errors(void)
{
	char err[256] = "";
	struct flb_alog *l;

	CHECK_EQ(flb_alog_format_from_name("combined"), FLB_ALOG_COMBINED);
	CHECK_EQ(flb_alog_format_from_name("json"), FLB_ALOG_JSON);
	CHECK_EQ(flb_alog_format_from_name("JSON"), -1);
	CHECK_EQ(flb_alog_format_from_name(""), -1);
	CHECK_EQ(flb_alog_format_from_name(NULL), -1);

	l = flb_alog_open(tpath(0, "no/such/dir.log"), FLB_ALOG_JSON, 1, 0, err, sizeof(err));
	CHECK(l == NULL);
	CHECK(strstr(err, "No such file or directory") != NULL);
	CHECK(strstr(err, "no/such/dir.log") != NULL);
	err[0] = '\0';
	CHECK(flb_alog_open(tpath(0, "x.log"), 7, 1, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "format") != NULL);
	CHECK(flb_alog_open(tpath(0, "x.log"), FLB_ALOG_JSON, 0, 0, err, sizeof(err)) == NULL);
	CHECK(flb_alog_open("", FLB_ALOG_JSON, 1, 0, NULL, 0) == NULL);

	/* logging off: a NULL sink is a no-op everywhere it is taken */
	struct flb_alog_rec r = sample();
	flb_alog_push(NULL, 0, &r);
	CHECK(flb_alog_ref(NULL) == NULL);
	flb_alog_release(NULL);
}

static void test_ring_sizes(void)
{
	static const uint32_t in[] = { 0, 1, 16384, 16385, 100000, 0xffffffffu };
	static const uint32_t out[] = { 262144, 16384, 16384, 32768, 131072, 64u << 20 };
	char err[256];

	for (unsigned i = 0; i < FLB_ARRAY_SIZE(in); i++) {
		struct flb_alog *l = flb_alog_open(tpath(0, "sizes.log"), FLB_ALOG_COMBINED, 1,
		                                   in[i], err, sizeof(err));

		CHECK(l != NULL);
		if (l) {
			CHECK_EQ(l->ring_size, out[i]);
			CHECK(strcmp(flb_alog_path(l), tpath(1, "sizes.log")) == 0);
			CHECK_EQ(flb_alog_format(l), FLB_ALOG_COMBINED);
			flb_alog_release(l);
		}
	}
	CHECK_EQ(flb_alog_wait_closed(10000), 0);
	unlink(tpath(0, "sizes.log"));
}

/* A file sink: records reach the file exactly as formatted, the file is
 * created 0640 (less the umask), shared references keep it open. */
static void test_file(void)
{
	const char *path = tpath(0, "file.log");
	struct flb_alog_rec r = sample();
	char err[256], want[3 * 2048];
	struct flb_alog_stats st;
	struct stat sb;
	struct flb_alog *l;
	size_t n = 0, len;
	char *got;
	mode_t um = umask(0);

	umask(um);
	l = flb_alog_open(path, FLB_ALOG_JSON, 2, 0, err, sizeof(err));
	CHECK(l != NULL);
	if (l == NULL)
		return;
	CHECK_EQ(stat(path, &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0640 & ~um);
	for (int i = 0; i < 3; i++) {
		char *line;

		r.status = 200 + i;
		flb_alog_push(l, (uint32_t)i % 2, &r);
		line = fmt(FLB_ALOG_JSON, &r);
		memcpy(want + n, line, strlen(line));
		n += strlen(line);
		free(line);
	}
	flb_alog_push(l, 2, &r); /* no such worker: ignored */
	flb_alog_get_stats(l, &st);
	CHECK_EQ(st.records, 3);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(flb_alog_dropped(l), 0);
	CHECK(flb_alog_ref(l) == l);
	flb_alog_release(l);          /* not the last: still logging */
	r.status = 299;
	flb_alog_push(l, 0, &r);
	{
		char *line = fmt(FLB_ALOG_JSON, &r);

		memcpy(want + n, line, strlen(line));
		n += strlen(line);
		free(line);
	}
	flb_alog_release(l);
	CHECK_EQ(flb_alog_wait_closed(10000), 0);
	got = slurp(path, &len);
	CHECK(got != NULL);
	if (got) {
		/* worker 0's lines come in order, worker 1's line anywhere */
		CHECK_EQ(len, n);
		CHECK_EQ(count_lines(got, len), 4);
		CHECK(strstr(got, "\"status\":201,") != NULL);
		CHECK(strstr(got, "\"status\":200,") < strstr(got, "\"status\":202,"));
		CHECK(strstr(got, "\"status\":202,") < strstr(got, "\"status\":299,"));
		free(got);
	}
	unlink(path);
}

/* Reader thread of a FIFO: reads until EOF. */
struct fifo_reader {
	int fd;
	char *buf;
	size_t len, cap;
};

static void *fifo_read_main(void *arg)
{
	struct fifo_reader *fr = arg;

	for (;;) {
		ssize_t k;

		if (fr->cap - fr->len < 65536)
			fr->buf = realloc(fr->buf, fr->cap = fr->cap * 2 + 65536);
		k = read(fr->fd, fr->buf + fr->len, fr->cap - fr->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		fr->len += (size_t)k;
	}
	return NULL;
}

/* Overflow: the output is a FIFO nobody reads, so the writer blocks in
 * write(2); pushes must neither block nor lose the ring's consistency:
 * they drop and count, and every line that does come out is whole. */
static void test_overflow(void)
{
	const char *path = tpath(0, "fifo");
	struct fifo_reader fr = { .fd = -1 };
	struct flb_alog_rec r = sample();
	struct flb_alog_stats st;
	struct flb_alog *l;
	char err[256], rid[32], ua[300];
	pthread_t thr;
	const int n = 20000;

	CHECK_EQ(mkfifo(path, 0600), 0);
	fr.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(fr.fd >= 0);
	l = flb_alog_open(path, FLB_ALOG_COMBINED, 1, 1, err, sizeof(err));
	CHECK(l != NULL);
	if (l == NULL || fr.fd < 0)
		return;
	CHECK_EQ(l->ring_size, FLB_ALOG_RING_MIN);
	memset(ua, 'u', sizeof(ua));
	for (int i = 0; i < n; i++) {
		r.request_id.len = (size_t)snprintf(rid, sizeof(rid), "r%d", i);
		r.request_id.ptr = rid;
		r.user_agent = (struct flb_alog_str){ ua, (size_t)(i * 7) % sizeof(ua) };
		flb_alog_push(l, 0, &r);
	}
	flb_alog_get_stats(l, &st);
	CHECK_EQ(st.records + st.dropped, (uint64_t)n);
	CHECK(st.dropped > (uint64_t)n / 2);
	CHECK_EQ(flb_alog_dropped(l), st.dropped);

	/* now read everything; the last release flushes the rest and closes */
	fcntl(fr.fd, F_SETFL, 0);
	CHECK_EQ(pthread_create(&thr, NULL, fifo_read_main, &fr), 0);
	flb_alog_release(l);
	pthread_join(thr, NULL);
	CHECK_EQ(flb_alog_wait_closed(10000), 0);
	close(fr.fd);
	CHECK_EQ(count_lines(fr.buf, fr.len), st.records);
	CHECK(fr.len > 0 && fr.buf[fr.len - 1] == '\n');
	{
		/* every line whole, request ids strictly increasing */
		const char *p = fr.buf, *end = fr.buf + fr.len;
		const char *head = "192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /x?a=1 HTTP/1.1\" 200 2326 ";
		const char *tail = " bytes_in=321 rt=0.012 uct=0.001 urt=0.010";
		long prev = -1, bad = 0;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *q;
			long id;

			if (nl == NULL) {
				bad++;
				break;
			}
			q = strstr(p, " rid=r");
			if (strncmp(p, head, strlen(head)) != 0 || q == NULL || q > nl ||
			    (size_t)(nl - p) < strlen(head) + strlen(tail) ||
			    memcmp(nl - strlen(tail), tail, strlen(tail)) != 0)
				bad++;
			id = q ? strtol(q + 6, NULL, 10) : -1;
			if (id <= prev)
				bad++;
			prev = id;
			p = nl + 1;
		}
		CHECK_EQ(bad, 0);
	}
	free(fr.buf);
	unlink(path);
}

/* Producers of the threaded test. */
struct producer {
	struct flb_alog *l;
	uint32_t worker;
	int n;
};

static void *producer_main(void *arg)
{
	struct producer *pr = arg;
	struct flb_alog_rec r = sample();
	char rid[32], target[400];

	memset(target, '/', sizeof(target));
	for (int i = 0; i < pr->n; i++) {
		r.request_id.len = (size_t)snprintf(rid, sizeof(rid), "t%u-%d", pr->worker, i);
		r.request_id.ptr = rid;
		r.target = (struct flb_alog_str){ target, 1 + (size_t)(i * 13) % sizeof(target) };
		r.bytes_in = (uint64_t)i;
		flb_alog_push(pr->l, pr->worker, &r);
	}
	return NULL;
}

/* 4 threads x 10,000 records: the file holds exactly the records not
 * dropped, each line a whole JSON object, each thread's in order. */
static void test_threads(void)
{
	enum { NT = 4, NR = 10000 };
	const char *path = tpath(0, "threads.log");
	struct producer pr[NT];
	pthread_t thr[NT];
	struct flb_alog_stats st;
	struct flb_alog *l;
	char err[256];
	long next[NT] = { 0 }, seen[NT] = { 0 }, bad = 0;
	size_t len;
	char *got;

	l = flb_alog_open(path, FLB_ALOG_JSON, NT, 64 * 1024, err, sizeof(err));
	CHECK(l != NULL);
	if (l == NULL)
		return;
	for (int t = 0; t < NT; t++) {
		pr[t] = (struct producer){ l, (uint32_t)t, NR };
		CHECK_EQ(pthread_create(&thr[t], NULL, producer_main, &pr[t]), 0);
	}
	for (int t = 0; t < NT; t++)
		pthread_join(thr[t], NULL);
	flb_alog_get_stats(l, &st);
	CHECK_EQ(st.records + st.dropped, NT * NR);
	flb_alog_release(l);
	CHECK_EQ(flb_alog_wait_closed(10000), 0);
	got = slurp(path, &len);
	CHECK(got != NULL);
	if (got == NULL)
		return;
	CHECK_EQ(count_lines(got, len), st.records);
	for (char *p = got, *nl; p < got + len; p = nl + 1) {
		const char *q;
		unsigned t;
		long i;
		int used = 0;

		nl = memchr(p, '\n', (size_t)(got + len - p));
		if (nl == NULL) {
			bad++;
			break;
		}
		*nl = '\0';
		if (strncmp(p, "{\"time\":\"2000-10-10T13:55:36.123Z\",", 35) != 0 ||
		    nl - p < 2 || nl[-1] != '}' || json_field_len(p, "target") < 1 ||
		    strstr(p, ",\"upstream_ms\":10.500}") != nl - strlen(",\"upstream_ms\":10.500}")) {
			bad++;
			continue;
		}
		q = strstr(p, "\"request_id\":\"t");
		if (q == NULL || sscanf(q + 15, "%u-%ld\"%n", &t, &i, &used) != 2 || used == 0 || t >= NT) {
			bad++;
			continue;
		}
		/* each thread's records in push order, none twice */
		if (i < next[t])
			bad++;
		next[t] = i + 1;
		seen[t]++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(seen[0] + seen[1] + seen[2] + seen[3], (long)st.records);
	free(got);
	unlink(path);
}

/* Wait up to 5 s for the sink's stats to satisfy a condition on field f. */
#define WAIT_STAT(l, st, cond) do { \
	for (int w_ = 0; w_ < 5000; w_++) { \
		flb_alog_get_stats((l), &(st)); \
		if (cond) \
			break; \
		sleep_ms(1); \
	} \
} while (0)

/* Log rotation: rename the file, reopen, the next lines go to a new file. */
static void test_reopen(void)
{
	char a[128], b[160], err[256];
	struct flb_alog_rec r = sample();
	struct flb_alog_stats st;
	struct flb_alog *l;
	char *got;
	size_t len;

	snprintf(a, sizeof(a), "%s", tpath(0, "rot.log"));
	snprintf(b, sizeof(b), "%s", tpath(0, "rot.log.1"));
	l = flb_alog_open(a, FLB_ALOG_COMBINED, 1, 0, err, sizeof(err));
	CHECK(l != NULL);
	if (l == NULL)
		return;
	r.status = 201;
	flb_alog_push(l, 0, &r);
	WAIT_STAT(l, st, st.bytes_written > 0);  /* written within ~50 ms */
	CHECK(st.bytes_written > 0);
	CHECK_EQ(rename(a, b), 0);
	CHECK_EQ(flb_alog_reopen(l), 0);
	WAIT_STAT(l, st, st.reopens == 1);
	CHECK_EQ(st.reopens, 1);
	r.status = 202;
	flb_alog_push(l, 0, &r);
	flb_alog_release(l);
	CHECK_EQ(flb_alog_wait_closed(10000), 0);

	got = slurp(b, &len);
	CHECK(got && count_lines(got, len) == 1 && strstr(got, "\" 201 2326 ") != NULL);
	free(got);
	got = slurp(a, &len);
	CHECK(got && count_lines(got, len) == 1 && strstr(got, "\" 202 2326 ") != NULL);
	free(got);
	unlink(a);
	unlink(b);

	/* a failed reopen keeps the old file and reports the error */
	CHECK_EQ(mkdir(a, 0700), 0);
	snprintf(b, sizeof(b), "%s/f.log", a);
	l = flb_alog_open(b, FLB_ALOG_COMBINED, 1, 0, err, sizeof(err));
	CHECK(l != NULL);
	if (l == NULL)
		return;
	CHECK_EQ(unlink(b), 0);
	CHECK_EQ(rmdir(a), 0);
	CHECK_EQ(flb_alog_reopen(l), 0);
	WAIT_STAT(l, st, st.write_errors == 1);
	CHECK_EQ(st.write_errors, 1);
	CHECK_EQ(st.last_errno, ENOENT);
	CHECK_EQ(st.reopens, 0);
	flb_alog_push(l, 0, &r);  /* still goes to the old (unlinked) file */
	WAIT_STAT(l, st, st.lines == 1);
	CHECK_EQ(st.lines, 1);
	CHECK_EQ(st.lost_bytes, 0);
	flb_alog_release(l);
	CHECK_EQ(flb_alog_wait_closed(10000), 0);
}

/* "-": standard output, which is never reopened nor closed. */
static void test_stdout(void)
{
	const char *path = tpath(0, "stdout.txt");
	struct flb_alog_rec r = sample();
	char err[256];
	struct flb_alog *l;
	int saved, fd;
	size_t len;
	char *got;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	if (saved < 0 || fd < 0)
		return;
	dup2(fd, STDOUT_FILENO);
	close(fd);
	l = flb_alog_open("-", FLB_ALOG_COMBINED, 1, 0, err, sizeof(err));
	CHECK(l != NULL);
	if (l) {
		CHECK(strcmp(flb_alog_path(l), "-") == 0);
		CHECK_EQ(flb_alog_reopen(l), 1);
		flb_alog_push(l, 0, &r);
		flb_alog_release(l);
		CHECK_EQ(flb_alog_wait_closed(10000), 0);
	}
	CHECK(fcntl(STDOUT_FILENO, F_GETFD) >= 0);  /* not closed */
	dup2(saved, STDOUT_FILENO);
	close(saved);
	got = slurp(path, &len);
	CHECK(got != NULL);
	if (got) {
		CHECK_MEM(got, len, sample_combined);
		free(got);
	}
	unlink(path);
}

/* A full disk (/dev/full): write errors are counted, the batch is lost,
 * nothing spins, and the writer still stops cleanly. */
static void test_write_error(void)
{
	struct flb_alog_rec r = sample();
	struct flb_alog_stats st;
	struct flb_alog *l;
	char err[256];

	if (access("/dev/full", W_OK) != 0)
		return;
	l = flb_alog_open("/dev/full", FLB_ALOG_JSON, 1, 0, err, sizeof(err));
	CHECK(l != NULL);
	if (l == NULL)
		return;
	for (int i = 0; i < 10; i++)
		flb_alog_push(l, 0, &r);
	WAIT_STAT(l, st, st.lines == 10);
	CHECK_EQ(st.lines, 10);
	CHECK(st.write_errors >= 1 && st.write_errors <= 10);
	CHECK_EQ(st.last_errno, ENOSPC);
	CHECK_EQ(st.lost_bytes, 10 * (sizeof(sample_json) - 1));
	CHECK_EQ(st.bytes_written, 0);
	flb_alog_release(l);
	CHECK_EQ(flb_alog_wait_closed(10000), 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/flb_alog_XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_formats();
	test_escaping();
	test_bounds();
	test_names_and_errors();
	test_ring_sizes();
	test_file();
	test_overflow();
	test_threads();
	test_reopen();
	test_stdout();
	test_write_error();
	CHECK_EQ(rmdir(tmpdir), 0);
	return CHECK_REPORT();
}
