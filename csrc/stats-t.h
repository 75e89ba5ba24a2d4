/* stats-t.h: the engine's counters.
 *
 * Every counter has exactly one writer, the worker thread that owns the slot
 * it lives in (a worker's own block, or that worker's slot inside a shared
 * listener or server object), so a write is a relaxed load plus a relaxed
 * store: a plain mov on x86-64 and arm64, no lock prefix, no contention.  The
 * control thread reads the slots with relaxed loads and sums them (a reader
 * may see one counter a little ahead of another; each counter on its own is
 * never torn).  Slots are cache-line aligned so two workers never write the
 * same line.
 *
 * The fields are listed once, in the X-macros below, and expanded both into
 * the atomic slot types (flb_*_ctr) and the plain summed views (flb_*_stats)
 * that the binding turns into dicts.
 *
 * Byte directions follow HAProxy: bytes_in is the client-to-server (request)
 * direction, bytes_out the server-to-client (response) direction, whether
 * counted on a listener, a server or a worker. */
#ifndef FLB_STATS_T_H
#define FLB_STATS_T_H

#include <stdatomic.h>
#include <stdint.h>

#define FLB_CACHELINE 64

/* A single-writer counter. */
typedef _Atomic uint64_t flb_ctr;

/* Per listener (summed over workers):
 * conn_total        connections accepted
 * conn_active       connections accepted and not yet closed
 * bytes_in/out      bytes relayed client->server / server->client
 * connect_fails     failed connect attempts to servers (refused, timeout...)
 * retries           connect attempts that were retries
 * rejected_noserver clients closed because no server took them (none
 *                   eligible, or every attempt failed)
 * limit_pauses      times a worker stopped accepting on this listener because
 *                   a connection limit (listener or global) was reached
 * accept_errors     accept(2) failures other than EAGAIN
 * http mode:
 * requests          request heads parsed (valid or not)
 * resp_1xx..resp_5xx final responses sent, by class (ours included; 101
 *                   counts as 1xx)
 * local_responses   responses fastlb answered itself (400, 404, 502...)
 * local_4xx, local_5xx  of those, by class */
#define FLB_LSN_CTRS(X) \
	X(conn_total) X(conn_active) X(bytes_in) X(bytes_out) X(connect_fails) \
	X(retries) X(rejected_noserver) X(limit_pauses) X(accept_errors) \
	X(requests) X(resp_1xx) X(resp_2xx) X(resp_3xx) X(resp_4xx) X(resp_5xx) \
	X(local_responses) X(local_4xx) X(local_5xx)

/* Per server (summed over workers):
 * conn_total        connections established to it
 * conn_active       of those, not yet closed
 * bytes_in/out      bytes relayed to it / from it
 * connect_fails     failed connect attempts to it
 * retries           attempts on it that were retries after another failure
 * connect_time_us   sum of the connect times of established connections
 * connect_count     number of connect times summed
 * health_downs      times passive health took it out (max_fails reached)
 * http mode:
 * requests          requests sent to it
 * reuses            of those, sent on a pooled keep-alive connection
 * resp_1xx..resp_5xx its final responses passed to clients, by class
 * dirty_closes      its keep-alive connections closed, never reused, because
 *                   bytes came past the end of a response */
#define FLB_SRV_CTRS(X) \
	X(conn_total) X(conn_active) X(bytes_in) X(bytes_out) X(connect_fails) \
	X(retries) X(connect_time_us) X(connect_count) X(health_downs) \
	X(requests) X(reuses) X(resp_1xx) X(resp_2xx) X(resp_3xx) X(resp_4xx) X(resp_5xx) \
	X(dirty_closes)

/* Per worker:
 * conn_total/conn_active/bytes_in/bytes_out/connect_fails/retries/
 * rejected_noserver/accept_errors  as above, over all listeners
 * loops             event-loop iterations
 * snapshots         config snapshots adopted
 * pipes_used/bufs_used  pipes / 16 KiB buffers held right now (in flight)
 * res_waits         times a connection waited for a pipe or buffer
 * limit_pauses      listener pauses for connection limits
 * emfile_pauses     listener pauses because accept ran out of fds
 * requests          http requests parsed
 * upconns_idle      idle pooled upstream connections right now */
#define FLB_WRK_CTRS(X) \
	X(conn_total) X(conn_active) X(bytes_in) X(bytes_out) X(connect_fails) \
	X(retries) X(rejected_noserver) X(accept_errors) X(loops) X(snapshots) \
	X(pipes_used) X(bufs_used) X(res_waits) X(limit_pauses) X(emfile_pauses) \
	X(requests) X(upconns_idle)

#define FLB_CTR_FIELD(name)  flb_ctr name;
#define FLB_STAT_FIELD(name) uint64_t name;

/* Latency histograms, kept in C (Python only exposes them): per-bucket
 * counts (not cumulative) with the upper bounds below in µs, the last
 * bucket unbounded, and the sum.  http mode: a listener's request duration
 * (head start to response end), a server's upstream response time (request
 * sent to response head). */
#define FLB_HIST_BUCKETS 15
#define FLB_HIST_BOUNDS_US \
	{ 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, \
	  1000000, 2500000, 5000000, 10000000 }

struct flb_hist_ctr   { flb_ctr b[FLB_HIST_BUCKETS]; flb_ctr sum_us; };
struct flb_hist_stats { uint64_t b[FLB_HIST_BUCKETS]; uint64_t sum_us; };

struct flb_lsn_ctr   { FLB_LSN_CTRS(FLB_CTR_FIELD) struct flb_hist_ctr duration; };
struct flb_srv_ctr   { FLB_SRV_CTRS(FLB_CTR_FIELD) struct flb_hist_ctr upstream; };
struct flb_wrk_ctr   { FLB_WRK_CTRS(FLB_CTR_FIELD) };

struct flb_lsn_stats { FLB_LSN_CTRS(FLB_STAT_FIELD) struct flb_hist_stats duration; };
struct flb_srv_stats { FLB_SRV_CTRS(FLB_STAT_FIELD) struct flb_hist_stats upstream; };
struct flb_wrk_stats { FLB_WRK_CTRS(FLB_STAT_FIELD) };

#endif /* FLB_STATS_T_H */
