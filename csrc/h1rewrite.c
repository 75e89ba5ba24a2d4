/* h1rewrite.c: HTTP/1.1 request and response head rewriting, declared in
 * h1rewrite.h (the rules are listed there).
 *
 * The output is written through a small bounded writer: every copy checks
 * the room left, and the first one that does not fit marks the writer
 * failed and closes it, so nothing is ever written past cap and the call
 * returns FLB_H1RW_E_SPACE.  Field lines are rebuilt from the parser's name
 * and value slices (name, ": ", value, CRLF), which also normalises OWS. */
#include <stdio.h>
#include <string.h>

#include "compiler.h"
#include "ascii.h"
#include "h1rewrite.h"

/* Field-name classes the rewriter cares about. */
enum hcls {
	C_OTHER = 0,
	C_CONNECTION,   /* Connection */
	C_HOP,          /* Keep-Alive, TE, Trailer, Proxy-Connection */
	C_UPGRADE,      /* Upgrade */
	C_XFF,          /* X-Forwarded-For */
	C_XFP,          /* X-Forwarded-Proto */
	C_XFH,          /* X-Forwarded-Host */
	C_HOST,         /* Host */
	C_CL,           /* Content-Length */
	C_TENC,         /* Transfer-Encoding */
	C_BACKEND,      /* Server, X-Powered-By, X-AspNet-Version, ... */
};

#define BIT(c) (1u << (c))
/* Never dropped because a Connection line lists them. */
#define PROTECTED (BIT(C_HOST) | BIT(C_CL) | BIT(C_TENC))
/* Never the target of a route op. */
#define OPS_FORBIDDEN (BIT(C_HOST) | BIT(C_CL) | BIT(C_TENC) | BIT(C_CONNECTION) | \
                       BIT(C_HOP) | BIT(C_UPGRADE))

#define IS(s, lit) flb_ascii_ieq_lower((s), (lit), sizeof(lit) - 1)

/* Classify a field name.  name, n: the name.  Returns an enum hcls. */
static enum hcls classify(const char *name, size_t n)
{
	switch (n) {
	case 2:  return IS(name, "te") ? C_HOP : C_OTHER;
	case 4:  return IS(name, "host") ? C_HOST : C_OTHER;
	case 6:  return IS(name, "server") ? C_BACKEND : C_OTHER;
	case 7:
		if (IS(name, "upgrade")) return C_UPGRADE;
		return IS(name, "trailer") ? C_HOP : C_OTHER;
	case 9:  return IS(name, "x-runtime") ? C_BACKEND : C_OTHER;
	case 10:
		if (IS(name, "connection")) return C_CONNECTION;
		return IS(name, "keep-alive") ? C_HOP : C_OTHER;
	case 12: return IS(name, "x-powered-by") ? C_BACKEND : C_OTHER;
	case 14: return IS(name, "content-length") ? C_CL : C_OTHER;
	case 15: return IS(name, "x-forwarded-for") ? C_XFF : C_OTHER;
	case 16:
		if (IS(name, "proxy-connection")) return C_HOP;
		if (IS(name, "x-forwarded-host")) return C_XFH;
		if (IS(name, "x-aspnet-version") || IS(name, "x-backend-server")) return C_BACKEND;
		return C_OTHER;
	case 17:
		if (IS(name, "x-forwarded-proto")) return C_XFP;
		return IS(name, "transfer-encoding") ? C_TENC : C_OTHER;
	case 19: return IS(name, "x-aspnetmvc-version") ? C_BACKEND : C_OTHER;
	default: return C_OTHER;
	}
}

/* tchar (RFC 9110 5.6.2) as a bitmap of the 128 ASCII bytes.
 * c: a byte.  Returns 1 when it is one. */
static inline int is_tchar(unsigned char c)
{
	static const uint64_t map[2] = { 0x03ff6cfa00000000ull, 0x57ffffffc7fffffeull };
	return c < 128 && ((map[c >> 6] >> (c & 63)) & 1u);
}

/* Check that s[0..n) is visible ASCII (0x21-0x7e).  Returns 1 when so. */
static int all_visible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned)((unsigned char)s[i] - 0x21) > 0x7e - 0x21)
			return 0;
	return 1;
}

