/* http1.c: the strict, zero-copy, stateless HTTP/1.1 head parser and the
 * incremental chunked decoder declared in http1.h.
 *
 * Head parser
 * -----------
 * One pass over the head, left to right.  Every rule is checked at the byte
 * where it can first be decided, so the verdict on a buffer is a function of
 * its bytes in order: a prefix of a message is either INCOMPLETE or fails
 * with the very error (code and offset) the whole message fails with, and a
 * valid head parses the same whatever follows it.  Errors are therefore
 * reported as early as the bytes allow (a bad method byte fails before the
 * head is complete), and in the order they occur in the buffer.
 *
 * Only the first max_head bytes are ever looked at: a head that has not ended
 * within them is FLB_HTTP_E_HEAD_TOO_LARGE, unless an earlier byte already
 * broke a rule.
 *
 * Choices where the RFCs leave room (all strict; tests/http_reference.py is
 * the executable statement of the same rules):
 *   - Requests: any number of empty lines (CRLF) before the request line are
 *     skipped (RFC 9112 2.2); they count in the returned length and toward
 *     max_head.  Responses get no such leniency.
 *   - Request line: exactly "method SP target SP HTTP/1.x CRLF".  An empty
 *     method (leading SP) or a non-tchar byte in it (HTAB included) is
 *     E_METHOD; a line ending inside the method, an empty target, a second
 *     SP, or a version field that is empty or holds a SP is E_REQUEST_LINE;
 *     a CTL, HTAB, DEL or byte >= 0x80 in the target is E_TARGET.
 *   - Status line: "HTTP/1.x SP 3DIGIT [SP reason] CRLF", status 100-999;
 *     "HTTP/1.1 200\r\n" (no SP) and "HTTP/1.1 200 \r\n" both give an empty
 *     reason.  The reason may hold HTAB, SP, VCHAR and obs-text, and is kept
 *     as sent (not trimmed).
 *   - Content-Length is 1*DIGIT below 2^63.  A comma list ("5, 5") is
 *     E_CONTENT_LENGTH; repeated field lines with the same value are fine.
 *   - Transfer-Encoding is a comma list of codings, each a token with
 *     optional parameters (";" name "=" token / quoted-string).  An empty
 *     element or an empty field value is E_TE_SYNTAX, and so is a comma
 *     inside a quoted parameter value.  "chunked" (any case, with or without
 *     parameters) counts as chunked.  The TE checks of a line run when the
 *     line ends; whether the final coding is chunked (requests) when the head
 *     ends.
 *   - Connection: comma list, empty elements ignored, tokens compared without
 *     case; only close, keep-alive and upgrade matter.  Expect is
 *     100-continue when a field value equals it without case.
 *   - Host: a second Host line is E_HOST in requests and responses; a
 *     missing one only in HTTP/1.1 requests.  Its value is not checked
 *     beyond the field-value rules (empty is allowed, RFC 9112 3.2).
 *   - Content-Length with Transfer-Encoding is E_CL_AND_TE in requests and
 *     responses.  KEEP_ALIVE is exactly (1.1 and no close) or (1.0 and
 *     keep-alive and no close); framing-dependent persistence (a body read
 *     until close) is the caller's to decide.
 *   - More field lines than the header array holds is E_TOO_MANY_HEADERS,
 *     reported once the extra line has been read whole (so a malformed extra
 *     line reports its own error first).
 *
 * Incremental calls: with last_len >= HP_QUICK_MIN and new bytes that hold no
 * LF, no CTL other than HTAB/CR (or DEL) and no CR followed by a non-LF, the
 * result cannot be a complete head, and the parser answers INCOMPLETE without
 * parsing again.  That bounds the cost of a head sent in many small pieces to
 * one full parse per line (plus one per call over the first HP_QUICK_MIN
 * bytes); errors that need the context of the line (a bad byte in a name,
 * say) are then reported when the line ends rather than at the byte.
 *
 * Chunked decoder
 * ---------------
 * A byte-at-a-time state machine for the size lines and trailers, memmove
 * for the data.  decode and scan run the same code (scan with no output), so
 * they agree on where the body ends by construction.  Rules:
 *   - chunk-size is 1*HEXDIG, leading zeros allowed, at most 2^63 - 1;
 *   - chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ):
 *     whitespace only before ';' or '=' and after them, so "5 \r\n" and
 *     "5;a \r\n" are E_CHUNK_EXT;
 *   - max_line bounds the size line without its CR and LF;
 *   - a LF without CR in a size line is E_CHUNK_SIZE as its first byte and
 *     E_CHUNK_EXT later; a CR not followed by LF is a bad byte of the size
 *     (E_CHUNK_SIZE) or of the extensions (E_CHUNK_EXT);
 *   - chunk data must be followed by CRLF (E_CHUNK_DATA);
 *   - trailer fields follow the field-line rules (no obs-fold, no space
 *     before the colon, no CTL in a value), any breach being E_TRAILER;
 *     max_trailer bounds the trailer field lines with their CRLFs, not the
 *     final CRLF (E_TRAILER_TOO_LARGE);
 *   - errors are sticky; once done, decode hands every further byte back as
 *     following the body and scan returns 0.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"
#include "http1.h"

/* SIMD: SSE2 on x86-64 and NEON on aarch64 are baseline, so they are used
 * without run-time dispatch.  (AVX2 was measured: it does not speed up heads
 * of this size, so there is none.)  Define FLB_HTTP_NO_SIMD to build the
 * portable scalar code only; the fuzz target compares the two. */
#if !defined(FLB_HTTP_NO_SIMD) && defined(FLB_X86) && defined(__SSE2__)
#include <emmintrin.h>
#define HTTP_SSE2 1
#elif !defined(FLB_HTTP_NO_SIMD) && defined(FLB_ARM64) && defined(__ARM_NEON)
#include <arm_neon.h>
#define HTTP_NEON 1
#endif

/* ------------------------------------------------------------------------ */
/* Byte classes */

#define C_TCHAR 1u  /* tchar (RFC 9110 5.6.2): method, field name, token */
#define C_VBAD  2u  /* not allowed in a field value: CTL but HTAB, and DEL */
#define C_TBAD  4u  /* not allowed in a request target: anything but VCHAR */

/* Class bits of every byte (C_*).  Field values allow HTAB, SP, VCHAR and
 * obs-text (0x80-0xFF); targets allow VCHAR only. */
static const uint8_t http_cls[256] = {
	6, 6, 6, 6, 6, 6, 6, 6, 6, 4, 6, 6, 6, 6, 6, 6, /* 0x00 */
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x10 */
	4, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /* 0x20 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30 */
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* 0x50 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 6, /* 0x70 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x80 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x90 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xa0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xb0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xc0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xd0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xe0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xf0 */
};

/* Test byte c against class bits m.  Returns nonzero when c has any of them. */
static inline unsigned cls(char c, unsigned m)
{
	return http_cls[(uint8_t)c] & m;
}

