# C declarations of the data-plane engine (csrc/engine.h, csrc/snapshot.h,
# csrc/stats-t.h, and the http-mode types of csrc/h1proxy-t.h, csrc/router-t.h,
# csrc/h1rewrite-t.h).  Only what the binding uses is declared.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "stats-t.h" nogil:
    enum:
        FLB_HIST_BUCKETS

    struct flb_hist_stats:
        uint64_t b[15]
        uint64_t sum_us

    struct flb_lsn_stats:
        uint64_t conn_total
        uint64_t conn_active
        uint64_t bytes_in
        uint64_t bytes_out
        uint64_t connect_fails
        uint64_t retries
        uint64_t rejected_noserver
        uint64_t limit_pauses
        uint64_t accept_errors
        uint64_t requests
        uint64_t resp_1xx
        uint64_t resp_2xx
        uint64_t resp_3xx
        uint64_t resp_4xx
        uint64_t resp_5xx
        uint64_t local_responses
        uint64_t local_4xx
        uint64_t local_5xx
        flb_hist_stats duration

    struct flb_srv_stats:
        uint64_t conn_total
        uint64_t conn_active
        uint64_t bytes_in
        uint64_t bytes_out
        uint64_t connect_fails
        uint64_t retries
        uint64_t connect_time_us
        uint64_t connect_count
        uint64_t health_downs
        uint64_t requests
        uint64_t reuses
        uint64_t resp_1xx
        uint64_t resp_2xx
        uint64_t resp_3xx
        uint64_t resp_4xx
        uint64_t resp_5xx
        uint64_t dirty_closes
        flb_hist_stats upstream

    struct flb_wrk_stats:
        uint64_t conn_total
        uint64_t conn_active
        uint64_t bytes_in
        uint64_t bytes_out
        uint64_t connect_fails
        uint64_t retries
        uint64_t rejected_noserver
        uint64_t accept_errors
        uint64_t loops
        uint64_t snapshots
        uint64_t pipes_used
        uint64_t bufs_used
        uint64_t res_waits
        uint64_t limit_pauses
        uint64_t emfile_pauses
        uint64_t requests
        uint64_t upconns_idle


cdef extern from "snapshot-t.h" nogil:
    union flb_sockaddr:
        pass

    struct flb_lsock:
        char *name
        char *host
        uint16_t port
        flb_sockaddr bound_addr

    struct flb_srv:
        uint32_t active
        uint32_t fails
        uint64_t id
        char *address

    struct flb_listener:
        flb_lsock *sock
        uint32_t backend
        uint32_t maxconn

    struct flb_server:
        flb_srv *sh
        uint32_t weight
        uint32_t maxconn
        uint32_t backend
        uint8_t state

    struct flb_backend:
        char *name
        uint8_t algo
        uint32_t first
        uint32_t nsrv

    struct flb_snapshot:
        uint64_t gen
        uint32_t nlsn
        uint32_t nbk
        uint32_t nsrv
        flb_listener *lsn
        flb_backend *bk
        flb_server *srv

    struct flb_snap_builder:
        pass


cdef extern from "snapshot-t.h" nogil:
    enum flb_mode:
        FLB_MODE_TCP
        FLB_MODE_HTTP


cdef extern from "router-t.h" nogil:
    enum flb_route_path_kind:
        FLB_ROUTE_PATH_PREFIX
        FLB_ROUTE_PATH_EXACT

    struct flb_route_kv:
        const char *name
        const char *value           # NULL: "is present"

    struct flb_route_spec:
        const char *host
        const char *path
        int path_kind
        const char **methods        # const char *const * in C
        size_t num_methods
        const flb_route_kv *headers
        size_t num_headers
        const flb_route_kv *cookies
        size_t num_cookies
        uint32_t backend
        const char *strip_prefix
        const char *rewrite_prefix


cdef extern from "h1rewrite-t.h" nogil:
    # FLB_H1RW_* flags (macros)
    const uint32_t FLB_H1RW_XFF
    const uint32_t FLB_H1RW_XFP
    const uint32_t FLB_H1RW_XFH
    const uint32_t FLB_H1RW_FORWARDED
    const uint32_t FLB_H1RW_VIA
    const uint32_t FLB_H1RW_REQUEST_ID
    const uint32_t FLB_H1RW_HIDE_BACKEND

    enum flb_h1_op_kind:
        FLB_H1_OP_SET
        FLB_H1_OP_ADD
        FLB_H1_OP_REMOVE