/* The bounded output writer. */
struct wr {
	char *p;
	char *end;
	int fail;
};

/* Make sure n more bytes fit.  w: the writer; n: bytes.  Returns 1 when they
 * fit; otherwise marks the writer failed and closed and returns 0. */
static inline int room(struct wr *w, size_t n)
{
	if (flb_likely((size_t)(w->end - w->p) >= n))
		return 1;
	w->fail = 1;
	w->end = w->p;
	return 0;
}

/* Append s[0..n).  w: the writer. */
static inline void put(struct wr *w, const char *s, size_t n)
{
	if (n > 0 && room(w, n)) {
		memcpy(w->p, s, n);
		w->p += n;
	}
}

#define PUTS(w, lit) put((w), (lit), sizeof(lit) - 1)

/* Append one field line "name: value\r\n".  w: the writer. */
static inline void put_line(struct wr *w, const char *name, size_t nl,
                            const char *value, size_t vl)
{
	if (room(w, nl + vl + 4)) {
		char *p = w->p;
		memcpy(p, name, nl);
		p += nl;
		p[0] = ':';
		p[1] = ' ';
		p += 2;
		if (vl > 0)
			memcpy(p, value, vl);
		p += vl;
		p[0] = '\r';
		p[1] = '\n';
		w->p = p + 2;
	}
}

/* Append the value as an RFC 7239 token when it is one, else as a
 * quoted-string with '"' and '\' escaped.  w: the writer; s, n: the value. */
static void put_fwd_value(struct wr *w, const char *s, size_t n)
{
	size_t i;
	for (i = 0; i < n && is_tchar((unsigned char)s[i]); i++)
		;
	if (i == n && n > 0) {
		put(w, s, n);
		return;
	}
	PUTS(w, "\"");
	size_t run = 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			put(w, s + run, i - run);
			PUTS(w, "\\");
			run = i;
		}
	}
	put(w, s + run, n - run);
	PUTS(w, "\"");
}

void flb_h1_ops_init(struct flb_h1_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
}

