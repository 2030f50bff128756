"""Property-based tests of HammingNeighbors against slow, obvious references.

Every backend x algorithm is compared with a reference that counts differing
bits with ``(a != b).sum()`` on the unpacked bits, finds the k nearest by
sorting (distance, index) pairs in Python and the radius neighbours with a
filter. The databases are drawn full of duplicate codes and tied distances.

Profiles (tests/conftest.py): ``ci``, the default, runs a bounded,
derandomized set of examples; ``HYPOTHESIS_PROFILE=long`` thousands of fresh
ones per test.
"""

import contextlib
import importlib.util
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from skhash import HammingNeighbors
from skhash.codes import pack_codes
from skhash.neighbors import warm_up

# Each example of these tests runs every engine against a slow reference (up
# to ~1 s on a busy 2-core machine): a third of the examples, 20 in CI and
# 1000 in the long profile.
FEW = settings(max_examples=max(1, settings.default.max_examples // 3))

# faiss is an optional extra (installed by the tests extra); torch runs on CPU.
BACKENDS = ["numba", "numpy", "torch"] + (
    ["faiss"] if importlib.util.find_spec("faiss") else []
)
ALGORITHMS = ["auto", "brute", "multi_index"]
# Besides radius_neighbors: indices only, or the graph in either mode.
OTHER_FORMS = ["indices", "connectivity", "distance"]
N_BITS = st.one_of(
    st.integers(1, 1024),
    st.sampled_from([1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 511, 512, 1023, 1024]),
)


@pytest.fixture(scope="module", autouse=True)
def _compiled_kernels():
    # Compile (or load from numba's cache) once, outside any example.
    warm_up()


class Problem:
    """A database and queries (None: the database queries itself), as bits."""

    def __init__(self, recipe, database_bits, query_bits):
        self.recipe = recipe
        self.database_bits, self.query_bits = database_bits, query_bits

    def __repr__(self):
        # The recipe (with the bits when they are few), not hundreds of rows.
        return f"Problem({self.recipe!r})"

    @property
    def n_bytes(self):
        return self.database_codes.shape[1]

    @property
    def database_codes(self):
        return pack_codes(self.database_bits)

    @property
    def query_codes(self):
        return None if self.query_bits is None else pack_codes(self.query_bits)

    def distances(self):
        """Reference distances (n_queries, n_database), by comparing bits."""
        queries = self.database_bits if self.query_bits is None else self.query_bits
        return np.array([(self.database_bits != q).sum(axis=1) for q in queries])

    def excluded(self, i, j):
        """Whether database code j is not a candidate for query i (itself)."""
        return self.query_bits is None and i == j


@st.composite
def bit_rows(draw, n_rows, n_bits):
    """0/1 rows: uniform, drawn from a small pool (exact duplicates), or
    clustered around a few centres with rare flips (many tied distances).
    Returns the rows and the parameters drawn (to rebuild a failing case)."""
    recipe = dict(kind=draw(st.sampled_from(["uniform", "pool", "clustered"])))
    recipe["seed"] = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(recipe["seed"])
    if recipe["kind"] == "uniform":
        return rng.integers(0, 2, (n_rows, n_bits), dtype=np.uint8), recipe
    recipe["centres"] = draw(st.integers(1, 6))
    centres = rng.integers(0, 2, (recipe["centres"], n_bits), dtype=np.uint8)
    rows = centres[rng.integers(recipe["centres"], size=n_rows)]
    if recipe["kind"] == "clustered":
        recipe["flips_per_row"] = draw(st.sampled_from([0.3, 1.0, 3.0]))
        flip = rng.random(rows.shape) < recipe["flips_per_row"] / n_bits
        rows ^= flip.astype(np.uint8)
    return rows, recipe


@st.composite
def problems(draw, max_database=300, max_queries=70, self_query=None):
    n_bits = draw(N_BITS, label="n_bits")
    if self_query is None:
        self_query = draw(st.booleans(), label="X=None")
    n = draw(st.integers(1, max_database), label="n_database")
    n_queries = 0 if self_query else draw(st.integers(1, max_queries))
    rows, recipe = draw(bit_rows(n + n_queries, n_bits))
    database, queries = rows[:n], (None if self_query else rows[n:])
    recipe.update(n_bits=n_bits, n_database=n, n_queries=n_queries)
    if queries is not None:
        # Some queries are copies of database codes: distance 0, duplicates.
        recipe["copies"] = draw(st.lists(st.integers(0, n - 1), max_size=n_queries))
        queries[: len(recipe["copies"])] = database[recipe["copies"]]
    if n * n_bits <= 64:
        recipe["database"] = database.tolist()
        recipe["queries"] = None if queries is None else queries.tolist()
    return Problem(recipe, database, queries)


def reference_kneighbors(problem, distances, k):
    """The k smallest (distance, index) pairs of each query, by sorting."""
    all_d, all_i = [], []
    for i, row in enumerate(distances.tolist()):
        pairs = sorted((d, j) for j, d in enumerate(row) if not problem.excluded(i, j))[
            :k
        ]
        all_d.append([d for d, _ in pairs])
        all_i.append([j for _, j in pairs])
    return np.array(all_d, dtype=np.int64), np.array(all_i, dtype=np.int64)


def reference_radius(problem, distances, radius, sort_results):
    """(distance, index) pairs within radius: index order, or sorted."""
    found = []
    for i, row in enumerate(distances.tolist()):
        pairs = [
            (d, j)
            for j, d in enumerate(row)
            if d <= radius and not problem.excluded(i, j)
        ]
        found.append(sorted(pairs) if sort_results else pairs)
    return found


def radii(n_bytes):
    """0 to past the code length, and radii far beyond any code (2 ** 64)."""
    return st.one_of(
        st.integers(0, 8 * n_bytes + 5),
        st.integers(0, 3),
        st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64]),
    )