/* Whether c is SP or HTAB (OWS).  Returns 1 or 0. */
static inline int is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* Read 4 bytes at p (any alignment, host order).  Returns them. */
static inline uint32_t ld4(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Read 8 bytes at p (any alignment, host order).  Returns them. */
static inline uint64_t ld8(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

#define LC4 0x20202020u
#define LC8 0x2020202020202020ull

/* Compare s[0..n) with the lower-case literal lit, ignoring the case of s.
 * lit may hold only a-z, 0-9 and '-', and s no CTL: then OR-ing 0x20 into
 * each byte of s maps exactly the upper-case letters onto lit.
 * Returns 1 when equal. */
static inline int lc_eq(const char *s, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((char)(s[i] | 0x20) != lit[i])
			return 0;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Scanners.  Each returns the first byte in [p, end) outside its class, or
 * end.  The SIMD loops only load 16 bytes that lie inside [p, end). */

#if defined(HTTP_NEON)
/* Compress a 16-lane 0x00/0xFF mask into 4 bits per lane.
 * Returns the 64-bit mask; lane i is bits 4i..4i+3. */
static inline uint64_t neon_mask(uint8x16_t m)
{
	uint8x8_t n = vshrn_n_u16(vreinterpretq_u16_u8(m), 4);

	return vget_lane_u64(vreinterpret_u64_u8(n), 0);
}
#endif

/* Skip field-value bytes (HTAB, SP, VCHAR, obs-text).
 * p, end: the range.  Returns the first CTL (CR, LF, NUL...) or DEL, or end. */
static inline const char *scan_value(const char *p, const char *end)
{
#if defined(HTTP_SSE2)
	const __m128i c1f = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* x <= 0x1f (unsigned), or x == 0x7f; HTAB is sorted out below. */
		__m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, c1f), x),
		                           _mm_cmpeq_epi8(x, del));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);

		if (m) {
			p += __builtin_ctz(m);
			if (*p != '\t')
				return p;
			p++;
			continue;
		}
		p += 16;
	}
#elif defined(HTTP_NEON)
	const uint8x16_t sp = vdupq_n_u8(0x20), del = vdupq_n_u8(0x7f);

	while (end - p >= 16) {
		uint8x16_t x = vld1q_u8((const uint8_t *)p);
		uint64_t m = neon_mask(vorrq_u8(vcltq_u8(x, sp), vceqq_u8(x, del)));

		if (m) {
			p += __builtin_ctzll(m) >> 2;
			if (*p != '\t')
				return p;
			p++;
			continue;
		}
		p += 16;
	}
#endif
	while (p < end && !cls(*p, C_VBAD))
		p++;
	return p;
}

/* Skip request-target bytes (VCHAR).
 * p, end: the range.  Returns the first SP, CTL, DEL or byte >= 0x80, or end. */
static inline const char *scan_target(const char *p, const char *end)
{
#if defined(HTTP_SSE2)
	const __m128i lo = _mm_set1_epi8(0x20), hi = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* Signed compares: bytes >= 0x80 are negative, so fail "> 0x20". */
		__m128i ok = _mm_and_si128(_mm_cmpgt_epi8(x, lo), _mm_cmplt_epi8(x, hi));
		unsigned m = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
#elif defined(HTTP_NEON)
	const uint8x16_t lo = vdupq_n_u8(0x20), hi = vdupq_n_u8(0x7f);

	while (end - p >= 16) {
		uint8x16_t x = vld1q_u8((const uint8_t *)p);
		uint64_t m = neon_mask(vorrq_u8(vcleq_u8(x, lo), vcgeq_u8(x, hi)));

		if (m)
			return p + (__builtin_ctzll(m) >> 2);
		p += 16;
	}
#endif
	while (p < end && !cls(*p, C_TBAD))
		p++;
	return p;
}

/* Skip tchar bytes.  The SIMD loop handles the common letters, digits and
 * '-' and leaves any other byte (':' mostly) to the table.
 * p, end: the range.  Returns the first non-tchar byte, or end. */
static inline const char *scan_token(const char *p, const char *end)
{
#if defined(HTTP_SSE2)
	const __m128i bit5 = _mm_set1_epi8(0x20);
	const __m128i abias = _mm_set1_epi8((char)(0x80 - 'a'));
	const __m128i dbias = _mm_set1_epi8((char)(0x80 - '0'));
	const __m128i alim = _mm_set1_epi8((char)(0x80 + 26));
	const __m128i dlim = _mm_set1_epi8((char)(0x80 + 10));
	const __m128i dash = _mm_set1_epi8('-');

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* (x | 0x20) - 'a' < 26 and x - '0' < 10, as biased signed compares. */
		__m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(x, bit5), abias), alim);
		__m128i digit = _mm_cmplt_epi8(_mm_add_epi8(x, dbias), dlim);
		__m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(x, dash));
		unsigned m = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;

		if (m) {
			p += __builtin_ctz(m);
			break;
		}
		p += 16;
	}
#elif defined(HTTP_NEON)
	const uint8x16_t bit5 = vdupq_n_u8(0x20);

	while (end - p >= 16) {
		uint8x16_t x = vld1q_u8((const uint8_t *)p);
		uint8x16_t alpha = vcleq_u8(vsubq_u8(vorrq_u8(x, bit5), vdupq_n_u8('a')),
		                            vdupq_n_u8(25));
		uint8x16_t digit = vcleq_u8(vsubq_u8(x, vdupq_n_u8('0')), vdupq_n_u8(9));
		uint8x16_t ok = vorrq_u8(vorrq_u8(alpha, digit), vceqq_u8(x, vdupq_n_u8('-')));
		uint64_t m = neon_mask(vmvnq_u8(ok));

		if (m) {
			p += __builtin_ctzll(m) >> 2;
			break;
		}
		p += 16;
	}
#endif
	while (p < end && cls(*p, C_TCHAR))
		p++;
	return p;
}

#if defined(HTTP_SSE2)
/* Classify 16 bytes for probe_line.
 * nf: out; bit i set when byte i is not a letter, digit or '-'.
 * cm: out; bit i set when byte i is ':'.
 * bad: out; bit i set when byte i is a CTL other than HTAB, or DEL. */
static inline void sse_line_masks(__m128i x, uint32_t *nf, uint32_t *cm, uint32_t *bad)
{
	__m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)),
	                                            _mm_set1_epi8((char)(0x80 - 'a'))),
	                               _mm_set1_epi8((char)(0x80 + 26)));
	__m128i digit = _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - '0'))),
	                               _mm_set1_epi8((char)(0x80 + 10)));
	__m128i fast = _mm_or_si128(_mm_or_si128(alpha, digit),
	                            _mm_cmpeq_epi8(x, _mm_set1_epi8('-')));
	__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
	__m128i b = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\t')), ctl),
	                         _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));

	*nf = (uint32_t)_mm_movemask_epi8(fast) ^ 0xffffu;
	*cm = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')));
	*bad = (uint32_t)_mm_movemask_epi8(b);
}
#endif

/* Probe the 16 bytes at p (all inside the window) for the common field line
 * whose name is letters, digits and '-' up to a ':' among them.  One probe
 * does the work of scan_token and the first step of scan_value, which
 * shortens the chain of dependent loads from one line to the next.  (Probing
 * 32 bytes, two vectors, measured slower.)
 * colon: out; offset of the ':'.  stop: out; offset of the first CTL (but
 * HTAB) or DEL after the ':', or 16 when there is none in these bytes.
 * Returns 1 when the line is of that kind, else 0 (nothing is set). */
