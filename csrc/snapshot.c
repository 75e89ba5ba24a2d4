/* snapshot.c: building, sealing, binding and freeing config snapshots (see
 * snapshot-t.h for what is shared between snapshots and why). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "compiler.h"
#include "alog.h"
#include "conn.h"
#include "h1conf.h"
#include "hash.h"
#include "maglev.h"
#include "ring.h"
#include "snapshot.h"
#include "timer.h"

/* What the builder records before sealing. */
struct bbk {
	char *name;
	uint8_t algo;
	uint32_t retries, max_fails, fail_timeout_ms;
	double load_factor;
	struct flb_http_bk http;
};

struct bsrv {
	uint32_t bk;
	uint64_t id;
	char *address;
	union flb_sockaddr addr;
	socklen_t addrlen;
	uint32_t weight, maxconn;
	uint8_t state;
};

struct blsn {
	char *name, *host;
	uint16_t port;
	union flb_sockaddr addr;
	socklen_t addrlen;
	uint8_t mode;
	uint32_t bk, cto, ito, maxconn;
	struct flb_http_lsn *http;   /* mode http; moved into the snapshot */
};

struct flb_snap_builder {
	uint32_t maxconn;
	struct bbk *bk;
	struct bsrv *srv;
	struct blsn *lsn;
	uint32_t nbk, nsrv, nlsn;
	uint32_t capbk, capsrv, caplsn;
	int err;               /* first error, sticky */
	char msg[160];
};

static const char *const algo_names[FLB_ALGO_COUNT] = {
	"round_robin", "weighted_round_robin", "least_conn", "random_two", "maglev", "ring",
};
static const char *const state_names[FLB_SRV_STATE_COUNT] = { "up", "down", "drain", "maint" };
static const char *const mode_names[FLB_MODE_COUNT] = { "tcp", "http" };

/* Parse an algorithm name (contract in snapshot.h). */
int flb_algo_from_name(const char *name)
{
	for (int i = 0; i < FLB_ALGO_COUNT; i++)
		if (strcmp(name, algo_names[i]) == 0)
			return i;
	return -1;
}

/* Parse a server state name (contract in snapshot.h). */
int flb_state_from_name(const char *name)
{
	for (int i = 0; i < FLB_SRV_STATE_COUNT; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

/* Parse a mode name (contract in snapshot.h). */
int flb_mode_from_name(const char *name)
{
	for (int i = 0; i < FLB_MODE_COUNT; i++)
		if (strcmp(name, mode_names[i]) == 0)
			return i;
	return -1;
}

/* Name of a state (contract in snapshot.h). */
const char *flb_state_name(int state)
{
	return state >= 0 && state < FLB_SRV_STATE_COUNT ? state_names[state] : "?";
}

/* Name of an algorithm (contract in snapshot.h). */
const char *flb_algo_name(int algo)
{
	return algo >= 0 && algo < FLB_ALGO_COUNT ? algo_names[algo] : "?";
}

/* Parse an IP literal and port (contract in snapshot.h). */
socklen_t flb_sockaddr_parse(union flb_sockaddr *sa, const char *host, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
	size_t len = strlen(host);
	char *pct;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, host, &sa->in4.sin_addr) == 1) {
		sa->in4.sin_family = AF_INET;
		sa->in4.sin_port = htons(port);
		return sizeof(sa->in4);
	}
	if (len >= sizeof(buf))
		return 0;
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = 0;
	} else {
		memcpy(buf, host, len + 1);
	}
	pct = strchr(buf, '%');
	if (pct != NULL) {
		char *end;
		unsigned long scope;

		*pct++ = 0;
		scope = strtoul(pct, &end, 10);
		if (*pct == 0 || *end != 0) {
			scope = if_nametoindex(pct);
			if (scope == 0)
				return 0;
		}
		sa->in6.sin6_scope_id = (uint32_t)scope;
	}
	if (inet_pton(AF_INET6, buf, &sa->in6.sin6_addr) != 1)
		return 0;
	sa->in6.sin6_family = AF_INET6;
	sa->in6.sin6_port = htons(port);
	return sizeof(sa->in6);
}

