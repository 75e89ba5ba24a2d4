"""Cython binding of the C data-plane engine (csrc/engine.c and friends).
The public API is fastlb.engine.Engine.

This module holds no policy: it turns an already validated config object
(duck-typed, see fastlb/engine.py) into C builder calls, starts, updates and
stops the engine with the GIL released, and reads the summed counters into
dicts.  Errors become ValueError (bad config), OSError (bind and other
system errors) or MemoryError."""

from libc.errno cimport EINVAL, ENOMEM
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset, strerror


cdef enum:
    ERRLEN = 256

U32_MAX = 4294967295


cdef uint32_t _u32(object v, str what) except? 0xFFFFFFFF:
    """A non-negative int that fits in 32 bits (None counts as 0)."""
    if v is None:
        return 0
    v = int(v)
    if not 0 <= v <= U32_MAX:
        raise ValueError(f"{what} must be in 0..{U32_MAX}")
    return <uint32_t>v


cdef uint32_t _ms(object seconds, str what) except? 0xFFFFFFFF:
    """Seconds (float, None or <= 0 meaning none) as whole milliseconds,
    rounded up so that a tiny positive timeout stays positive."""
    cdef double s
    if seconds is None:
        return 0
    s = float(seconds)
    if s != s:
        raise ValueError(f"{what} must be a number")
    if s <= 0:
        return 0
    s = s * 1000.0
    if s >= U32_MAX:
        return U32_MAX
    if s != <double><uint32_t>s:
        return <uint32_t>s + 1
    return <uint32_t>s


cdef uint64_t _u64(object v, str what) except? 0xFFFFFFFFFFFFFFFF:
    """A non-negative int that fits in 64 bits (None counts as 0)."""
    if v is None:
        return 0
    v = int(v)
    if not 0 <= v <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"{what} must be in 0..{0xFFFFFFFFFFFFFFFF}")
    return <uint64_t>v


cdef bytes _b(object s):
    """str as UTF-8 bytes."""
    return str(s).encode("utf-8")


# Defaults of the http keys, for duck-typed config objects that lack them
# (the validated config always has them; fastlb/config.py is the policy).
_HTTP_DEFAULTS = {
    "header_timeout": 10.0,
    "keepalive_timeout": 60.0,
    "response_timeout": 60.0,
    "request_body_timeout": 60.0,
    "send_timeout": 60.0,
    "max_header_size": 0,          # 0: the C default (8 KiB)
    "forwarded_for": True,
    "forwarded_proto": True,
    "forwarded_host": True,
    "forwarded": False,
    "via": False,
    "request_id": "X-Request-Id",
    "hide_backend": False,
    "access_log": None,
    "access_log_format": "combined",
    "routes": (),
}

_RW_FLAGS = (
    ("forwarded_for", FLB_H1RW_XFF),
    ("forwarded_proto", FLB_H1RW_XFP),
    ("forwarded_host", FLB_H1RW_XFH),
    ("forwarded", FLB_H1RW_FORWARDED),
    ("via", FLB_H1RW_VIA),
    ("hide_backend", FLB_H1RW_HIDE_BACKEND),
)

_HKEYS = {
    "client_ip": FLB_HKEY_CLIENT_IP,
    "path": FLB_HKEY_PATH,
    "uri": FLB_HKEY_URI,
    "header": FLB_HKEY_HEADER,
    "cookie": FLB_HKEY_COOKIE,
}


cdef object _http(object lsn, str key):
    return getattr(lsn, key, _HTTP_DEFAULTS[key])


