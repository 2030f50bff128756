"""Nearest-neighbour search in Hamming space, and float search rescoring its
candidates."""

from ._directory import load_index, save_index
from ._duplicates import duplicate_groups, duplicate_pairs
from ._hamming_index import HammingIndex
from ._hamming_neighbors import HammingNeighbors
from ._rescoring import RescoringNeighbors

__all__ = [
    "HammingIndex",
    "HammingNeighbors",
    "RescoringNeighbors",
    "duplicate_groups",
    "duplicate_pairs",
    "load_index",
    "save_index",
    "warm_up",
]


def warm_up():
    """Compile the search kernels now (or load them from numba's disk cache).

    The kernels otherwise compile on the first search; ``import skhash`` never
    compiles nor imports numba. Compiled code is cached on disk, so the cost is
    paid once per installation, and loading it once per process.

    Returns
    -------
    seconds : dict
        Seconds each kernel took to compile or load, the first time in this
        process.
    """
    from ._index import ENGINES, engine_class
    from ._numba_common import COMPILE_SECONDS

    for name in ENGINES:
        engine_class(name).warm_up()  # a no-op for engines without kernels
    return dict(COMPILE_SECONDS)
