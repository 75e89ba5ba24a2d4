# C declarations of the hash and consistent-hash tables (csrc/hash.h,
# csrc/chash-t.h, csrc/maglev.h, csrc/ring.h).
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t


cdef extern from "hash.h" nogil:
    uint64_t flb_hash64(const void *data, size_t len, uint64_t seed)
    int32_t flb_jump_hash(uint64_t key, int32_t num_buckets)


cdef extern from "chash-t.h" nogil:
    enum:
        FLB_CHASH_OK
        FLB_CHASH_EINVAL
        FLB_CHASH_ENOMEM
        FLB_MAGLEV_MAX_SIZE
        FLB_RING_MAX_POINTS
        FLB_CHASH_MAX_NODES

    struct flb_hkey:
        const void *data
        size_t len

    struct flb_maglev:
        uint32_t size
        uint32_t num_nodes
        uint32_t *table

    struct flb_ring:
        uint32_t num_points
        uint32_t num_nodes


cdef extern from "maglev.h" nogil:
    int flb_maglev_build(flb_maglev *m, const flb_hkey *keys, const uint32_t *weights,
                         uint32_t n, uint32_t size)
    void flb_maglev_free(flb_maglev *m)
    uint32_t flb_maglev_lookup(const flb_maglev *m, uint64_t hash)
    int32_t flb_maglev_lookup_bounded(const flb_maglev *m, uint64_t hash, const uint32_t *loads,
                                      uint64_t total, double c, const uint8_t *excluded)


cdef extern from "ring.h" nogil:
    int flb_ring_build(flb_ring *r, const flb_hkey *keys, const uint32_t *weights,
                       uint32_t n, uint32_t vnodes)
    void flb_ring_free(flb_ring *r)
    uint32_t flb_ring_lookup(const flb_ring *r, uint64_t hash)
    int32_t flb_ring_lookup_bounded(const flb_ring *r, uint64_t hash, const uint32_t *loads,
                                    uint64_t total, double c, const uint8_t *excluded)
