/* http1.h: the HTTP/1.1 head parser and the chunked decoder.  Types are in
 * http1-t.h.  All functions are reentrant and allocate nothing. */
#ifndef FLB_HTTP1_H
#define FLB_HTTP1_H

#include "http1-t.h"

/* Parse a request head from buf[0..len).
 * last_len: how many bytes of buf the previous call on the same message had
 *   seen and found incomplete (0 on the first call); lets the parser resume
 *   its search for the end of the head instead of rescanning.
 * max_head: limit on the head size including the final CRLF CRLF; a head that
 *   grows past it without ending is FLB_HTTP_INVALID with
 *   FLB_HTTP_E_HEAD_TOO_LARGE.  0 means FLB_HTTP_DEFAULT_MAX_HEAD.
 * msg: out; msg->headers/num_headers must hold the caller's array and its
 *   capacity on entry.
 * Returns the head length (> 0, bytes consumed), FLB_HTTP_INCOMPLETE, or
 * FLB_HTTP_INVALID with msg->err and msg->err_offset set. */
int flb_http_parse_request(const char *buf, size_t len, size_t last_len,
                           size_t max_head, struct flb_http_msg *msg);

/* Parse a response head; arguments and returns as flb_http_parse_request.
 * Sets status, reason, minor_version, headers and the framing fields.
 * A Transfer-Encoding whose final coding is not chunked is valid in a
 * response (the body then runs until close). */
int flb_http_parse_response(const char *buf, size_t len, size_t last_len,
                            size_t max_head, struct flb_http_msg *msg);

/* Name a parse error.
 * err: an enum flb_http_err value.
 * Returns a static, human-readable string (never NULL). */
const char *flb_http_strerror(int err);

/* Reset a chunked decoder to the start of a body with default bounds.
 * d: the decoder to reset. */
void flb_http_chunked_init(struct flb_http_chunked *d);

/* Decode chunked data in place.
 * d: decoder state, carried across calls.
 * buf: on entry buf[0..*len) holds the next received bytes of the body.
 * len: in: bytes in buf; out: the decoded data bytes now at buf[0..*len).
 * Returns FLB_HTTP_INCOMPLETE when the body goes on, FLB_HTTP_INVALID (d->err
 * set) on malformed input, or, once the last chunk and the trailer section are
 * consumed (d->done = 1), the count of bytes that followed the body; those
 * bytes are moved to buf[*len..*len + ret). */
long flb_http_chunked_decode(struct flb_http_chunked *d, char *buf, size_t *len);

/* Track chunked framing without changing the bytes (for relaying as is).
 * d: decoder state, carried across calls.
 * buf, len: the next received bytes of the body.
 * Returns how many leading bytes of buf belong to the body (<= len; all of
 * them while the body goes on; d->done = 1 once the body ended within them),
 * or FLB_HTTP_INVALID with d->err set. */
long flb_http_chunked_scan(struct flb_http_chunked *d, const char *buf, size_t len);

#endif /* FLB_HTTP1_H */
