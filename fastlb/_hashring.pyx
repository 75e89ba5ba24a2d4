"""Cython binding of the hash and the consistent-hash tables (csrc/hash.c,
csrc/maglev.c, csrc/ring.c).  The public module is fastlb.hashring.

Tables are immutable: a changed node list is a new object, exactly as the
engine swaps a new table into a new config snapshot."""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


cdef inline uint64_t _hash_key(object key, uint64_t seed) except? 0:
    """flb_hash64 of a str (its UTF-8), bytes, or any bytes-like object."""
    cdef Py_ssize_t n
    cdef const char *p
    cdef Py_buffer view
    cdef uint64_t h
    if type(key) is bytes:
        return flb_hash64(PyBytes_AS_STRING(key), <size_t>PyBytes_GET_SIZE(key), seed)
    if type(key) is str:
        p = PyUnicode_AsUTF8AndSize(key, &n)
        return flb_hash64(p, <size_t>n, seed)
    if isinstance(key, str):
        p = PyUnicode_AsUTF8AndSize(key, &n)
        return flb_hash64(p, <size_t>n, seed)
    PyObject_GetBuffer(key, &view, PyBUF_SIMPLE)
    h = flb_hash64(view.buf, <size_t>view.len, seed)
    PyBuffer_Release(&view)
    return h


def hash64(data, seed=0):
    """XXH64 of data (bytes-like, or str as UTF-8) with a 64-bit seed."""
    if not 0 <= seed <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError("seed must be in 0..2**64-1")
    return _hash_key(data, <uint64_t>seed)


def jump(key, buckets):
    """Jump consistent hash (Lamping & Veach 2014): the bucket in
    [0, buckets) for a 64-bit integer key."""
    if not 0 <= key <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError("key must be in 0..2**64-1")
    if not 1 <= buckets <= 0x7FFFFFFF:
        raise ValueError("buckets must be in 1..2**31-1")
    return flb_jump_hash(<uint64_t>key, <int32_t>buckets)


cdef class _Table:
    """What Maglev and Ring share: the nodes, their weights, key hashing and
    the conversion of load vectors for bounded-load lookups.  A table is
    built once by __init__ and never changes afterwards."""

    cdef readonly tuple nodes
    cdef readonly tuple weights
    cdef uint32_t n
    cdef bint built
    # Build inputs, alive only during __init__ (C copies what it keeps).
    cdef uint32_t *c_weights
    cdef flb_hkey *c_keys
    cdef list _key_bytes
    cdef object _pending   # (nodes, weights) validated, published by _commit

    cdef int _prepare(self, object nodes, object weights) except -1:
        """Validate nodes and weights and fill c_keys and c_weights for a
        build.  Returns 0; raises TypeError/ValueError on bad input."""
        cdef Py_ssize_t i
        if self.built:
            raise TypeError(f"{type(self).__name__} is immutable: build a new one")
        nodes = tuple(nodes)
        count = len(nodes)
        if count == 0:
            raise ValueError("nodes must not be empty")
        if count > FLB_CHASH_MAX_NODES:
            raise ValueError(f"at most {FLB_CHASH_MAX_NODES} nodes")
        keys = []
        for node in nodes:
            if isinstance(node, str):
                keys.append((<str>node).encode("utf-8"))
            elif isinstance(node, bytes):
                keys.append(node)
            else:
                raise TypeError(f"a node must be str or bytes, not {type(node).__name__}")
        if len(set(keys)) != count:
            raise ValueError("nodes must be unique")
        if weights is None:
            weights = (1,) * count
        else:
            weights = tuple(weights)
            if len(weights) != count:
                raise ValueError(f"got {len(weights)} weights for {count} nodes")
            for w in weights:
                if not isinstance(w, int) or isinstance(w, bool) or not 1 <= w <= 0xFFFF:
                    raise ValueError(f"a weight must be an int in 1..65535, not {w!r}")
        self._release_inputs()
        self._key_bytes = keys
        self.c_keys = <flb_hkey *>malloc(count * sizeof(flb_hkey))
        self.c_weights = <uint32_t *>malloc(count * sizeof(uint32_t))
        if self.c_keys == NULL or self.c_weights == NULL:
            raise MemoryError()
        for i in range(count):
            self.c_keys[i].data = PyBytes_AS_STRING(keys[i])
            self.c_keys[i].len = <size_t>PyBytes_GET_SIZE(keys[i])
            self.c_weights[i] = <uint32_t>weights[i]
        self._pending = (nodes, weights)
        return 0

    cdef void _commit(self):
        """Publish the nodes once the C table is built."""
        self.nodes, self.weights = self._pending
        self.n = <uint32_t>len(self.nodes)
        self.built = True
        self._pending = None

    cdef void _release_inputs(self):
        """Drop the build inputs (C does not retain them)."""
        free(self.c_keys)
        free(self.c_weights)
        self.c_keys = NULL
        self.c_weights = NULL
        self._key_bytes = None

    def __dealloc__(self):
        free(self.c_keys)
        free(self.c_weights)

    cdef int _check_built(self) except -1:
        if not self.built:
            raise ValueError(f"{type(self).__name__} was not built (use its constructor)")
        return 0

    cdef uint32_t _index(self, uint64_t h) noexcept:
        return 0

    cdef int32_t _bounded(self, uint64_t h, const uint32_t *loads, uint64_t total, double c,
                          const uint8_t *excluded) noexcept:
        return -1

    def __len__(self):
        return self.n

    def lookup(self, key):
        """The node for key (str or bytes-like)."""
        if not self.built:
            self._check_built()
        return self.nodes[self._index(_hash_key(key, 0))]

    def index(self, key):
        """The index in .nodes of the node for key."""
        if not self.built:
            self._check_built()
        return self._index(_hash_key(key, 0))

    def __reduce__(self):
        raise TypeError(f"{type(self).__name__} cannot be pickled: rebuild it from its nodes")

    def lookup_bounded(self, key, loads, load_factor=1.25, excluded=None):
        """The node for key under bounded loads: walking on from the key's
        place, the first node not excluded whose load + 1 stays within
        ceil(load_factor * (sum(loads) + 1) * weight / total_weight).

        loads: current load per node, in .nodes order.  excluded: None, or a
        flag per node (true = skip, e.g. down).  Raises LookupError when every
        node is excluded."""
        cdef uint32_t *c_loads = NULL
        cdef uint8_t *c_excl = NULL
        cdef uint64_t total = 0
        cdef uint32_t i
        cdef int32_t idx
        cdef uint64_t h = _hash_key(key, 0)
        cdef double c = load_factor
        self._check_built()
        if not c >= 1.0:
            raise ValueError("load_factor must be >= 1.0")
        loads = list(loads)
        if <uint32_t>len(loads) != self.n:
            raise ValueError(f"got {len(loads)} loads for {self.n} nodes")
        if excluded is not None:
            excluded = list(excluded)
            if <uint32_t>len(excluded) != self.n:
                raise ValueError(f"got {len(excluded)} exclusion flags for {self.n} nodes")
        try:
            c_loads = <uint32_t *>malloc(self.n * sizeof(uint32_t))
            if c_loads == NULL:
                raise MemoryError()
            for i in range(self.n):
                load = loads[i]
                if not isinstance(load, int) or not 0 <= load <= 0xFFFFFFFF:
                    raise ValueError(f"a load must be an int in 0..2**32-1, not {load!r}")
                c_loads[i] = <uint32_t>loads[i]
                total += c_loads[i]
            if excluded is not None:
                c_excl = <uint8_t *>calloc(self.n, 1)
                if c_excl == NULL:
                    raise MemoryError()
                for i in range(self.n):
                    c_excl[i] = 1 if excluded[i] else 0
            idx = self._bounded(h, c_loads, total, c, c_excl)
        finally:
            free(c_loads)
            free(c_excl)
        if idx < 0:
            raise LookupError("every node is excluded")
        return self.nodes[idx]