static inline int probe_line(const char *p, unsigned *colon, unsigned *stop)
{
#if defined(HTTP_SSE2)
	uint32_t nf, cm, bad, c, bm;

	sse_line_masks(_mm_loadu_si128((const __m128i *)(const void *)p), &nf, &cm, &bad);
	c = (uint32_t)__builtin_ctz(nf | 0x10000u);
	if (!((cm >> c) & 1))
		return 0;
	bm = bad >> (c + 1);
	*colon = c;
	*stop = bm ? c + 1 + (unsigned)__builtin_ctz(bm) : 16;
	return 1;
#elif defined(HTTP_NEON)
	uint8x16_t x = vld1q_u8((const uint8_t *)p);
	uint8x16_t alpha = vcleq_u8(vsubq_u8(vorrq_u8(x, vdupq_n_u8(0x20)), vdupq_n_u8('a')),
	                            vdupq_n_u8(25));
	uint8x16_t digit = vcleq_u8(vsubq_u8(x, vdupq_n_u8('0')), vdupq_n_u8(9));
	uint8x16_t fast = vorrq_u8(vorrq_u8(alpha, digit), vceqq_u8(x, vdupq_n_u8('-')));
	uint64_t nf = neon_mask(vmvnq_u8(fast));
	uint64_t cm = neon_mask(vceqq_u8(x, vdupq_n_u8(':')));
	uint8x16_t bad;
	uint64_t bm;
	unsigned c;

	if (!nf)
		return 0;
	c = (unsigned)__builtin_ctzll(nf) >> 2;
	if (!((cm >> (4 * c)) & 1))
		return 0;
	bad = vorrq_u8(vbicq_u8(vcltq_u8(x, vdupq_n_u8(0x20)), vceqq_u8(x, vdupq_n_u8('\t'))),
	               vceqq_u8(x, vdupq_n_u8(0x7f)));
	bm = c < 15 ? neon_mask(bad) >> (4 * (c + 1)) : 0;
	*colon = c;
	*stop = bm ? c + 1 + ((unsigned)__builtin_ctzll(bm) >> 2) : 16;
	return 1;
#else
	(void)p;
	(void)colon;
	(void)stop;
	return 0;
#endif
}

/* ------------------------------------------------------------------------ */
/* Head parser */

/* Private flag bits kept beside the public FLB_HTTP_F_* while parsing. */
#define HF_HOST        0x10000u /* a Host line was seen */
#define HF_TE_CHUNKED  0x20000u /* some Transfer-Encoding element was chunked */
#define HF_PUBLIC      0x0ffffu

/* With last_len below this, every call parses from the start (see top). */
#define HP_QUICK_MIN 64

/* Parser state of one call. */
struct hp {
	const char *buf;          /* start of the caller's buffer */
	const char *end;          /* end of the window: buf + min(len, max_head) */
	struct flb_http_msg *msg; /* the caller's result */
	size_t cap;               /* capacity of msg->headers */
	int capped;               /* the window was cut at max_head */
	int is_request;
	uint32_t flags;           /* FLB_HTTP_F_* and HF_* */
	int64_t cl;               /* Content-Length so far, -1 when none */
};

/* Record error err found at byte at.
 * Returns FLB_HTTP_INVALID. */
__attribute__((noinline, cold))
static int hp_fail(struct hp *h, const char *at, int err)
{
	h->msg->err = err;
	h->msg->err_offset = (uint32_t)(at - h->buf);
	return FLB_HTTP_INVALID;
}

/* The window ended before the parse could decide.
 * Returns FLB_HTTP_INCOMPLETE, or FLB_HTTP_INVALID (E_HEAD_TOO_LARGE) when
 * the window is the max_head bytes and so can never grow. */
__attribute__((noinline))
static int hp_more(struct hp *h)
{
	if (h->capped)
		return hp_fail(h, h->end, FLB_HTTP_E_HEAD_TOO_LARGE);
	return FLB_HTTP_INCOMPLETE;
}

/* A CR or LF at p where the grammar wants something else.  A bare CR or LF
 * is reported as such; a proper CRLF (the line ended too early) as err.
 * Returns FLB_HTTP_INVALID, or FLB_HTTP_INCOMPLETE when the byte after a CR
 * is not there yet. */
__attribute__((noinline, cold))
static int hp_break(struct hp *h, const char *p, int err)
{
	if (*p == '\n')
		return hp_fail(h, p, FLB_HTTP_E_BARE_LF);
	if (p + 1 >= h->end)
		return hp_more(h);
	if (p[1] != '\n')
		return hp_fail(h, p, FLB_HTTP_E_BARE_CR);
	return hp_fail(h, p, err);
}

/* Content-Length value v[0..n) (trimmed): 1*DIGIT below 2^63.
 * out: the value.  Returns 0, or FLB_HTTP_E_CONTENT_LENGTH. */
static int parse_content_length(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;

	if (n == 0)
		return FLB_HTTP_E_CONTENT_LENGTH;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(uint8_t)v[i] - '0';

		if (d > 9)
			return FLB_HTTP_E_CONTENT_LENGTH;
		if (x > (INT64_MAX - (int64_t)d) / 10)
			return FLB_HTTP_E_CONTENT_LENGTH;
		x = x * 10 + (int64_t)d;
	}
	*out = x;
	return 0;
}

/* Skip a quoted-string starting at the DQUOTE at p, without commas (see the
 * Transfer-Encoding choice at the top).
 * p, e: the range.  Returns the byte after the closing DQUOTE, or NULL. */
static const char *skip_quoted_nocomma(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		char c = *p;

		if (c == '"')
			return p + 1;
		if (c == ',')
			return NULL;
		if (c == '\\') {
			if (++p >= e || *p == ',')
				return NULL;
			c = *p;
		}
		/* qdtext and quoted-pair: HTAB, SP, VCHAR, obs-text (the value
		 * has already been checked for CTLs, which leaves only these). */
		if (cls(c, C_VBAD))
			return NULL;
	}
	return NULL;
}

/* One Transfer-Encoding field value v[0..n) (trimmed): update the chunked
 * flags of h.  at: where to report errors.
 * Returns 0, or FLB_HTTP_INVALID with E_TE_SYNTAX / E_TE_CHUNKED_TWICE. */
