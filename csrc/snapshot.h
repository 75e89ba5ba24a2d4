/* snapshot.h: build, seal, bind and reference-count configuration
 * snapshots.  Types and the sharing rules in snapshot-t.h.
 *
 * Flow (control thread only): flb_snap_builder_new, then flb_snap_add_* in
 * any order (backends before the servers and listeners that name them),
 * then the engine seals it against its current snapshot (reusing listener
 * sockets and server state), binds new listeners and publishes it.  Every
 * add returns an index >= 0 or a negative errno; the first error also sticks
 * in the builder with a message, so a caller may check once at the end. */
#ifndef FLB_SNAPSHOT_H
#define FLB_SNAPSHOT_H

#include <stddef.h>

#include "h1proxy-t.h"
#include "router-t.h"
#include "snapshot-t.h"

/* Returns a new, empty builder, or NULL on ENOMEM. */
struct flb_snap_builder *flb_snap_builder_new(void);

/* Returns the message of the builder's first error, or "" if none. */
const char *flb_snap_builder_error(const struct flb_snap_builder *b);

/* Free a builder (not needed after a seal, which consumes it). */
void flb_snap_builder_free(struct flb_snap_builder *b);

/* Set the global connection limit.  maxconn: 0 = unlimited.  Returns 0. */
int flb_snap_set_global(struct flb_snap_builder *b, uint32_t maxconn);

/* Add a backend.
 * name: unique, non-empty; algo: enum flb_algo; retries: extra attempts;
 * load_factor: 0 (unbounded) or >= 1 (bounded loads, maglev/ring only);
 * max_fails: 0 disables passive health; fail_timeout_ms: cool-off.
 * Returns the backend index, or -EINVAL / -ENOMEM. */
int flb_snap_add_backend(struct flb_snap_builder *b, const char *name, int algo,
                         uint32_t retries, double load_factor, uint32_t max_fails,
                         uint32_t fail_timeout_ms);

/* Add a server to backend bk.
 * id: stable identity (same id = same server state across snapshots; the
 * caller must give the same address to the same id); address: text as
 * written, used as the hash-table key and in stats; host: IPv4/IPv6 literal
 * (brackets allowed); weight: 0 = no new connections; maxconn: 0 =
 * unlimited; state: enum flb_srv_state.
 * Returns the server's index in its backend, or -EINVAL / -ENOMEM. */
int flb_snap_add_server(struct flb_snap_builder *b, uint32_t bk, uint64_t id,
                        const char *address, const char *host, uint16_t port,
                        uint32_t weight, uint32_t maxconn, int state);

/* Add a listener.
 * name: unique; host: IPv4/IPv6 literal; port: 0 = ephemeral; mode: enum
 * flb_mode; bk: backend index; timeouts in ms (0 = none); maxconn: 0 =
 * unlimited.  Returns the listener index, or -EINVAL / -ENOMEM. */
int flb_snap_add_listener(struct flb_snap_builder *b, const char *name, const char *host,
                          uint16_t port, int mode, uint32_t bk,
                          uint32_t connect_timeout_ms, uint32_t idle_timeout_ms,
                          uint32_t maxconn);

/* Make listener lsn (mode http) an HTTP reverse proxy with settings hs
 * (copied; see struct flb_http_settings in h1proxy-t.h).  Its backend, which
 * may be FLB_NO_BK for mode http, is the default route's.  Call it before
 * adding routes; calling it again replaces the settings.
 * Returns 0, or -EINVAL (no such listener, not mode http, max_head over
 * FLB_BUF_SIZE, bad request-id header name) / -ENOMEM. */
int flb_snap_set_http(struct flb_snap_builder *b, uint32_t lsn,
                      const struct flb_http_settings *hs);

/* Append a route to listener lsn (after flb_snap_set_http).
 * spec: the matcher and target rewrite (router-t.h); spec->backend is a
 *   backend index or FLB_NO_BK (answer 404).
 * ex: timeouts, body limit and header operations; NULL: none.
 * Returns the route index, or -EINVAL (the message names the problem),
 * -E2BIG, -ENOSPC or -ENOMEM. */
int flb_snap_add_route(struct flb_snap_builder *b, uint32_t lsn,
                       const struct flb_route_spec *spec, const struct flb_route_extra *ex);

