/* alog.c: the access log of the HTTP proxy mode (API in alog.h, types and
 * bounds in alog-t.h).
 *
 * Shape.  A sink is one output (file, FIFO or standard output) in one
 * format, shared by reference count between the snapshots and listeners
 * that log to it.  It has one single-producer / single-consumer byte ring
 * per worker and one writer pthread that drains every ring, formats the
 * lines and writes them in batches.  A worker's push copies the record into
 * its own ring and returns: no lock, no allocation, no blocking syscall.
 *
 * Where formatting happens: in the writer.  The worker copies a compact
 * binary record (an 80-byte header of numbers and string lengths, then the
 * strings, each cut to its bound in alog-t.h) with a handful of memcpy
 * calls.  Formatting on the worker would cost it the per-byte escaping
 * scans, the date conversion and the number printing, and make records up
 * to 6 times larger in the ring (escapes); the copy of the strings that a
 * binary record needs is what the escaping pass would read anyway.  The
 * writer formats in place from the ring memory (no second copy) and frees
 * the space after each record.
 *
 * Ring.  Positions are 64-bit byte counts that never wrap (head: published
 * by the producer with a release store; tail: by the consumer).  Records are
 * 8-byte aligned and never split: when one does not fit before the end of
 * the buffer the producer writes a PAD marker there and starts the record at
 * offset 0.  The producer keeps a cached copy of the tail and reads the
 * consumer's line only when the cache says the ring is full or at a fill
 * checkpoint (below).  When the ring lacks space the record is dropped and
 * counted (per worker, single-writer counter); a push never waits.  Records
 * are whole or absent, so every line in the output is complete (except
 * after a failed write, see below).
 *
 * Waking the writer.  The writer sleeps in poll(2) on an eventfd with a
 * 50 ms timeout, so lines reach the output within about 50 ms with no
 * syscall at all on the workers at low and moderate rates.  Pure polling
 * is not enough at high rates (a 256 KiB ring holds ~1000 lines, i.e. 10 ms
 * at 100k requests/s per worker), so a producer also writes the eventfd
 * (one non-blocking 8-byte write) when it sees its ring at least half full;
 * it checks that only at checkpoints (the head position at which the ring
 * would be half full given the tail it last saw, then every quarter ring
 * while it stays half full), so the kick costs at most one syscall per
 * quarter ring of records (hundreds of lines), and none when the writer
 * keeps up.  A futex or condition variable would save nothing: the wake is
 * a syscall either way, and a condition variable needs the mutex.
 *
 * Writer.  Each round: honour a reopen request, then for each ring read
 * the head once and format every record up to it into a 256 KiB batch
 * buffer, written with write(2) whenever it lacks room for one more line of
 * the maximum size, and at the end of the round.  Partial writes are
 * continued and EINTR retried; any other error (ENOSPC, EIO, EAGAIN on a
 * non-blocking descriptor) discards the rest of the batch and counts it in
 * lost_bytes, so a full disk costs one failed write per batch, not a spin.
 * A write that fails half way leaves one partial line.
 *
 * Stop.  The last release may run on a worker thread (snapshots are freed
 * on whichever thread drops them last), so it must not join the writer,
 * which could be blocked writing to a slow disk or a full pipe.  It writes
 * ALOG_EV_STOP into the eventfd and returns; the writer thread (detached)
 * sees it, drains every ring, writes, closes the output and frees the sink.
 * The stop travels through the eventfd, not a flag, so that the releaser
 * touches nothing the writer may free: its last access is the write(2)
 * itself, which holds its own reference on the file.  flb_alog_wait_closed
 * waits for such writers to finish (shutdown, tests).
 *
 * Output formats (examples in tests/c/test_alog.c):
 * combined: NGINX/Apache "combined", UTC, then key=value fields
 *   192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326
 *   "referer" "agent" rid=ID listener=L backend=B upstream=ADDR bytes_in=N
 *   rt=0.012 uct=0.001 urt=0.010
 *   Times in seconds with millisecond precision (truncated, like NGINX).
 *   Like NGINX, bytes < 0x20, >= 0x7f, '"' and '\' become \xHH (uppercase);
 *   in the unquoted fields and in the method and target a space does too,
 *   so splitting on spaces and quotes always works.  Empty fields: "-".
 * json: {"time":"2000-10-10T13:55:36.123Z","client":..,"method":..,
 *   "target":..,"protocol":"HTTP/1.1","status":200,"bytes_in":..,
 *   "bytes_out":..,"referer":..,"user_agent":..,"request_id":..,
 *   "listener":..,"backend":..,"upstream":..,"duration_ms":12.345,
 *   "connect_ms":1.000,"upstream_ms":null}
 *   Durations in milliseconds with microsecond precision, null when absent.
 *   Strings: '"' and '\' are backslash-escaped, bytes < 0x20 and 0x7f become
 *   \u00xx, well-formed UTF-8 is copied, and each byte of an ill-formed
 *   sequence becomes \u00xx (the byte read as Latin-1), so the line is
 *   always valid JSON in valid UTF-8 (NGINX's escape=json would copy such
 *   bytes raw and produce invalid UTF-8). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "compiler.h"
#include "stats.h"

/* Writer poll period, ms (the latency of a line at low rates). */
#define ALOG_POLL_MS 50
/* Batch buffer of the writer. */
#define ALOG_OUT_BUF (256u * 1024)
/* Ring header length value marking the unused end of the buffer. */
#define ALOG_PAD 0xffffffffu
/* Eventfd value of the stop request (kicks add 1 each, far below). */
#define ALOG_EV_STOP ((uint64_t)1 << 40)
/* Open flags of the output. */
#define ALOG_OFLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY)
/* Latest time printed: 9999-12-31T23:59:59.999999Z. */
#define ALOG_TIME_MAX 253402300799999999LL

