"""Cython binding of the C data-plane engine (csrc/engine.c and friends).
The public API is fastlb.engine.Engine.

This module holds no policy: it turns an already validated config object
(duck-typed, see fastlb/engine.py) into C builder calls, starts, updates and
stops the engine with the GIL released, and reads the summed counters into
dicts.  Errors become ValueError (bad config), OSError (bind and other
system errors) or MemoryError."""

from libc.errno cimport EINVAL, ENOMEM
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport strerror


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


cdef bytes _b(object s):
    """str as UTF-8 bytes."""
    return str(s).encode("utf-8")


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
        cdef int rc, algo, state, mode
        cdef double lf
        if b == NULL:
            raise MemoryError()
        try:
            flb_snap_set_global(b, _u32(config.global_.max_connections, "max_connections"))
            index = {}
            for name, bk in config.backends.items():
                name = str(name)
                algo = flb_algo_from_name(_b(bk.balance))
                if algo < 0:
                    raise ValueError(f"backend {name}: unknown balance {bk.balance!r}")
                lf = 0.0 if bk.load_factor is None else float(bk.load_factor)
                rc = flb_snap_add_backend(b, _b(name), algo, _u32(bk.retries, "retries"), lf,
                                          _u32(bk.max_fails, "max_fails"),
                                          _ms(bk.fail_timeout, "fail_timeout"))
                if rc < 0:
                    _check(rc, flb_snap_builder_error(b))
                index[name] = rc
                for srv in bk.servers:
                    address = str(srv.address)
                    state = flb_state_from_name(_b(srv.state))
                    if state < 0:
                        raise ValueError(f"server {address}: unknown state {srv.state!r}")
                    port = int(srv.port)
                    if not 1 <= port <= 65535:
                        raise ValueError(f"server {address}: port must be in 1..65535")
                    rc = flb_snap_add_server(b, <uint32_t>index[name],
                                             self._server_id(name, address), _b(address),
                                             _b(srv.host), <uint16_t>port,
                                             _u32(srv.weight, "weight"),
                                             _u32(srv.max_conn, "max_conn"), state)
                    if rc < 0:
                        _check(rc, flb_snap_builder_error(b))
            for lsn in config.listeners:
                lname = str(lsn.name)
                if str(lsn.backend) not in index:
                    raise ValueError(f"listener {lname}: no backend {lsn.backend!r}")
                mode = flb_mode_from_name(_b(lsn.mode))
                if mode < 0:
                    raise ValueError(f"listener {lname}: mode {lsn.mode!r} is not supported")
                port = int(lsn.port)
                if not 0 <= port <= 65535:
                    raise ValueError(f"listener {lname}: port must be in 0..65535")
                rc = flb_snap_add_listener(b, _b(lname), _b(lsn.host), <uint16_t>port, mode,
                                           <uint32_t>index[str(lsn.backend)],
                                           _ms(lsn.connect_timeout, "connect_timeout"),
                                           _ms(lsn.idle_timeout, "idle_timeout"),
                                           _u32(lsn.max_connections, "max_connections"))
                if rc < 0:
                    _check(rc, flb_snap_builder_error(b))
        except BaseException:
            flb_snap_builder_free(b)
            raise
        return b

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
                d["backend"] = s.bk[s.lsn[i].backend].name.decode()
                out["listeners"][s.lsn[i].sock.name.decode()] = d
        finally:
            flb_snapshot_release(s)
        return out
