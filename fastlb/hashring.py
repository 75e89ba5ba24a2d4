"""Backend selection by consistent hashing, in C.

Maglev(nodes, weights=None, table_size=65537) and Ring(nodes, weights=None,
vnodes=160) map keys to nodes with minimal disruption when nodes change;
both offer lookup_bounded() for bounded loads.  jump(key, buckets) is Jump
consistent hash and hash64(data, seed=0) is XXH64.
"""

from fastlb._hashring import Maglev, Ring, hash64, jump

__all__ = ["Maglev", "Ring", "hash64", "jump"]
