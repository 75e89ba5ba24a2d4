"""Cython binding of the C HTTP/1.1 parser (csrc/http1.c).

It maps C results onto Python objects and errors onto ParseError; every
decision about validity is made in C.  The public module is fastlb.http.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New
from cpython.long cimport PyLong_FromLongLong
from cpython.object cimport PyObject
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

# Names of enum flb_http_err, in order (csrc/http1-t.h); ParseError.code.
ERROR_CODES = (
    "none", "method", "target", "request_line", "version", "status", "reason",
    "header_name", "header_name_space", "header_value", "obs_fold", "bare_cr",
    "bare_lf", "too_many_headers", "head_too_large", "content_length",
    "content_length_conflict", "cl_and_te", "te_not_chunked", "te_chunked_twice",
    "te_syntax", "host", "chunk_size", "chunk_ext", "chunk_line_too_long",
    "chunk_data", "trailer", "trailer_too_large",
)
assert len(ERROR_CODES) == FLB_HTTP_E__COUNT, "ERROR_CODES out of step with http1-t.h"

cdef enum:
    # Header arrays up to this many entries live on the C stack.
    STACK_HEADERS = 128
    # Bound on max_headers, so a caller cannot ask for an unbounded array.
    MAX_HEADERS_LIMIT = 65536

cdef tuple HTTP_10 = (1, 0)
cdef tuple HTTP_11 = (1, 1)

# An HPACK-like static table (RFC 7541 Appendix A keeps one for the same
# reason): field names, methods and short field values that clients send
# over and over.  A parsed slice equal to one of them, byte for byte, is
# returned as the shared bytes object instead of a new one; bytes are
# immutable, so this only saves allocations.
_NAMES = (
    b"Host", b"User-Agent", b"Accept", b"Accept-Language", b"Accept-Encoding",
    b"Accept-Charset", b"Referer", b"Cookie", b"Connection", b"Keep-Alive",
    b"Upgrade-Insecure-Requests", b"Content-Type", b"Content-Length",
    b"Transfer-Encoding", b"Cache-Control", b"Pragma", b"Origin", b"Authorization",
    b"If-None-Match", b"If-Modified-Since", b"If-Match", b"If-Range", b"Range",
    b"X-Forwarded-For", b"X-Forwarded-Proto", b"X-Forwarded-Host", b"X-Real-IP",
    b"X-Request-Id", b"X-Requested-With", b"Forwarded", b"Via", b"TE", b"Trailer",
    b"Upgrade", b"Expect", b"DNT", b"Priority", b"Sec-Fetch-Site", b"Sec-Fetch-Mode",
    b"Sec-Fetch-Dest", b"Sec-Fetch-User", b"Sec-CH-UA", b"Sec-CH-UA-Mobile",
    b"Sec-CH-UA-Platform", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version",
    b"Sec-WebSocket-Accept", b"Sec-WebSocket-Extensions", b"Sec-WebSocket-Protocol",
    b"Date", b"Server", b"Location", b"Set-Cookie", b"Vary", b"ETag", b"Last-Modified",
    b"Expires", b"Age", b"Content-Encoding", b"Content-Range", b"Content-Disposition",
    b"Content-Security-Policy", b"Strict-Transport-Security", b"Access-Control-Allow-Origin",
    b"X-Content-Type-Options", b"X-Frame-Options", b"X-Powered-By", b"WWW-Authenticate",
    b"Proxy-Authorization", b"Proxy-Connection", b"Alt-Svc",
)
_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"CONNECT",
            b"TRACE")
_VALUES = (
    b"keep-alive", b"close", b"upgrade", b"websocket", b"0", b"1", b"13", b"*", b"*/*",
    b"gzip", b"deflate", b"br", b"zstd", b"identity", b"gzip, deflate", b"gzip, deflate, br",
    b"gzip, deflate, br, zstd", b"chunked", b"trailers", b"no-cache", b"no-store", b"max-age=0",
    b"100-continue", b"application/json", b"text/html", b"text/plain", b"text/css",
    b"application/javascript", b"application/x-www-form-urlencoded", b"XMLHttpRequest",
    b"en-US,en;q=0.9", b"en-US,en;q=0.5", b"en-US", b"en", b"?0", b"?1", b'"Linux"',
    b'"Windows"', b'"macOS"', b'"Android"', b"document", b"navigate", b"same-origin",
    b"same-site", b"cross-site", b"none", b"cors", b"no-cors", b"empty", b"script", b"style",
    b"image", b"u=0, i", b"u=1", b"u=1, i", b"bytes", b"nosniff", b"DENY", b"SAMEORIGIN",
    b"http", b"https", b"OK", b"Not Found", b"nginx",
)

cdef tuple _STATIC = tuple(dict.fromkeys(
    spelling
    for word in _NAMES + _METHODS + _VALUES
    for spelling in (word, word.lower())
))

cdef enum:
    STATIC_SLOTS = 1024      # open addressing, a power of two > 2 x len(_STATIC)
    STATIC_MAX_LEN = 40      # longer slices are never looked up

# Borrowed pointers into _STATIC (which keeps them alive); NULL = empty slot.
cdef PyObject *_static_table[STATIC_SLOTS]


cdef inline unsigned int _static_slot(const char *p, Py_ssize_t n) noexcept nogil:
    return (<unsigned int>n * 31u + <unsigned char>p[0] * 7u
            + <unsigned char>p[n - 1] * 131u) & (STATIC_SLOTS - 1)


cdef void _static_init():
    cdef bytes b
    cdef unsigned int i
    assert len(_STATIC) * 2 < STATIC_SLOTS
    for b in _STATIC:
        assert 0 < len(b) <= STATIC_MAX_LEN
        i = _static_slot(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        while _static_table[i] != NULL:
            i = (i + 1) & (STATIC_SLOTS - 1)
        _static_table[i] = <PyObject *>b


_static_init()


cdef inline bint _same(const char *a, const char *b, Py_ssize_t n) noexcept nogil:
    """a[0..n) == b[0..n), inlined: slices are short, a libc call costs more."""
    cdef Py_ssize_t i
    for i in range(n):
        if a[i] != b[i]:
            return False
    return True


cdef extern from "Python.h":
    # Raw-pointer spellings, so the header loop hands references straight to
    # the containers that steal them, without Cython's refcount dance.
    PyObject *raw_bytes "PyBytes_FromStringAndSize"(const char *p, Py_ssize_t n)
    PyObject *raw_tuple_new "PyTuple_New"(Py_ssize_t n)
    void raw_tuple_set "PyTuple_SET_ITEM"(PyObject *t, Py_ssize_t i, PyObject *o)
    void raw_list_set "PyList_SET_ITEM"(object l, Py_ssize_t i, PyObject *o)
    void raw_incref "Py_INCREF"(PyObject *o)
    void raw_decref "Py_DECREF"(PyObject *o)
    Py_ssize_t raw_bytes_size "PyBytes_GET_SIZE"(PyObject *o)
    char *raw_bytes_data "PyBytes_AS_STRING"(PyObject *o)


cdef inline PyObject *_new_bytes(const char *p, Py_ssize_t n) noexcept:
    """A new reference to bytes equal to p[0..n): the static table's object
    when there is one, else a new object.  NULL (with an exception set) when
    out of memory."""
    cdef unsigned int i
    cdef PyObject *cand
    if 0 < n <= STATIC_MAX_LEN:
        i = _static_slot(p, n)
        cand = _static_table[i]
        while cand != NULL:
            if raw_bytes_size(cand) == n and _same(raw_bytes_data(cand), p, n):
                raw_incref(cand)
                return cand
            i = (i + 1) & (STATIC_SLOTS - 1)
            cand = _static_table[i]
    return raw_bytes(p, n)


cdef inline object _bytes(const char *p, Py_ssize_t n):
    """bytes equal to p[0..n), shared from the static table when possible."""
    cdef PyObject *b = _new_bytes(p, n)
    if b == NULL:
        raise MemoryError()
    obj = <object>b
    raw_decref(b)
    return obj


cdef list _headers(const flb_http_msg *msg):
    """The (name, value) list of a parsed head."""
    cdef Py_ssize_t i, n = <Py_ssize_t>msg.num_headers
    cdef list out = PyList_New(n)
    cdef PyObject *pair
    cdef PyObject *item
    cdef const flb_http_header *h
    for i in range(n):
        h = &msg.headers[i]
        pair = raw_tuple_new(2)
        if pair == NULL:
            raise MemoryError()
        raw_list_set(out, i, pair)          # the list owns the tuple from here
        item = _new_bytes(h.name, h.name_len)
        if item == NULL:
            raise MemoryError()
        raw_tuple_set(pair, 0, item)
        item = _new_bytes(h.value, h.value_len)
        if item == NULL:
            raise MemoryError()
        raw_tuple_set(pair, 1, item)
    return out


class ParseError(ValueError):
    """Malformed HTTP input.  `code` names the problem (see ERROR_CODES) and
    `offset` is the byte offset where the parser found it."""

    def __init__(self, message, code="none", offset=0):
        super().__init__(message)
        self.code = code
        self.offset = offset


cdef object _error(int err, long offset):
    """The ParseError for a C error code found at offset."""
    if err < 0 or err >= FLB_HTTP_E__COUNT:
        err = 0
    msg = flb_http_strerror(err).decode("ascii", "replace")
    return ParseError(f"{msg} (at byte {offset})", ERROR_CODES[err], offset)


cdef inline object _content_length(const flb_http_msg *msg):
    if msg.content_length < 0:
        return None
    return PyLong_FromLongLong(msg.content_length)


@cython.freelist(16)
cdef class Request:
    """A parsed request head.  Slices are copied out of the input."""

    cdef readonly bytes method
    cdef readonly bytes target
    cdef readonly tuple version
    cdef readonly list headers
    cdef readonly Py_ssize_t header_bytes
    cdef readonly object content_length
    cdef readonly bint chunked
    cdef readonly bint keep_alive
    cdef readonly bint expect_continue
    cdef readonly bint upgrade

    def __repr__(self):
        return (f"<Request {self.method.decode('latin-1')} {self.target.decode('latin-1')} "
                f"HTTP/{self.version[0]}.{self.version[1]} headers={len(self.headers)}>")


@cython.freelist(16)
cdef class Response:
    """A parsed response head."""

    cdef readonly int status
    cdef readonly bytes reason
    cdef readonly tuple version
    cdef readonly list headers
    cdef readonly Py_ssize_t header_bytes
    cdef readonly object content_length
    cdef readonly bint chunked
    cdef readonly bint keep_alive
    cdef readonly bint has_body

    def __repr__(self):
        return (f"<Response {self.status} {self.reason.decode('latin-1')} "
                f"HTTP/{self.version[0]}.{self.version[1]} headers={len(self.headers)}>")


ctypedef int (*parse_fn)(const char *, size_t, size_t, size_t, flb_http_msg *) noexcept nogil


cdef int _parse(object data, Py_ssize_t max_header_bytes, Py_ssize_t max_headers,
                parse_fn fn, flb_http_msg *msg, flb_http_header *stack_hdrs,
                flb_http_header **heap_hdrs, Py_buffer *view, bint *got_view) except -3:
    """Run fn over data.  Fills msg; returns fn's result.  On return view holds
    the buffer when got_view is set (the caller releases it)."""
    cdef const char *buf
    cdef Py_ssize_t n
    if max_header_bytes <= 0 or max_header_bytes > 0x7fffffff:
        raise ValueError("max_header_bytes must be in 1..2147483647")
    if max_headers <= 0 or max_headers > MAX_HEADERS_LIMIT:
        raise ValueError(f"max_headers must be in 1..{MAX_HEADERS_LIMIT}")
    if type(data) is bytes:
        buf = PyBytes_AS_STRING(data)
        n = PyBytes_GET_SIZE(data)
    else:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
        got_view[0] = True
        buf = <const char *>view.buf
        n = view.len
    if max_headers <= STACK_HEADERS:
        msg.headers = stack_hdrs
    else:
        heap_hdrs[0] = <flb_http_header *>malloc(max_headers * sizeof(flb_http_header))
        if heap_hdrs[0] == NULL:
            raise MemoryError()
        msg.headers = heap_hdrs[0]
    msg.num_headers = <size_t>max_headers
    return fn(buf, <size_t>n, 0, <size_t>max_header_bytes, msg)


def parse_request(data, *, Py_ssize_t max_header_bytes=FLB_HTTP_DEFAULT_MAX_HEAD,
                  Py_ssize_t max_headers=100):
    """Parse a request head from bytes, bytearray or memoryview.

    Returns a Request, or None while the head is incomplete.  Raises
    ParseError on malformed input or a head over max_header_bytes."""
    cdef flb_http_msg msg
    cdef flb_http_header stack_hdrs[STACK_HEADERS]
    cdef flb_http_header *heap_hdrs = NULL
    cdef Py_buffer view
    cdef Request req
    cdef int rc
    cdef bint got_view = False
    try:
        rc = _parse(data, max_header_bytes, max_headers, flb_http_parse_request,
                    &msg, stack_hdrs, &heap_hdrs, &view, &got_view)
        if rc == FLB_HTTP_INCOMPLETE:
            return None
        if rc == FLB_HTTP_INVALID:
            raise _error(msg.err, msg.err_offset)
        req = Request.__new__(Request)
        req.method = _bytes(msg.method, msg.method_len)
        req.target = PyBytes_FromStringAndSize(msg.target, msg.target_len)
        req.version = HTTP_11 if msg.minor_version == 1 else HTTP_10
        req.headers = _headers(&msg)
        req.header_bytes = rc
        req.content_length = _content_length(&msg)
        req.chunked = (msg.flags & FLB_HTTP_F_CHUNKED) != 0
        req.keep_alive = (msg.flags & FLB_HTTP_F_KEEP_ALIVE) != 0
        req.expect_continue = (msg.flags & FLB_HTTP_F_EXPECT_CONTINUE) != 0
        # RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored.
        req.upgrade = msg.minor_version == 1 and (
            msg.flags & (FLB_HTTP_F_CONN_UPGRADE | FLB_HTTP_F_HAS_UPGRADE)) == \
            (FLB_HTTP_F_CONN_UPGRADE | FLB_HTTP_F_HAS_UPGRADE)
        return req
    finally:
        if got_view:
            PyBuffer_Release(&view)
        free(heap_hdrs)


def parse_response(data, *, request_method=b"GET",
                   Py_ssize_t max_header_bytes=FLB_HTTP_DEFAULT_MAX_HEAD,
                   Py_ssize_t max_headers=100):
    """Parse a response head.  request_method is the method of the request it
    answers (HEAD and CONNECT change whether a body follows).

    Returns a Response, or None while the head is incomplete.  Raises
    ParseError on malformed input."""
    cdef flb_http_msg msg
    cdef flb_http_header stack_hdrs[STACK_HEADERS]
    cdef flb_http_header *heap_hdrs = NULL
    cdef Py_buffer view
    cdef Response resp
    cdef int rc, status
    cdef bint has_body
    cdef bint got_view = False
    if isinstance(request_method, str):
        request_method = request_method.encode("ascii")
    try:
        rc = _parse(data, max_header_bytes, max_headers, flb_http_parse_response,
                    &msg, stack_hdrs, &heap_hdrs, &view, &got_view)
        if rc == FLB_HTTP_INCOMPLETE:
            return None
        if rc == FLB_HTTP_INVALID:
            raise _error(msg.err, msg.err_offset)
        status = msg.status
        # RFC 9110 6.4.1: 1xx, 204, 304, replies to HEAD and 2xx to CONNECT have no body.
        has_body = not (status < 200 or status == 204 or status == 304
                        or request_method == b"HEAD"
                        or (request_method == b"CONNECT" and status < 300))
        resp = Response.__new__(Response)
        resp.status = status
        resp.reason = _bytes(msg.reason, msg.reason_len)
        resp.version = HTTP_11 if msg.minor_version == 1 else HTTP_10
        resp.headers = _headers(&msg)
        resp.header_bytes = rc
        resp.content_length = _content_length(&msg)
        resp.chunked = (msg.flags & FLB_HTTP_F_CHUNKED) != 0
        resp.has_body = has_body
        # A body delimited by the close of the connection ends persistence
        # (RFC 9112 9.3), whatever the Connection header says.
        resp.keep_alive = (msg.flags & FLB_HTTP_F_KEEP_ALIVE) != 0 and (
            not has_body or resp.chunked or msg.content_length >= 0)
        return resp
    finally:
        if got_view:
            PyBuffer_Release(&view)
        free(heap_hdrs)


cdef class ChunkedDecoder:
    """Decode a chunked message body fed in pieces of any size.

    feed(data) returns (decoded bytes, done).  Extensions and trailers are
    validated and dropped.  Bytes after the end of the body collect in
    `unused` (a pipelined next message)."""

    cdef flb_http_chunked dec
    cdef readonly bytes unused

    def __cinit__(self, unsigned int max_line=4096, unsigned int max_trailer=65536):
        if max_line < 16:
            raise ValueError("max_line must be at least 16")
        flb_http_chunked_init(&self.dec)
        self.dec.max_line = max_line
        self.dec.max_trailer = max_trailer
        self.unused = b""

    @property
    def done(self):
        return self.dec.done != 0

    def feed(self, data):
        cdef Py_buffer view
        cdef char *tmp
        cdef size_t n
        cdef long rc
        if self.dec.done:
            self.unused += bytes(data)
            return b"", True
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            n = <size_t>view.len
            tmp = <char *>malloc(n if n else 1)
            if tmp == NULL:
                raise MemoryError()
            try:
                memcpy(tmp, view.buf, n)
                rc = flb_http_chunked_decode(&self.dec, tmp, &n)
                if rc == FLB_HTTP_INVALID:
                    raise _error(self.dec.err, 0)
                out = PyBytes_FromStringAndSize(tmp, <Py_ssize_t>n)
                if rc >= 0:
                    self.unused = PyBytes_FromStringAndSize(tmp + n, rc)
                    return out, True
                return out, False
            finally:
                free(tmp)
        finally:
            PyBuffer_Release(&view)
