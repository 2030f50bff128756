"""What the compiled search kernels share: intrinsics, scan pieces, compiling.

The database is kept word-major (``database_t[w, j]`` is word ``w`` of code
``j``) by the scans, so the innermost loops run over consecutive codes, in
chunks small enough to stay in the L1 cache while a block of queries walks
them. The kernels are serial and release the GIL; :mod:`._threads` runs query
blocks on a pool of threads.

numba is imported by the kernel modules only, and those on first use only, so
``import skhash`` stays light. Kernels are compiled once and cached on disk
(``cache=True``); :func:`compile_once` times the first call of each and says
when a cold cache makes it long.
"""

import logging
import os
import threading
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# A database chunk of this many bytes stays in L1 while a query block scans it.
CHUNK_BYTES = 16384
# Codes tested together before looking at any of them one by one.
SUBCHUNK = 512

#: Seconds spent compiling (or loading from numba's cache) each kernel, filled
#: by :func:`compile_once`.
COMPILE_SECONDS = {}
_compile_lock = threading.RLock()
logger = logging.getLogger("skhash")


@intrinsic
def popcount(typingctx, word):
    """Number of set bits of a uint64 (LLVM's ctpop, vectorised with AVX2)."""
    signature = types.int64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@intrinsic
def rarely(typingctx, condition):
    """``condition``, marked unlikely so its branch is laid out of the loop.

    Without the hint LLVM puts the rare code inline and jumps over it: a taken
    branch per code, which caps the scan at one code per cycle.
    """
    signature = types.boolean(types.boolean)

    def codegen(context, builder, sig, args):
        bit = ir.IntType(1)
        expect = builder.module.declare_intrinsic(
            "llvm.expect", [bit], ir.FunctionType(bit, [bit, bit])
        )
        return builder.call(expect, [args[0], ir.Constant(bit, 0)])

    return signature, codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask for ``array.flat[index]`` to be brought into the cache (no effect
    on results): random accesses issued together overlap their misses."""
    signature = types.void(array, index)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch",
            [byte_pointer],
            ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
        )
        address = builder.bitcast(builder.gep(data, [args[1]]), byte_pointer)
        # A read (0), kept in all cache levels (3), of data (1).
        flags = [ir.Constant(int32, value) for value in (0, 3, 1)]
        builder.call(prefetch, [address, *flags])
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, nogil=True)
def chunk_distances(query_words, q, database_t, start, stop, acc):
    """Distances over all words but the last, into acc[: stop - start]."""
    n_words = database_t.shape[0]
    # 1-D rows and a zero-based loop let LLVM vectorise the popcounts.
    n = stop - start
    if n_words > 1:
        word = query_words[q, 0]
        row = database_t[0, start:stop]
        for j in range(n):
            acc[j] = popcount(row[j] ^ word)
        for w in range(1, n_words - 1):
            word = query_words[q, w]
            row = database_t[w, start:stop]
            for j in range(n):
                acc[j] += popcount(row[j] ^ word)


@njit(cache=True, nogil=True)
def grow(array, size):
    grown = np.empty(size, array.dtype)
    grown[: len(array)] = array
    return grown


@njit(cache=True, nogil=True)
def chunk_size(n_words):
    """Codes per database chunk for codes of ``n_words`` words."""
    return max(SUBCHUNK, CHUNK_BYTES // (8 * n_words) // SUBCHUNK * SUBCHUNK)


def read_only(array):
    """A read-only view of ``array``: numba compiles a kernel once more for
    read-only arguments (a database mapped with ``mmap_mode="r"``), so the
    warm-ups call each kernel with both kinds."""
    view = array.view()
    view.flags.writeable = False
    return view


def compile_once(name, kernel, call):
    """Run ``call()`` (a first call of ``kernel``) once per process, timed.

    The seconds go to ``COMPILE_SECONDS[name]``. With numba's disk cache empty
    (a fresh installation, or a new numba) compiling all the search kernels
    takes tens of seconds; a one-line log message says so rather than leaving
    a first search silent for that long.
    """
    with _compile_lock:
        if name not in COMPILE_SECONDS:
            if not _is_cached(kernel) and not _announced:
                _announced.append(name)
                logger.warning(
                    "skhash: compiling the Hamming search kernels, once per "
                    "installation (about 30 s; numba caches them on disk)."
                )
            start = time.perf_counter()
            call()
            COMPILE_SECONDS[name] = time.perf_counter() - start
    return dict(COMPILE_SECONDS)


_announced = []


def _is_cached(kernel):
    """Whether numba's disk cache has an index for this kernel (best effort)."""
    try:
        return os.path.exists(kernel._cache._cache_file._index_path)
    except AttributeError:  # numba's cache internals moved: assume cached
        return True