static int hp_transfer_encoding(struct hp *h, const char *v, size_t n, const char *at)
{
	const char *p = v, *e = v + n;

	for (;;) {
		/* transfer-coding = token *( OWS ";" OWS token BWS "=" BWS value ) */
		const char *tok = p;
		int chunked;

		while (p < e && cls(*p, C_TCHAR))
			p++;
		if (p == tok)
			return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
		chunked = p - tok == 7 && lc_eq(tok, "chunked", 7);
		for (;;) {
			const char *q = p;

			while (q < e && is_ws(*q))
				q++;
			if (q == e || *q != ';') {
				p = q;
				break;
			}
			for (q++; q < e && is_ws(*q); q++)
				;
			p = q;
			while (q < e && cls(*q, C_TCHAR))
				q++;
			if (q == p)
				return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
			while (q < e && is_ws(*q))
				q++;
			if (q == e || *q != '=')
				return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
			for (q++; q < e && is_ws(*q); q++)
				;
			if (q < e && *q == '"') {
				q = skip_quoted_nocomma(q, e);
				if (!q)
					return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
			} else {
				p = q;
				while (q < e && cls(*q, C_TCHAR))
					q++;
				if (q == p)
					return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
			}
			p = q;
		}
		/* p is past the element and its trailing OWS: the element must end
		 * here before it counts, so a malformed one is a syntax error. */
		if (p != e && *p != ',')
			return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
		if (chunked) {
			if (h->flags & HF_TE_CHUNKED)
				return hp_fail(h, at, FLB_HTTP_E_TE_CHUNKED_TWICE);
			h->flags |= HF_TE_CHUNKED | FLB_HTTP_F_CHUNKED;
		} else {
			h->flags &= ~FLB_HTTP_F_CHUNKED;
		}
		if (p == e)
			return 0;
		for (p++; p < e && is_ws(*p); p++)
			;
		if (p == e)
			return hp_fail(h, at, FLB_HTTP_E_TE_SYNTAX);
	}
}

/* One Connection field value v[0..n): set the CONN_* flags of h. */
static void hp_connection(struct hp *h, const char *v, size_t n)
{
	const char *p = v, *e = v + n;

	while (p < e) {
		const char *tok, *te;

		while (p < e && (is_ws(*p) || *p == ','))
			p++;
		tok = p;
		while (p < e && *p != ',')
			p++;
		te = p;
		while (te > tok && is_ws(te[-1]))
			te--;
		switch (te - tok) {
		case 5:
			if (lc_eq(tok, "close", 5))
				h->flags |= FLB_HTTP_F_CONN_CLOSE;
			break;
		case 7:
			if (lc_eq(tok, "upgrade", 7))
				h->flags |= FLB_HTTP_F_CONN_UPGRADE;
			break;
		case 10:
			if (lc_eq(tok, "keep-alive", 10))
				h->flags |= FLB_HTTP_F_CONN_KEEPALIVE;
			break;
		}
	}
}

/* Field name lengths that may carry framing: 4 host, 6 expect, 7 upgrade,
 * 10 connection, 14 content-length, 17 transfer-encoding. */
#define SPECIAL_LENS ((1u << 4) | (1u << 6) | (1u << 7) | (1u << 10) | (1u << 14) | (1u << 17))

/* Act on a field line whose name may be one with framing meaning.
 * idx: its index in msg->headers; name/nlen, v/vlen: the field.
 * Returns 0, or FLB_HTTP_INVALID with the error recorded. */
static int hp_special(struct hp *h, size_t idx, const char *name, size_t nlen,
                      const char *v, size_t vlen)
{
	int64_t cl;
	int err;

	switch (nlen) {
	case 4:
		if ((ld4(name) | LC4) != ld4("host"))
			return 0;
		if (h->flags & HF_HOST)
			return hp_fail(h, name, FLB_HTTP_E_HOST);
		h->flags |= HF_HOST;
		h->msg->host_index = (int)idx;
		return 0;
	case 6:
		if ((ld4(name) | LC4) != ld4("expe") || (ld4(name + 2) | LC4) != ld4("pect"))
			return 0;
		if (vlen == 12 && lc_eq(v, "100-continue", 12))
			h->flags |= FLB_HTTP_F_EXPECT_CONTINUE;
		return 0;
	case 7:
		if ((ld4(name) | LC4) != ld4("upgr") || (ld4(name + 3) | LC4) != ld4("rade"))
			return 0;
		h->flags |= FLB_HTTP_F_HAS_UPGRADE;
		return 0;
	case 10:
		if ((ld8(name) | LC8) != ld8("connecti") || (ld4(name + 6) | LC4) != ld4("tion"))
			return 0;
		hp_connection(h, v, vlen);
		return 0;
	case 14:
		if ((ld8(name) | LC8) != ld8("content-") || (ld8(name + 6) | LC8) != ld8("t-length"))
			return 0;
		err = parse_content_length(v, vlen, &cl);
		if (err)
			return hp_fail(h, name, err);
		if ((h->flags & FLB_HTTP_F_HAS_CL) && cl != h->cl)
			return hp_fail(h, name, FLB_HTTP_E_CONTENT_LENGTH_CONFLICT);
		if (h->flags & FLB_HTTP_F_HAS_TE)
			return hp_fail(h, name, FLB_HTTP_E_CL_AND_TE);
		h->cl = cl;
		h->flags |= FLB_HTTP_F_HAS_CL;
		return 0;
	case 17:
		if ((ld8(name) | LC8) != ld8("transfer") || (ld8(name + 8) | LC8) != ld8("-encodin") ||
		    (name[16] | 0x20) != 'g')
			return 0;
		if (hp_transfer_encoding(h, v, vlen, name) < 0)
			return FLB_HTTP_INVALID;
		if (h->flags & FLB_HTTP_F_HAS_CL)
			return hp_fail(h, name, FLB_HTTP_E_CL_AND_TE);
		h->flags |= FLB_HTTP_F_HAS_TE;
		return 0;
	}
	return 0;
}

/* A field line that cannot start a name at p (p < end).
 * Returns FLB_HTTP_INVALID (or INCOMPLETE for a CR at the window end). */
__attribute__((noinline, cold))
static int hp_bad_line_start(struct hp *h, const char *p)
{
	if (is_ws(*p))
		return hp_fail(h, p, FLB_HTTP_E_OBS_FOLD);
	if (*p == '\n')
		return hp_fail(h, p, FLB_HTTP_E_BARE_LF);
	return hp_fail(h, p, FLB_HTTP_E_HEADER_NAME);
}

/* A field name ended at p (p < end) by something other than ':'.
 * Returns FLB_HTTP_INVALID, or FLB_HTTP_INCOMPLETE when whitespace runs to
 * the end of the window and the byte deciding the code is not there. */
__attribute__((noinline, cold))
static int hp_bad_name_end(struct hp *h, const char *p)
{
	const char *q = p;

	if (is_ws(*p)) {
		while (q < h->end && is_ws(*q))
			q++;
		if (q >= h->end)
			return hp_more(h);
		return hp_fail(h, p, *q == ':' ? FLB_HTTP_E_HEADER_NAME_SPACE
		                                : FLB_HTTP_E_HEADER_NAME);
	}
	if (*p == '\r' || *p == '\n')
		return hp_break(h, p, FLB_HTTP_E_HEADER_NAME);
	return hp_fail(h, p, FLB_HTTP_E_HEADER_NAME);
}

/* A field value ended at p (p < end) by a byte other than CR.
 * Returns FLB_HTTP_INVALID. */
__attribute__((noinline, cold))
static int hp_bad_value(struct hp *h, const char *p)
{
	if (*p == '\n')
		return hp_fail(h, p, FLB_HTTP_E_BARE_LF);
	return hp_fail(h, p, FLB_HTTP_E_HEADER_VALUE);
}