def engine(backend, algorithm, n_jobs, **params):
    return HammingNeighbors(
        backend=backend, algorithm=algorithm, device="cpu", n_jobs=n_jobs, **params
    )


# Private block sizes, patched by name: when one moves, only the tests that
# patch it fail, with the name that must be updated.
WORKING_MEMORY = "skhash.utils._memory.WORKING_MEMORY"
PAIR_BYTES = 16  # of a NumPy engine's batch, per query-code pair
TORCH_BLOCK = "skhash.neighbors._torch_index._TORCH_BLOCK"


@contextlib.contextmanager
def small_blocks(data):
    """Patch the NumPy and torch block sizes to tiny drawn values (or keep
    them), so that merging results across blocks is exercised on small data."""
    batch = data.draw(st.sampled_from([None, 1, 2, 7, 64]), label="batch")
    # Not much smaller: each torch block is a Python loop step and a matrix
    # product (~3 ms on a busy CPU).
    torch_block = data.draw(st.sampled_from([None, 2000]), label="torch block")
    with contextlib.ExitStack() as patches:
        if batch:
            patches.enter_context(mock.patch(WORKING_MEMORY, batch * PAIR_BYTES))
        if torch_block:
            patches.enter_context(mock.patch(TORCH_BLOCK, torch_block))
        yield


def assert_rows(got, want, n_queries, part):
    """got (object array of arrays) holds part 0 (distances) or 1 (indices) of
    the rows of (distance, index) pairs want; compared flat, in one go."""
    assert got.dtype == object and got.shape == (n_queries,)
    np.testing.assert_array_equal([len(row) for row in got], [len(r) for r in want])
    np.testing.assert_array_equal(
        np.concatenate([np.zeros(0, np.int64), *got]),
        [pair[part] for r in want for pair in r],
    )


def assert_graph(graph, rows, n_queries, n_database, mode):
    """graph is the CSR matrix of rows (lists of (distance, index)), in order."""
    assert graph.format == "csr"
    assert graph.shape == (n_queries, n_database)
    np.testing.assert_array_equal(graph.indptr, np.cumsum([0] + [len(r) for r in rows]))
    np.testing.assert_array_equal(graph.indices, [j for r in rows for _, j in r])
    # Distance mode keeps explicit zeros (duplicates), so data has every pair.
    want = [1 if mode == "connectivity" else d for r in rows for d, _ in r]
    np.testing.assert_array_equal(graph.data, want)


@FEW
@given(problem=problems(), data=st.data())
def test_kneighbors_and_graph_match_the_reference(problem, data):
    D, X = problem.database_codes, problem.query_codes
    distances = problem.distances()
    n_queries, n_database = distances.shape
    available = n_database - (X is None)
    k = data.draw(
        st.one_of(st.integers(1, max(1, available)), st.just(available + 1)),
        label="k",
    )
    want_d, want_i = reference_kneighbors(problem, distances, k)
    want_rows = [
        list(zip(d, i, strict=True)) for d, i in zip(want_d, want_i, strict=True)
    ]
    with small_blocks(data):
        for backend in BACKENDS:
            # kNN always scans, whatever the algorithm; it must not matter.
            algorithm = data.draw(st.sampled_from(ALGORITHMS), label="algorithm")
            n_jobs = data.draw(st.sampled_from([1, 2]), label="n_jobs")
            nn = engine(backend, algorithm, n_jobs, n_neighbors=k).fit(D)
            note(f"{backend=} {algorithm=} {n_jobs=} {k=}")
            if k > available:
                with pytest.raises(ValueError, match="n_neighbors"):
                    nn.kneighbors(X)
                continue
            got_d, got_i = nn.kneighbors(X)
            assert got_d.dtype == np.int32
            np.testing.assert_array_equal(got_d, want_d.reshape(n_queries, k))
            np.testing.assert_array_equal(got_i, want_i.reshape(n_queries, k))
            np.testing.assert_array_equal(
                nn.kneighbors(X, k, return_distance=False), got_i
            )
            for mode in ["connectivity", "distance"]:
                graph = nn.kneighbors_graph(X, k, mode=mode)
                assert_graph(graph, want_rows, n_queries, n_database, mode)