cdef extern from "h1proxy-t.h" nogil:
    const uint32_t FLB_NO_BK        # UINT32_MAX: no backend, answer 404

    enum flb_hkey_kind:
        FLB_HKEY_CLIENT_IP
        FLB_HKEY_PATH
        FLB_HKEY_URI
        FLB_HKEY_HEADER
        FLB_HKEY_COOKIE

    struct flb_hdr_op:
        int kind
        const char *name
        const char *value           # NULL for REMOVE

    struct flb_route_extra:
        uint32_t connect_timeout_ms
        uint32_t response_timeout_ms
        uint64_t max_body
        const flb_hdr_op *req_ops
        uint32_t nreq
        const flb_hdr_op *resp_ops
        uint32_t nresp

    struct flb_http_settings:
        uint32_t head_timeout_ms
        uint32_t keepalive_timeout_ms
        uint32_t response_timeout_ms
        uint32_t body_timeout_ms
        uint32_t send_timeout_ms
        uint32_t max_head
        uint32_t rw_flags
        const char *request_id_header
        const char *access_log
        int access_log_format


cdef extern from "snapshot.h" nogil:
    flb_snap_builder *flb_snap_builder_new()
    const char *flb_snap_builder_error(const flb_snap_builder *b)
    void flb_snap_builder_free(flb_snap_builder *b)
    int flb_snap_set_global(flb_snap_builder *b, uint32_t maxconn)
    int flb_snap_add_backend(flb_snap_builder *b, const char *name, int algo,
                             uint32_t retries, double load_factor, uint32_t max_fails,
                             uint32_t fail_timeout_ms)
    int flb_snap_add_server(flb_snap_builder *b, uint32_t bk, uint64_t id,
                            const char *address, const char *host, uint16_t port,
                            uint32_t weight, uint32_t maxconn, int state)
    int flb_snap_add_listener(flb_snap_builder *b, const char *name, const char *host,
                              uint16_t port, int mode, uint32_t bk,
                              uint32_t connect_timeout_ms, uint32_t idle_timeout_ms,
                              uint32_t maxconn)
    int flb_snap_set_http(flb_snap_builder *b, uint32_t lsn, const flb_http_settings *hs)
    int flb_snap_add_route(flb_snap_builder *b, uint32_t lsn, const flb_route_spec *spec,
                           const flb_route_extra *ex)
    int flb_snap_set_backend_http(flb_snap_builder *b, uint32_t bk, int hkey,
                                  const char *hkey_name, const char *sticky,
                                  uint32_t pool_max_idle, uint32_t pool_idle_ms,
                                  int retry_unsafe)
    void flb_snapshot_release(flb_snapshot *s)
    int flb_algo_from_name(const char *name)
    int flb_state_from_name(const char *name)
    int flb_mode_from_name(const char *name)
    const char *flb_state_name(int state)
    const char *flb_algo_name(int algo)
    const char *flb_sockaddr_host(const flb_sockaddr *sa, char *buf, size_t len,
                                  uint16_t *port)


cdef extern from "engine.h" nogil:
    struct flb_engine_params:
        uint32_t workers
        uint32_t max_conns
        uint32_t max_pipes
        uint32_t max_free_pipes
        uint32_t max_bufs
        uint32_t max_free_bufs
        uint32_t max_free_conns
        uint32_t accept_batch
        int backlog
        uint32_t no_splice

    struct flb_engine:
        pass

    void flb_engine_params_default(flb_engine_params *p)
    flb_engine *flb_engine_new(const flb_engine_params *p, char *err, size_t errlen)
    int flb_engine_start(flb_engine *e, flb_snap_builder *b, char *err, size_t errlen)
    int flb_engine_update(flb_engine *e, flb_snap_builder *b, char *err, size_t errlen)
    int flb_engine_stop(flb_engine *e, uint32_t drain_ms)
    int flb_engine_reopen_logs(flb_engine *e)
    void flb_engine_free(flb_engine *e)
    flb_snapshot *flb_engine_snapshot(flb_engine *e)
    void flb_listener_stats(const flb_listener *l, flb_lsn_stats *out)
    void flb_server_stats(const flb_server *sv, flb_srv_stats *out)
    int flb_engine_worker_stats(flb_engine *e, uint32_t i, flb_wrk_stats *out)
    uint32_t flb_engine_active(flb_engine *e)
    int flb_server_health_out(const flb_server *sv, const flb_backend *b)
