/* snapshot-t.h: the immutable configuration a worker runs on, and the two
 * kinds of objects that outlive a single snapshot (listener sockets and
 * server state).
 *
 * A snapshot is built and sealed by the control thread (snapshot.h), then
 * never written again: workers read it without locks.  It is reference
 * counted: the engine holds one reference on the current snapshot, and each
 * worker holds one reference per snapshot that is its current one or that
 * still has connections started on it (a worker counts those connections
 * itself, without atomics, see struct flb_wsnap in engine-t.h), so per
 * connection no shared cache line is written for reclamation.  The last
 * release frees it, on whichever thread that is.
 *
 * Objects shared across snapshots, each reference counted by the snapshots
 * that point at it:
 * - struct flb_lsock: a listener's sockets (one SO_REUSEPORT socket per
 *   worker) and counters.  A new snapshot reuses the flb_lsock of a listener
 *   of the same name and address, so the sockets stay open across a swap.
 * - struct flb_srv: a server's identity (stable id from the binding, address),
 *   the state all workers must agree on (active connections, passive health)
 *   and its counters, so both survive a swap. */
#ifndef FLB_SNAPSHOT_T_H
#define FLB_SNAPSHOT_T_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "chash-t.h"
#include "h1proxy-t.h"
#include "list.h"
#include "stats-t.h"
#include "timer-t.h"

/* An IPv4 or IPv6 socket address. */
union flb_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* Balancing algorithms (names in flb_algo_from_name). */
enum flb_algo {
	FLB_ALGO_RR = 0,       /* round_robin */
	FLB_ALGO_WRR,          /* weighted_round_robin (smooth, as NGINX) */
	FLB_ALGO_LEASTCONN,    /* least_conn (weighted) */
	FLB_ALGO_RANDOM2,      /* random_two */
	FLB_ALGO_MAGLEV,       /* maglev on the client IP */
	FLB_ALGO_RING,         /* ring (ketama) on the client IP */
	FLB_ALGO_COUNT
};

/* Administrative server states: only UP takes new connections; DRAIN and
 * MAINT keep the ones they have (so does DOWN: the state only gates picks). */
enum flb_srv_state {
	FLB_SRV_UP = 0,
	FLB_SRV_DOWN,
	FLB_SRV_DRAIN,
	FLB_SRV_MAINT,
	FLB_SRV_STATE_COUNT
};

/* Listener modes: TCP is the L4 relay (conn.c), HTTP the HTTP/1.1 reverse
 * proxy (h1proxy.c). */
enum flb_mode {
	FLB_MODE_TCP = 0,
	FLB_MODE_HTTP,
	FLB_MODE_COUNT
};

/* One worker's slot of a server: its counters and that worker's idle
 * upstream connections to it (http mode), on their own cache line(s).
 * Touched only by worker w (the control thread reads the counters). */
struct flb_srv_slot {
	struct flb_srv_ctr c;
	struct flb_list idle;          /* struct flb_upconn, most recent first */
	uint32_t nidle;
} __attribute__((aligned(FLB_CACHELINE)));

/* A server's state shared by workers and snapshots.  Allocated aligned to a
 * cache line.
 *
 * SHARED MUTABLE STATE (the exceptions to "workers share nothing"), all in
 * the first cache line so a server costs one contended line:
 * - active: connections (attempting or established) to this server from all
 *   workers.  least_conn, random_two, bounded-load hashing and max_conn are
 *   defined on the global count, so it must be one number; updated with
 *   atomic add/sub on connect and close only.
 * - fails, down_until: passive health.  "max_fails consecutive failures take
 *   the server out" is a property of the server, whichever worker saw the
 *   failures; written only on connect failures and on the first success
 *   after failures, read (not written) on picks. */
struct flb_srv {
	_Atomic uint32_t active;
	_Atomic uint32_t fails;        /* consecutive connect failures */
	_Atomic uint64_t down_until;   /* monotonic ms; out while now < this */
	char pad_[FLB_CACHELINE - 16];

	_Atomic uint32_t refcnt;       /* snapshots pointing here */
	uint32_t nworkers;
	uint64_t id;                   /* stable id given by the binding */
	union flb_sockaddr addr;
	socklen_t addrlen;
	char *address;                 /* as written in the config; owned */
	struct flb_srv_slot slots[];   /* nworkers */
} __attribute__((aligned(FLB_CACHELINE)));

