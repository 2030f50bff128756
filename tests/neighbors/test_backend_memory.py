"""Memory of the FAISS and torch engines: bounded work per call, and running out
of it is a MemoryError the caller catches, never the end of the process.

The memory cases run in a subprocess: under an address-space limit
(``RLIMIT_AS``) for FAISS, and with the peak resident size reset then read
(``/proc/self/clear_refs``, ``VmHWM``) for torch.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import skhash
from skhash.codes import pack_codes
from skhash.neighbors._index import engine_class

needs_faiss = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss is not installed"
)
needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc, sets RLIMIT_AS"
)

# Reads the child's memory figures from /proc/self/status, in bytes.
_STATUS = """
import numpy as np, resource, threading
from skhash import HammingNeighbors

def status(field):
    with open("/proc/self/status") as lines:
        line = next(line for line in lines if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024
"""


def _run(script, timeout=120):
    """Run ``script`` in a fresh interpreter importing this same skhash."""
    env = dict(os.environ, PYTHONPATH=str(Path(skhash.__file__).parents[1]))
    code = textwrap.dedent(_STATUS) + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@needs_faiss
@needs_linux
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_faiss_radius_result_too_large_is_a_memory_error(n_jobs):
    # Every pair of 20,000 codes is within radius 64: 4e8 pairs, ~5 GB of
    # results against 256 MB of address space left. FAISS used to throw
    # std::bad_alloc inside its OpenMP region, which aborts the process.
    result = _run(
        f"""
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 256, (20_000, 8), dtype=np.uint8)
        nn = HammingNeighbors(backend="faiss", n_jobs={n_jobs}).fit(codes)
        nn.radius_neighbors(codes[:2], radius=1)  # builds the index
        limit = status("VmSize") + (256 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            nn.radius_neighbors(None, radius=64)
        except MemoryError:
            print("caught MemoryError")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "caught MemoryError" in result.stdout


@needs_faiss
@needs_linux
def test_faiss_kneighbors_too_large_is_a_memory_error():
    # FAISS's kNN writes into arrays NumPy allocates and allocates nothing in
    # its OpenMP regions: it needs no blocks.
    result = _run(
        """
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 256, (20_000, 8), dtype=np.uint8)
        nn = HammingNeighbors(backend="faiss", algorithm="brute").fit(codes)
        nn.kneighbors(codes[:2], n_neighbors=1)
        limit = status("VmSize") + (256 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            nn.kneighbors(codes, n_neighbors=19_999)  # 4.8 GB of results
        except MemoryError:
            print("caught MemoryError")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "caught MemoryError" in result.stdout


@needs_linux
@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="cannot reset VmHWM"
)
def test_torch_cpu_concurrent_kneighbors_memory_is_bounded():
    # 100,000 codes of 128 bits; 4 threads each search 200 queries at once.
    # The database signs (51 MB) are built before the peak is reset: they are
    # the fitted engine's, not the calls'. Each call now holds one 16 MB tile
    # (~110 MiB for the four, with torch's and BLAS's per-thread buffers); the
    # old engine held ~0.3 GB a call (int64 copies of its 4M-element blocks).
    result = _run(
        """
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 256, (100_000, 16), dtype=np.uint8)
        queries = rng.integers(0, 256, (200, 16), dtype=np.uint8)
        nn = HammingNeighbors(backend="torch", device="cpu", n_neighbors=10)
        nn.fit(codes).kneighbors(queries[:1])
        before = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # VmHWM := VmRSS
        threads = [
            threading.Thread(target=nn.kneighbors, args=(queries,))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print((status("VmHWM") - before) / 2**20)
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    growth_mib = float(result.stdout.split()[-1])
    assert growth_mib < 300, f"4 concurrent calls took {growth_mib:.0f} MiB"


def _codes(n, n_bits, rng, clustered):
    if clustered:  # duplicates and long runs of equal distances
        centres = rng.randint(2, size=(3, n_bits))
        bits = centres[rng.randint(3, size=n)] ^ (rng.rand(n, n_bits) < 0.03)
    else:
        bits = rng.randint(2, size=(n, n_bits))
    return pack_codes(bits)


def _assert_same(got, want):
    for got_part, want_part in zip(got, want, strict=True):
        np.testing.assert_array_equal(got_part, want_part)


def _check_against_reference(engine, D, Q):
    """The engine's answers, by its own contract, are the NumPy engine's."""
    reference = engine_class("numpy")(D)
    for queries in [Q, D]:  # D itself: the database searched against itself
        for k in [1, 7, 50, len(D)]:
            _assert_same(
                engine.kneighbors(queries, k, n_jobs=2),
                reference.kneighbors(queries, k, n_jobs=1),
            )
        for radius in [0, 2, D.shape[1] * 4, D.shape[1] * 8]:
            for by_dist in [False, True]:
                _assert_same(
                    engine.radius_neighbors(queries, radius, n_jobs=2, by_dist=by_dist),
                    reference.radius_neighbors(
                        queries, radius, n_jobs=1, by_dist=by_dist
                    ),
                )


@pytest.mark.parametrize("n_bits", [13, 64, 200])
@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize(
    "tile, rows, exact", [(64, 8, None), (200, 3, 1 << 12), (37, 5, None)]
)
def test_torch_tiles_match_the_reference(
    monkeypatch, n_bits, clustered, tile, rows, exact
):
    # Tiles far smaller than the data: many row blocks and column tiles, and k
    # larger than a tile; a small bound on exact floats caps tiles at 16 codes.
    from skhash.neighbors import _torch_index

    monkeypatch.setattr(_torch_index, "_TORCH_BLOCK", tile)
    monkeypatch.setattr(_torch_index, "_CPU_ROWS", rows)
    if exact:
        monkeypatch.setattr(_torch_index, "_EXACT", exact)
    rng = np.random.RandomState(n_bits)
    D = _codes(150, n_bits, rng, clustered)
    Q = np.concatenate([D[:5], _codes(20, n_bits, rng, clustered)])
    _check_against_reference(engine_class("torch")(D, device="cpu"), D, Q)


@needs_faiss
@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("tight", [False, True])
def test_faiss_radius_blocks_match_the_reference(monkeypatch, clustered, tight):
    from skhash.neighbors import _faiss_index

    monkeypatch.setattr(_faiss_index, "_BLOCK_PAIRS", 150 * 3)  # 3 queries
    if tight:  # room for one-query calls only: blocks are halved to them
        one_query = 2 * (2 * 12 * 150 + _faiss_index._CALL_BYTES)

        def check_room(n_bytes):
            if n_bytes > one_query:
                raise MemoryError

        monkeypatch.setattr(_faiss_index, "_check_room", check_room)
    rng = np.random.RandomState(5)
    D = _codes(150, 64, rng, clustered)
    Q = np.concatenate([D[:5], _codes(20, 64, rng, clustered)])
    _check_against_reference(engine_class("faiss")(D), D, Q)