/* The string fields of a record, in ring order. */
#define ALOG_NSTR 9

/* Header of a record in a ring; the strings follow, in alog_fields order. */
struct alog_hdr {
	uint32_t len;              /* header + strings; ALOG_PAD: skip to 0 */
	int32_t http_minor;
	int32_t status;
	uint16_t slen[ALOG_NSTR];
	uint64_t bytes_in, bytes_out;
	int64_t start_us, total_us, connect_us, upstream_us;
};

#define ALOG_ALIGN8(n) (((n) + 7u) & ~(size_t)7u)
#define ALOG_REC_MAX ALOG_ALIGN8(sizeof(struct alog_hdr) + FLB_ALOG_MAX_STRS)

/* A record and the PAD before it always fit in an empty minimum ring. */
_Static_assert(2 * ALOG_REC_MAX <= FLB_ALOG_RING_MIN, "ring minimum too small");
_Static_assert(ALOG_OUT_BUF >= 4 * FLB_ALOG_LINE_MAX, "batch buffer too small");
_Static_assert(FLB_ALOG_MAX_TARGET < 65536, "string lengths are 16-bit");

/* Offset in struct flb_alog_rec and bound of each string field. */
static const struct alog_field {
	size_t off;
	uint32_t max;
} alog_fields[ALOG_NSTR] = {
	{ offsetof(struct flb_alog_rec, client), FLB_ALOG_MAX_CLIENT },
	{ offsetof(struct flb_alog_rec, method), FLB_ALOG_MAX_METHOD },
	{ offsetof(struct flb_alog_rec, target), FLB_ALOG_MAX_TARGET },
	{ offsetof(struct flb_alog_rec, referer), FLB_ALOG_MAX_REFERER },
	{ offsetof(struct flb_alog_rec, user_agent), FLB_ALOG_MAX_USER_AGENT },
	{ offsetof(struct flb_alog_rec, request_id), FLB_ALOG_MAX_REQUEST_ID },
	{ offsetof(struct flb_alog_rec, listener), FLB_ALOG_MAX_LISTENER },
	{ offsetof(struct flb_alog_rec, backend), FLB_ALOG_MAX_BACKEND },
	{ offsetof(struct flb_alog_rec, upstream), FLB_ALOG_MAX_UPSTREAM },
};

/* Sinks released for the last time whose writer has not finished yet. */
static _Atomic uint32_t alog_closing;

/* ---- small helpers ---------------------------------------------------- */

/* The i-th string field of r (alog_fields order).  Returns a pointer into r. */
static inline const struct flb_alog_str *rec_str(const struct flb_alog_rec *r, unsigned i)
{
	return (const struct flb_alog_str *)((const char *)r + alog_fields[i].off);
}

/* Writable variant of rec_str.  Returns a pointer into r. */
static inline struct flb_alog_str *rec_str_w(struct flb_alog_rec *r, unsigned i)
{
	return (struct flb_alog_str *)((char *)r + alog_fields[i].off);
}

/* Length of s cut to max bytes.  When the cut would split a UTF-8
 * character (the first byte left out is a continuation byte and a lead byte
 * starts within the last 3 kept), it moves back to that lead byte.
 * s: the string (NULL ptr: empty); max: the bound (> 3).
 * Returns the length to keep, <= max. */
