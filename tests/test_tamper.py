"""A tampered file that loads never crashes the process later (issue #21).

Every public estimator is fitted on small data (HammingNeighbors twice, with
64- and 128-bit codes, labels and its multi-index tables), then saved with
pickle and with skops. Hypothesis draws one array saved in it (walking the
saved state into nested dicts and estimators: the multi-index tables, a deep
hasher's ``state_dict``) and one way to spoil it: extreme values, a shuffle,
another shape, another dtype or byte order, Fortran order, or an empty array,
all of which both formats keep. A pickle file gets the array through the
object's own reduction; a skops file gets one ``.npy`` of its zip rewritten,
so that skops still loads it with skhash's trusted types.

Child processes load and use every file (transform; kneighbors and
radius_neighbors with each algorithm, predict and score), each file in a
forked copy of the child on Linux, so that a segfault ends that copy only
and names its file (elsewhere it ends the child, which is restarted after
that file). Python exceptions are fine; death by a signal is
not. A HammingNeighbors file whose array was changed must moreover fail to
load with ValueError or answer every search as the untampered estimator does:
an index that loads and lies is as bad as a crash.

Examples are drawn derandomized in CI (tests/conftest.py), as in every
property test here; ``HYPOTHESIS_PROFILE=long`` draws fifty times as many.
"""

import collections
import copyreg
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits

import skhash
from skhash import HammingNeighbors, LSHHasher
from skhash.base import BaseHasher
from skhash.neighbors import HammingIndex
from skhash.persistence import dump
from skhash.utils import all_estimators

