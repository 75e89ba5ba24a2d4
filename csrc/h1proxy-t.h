/* h1proxy-t.h: types of the HTTP/1.1 reverse-proxy mode (listener mode
 * "http"): what a snapshot holds for it, and the per-connection state.
 * Functions in h1proxy.h; the request path is described at the top of
 * h1proxy.c.
 *
 * Snapshot side (immutable once sealed, read by workers without locks):
 * - struct flb_http_lsn hangs off a listener in mode http: its settings,
 *   the router (router.h) and one struct flb_http_route per route, plus the
 *   default route used when no route matches.
 * - struct flb_http_bk hangs off every backend: the balancing key of its
 *   hash algorithms, the sticky cookie, the upstream keep-alive pool bounds.
 *
 * Connection side: struct flb_h1 extends a struct flb_conn of an http
 * listener (allocated with it from the worker's connection pool). */
#ifndef FLB_H1PROXY_T_H
#define FLB_H1PROXY_T_H

#include <stdint.h>

#include "h1rewrite-t.h"
#include "http1-t.h"
#include "list.h"
#include "timer-t.h"

/* "No backend": a route (or the default route) that answers 404. */
#define FLB_NO_BK UINT32_MAX

/* Defaults and bounds of the listener settings. */
#define FLB_H1_DEFAULT_MAX_HEAD  8192u   /* request head bytes; larger: 431 */
#define FLB_H1_MAX_RESP_HEAD     16384u  /* response head bytes (one buffer); larger: 502 */
#define FLB_H1_MAX_HEADERS       100     /* field lines per head; more: 431 / 502 */
#define FLB_H1_MAX_INTERIM       32      /* 1xx responses passed on per request; more: 502 */

/* What a hash balancer (maglev, ring) hashes in http mode. */
enum flb_hkey_kind {
	FLB_HKEY_CLIENT_IP = 0, /* the client address (also the L4 key) */
	FLB_HKEY_PATH,          /* the request path, without the query */
	FLB_HKEY_URI,           /* the request target: path and query */
	FLB_HKEY_HEADER,        /* a header's first value (absent: client ip) */
	FLB_HKEY_COOKIE,        /* a cookie's value (absent: client ip) */
	FLB_HKEY_COUNT
};

/* A header operation as the binding passes it (flb_snap_add_route). */
struct flb_hdr_op {
	int kind;                 /* enum flb_h1_op_kind */
	const char *name;
	const char *value;        /* NULL for REMOVE */
};

/* Per-route settings beyond the matcher (flb_snap_add_route). */
struct flb_route_extra {
	uint32_t connect_timeout_ms;   /* 0: the listener's */
	uint32_t response_timeout_ms;  /* 0: the listener's */
	uint64_t max_body;             /* request body bytes; 0: unlimited; over: 413 */
	const struct flb_hdr_op *req_ops;
	uint32_t nreq;
	const struct flb_hdr_op *resp_ops;
	uint32_t nresp;
};

/* Listener settings of mode http (flb_snap_set_http). */
struct flb_http_settings {
	uint32_t head_timeout_ms;      /* whole request head from its first byte; 0: none (408) */
	uint32_t keepalive_timeout_ms; /* client idle between requests; 0: none */
	uint32_t response_timeout_ms;  /* upstream response head after the request; 0: none (504) */
	uint32_t body_timeout_ms;      /* between two reads of a request body; 0: none (408) */
	uint32_t send_timeout_ms;      /* a client that does not read its response; 0: none */
	uint32_t max_head;             /* request head bytes; 0: default; <= FLB_BUF_SIZE */
	uint32_t rw_flags;             /* FLB_H1RW_* (h1rewrite-t.h) */
	const char *request_id_header; /* NULL: "X-Request-Id" */
	const char *access_log;        /* file path, "-" (stdout) or NULL (off) */
	int access_log_format;         /* FLB_ALOG_COMBINED or FLB_ALOG_JSON */
};

/* A route in a snapshot. */
struct flb_http_route {
	uint32_t backend;              /* index into the snapshot's backends, or FLB_NO_BK */
	uint32_t connect_timeout_ms;   /* resolved: never 0 unless none at all */
	uint32_t response_timeout_ms;
	uint64_t max_body;             /* 0: unlimited */
	struct flb_h1_ops *req_ops;    /* owned; NULL: none */
	struct flb_h1_ops *resp_ops;   /* owned; NULL: none */
	struct flb_h1_conf h1;         /* references req_ops/resp_ops */
};

struct flb_router;
struct flb_alog;

/* A listener's http part; owned by the listener (snapshot). */
struct flb_http_lsn {
	struct flb_router *router;     /* NULL when no route was added */
	struct flb_http_route *routes; /* parallel to the router's routes */
	uint32_t nroutes, caproutes;
	struct flb_http_route dflt;    /* no route matched: the listener's backend */
	struct flb_http_settings set;  /* request_id_header and access_log not kept */
	char *alog_path;               /* access log path, NULL: off; owned */
	struct flb_alog *alog;         /* opened at seal (one reference), or NULL */
};