/* The head ended: the empty line's CRLF is at eol.  Run the checks that need
 * the whole head and fill in msg.
 * n: header count.  Returns the head length, or FLB_HTTP_INVALID. */
static int hp_finish(struct hp *h, const char *eol, size_t n)
{
	struct flb_http_msg *msg = h->msg;
	uint32_t f = h->flags;

	if (h->is_request) {
		if ((f & FLB_HTTP_F_HAS_TE) && !(f & FLB_HTTP_F_CHUNKED))
			return hp_fail(h, eol, FLB_HTTP_E_TE_NOT_CHUNKED);
		if (msg->minor_version == 1 && !(f & HF_HOST))
			return hp_fail(h, eol, FLB_HTTP_E_HOST);
	}
	/* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
	 * framing; the connection must close after it. */
	if (!(f & FLB_HTTP_F_CONN_CLOSE) &&
	    (msg->minor_version == 1 || (f & FLB_HTTP_F_CONN_KEEPALIVE)) &&
	    !(msg->minor_version == 0 && (f & FLB_HTTP_F_HAS_TE)))
		f |= FLB_HTTP_F_KEEP_ALIVE;
	msg->flags = f & HF_PUBLIC;
	msg->content_length = h->cl;
	msg->num_headers = n;
	return (int)(eol + 2 - h->buf);
}

/* Parse the field lines from p (the start of the line after the start line)
 * through the empty line.  Returns the head length, FLB_HTTP_INCOMPLETE or
 * FLB_HTTP_INVALID. */
static inline int hp_fields(struct hp *h, const char *p)
{
	const char *end = h->end;
	struct flb_http_header *hd = h->msg->headers;
	size_t n = 0;

	for (;;) {
		const char *name, *value, *ve;
		size_t nlen;
		unsigned colon, stop;

		if (flb_unlikely(p >= end))
			return hp_more(h);
		name = p;
		if (flb_unlikely(!cls(*p, C_TCHAR))) {
			if (*p != '\r')
				return hp_bad_line_start(h, p);
			if (p + 1 >= end)
				return hp_more(h);
			if (p[1] != '\n')
				return hp_fail(h, p, FLB_HTTP_E_BARE_CR);
			return hp_finish(h, p, n);
		}
		if (flb_likely(end - p >= 16 && probe_line(p, &colon, &stop))) {
			nlen = colon;
			value = p + colon + 1;
			p = stop < 16 ? p + stop : scan_value(p + 16, end);
		} else {
			p = scan_token(p + 1, end);
			if (flb_unlikely(p >= end))
				return hp_more(h);
			if (flb_unlikely(*p != ':'))
				return hp_bad_name_end(h, p);
			nlen = (size_t)(p - name);
			value = p + 1;
			p = scan_value(value, end);
		}
		/* p: the first CTL or DEL of the value (its CR, normally), or end. */
		while (value < p && is_ws(*value))
			value++;
		if (flb_unlikely(p + 1 >= end))
			return p >= end || *p == '\r' ? hp_more(h) : hp_bad_value(h, p);
		if (flb_unlikely(*p != '\r'))
			return hp_bad_value(h, p);
		if (flb_unlikely(p[1] != '\n'))
			return hp_fail(h, p, FLB_HTTP_E_BARE_CR);
		if (flb_unlikely(n == h->cap))
			return hp_fail(h, name, FLB_HTTP_E_TOO_MANY_HEADERS);
		ve = p;
		while (ve > value && is_ws(ve[-1]))
			ve--;
		hd[n].name = name;
		hd[n].value = value;
		hd[n].name_len = (uint32_t)nlen;
		hd[n].value_len = (uint32_t)(ve - value);
		if (nlen < 32 && ((SPECIAL_LENS >> nlen) & 1) &&
		    hp_special(h, n, name, nlen, value, (size_t)(ve - value)) < 0)
			return FLB_HTTP_INVALID;
		n++;
		p += 2;
	}
}

/* Whether the bytes buf[last_len..len) can be skipped (see "Incremental
 * calls" at the top): no LF, no CTL but HTAB and CR, no DEL, no CR followed
 * by a byte other than LF (counting a CR at last_len - 1).
 * Requires 0 < last_len < len.  Returns 1 when a parse would still be
 * INCOMPLETE or report an error only the end of a line decides. */
static int hp_quick_incomplete(const char *buf, size_t last_len, size_t len)
{
	if (buf[last_len - 1] == '\r' && buf[last_len] != '\n')
		return 0;
	for (size_t i = last_len; i < len; i++) {
		char c = buf[i];

		if (flb_unlikely(cls(c, C_VBAD))) {
			if (c != '\r')
				return 0;
			if (i + 1 < len && buf[i + 1] != '\n')
				return 0;
		}
	}
	return 1;
}

/* Set up h and msg for a parse of buf[0..len).
 * Returns 1 when the quick check already answered INCOMPLETE, else 0. */
static inline int hp_start(struct hp *h, const char *buf, size_t len, size_t last_len,
                           size_t max_head, struct flb_http_msg *msg, int is_request)
{
	if (max_head == 0)
		max_head = FLB_HTTP_DEFAULT_MAX_HEAD;
	if (max_head > INT_MAX)
		max_head = INT_MAX;
	msg->method = NULL;
	msg->target = NULL;
	msg->method_len = 0;
	msg->target_len = 0;
	msg->reason = NULL;
	msg->reason_len = 0;
	msg->status = 0;
	msg->minor_version = 0;
	msg->content_length = -1;
	msg->flags = 0;
	msg->host_index = -1;
	msg->err = FLB_HTTP_E_NONE;
	msg->err_offset = 0;
	if (last_len >= HP_QUICK_MIN && last_len < len && len < max_head &&
	    hp_quick_incomplete(buf, last_len, len))
		return 1;
	h->buf = buf;
	h->capped = len >= max_head;
	h->end = buf + (h->capped ? max_head : len);
	h->msg = msg;
	h->cap = msg->num_headers;
	h->is_request = is_request;
	h->flags = 0;
	h->cl = -1;
	return 0;
}

/* Check "HTTP/1.0" or "HTTP/1.1" at p, as far as the window goes.
 * Returns 1 (matched, msg->minor_version set), 0 (mismatch), or
 * FLB_HTTP_INCOMPLETE (a prefix of a version so far). */
static inline int hp_version(struct hp *h, const char *p)
{
	size_t avail = (size_t)(h->end - p);

	if (flb_likely(avail >= 8)) {
		uint64_t v = ld8(p);

		if (v == ld8("HTTP/1.1")) {
			h->msg->minor_version = 1;
			return 1;
		}
		if (v == ld8("HTTP/1.0")) {
			h->msg->minor_version = 0;
			return 1;
		}
		return 0;
	}
	if (memcmp(p, "HTTP/1.", avail < 7 ? avail : 7) != 0)
		return 0;
	return FLB_HTTP_INCOMPLETE;
}

/* The request version at ver does not match (ver < end).  Decide between a
 * request line with too many or too few parts and a bad version by the rest
 * of the line.  Returns FLB_HTTP_INVALID or FLB_HTTP_INCOMPLETE. */
