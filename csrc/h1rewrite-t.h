/* h1rewrite-t.h: types of the HTTP/1.1 head rewriter (csrc/h1rewrite.h).
 *
 * The rewriter turns a head parsed by flb_http_parse_request/_response
 * (csrc/http1.h) into the head fastlb sends on: to the upstream for a
 * request, to the client for a response.  It writes into a caller-supplied
 * bounded buffer, allocates nothing and keeps no state.
 *
 * Three kinds of input:
 *   - struct flb_h1_ops: a per-route list of header operations (set, add,
 *     remove), validated when built, immutable afterwards, owned by its
 *     holder (a config snapshot), fixed size: no pointers, no allocation.
 *   - struct flb_h1_conf: per-route settings (flags, request-id header name,
 *     ops for requests and responses), built once.
 *   - struct flb_h1_req_info / flb_h1_resp_info: per-message facts the
 *     caller knows (client address, request id, rewritten target, upstream
 *     persistence), filled on the stack per message. */
#ifndef FLB_H1REWRITE_T_H
#define FLB_H1REWRITE_T_H

#include <stddef.h>
#include <stdint.h>

/* Errors (negative returns). */
#define FLB_H1RW_E_SPACE   (-1) /* the output buffer is too small; nothing usable was written */
#define FLB_H1RW_E_CONN    (-2) /* more Connection tokens than FLB_H1RW_MAX_CONN_TOKENS: answer 400 */
#define FLB_H1RW_E_ARG     (-3) /* a caller argument holds a forbidden byte or is out of range */
#define FLB_H1RW_E_NAME    (-4) /* ops/conf build: empty or non-tchar header name, or too long */
#define FLB_H1RW_E_VALUE   (-5) /* ops build: a CTL (other than HTAB), DEL or NUL in a value, or too long */
#define FLB_H1RW_E_FULL    (-6) /* ops build: FLB_H1RW_MAX_OPS or FLB_H1RW_OPS_STORE exceeded */

/* Bounds. */
#define FLB_H1RW_MAX_OPS          32    /* operations per list */
#define FLB_H1RW_OPS_STORE        4096  /* bytes of names + values per list */
#define FLB_H1RW_MAX_NAME         64    /* header name length (ops, request-id name) */
#define FLB_H1RW_MAX_CONN_TOKENS  16    /* distinct-purpose tokens in the Connection lines of one message */

/* Kinds of header operation. */
enum flb_h1_op_kind {
	FLB_H1_OP_SET = 1,    /* drop every occurrence of the name, then add one line */
	FLB_H1_OP_ADD = 2,    /* add one more line, keep existing ones */
	FLB_H1_OP_REMOVE = 3, /* drop every occurrence of the name (case-insensitive) */
};

/* One operation; name and value are offsets into flb_h1_ops.store. */
struct flb_h1_op {
	uint8_t kind;        /* enum flb_h1_op_kind */
	uint16_t name_off;
	uint16_t name_len;
	uint16_t value_off;
	uint16_t value_len;
};

/* An immutable list of operations, applied in list order.  Initialise with
 * flb_h1_ops_init, fill with flb_h1_ops_add, then only read. */
struct flb_h1_ops {
	uint32_t n;          /* operations in op[] */
	uint32_t n_drop;     /* how many are SET or REMOVE (0: skip name matching) */
	uint32_t used;       /* bytes of store[] used */
	uint64_t drop_lens;  /* bit (len - 1) set for each SET/REMOVE name length */
	struct flb_h1_op op[FLB_H1RW_MAX_OPS];
	char store[FLB_H1RW_OPS_STORE];
};

/* flb_h1_conf.flags: what the rewriter adds or removes. */
#define FLB_H1RW_XFF          0x0001u /* request: X-Forwarded-For appended (existing lines combined) */
#define FLB_H1RW_XFP          0x0002u /* request: X-Forwarded-Proto set (client's lines dropped) */
#define FLB_H1RW_XFH          0x0004u /* request: X-Forwarded-Host set from Host (client's lines dropped) */
#define FLB_H1RW_FORWARDED    0x0008u /* request: a Forwarded line (RFC 7239) appended */
#define FLB_H1RW_VIA          0x0010u /* request and response: a Via line appended */
#define FLB_H1RW_REQUEST_ID   0x0020u /* request: request-id header added when absent */
#define FLB_H1RW_HIDE_BACKEND 0x0040u /* response: drop headers that reveal the backend (see h1rewrite.h) */

/* Per-route settings.  Built with flb_h1_conf_init; immutable afterwards.
 * The ops lists are referenced, not copied: they must outlive the conf. */
struct flb_h1_conf {
	uint32_t flags;                  /* FLB_H1RW_* above */
	uint32_t rid_name_len;
	char rid_name[FLB_H1RW_MAX_NAME]; /* request-id header name, e.g. "X-Request-Id" */
	const struct flb_h1_ops *req_ops;  /* NULL: none */
	const struct flb_h1_ops *resp_ops; /* NULL: none */
};

/* What to tell the next hop about persistence (flb_h1_*_info.conn). */
enum flb_h1_conn {
	FLB_H1_CONN_NONE = 0,      /* write no Connection line (HTTP/1.1 default: persistent) */
	FLB_H1_CONN_KEEPALIVE = 1, /* write "Connection: keep-alive" */
	FLB_H1_CONN_CLOSE = 2,     /* write "Connection: close" */
};

/* flb_h1_req_info.flags / flb_h1_resp_info.flags */
#define FLB_H1RW_I_HTTPS   0x0001u /* request: the client connection is TLS (proto=https) */
#define FLB_H1RW_I_UPGRADE 0x0002u /* the caller is performing the Upgrade: keep Upgrade,
                                    * write "Connection: upgrade" instead of conn */
#define FLB_H1RW_I_DECHUNK 0x0004u /* response: the caller decodes the chunked body
                                    * (HTTP/1.0 client): drop Transfer-Encoding */

/* Per-request facts.  Every slice must hold visible ASCII only (no SP, CTL
 * or byte >= 0x7f); a violation is FLB_H1RW_E_ARG. */
struct flb_h1_req_info {
	const char *target_prefix;  /* rewritten target = prefix + rest; NULL: keep the client's */
	const char *target_rest;
	uint32_t target_prefix_len;
	uint32_t target_rest_len;
	const char *client_ip;      /* textual address without port; IPv6 without brackets */
	uint32_t client_ip_len;     /* 0: no client address (XFF and for= are skipped) */
	uint32_t request_id_len;    /* 0: no id to add */
	const char *request_id;
	const char *default_host;   /* Host value used when the client sent none (HTTP/1.0) */
	uint32_t default_host_len;  /* 0 with no Host: "Host: " (empty, RFC 9112 3.2) */
	uint32_t flags;             /* FLB_H1RW_I_* */
	int conn;                   /* enum flb_h1_conn: persistence towards the upstream */
};

/* Per-response facts. */
struct flb_h1_resp_info {
	uint32_t flags;             /* FLB_H1RW_I_UPGRADE (for a 101 the caller accepts) */
	int conn;                   /* enum flb_h1_conn: persistence towards the client */
};

#endif /* FLB_H1REWRITE_T_H */