int flb_h1_ops_add(struct flb_h1_ops *ops, int kind, const char *name, size_t name_len,
                   const char *value, size_t value_len)
{
	if (kind != FLB_H1_OP_SET && kind != FLB_H1_OP_ADD && kind != FLB_H1_OP_REMOVE)
		return FLB_H1RW_E_ARG;
	if (name == NULL || name_len == 0 || name_len > FLB_H1RW_MAX_NAME)
		return FLB_H1RW_E_NAME;
	for (size_t i = 0; i < name_len; i++)
		if (!is_tchar((unsigned char)name[i]))
			return FLB_H1RW_E_NAME;
	if (BIT(classify(name, name_len)) & OPS_FORBIDDEN)
		return FLB_H1RW_E_NAME;
	if (kind == FLB_H1_OP_REMOVE) {
		value_len = 0;
	} else {
		if (value == NULL && value_len > 0)
			return FLB_H1RW_E_VALUE;
		for (size_t i = 0; i < value_len; i++) {
			unsigned char c = (unsigned char)value[i];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return FLB_H1RW_E_VALUE;
		}
		if (value_len > 0 && (value[0] == ' ' || value[0] == '\t' ||
		                      value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
			return FLB_H1RW_E_VALUE;
	}
	if (ops->n >= FLB_H1RW_MAX_OPS || name_len + value_len > FLB_H1RW_OPS_STORE - ops->used)
		return FLB_H1RW_E_FULL;
	struct flb_h1_op *op = &ops->op[ops->n];
	op->kind = (uint8_t)kind;
	op->name_off = (uint16_t)ops->used;
	op->name_len = (uint16_t)name_len;
	memcpy(ops->store + ops->used, name, name_len);
	ops->used += (uint32_t)name_len;
	op->value_off = (uint16_t)ops->used;
	op->value_len = (uint16_t)value_len;
	if (value_len)
		memcpy(ops->store + ops->used, value, value_len);
	ops->used += (uint32_t)value_len;
	ops->n++;
	if (kind != FLB_H1_OP_ADD) {
		ops->n_drop++;
		ops->drop_lens |= 1ull << (name_len - 1);
	}
	return 0;
}

int flb_h1_conf_init(struct flb_h1_conf *conf, uint32_t flags, const char *rid_name,
                     size_t rid_name_len, const struct flb_h1_ops *req_ops,
                     const struct flb_h1_ops *resp_ops)
{
	if (rid_name == NULL) {
		rid_name = "X-Request-Id";
		rid_name_len = sizeof("X-Request-Id") - 1;
	}
	if (rid_name_len == 0 || rid_name_len > FLB_H1RW_MAX_NAME)
		return FLB_H1RW_E_NAME;
	for (size_t i = 0; i < rid_name_len; i++)
		if (!is_tchar((unsigned char)rid_name[i]))
			return FLB_H1RW_E_NAME;
	if (BIT(classify(rid_name, rid_name_len)) & OPS_FORBIDDEN)
		return FLB_H1RW_E_NAME;
	memset(conf, 0, sizeof(*conf));
	conf->flags = flags;
	memcpy(conf->rid_name, rid_name, rid_name_len);
	conf->rid_name_len = (uint32_t)rid_name_len;
	conf->req_ops = req_ops;
	conf->resp_ops = resp_ops;
	return 0;
}

/* A Connection token (a slice into the parsed buffer). */
struct tok {
	const char *p;
	uint32_t n;
};

/* Collect the tokens of every Connection line that name other fields
 * (close, keep-alive and upgrade are connection options handled elsewhere).
 * msg: the head; t: out, FLB_H1RW_MAX_CONN_TOKENS entries.
 * Returns the token count, or FLB_H1RW_E_CONN when there are too many. */
static int conn_tokens(const struct flb_http_msg *msg, struct tok *t)
{
	int nt = 0;
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct flb_http_header *h = &msg->headers[i];
		if (h->name_len != 10 || !IS(h->name, "connection"))
			continue;
		const char *p = h->value, *e = h->value + h->value_len;
		while (p < e) {
			while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			const char *s = p;
			while (p < e && *p != ',')
				p++;
			const char *q = p;
			while (q > s && (q[-1] == ' ' || q[-1] == '\t'))
				q--;
			size_t n = (size_t)(q - s);
			if (n == 0)
				continue;
			if ((n == 5 && IS(s, "close")) || (n == 10 && IS(s, "keep-alive")) ||
			    (n == 7 && IS(s, "upgrade")))
				continue;
			if (nt == FLB_H1RW_MAX_CONN_TOKENS)
				return FLB_H1RW_E_CONN;
			t[nt].p = s;
			t[nt].n = (uint32_t)n;
			nt++;
		}
	}
	return nt;
}

/* Whether a SET or REMOVE op of the list names this field.
 * ops: the list (n_drop > 0); name, n: the field name.  Returns 1 if so. */
static int ops_drop(const struct flb_h1_ops *ops, const char *name, size_t n)
{
	for (uint32_t k = 0; k < ops->n; k++) {
		const struct flb_h1_op *op = &ops->op[k];
		if (op->kind != FLB_H1_OP_ADD && op->name_len == n &&
		    flb_ascii_ieq(ops->store + op->name_off, name, n))
			return 1;
	}
	return 0;
}

/* Append the SET and ADD lines of an ops list.  w: the writer; ops: or NULL. */
static void put_ops(struct wr *w, const struct flb_h1_ops *ops)
{
	if (ops == NULL)
		return;
	for (uint32_t k = 0; k < ops->n; k++) {
		const struct flb_h1_op *op = &ops->op[k];
		if (op->kind != FLB_H1_OP_REMOVE)
			put_line(w, ops->store + op->name_off, op->name_len,
			         ops->store + op->value_off, op->value_len);
	}
}

/* Append "Content-Length: n\r\n" in plain decimal: the one value the
 * parser accepted, written once however the sender spelled it (repeated
 * lines, leading zeros), so the next hop cannot read another.
 * w: the writer; n: the length. */
static void put_length(struct wr *w, uint64_t n)
{
	char d[20];
	int k = 0;

	do
		d[k++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	if (room(w, 16 + (size_t)k + 2)) {
		memcpy(w->p, "Content-Length: ", 16);
		w->p += 16;
		while (k)
			*w->p++ = d[--k];
		*w->p++ = '\r';
		*w->p++ = '\n';
	}
}

/* Append the Connection line for the next hop.  w: the writer;
 * upgrade: FLB_H1RW_I_UPGRADE was given; conn: enum flb_h1_conn. */
static void put_conn(struct wr *w, int upgrade, int conn)
{
	if (upgrade)
		PUTS(w, "Connection: upgrade\r\n");
	else if (conn == FLB_H1_CONN_KEEPALIVE)
		PUTS(w, "Connection: keep-alive\r\n");
	else if (conn == FLB_H1_CONN_CLOSE)
		PUTS(w, "Connection: close\r\n");
}

/* What the shared copy loop learns about the head. */
struct seen {
	long xff_first;  /* index of the first X-Forwarded-For line kept for combining, or -1 */
	int rid_found;   /* a kept line carries the request-id name */
};

/* Copy the field lines that survive: the shared pass of both directions.
 * w: the writer; msg: the head; drop: BIT() mask of classes dropped;
 * ops: route ops or NULL; t, nt: Connection tokens; xff: collect
 * X-Forwarded-For lines instead of copying them; rid, rid_len: the
 * request-id name to look for (rid_len 0: none); sn: out. */
static void copy_headers(struct wr *w, const struct flb_http_msg *msg, uint32_t drop,
                         const struct flb_h1_ops *ops, const struct tok *t, int nt,
                         int xff, const char *rid, size_t rid_len, struct seen *sn)
{
	int use_ops = ops != NULL && ops->n_drop > 0;
	sn->xff_first = -1;
	sn->rid_found = 0;
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct flb_http_header *h = &msg->headers[i];
		enum hcls c = classify(h->name, h->name_len);
		if (BIT(c) & drop)
			continue;
		if (use_ops && h->name_len - 1u < 64u && ((ops->drop_lens >> (h->name_len - 1u)) & 1u) &&
		    ops_drop(ops, h->name, h->name_len))
			continue;
		if (c == C_XFF && xff) {
			if (sn->xff_first < 0)
				sn->xff_first = (long)i;
			continue;
		}
		if (nt > 0 && !(BIT(c) & PROTECTED)) {
			int listed = 0;
			for (int k = 0; k < nt; k++) {
				if (t[k].n == h->name_len && flb_ascii_ieq(t[k].p, h->name, h->name_len)) {
					listed = 1;
					break;
				}
			}
			if (listed)
				continue;
		}
		if (rid_len && !sn->rid_found && h->name_len == rid_len && flb_ascii_ieq(h->name, rid, rid_len))
			sn->rid_found = 1;
		put_line(w, h->name, h->name_len, h->value, h->value_len);
	}
}

/* Finish a head: the final CRLF and the result.  w: the writer; out: the
 * buffer start.  Returns bytes written or FLB_H1RW_E_SPACE. */
static long finish(struct wr *w, const char *out)
{
	PUTS(w, "\r\n");
	return w->fail ? FLB_H1RW_E_SPACE : (long)(w->p - out);
}

long flb_h1_rewrite_request(char *out, size_t cap, const struct flb_http_msg *msg,
                            const struct flb_h1_conf *conf,
                            const struct flb_h1_req_info *info)
{
	struct wr w = { out, out + cap, 0 };
	struct tok t[FLB_H1RW_MAX_CONN_TOKENS];
	struct seen sn;
	uint32_t f = conf->flags;
	int upgrade = (info->flags & FLB_H1RW_I_UPGRADE) != 0;
	int https = (info->flags & FLB_H1RW_I_HTTPS) != 0;

	if (info->target_prefix != NULL &&
	    (!all_visible(info->target_prefix, info->target_prefix_len) ||
	     (info->target_rest_len && (info->target_rest == NULL ||
	                                !all_visible(info->target_rest, info->target_rest_len))) ||
	     info->target_prefix_len + (size_t)info->target_rest_len == 0))
		return FLB_H1RW_E_ARG;
	if ((info->client_ip_len && (info->client_ip == NULL ||
	                             !all_visible(info->client_ip, info->client_ip_len))) ||
	    (info->request_id_len && (info->request_id == NULL ||
	                              !all_visible(info->request_id, info->request_id_len))) ||
	    (info->default_host_len && (info->default_host == NULL ||
	                                !all_visible(info->default_host, info->default_host_len))))
		return FLB_H1RW_E_ARG;

	int nt = conn_tokens(msg, t);
	if (nt < 0)
		return nt;

	/* request line */
	if (room(&w, (size_t)msg->method_len + 1)) {
		memcpy(w.p, msg->method, msg->method_len);
		w.p[msg->method_len] = ' ';
		w.p += msg->method_len + 1;
	}
	if (info->target_prefix != NULL) {
		put(&w, info->target_prefix, info->target_prefix_len);
		put(&w, info->target_rest, info->target_rest_len);
	} else {
		put(&w, msg->target, msg->target_len);
	}
	PUTS(&w, " HTTP/1.1\r\n");

	uint32_t drop = BIT(C_CONNECTION) | BIT(C_HOP);
	int chunked = (msg->flags & FLB_HTTP_F_CHUNKED) != 0;
	int clen = (msg->flags & FLB_HTTP_F_HAS_CL) != 0;
	if (!upgrade)
		drop |= BIT(C_UPGRADE);
	if (chunked)
		drop |= BIT(C_TENC); /* written again below, normalised */
	if (clen)
		drop |= BIT(C_CL);
	if (f & FLB_H1RW_XFP)
		drop |= BIT(C_XFP);
	if (f & FLB_H1RW_XFH)
		drop |= BIT(C_XFH);
	int want_rid = (f & FLB_H1RW_REQUEST_ID) && info->request_id_len > 0;
	copy_headers(&w, msg, drop, conf->req_ops, t, nt, (f & FLB_H1RW_XFF) != 0,
	             conf->rid_name, want_rid ? conf->rid_name_len : 0, &sn);

	const struct flb_http_header *host = msg->host_index >= 0 ? &msg->headers[msg->host_index] : NULL;
	if (host == NULL)
		put_line(&w, "Host", 4, info->default_host, info->default_host_len);
	if (chunked)
		PUTS(&w, "Transfer-Encoding: chunked\r\n");
	if (clen)
		put_length(&w, (uint64_t)msg->content_length);
	put_conn(&w, upgrade, info->conn);

	if (f & FLB_H1RW_XFF) {
		int have = 0;
		if (sn.xff_first >= 0) {
			for (size_t i = (size_t)sn.xff_first; i < msg->num_headers; i++) {
				const struct flb_http_header *h = &msg->headers[i];
				if (h->name_len != 15 || !IS(h->name, "x-forwarded-for") || h->value_len == 0)
					continue;
				if (!have)
					PUTS(&w, "X-Forwarded-For: ");
				else
					PUTS(&w, ", ");
				put(&w, h->value, h->value_len);
				have = 1;
			}
		}
		if (info->client_ip_len) {
			if (!have)
				PUTS(&w, "X-Forwarded-For: ");
			else
				PUTS(&w, ", ");
			put(&w, info->client_ip, info->client_ip_len);
			have = 1;
		}
		if (have)
			PUTS(&w, "\r\n");
	}
	if (f & FLB_H1RW_XFP) {
		if (https)
			PUTS(&w, "X-Forwarded-Proto: https\r\n");
		else
			PUTS(&w, "X-Forwarded-Proto: http\r\n");
	}
	if ((f & FLB_H1RW_XFH) && host != NULL && host->value_len > 0)
		put_line(&w, "X-Forwarded-Host", 16, host->value, host->value_len);
	if (f & FLB_H1RW_FORWARDED) {
		PUTS(&w, "Forwarded: ");
		if (info->client_ip_len) {
			if (memchr(info->client_ip, ':', info->client_ip_len) != NULL) {
				PUTS(&w, "for=\"[");
				put(&w, info->client_ip, info->client_ip_len);
				PUTS(&w, "]\";");
			} else {
				PUTS(&w, "for=");
				put_fwd_value(&w, info->client_ip, info->client_ip_len);
				PUTS(&w, ";");
			}
		}
		if (https)
			PUTS(&w, "proto=https");
		else
			PUTS(&w, "proto=http");
		if (host != NULL && host->value_len > 0) {
			PUTS(&w, ";host=");
			put_fwd_value(&w, host->value, host->value_len);
		}
		PUTS(&w, "\r\n");
	}
	if (f & FLB_H1RW_VIA) {
		if (msg->minor_version == 0)
			PUTS(&w, "Via: 1.0 fastlb\r\n");
		else
			PUTS(&w, "Via: 1.1 fastlb\r\n");
	}
	if (want_rid && !sn.rid_found)
		put_line(&w, conf->rid_name, conf->rid_name_len, info->request_id, info->request_id_len);
	put_ops(&w, conf->req_ops);
	return finish(&w, out);
}

long flb_h1_rewrite_response(char *out, size_t cap, const struct flb_http_msg *msg,
                             const struct flb_h1_conf *conf,
                             const struct flb_h1_resp_info *info)
{
	struct wr w = { out, out + cap, 0 };
	struct tok t[FLB_H1RW_MAX_CONN_TOKENS];
	struct seen sn;
	int upgrade = (info->flags & FLB_H1RW_I_UPGRADE) != 0;

	if (msg->status < 100 || msg->status > 999)
		return FLB_H1RW_E_ARG;
	int nt = conn_tokens(msg, t);
	if (nt < 0)
		return nt;

	if (room(&w, 13)) {
		int s = msg->status;
		memcpy(w.p, "HTTP/1.1 ", 9);
		w.p[9] = (char)('0' + s / 100);
		w.p[10] = (char)('0' + s / 10 % 10);
		w.p[11] = (char)('0' + s % 10);
		w.p[12] = ' ';
		w.p += 13;
	}
	put(&w, msg->reason, msg->reason_len);
	PUTS(&w, "\r\n");

	uint32_t drop = BIT(C_CONNECTION) | BIT(C_HOP);
	if (!upgrade)
		drop |= BIT(C_UPGRADE);
	if (conf->flags & FLB_H1RW_HIDE_BACKEND)
		drop |= BIT(C_BACKEND);
	if (info->flags & FLB_H1RW_I_DECHUNK)
		drop |= BIT(C_TENC);
	if (msg->flags & FLB_HTTP_F_HAS_CL)
		drop |= BIT(C_CL);
	copy_headers(&w, msg, drop, conf->resp_ops, t, nt, 0, NULL, 0, &sn);
	if (msg->flags & FLB_HTTP_F_HAS_CL)
		put_length(&w, (uint64_t)msg->content_length);
	put_conn(&w, upgrade, info->conn);
	if (conf->flags & FLB_H1RW_VIA) {
		if (msg->minor_version == 0)
			PUTS(&w, "Via: 1.0 fastlb\r\n");
		else
			PUTS(&w, "Via: 1.1 fastlb\r\n");
	}
	put_ops(&w, conf->resp_ops);
	return finish(&w, out);
}

const char *flb_h1_error_reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return NULL;
	}
}