__attribute__((noinline, cold))
static int hp_bad_request_version(struct hp *h, const char *ver)
{
	for (const char *q = ver; q < h->end; q++) {
		if (*q == ' ')
			return hp_fail(h, q, FLB_HTTP_E_REQUEST_LINE);
		if (*q == '\n')
			return hp_fail(h, q, FLB_HTTP_E_BARE_LF);
		if (*q == '\r') {
			if (q + 1 >= h->end)
				return hp_more(h);
			if (q[1] != '\n')
				return hp_fail(h, q, FLB_HTTP_E_BARE_CR);
			return hp_fail(h, ver, q == ver ? FLB_HTTP_E_REQUEST_LINE
			                                : FLB_HTTP_E_VERSION);
		}
	}
	return hp_more(h);
}

/* The method ended at p (p < end) with something other than its SP, or the
 * line starts with SP.  Returns FLB_HTTP_INVALID or FLB_HTTP_INCOMPLETE. */
__attribute__((noinline, cold))
static int hp_bad_method(struct hp *h, const char *p)
{
	if (*p == '\r' || *p == '\n')
		return hp_break(h, p, FLB_HTTP_E_REQUEST_LINE);
	return hp_fail(h, p, FLB_HTTP_E_METHOD);
}

/* The target ended at p (p < end) with something other than its SP, or is
 * empty.  Returns FLB_HTTP_INVALID or FLB_HTTP_INCOMPLETE. */
__attribute__((noinline, cold))
static int hp_bad_target(struct hp *h, const char *p)
{
	if (*p == ' ')
		return hp_fail(h, p, FLB_HTTP_E_REQUEST_LINE);
	if (*p == '\r' || *p == '\n')
		return hp_break(h, p, FLB_HTTP_E_REQUEST_LINE);
	return hp_fail(h, p, FLB_HTTP_E_TARGET);
}

/* The request line's version is not followed by CRLF at p: a fourth part
 * (SP), a stray CR or LF, or more version bytes.
 * Returns FLB_HTTP_INVALID or FLB_HTTP_INCOMPLETE. */
__attribute__((noinline, cold))
static int hp_bad_line_end(struct hp *h, const char *p)
{
	if (p >= h->end)
		return hp_more(h);
	if (*p == ' ')
		return hp_fail(h, p, FLB_HTTP_E_REQUEST_LINE);
	if (*p == '\r' || *p == '\n')
		return hp_break(h, p, FLB_HTTP_E_VERSION);
	return hp_fail(h, p, FLB_HTTP_E_VERSION);
}

/* See http1.h.  msg->num_headers is only overwritten (with the count) when
 * the head is complete, so a caller may call again after INCOMPLETE without
 * resetting it. */
int flb_http_parse_request(const char *buf, size_t len, size_t last_len,
                           size_t max_head, struct flb_http_msg *msg)
{
	struct hp h;
	const char *p, *end, *target;
	int r;

	if (hp_start(&h, buf, len, last_len, max_head, msg, 1))
		return FLB_HTTP_INCOMPLETE;
	p = buf;
	end = h.end;

	/* Empty lines before the request line (RFC 9112 2.2). */
	for (;;) {
		if (p >= end)
			return hp_more(&h);
		if (*p != '\r')
			break;
		if (p + 1 >= end)
			return hp_more(&h);
		if (p[1] != '\n')
			return hp_fail(&h, p, FLB_HTTP_E_BARE_CR);
		p += 2;
	}
	if (*p == '\n')
		return hp_fail(&h, p, FLB_HTTP_E_BARE_LF);

	/* method SP */
	msg->method = p;
	if (end - p >= 4 && ld4(p) == ld4("GET "))
		p += 3;
	else
		while (p < end && cls(*p, C_TCHAR))
			p++;
	if (flb_unlikely(p >= end))
		return hp_more(&h);
	if (flb_unlikely(*p != ' ' || p == msg->method))
		return hp_bad_method(&h, p);
	msg->method_len = (uint32_t)(p - msg->method);

	/* target SP */
	target = ++p;
	p = scan_target(p, end);
	if (flb_unlikely(p >= end))
		return hp_more(&h);
	if (flb_unlikely(*p != ' ' || p == target))
		return hp_bad_target(&h, p);
	msg->target = target;
	msg->target_len = (uint32_t)(p - target);

	/* HTTP-version CRLF */
	p++;
	r = hp_version(&h, p);
	if (flb_unlikely(r != 1)) {
		if (r == 0)
			return hp_bad_request_version(&h, p);
		return hp_more(&h);
	}
	p += 8;
	if (flb_unlikely(end - p < 2 || p[0] != '\r' || p[1] != '\n'))
		return hp_bad_line_end(&h, p);
	return hp_fields(&h, p + 2);
}

/* See http1.h; num_headers as for flb_http_parse_request. */
int flb_http_parse_response(const char *buf, size_t len, size_t last_len,
                            size_t max_head, struct flb_http_msg *msg)
{
	struct hp h;
	const char *p, *end;
	int r;

	if (hp_start(&h, buf, len, last_len, max_head, msg, 0))
		return FLB_HTTP_INCOMPLETE;
	p = buf;
	end = h.end;
	if (p >= end)
		return hp_more(&h);

	/* HTTP-version SP */
	r = hp_version(&h, p);
	if (flb_unlikely(r != 1)) {
		if (r == 0)
			return *p == '\r' || *p == '\n' ? hp_break(&h, p, FLB_HTTP_E_VERSION)
			                               : hp_fail(&h, p, FLB_HTTP_E_VERSION);
		return hp_more(&h);
	}
	p += 8;
	if (flb_unlikely(p >= end))
		return hp_more(&h);
	if (flb_unlikely(*p != ' ')) {
		if (*p == '\r' || *p == '\n')
			return hp_break(&h, p, FLB_HTTP_E_VERSION);
		return hp_fail(&h, p, FLB_HTTP_E_VERSION);
	}
	p++;

	/* 3DIGIT, 100-999 */
	for (int i = 0; i < 3; i++) {
		if (flb_unlikely(p + i >= end))
			return hp_more(&h);
		if (flb_unlikely((unsigned)(p[i] - '0') > 9 || (i == 0 && p[i] == '0'))) {
			if (p[i] == '\r' || p[i] == '\n')
				return hp_break(&h, p + i, FLB_HTTP_E_STATUS);
			return hp_fail(&h, p + i, FLB_HTTP_E_STATUS);
		}
	}
	msg->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	p += 3;

	/* [ SP reason-phrase ] CRLF */
	if (flb_unlikely(p >= end))
		return hp_more(&h);
	if (*p == ' ') {
		p++;
		msg->reason = p;
		p = scan_value(p, end);
		if (flb_unlikely(p >= end))
			return hp_more(&h);
		if (flb_unlikely(*p != '\r'))
			return hp_fail(&h, p, *p == '\n' ? FLB_HTTP_E_BARE_LF : FLB_HTTP_E_REASON);
		msg->reason_len = (uint32_t)(p - msg->reason);
	} else {
		msg->reason = p;
		if (*p != '\r')
			return *p == '\n' ? hp_fail(&h, p, FLB_HTTP_E_BARE_LF)
			                  : hp_fail(&h, p, FLB_HTTP_E_STATUS);
	}
	if (flb_unlikely(p + 1 >= end))
		return hp_more(&h);
	if (flb_unlikely(p[1] != '\n'))
		return hp_fail(&h, p, FLB_HTTP_E_BARE_CR);
	return hp_fields(&h, p + 2);
}