static size_t alog_cut(const struct flb_alog_str *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s->ptr;
	size_t j;

	if (p == NULL)
		return 0;
	if (s->len <= max)
		return s->len;
	if ((p[max] & 0xc0) != 0x80)
		return max;
	for (j = max - 1; j + 3 > max && (p[j] & 0xc0) == 0x80; j--)
		;
	return p[j] >= 0xc0 ? j : max;
}

/* Wake the writer: add v to its eventfd.  evfd: the sink's eventfd; v: 1
 * (a kick) or ALOG_EV_STOP.  Never blocks (EAGAIN: the counter is saturated, the writer
 * is awake anyway). */
static void alog_kick(int evfd, uint64_t v)
{
	if (write(evfd, &v, sizeof(v)) < 0) {
		/* Nothing to do: see above. */
	}
}

/* Write a printf-style error message if there is a buffer.
 * err/errlen: the buffer (NULL/0: none); fmt...: the message. */
__attribute__((format(printf, 3, 4)))
static void alog_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- formatting -------------------------------------------------------- */

static const char hex_up[] = "0123456789ABCDEF";
static const char hex_lo[] = "0123456789abcdef";

/* Append a literal.  p: output; lit: a string literal.  Yields the new end. */
#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* Append v in decimal.  p: output (>= 20 bytes).  Returns the new end. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	unsigned n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Append v in decimal with a '-' when negative.  Returns the new end. */
static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

