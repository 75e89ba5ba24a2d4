/* conn-t.h: a proxied connection and the operations that drive it.
 *
 * A connection is a client socket (side 0), a server socket (side 1) and two
 * directions: dir[0] moves client->server bytes, dir[1] server->client.
 * What a connection does is its ops table, chosen by the listener's mode:
 * flb_l4_ops (conn.c), the TCP relay, and flb_h1_ops (h1proxy.c), the
 * HTTP/1.1 reverse proxy, which keeps its request state in c->h1 and its
 * upstream connection in a struct flb_upconn of its own (h1proxy-t.h), so
 * that the upstream can outlive the client in a keep-alive pool.  Where the
 * rest plugs in:
 * - TLS: a transport below the pump.  The pump uses splice only when both
 *   ends carry plaintext in the kernel (plain TCP or kTLS); a userspace TLS
 *   transport makes it take the buffer path through transport read/write
 *   calls instead (the DIR_NOSPLICE path).
 * - PROXY protocol, filters: steps run by start() before the relay (PROXY v1/v2
 *   header in front of the first client->server bytes), or stages between
 *   the buffer read and write of the pump.
 *
 * Memory: the struct is about 200 bytes and is all an idle connection
 * costs beyond its two kernel sockets; pipes and buffers are attached to a
 * direction only while it has bytes in flight. */
#ifndef FLB_CONN_T_H
#define FLB_CONN_T_H

#include <stdint.h>

#include "list.h"
#include "pool-t.h"
#include "timer-t.h"

struct flb_worker;
struct flb_conn;
struct flb_wsnap;
struct flb_listener;
struct flb_h1;
union flb_sockaddr;

/* How a connection is driven; one table per listener mode. */
struct flb_conn_ops {
	const char *name;
	/* A client was just accepted (peer: its address, from accept). */
	void (*start)(struct flb_worker *w, struct flb_conn *c, const union flb_sockaddr *peer);
	/* Readiness on side (0 client, 1 server): epoll events. */
	void (*io)(struct flb_worker *w, struct flb_conn *c, int side, uint32_t events);
	/* The connection's timer fired. */
	void (*timeout)(struct flb_worker *w, struct flb_conn *c);
	/* A pipe or buffer it waited for may be free now. */
	void (*resume)(struct flb_worker *w, struct flb_conn *c);
	/* Optional: the connection is closing; release what the mode holds
	 * beyond the common fields (called first by flb_conn_close). */
	void (*release)(struct flb_worker *w, struct flb_conn *c);
	/* Optional: the engine is stopping (drain): close now if idle, else
	 * finish what is in flight and close (may close c). */
	void (*drain)(struct flb_worker *w, struct flb_conn *c);
};

/* Direction flags. */
#define FLB_DIR_EOF      0x01  /* the source sent FIN */
#define FLB_DIR_SHUT     0x02  /* FIN passed on: shutdown(SHUT_WR) on the sink */
#define FLB_DIR_NOSPLICE 0x04  /* splice refused (EINVAL): use buffers */
#define FLB_DIR_WAITRES  0x08  /* waiting for a pipe or buffer */
#define FLB_DIR_BULK     0x10  /* bulk traffic: read with splice (see pump) */

/* One direction of the relay.  At most one of pipe and buf is attached, and
 * only while pending > 0 (or for the instant of a read). */
struct flb_dir {
	struct flb_pipe *pipe;
	struct flb_buf *buf;
	uint32_t pending;      /* bytes read, not yet written */
	uint16_t boff;         /* start of the pending bytes in buf */
	uint8_t flags;         /* FLB_DIR_* */
};

/* Connection states. */
#define FLB_CS_NEW        0
#define FLB_CS_CONNECTING 1
#define FLB_CS_RELAY      2
#define FLB_CS_DEAD       3    /* closed; freed at the end of the event batch */

#define FLB_NO_SRV   UINT32_MAX
#define FLB_MAX_TRIED 4         /* servers remembered as tried (ring) */

/* Per-side epoll registration: FLB_EV_REG | EPOLLIN | EPOLLOUT. */
#define FLB_EV_REG   0x80

struct flb_conn {
	struct flb_list node;          /* worker's live list, then its dead list */
	struct flb_list wnode;         /* worker's wait-for-resources queue */
	const struct flb_conn_ops *ops;
	struct flb_wsnap *ws;          /* snapshot it started on (keeps it alive) */
	const struct flb_listener *lsn;/* in ws->snap */
	struct flb_timer tmr;          /* connect timeout, then idle timeout */
	uint64_t last_ms;              /* last activity (idle timer is lazy) */
	uint64_t key;                  /* client-address hash (maglev, ring) */
	uint64_t t0_us;                /* connect start */
	int fd[2];                     /* client, server; -1 when none */
	uint32_t bk;                   /* backend (the listener's; per request in http) */
	uint32_t srv;                  /* backend-local server index, FLB_NO_SRV */
	uint32_t tried[FLB_MAX_TRIED];
	uint8_t ntried;                /* saturating count of tried servers */
	uint8_t attempts;              /* failed connect attempts so far */
	uint8_t state;                 /* FLB_CS_* */
	uint8_t ev[2];                 /* epoll registration per side */
	struct flb_dir dir[2];         /* 0: client->server, 1: server->client */
	struct flb_h1 *h1;             /* http mode: the request state (h1proxy.c) */
};

#endif /* FLB_CONN_T_H */
