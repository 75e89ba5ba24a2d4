/* h1rewrite.h: rewriting HTTP/1.1 request and response heads for the
 * reverse-proxy mode.  Types are in h1rewrite-t.h.  Functions are reentrant,
 * allocate nothing and never write past the capacity they are given.
 *
 * Request head written by flb_h1_rewrite_request, in this order:
 *   1. "METHOD SP target SP HTTP/1.1 CRLF" (target: the client's, or
 *      info->target_prefix + info->target_rest);
 *   2. the client's field lines, in order, as "Name: value" (name case kept,
 *      OWS normalised), except the ones dropped:
 *      - hop-by-hop (RFC 9110 7.6.1): Connection, every field a Connection
 *        line lists (except Host, Content-Length and Transfer-Encoding, which
 *        are never dropped: framing and routing stay what the parser saw),
 *        Keep-Alive, TE, Trailer, Proxy-Connection, and Upgrade unless
 *        FLB_H1RW_I_UPGRADE;
 *      - X-Forwarded-For with FLB_H1RW_XFF (its values go to step 3),
 *        X-Forwarded-Proto with FLB_H1RW_XFP, X-Forwarded-Host with
 *        FLB_H1RW_XFH;
 *      - names of SET and REMOVE ops in conf->req_ops;
 *      Host passes unchanged; Content-Length is written once, in plain
 *      decimal (after the copied lines), and a chunked request's
 *      Transfer-Encoding as exactly "chunked".  With no
 *      Host (HTTP/1.0 client) "Host: default_host" is written, since the
 *      upstream request is HTTP/1.1.
 *   3. generated lines: Connection ("upgrade" with FLB_H1RW_I_UPGRADE, else
 *      per info->conn), X-Forwarded-For ("a, b, client_ip": existing non-empty
 *      lines joined in order, even when a Connection line lists the name;
 *      none when a route op sets or removes it), X-Forwarded-Proto (http/https), X-Forwarded-Host
 *      (the Host value), Forwarded ("for=1.2.3.4;proto=http;host=h", IPv6 as
 *      for="[::1]", host quoted when not a token; appended as a new line
 *      after the client's), Via ("1.x fastlb", x = the client's minor
 *      version; appended), the request-id line when the client sent none;
 *   4. SET and ADD ops in list order, then the empty line.
 * Persistence: the client's Connection semantics are never forwarded; the
 * caller decides whether the upstream connection persists and says so with
 * info->conn (NONE is right for a persistent HTTP/1.1 upstream).
 * Route ops act on the client's lines only; the generated lines of step 3
 * are controlled by conf->flags.
 *
 * Response head written by flb_h1_rewrite_response: "HTTP/1.1 code reason",
 * the backend's lines minus the same hop-by-hop set, minus SET/REMOVE names
 * of conf->resp_ops, minus Transfer-Encoding with FLB_H1RW_I_DECHUNK, minus,
 * with FLB_H1RW_HIDE_BACKEND: Server, X-Powered-By,
 * X-AspNet-Version, X-AspNetMvc-Version, X-Runtime, X-Backend-Server; then
 * Connection per info, Via ("1.x fastlb") with FLB_H1RW_VIA, SET/ADD ops.
 *
 * Cost: one pass over the field lines to collect Connection tokens (a length
 * compare per line), one pass to copy, plus a rescan of the lines after the
 * first X-Forwarded-For when one is present. */
#ifndef FLB_H1REWRITE_H
#define FLB_H1REWRITE_H

#include "h1rewrite-t.h"
#include "http1-t.h"

/* Empty an ops list.
 * ops: the list to reset. */
void flb_h1_ops_init(struct flb_h1_ops *ops);

/* Append one operation to a list (at build time, never per request).
 * ops: the list; kind: enum flb_h1_op_kind;
 * name, name_len: a field name, 1..FLB_H1RW_MAX_NAME tchar bytes, not Host,
 *   Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer,
 *   Upgrade or Proxy-Connection (framing and hop-by-hop are not routes' to
 *   change);
 * value, value_len: the field value for SET/ADD (ignored for REMOVE): no
 *   CTL except HTAB, no DEL, no NUL, no leading or trailing SP/HTAB.
 * Returns 0, FLB_H1RW_E_NAME, FLB_H1RW_E_VALUE, FLB_H1RW_E_FULL or
 * FLB_H1RW_E_ARG (unknown kind); the list is unchanged on error. */
int flb_h1_ops_add(struct flb_h1_ops *ops, int kind, const char *name, size_t name_len,
                   const char *value, size_t value_len);

/* Fill a per-route conf.
 * conf: out; flags: FLB_H1RW_* flags;
 * rid_name, rid_name_len: the request-id header name; NULL means "X-Request-Id";
 * req_ops, resp_ops: ops lists (may be NULL), referenced, must outlive conf.
 *   The name follows flb_h1_ops_add's rules for names.
 * Returns 0, or FLB_H1RW_E_NAME for an invalid request-id name. */
int flb_h1_conf_init(struct flb_h1_conf *conf, uint32_t flags, const char *rid_name,
                     size_t rid_name_len, const struct flb_h1_ops *req_ops,
                     const struct flb_h1_ops *resp_ops);

/* Write the upstream request head (see the top of this file).
 * out, cap: the output buffer and its size;
 * msg: a request parsed by flb_http_parse_request (slices still valid);
 * conf: the route's settings; info: per-request facts.
 * Returns bytes written (> 0), FLB_H1RW_E_SPACE when the head does not fit
 * in cap (out's contents are then unspecified), FLB_H1RW_E_CONN for too many
 * Connection tokens, or FLB_H1RW_E_ARG for a bad byte in an info slice. */
long flb_h1_rewrite_request(char *out, size_t cap, const struct flb_http_msg *msg,
                            const struct flb_h1_conf *conf,
                            const struct flb_h1_req_info *info);

/* Write the response head for the client (see the top of this file).
 * out, cap: the output buffer and its size;
 * msg: a response parsed by flb_http_parse_response (slices still valid);
 * conf: the route's settings; info: per-response facts.
 * Returns bytes written (> 0), FLB_H1RW_E_SPACE or FLB_H1RW_E_CONN. */
long flb_h1_rewrite_response(char *out, size_t cap, const struct flb_http_msg *msg,
                             const struct flb_h1_conf *conf,
                             const struct flb_h1_resp_info *info);

/* Reason phrase fastlb uses for a status it answers itself.
 * status: 400, 404, 405, 408, 413, 431, 502, 503 or 504.
 * Returns a static string, or NULL for any other status. */
const char *flb_h1_error_reason(int status);

/* Format a complete small error response (head and text/plain body) that
 * fastlb sends itself.  Holds no internal address or backend detail.
 * buf, cap: the output buffer and its size;
 * status: one of flb_h1_error_reason's statuses;
 * request_id: NUL-terminated id echoed as "X-Request-Id" and in the body, or
 *   NULL/"" for none; visible ASCII only, at most 128 bytes;
 * close: nonzero adds "Connection: close".
 * Returns bytes written (> 0), FLB_H1RW_E_ARG (unknown status, bad id) or
 * FLB_H1RW_E_SPACE. */
long flb_h1_error_response(char *buf, size_t cap, int status, const char *request_id,
                           int close);

#endif /* FLB_H1REWRITE_H */