cdef class Maglev(_Table):
    """Weighted Maglev table (Eisenbud et al., NSDI 2016): O(1) lookups,
    minimal disruption.  table_size must be a prime larger than the node
    count; at least 100 x nodes keeps shares within a few percent."""

    cdef flb_maglev m
    cdef readonly uint32_t table_size

    def __init__(self, nodes, weights=None, table_size=65537):
        cdef int rc
        if self.built:
            raise TypeError("Maglev is immutable: build a new one")
        if not isinstance(table_size, int) or not 2 <= table_size <= FLB_MAGLEV_MAX_SIZE:
            raise ValueError(f"table_size must be a prime in 2..{FLB_MAGLEV_MAX_SIZE}")
        self._prepare(nodes, weights)
        cdef uint32_t n = <uint32_t>len(self._pending[0])
        cdef uint32_t size = <uint32_t>table_size
        with nogil:
            rc = flb_maglev_build(&self.m, self.c_keys, self.c_weights, n, size)
        self._release_inputs()
        if rc == FLB_CHASH_ENOMEM:
            raise MemoryError()
        if rc != FLB_CHASH_OK:
            raise ValueError(f"table_size must be a prime larger than the node count "
                             f"({n}), got {table_size}")
        self.table_size = size
        self._commit()

    def __dealloc__(self):
        flb_maglev_free(&self.m)

    cdef uint32_t _index(self, uint64_t h) noexcept:
        return flb_maglev_lookup(&self.m, h)

    cdef int32_t _bounded(self, uint64_t h, const uint32_t *loads, uint64_t total, double c,
                          const uint8_t *excluded) noexcept:
        return flb_maglev_lookup_bounded(&self.m, h, loads, total, c, excluded)

    def __repr__(self):
        return f"Maglev(nodes={len(self.nodes)}, table_size={self.table_size})"


cdef class Ring(_Table):
    """Ketama-style ring with weighted virtual nodes."""

    cdef flb_ring r
    cdef readonly uint32_t vnodes

    def __init__(self, nodes, weights=None, vnodes=160):
        cdef int rc
        if self.built:
            raise TypeError("Ring is immutable: build a new one")
        if not isinstance(vnodes, int) or not 1 <= vnodes <= 65535:
            raise ValueError("vnodes must be an int in 1..65535")
        self._prepare(nodes, weights)
        cdef uint32_t n = <uint32_t>len(self._pending[0])
        cdef uint32_t vn = <uint32_t>vnodes
        with nogil:
            rc = flb_ring_build(&self.r, self.c_keys, self.c_weights, n, vn)
        self._release_inputs()
        if rc == FLB_CHASH_ENOMEM:
            raise MemoryError()
        if rc != FLB_CHASH_OK:
            raise ValueError(f"ring too large: {n} nodes x {vnodes} vnodes (per unit of "
                             f"weight) exceeds {FLB_RING_MAX_POINTS} points")
        self.vnodes = vn
        self._commit()

    def __dealloc__(self):
        flb_ring_free(&self.r)

    cdef uint32_t _index(self, uint64_t h) noexcept:
        return flb_ring_lookup(&self.r, h)

    cdef int32_t _bounded(self, uint64_t h, const uint32_t *loads, uint64_t total, double c,
                          const uint8_t *excluded) noexcept:
        return flb_ring_lookup_bounded(&self.r, h, loads, total, c, excluded)

    def __repr__(self):
        return f"Ring(nodes={len(self.nodes)}, vnodes={self.vnodes})"