/* Format an address's host (contract in snapshot.h). */
const char *flb_sockaddr_host(const union flb_sockaddr *sa, char *buf, size_t len,
                              uint16_t *port)
{
	*port = 0;
	if (sa->sa.sa_family == AF_INET) {
		*port = ntohs(sa->in4.sin_port);
		return inet_ntop(AF_INET, &sa->in4.sin_addr, buf, (socklen_t)len) ? buf : "";
	}
	if (sa->sa.sa_family == AF_INET6) {
		*port = ntohs(sa->in6.sin6_port);
		return inet_ntop(AF_INET6, &sa->in6.sin6_addr, buf, (socklen_t)len) ? buf : "";
	}
	return "";
}

/* Record the builder's first error.  b: the builder; code: negative errno;
 * fmt...: the message.  Returns code. */
static int b_fail(struct flb_snap_builder *b, int code, const char *fmt, ...)
{
	va_list ap;

	if (b->err == 0) {
		b->err = code;
		va_start(ap, fmt);
		vsnprintf(b->msg, sizeof(b->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Grow an array to hold one more element.  arr: in/out array; n: current
 * count; cap: in/out capacity; size: element size.  Returns 0 or -1. */
static int grow(void **arr, uint32_t n, uint32_t *cap, size_t size)
{
	void *p;
	uint32_t nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 8;
	p = realloc(*arr, (size_t)nc * size);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = nc;
	return 0;
}

/* New builder (contract in snapshot.h). */
struct flb_snap_builder *flb_snap_builder_new(void)
{
	return calloc(1, sizeof(struct flb_snap_builder));
}

/* The builder's first error (contract in snapshot.h). */
const char *flb_snap_builder_error(const struct flb_snap_builder *b)
{
	return b->msg;
}

/* Free a builder (contract in snapshot.h). */
void flb_snap_builder_free(struct flb_snap_builder *b)
{
	if (b == NULL)
		return;
	for (uint32_t i = 0; i < b->nbk; i++) {
		free(b->bk[i].name);
		flb_http_bk_free(&b->bk[i].http);
	}
	for (uint32_t i = 0; i < b->nsrv; i++)
		free(b->srv[i].address);
	for (uint32_t i = 0; i < b->nlsn; i++) {
		free(b->lsn[i].name);
		free(b->lsn[i].host);
		flb_http_lsn_free(b->lsn[i].http);
	}
	free(b->bk);
	free(b->srv);
	free(b->lsn);
	free(b);
}

/* Set the global limit (contract in snapshot.h). */
int flb_snap_set_global(struct flb_snap_builder *b, uint32_t maxconn)
{
	b->maxconn = maxconn;
	return 0;
}

/* Add a backend (contract in snapshot.h). */
int flb_snap_add_backend(struct flb_snap_builder *b, const char *name, int algo,
                         uint32_t retries, double load_factor, uint32_t max_fails,
                         uint32_t fail_timeout_ms)
{
	struct bbk *k;

	if (name == NULL || name[0] == 0)
		return b_fail(b, -EINVAL, "backend name must not be empty");
	if (algo < 0 || algo >= FLB_ALGO_COUNT)
		return b_fail(b, -EINVAL, "backend %s: unknown balance algorithm", name);
	if (!(load_factor == 0.0 || load_factor >= 1.0))
		return b_fail(b, -EINVAL, "backend %s: load_factor must be >= 1", name);
	for (uint32_t i = 0; i < b->nbk; i++)
		if (strcmp(b->bk[i].name, name) == 0)
			return b_fail(b, -EINVAL, "duplicate backend %s", name);
	if (grow((void **)&b->bk, b->nbk, &b->capbk, sizeof(*b->bk)) < 0)
		return b_fail(b, -ENOMEM, "out of memory");
	k = &b->bk[b->nbk];
	k->name = strdup(name);
	if (k->name == NULL)
		return b_fail(b, -ENOMEM, "out of memory");
	k->algo = (uint8_t)algo;
	k->retries = retries;
	k->load_factor = load_factor;
	k->max_fails = max_fails;
	k->fail_timeout_ms = fail_timeout_ms;
	flb_http_bk_default(&k->http);
	return (int)b->nbk++;
}

/* Add a server (contract in snapshot.h). */
int flb_snap_add_server(struct flb_snap_builder *b, uint32_t bk, uint64_t id,
                        const char *address, const char *host, uint16_t port,
                        uint32_t weight, uint32_t maxconn, int state)
{
	struct bsrv *s;
	uint32_t idx = 0;

	if (bk >= b->nbk)
		return b_fail(b, -EINVAL, "server %s: no such backend", address);
	if (state < 0 || state >= FLB_SRV_STATE_COUNT)
		return b_fail(b, -EINVAL, "server %s: unknown state", address);
	if (port == 0)
		return b_fail(b, -EINVAL, "server %s: port must not be 0", address);
	for (uint32_t i = 0; i < b->nsrv; i++) {
		if (b->srv[i].id == id)
			return b_fail(b, -EINVAL, "server %s: duplicate id", address);
		idx += b->srv[i].bk == bk;
	}
	if (grow((void **)&b->srv, b->nsrv, &b->capsrv, sizeof(*b->srv)) < 0)
		return b_fail(b, -ENOMEM, "out of memory");
	s = &b->srv[b->nsrv];
	memset(s, 0, sizeof(*s));
	s->addrlen = flb_sockaddr_parse(&s->addr, host, port);
	if (s->addrlen == 0)
		return b_fail(b, -EINVAL, "server %s: %s is not an IP address", address, host);
	s->address = strdup(address);
	if (s->address == NULL)
		return b_fail(b, -ENOMEM, "out of memory");
	s->bk = bk;
	s->id = id;
	s->weight = weight;
	s->maxconn = maxconn;
	s->state = (uint8_t)state;
	b->nsrv++;
	return (int)idx;
}

/* Add a listener (contract in snapshot.h). */
int flb_snap_add_listener(struct flb_snap_builder *b, const char *name, const char *host,
                          uint16_t port, int mode, uint32_t bk,
                          uint32_t connect_timeout_ms, uint32_t idle_timeout_ms,
                          uint32_t maxconn)
{
	struct blsn *l;

	if (name == NULL || name[0] == 0)
		return b_fail(b, -EINVAL, "listener name must not be empty");
	if (mode < 0 || mode >= FLB_MODE_COUNT)
		return b_fail(b, -EINVAL, "listener %s: unsupported mode", name);
	if (bk >= b->nbk && !(bk == FLB_NO_BK && mode == FLB_MODE_HTTP))
		return b_fail(b, -EINVAL, "listener %s: no such backend", name);
	for (uint32_t i = 0; i < b->nlsn; i++) {
		if (strcmp(b->lsn[i].name, name) == 0)
			return b_fail(b, -EINVAL, "duplicate listener %s", name);
	}
	if (grow((void **)&b->lsn, b->nlsn, &b->caplsn, sizeof(*b->lsn)) < 0)
		return b_fail(b, -ENOMEM, "out of memory");
	l = &b->lsn[b->nlsn];
	memset(l, 0, sizeof(*l));
	l->addrlen = flb_sockaddr_parse(&l->addr, host, port);
	if (l->addrlen == 0)
		return b_fail(b, -EINVAL, "listener %s: %s is not an IP address", name, host);
	for (uint32_t i = 0; i < b->nlsn; i++) {
		if (port != 0 && b->lsn[i].port == port && b->lsn[i].addrlen == l->addrlen &&
		    memcmp(&b->lsn[i].addr, &l->addr, l->addrlen) == 0)
			return b_fail(b, -EINVAL, "listeners %s and %s have the same address",
			              b->lsn[i].name, name);
	}
	l->name = strdup(name);
	l->host = strdup(host);
	if (l->name == NULL || l->host == NULL) {
		free(l->name);
		free(l->host);
		return b_fail(b, -ENOMEM, "out of memory");
	}
	l->port = port;
	l->mode = (uint8_t)mode;
	l->bk = bk;
	l->cto = connect_timeout_ms;
	l->ito = idle_timeout_ms;
	l->maxconn = maxconn;
	return (int)b->nlsn++;
}

/* Give an http listener its settings (contract in snapshot.h). */
int flb_snap_set_http(struct flb_snap_builder *b, uint32_t lsn,
                      const struct flb_http_settings *hs)
{
	struct blsn *l;
	struct flb_http_lsn *h;
	char err[128];

	if (lsn >= b->nlsn)
		return b_fail(b, -EINVAL, "no such listener");
	l = &b->lsn[lsn];
	if (l->mode != FLB_MODE_HTTP)
		return b_fail(b, -EINVAL, "listener %s: http settings need mode http", l->name);
	if (l->http != NULL && l->http->nroutes)
		return b_fail(b, -EINVAL, "listener %s: http settings after routes", l->name);
	err[0] = 0;
	h = flb_http_lsn_new(l->bk, hs, err, sizeof(err));
	if (h == NULL)
		return b_fail(b, err[0] ? -EINVAL : -ENOMEM, "listener %s: %s", l->name,
		              err[0] ? err : "out of memory");
	flb_http_lsn_free(l->http);
	l->http = h;
	return 0;
}

/* Append a route to an http listener (contract in snapshot.h). */
int flb_snap_add_route(struct flb_snap_builder *b, uint32_t lsn,
                       const struct flb_route_spec *spec, const struct flb_route_extra *ex)
{
	struct blsn *l;
	char err[128];
	int rc;

	if (lsn >= b->nlsn)
		return b_fail(b, -EINVAL, "no such listener");
	l = &b->lsn[lsn];
	if (l->http == NULL)
		return b_fail(b, -EINVAL, "listener %s: routes need mode http settings", l->name);
	err[0] = 0;
	rc = flb_http_lsn_add_route(l->http, spec, ex, b->nbk, err, sizeof(err));
	if (rc < 0)
		return b_fail(b, rc, "listener %s: %s", l->name, err);
	return rc;
}

/* Set a backend's http settings (contract in snapshot.h). */
int flb_snap_set_backend_http(struct flb_snap_builder *b, uint32_t bk, int hkey,
                              const char *hkey_name, const char *sticky,
                              uint32_t pool_max_idle, uint32_t pool_idle_ms, int retry_unsafe)
{
	int rc;

	if (bk >= b->nbk)
		return b_fail(b, -EINVAL, "no such backend");
	rc = flb_http_bk_set(&b->bk[bk].http, hkey, hkey_name, sticky, pool_max_idle,
	                     pool_idle_ms, retry_unsafe);
	if (rc < 0)
		return b_fail(b, rc, "backend %s: %s", b->bk[bk].name,
		              rc == -ENOMEM ? "out of memory" :
		              "invalid hash_key or sticky_cookie name");
	return 0;
}

/* Size of a shared object with n per-worker slots, rounded to a cache line.
 * base: size of the fixed part; slot: size of one slot. */
static size_t shared_size(size_t base, size_t slot, uint32_t n)
{
	size_t sz = base + slot * n;

	return (sz + FLB_CACHELINE - 1) & ~(size_t)(FLB_CACHELINE - 1);
}

/* Allocate a new server state from a builder entry.
 * s: the entry; nworkers: slots.  Returns it (refcount 1) or NULL. */
static struct flb_srv *srv_new(const struct bsrv *s, uint32_t nworkers)
{
	size_t sz = shared_size(sizeof(struct flb_srv), sizeof(struct flb_srv_slot), nworkers);
	struct flb_srv *sv = aligned_alloc(FLB_CACHELINE, sz);

	if (sv == NULL)
		return NULL;
	memset(sv, 0, sz);
	sv->address = strdup(s->address);
	if (sv->address == NULL) {
		free(sv);
		return NULL;
	}
	atomic_init(&sv->refcnt, 1);
	sv->nworkers = nworkers;
	sv->id = s->id;
	sv->addr = s->addr;
	sv->addrlen = s->addrlen;
	for (uint32_t i = 0; i < nworkers; i++)
		flb_list_init(&sv->slots[i].idle);
	return sv;
}

/* Drop a reference on a server state (contract in snapshot.h). */
void flb_srv_release(struct flb_srv *sv)
{
	if (sv == NULL || atomic_fetch_sub_explicit(&sv->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	free(sv->address);
	free(sv);
}

/* Allocate a new listener socket set from a builder entry (no socket yet).
 * l: the entry; nworkers: slots.  Returns it (refcount 1) or NULL. */
static struct flb_lsock *lsock_new(const struct blsn *l, uint32_t nworkers)
{
	size_t sz = shared_size(sizeof(struct flb_lsock), sizeof(struct flb_lsock_slot), nworkers);
	struct flb_lsock *ls = aligned_alloc(FLB_CACHELINE, sz);

	if (ls == NULL)
		return NULL;
	memset(ls, 0, sz);
	ls->name = strdup(l->name);
	ls->host = strdup(l->host);
	if (ls->name == NULL || ls->host == NULL) {
		free(ls->name);
		free(ls->host);
		free(ls);
		return NULL;
	}
	atomic_init(&ls->refcnt, 1);
	ls->nworkers = nworkers;
	ls->port = l->port;
	ls->addr = l->addr;
	ls->addrlen = l->addrlen;
	for (uint32_t w = 0; w < nworkers; w++) {
		ls->slots[w].ls = ls;
		ls->slots[w].fd = -1;
		flb_timer_init(&ls->slots[w].tmr, NULL);
	}
	return ls;
}

/* Drop a reference on a listener socket set; the last closes the sockets
 * that are still open (workers close and forget theirs when they stop using
 * the listener, so what is left was never handed to a worker).
 * ls: the set or NULL. */
static void lsock_release(struct flb_lsock *ls)
{
	if (ls == NULL || atomic_fetch_sub_explicit(&ls->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	for (uint32_t w = 0; w < ls->nworkers; w++)
		if (ls->slots[w].fd >= 0)
			close(ls->slots[w].fd);
	free(ls->name);
	free(ls->host);
	free(ls);
}

/* Free a snapshot's contents and itself (refcount reached zero).
 * s: the snapshot. */
static void snap_free(struct flb_snapshot *s)
{
	for (uint32_t i = 0; i < s->nlsn; i++) {
		lsock_release(s->lsn[i].sock);
		flb_http_lsn_free(s->lsn[i].http);
	}
	for (uint32_t i = 0; i < s->nsrv; i++)
		flb_srv_release(s->srv[i].sh);
	for (uint32_t i = 0; i < s->nbk; i++) {
		free(s->bk[i].name);
		free(s->bk[i].weights);
		flb_maglev_free(&s->bk[i].maglev);
		flb_ring_free(&s->bk[i].ring);
		flb_http_bk_free(&s->bk[i].http);
	}
	free(s->lsn);
	free(s->srv);
	free(s->bk);
	free(s);
}

/* Drop a reference (contract in snapshot.h). */
void flb_snapshot_release(struct flb_snapshot *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	snap_free(s);
}

/* Build the hash table of a maglev or ring backend.
 * s: the snapshot being sealed; k: the backend.  Returns 0 or -errno. */
static int build_table(struct flb_snapshot *s, struct flb_backend *k)
{
	struct flb_hkey *keys;
	int rc;

	if (k->nsrv == 0 || (k->algo != FLB_ALGO_MAGLEV && k->algo != FLB_ALGO_RING))
		return 0;
	keys = calloc(k->nsrv, sizeof(*keys));
	if (keys == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < k->nsrv; i++) {
		const char *a = s->srv[k->first + i].sh->address;

		keys[i].data = a;
		keys[i].len = strlen(a);
	}
	if (k->algo == FLB_ALGO_MAGLEV) {
		uint32_t size = FLB_MAGLEV_DEFAULT_SIZE;

		rc = k->nsrv < size ? flb_maglev_build(&k->maglev, keys, k->weights, k->nsrv, size)
		                    : FLB_CHASH_EINVAL;
	} else {
		rc = flb_ring_build(&k->ring, keys, k->weights, k->nsrv, FLB_RING_DEFAULT_VNODES);
	}
	free(keys);
	if (rc == FLB_CHASH_ENOMEM)
		return -ENOMEM;
	return rc == FLB_CHASH_OK ? 0 : -EINVAL;
}

/* Whether listener l has an access log with this path and format. */
static int same_log(const struct flb_listener *l, const char *path, int format)
{
	return l->http != NULL && l->http->alog != NULL &&
	       strcmp(flb_alog_path(l->http->alog), path) == 0 &&
	       flb_alog_format(l->http->alog) == format;
}

/* Give an http listener being sealed its access log: the one of a listener
 * already sealed in s, or of one in prev, with the same path and format
 * (so the file and its writer thread survive updates), else a new one.
 * s: the snapshot being sealed (s->nlsn listeners done, l is the last);
 * prev: the current snapshot or NULL.  Returns 0, or -1 with err set. */
static int access_log_attach(struct flb_snapshot *s, const struct flb_snapshot *prev,
                             struct flb_listener *l, char *err, size_t errlen)
{
	const char *path = l->http->alog_path;
	int fmt = l->http->set.access_log_format;

	for (uint32_t j = 0; j + 1 < s->nlsn; j++) {
		if (same_log(&s->lsn[j], path, fmt)) {
			l->http->alog = flb_alog_ref(s->lsn[j].http->alog);
			return 0;
		}
	}
	for (uint32_t j = 0; prev != NULL && j < prev->nlsn; j++) {
		if (same_log(&prev->lsn[j], path, fmt)) {
			l->http->alog = flb_alog_ref(prev->lsn[j].http->alog);
			return 0;
		}
	}
	l->http->alog = flb_alog_open(path, fmt, s->nworkers, 0, err, errlen);
	return l->http->alog != NULL ? 0 : -1;
}

/* Seal a builder (contract in snapshot.h). */
int flb_snap_seal(struct flb_snap_builder *b, const struct flb_snapshot *prev,
                  uint32_t nworkers, uint64_t gen, struct flb_snapshot **out,
                  char *err, size_t errlen)
{
	struct flb_snapshot *s = NULL;
	uint32_t *fill = NULL;
	int rc = 0;

	*out = NULL;
	if (b->err) {
		rc = b->err;
		snprintf(err, errlen, "%s", b->msg);
		goto done;
	}
	rc = -ENOMEM;
	snprintf(err, errlen, "out of memory");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto done;
	atomic_init(&s->refcnt, 1);
	s->nworkers = nworkers;
	s->gen = gen;
	s->maxconn = b->maxconn;
	s->bk = calloc(b->nbk ? b->nbk : 1, sizeof(*s->bk));
	s->srv = calloc(b->nsrv ? b->nsrv : 1, sizeof(*s->srv));
	s->lsn = calloc(b->nlsn ? b->nlsn : 1, sizeof(*s->lsn));
	fill = calloc(b->nbk ? b->nbk : 1, sizeof(*fill));
	if (s->bk == NULL || s->srv == NULL || s->lsn == NULL || fill == NULL)
		goto fail;

	/* Backends, and their slices of the server array (servers grouped by
	 * backend, in the order they were added). */
	for (uint32_t i = 0; i < b->nbk; i++) {
		s->bk[i].name = b->bk[i].name;
		b->bk[i].name = NULL;
		s->bk[i].algo = b->bk[i].algo;
		s->bk[i].retries = b->bk[i].retries;
		s->bk[i].max_fails = b->bk[i].max_fails;
		s->bk[i].fail_timeout_ms = b->bk[i].fail_timeout_ms;
		s->bk[i].load_factor = b->bk[i].load_factor;
		s->bk[i].http = b->bk[i].http;
		memset(&b->bk[i].http, 0, sizeof(b->bk[i].http));
		s->nbk++;
	}
	for (uint32_t i = 0; i < b->nsrv; i++)
		s->bk[b->srv[i].bk].nsrv++;
	for (uint32_t i = 0, first = 0; i < b->nbk; i++) {
		s->bk[i].first = first;
		first += s->bk[i].nsrv;
		if (s->bk[i].nsrv > s->max_bk_srv)
			s->max_bk_srv = s->bk[i].nsrv;
		s->bk[i].weights = calloc(s->bk[i].nsrv ? s->bk[i].nsrv : 1, sizeof(uint32_t));
		if (s->bk[i].weights == NULL)
			goto fail;
	}
	for (uint32_t i = 0; i < b->nsrv; i++) {
		const struct bsrv *bs = &b->srv[i];
		struct flb_backend *k = &s->bk[bs->bk];
		uint32_t local = fill[bs->bk]++;
		struct flb_server *sv = &s->srv[k->first + local];
		struct flb_srv *sh = NULL;

		if (prev != NULL) {
			for (uint32_t j = 0; j < prev->nsrv; j++) {
				struct flb_srv *p = prev->srv[j].sh;

				if (p->id == bs->id && p->addrlen == bs->addrlen &&
				    memcmp(&p->addr, &bs->addr, bs->addrlen) == 0) {
					sh = p;
					atomic_fetch_add_explicit(&sh->refcnt, 1, memory_order_relaxed);
					break;
				}
			}
		}
		if (sh == NULL && (sh = srv_new(bs, nworkers)) == NULL)
			goto fail;
		sv->sh = sh;
		sv->weight = bs->weight;
		sv->maxconn = bs->maxconn;
		sv->backend = bs->bk;
		sv->state = bs->state;
		k->weights[local] = bs->weight ? bs->weight : 1;
		sv->cookie = flb_hash64(sh->address, strlen(sh->address),
		                        flb_hash64(k->name, strlen(k->name), 0x666c62));
		s->nsrv++;
	}
	if (s->nsrv != b->nsrv)
		goto fail;
	for (uint32_t i = 0; i < s->nbk; i++) {
		rc = build_table(s, &s->bk[i]);
		if (rc < 0) {
			snprintf(err, errlen, rc == -ENOMEM ? "out of memory" :
			         "backend %s: cannot build its hash table (too many servers?)",
			         s->bk[i].name);
			goto fail;
		}
	}
	rc = -ENOMEM;

	/* Listeners: reuse the sockets of one with the same name and address. */
	for (uint32_t i = 0; i < b->nlsn; i++) {
		struct blsn *bl = &b->lsn[i];
		struct flb_listener *l = &s->lsn[i];
		struct flb_lsock *ls = NULL;

		if (prev != NULL) {
			for (uint32_t j = 0; j < prev->nlsn; j++) {
				struct flb_lsock *p = prev->lsn[j].sock;

				/* Same address: the configured port, or the port an
				 * ephemeral ("host:0") listener actually got. */
				if (strcmp(p->name, bl->name) == 0 && strcmp(p->host, bl->host) == 0 &&
				    (p->port == bl->port ||
				     ntohs(p->bound_addr.in4.sin_port) == bl->port) && p->bound) {
					ls = p;
					atomic_fetch_add_explicit(&ls->refcnt, 1, memory_order_relaxed);
					break;
				}
			}
		}
		if (ls == NULL && (ls = lsock_new(bl, nworkers)) == NULL)
			goto fail;
		l->sock = ls;
		l->ops = flb_conn_ops_for_mode(bl->mode);
		l->backend = bl->bk;
		l->connect_timeout_ms = bl->cto;
		l->idle_timeout_ms = bl->ito;
		l->maxconn = bl->maxconn;
		l->mode = bl->mode;
		s->nlsn++;
		if (bl->mode == FLB_MODE_HTTP && bl->http == NULL) {
			static const struct flb_http_settings defaults;

			bl->http = flb_http_lsn_new(bl->bk, &defaults, err, errlen);
			if (bl->http == NULL)
				goto fail;
		}
		l->http = bl->http;
		bl->http = NULL;
		if (l->http != NULL && l->http->alog_path != NULL &&
		    access_log_attach(s, prev, l, err, errlen) < 0) {
			rc = -EINVAL;
			goto fail;
		}
	}
	rc = 0;
	err[0] = 0;
	*out = s;
	s = NULL;
	goto done;
fail:
	snap_free(s);
	s = NULL;
done:
	free(fill);
	flb_snap_builder_free(b);
	return rc;
}

/* Create one listening socket.
 * sa, len: address to bind; backlog: listen backlog.
 * Returns the fd, or a negative errno. */
static int listen_one(const union flb_sockaddr *sa, socklen_t len, int backlog)
{
	int one = 1, e;
	int fd = socket(sa->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* IPv6 listeners are v6-only (as in NGINX): "::" and "0.0.0.0" are two
	 * listeners, never one silently sharing the other's port. */
	if ((sa->sa.sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, &sa->sa, len) < 0 || listen(fd, backlog) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Bind new listeners (contract in snapshot.h).  ls->bound is 0 (not
 * bound), 2 (bound by this call, until it succeeds) or 1 (bound). */
int flb_snap_bind(struct flb_snapshot *s, int backlog, char *err, size_t errlen)
{
	int rc = 0;

	for (uint32_t i = 0; i < s->nlsn && rc == 0; i++) {
		struct flb_lsock *ls = s->lsn[i].sock;
		union flb_sockaddr sa = ls->addr;

		if (ls->bound)
			continue;
		for (uint32_t w = 0; w < ls->nworkers; w++) {
			int fd = listen_one(&sa, ls->addrlen, backlog);

			if (fd < 0) {
				rc = fd;
				snprintf(err, errlen, "listener %s: cannot listen on %s:%u: %s", ls->name,
				         ls->host, (unsigned)ntohs(sa.in4.sin_port), strerror(-fd));
				break;
			}
			ls->slots[w].fd = fd;
			if (w == 0) {
				socklen_t l = sizeof(ls->bound_addr);

				if (getsockname(fd, &ls->bound_addr.sa, &l) < 0) {
					rc = -errno;
					snprintf(err, errlen, "listener %s: getsockname: %s", ls->name,
					         strerror(errno));
					break;
				}
				/* The port sits at the same offset in both families. */
				sa.in4.sin_port = ls->bound_addr.in4.sin_port;
			}
		}
		if (rc == 0)
			ls->bound = 2;
	}
	for (uint32_t i = 0; i < s->nlsn; i++) {
		struct flb_lsock *ls = s->lsn[i].sock;

		if (ls->bound == 1)
			continue;
		if (rc == 0) {
			ls->bound = 1;
			continue;
		}
		/* Undo what this call did: nothing changes on failure. */
		for (uint32_t w = 0; w < ls->nworkers; w++) {
			if (ls->slots[w].fd >= 0) {
				close(ls->slots[w].fd);
				ls->slots[w].fd = -1;
			}
		}
		ls->bound = 0;
	}
	return rc;
}