/* See http1.h. */
const char *flb_http_strerror(int err)
{
	static const char *const names[FLB_HTTP_E__COUNT] = {
		[FLB_HTTP_E_NONE] = "no error",
		[FLB_HTTP_E_METHOD] = "invalid method",
		[FLB_HTTP_E_TARGET] = "invalid byte in request target",
		[FLB_HTTP_E_REQUEST_LINE] = "malformed request line",
		[FLB_HTTP_E_VERSION] = "unsupported or malformed HTTP version",
		[FLB_HTTP_E_STATUS] = "invalid status code",
		[FLB_HTTP_E_REASON] = "control character in reason phrase",
		[FLB_HTTP_E_HEADER_NAME] = "invalid header field name",
		[FLB_HTTP_E_HEADER_NAME_SPACE] = "whitespace between header field name and colon",
		[FLB_HTTP_E_HEADER_VALUE] = "control character in header field value",
		[FLB_HTTP_E_OBS_FOLD] = "obsolete line folding",
		[FLB_HTTP_E_BARE_CR] = "CR not followed by LF",
		[FLB_HTTP_E_BARE_LF] = "LF not preceded by CR",
		[FLB_HTTP_E_TOO_MANY_HEADERS] = "too many header fields",
		[FLB_HTTP_E_HEAD_TOO_LARGE] = "message head too large",
		[FLB_HTTP_E_CONTENT_LENGTH] = "invalid Content-Length",
		[FLB_HTTP_E_CONTENT_LENGTH_CONFLICT] = "conflicting Content-Length values",
		[FLB_HTTP_E_CL_AND_TE] = "both Content-Length and Transfer-Encoding",
		[FLB_HTTP_E_TE_NOT_CHUNKED] = "final transfer coding is not chunked",
		[FLB_HTTP_E_TE_CHUNKED_TWICE] = "chunked applied more than once",
		[FLB_HTTP_E_TE_SYNTAX] = "malformed Transfer-Encoding",
		[FLB_HTTP_E_HOST] = "missing or repeated Host",
		[FLB_HTTP_E_CHUNK_SIZE] = "invalid chunk size",
		[FLB_HTTP_E_CHUNK_EXT] = "malformed chunk extension",
		[FLB_HTTP_E_CHUNK_LINE_TOO_LONG] = "chunk size line too long",
		[FLB_HTTP_E_CHUNK_DATA] = "chunk data not followed by CRLF",
		[FLB_HTTP_E_TRAILER] = "malformed trailer field",
		[FLB_HTTP_E_TRAILER_TOO_LARGE] = "trailer section too large",
	};

	if (err < 0 || err >= FLB_HTTP_E__COUNT || !names[err])
		return "unknown error";
	return names[err];
}

/* ------------------------------------------------------------------------ */
/* Chunked decoder */

/* Decoder states (flb_http_chunked.state).  The size line is
 *   chunk-size [ chunk-ext ] CRLF
 *   chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
 * and after the last chunk come trailer field lines and an empty line. */
enum {
	CH_SIZE0,       /* size line start: want a hex digit */
	CH_SIZE,        /* in the size: hex, ';', BWS or CR */
	CH_EXT_WS,      /* BWS after the size or an ext value: BWS or ';' */
	CH_EXT_SEMI,    /* after ';': BWS or the ext-name */
	CH_EXT_NAME,    /* in an ext-name: tchar, BWS, '=', ';' or CR */
	CH_EXT_NAME_WS, /* BWS after an ext-name: BWS, '=' or ';' */
	CH_EXT_EQ,      /* after '=': BWS, token or DQUOTE */
	CH_EXT_TOKEN,   /* in a token value: tchar, BWS, ';' or CR */
	CH_EXT_QS,      /* in a quoted-string */
	CH_EXT_QP,      /* after a backslash in a quoted-string */
	CH_EXT_QEND,    /* after the closing DQUOTE: BWS, ';' or CR */
	CH_SIZE_LF,     /* after the size line's CR; sub = the state before it */
	CH_DATA,        /* in chunk data, `remaining` bytes to go */
	CH_DATA_CR,     /* after the data: want CR */
	CH_DATA_LF,     /* want LF */
	CH_TR_START,    /* start of a trailer line or of the final CRLF */
	CH_TR_NAME,     /* in a trailer field name */
	CH_TR_VALUE,    /* in a trailer field value */
	CH_TR_LF,       /* after a trailer line's CR */
	CH_END_LF,      /* after the final CR */
	CH_DONE,
	CH_ERROR,
};

#define CH_DEFAULT_MAX_LINE    4096
#define CH_DEFAULT_MAX_TRAILER (64 * 1024)

/* See http1.h. */
void flb_http_chunked_init(struct flb_http_chunked *d)
{
	memset(d, 0, sizeof(*d));
	d->state = CH_SIZE0;
	d->max_line = CH_DEFAULT_MAX_LINE;
	d->max_trailer = CH_DEFAULT_MAX_TRAILER;
}

/* Put d in the error state with err.  Returns FLB_HTTP_INVALID. */
__attribute__((noinline, cold))
static long ch_fail(struct flb_http_chunked *d, int err)
{
	d->err = err;
	d->state = CH_ERROR;
	return FLB_HTTP_INVALID;
}

/* Value of hex digit c.  Returns 0-15, or -1 when c is not HEXDIG. */
static inline int hexval(uint8_t c)
{
	if ((unsigned)(c - '0') < 10)
		return c - '0';
	c |= 0x20;
	if ((unsigned)(c - 'a') < 6)
		return c - 'a' + 10;
	return -1;
}

/* Run the decoder over in[0..len).
 * out: where to put data bytes (may equal in: data only moves down), or NULL
 *   to only track the framing.
 * wlen: out; how many data bytes were written to out.
 * Returns how many bytes of in were consumed (len, unless the body ended
 * within them: then d->done is set and the rest is not part of the body), or
 * FLB_HTTP_INVALID with d->err set. */