/* Listener slot flags (paused: why a worker is not accepting on it). */
#define FLB_LPAUSE_LIMIT 0x01      /* a connection limit is reached */
#define FLB_LPAUSE_ERR   0x02      /* accept failed with EMFILE/ENFILE/... */

struct flb_lsock;

/* One worker's view of a listener: its socket, epoll and pause state, a
 * timer for pauses, and its counters.  After the snapshot that carries the
 * listener is published, slot w is touched only by worker w (the control
 * thread only reads the counters). */
struct flb_lsock_slot {
	struct flb_lsock *ls;          /* back pointer */
	int fd;                        /* -1 once closed */
	uint8_t reg;                   /* registered in the worker's epoll */
	uint8_t paused;                /* FLB_LPAUSE_* */
	uint32_t cur;                  /* index in the worker's current snapshot */
	uint64_t seen_gen;             /* generation that last listed it */
	struct flb_timer tmr;          /* pause timer */
	struct flb_lsn_ctr c;
} __attribute__((aligned(FLB_CACHELINE)));

/* A listener's sockets, shared by the snapshots that keep the listener.
 *
 * SHARED MUTABLE STATE: `active` counts this listener's connections over all
 * workers, because max_connections is a limit on the listener, not on one
 * worker; atomic add/sub on accept and close, on its own cache line. */
struct flb_lsock {
	_Atomic uint32_t active;
	char pad_[FLB_CACHELINE - 4];

	_Atomic uint32_t refcnt;
	uint32_t nworkers;
	char *name;                    /* owned */
	char *host;                    /* as configured; owned */
	uint16_t port;                 /* as configured (0: ephemeral) */
	uint8_t bound;                 /* sockets created and listening */
	union flb_sockaddr addr;       /* configured address */
	socklen_t addrlen;
	union flb_sockaddr bound_addr; /* actual address (port filled in) */
	struct flb_lsock_slot slots[]; /* nworkers */
} __attribute__((aligned(FLB_CACHELINE)));

struct flb_conn_ops;

/* A listener in a snapshot: its sockets and its per-snapshot settings. */
struct flb_listener {
	struct flb_lsock *sock;
	const struct flb_conn_ops *ops; /* from mode: how connections run */
	uint32_t backend;               /* index into flb_snapshot.bk */
	uint32_t connect_timeout_ms;    /* 0: none */
	uint32_t idle_timeout_ms;       /* 0: none */
	uint32_t maxconn;               /* 0: unlimited */
	uint8_t mode;                   /* enum flb_mode */
	struct flb_http_lsn *http;      /* mode http: routes and settings; owned */
};

/* A server in a snapshot: its shared state and per-snapshot settings. */
struct flb_server {
	struct flb_srv *sh;
	uint32_t weight;                /* 0: takes no new connections */
	uint32_t maxconn;               /* 0: unlimited */
	uint32_t backend;
	uint8_t state;                  /* enum flb_srv_state */
	uint64_t cookie;                /* sticky-cookie id: a hash of backend name
	                                 * and address, stable across restarts */
};

/* A backend: a slice of flb_snapshot.srv, its algorithm and the prebuilt
 * hash table (maglev or ring) keyed on the client IP. */
struct flb_backend {
	char *name;                     /* owned */
	uint8_t algo;                   /* enum flb_algo */
	uint32_t retries;               /* extra connect attempts after a failure */
	uint32_t max_fails;             /* 0: passive health off */
	uint32_t fail_timeout_ms;
	double load_factor;             /* bounded loads c >= 1; 0: unbounded */
	uint32_t first, nsrv;           /* servers srv[first .. first+nsrv) */
	uint32_t *weights;              /* nsrv table weights (>= 1); owned */
	struct flb_maglev maglev;       /* FLB_ALGO_MAGLEV only */
	struct flb_ring ring;           /* FLB_ALGO_RING only */
	struct flb_http_bk http;        /* http-mode settings (hash key, sticky, pool) */
};

/* A sealed, immutable configuration. */
struct flb_snapshot {
	_Atomic uint32_t refcnt;
	uint32_t nworkers;
	uint64_t gen;                   /* increasing per engine, >= 1 */
	uint32_t maxconn;               /* global limit, 0: unlimited */
	uint32_t nlsn, nbk, nsrv;
	uint32_t max_bk_srv;            /* largest backend (scratch sizing) */
	struct flb_listener *lsn;
	struct flb_backend *bk;
	struct flb_server *srv;
};

struct flb_snap_builder;

#endif /* FLB_SNAPSHOT_T_H */