/* A backend's http part (embedded in struct flb_backend). */
struct flb_http_bk {
	uint8_t hkey;                  /* enum flb_hkey_kind */
	uint32_t hkey_name_len;
	char *hkey_name;               /* header or cookie name; owned */
	char *sticky;                  /* sticky cookie name, NULL: none; owned */
	uint32_t sticky_len;
	uint32_t pool_max_idle;        /* idle upstream connections per worker and server */
	uint32_t pool_idle_ms;         /* an idle upstream connection is closed after it */
	uint8_t retry_unsafe;          /* resend non-idempotent requests too (RFC 9112 9.3.1) */
};

/* ---- per connection ----------------------------------------------------- */

/* epoll data tag of an upstream connection (low bits of its pointer; the
 * tags of engine.c are 0..3). */
#define FLB_TAG_UP 4u

struct flb_conn;
struct flb_buf;
struct flb_pipe;

/* An upstream (server-side) connection.  It outlives the client connection
 * that opened it when it goes back to its server's idle pool.  Its epoll
 * registration points at it (tag FLB_TAG_UP), never at a client connection,
 * so moving it between clients costs no epoll_ctl. */
struct flb_upconn {
	struct flb_list node;          /* its server slot's idle list while idle */
	struct flb_list wnode;         /* the worker's idle list while idle */
	struct flb_timer tmr;          /* idle timeout while pooled */
	struct flb_conn *owner;        /* the client connection using it; NULL: idle */
	struct flb_srv *sh;            /* its server (one reference held) */
	int fd;
	uint32_t ev;                   /* epoll interest; FLB_UP_REG once registered */
	uint32_t reqs;                 /* requests sent on it */
};
#define FLB_UP_REG 0x80000000u

/* How a body is delimited (struct flb_h1_body.kind). */
enum flb_h1_body_kind {
	FLB_BODY_NONE = 0,
	FLB_BODY_LENGTH,   /* Content-Length: left bytes to go */
	FLB_BODY_CHUNKED,  /* chunked: tracked with flb_http_chunked_scan */
	FLB_BODY_CLOSE,    /* until the source closes (responses, tunnels) */
};

struct flb_h1_body {
	uint8_t kind;      /* enum flb_h1_body_kind */
	uint8_t done;      /* the last body byte has been read */
	uint8_t decode;    /* chunked: decode it (HTTP/1.0 client), not just scan */
	uint64_t left;     /* FLB_BODY_LENGTH: bytes still to read */
	uint64_t seen;     /* body bytes read so far (wire bytes for chunked) */
	struct flb_http_chunked ck;
};

/* One direction of a transaction: the request (client -> upstream) or the
 * response (upstream -> client).  Bytes to send, in order: the rewritten
 * head hb[hpos..hlen), then body bytes in[pos..pos+avail), then ppend bytes
 * in the pipe.  in[pos+avail..len) are bytes received past the message
 * (a pipelined request).  Buffers and the pipe are attached only while in
 * use. */
struct flb_h1_side {
	struct flb_buf *in;
	struct flb_buf *hb;
	struct flb_pipe *pipe;
	uint32_t pos, len, avail;
	uint32_t hpos, hlen;
	uint32_t ppend;
	uint8_t eof;       /* the source sent FIN */
	uint8_t shut;      /* FIN passed on to the sink (tunnel) */
	uint8_t bulk;      /* the last read filled the buffer: splice next */
	struct flb_h1_body body;
};

/* The http state of a client connection (c->h1), from the worker's pool. */
struct flb_h1 {
	struct flb_h1_side rq, rs;     /* request, response */
	struct flb_upconn *up;         /* attached upstream, or NULL */
	const struct flb_http_route *rt;
	uint64_t ckey;                 /* hash of the client address */
	int32_t sticky;                /* server named by the sticky cookie, or -1 */
	uint32_t last_len;             /* parser resume point */
	uint32_t replay_pos, replay_avail; /* request body bytes as first sent */
	uint32_t fl;                   /* H1F_* (h1proxy.c) */
	uint16_t status;
	uint8_t rqs, rss;              /* request / response states (h1proxy.c) */
	uint8_t minor;                 /* client's HTTP minor version */
	uint8_t rid_len;
	uint8_t ip_len;
	uint8_t resv;                  /* 16 KiB buffers promised to it, not yet taken */
	uint8_t ninterim;              /* 1xx responses of this request so far */
	char rid[40];                  /* request id (the client's or ours) */
	char ip[46];                   /* client address, text */
	/* Side buffers (FLB_SBUF_SIZE, the worker's sbufs), so that a
	 * connection waiting on a peer holds no 16 KiB buffer. */
	char *park;                    /* a partial head (rq.len bytes) while rq.in is off */
	char *rcopy;                   /* the request as sent, kept for a retry */
	uint16_t rc_hlen, rc_blen;     /* its rewritten head and body lengths */
	uint64_t rd_ms;                /* last progress reading the request body */
	uint64_t wr_ms;                /* last progress writing the response */
	/* Access log (only filled when the listener has one). */
	char *lb;                      /* side buffer: method, target, referer, user agent */
	uint16_t loff[4], llen[4];     /* their slices in lb */
	uint32_t hlen;                 /* request head bytes */
	const char *up_addr;           /* server address of the last attempt */
	uint64_t t_req_us;             /* monotonic: the head started */
	uint64_t t_sent_us;            /* the request was sent whole */
	uint64_t t_head_us;            /* the response head arrived */
	int64_t conn_us;               /* connect time; 0: pooled; -1: none */
	uint64_t bytes_out;            /* response bytes sent to the client */
};

#endif /* FLB_H1PROXY_T_H */