cdef class _Pins:
    """Keeps the bytes and the C arrays of one builder call alive until the
    call returns (the C side copies what it keeps).  Arrays are zero-filled
    bytearrays, so nothing needs freeing by hand."""

    cdef list keep

    def __cinit__(self):
        self.keep = []

    cdef const char *s(self, object v) except? NULL:
        """v as a NUL-terminated UTF-8 string; None gives NULL."""
        if v is None:
            return NULL
        data = _b(v)
        self.keep.append(data)
        return <const char *>data

    cdef void *mem(self, size_t n) except NULL:
        buf = bytearray(n if n else 1)
        self.keep.append(buf)
        return <void *><char *>buf

    cdef const char **strs(self, object items, size_t *n) except? NULL:
        cdef const char **out
        cdef Py_ssize_t i
        items = list(items or ())
        n[0] = len(items)
        if not items:
            return NULL
        out = <const char **>self.mem(len(items) * sizeof(const char *))
        for i in range(len(items)):
            out[i] = self.s(items[i])
        return out

    cdef const flb_route_kv *kvs(self, object table, size_t *n) except? NULL:
        """{name: value or True ("is present")} as an array."""
        cdef flb_route_kv *out
        cdef Py_ssize_t i
        items = list((table or {}).items())
        n[0] = len(items)
        if not items:
            return NULL
        out = <flb_route_kv *>self.mem(len(items) * sizeof(flb_route_kv))
        for i in range(len(items)):
            name, value = items[i]
            out[i].name = self.s(name)
            if value is not True:  # True: "is present" (NULL)
                out[i].value = self.s(value)
        return out

    cdef const flb_hdr_op *ops(self, object hdrs, uint32_t *n) except? NULL:
        """A route's header operations in C order: set, add, then remove."""
        cdef flb_hdr_op *out
        cdef Py_ssize_t i
        items = []
        if hdrs is not None:
            items += [(FLB_H1_OP_SET, k, v) for k, v in (getattr(hdrs, "set", None) or {}).items()]
            items += [(FLB_H1_OP_ADD, k, v) for k, v in (getattr(hdrs, "add", None) or {}).items()]
            items += [(FLB_H1_OP_REMOVE, k, None) for k in (getattr(hdrs, "remove", None) or ())]
        n[0] = len(items)
        if not items:
            return NULL
        out = <flb_hdr_op *>self.mem(len(items) * sizeof(flb_hdr_op))
        for i in range(len(items)):
            kind, name, value = items[i]
            out[i].kind = kind
            out[i].name = self.s(name)
            out[i].value = self.s(value)
        return out


cdef uint32_t _bk_index(dict index, object name, str what) except? 0xFFFFFFFE:
    """The index of backend name, FLB_NO_BK for None."""
    if name is None:
        return FLB_NO_BK
    if str(name) not in index:
        raise ValueError(f"{what}: no backend {name!r}")
    return <uint32_t>index[str(name)]


cdef int _check(int rc, const char *msg) except -1:
    """Raise for a negative errno return from the engine."""
    if rc >= 0:
        return 0
    text = msg.decode("utf-8", "replace") if msg[0] != 0 else strerror(-rc).decode()
    if rc == -EINVAL:
        raise ValueError(text)
    if rc == -ENOMEM:
        raise MemoryError(text)
    raise OSError(-rc, text)


cdef int _check_build(int rc, flb_snap_builder *b) except -1:
    """Raise for a negative errno return of a builder call: MemoryError for
    ENOMEM, ValueError (the config cannot be built) for any other."""
    if rc >= 0:
        return 0
    if rc == -ENOMEM:
        _check(rc, flb_snap_builder_error(b))
    msg = flb_snap_builder_error(b)
    raise ValueError(msg.decode("utf-8", "replace") if msg[0] != 0
                     else strerror(-rc).decode())


cdef tuple _addr(const flb_sockaddr *sa):
    cdef char buf[64]
    cdef uint16_t port = 0
    cdef const char *h = flb_sockaddr_host(sa, buf, sizeof(buf), &port)
    return (h.decode(), port)


