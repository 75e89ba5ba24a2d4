/* http1-t.h: types of the HTTP/1.1 message-head parser and chunked decoder.
 *
 * The parser is stateless and zero-copy, in the manner of picohttpparser:
 * every slice points into the caller's buffer, and the caller supplies the
 * header array.  Strict by RFC 9110/9112, since a proxy is where request
 * smuggling happens.  Functions are in http1.h. */
#ifndef FLB_HTTP1_T_H
#define FLB_HTTP1_T_H

#include <stddef.h>
#include <stdint.h>

/* Return values shared by the parse and decode functions. */
#define FLB_HTTP_INVALID    (-1)   /* the input is malformed; msg->err says why */
#define FLB_HTTP_INCOMPLETE (-2)   /* need more bytes */

#define FLB_HTTP_DEFAULT_MAX_HEAD (64 * 1024)

/* Why a message was rejected.  flb_http_strerror() names each one. */
enum flb_http_err {
	FLB_HTTP_E_NONE = 0,
	FLB_HTTP_E_METHOD,            /* empty method, or a byte outside tchar */
	FLB_HTTP_E_TARGET,            /* empty target, or a space/CTL/non-ASCII byte in it */
	FLB_HTTP_E_REQUEST_LINE,      /* not exactly "method SP target SP version" */
	FLB_HTTP_E_VERSION,           /* not HTTP/1.0 or HTTP/1.1 */
	FLB_HTTP_E_STATUS,            /* status code not three digits (100-999) */
	FLB_HTTP_E_REASON,            /* a CTL in the reason phrase */
	FLB_HTTP_E_HEADER_NAME,       /* empty name, or a byte outside tchar */
	FLB_HTTP_E_HEADER_NAME_SPACE, /* whitespace between a field name and its colon */
	FLB_HTTP_E_HEADER_VALUE,      /* a CTL (other than HTAB) or NUL in a value */
	FLB_HTTP_E_OBS_FOLD,          /* a line starting with SP/HTAB (line folding) */
	FLB_HTTP_E_BARE_CR,           /* a CR not followed by LF */
	FLB_HTTP_E_BARE_LF,           /* an LF not preceded by CR */
	FLB_HTTP_E_TOO_MANY_HEADERS,  /* more field lines than the header array holds */
	FLB_HTTP_E_HEAD_TOO_LARGE,    /* the head exceeds max_head */
	FLB_HTTP_E_CONTENT_LENGTH,    /* Content-Length not 1*DIGIT, or overflows */
	FLB_HTTP_E_CONTENT_LENGTH_CONFLICT, /* several Content-Length values differ */
	FLB_HTTP_E_CL_AND_TE,         /* both Content-Length and Transfer-Encoding */
	FLB_HTTP_E_TE_NOT_CHUNKED,    /* request: the final transfer coding is not chunked */
	FLB_HTTP_E_TE_CHUNKED_TWICE,  /* chunked applied more than once */
	FLB_HTTP_E_TE_SYNTAX,         /* a Transfer-Encoding list that is not tokens */
	FLB_HTTP_E_HOST,              /* HTTP/1.1 request without Host, or several Host lines */
	FLB_HTTP_E_CHUNK_SIZE,        /* chunk size not hex, empty, or overflows */
	FLB_HTTP_E_CHUNK_EXT,         /* malformed chunk extension */
	FLB_HTTP_E_CHUNK_LINE_TOO_LONG, /* chunk-size line longer than the decoder allows */
	FLB_HTTP_E_CHUNK_DATA,        /* chunk data not followed by CRLF */
	FLB_HTTP_E_TRAILER,           /* malformed trailer field */
	FLB_HTTP_E_TRAILER_TOO_LARGE, /* trailer section over its bound */
	FLB_HTTP_E__COUNT
};

/* One field line.  Both slices point into the parsed buffer.  The value has
 * leading and trailing SP/HTAB stripped. */
struct flb_http_header {
	const char *name;
	const char *value;
	uint32_t name_len;
	uint32_t value_len;
};

/* Flags derived from the head while parsing (flb_http_msg.flags). */
#define FLB_HTTP_F_CHUNKED        0x0001u /* final transfer coding is chunked */
#define FLB_HTTP_F_HAS_CL         0x0002u /* a valid Content-Length was present */
#define FLB_HTTP_F_HAS_TE         0x0004u /* a Transfer-Encoding field was present */
#define FLB_HTTP_F_CONN_CLOSE     0x0008u /* Connection lists "close" */
#define FLB_HTTP_F_CONN_KEEPALIVE 0x0010u /* Connection lists "keep-alive" */
#define FLB_HTTP_F_CONN_UPGRADE   0x0020u /* Connection lists "upgrade" */
#define FLB_HTTP_F_KEEP_ALIVE     0x0040u /* persistent per version + Connection (never for 1.0 + TE) */
#define FLB_HTTP_F_EXPECT_CONTINUE 0x0080u /* Expect: 100-continue */
#define FLB_HTTP_F_HAS_UPGRADE    0x0100u /* an Upgrade field was present */

/* A parsed request or response head.  Request fields are set by
 * flb_http_parse_request, status fields by flb_http_parse_response. */
struct flb_http_msg {
	/* request line */
	const char *method;
	const char *target;
	uint32_t method_len;
	uint32_t target_len;
	/* status line */
	const char *reason;
	uint32_t reason_len;
	int status;
	/* both */
	int minor_version;             /* 0 or 1 */
	struct flb_http_header *headers; /* caller's array */
	size_t num_headers;            /* in: capacity of headers; out: count */
	int64_t content_length;        /* -1 when absent */
	uint32_t flags;                /* FLB_HTTP_F_* */
	int host_index;                /* index of the Host header in headers, or -1 */
	int err;                       /* enum flb_http_err when a call returned FLB_HTTP_INVALID */
	uint32_t err_offset;           /* byte offset in the buffer where the problem was found */
};

/* Incremental chunked-body decoder state.  Zero it with
 * flb_http_chunked_init().  It is bounded: a chunk-size line (with its
 * extensions) may hold at most max_line bytes, and the trailer section at
 * most max_trailer bytes. */
struct flb_http_chunked {
	uint64_t remaining;     /* data bytes left in the current chunk */
	uint32_t state;         /* private state-machine position */
	uint32_t line_len;      /* bytes of the current size/trailer line seen so far */
	uint32_t trailer_bytes; /* bytes of the trailer section seen so far */
	uint32_t max_line;      /* bound on a chunk-size line; default 4096 */
	uint32_t max_trailer;   /* bound on the trailer section; default 64 KiB */
	uint32_t sub;           /* private sub-state for extensions and trailers */
	int err;                /* enum flb_http_err after FLB_HTTP_INVALID */
	int done;               /* 1 once the last chunk and the trailers are consumed */
};

#endif /* FLB_HTTP1_T_H */