/* Append v (< 10^w) in exactly w digits, zero-padded.  Returns the new end. */
static char *put_fixed(char *p, unsigned v, unsigned w)
{
	for (unsigned i = w; i > 0; i--) {
		p[i - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + w;
}

/* Append a duration in microseconds as "S.mmm" seconds (truncated to the
 * millisecond), or "-" when us < 0.  Returns the new end. */
static char *put_secs(char *p, int64_t us)
{
	uint64_t ms;

	if (us < 0)
		return PUT(p, "-");
	ms = (uint64_t)us / 1000;
	p = put_u64(p, ms / 1000);
	*p++ = '.';
	return put_fixed(p, (unsigned)(ms % 1000), 3);
}

/* Append a duration in microseconds as "M.uuu" milliseconds, or "null" when
 * us < 0.  Returns the new end. */
static char *put_ms(char *p, int64_t us)
{
	if (us < 0)
		return PUT(p, "null");
	p = put_u64(p, (uint64_t)us / 1000);
	*p++ = '.';
	return put_fixed(p, (unsigned)((uint64_t)us % 1000), 3);
}

/* Broken-down UTC time. */
struct alog_tm {
	unsigned year, mon, day, hour, min, sec, ms;
};

/* Convert wall-clock microseconds to UTC (proleptic Gregorian; H. Hinnant's
 * civil_from_days).  us: clamped to 1970..9999.  t: out. */
static void alog_gmtime(int64_t us, struct alog_tm *t)
{
	uint64_t s, days, z, era, doe, yoe, doy, mp, y;

	if (us < 0)
		us = 0;
	if (us > ALOG_TIME_MAX)
		us = ALOG_TIME_MAX;
	t->ms = (unsigned)((uint64_t)us / 1000 % 1000);
	s = (uint64_t)us / 1000000;
	days = s / 86400;
	s %= 86400;
	t->hour = (unsigned)(s / 3600);
	t->min = (unsigned)(s / 60 % 60);
	t->sec = (unsigned)(s % 60);
	z = days + 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	t->day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	t->mon = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	t->year = (unsigned)(y + (t->mon <= 2));
}

/* Byte classes of the escapers: ESC_ALWAYS for the bytes both formats
 * escape (or, in JSON, check for UTF-8): < 0x20, >= 0x7f, '"' and '\';
 * ESC_SPACE for ' ' (escaped in the combined format's unquoted fields). */
#define ESC_ALWAYS 1
#define ESC_SPACE  2
static const uint8_t esc_class[256] = {
	[0x00 ... 0x1f] = ESC_ALWAYS,
	[' '] = ESC_SPACE,
	['"'] = ESC_ALWAYS,
	['\\'] = ESC_ALWAYS,
	[0x7f ... 0xff] = ESC_ALWAYS,
};

/* Length of the run of bytes at q[0..n) that need no escaping.
 * mask: the esc_class bits that stop the run.  Returns 0..n. */
static inline size_t esc_run(const unsigned char *q, size_t n, unsigned mask)
{
	size_t i = 0;

	while (i < n && !(esc_class[q[i]] & mask))
		i++;
	return i;
}

/* Append s escaped for the combined format: bytes < 0x20 or >= 0x7f, '"'
 * and '\' (and ' ' when space is set) become \xHH; empty becomes "-".
 * Returns the new end (at most 4 bytes per input byte). */
static char *esc_combined(char *p, const struct flb_alog_str *s, int space)
{
	const unsigned char *q = (const unsigned char *)s->ptr;
	unsigned mask = ESC_ALWAYS | (space ? ESC_SPACE : 0);
	size_t i = 0, n = s->len;

	if (n == 0)
		return PUT(p, "-");
	for (;;) {
		size_t k = esc_run(q + i, n - i, mask);
		unsigned c;

		memcpy(p, q + i, k);
		p += k;
		i += k;
		if (i == n)
			return p;
		c = q[i++];
		*p++ = '\\';
		*p++ = 'x';
		*p++ = hex_up[c >> 4];
		*p++ = hex_up[c & 15];
	}
}

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms,
 * no surrogates, at most U+10FFFF) of 2 to 4 bytes at q.
 * q: first byte (>= 0x80); n: bytes available.  Returns 2..4, or 0. */
static size_t utf8_len(const unsigned char *q, size_t n)
{
	unsigned c = q[0], lo = 0x80, hi = 0xbf;
	size_t k;

	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < k || q[1] < lo || q[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if ((q[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

/* Append s as a JSON string, quotes included (see the top comment).
 * Returns the new end (at most 6 bytes per input byte, plus 2). */
static char *esc_json(char *p, const struct flb_alog_str *s)
{
	const unsigned char *q = (const unsigned char *)s->ptr;
	size_t i = 0, n = s->len;

	*p++ = '"';
	while (i < n) {
		size_t k = esc_run(q + i, n - i, ESC_ALWAYS);
		unsigned c;

		memcpy(p, q + i, k);
		p += k;
		i += k;
		if (i == n)
			break;
		c = q[i];
		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
			i++;
		} else if (c >= 0x80 && (k = utf8_len(q + i, n - i)) != 0) {
			memcpy(p, q + i, k);
			p += k;
			i += k;
		} else {
			p = PUT(p, "\\u00");
			*p++ = hex_lo[c >> 4];
			*p++ = hex_lo[c & 15];
			i++;
		}
	}
	*p++ = '"';
	return p;
}

static const char alog_months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Format r in the combined format.  r: strings already cut; p: output of
 * at least FLB_ALOG_LINE_MAX bytes.  Returns the end of the line. */
static char *fmt_combined(char *p, const struct flb_alog_rec *r)
{
	struct alog_tm t;

	alog_gmtime(r->start_us, &t);
	p = esc_combined(p, &r->client, 1);
	p = PUT(p, " - - [");
	p = put_fixed(p, t.day, 2);
	*p++ = '/';
	memcpy(p, alog_months[t.mon - 1], 3);
	p += 3;
	*p++ = '/';
	p = put_fixed(p, t.year, 4);
	*p++ = ':';
	p = put_fixed(p, t.hour, 2);
	*p++ = ':';
	p = put_fixed(p, t.min, 2);
	*p++ = ':';
	p = put_fixed(p, t.sec, 2);
	p = PUT(p, " +0000] \"");
	if (r->method.len == 0) {
		*p++ = '-';
	} else {
		p = esc_combined(p, &r->method, 1);
		*p++ = ' ';
		p = esc_combined(p, &r->target, 1);
		p = PUT(p, " HTTP/1.");
		p = put_i64(p, r->http_minor);
	}
	p = PUT(p, "\" ");
	p = put_i64(p, r->status);
	*p++ = ' ';
	p = put_u64(p, r->bytes_out);
	p = PUT(p, " \"");
	p = esc_combined(p, &r->referer, 0);
	p = PUT(p, "\" \"");
	p = esc_combined(p, &r->user_agent, 0);
	p = PUT(p, "\" rid=");
	p = esc_combined(p, &r->request_id, 1);
	p = PUT(p, " listener=");
	p = esc_combined(p, &r->listener, 1);
	p = PUT(p, " backend=");
	p = esc_combined(p, &r->backend, 1);
	p = PUT(p, " upstream=");
	p = esc_combined(p, &r->upstream, 1);
	p = PUT(p, " bytes_in=");
	p = put_u64(p, r->bytes_in);
	p = PUT(p, " rt=");
	p = put_secs(p, r->total_us);
	p = PUT(p, " uct=");
	p = put_secs(p, r->connect_us);
	p = PUT(p, " urt=");
	p = put_secs(p, r->upstream_us);
	*p++ = '\n';
	return p;
}

/* Format r as a JSON object.  r: strings already cut; p: output of at
 * least FLB_ALOG_LINE_MAX bytes.  Returns the end of the line. */
static char *fmt_json(char *p, const struct flb_alog_rec *r)
{
	struct alog_tm t;

	alog_gmtime(r->start_us, &t);
	p = PUT(p, "{\"time\":\"");
	p = put_fixed(p, t.year, 4);
	*p++ = '-';
	p = put_fixed(p, t.mon, 2);
	*p++ = '-';
	p = put_fixed(p, t.day, 2);
	*p++ = 'T';
	p = put_fixed(p, t.hour, 2);
	*p++ = ':';
	p = put_fixed(p, t.min, 2);
	*p++ = ':';
	p = put_fixed(p, t.sec, 2);
	*p++ = '.';
	p = put_fixed(p, t.ms, 3);
	p = PUT(p, "Z\",\"client\":");
	p = esc_json(p, &r->client);
	p = PUT(p, ",\"method\":");
	p = esc_json(p, &r->method);
	p = PUT(p, ",\"target\":");
	p = esc_json(p, &r->target);
	p = PUT(p, ",\"protocol\":\"HTTP/1.");
	p = put_i64(p, r->http_minor);
	p = PUT(p, "\",\"status\":");
	p = put_i64(p, r->status);
	p = PUT(p, ",\"bytes_in\":");
	p = put_u64(p, r->bytes_in);
	p = PUT(p, ",\"bytes_out\":");
	p = put_u64(p, r->bytes_out);
	p = PUT(p, ",\"referer\":");
	p = esc_json(p, &r->referer);
	p = PUT(p, ",\"user_agent\":");
	p = esc_json(p, &r->user_agent);
	p = PUT(p, ",\"request_id\":");
	p = esc_json(p, &r->request_id);
	p = PUT(p, ",\"listener\":");
	p = esc_json(p, &r->listener);
	p = PUT(p, ",\"backend\":");
	p = esc_json(p, &r->backend);
	p = PUT(p, ",\"upstream\":");
	p = esc_json(p, &r->upstream);
	p = PUT(p, ",\"duration_ms\":");
	p = put_ms(p, r->total_us);
	p = PUT(p, ",\"connect_ms\":");
	p = put_ms(p, r->connect_us);
	p = PUT(p, ",\"upstream_ms\":");
	p = put_ms(p, r->upstream_us);
	p = PUT(p, "}\n");
	return p;
}

/* Format one record (contract in alog.h). */
size_t flb_alog_format_line(int format, const struct flb_alog_rec *r, char *buf, size_t len)
{
	struct flb_alog_rec c = *r;
	char *end;

	if (len < FLB_ALOG_LINE_MAX)
		return 0;
	for (unsigned i = 0; i < ALOG_NSTR; i++)
		rec_str_w(&c, i)->len = alog_cut(rec_str(r, i), alog_fields[i].max);
	if (format == FLB_ALOG_JSON)
		end = fmt_json(buf, &c);
	else
		end = fmt_combined(buf, &c);
	return (size_t)(end - buf);
}

/* ---- producer ---------------------------------------------------------- */

/* Fill checkpoint of a ring (see the top comment): if the ring is at least
 * half full, kick the writer and check again a quarter ring later; else
 * check again where it would be half full.  l: the sink; g: the ring;
 * head: the head just published. */
static void alog_checkpoint(struct flb_alog *l, struct flb_alog_ring *g, uint64_t head)
{
	uint64_t tail = atomic_load_explicit(&g->tail, memory_order_acquire);
	uint32_t half = l->ring_size / 2;

	g->tail_cache = tail;
	if (head - tail >= half) {
		alog_kick(l->evfd, 1);
		g->kick_at = head + half / 2;
	} else {
		g->kick_at = tail + half;
	}
}

/* Log one request (contract in alog.h). */
void flb_alog_push(struct flb_alog *l, uint32_t worker, const struct flb_alog_rec *r)
{
	struct flb_alog_ring *g;
	struct alog_hdr h;
	uint64_t head, need, gap, size, off;
	size_t total = sizeof(h);
	char *base, *p;

	if (l == NULL || worker >= l->nworkers)
		return;
	g = &l->rings[worker];
	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < ALOG_NSTR; i++) {
		h.slen[i] = (uint16_t)alog_cut(rec_str(r, i), alog_fields[i].max);
		total += h.slen[i];
	}
	size = l->ring_size;
	need = ALOG_ALIGN8(total);
	head = atomic_load_explicit(&g->head, memory_order_relaxed);
	off = head & (size - 1);
	gap = need <= size - off ? 0 : size - off;
	if (head + gap + need - g->tail_cache > size) {
		g->tail_cache = atomic_load_explicit(&g->tail, memory_order_acquire);
		if (head + gap + need - g->tail_cache > size) {
			flb_ctr_add(&g->dropped, 1);
			return;
		}
	}
	base = l->ring_mem + (size_t)worker * size;
	if (gap) {
		uint32_t pad = ALOG_PAD;

		memcpy(base + off, &pad, sizeof(pad));
		head += gap;
		off = 0;
	}
	h.len = (uint32_t)total;
	h.http_minor = r->http_minor;
	h.status = r->status;
	h.bytes_in = r->bytes_in;
	h.bytes_out = r->bytes_out;
	h.start_us = r->start_us;
	h.total_us = r->total_us;
	h.connect_us = r->connect_us;
	h.upstream_us = r->upstream_us;
	p = base + off;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	for (unsigned i = 0; i < ALOG_NSTR; i++) {
		if (h.slen[i]) {
			memcpy(p, rec_str(r, i)->ptr, h.slen[i]);
			p += h.slen[i];
		}
	}
	head += need;
	atomic_store_explicit(&g->head, head, memory_order_release);
	flb_ctr_add(&g->records, 1);
	if (flb_unlikely(head >= g->kick_at))
		alog_checkpoint(l, g, head);
}

/* ---- writer ------------------------------------------------------------ */

/* Write out the batch buffer: partial writes continued, EINTR retried; on
 * any other error the rest is counted as lost.  l: the sink (writer). */
static void alog_flush(struct flb_alog *l)
{
	const char *p = l->out;
	size_t n = l->out_len;

	while (n > 0) {
		ssize_t k = write(l->fd, p, n);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			flb_ctr_add(&l->bytes_written, (uint64_t)k);
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		atomic_store_explicit(&l->last_errno, k < 0 ? errno : EIO, memory_order_relaxed);
		flb_ctr_add(&l->write_errors, 1);
		flb_ctr_add(&l->lost_bytes, n);
		break;
	}
	flb_ctr_add(&l->lines, l->out_lines);
	l->out_len = 0;
	l->out_lines = 0;
}

/* Format every record of ring i published so far into the batch buffer
 * (flushing it whenever it could not hold one more line) and free their
 * space.  l: the sink (writer); i: the ring. */
static void alog_drain(struct flb_alog *l, uint32_t i)
{
	struct flb_alog_ring *g = &l->rings[i];
	uint64_t size = l->ring_size;
	const char *base = l->ring_mem + (size_t)i * size;
	uint64_t head = atomic_load_explicit(&g->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&g->tail, memory_order_relaxed);

	while (tail != head) {
		uint64_t off = tail & (size - 1);
		struct flb_alog_rec r;
		struct alog_hdr h;
		const char *s;

		memcpy(&h.len, base + off, sizeof(h.len));
		if (h.len == ALOG_PAD) {
			tail += size - off;
			continue;
		}
		memcpy(&h, base + off, sizeof(h));
		s = base + off + sizeof(h);
		for (unsigned k = 0; k < ALOG_NSTR; k++) {
			struct flb_alog_str *str = rec_str_w(&r, k);

			str->ptr = s;
			str->len = h.slen[k];
			s += h.slen[k];
		}
		r.http_minor = h.http_minor;
		r.status = h.status;
		r.bytes_in = h.bytes_in;
		r.bytes_out = h.bytes_out;
		r.start_us = h.start_us;
		r.total_us = h.total_us;
		r.connect_us = h.connect_us;
		r.upstream_us = h.upstream_us;
		if (ALOG_OUT_BUF - l->out_len < FLB_ALOG_LINE_MAX)
			alog_flush(l);
		l->out_len += flb_alog_format_line(l->format, &r, l->out + l->out_len,
		                                   ALOG_OUT_BUF - l->out_len);
		l->out_lines++;
		tail += ALOG_ALIGN8(h.len);
		atomic_store_explicit(&g->tail, tail, memory_order_release);
	}
	atomic_store_explicit(&g->tail, tail, memory_order_release);
}

/* Reopen the output at its path; on failure keep the old descriptor and
 * count the error.  l: the sink (writer), not standard output. */
static void alog_reopen_now(struct flb_alog *l)
{
	int fd = open(l->path, ALOG_OFLAGS, 0640);

	if (fd < 0) {
		atomic_store_explicit(&l->last_errno, errno, memory_order_relaxed);
		flb_ctr_add(&l->write_errors, 1);
		return;
	}
	close(l->fd);
	l->fd = fd;
	flb_ctr_add(&l->reopens, 1);
}

/* Free a sink and everything it owns (the writer thread at exit, or
 * flb_alog_open on failure).  l: the sink; fields not set yet are NULL/-1. */
static void alog_free(struct flb_alog *l)
{
	if (l->fd >= 0 && l->fd != STDOUT_FILENO)
		close(l->fd);
	if (l->evfd >= 0)
		close(l->evfd);
	free(l->out);
	free(l->ring_mem);
	free(l->rings);
	free(l->path);
	free(l);
}

/* Sleep until kicked or ALOG_POLL_MS passed.  l: the sink (writer).
 * Returns 1 when the stop request arrived, else 0. */
static int alog_wait(struct flb_alog *l)
{
	struct pollfd pfd = { .fd = l->evfd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&pfd, 1, ALOG_POLL_MS) <= 0)
		return 0;
	if (read(l->evfd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	atomic_thread_fence(memory_order_acquire);
	return v >= ALOG_EV_STOP;
}

/* The writer thread: rounds of reopen / drain / write until the stop
 * request, then a last drain, then the sink is freed.  arg: the sink. */
static void *alog_writer(void *arg)
{
	struct flb_alog *l = arg;
	int stop = 0;

	for (;;) {
		if (atomic_exchange_explicit(&l->reopen, 0, memory_order_acq_rel))
			alog_reopen_now(l);
		for (uint32_t i = 0; i < l->nworkers; i++)
			alog_drain(l, i);
		if (l->out_len)
			alog_flush(l);
		if (stop)
			break;
		stop = alog_wait(l);
	}
	alog_free(l);
	atomic_fetch_sub_explicit(&alog_closing, 1, memory_order_release);
	return NULL;
}

/* ---- control ----------------------------------------------------------- */

/* Open a sink (contract in alog.h). */
struct flb_alog *flb_alog_open(const char *path, int format, uint32_t nworkers,
                               uint32_t ring_bytes, char *err, size_t errlen)
{
	struct flb_alog *l;
	pthread_attr_t attr;
	sigset_t all, old;
	uint32_t size;
	int rc;

	if (path == NULL || path[0] == '\0') {
		alog_err(err, errlen, "access log: empty path");
		return NULL;
	}
	if (format != FLB_ALOG_COMBINED && format != FLB_ALOG_JSON) {
		alog_err(err, errlen, "access log %s: %s", path, "unknown format");
		return NULL;
	}
	if (nworkers == 0 || nworkers > 65536) {
		alog_err(err, errlen, "access log %s: %s", path, "bad worker count");
		return NULL;
	}
	if (ring_bytes == 0)
		ring_bytes = FLB_ALOG_RING_DEFAULT;
	if (ring_bytes < FLB_ALOG_RING_MIN)
		ring_bytes = FLB_ALOG_RING_MIN;
	if (ring_bytes > FLB_ALOG_RING_MAX)
		ring_bytes = FLB_ALOG_RING_MAX;
	for (size = FLB_ALOG_RING_MIN; size < ring_bytes; size <<= 1)
		;
	if ((size_t)nworkers > SIZE_MAX / size) {
		alog_err(err, errlen, "access log %s: %s", path, strerror(ENOMEM));
		return NULL;
	}

	l = aligned_alloc(FLB_CACHELINE, sizeof(*l));
	if (l == NULL) {
		alog_err(err, errlen, "access log %s: %s", path, strerror(ENOMEM));
		return NULL;
	}
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->evfd = -1;
	l->format = format;
	l->nworkers = nworkers;
	l->ring_size = size;
	l->path = strdup(path);
	l->out = malloc(ALOG_OUT_BUF);
	l->ring_mem = aligned_alloc(FLB_CACHELINE, (size_t)nworkers * size);
	l->rings = aligned_alloc(FLB_CACHELINE, (size_t)nworkers * sizeof(*l->rings));
	if (!l->path || !l->out || !l->ring_mem || !l->rings) {
		alog_err(err, errlen, "access log %s: %s", path, strerror(ENOMEM));
		goto fail;
	}
	memset(l->rings, 0, (size_t)nworkers * sizeof(*l->rings));
	for (uint32_t i = 0; i < nworkers; i++)
		l->rings[i].kick_at = size / 2;
	atomic_init(&l->refcnt, 1);

	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->evfd < 0) {
		alog_err(err, errlen, "access log %s: eventfd: %s", path, strerror(errno));
		goto fail;
	}
	if (strcmp(path, "-") == 0) {
		l->fd = STDOUT_FILENO;
	} else {
		l->fd = open(path, ALOG_OFLAGS, 0640);
		if (l->fd < 0) {
			alog_err(err, errlen, "access log %s: %s", path, strerror(errno));
			goto fail;
		}
	}

	/* The writer runs detached with every signal blocked (signals belong
	 * to the embedding program's main thread). */
	rc = pthread_attr_init(&attr);
	if (rc == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&l->thr, &attr, alog_writer, l);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0) {
		alog_err(err, errlen, "access log %s: pthread_create: %s", path, strerror(rc));
		goto fail;
	}
	return l;
fail:
	alog_free(l);
	return NULL;
}

/* Take a reference (contract in alog.h). */
struct flb_alog *flb_alog_ref(struct flb_alog *l)
{
	if (l)
		atomic_fetch_add_explicit(&l->refcnt, 1, memory_order_relaxed);
	return l;
}

/* Drop a reference (contract in alog.h). */
void flb_alog_release(struct flb_alog *l)
{
	int evfd;

	if (l == NULL)
		return;
	if (atomic_fetch_sub_explicit(&l->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	/* The writer may free l as soon as it reads the stop value: read
	 * everything needed first, and touch nothing after the write. */
	evfd = l->evfd;
	atomic_fetch_add_explicit(&alog_closing, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	alog_kick(evfd, ALOG_EV_STOP);
}

/* Wait for released sinks to finish (contract in alog.h). */
int flb_alog_wait_closed(int timeout_ms)
{
	struct timespec t0, now, nap = { 0, 1000000 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load_explicit(&alog_closing, memory_order_acquire) != 0) {
		if (timeout_ms >= 0) {
			int64_t ms;

			clock_gettime(CLOCK_MONOTONIC, &now);
			ms = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 +
			     (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms >= timeout_ms)
				return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}

/* Wait until every accepted record went to write(2) (contract in alog.h). */
int flb_alog_sync(struct flb_alog *l, int timeout_ms)
{
	struct timespec nap = { 0, 1000000 };
	struct flb_alog_stats st;

	alog_kick(l->evfd, 1);
	for (int waited = 0;; waited++) {
		flb_alog_get_stats(l, &st);
		if (st.lines >= st.records)
			return 0;
		if (timeout_ms >= 0 && waited >= timeout_ms)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

/* Request a reopen (contract in alog.h). */
int flb_alog_reopen(struct flb_alog *l)
{
	if (strcmp(l->path, "-") == 0)
		return 1;
	atomic_store_explicit(&l->reopen, 1, memory_order_release);
	alog_kick(l->evfd, 1);
	return 0;
}

/* The path (contract in alog.h). */
const char *flb_alog_path(const struct flb_alog *l)
{
	return l->path;
}

/* The format (contract in alog.h). */
int flb_alog_format(const struct flb_alog *l)
{
	return l->format;
}

/* Parse a format name (contract in alog.h). */
int flb_alog_format_from_name(const char *name)
{
	if (name == NULL)
		return -1;
	if (strcmp(name, "combined") == 0)
		return FLB_ALOG_COMBINED;
	if (strcmp(name, "json") == 0)
		return FLB_ALOG_JSON;
	return -1;
}

/* Dropped records (contract in alog.h). */
uint64_t flb_alog_dropped(const struct flb_alog *l)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < l->nworkers; i++)
		n += flb_ctr_get(&l->rings[i].dropped);
	return n;
}

/* Sum the counters (contract in alog.h). */
void flb_alog_get_stats(const struct flb_alog *l, struct flb_alog_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < l->nworkers; i++) {
		out->records += flb_ctr_get(&l->rings[i].records);
		out->dropped += flb_ctr_get(&l->rings[i].dropped);
	}
	out->lines = flb_ctr_get(&l->lines);
	out->bytes_written = flb_ctr_get(&l->bytes_written);
	out->lost_bytes = flb_ctr_get(&l->lost_bytes);
	out->write_errors = flb_ctr_get(&l->write_errors);
	out->reopens = flb_ctr_get(&l->reopens);
	out->last_errno = atomic_load_explicit((_Atomic int *)&l->last_errno, memory_order_relaxed);
}