cdef class _Engine:
    """One C engine: worker threads started by start(), fed by update(),
    joined by stop().  Server ids are assigned here per (backend name,
    server address) and never reused, so a server that stays across updates
    keeps its counters and passive-health state."""

    cdef flb_engine *e
    cdef dict _ids
    cdef uint64_t _next_id
    cdef readonly uint32_t workers

    def __cinit__(self, workers=1, *, max_pipes=None, max_free_pipes=None, max_bufs=None,
                  max_free_bufs=None, max_conns=None, accept_batch=None, backlog=None,
                  no_splice=False):
        cdef flb_engine_params p
        cdef char err[ERRLEN]
        self.e = NULL
        self._ids = {}
        self._next_id = 1
        flb_engine_params_default(&p)
        p.workers = _u32(workers, "workers")
        if not 1 <= p.workers <= 1024:
            raise ValueError("workers must be in 1..1024")
        if max_pipes is not None:
            p.max_pipes = _u32(max_pipes, "max_pipes")
        if max_free_pipes is not None:
            p.max_free_pipes = _u32(max_free_pipes, "max_free_pipes")
        if max_bufs is not None:
            p.max_bufs = _u32(max_bufs, "max_bufs")
        if max_free_bufs is not None:
            p.max_free_bufs = _u32(max_free_bufs, "max_free_bufs")
        if max_conns is not None:
            p.max_conns = _u32(max_conns, "max_conns")
        if accept_batch is not None:
            p.accept_batch = _u32(accept_batch, "accept_batch")
        if backlog is not None:
            p.backlog = <int>_u32(backlog, "backlog")
        p.no_splice = 1 if no_splice else 0
        err[0] = 0
        self.e = flb_engine_new(&p, err, ERRLEN)
        if self.e == NULL:
            raise MemoryError(err.decode("utf-8", "replace"))
        self.workers = p.workers

    def __dealloc__(self):
        cdef flb_engine *e = self.e
        self.e = NULL
        if e != NULL:
            with nogil:
                flb_engine_free(e)

    cdef uint64_t _server_id(self, str backend, str address):
        key = (backend, address)
        sid = self._ids.get(key)
        if sid is None:
            sid = self._next_id
            self._next_id += 1
            self._ids[key] = sid
        return sid

    cdef flb_snap_builder *_build(self, config) except NULL:
        """A C builder filled from the config; freed here on error."""
        cdef flb_snap_builder *b = flb_snap_builder_new()
        if b == NULL:
            raise MemoryError()
        try:
            flb_snap_set_global(b, _u32(config.global_.max_connections, "max_connections"))
            index = {}
            for name, bk in config.backends.items():
                index[str(name)] = self._add_backend(b, str(name), bk)
            for lsn in config.listeners:
                self._add_listener(b, lsn, index)
        except BaseException:
            flb_snap_builder_free(b)
            raise
        return b

    cdef int _add_backend(self, flb_snap_builder *b, str name, object bk) except -1:
        """Add a backend, its http settings and its servers; returns its index."""
        cdef int rc, algo, state, bki
        cdef double lf
        algo = flb_algo_from_name(_b(bk.balance))
        if algo < 0:
            raise ValueError(f"backend {name}: unknown balance {bk.balance!r}")
        lf = 0.0 if bk.load_factor is None else float(bk.load_factor)
        bki = flb_snap_add_backend(b, _b(name), algo, _u32(bk.retries, "retries"), lf,
                                   _u32(bk.max_fails, "max_fails"),
                                   _ms(bk.fail_timeout, "fail_timeout"))
        _check_build(bki, b)
        self._set_backend_http(b, <uint32_t>bki, name, bk)
        for srv in bk.servers:
            address = str(srv.address)
            state = flb_state_from_name(_b(srv.state))
            if state < 0:
                raise ValueError(f"server {address}: unknown state {srv.state!r}")
            port = int(srv.port)
            if not 1 <= port <= 65535:
                raise ValueError(f"server {address}: port must be in 1..65535")
            rc = flb_snap_add_server(b, <uint32_t>bki, self._server_id(name, address),
                                     _b(address), _b(srv.host), <uint16_t>port,
                                     _u32(srv.weight, "weight"),
                                     _u32(srv.max_conn, "max_conn"), state)
            _check_build(rc, b)
        return bki

    cdef int _set_backend_http(self, flb_snap_builder *b, uint32_t bki, str name,
                               object bk) except -1:
        """The backend's hash key ("kind" or "kind:NAME"), sticky cookie and
        upstream keep-alive pool."""
        cdef _Pins pins = _Pins()
        cdef int rc
        kind, _, hname = str(getattr(bk, "hash_key", None) or "client_ip").partition(":")
        hkey = _HKEYS.get(kind)
        if hkey is None:
            raise ValueError(f"backend {name}: unknown hash_key kind {kind!r}")
        rc = flb_snap_set_backend_http(b, bki, hkey, pins.s(hname or None),
                                       pins.s(getattr(bk, "sticky_cookie", None)),
                                       _u32(getattr(bk, "keepalive", 32), "keepalive"),
                                       _ms(getattr(bk, "keepalive_timeout", 4.0),
                                           "keepalive_timeout"),
                                       1 if getattr(bk, "retry_non_idempotent", False) else 0)
        _check_build(rc, b)
        return 0

    cdef int _add_listener(self, flb_snap_builder *b, object lsn, dict index) except -1:
        """Add a listener; in mode http also its settings and routes."""
        cdef int rc, mode
        cdef uint32_t bk
        lname = str(lsn.name)
        mode_name = getattr(lsn, "mode", None) or "tcp"
        mode = flb_mode_from_name(_b(mode_name))
        if mode < 0:
            raise ValueError(f"listener {lname}: mode {mode_name!r} is not supported")
        if mode == FLB_MODE_HTTP:
            bk = _bk_index(index, getattr(lsn, "backend", None), f"listener {lname}")
        else:
            if str(lsn.backend) not in index:
                raise ValueError(f"listener {lname}: no backend {lsn.backend!r}")
            bk = <uint32_t>index[str(lsn.backend)]
        port = int(lsn.port)
        if not 0 <= port <= 65535:
            raise ValueError(f"listener {lname}: port must be in 0..65535")
        rc = flb_snap_add_listener(b, _b(lname), _b(lsn.host), <uint16_t>port, mode, bk,
                                   _ms(lsn.connect_timeout, "connect_timeout"),
                                   _ms(lsn.idle_timeout, "idle_timeout"),
                                   _u32(lsn.max_connections, "max_connections"))
        _check_build(rc, b)
        if mode == FLB_MODE_HTTP:
            self._set_http(b, <uint32_t>rc, lsn)
            for route in _http(lsn, "routes") or ():
                self._add_route(b, <uint32_t>rc, lname, route, index)
        return rc

    cdef int _set_http(self, flb_snap_builder *b, uint32_t li, object lsn) except -1:
        cdef flb_http_settings hs
        cdef _Pins pins = _Pins()
        cdef int rc
        memset(&hs, 0, sizeof(hs))
        hs.head_timeout_ms = _ms(_http(lsn, "header_timeout"), "header_timeout")
        hs.keepalive_timeout_ms = _ms(_http(lsn, "keepalive_timeout"), "keepalive_timeout")
        hs.response_timeout_ms = _ms(_http(lsn, "response_timeout"), "response_timeout")
        hs.body_timeout_ms = _ms(_http(lsn, "request_body_timeout"), "request_body_timeout")
        hs.send_timeout_ms = _ms(_http(lsn, "send_timeout"), "send_timeout")
        hs.max_head = _u32(_http(lsn, "max_header_size"), "max_header_size")
        for key, flag in _RW_FLAGS:
            if _http(lsn, key):
                hs.rw_flags |= <uint32_t>flag
        rid = _http(lsn, "request_id")
        if rid is not None and rid is not False:
            hs.rw_flags |= FLB_H1RW_REQUEST_ID
            hs.request_id_header = pins.s(rid)
        log = _http(lsn, "access_log")
        if log:
            hs.access_log = pins.s(log)
            hs.access_log_format = 1 if _http(lsn, "access_log_format") == "json" else 0
        rc = flb_snap_set_http(b, li, &hs)
        _check_build(rc, b)
        return 0

    cdef int _add_route(self, flb_snap_builder *b, uint32_t li, str lname, object route,
                        dict index) except -1:
        cdef flb_route_spec spec
        cdef flb_route_extra ex
        cdef _Pins pins = _Pins()
        cdef int rc
        memset(&spec, 0, sizeof(spec))
        memset(&ex, 0, sizeof(ex))
        match = getattr(route, "match", None)
        spec.host = pins.s(getattr(match, "host", None))
        path = getattr(match, "path", None)
        if path is not None:
            spec.path = pins.s(path)
            spec.path_kind = FLB_ROUTE_PATH_EXACT
        else:
            spec.path = pins.s(getattr(match, "path_prefix", None))
            spec.path_kind = FLB_ROUTE_PATH_PREFIX
        spec.methods = pins.strs(getattr(match, "methods", None), &spec.num_methods)
        spec.headers = pins.kvs(getattr(match, "headers", None), &spec.num_headers)
        spec.cookies = pins.kvs(getattr(match, "cookies", None), &spec.num_cookies)
        spec.backend = _bk_index(index, getattr(route, "backend", None),
                                 f"listener {lname}: route")
        spec.strip_prefix = pins.s(getattr(route, "strip_prefix", None))
        spec.rewrite_prefix = pins.s(getattr(route, "rewrite_prefix", None))
        ex.connect_timeout_ms = _ms(getattr(route, "connect_timeout", None), "connect_timeout")
        ex.response_timeout_ms = _ms(getattr(route, "response_timeout", None),
                                     "response_timeout")
        ex.max_body = _u64(getattr(route, "max_body_size", None), "max_body_size")
        ex.req_ops = pins.ops(getattr(route, "request_headers", None), &ex.nreq)
        ex.resp_ops = pins.ops(getattr(route, "response_headers", None), &ex.nresp)
        rc = flb_snap_add_route(b, li, &spec, &ex)
        _check_build(rc, b)
        return rc

    def start(self, config):
        """Bind the listeners of config and start the workers on it."""
        cdef char err[ERRLEN]
        cdef int rc
        cdef flb_snap_builder *b = self._build(config)
        err[0] = 0
        with nogil:
            rc = flb_engine_start(self.e, b, err, ERRLEN)
        _check(rc, err)

    def update(self, config):
        """Swap in config; on error nothing changes."""
        cdef char err[ERRLEN]
        cdef int rc
        cdef flb_snap_builder *b = self._build(config)
        err[0] = 0
        with nogil:
            rc = flb_engine_update(self.e, b, err, ERRLEN)
        _check(rc, err)

    def stop(self, drain_timeout=0.0):
        """Stop accepting, drain up to drain_timeout seconds, close the
        rest and join the workers.  Returns False if it was not running."""
        cdef uint32_t ms = _ms(drain_timeout, "drain_timeout")
        cdef int rc
        with nogil:
            rc = flb_engine_stop(self.e, ms)
        return rc == 0

    def reopen_logs(self):
        """Ask every access log to reopen its file (log rotation).
        Returns how many were asked."""
        cdef int n
        with nogil:
            n = flb_engine_reopen_logs(self.e)
        return n

    def addresses(self):
        """{listener name: (host, port)} as bound."""
        cdef flb_snapshot *s
        cdef uint32_t i
        with nogil:  # waits for the control mutex (held during a stop)
            s = flb_engine_snapshot(self.e)
        out = {}
        if s == NULL:
            return out
        try:
            for i in range(s.nlsn):
                out[s.lsn[i].sock.name.decode()] = _addr(&s.lsn[i].sock.bound_addr)
        finally:
            flb_snapshot_release(s)
        return out

    def stats(self):
        """Counters summed over workers:
        {"active", "generation", "workers": [..], "total": {..},
         "listeners": {name: {..}}, "backends": {name: {"balance", "servers":
         {address: {..}}}}}."""
        cdef flb_snapshot *s
        cdef flb_lsn_stats ls
        cdef flb_srv_stats ss
        cdef flb_wrk_stats ws
        cdef flb_server *sv
        cdef uint32_t i, j
        with nogil:  # waits for the control mutex (held during a stop)
            s = flb_engine_snapshot(self.e)
        workers = []
        total = {}
        for i in range(self.workers):
            flb_engine_worker_stats(self.e, i, &ws)
            d = ws
            workers.append(d)
            for k, v in d.items():
                total[k] = total.get(k, 0) + v
        out = {"active": flb_engine_active(self.e), "workers": workers, "total": total,
               "listeners": {}, "backends": {}, "generation": 0}
        if s == NULL:
            return out
        try:
            out["generation"] = s.gen
            for i in range(s.nbk):
                servers = {}
                for j in range(s.bk[i].first, s.bk[i].first + s.bk[i].nsrv):
                    sv = &s.srv[j]
                    flb_server_stats(sv, &ss)
                    d = ss
                    d["id"] = sv.sh.id
                    d["state"] = flb_state_name(sv.state).decode()
                    d["weight"] = sv.weight
                    d["active"] = sv.sh.active
                    d["fails"] = sv.sh.fails
                    d["health_out"] = bool(flb_server_health_out(sv, &s.bk[i]))
                    d["connect_time_avg_us"] = (<double>ss.connect_time_us / ss.connect_count
                                                if ss.connect_count else 0.0)
                    servers[sv.sh.address.decode()] = d
                out["backends"][s.bk[i].name.decode()] = {
                    "balance": flb_algo_name(s.bk[i].algo).decode(), "servers": servers}
            for i in range(s.nlsn):
                flb_listener_stats(&s.lsn[i], &ls)
                d = ls
                d["address"] = _addr(&s.lsn[i].sock.bound_addr)
                d["backend"] = (None if s.lsn[i].backend >= s.nbk
                                else s.bk[s.lsn[i].backend].name.decode())
                out["listeners"][s.lsn[i].sock.name.decode()] = d
        finally:
            flb_snapshot_release(s)
        return out