/* Set a backend's HTTP settings (defaults: client_ip key, no sticky cookie,
 * 32 idle upstream connections per worker and server, 4 s idle, no resend
 * of non-idempotent requests).
 * hkey: enum flb_hkey_kind; hkey_name: the header or cookie name for
 *   FLB_HKEY_HEADER / FLB_HKEY_COOKIE (ignored otherwise);
 * sticky: cookie name or NULL;
 * pool_max_idle: idle upstream connections kept per worker and server
 *   (0: none kept); pool_idle_ms: how long one may stay idle (0: 4 s,
 *   below the 5 s keep-alive of common servers, so fastlb closes first);
 * retry_unsafe: nonzero to resend non-idempotent requests too after the
 *   connection failed before a response (RFC 9112 9.3.1 forbids it unless
 *   the backend is known to be safe).
 * Returns 0 or -EINVAL / -ENOMEM. */
int flb_snap_set_backend_http(struct flb_snap_builder *b, uint32_t bk, int hkey,
                              const char *hkey_name, const char *sticky,
                              uint32_t pool_max_idle, uint32_t pool_idle_ms, int retry_unsafe);

/* Seal a builder into a snapshot; consumes b in all cases.
 * prev: the current snapshot or NULL; listeners (same name and host, and
 * the same configured port or a port equal to the one an ephemeral listener
 * got) and servers (same id and address) found there are shared, not
 * recreated.
 * nworkers: slots per shared object; gen: the new generation.
 * out: the snapshot, refcount 1, listeners not yet bound.
 * err: message buffer (errlen bytes) on failure.
 * Returns 0, -EINVAL or -ENOMEM. */
int flb_snap_seal(struct flb_snap_builder *b, const struct flb_snapshot *prev,
                  uint32_t nworkers, uint64_t gen, struct flb_snapshot **out,
                  char *err, size_t errlen);

/* Create and bind the sockets of every listener of s not bound yet: one
 * SO_REUSEPORT socket per worker (IPv6 ones v6-only), the first bound to
 * the configured port (0: the kernel picks) and the others to the port the
 * first got.
 * backlog: listen(2) backlog.  On failure the sockets bound by this call are
 * closed again, message in err.  Returns 0 or a negative errno. */
int flb_snap_bind(struct flb_snapshot *s, int backlog, char *err, size_t errlen);

/* Take a reference.  s: a live snapshot. */
static inline void flb_snapshot_ref(struct flb_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
}

/* Drop a reference; the last one frees the snapshot and drops its listener
 * sockets and server states (closing sockets no snapshot keeps).
 * s: the snapshot, or NULL (no-op). */
void flb_snapshot_release(struct flb_snapshot *s);

/* Take a reference on a server's shared state (it then outlives the
 * snapshots that list it: pooled upstream connections hold one).
 * sv: the state. */
static inline void flb_srv_ref(struct flb_srv *sv)
{
	atomic_fetch_add_explicit(&sv->refcnt, 1, memory_order_relaxed);
}

/* Drop a reference on a server's shared state; the last frees it, on
 * whichever thread that is.  sv: the state, or NULL (no-op). */
void flb_srv_release(struct flb_srv *sv);

/* Parse an algorithm name (round_robin, weighted_round_robin, least_conn,
 * random_two, maglev, ring).  Returns the enum flb_algo value or -1. */
int flb_algo_from_name(const char *name);

/* Parse a server state name (up, down, drain, maint).  Returns the enum
 * flb_srv_state value or -1. */
int flb_state_from_name(const char *name);

/* Parse a listener mode name (tcp, http).  Returns the enum flb_mode value or -1. */
int flb_mode_from_name(const char *name);

/* Returns the name of an enum flb_srv_state value ("?" if out of range). */
const char *flb_state_name(int state);

/* Returns the name of an enum flb_algo value ("?" if out of range). */
const char *flb_algo_name(int algo);

/* Parse an IP literal and port into a socket address.
 * host: IPv4 dotted quad or IPv6 (optionally in brackets, optionally with a
 * numeric %scope).  Returns the address length, or 0 when host is invalid. */
socklen_t flb_sockaddr_parse(union flb_sockaddr *sa, const char *host, uint16_t port);

/* Format the host part of an address into buf (at least 64 bytes).
 * port: out, the port.  Returns buf, or "" on an unknown family. */
const char *flb_sockaddr_host(const union flb_sockaddr *sa, char *buf, size_t len,
                              uint16_t *port);

#endif /* FLB_SNAPSHOT_H */