static long ch_run(struct flb_http_chunked *d, const char *in, size_t len, char *out,
                   size_t *wlen)
{
	uint32_t st = d->state;
	size_t r = 0, w = 0;
	int err = 0;

	while (r < len) {
		uint8_t c;
		int hv;

		if (st == CH_DATA) {
			size_t n = len - r;

			if (d->remaining < n)
				n = (size_t)d->remaining;
			if (out && out + w != in + r)
				memmove(out + w, in + r, n);
			w += n;
			r += n;
			d->remaining -= n;
			if (d->remaining == 0)
				st = CH_DATA_CR;
			continue;
		}
		c = (uint8_t)in[r++];
		if (st < CH_SIZE_LF && c != '\r' && ++d->line_len > d->max_line) {
			err = FLB_HTTP_E_CHUNK_LINE_TOO_LONG;
			goto fail;
		}
		if (st >= CH_TR_START && st <= CH_TR_LF && (st != CH_TR_START || c != '\r') &&
		    ++d->trailer_bytes > d->max_trailer) {
			err = FLB_HTTP_E_TRAILER_TOO_LARGE;
			goto fail;
		}
		switch (st) {
		case CH_SIZE0:
			hv = hexval(c);
			if (hv < 0) {
				err = FLB_HTTP_E_CHUNK_SIZE;
				goto fail;
			}
			d->remaining = (uint64_t)hv;
			st = CH_SIZE;
			break;
		case CH_SIZE:
			hv = hexval(c);
			if (hv >= 0) {
				if (d->remaining >> 59) { /* would reach 2^63 */
					err = FLB_HTTP_E_CHUNK_SIZE;
					goto fail;
				}
				d->remaining = d->remaining << 4 | (uint64_t)hv;
			} else if (c == '\r') {
				d->sub = st;
				st = CH_SIZE_LF;
			} else if (c == ';') {
				st = CH_EXT_SEMI;
			} else if (is_ws((char)c)) {
				st = CH_EXT_WS;
			} else {
				err = c == '\n' ? FLB_HTTP_E_CHUNK_EXT : FLB_HTTP_E_CHUNK_SIZE;
				goto fail;
			}
			break;
		case CH_EXT_WS:
			if (c == ';')
				st = CH_EXT_SEMI;
			else if (!is_ws((char)c))
				goto bad_ext;
			break;
		case CH_EXT_SEMI:
			if (cls((char)c, C_TCHAR))
				st = CH_EXT_NAME;
			else if (!is_ws((char)c))
				goto bad_ext;
			break;
		case CH_EXT_NAME:
			if (cls((char)c, C_TCHAR))
				break;
			if (c == '\r') {
				d->sub = st;
				st = CH_SIZE_LF;
			} else if (c == '=') {
				st = CH_EXT_EQ;
			} else if (c == ';') {
				st = CH_EXT_SEMI;
			} else if (is_ws((char)c)) {
				st = CH_EXT_NAME_WS;
			} else {
				goto bad_ext;
			}
			break;
		case CH_EXT_NAME_WS:
			if (c == '=')
				st = CH_EXT_EQ;
			else if (c == ';')
				st = CH_EXT_SEMI;
			else if (!is_ws((char)c))
				goto bad_ext;
			break;
		case CH_EXT_EQ:
			if (cls((char)c, C_TCHAR))
				st = CH_EXT_TOKEN;
			else if (c == '"')
				st = CH_EXT_QS;
			else if (!is_ws((char)c))
				goto bad_ext;
			break;
		case CH_EXT_TOKEN:
			if (cls((char)c, C_TCHAR))
				break;
			if (c == '\r') {
				d->sub = st;
				st = CH_SIZE_LF;
			} else if (c == ';') {
				st = CH_EXT_SEMI;
			} else if (is_ws((char)c)) {
				st = CH_EXT_WS;
			} else {
				goto bad_ext;
			}
			break;
		case CH_EXT_QS:
			if (c == '"')
				st = CH_EXT_QEND;
			else if (c == '\\')
				st = CH_EXT_QP;
			else if (cls((char)c, C_VBAD))
				goto bad_ext;
			break;
		case CH_EXT_QP:
			if (cls((char)c, C_VBAD))
				goto bad_ext;
			st = CH_EXT_QS;
			break;
		case CH_EXT_QEND:
			if (c == '\r') {
				d->sub = st;
				st = CH_SIZE_LF;
			} else if (c == ';') {
				st = CH_EXT_SEMI;
			} else if (is_ws((char)c)) {
				st = CH_EXT_WS;
			} else {
				goto bad_ext;
			}
			break;
		case CH_SIZE_LF:
			if (c != '\n') {
				/* The CR was an ordinary, and bad, byte of the line. */
				err = d->sub == CH_SIZE ? FLB_HTTP_E_CHUNK_SIZE : FLB_HTTP_E_CHUNK_EXT;
				goto fail;
			}
			d->sub = 0;
			if (d->remaining) {
				st = CH_DATA;
			} else {
				d->trailer_bytes = 0;
				st = CH_TR_START;
			}
			break;
		case CH_DATA_CR:
			if (c != '\r') {
				err = FLB_HTTP_E_CHUNK_DATA;
				goto fail;
			}
			st = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n') {
				err = FLB_HTTP_E_CHUNK_DATA;
				goto fail;
			}
			d->line_len = 0;
			st = CH_SIZE0;
			break;
		case CH_TR_START:
			if (c == '\r')
				st = CH_END_LF;
			else if (cls((char)c, C_TCHAR))
				st = CH_TR_NAME;
			else
				goto bad_trailer;
			break;
		case CH_TR_NAME:
			if (c == ':')
				st = CH_TR_VALUE;
			else if (!cls((char)c, C_TCHAR))
				goto bad_trailer;
			break;
		case CH_TR_VALUE:
			if (c == '\r')
				st = CH_TR_LF;
			else if (cls((char)c, C_VBAD))
				goto bad_trailer;
			break;
		case CH_TR_LF:
			if (c != '\n')
				goto bad_trailer;
			st = CH_TR_START;
			break;
		case CH_END_LF:
			if (c != '\n')
				goto bad_trailer;
			d->state = CH_DONE;
			d->done = 1;
			*wlen = w;
			return (long)r;
		default: /* CH_DONE, CH_ERROR: not reached, the callers check */
			err = d->err ? d->err : FLB_HTTP_E_CHUNK_SIZE;
			goto fail;
		}
		continue;
bad_ext:
		/* A bare LF in the size line ends it early, like any stray byte. */
		err = FLB_HTTP_E_CHUNK_EXT;
		goto fail;
bad_trailer:
		err = FLB_HTTP_E_TRAILER;
		goto fail;
	}
	d->state = st;
	*wlen = w;
	return (long)r;
fail:
	*wlen = w;
	return ch_fail(d, err);
}

/* See http1.h.  On FLB_HTTP_INVALID, *len is the count of data bytes decoded
 * before the error.  Once done, further calls leave the bytes in place, set
 * *len = 0 and return the count of bytes passed (all of them follow the body). */
long flb_http_chunked_decode(struct flb_http_chunked *d, char *buf, size_t *len)
{
	size_t n = *len, w = 0;
	long r;

	if (d->state == CH_ERROR)
		return FLB_HTTP_INVALID;
	if (d->done) {
		*len = 0;
		return (long)n;
	}
	r = ch_run(d, buf, n, buf, &w);
	*len = w;
	if (r < 0)
		return FLB_HTTP_INVALID;
	if (!d->done)
		return FLB_HTTP_INCOMPLETE;
	if ((size_t)r < n && w != (size_t)r)
		memmove(buf + w, buf + r, n - (size_t)r);
	return (long)(n - (size_t)r);
}

/* See http1.h.  Once done, further calls return 0. */
long flb_http_chunked_scan(struct flb_http_chunked *d, const char *buf, size_t len)
{
	size_t w;

	if (d->state == CH_ERROR)
		return FLB_HTTP_INVALID;
	if (d->done)
		return 0;
	return ch_run(d, buf, len, NULL, &w);
}