long flb_h1_error_response(char *buf, size_t cap, int status, const char *request_id,
                           int close)
{
	const char *reason = flb_h1_error_reason(status);
	if (reason == NULL)
		return FLB_H1RW_E_ARG;
	size_t idn = request_id ? strlen(request_id) : 0;
	if (idn > 128 || !all_visible(request_id ? request_id : "", idn))
		return FLB_H1RW_E_ARG;

	char body[256];
	int bn;
	if (idn)
		bn = snprintf(body, sizeof(body), "%d %s\nrequest id: %s\n", status, reason, request_id);
	else
		bn = snprintf(body, sizeof(body), "%d %s\n", status, reason);
	if (bn < 0 || (size_t)bn >= sizeof(body))
		return FLB_H1RW_E_ARG;

	char head[512];
	int hn = snprintf(head, sizeof(head),
	                  "HTTP/1.1 %d %s\r\n"
	                  "Content-Type: text/plain; charset=utf-8\r\n"
	                  "Content-Length: %d\r\n"
	                  "%s"
	                  "%s%s%s"
	                  "\r\n",
	                  status, reason, bn, close ? "Connection: close\r\n" : "",
	                  idn ? "X-Request-Id: " : "", idn ? request_id : "", idn ? "\r\n" : "");
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return FLB_H1RW_E_ARG;
	if ((size_t)hn + (size_t)bn > cap)
		return FLB_H1RW_E_SPACE;
	memcpy(buf, head, (size_t)hn);
	memcpy(buf + hn, body, (size_t)bn);
	return (long)hn + bn;
}
