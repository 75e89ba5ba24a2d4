/* h1conf.h: building the http-mode parts of a snapshot (struct
 * flb_http_lsn, struct flb_http_bk in h1proxy-t.h).  Control thread only,
 * at build time; the results are immutable once the snapshot is sealed. */
#ifndef FLB_H1CONF_H
#define FLB_H1CONF_H

#include <stddef.h>

#include "h1proxy-t.h"
#include "router-t.h"

/* Make a listener's http part.
 * default_bk: backend of the default route (no route matched), or FLB_NO_BK;
 * hs: settings (copied; request_id_header only read).
 * err, errlen: message on failure.
 * Returns the new object (owned by the caller, flb_http_lsn_free), or NULL
 * (invalid settings: message in err; or out of memory). */
struct flb_http_lsn *flb_http_lsn_new(uint32_t default_bk, const struct flb_http_settings *hs,
                                      char *err, size_t errlen);

/* Append a route.
 * h: the listener's http part; spec: matcher and rewrite (copied);
 * ex: timeouts, body limit, header ops (copied), or NULL; nbk: number of
 *   backends (spec->backend must be below it or FLB_NO_BK).
 * Returns the route index, or a negative errno with a message in err. */
int flb_http_lsn_add_route(struct flb_http_lsn *h, const struct flb_route_spec *spec,
                           const struct flb_route_extra *ex, uint32_t nbk,
                           char *err, size_t errlen);

/* Free a listener's http part.  h: the object, or NULL. */
void flb_http_lsn_free(struct flb_http_lsn *h);

/* Set a backend's http part (see flb_snap_set_backend_http in snapshot.h).
 * hb: the backend's part (its old strings are freed).
 * Returns 0, -EINVAL (bad kind or name) or -ENOMEM. */
int flb_http_bk_set(struct flb_http_bk *hb, int hkey, const char *hkey_name,
                    const char *sticky, uint32_t pool_max_idle, uint32_t pool_idle_ms,
                    int retry_unsafe);

/* Fill a backend's http part with the defaults.  hb: the part. */
void flb_http_bk_default(struct flb_http_bk *hb);

/* Free the strings of a backend's http part.  hb: the part. */
void flb_http_bk_free(struct flb_http_bk *hb);

#endif /* FLB_H1CONF_H */