@FEW
@given(problem=problems(), data=st.data())
def test_radius_neighbors_and_graph_match_the_reference(problem, data):
    D, X = problem.database_codes, problem.query_codes
    distances = problem.distances()
    n_queries, n_database = distances.shape
    radius = data.draw(radii(problem.n_bytes), label="radius")
    by_index = reference_radius(problem, distances, radius, sort_results=False)
    by_distance = reference_radius(problem, distances, radius, sort_results=True)
    with small_blocks(data):
        for backend in BACKENDS:
            for algorithm in ALGORITHMS:
                n_jobs = data.draw(st.sampled_from([1, 2]), label="n_jobs")
                sort_results = data.draw(st.booleans(), label="sort_results")
                note(f"{backend=} {algorithm=} {n_jobs=} {sort_results=}")
                want = by_distance if sort_results else by_index
                nn = engine(backend, algorithm, n_jobs, radius=radius).fit(D)
                got_d, got_i = nn.radius_neighbors(X, sort_results=sort_results)
                assert_rows(got_i, want, n_queries, part=1)
                assert_rows(got_d, want, n_queries, part=0)
                assert all(row.dtype == np.int32 for row in got_d)
                # One of the other forms of the same search, drawn: all of them
                # for every engine made a large-radius example cost seconds.
                other = data.draw(st.sampled_from(OTHER_FORMS), label="other form")
                note(f"{other=}")
                if other == "indices":
                    only_i = nn.radius_neighbors(X, radius, return_distance=False)
                    assert_rows(only_i, by_index, n_queries, part=1)
                else:
                    graph = nn.radius_neighbors_graph(
                        X, radius, mode=other, sort_results=sort_results
                    )
                    assert_graph(graph, want, n_queries, n_database, other)


@st.composite
def labels(draw, n_rows):
    """1-D int or str classes, or a multi-label indicator (rows may be empty)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="label seed"))
    kind = draw(st.sampled_from(["int", "str", "multilabel"]), label="label kind")
    n_labels = draw(st.integers(1, 4), label="n_labels")
    if kind == "multilabel":
        # A single column is read as class labels (as in scikit-learn).
        n_labels = max(2, n_labels)
        density = draw(st.sampled_from([0.2, 0.5, 0.8]), label="density")
        return (rng.random((n_rows, n_labels)) < density).astype(np.int64)
    y = rng.integers(n_labels, size=n_rows)
    return np.array(["b", "a", "c", "d"])[y] if kind == "str" else y


def reference_vote(neighbour_labels):
    """Majority class (ties: the smallest), or each label on in over half."""
    if neighbour_labels.ndim == 2:
        return [
            int(2 * neighbour_labels[:, c].sum() > len(neighbour_labels))
            for c in range(neighbour_labels.shape[1])
        ]
    counts = {c: list(neighbour_labels).count(c) for c in set(neighbour_labels)}
    best = max(counts.values())
    return min(c for c, n in counts.items() if n == best)


def reference_map(distances, query_labels, database_labels):
    """MAP over the whole ranking, stable ties, empty queries count 0."""
    total = Fraction(0)
    for i, row in enumerate(distances.tolist()):
        ranked = [j for _, j in sorted((d, j) for j, d in enumerate(row))]
        if query_labels.ndim == 1:
            relevant = [database_labels[j] == query_labels[i] for j in ranked]
        else:
            relevant = [bool(database_labels[j] @ query_labels[i]) for j in ranked]
        hits, precision_sum = 0, Fraction(0)
        for rank, is_relevant in enumerate(relevant, start=1):
            if is_relevant:
                hits += 1
                precision_sum += Fraction(hits, rank)
        total += precision_sum / hits if hits else 0
    return total / len(distances)


@FEW
@given(problem=problems(self_query=False), data=st.data())
def test_predict_and_score_match_the_reference(problem, data):
    D, X = problem.database_codes, problem.query_codes
    distances = problem.distances()
    n_queries, n_database = distances.shape
    y = data.draw(labels(n_database + n_queries), label="labels")
    y_fit, y_queries = y[:n_database], y[n_database:]
    k = data.draw(st.integers(1, n_database), label="k")
    _, neighbours = reference_kneighbors(problem, distances, k)
    want = [reference_vote(y_fit[row]) for row in neighbours]
    want_score = float(reference_map(distances, y_queries, y_fit))
    for backend in BACKENDS:
        algorithm = data.draw(st.sampled_from(ALGORITHMS), label="algorithm")
        nn = engine(backend, algorithm, 1, n_neighbors=k).fit(D, y_fit)
        got = nn.predict(X)
        assert got.shape == y_queries.shape
        np.testing.assert_array_equal(got, np.array(want, dtype=y.dtype))
        assert nn.score(X, y_queries) == pytest.approx(want_score, rel=1e-12)
