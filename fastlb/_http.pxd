# C declarations of the HTTP/1.1 parser (csrc/http1.h), shared by the
# Cython modules that parse: fastlb._http now, the engine binding later.
from libc.stdint cimport int64_t, uint32_t


cdef extern from "http1.h" nogil:
    enum:
        FLB_HTTP_INVALID
        FLB_HTTP_INCOMPLETE
        FLB_HTTP_DEFAULT_MAX_HEAD
        FLB_HTTP_E__COUNT
        FLB_HTTP_F_CHUNKED
        FLB_HTTP_F_HAS_CL
        FLB_HTTP_F_HAS_TE
        FLB_HTTP_F_CONN_CLOSE
        FLB_HTTP_F_CONN_KEEPALIVE
        FLB_HTTP_F_CONN_UPGRADE
        FLB_HTTP_F_KEEP_ALIVE
        FLB_HTTP_F_EXPECT_CONTINUE
        FLB_HTTP_F_HAS_UPGRADE

    struct flb_http_header:
        const char *name
        const char *value
        uint32_t name_len
        uint32_t value_len

    struct flb_http_msg:
        const char *method
        const char *target
        uint32_t method_len
        uint32_t target_len
        const char *reason
        uint32_t reason_len
        int status
        int minor_version
        flb_http_header *headers
        size_t num_headers
        int64_t content_length
        uint32_t flags
        int host_index
        int err
        uint32_t err_offset

    struct flb_http_chunked:
        uint32_t max_line
        uint32_t max_trailer
        int err
        int done

    int flb_http_parse_request(const char *buf, size_t len, size_t last_len,
                               size_t max_head, flb_http_msg *msg)
    int flb_http_parse_response(const char *buf, size_t len, size_t last_len,
                                size_t max_head, flb_http_msg *msg)
    const char *flb_http_strerror(int err)
    void flb_http_chunked_init(flb_http_chunked *d)
    long flb_http_chunked_decode(flb_http_chunked *d, char *buf, size_t *len)
    long flb_http_chunked_scan(flb_http_chunked *d, const char *buf, size_t len)