FORMATS = ["pickle", "skops"]
# Objects whose saved state is walked into: estimators, and the search core
# a HammingNeighbors keeps.
SAVED_OBJECTS = (BaseEstimator, HammingIndex)
NEIGHBORS = ["HammingNeighbors-64bit", "HammingNeighbors-128bit"]
VARIANTS = [name for name, _ in all_estimators() if name != "HammingNeighbors"]
VARIANTS += NEIGHBORS
# Per variant and format: most for the index, whose arrays compiled code reads.
N_EXAMPLES = {
    name: max(1, settings.default.max_examples // (1 if name in NEIGHBORS else 4))
    for name in VARIANTS
}
ALGORITHMS = ["brute", "multi_index", "auto"]
# A file whose use takes longer than this has hung (it takes milliseconds).
CASE_SECONDS = 30
# Memory one file's use may take beyond what the child holds: an allocation
# sized by a tampered value then raises MemoryError instead of waking the
# OOM killer.
CASE_MEMORY = 2 << 30


# ------------------------------------------------------------- the estimators


def _fitted(variant):
    """A fitted estimator, and the inputs its uses need."""
    from test_common import FAST_PARAMS  # imports torch: not in the child

    X, y = load_digits(return_X_y=True)
    X, y = (X / 16)[:60], y[:60]
    if variant not in NEIGHBORS:
        params = dict(FAST_PARAMS[variant])
        if "max_epochs" in params:
            params.update(max_epochs=1, device="cpu")
        estimator = getattr(skhash, variant)(**params).fit(X, y)
        if isinstance(estimator, BaseHasher):
            return estimator, {"X": X[:10]}
        return estimator, {"queries": X[:10], "labels": y[:10]}  # rescoring
    n_bits = int(variant.split("-")[1].removesuffix("bit"))
    codes = LSHHasher(n_bits, random_state=0).fit_transform(X)
    if n_bits == 128:  # multi-label
        y = np.column_stack([y == 3, y % 2 == 0, y > 6]).astype(int)
    nn = HammingNeighbors(n_neighbors=5, algorithm="multi_index").fit(codes, y)
    # A small radius searches tables of its own, never saved.
    nn.radius_neighbors(codes, radius=2)
    if n_bits == 64:  # every table
        nn.kneighbors(codes)
    else:  # only the first table, which the automatic choice estimates from
        nn.index_.uses_multi_index(2, "auto")
    assert "multi_index_tables" in nn.index_.__getstate__()
    return nn, {"queries": codes[:10], "labels": y[:10]}


def _uses(estimator, inputs):
    """(name, call) of everything a loaded estimator is asked."""
    if isinstance(estimator, BaseHasher):
        return [("transform", lambda: estimator.transform(inputs["X"]))]
    queries, labels = inputs["queries"], inputs["labels"]

    def search(algorithm, method, **kwargs):
        def call():
            estimator.set_params(algorithm=algorithm)
            return getattr(estimator, method)(**kwargs)

        return call

    uses = []
    for algorithm in ALGORITHMS:
        uses.append((f"kneighbors/{algorithm}", search(algorithm, "kneighbors")))
        uses.append(
            (f"kneighbors(X)/{algorithm}", search(algorithm, "kneighbors", X=queries))
        )
        for radius in (2, 6):
            call = search(
                algorithm, "radius_neighbors", X=queries, radius=radius,
                sort_results=True,
            )  # fmt: skip
            uses.append((f"radius_neighbors(X, {radius})/{algorithm}", call))
    return uses + [
        ("predict", lambda: estimator.predict(queries)),
        ("score", lambda: estimator.score(queries, labels)),
    ]


def _is_search(use):
    return "neighbors" in use


def _same(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (
            isinstance(a, tuple)
            and isinstance(b, tuple)
            and len(a) == len(b)
            and all(map(_same, a, b))
        )
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:  # radius_neighbors: per query
        return a.shape == b.shape and all(map(_same, a.ravel(), b.ravel()))
    return a.shape == b.shape and np.array_equal(a, b)


# ----------------------------------------------------------- the saved arrays


class _Reduced:
    """Pickles as the object whose reduction ``reduced`` is."""

    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce_ex__(self, protocol):
        return self.reduced


def _state(estimator):
    """What pickle saves of an estimator: its reduction and state."""
    reduced = estimator.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    return reduced, reduced[2]


def _saved_arrays(value, path=()):
    """(path, array) of every array an object saves. Paths step through dict
    keys and list indices; an estimator's (or index's) state takes no step."""
    if isinstance(value, (np.ndarray, np.generic)):  # skops: both are .npy
        if value.dtype != object:
            yield path, np.asarray(value)
    elif isinstance(value, SAVED_OBJECTS):
        yield from _saved_arrays(_state(value)[1], path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _saved_arrays(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _saved_arrays(item, (*path, index))


def _replaced(value, path, array):
    """What pickles as ``value`` with ``array`` at ``path``."""
    if not path:
        return array
    if isinstance(value, SAVED_OBJECTS):
        reduced, state = _state(value)
        assert reduced[0] is copyreg.__newobj__ and not any(reduced[3:])
        # Pickle refuses __newobj__ from another class's reduction.
        rebuild = copyreg._reconstructor, (type(value), object, None)
        return _Reduced((*rebuild, _replaced(state, path, array)))
    head, *rest = path
    items = dict(value) if isinstance(value, dict) else list(value)
    items[head] = _replaced(value[head], rest, array)
    return tuple(items) if isinstance(value, tuple) else items


def _npy_files(node, path=()):
    """(path, .npy file) of every array in a skops schema; paths as above."""
    loader, content = node.get("__loader__"), node.get("content")
    if loader == "NdArrayNode" and node.get("type") == "numpy":
        yield path, node["file"]
    elif loader == "DictNode":
        for key, child in content.items():
            yield from _npy_files(child, (*path, key))
    elif loader in ("ListNode", "TupleNode"):
        for index, child in enumerate(content):
            yield from _npy_files(child, (*path, index))
    elif isinstance(content, dict) and "__loader__" in content:
        yield from _npy_files(content, path)  # an object's state


def _with_npy(data, file, array):
    """The skops file ``data`` with ``array`` in its ``file``."""
    npy, out = io.BytesIO(), io.BytesIO()
    np.save(npy, array, allow_pickle=False)
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as dest:
        for info in source.infolist():
            content = npy.getvalue() if info.filename == file else source.read(info)
            dest.writestr(info, content)
    return out.getvalue()


def _differs(a, b):
    return (
        a.dtype != b.dtype
        or a.shape != b.shape
        or a.flags.c_contiguous != b.flags.c_contiguous
        or not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    )


# ---------------------------------------------------------------- tampering

_DTYPES = ["bool", "int8", "uint8", "int32", "int64", "uint64", "float32", "float64"]


def _extremes(array):
    """Values that break assumptions: bounds, signs, sizes, NaN, infinities."""
    if array.dtype.kind == "b":
        return [False, True]
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        values = {0, 1, -1, info.max, info.min, array.size, 2**31, -(2**31)}
        if array.size:  # one past the largest: an id past the database
            values.add(int(array.max()) + 1)
        return sorted(v for v in values if info.min <= v <= info.max)
    info = np.finfo(array.dtype)
    return [0.0, -1.0, np.nan, np.inf, -np.inf, float(info.max), float(info.min), 1e30]


def _kinds(array):
    kinds = ["shape", "dtype", "empty"]
    if array.size:
        kinds.append("overwrite")
    if max(array.shape, default=0) > 1:
        kinds.append("shuffle")
    if sum(n > 1 for n in array.shape) >= 2:
        kinds.append("fortran")
    return kinds


@st.composite
def tamperings(draw, arrays):
    """(path, description, array): one of the saved arrays, spoilt one way."""
    path, original = draw(st.sampled_from(arrays))
    array = original.copy()
    kind = draw(st.sampled_from(_kinds(array)))
    if kind == "overwrite":
        value = draw(st.sampled_from(_extremes(array)))
        if draw(st.booleans()):
            array.fill(value)
            what = f"all = {value!r}"
        else:
            where = draw(
                st.lists(
                    st.integers(0, array.size - 1), min_size=1, max_size=3, unique=True
                )
            )
            array.flat[where] = value
            what = f"flat[{where}] = {value!r}"
    elif kind == "shuffle":
        axis = draw(st.sampled_from([i for i, n in enumerate(array.shape) if n > 1]))
        seed = draw(st.integers(0, 2**32 - 1))
        order = np.random.default_rng(seed).permutation(array.shape[axis])
        array = np.take(array, order, axis=axis)
        what = f"shuffled along axis {axis} by default_rng({seed}).permutation"
    elif kind == "shape":
        array, what = draw(_reshapings(array))
    elif kind == "dtype":
        targets = [np.dtype(d) for d in _DTYPES if np.dtype(d) != array.dtype]
        if array.dtype.itemsize > 1:
            targets.append(array.dtype.newbyteorder())
        dtype = draw(st.sampled_from(targets))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN to integers, say
            array = array.astype(dtype)
        what = f"dtype {original.dtype.str} -> {dtype.str}"
    elif kind == "fortran":
        array, what = np.asfortranarray(array), "Fortran order"
    else:
        shape = draw(st.sampled_from(sorted({(0,), (0, *array.shape[1:])})))
        array, what = np.empty(shape, array.dtype), f"empty {shape}"
    return path, f"{'/'.join(map(str, path))} {original.shape}: {what}", array


@st.composite
def _reshapings(draw, array):
    options = ["add axis"]
    if array.ndim:
        options += ["drop", "append", "0-d"]
    if array.ndim >= 2:
        options += ["flatten", "transpose"]
    option = draw(st.sampled_from(options))
    if option in ("drop", "append"):
        axis = draw(st.integers(0, array.ndim - 1))
        if option == "drop" and array.shape[axis]:
            index = draw(st.sampled_from([0, array.shape[axis] - 1]))
            return np.delete(array, index, axis), f"[{index}] of axis {axis} dropped"
        shape = list(array.shape)
        shape[axis] = 1
        extra = np.zeros(shape, array.dtype)
        return np.concatenate([array, extra], axis), f"zeros appended on axis {axis}"
    if option == "add axis":
        return array[np.newaxis], "an axis added"
    if option == "0-d":
        return np.asarray(array.flat[0] if array.size else 0, array.dtype), "0-d"
    if option == "flatten":
        return array.reshape(-1), "flattened"
    return np.ascontiguousarray(array.T), "transposed"


def _draw(arrays, n_examples):
    """Tamperings drawn by hypothesis under the active profile, no repeats."""
    drawn = {}

    @settings(settings.default, max_examples=n_examples)
    @given(tamperings(arrays))
    def collect(tampering):
        drawn.setdefault(tampering[1], tampering)

    collect()
    return list(drawn.values())


# -------------------------------------------------------- the child process


def _limit_memory():
    try:
        import resource

        with open("/proc/self/statm") as statm:
            held = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError):
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = held + CASE_MEMORY
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _run_case(case, inputs):
    """Load a file and use it: what raised, what answered."""
    from skhash.persistence import load

    result = {"load": None, "uses": {}}
    try:
        if case["format"] == "pickle":
            with open(case["file"], "rb") as file:
                estimator = pickle.load(file)
        else:
            estimator = load(case["file"])
    except Exception as error:
        result["load"] = type(error).__name__
        result["load_value_error"] = isinstance(error, ValueError)
        return result
    expected = inputs.get("expected", {})
    for name, use in _uses(estimator, inputs):
        try:
            answer = use()
        except Exception as error:
            result["uses"][name] = type(error).__name__
            continue
        if name in expected:
            result["uses"][name] = "same" if _same(answer, expected[name]) else "lied"
        else:
            result["uses"][name] = "ok"
    return result


def _forked(case, inputs):
    """_run_case in a forked copy of this process: its death is its own."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy
        os.close(read)
        try:
            _limit_memory()
            signal.alarm(CASE_SECONDS)  # SIGALRM's default action ends a hang
            with os.fdopen(write, "w") as out:
                json.dump(_run_case(case, inputs), out)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return json.loads(text) if text else {"exit": os.waitstatus_to_exitcode(status)}


def _serve(manifest_path, start):
    """Run the cases from ``start`` on, one line of results each, in order."""
    warnings.simplefilter("ignore")
    with open(manifest_path) as file:
        manifest = json.load(file)
    cases = manifest["cases"]
    # Elsewhere forking a process that has loaded torch is not safe.
    run = _forked if sys.platform.startswith("linux") else _run_case
    # Every variant's untampered files come first. Used here once, before any
    # fork, they leave the imports done and the kernels loaded for the copies.
    untampered, inputs = {}, {}
    for case in cases:
        untampered.setdefault((case["variant"], case["format"]), case)
    with open(manifest["results"], "a") as results:
        for index in range(start, len(cases)):
            case = cases[index]
            variant = case["variant"]
            if variant not in inputs:
                with open(manifest["inputs"][variant], "rb") as file:
                    inputs[variant] = pickle.load(file)
            warm_up = untampered.pop((variant, case["format"]), None)
            if run is _forked and warm_up is not None:
                _run_case(warm_up, inputs[variant])
            result = run(case, inputs[variant])
            results.write(json.dumps({"index": index, **result}) + "\n")
            results.flush()


def _run_child(manifest_path):
    """Results of the manifest's cases; a case that killed the child (which
    forks no copies but on Linux) gets the signal."""
    with open(manifest_path) as file:
        manifest = json.load(file)
    n_cases, env = len(manifest["cases"]), dict(os.environ)
    # No thread pools in the child: a forked copy gets the locks, not threads.
    for name in ("OMP", "OPENBLAS", "MKL", "NUMBA"):
        env[f"{name}_NUM_THREADS"] = "1"
    results, start = {}, 0
    while start < n_cases:
        child = subprocess.run(
            [sys.executable, __file__, manifest_path, str(start)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120 + n_cases,
        )
        if os.path.exists(manifest["results"]):  # not if the child failed at once
            with open(manifest["results"]) as file:
                for line in file:
                    result = json.loads(line)
                    results[result.pop("index")] = result
        missing = next((i for i in range(start, n_cases) if i not in results), None)
        if missing is None:
            break
        if child.returncode >= 0:  # not a crash: the harness failed
            raise RuntimeError(f"The child failed:\n{child.stderr[-3000:]}")
        results[missing] = {"signal": -child.returncode}
        start = missing + 1
    return [results[i] for i in range(n_cases)]


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))


# ---------------------------------------------------------------- the tests

Case = collections.namedtuple("Case", "variant format description differs")


def _tampered_files(variants, directory):
    """Write every variant's files, untampered first, and the manifests of
    the children: one for the deep hashers (whose child imports torch, which
    makes forking slower), one for the others. Returns {manifest: cases}."""
    manifests = {}
    for variant in variants:
        estimator, inputs = _fitted(variant)
        group = "deep" if type(estimator).__module__.startswith("skhash.deep") else ""
        path = directory / f"manifest{group}.json"
        manifest, cases = manifests.setdefault(path, ({"cases": [], "inputs": {}}, []))
        skops_file = io.BytesIO()
        dump(estimator, skops_file)
        data = {"pickle": pickle.dumps(estimator), "skops": skops_file.getvalue()}
        if variant in NEIGHBORS:  # what a loaded index must answer
            inputs["expected"] = {
                name: use()
                for name, use in _uses(estimator, inputs)
                if _is_search(name)
            }
        manifest["inputs"][variant] = str(directory / f"{variant}.inputs")
        with open(manifest["inputs"][variant], "wb") as file:
            pickle.dump(inputs, file)
        arrays = dict(_saved_arrays(estimator))
        with zipfile.ZipFile(io.BytesIO(data["skops"])) as archive:
            npy_files = dict(_npy_files(json.loads(archive.read("schema.json"))))
        assert set(npy_files) <= set(arrays), "skops saves an array not walked"
        for format in FORMATS:
            files = [(data[format], Case(variant, format, "untampered", False))]
            saved = arrays if format == "pickle" else {p: arrays[p] for p in npy_files}
            for path, description, array in _draw(
                list(saved.items()), N_EXAMPLES[variant]
            ):
                if format == "pickle":
                    content = pickle.dumps(_replaced(estimator, path, array))
                else:
                    content = _with_npy(data["skops"], npy_files[path], array)
                differs = _differs(array, arrays[path])
                files.append((content, Case(variant, format, description, differs)))
            for content, case in files:
                file = directory / f"{variant}-{len(cases)}.{format}"
                file.write_bytes(content)
                manifest["cases"].append(
                    {"file": str(file), "format": format, "variant": variant}
                )
                cases.append(case)
    for path, (manifest, _) in manifests.items():
        manifest["results"] = str(path.with_suffix(".results"))
        path.write_text(json.dumps(manifest))
    return {str(path): cases for path, (_, cases) in manifests.items()}


@pytest.fixture(scope="module")
def tampered(request, tmp_path_factory):
    """(case, result) of every file of the variants this session tests."""
    pytest.importorskip("skops.io")
    variants = {
        item.callspec.params["variant"]
        for item in request.session.items
        if getattr(item, "module", None) is request.module
        and hasattr(item, "callspec")
        and "variant" in item.callspec.params
    }
    manifests = _tampered_files(sorted(variants), tmp_path_factory.mktemp("tamper"))
    with ThreadPoolExecutor(len(manifests)) as pool:
        results = dict(zip(manifests, pool.map(_run_child, manifests), strict=True))
    return [
        pair
        for manifest, cases in manifests.items()
        for pair in zip(cases, results[manifest], strict=True)
    ]


def _cases(tampered, variant, format):
    cases = [
        (case, result)
        for case, result in tampered
        if (case.variant, case.format) == (variant, format)
    ]
    assert cases
    return cases


def _died(result):
    return "signal" in result or "exit" in result


def _summary(cases):
    """Counts of how the files' loading and uses ended."""
    outcomes = collections.Counter()
    for _, result in cases:
        if _died(result):
            outcomes[f"died: {result}"] += 1
        elif result["load"]:
            outcomes[f"load: {result['load']}"] += 1
        else:
            for use, outcome in result["uses"].items():
                outcomes[f"{use.split('/')[0]}: {outcome}"] += 1
    return "\n".join(f"{n:5d} {outcome}" for outcome, n in sorted(outcomes.items()))


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_tampered_file_never_crashes_the_process(tampered, variant, format):
    cases = _cases(tampered, variant, format)
    print(f"{variant}, {format}: {len(cases)} files\n{_summary(cases)}")
    died = [f"{case.description}: {result}" for case, result in cases if _died(result)]
    assert not died, "\n".join(died)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("variant", NEIGHBORS)
def test_a_tampered_index_refuses_to_load_or_answers_true(tampered, variant, format):
    failures = []
    for case, result in _cases(tampered, variant, format):
        if not case.differs and case.description != "untampered":
            continue
        if result.get("load_value_error") and case.differs:
            continue
        if _died(result) or result["load"]:
            failures.append(f"{case.description}: {result}")
            continue
        wrong = collections.defaultdict(list)
        for use, outcome in result["uses"].items():
            if _is_search(use) and outcome != "same":
                wrong[outcome].append(use)
        if wrong:
            failures.append(f"{case.description}: loaded, then {dict(wrong)}")
    assert not failures, "\n".join(failures)
