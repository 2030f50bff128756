"""Binary codes plus exact rescoring on real embeddings (issue #25).

How many bits does a learned hasher need to match the recall of sign
binarization (the binary quantization of vector databases) once the Hamming
candidates are rescored against the float vectors, and how fast is the
search beside FAISS?

Datasets (what this machine can make; see ``shared/notes/data.md``):

- Fashion-MNIST's frozen EfficientNet-Lite0 features, 70,000 x 1280 float32,
  read from ``benchmarks/.cache/fashion-mnist-efficientnet-lite0.npy`` (made by
  ``python benchmarks/bench_retrieval.py --features efficientnet-lite0``), in
  the order of ``skhash.datasets.load_fashion_mnist``, whose labels CCA-ITQ
  uses;
- MNIST pixels, the 5,000-image subset ``skhash.datasets.load_mnist_5k``
  (784 features; full MNIST is not available on this machine).

Protocol: 1,000 queries (MNIST-5k: 500) drawn at random (seeded), the rest is
the database; every hasher fits on the database (CCA-ITQ with its labels).
Ground truth: ``exact_neighbors(queries, database, 10, metric="cosine")``;
recall@10 by ``recall_at_k`` with distances (ann-benchmarks' rule). For each
hasher, length and oversampling (1, 3, 10 candidates per neighbour):
``RescoringNeighbors.kneighbors`` on the queries (query encoding included),
and the same pipeline with ``faiss.IndexBinaryFlat`` as first stage over the
same codes and skhash's own ``rescore`` as second stage, timed side by side
(interleaved calls, median of ``--repeats``). Euclidean recall is measured
too (same searches, untimed).

Run (65 minutes on the 2-core machine, most of it fitting ITQ and
CCA-ITQ on 69,000 x 1280)::

    python benchmarks/bench_rescoring.py

writes ``benchmarks/results/rescoring.md``; ``--quick`` runs a small version
(a 10,000-row Fashion database, 200 queries, 64 and 256 bits, one repeat) and
prints the report unless ``--output`` is given.
"""

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

import skhash
from skhash.classical import CCAITQHasher, ITQHasher, LSHHasher, SignHasher
from skhash.datasets import load_fashion_mnist, load_mnist_5k
from skhash.metrics import exact_neighbors, recall_at_k
from skhash.neighbors import RescoringNeighbors
from skhash.neighbors._rescoring_base import rescore
from skhash.utils._vectors import nearest_first

HERE = Path(__file__).parent
CACHE = HERE / ".cache" / "fashion-mnist-efficientnet-lite0.npy"
RESULTS = HERE / "results" / "rescoring.md"
K = 10
OVERSAMPLES = (1, 3, 10)
EPSILON = 1e-3  # recall_at_k's default, ann-benchmarks' tolerance
SIGNS = ("sign >= 0", "sign >= mean", "sign > 0")
LEARNED = ("ITQ", "CCA-ITQ")


class PositiveSign(TransformerMixin, BaseEstimator):
    """Qdrant's binary quantization: bit 1 where a feature is strictly > 0.

    ``SignHasher(threshold="zero")`` sets the bit for ``x >= 0`` (its
    docstring says so): on non-negative features (ReLU outputs, pixels) every
    bit is 1. This is the rule of Qdrant's article, for comparison.
    """

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return np.packbits(np.asarray(X) > 0, axis=1)


def cpu_times():
    """(steal, total) jiffies of all CPUs: time the hypervisor gave elsewhere."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    return fields[7], sum(fields)


def machine():
    from _machine import cpu_name  # beside this script

    model = cpu_name("unknown CPU")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}"
    )


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def split(n_samples, n_queries, seed):
    """(query rows, database rows), both sorted: a seeded random hold-out."""
    order = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(order[:n_queries]), np.sort(order[n_queries:])


def load_fashion(args):
    if not CACHE.exists():
        sys.exit(
            f"{CACHE} is missing: make it with `python benchmarks/bench_retrieval.py "
            "--features efficientnet-lite0` (needs the Fashion-MNIST files)."
        )
    X = np.load(CACHE)
    _, y = load_fashion_mnist(return_X_y=True)
    if len(X) != len(y):
        sys.exit(f"{CACHE} has {len(X)} rows but Fashion-MNIST {len(y)} labels.")
    queries, database = split(len(X), args.queries, args.seed)
    if args.database:  # --quick: a random part of the database
        rng = np.random.default_rng(args.seed + 1)
        database = np.sort(rng.choice(database, args.database, replace=False))
    return X[queries], X[database], y[database]


def load_mnist(args):
    X, y = load_mnist_5k(return_X_y=True)
    queries, database = split(len(X), args.mnist_queries, args.seed)
    return X[queries], X[database], y[database]


def hashers(n_features, bits, args, reduced):
    """(family, bits, iterations, factory, control): the rows of one dataset.

    ``reduced``: ITQ and CCA-ITQ iterate ``--n-iter-large`` times from 512
    bits (the time budget of the 69,000-row database)."""
    rows = [
        ("sign >= 0", n_features, None, lambda: SignHasher(), False),
        ("sign >= mean", n_features, None, lambda: SignHasher(threshold="mean"), False),
        ("sign > 0", n_features, None, lambda: PositiveSign(), False),
    ]
    for b in bits:
        n_iter = args.n_iter_large if reduced and b >= 512 else args.n_iter
        for family, Hasher in (("ITQ", ITQHasher), ("CCA-ITQ", CCAITQHasher)):
            if b > 4 * n_features:  # extra_bits="expand" allows up to 4x
                continue
            rows.append(
                (
                    family,
                    b,
                    n_iter,
                    lambda b=b, n=n_iter, H=Hasher: H(
                        b, n_iter=n, random_state=args.seed
                    ),
                    False,
                )  # fmt: skip
            )
        rows.append(
            ("LSH", b, None, lambda b=b: LSHHasher(b, random_state=args.seed), False)
        )
    if reduced and args.control and 256 in bits:
        # Control: what the reduced iterations cost at a length where 50 fit.
        rows.append(
            (
                "ITQ",
                256,
                args.n_iter_large,
                lambda: ITQHasher(
                    256, n_iter=args.n_iter_large, random_state=args.seed
                ),
                True,
            )  # fmt: skip
        )
    return rows


def per_query_recall(true_distances, distances):
    """recall_at_k's rule (with distances), per query."""
    threshold = true_distances[:, K - 1 : K] + EPSILON
    return (distances[:, :K] <= threshold).sum(axis=1) / K


def faiss_pipeline(index, hasher, queries, vectors, n_candidates, metric):
    """The same search with FAISS's first stage: (distances, indices,
    candidates, Hamming distances, seconds of encode / search / rescore)."""
    start = time.perf_counter()
    codes = hasher.transform(queries)
    encoded = time.perf_counter()
    hamming, candidates = index.search(codes, n_candidates)
    searched = time.perf_counter()
    found = rescore(queries, vectors, candidates, metric)
    distances, indices = nearest_first(found, candidates, K)
    done = time.perf_counter()
    return (
        distances, indices, candidates, hamming,
        (encoded - start, searched - encoded, done - searched),
    )  # fmt: skip


def compare_candidates(ours, our_hamming, theirs, their_hamming):
    """(queries with identical candidate lists, with the same candidate sets,
    with the same sorted Hamming distances): the two first stages agree up
    to ties exactly when the third is 1."""
    same_list = np.all(ours == theirs, axis=1)
    same_set = np.all(np.sort(ours, axis=1) == np.sort(theirs, axis=1), axis=1)
    same_distances = np.all(
        np.sort(our_hamming, axis=1) == np.sort(their_hamming, axis=1), axis=1
    )
    return same_list.mean(), same_set.mean(), same_distances.mean()


def run_dataset(name, queries, database, labels, args, faiss, reduced):
    n_features = database.shape[1]
    log(f"{name}: {len(queries)} queries, {database.shape} database")
    truth = {}
    for metric in ("cosine", "euclidean"):
        start = time.perf_counter()
        truth[metric] = exact_neighbors(queries, database, K, metric=metric)
        log(f"  exact {metric} neighbours: {time.perf_counter() - start:.1f} s")
    fits, rows, cca_reg = [], [], None
    for family, bits, n_iter, factory, control in hashers(
        n_features, args.bits, args, reduced
    ):
        hasher = factory()
        if family == "CCA-ITQ" and cca_reg is not None:
            hasher.set_params(reg=cca_reg)  # reg="auto"'s choice, picked once
        start = time.perf_counter()
        hasher.fit(database, labels if family == "CCA-ITQ" else None)
        fit_seconds = time.perf_counter() - start
        fit = {
            "family": family, "bits": bits, "n_iter": n_iter, "fit": fit_seconds,
            "note": "",
        }  # fmt: skip
        if family in LEARNED:
            loss = hasher.quantization_loss_
            if len(loss) >= 2:
                fit["loss_drop"] = 1 - loss[-1] / loss[0]
                fit["last_step"] = (loss[-2] - loss[-1]) / loss[-1]
            if bits > n_features:
                fit["note"] = f"{bits} > {n_features} features: expanded"
        if family == "CCA-ITQ":
            correlations = hasher.correlations_
            fit["informative"] = int(np.sum(correlations > 1e-3))
            fit["correlations"] = correlations
            if cca_reg is None:
                cca_reg = hasher.reg_
                fit["note"] = (fit["note"] + "; " if fit["note"] else "") + (
                    f'includes reg="auto" (picked {cca_reg:g}, reused below)'
                )
        start = time.perf_counter()
        search = RescoringNeighbors(
            FrozenEstimator(hasher), n_neighbors=K, n_jobs=args.threads
        ).fit(database)
        fit["encode_database"] = time.perf_counter() - start
        codes_db = search.index_.codes
        index = faiss.IndexBinaryFlat(8 * codes_db.shape[1])
        index.add(np.ascontiguousarray(codes_db))
        label = f"{family} (control)" if control else family
        fit["label"] = label
        fits.append(fit)
        log(f"  {label} {bits} bits: fit {fit_seconds:.1f} s")
        for oversample in OVERSAMPLES:
            search.set_params(oversample=oversample, metric="cosine")
            n_candidates = min(math.ceil(oversample * K), len(database))
            row = measure(search, index, queries, database, truth, n_candidates, args)
            row.update(label=label, family=family, bits=bits, oversample=oversample)
            row["n_iter"] = n_iter
            row["n_candidates"] = n_candidates
            # Euclidean: the same candidates, rescored by the other metric.
            search.set_params(metric="euclidean")
            distances, _ = search.kneighbors(queries)
            row["recall_euclidean"] = per_query_recall(
                truth["euclidean"][0], distances
            ).mean()
            rows.append(row)
            log(
                f"    oversample {oversample}: recall {row['recall']:.3f} "
                f"(FAISS {row['recall_faiss']:.3f}), {row['qps']:.0f} q/s "
                f"(FAISS {row['qps_faiss']:.0f})"
            )
        del search, index
    return {"name": name, "n_features": n_features, "queries": len(queries),
            "database": len(database), "fits": fits, "rows": rows}  # fmt: skip


def measure(search, index, queries, database, truth, n_candidates, args):
    true_distances, true_indices = truth["cosine"]
    hasher = search.hasher_
    codes = hasher.transform(queries)
    # Untimed first call (numba compiles, multi-index tables build if "auto"
    # wants them), one candidate more than the search: ties at the cut-off,
    # the (n_candidates + 1)-th code as near as the last candidate.
    row = {"tie_at_cut": float("nan")}
    if n_candidates < len(database):
        hamming, _ = search.index_.kneighbors(codes, n_candidates + 1)
        row["tie_at_cut"] = np.mean(hamming[:, -1] == hamming[:, -2])
    else:
        search.index_.kneighbors(codes, n_candidates)
    times = {"skhash": [], "faiss": [], "first": [], "first_faiss": []}
    times.update(encode=[], rescore=[])
    with threadpool_limits(args.threads):
        for repeat in range(args.repeats):
            start = time.perf_counter()
            answer = search.kneighbors(queries)
            times["skhash"].append(time.perf_counter() - start)
            start = time.perf_counter()
            found = faiss_pipeline(
                index, hasher, queries, database, n_candidates, search.metric
            )
            times["faiss"].append(time.perf_counter() - start)
            encode, first_faiss, rescoring = found[4]
            times["encode"].append(encode)
            times["first_faiss"].append(first_faiss)
            times["rescore"].append(rescoring)
            start = time.perf_counter()
            ours = search.index_.kneighbors(codes, n_candidates)
            times["first"].append(time.perf_counter() - start)
            if repeat == 0:
                (distances, indices), faiss_found, faiss_ours = answer, found, ours
    recall = recall_at_k(
        true_indices, indices, true_distances=true_distances, distances=distances
    )
    per_query = per_query_recall(true_distances, distances)
    assert abs(per_query.mean() - recall) < 1e-12
    f_distances, f_indices, f_candidates, f_hamming, _ = faiss_found
    row["recall_faiss"] = recall_at_k(
        true_indices, f_indices, true_distances=true_distances, distances=f_distances
    )
    same = compare_candidates(faiss_ours[1], faiss_ours[0], f_candidates, f_hamming)
    row["same_list"], row["same_set"], row["same_hamming"] = same
    row["same_answer"] = np.mean(np.all(indices == f_indices, axis=1))
    row["recall"] = recall
    row["per_query"] = per_query
    median = {key: float(np.median(value)) for key, value in times.items()}
    n = len(queries)
    row.update(
        qps=n / median["skhash"], qps_faiss=n / median["faiss"],
        qps_first=n / median["first"], qps_first_faiss=n / median["first_faiss"],
        encode_ms=1e3 * median["encode"], rescore_ms=1e3 * median["rescore"],
    )  # fmt: skip
    return row


# -- the report --------------------------------------------------------------


def fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def percent(value):
    return "" if math.isnan(value) else f"{value:.1%}"


def rate(value):
    return f"{value:,.0f}"


def table(columns, rows):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def recall_table(result):
    """hasher x bits: recall@10 (cosine, then Euclidean) at each oversampling."""
    by_key = {}
    for row in result["rows"]:
        by_key.setdefault((row["label"], row["bits"]), {})[row["oversample"]] = row
    lines = []
    for (label, bits), found in by_key.items():
        cosine = [fmt(found[o]["recall"]) for o in OVERSAMPLES]
        euclid = [fmt(found[o]["recall_euclidean"]) for o in OVERSAMPLES]
        n_iter = found[OVERSAMPLES[0]]["n_iter"]
        lines.append([label, bits, "" if n_iter is None else n_iter, *cosine, *euclid])
    columns = ["hasher", "bits", "iterations"]
    columns += [f"cosine x{o}" for o in OVERSAMPLES]
    columns += [f"Euclidean x{o}" for o in OVERSAMPLES]
    return table(columns, lines)


def speed_table(result):
    lines = []
    for row in result["rows"]:
        lines.append([
            row["label"], row["bits"], row["oversample"], row["n_candidates"],
            fmt(row["recall"]), fmt(row["recall_faiss"]),
            f"{row['same_list']:.1%}", f"{row['same_hamming']:.1%}",
            f"{row['same_answer']:.1%}",
            percent(row["tie_at_cut"]),
            rate(row["qps"]), rate(row["qps_faiss"]),
            fmt(row["qps"] / row["qps_faiss"], 2),
            rate(row["qps_first"]), rate(row["qps_first_faiss"]),
            fmt(row["qps_first"] / row["qps_first_faiss"], 2),
            fmt(row["encode_ms"], 1), fmt(row["rescore_ms"], 1),
        ])  # fmt: skip
    columns = [
        "hasher", "bits", "oversample", "candidates", "recall skhash",
        "recall FAISS", "same candidate lists", "same Hamming distances",
        "same neighbours",
        "ties at cut-off", "skhash q/s", "FAISS q/s", "q/s skhash / FAISS",
        "1st stage skhash q/s", "1st stage FAISS q/s", "1st stage skhash / FAISS",
        "encode ms", "rescore ms",
    ]  # fmt: skip
    return table(columns, lines)


def fit_table(result):
    lines = []
    for fit in result["fits"]:
        n_iter = "" if fit["n_iter"] is None else fit["n_iter"]
        lines.append([
            fit["label"], fit["bits"], n_iter, fmt(fit["fit"], 1),
            fmt(fit["encode_database"], 1), fmt(fit.get("loss_drop"), 3),
            fmt(100 * fit["last_step"], 3) + "%" if "last_step" in fit else "",
            fit["note"],
        ])  # fmt: skip
    columns = ["hasher", "bits", "iterations", "fit s", "encode database s"]
    columns += ["loss drop (1 - last/first)", "last iteration's drop", "note"]
    return table(columns, lines)


def cca_text(result):
    fits = [fit for fit in result["fits"] if fit["family"] == "CCA-ITQ"]
    if not fits:
        return ""
    fit = fits[0]
    top = ", ".join(f"{c:.3f}" for c in fit["correlations"][:12])
    return (
        f"CCA-ITQ: the hasher accepts any length up to 4 x {result['n_features']} "
        f'features (`extra_bits="expand"`), but its directions come from CCA '
        f"against 10 one-hot classes: {fit['informative']} canonical correlations "
        f"exceed 1e-3 at {fit['bits']} bits (first ones: {top}). The remaining "
        "directions are scaled by correlations near zero, so past about 9 bits "
        "the extra bits add rotations of the same 9-dimensional label subspace "
        "(plus noise), not information about the vectors."
    )


def summary(result):
    """Per oversampling: the sign baseline's recall and the fewest bits at
    which each learned hasher (and LSH) reaches it."""
    rows = result["rows"]
    d = result["n_features"]
    lines, verdicts = [], []
    for oversample in OVERSAMPLES:
        at = [row for row in rows if row["oversample"] == oversample]
        signs = [row for row in at if row["family"] in SIGNS]
        base = max(signs, key=lambda row: row["recall"])
        default = next(row for row in signs if row["family"] == "sign >= 0")
        cells = [oversample, f"{base['label']}: {base['recall']:.3f}"]
        cells.append(f"{default['recall']:.3f}")
        for family in ("ITQ", "CCA-ITQ", "LSH"):
            runs = sorted(
                (row for row in at if row["label"] == family), key=lambda r: r["bits"]
            )
            hit = next((r for r in runs if r["recall"] >= base["recall"]), None)
            cells.append(
                f"{hit['bits']} ({hit['recall']:.3f})" if hit
                else f"none (best {max(r['recall'] for r in runs):.3f})"
            )  # fmt: skip
        goal = d / 4
        itq = sorted(
            (row for row in at if row["label"] == "ITQ"), key=lambda r: r["bits"]
        )
        under = [r for r in itq if r["bits"] <= goal]
        if under:
            best = under[-1]  # the longest ITQ code within the 4x budget
            diff = best["per_query"] - base["per_query"]
            se = diff.std(ddof=1) / math.sqrt(len(diff))
            cells.append(
                f"ITQ {best['bits']}: {best['recall']:.3f} "
                f"({best['recall'] - base['recall']:+.3f} +/- {se:.3f})"
            )
            met = best["recall"] >= base["recall"]
            verdicts.append((oversample, met, best, base, se))
        else:
            cells.append("")
        lines.append(cells)
    columns = ["oversample", "best sign baseline", "`SignHasher()` (>= 0)"]
    columns += ["fewest ITQ bits >= baseline", "fewest CCA-ITQ bits"]
    columns += ["fewest LSH bits", f"ITQ at <= {d}/4 bits vs baseline (+/- 1 SE)"]
    return table(columns, lines), verdicts


def report(results, args, context):
    parts = [
        "# Binary quantization with rescoring: learned codes against sign bits",
        "",
        f"Written by `python benchmarks/bench_rescoring.py "
        f"{' '.join(context['argv'])}` ({context['date']}, "
        f"{context['minutes']:.0f} min).",
        f"Machine: {machine()}; load average (1, 5, 15 min) "
        f"{', '.join(f'{v:.2f}' for v in context['load_before'])} at the start and "
        f"{', '.join(f'{v:.2f}' for v in context['load_after'])} at the end; the "
        f"hypervisor took {context['stolen']:.0%} of the CPU time (steal). The "
        "machine is shared with other jobs: compare rows of this run, not "
        "absolute numbers across runs.",
        f"skhash {skhash.__version__}, NumPy {np.__version__}, "
        f"faiss {context['faiss']}; searches on {args.threads} thread(s) "
        f"(`n_jobs`, FAISS's OpenMP threads and BLAS all limited to it), fits on "
        "the BLAS default.",
        "",
        context["protocol"],
    ]
    for result in results:
        table_text, verdicts = summary(result)
        parts += [
            "",
            f"## {result['name']}: {result['queries']:,} queries, "
            f"{result['database']:,} x {result['n_features']} database",
            "",
            "### Summary",
            "",
            table_text,
            "",
        ]
        for oversample, met, best, base, se in verdicts:
            parts.append(
                f"- oversample {oversample}: 4x goal "
                f"{'met' if met else 'NOT met'}: ITQ {best['bits']} bits "
                f"{best['recall']:.3f} vs {base['label']} {base['bits']} bits "
                f"{base['recall']:.3f}, difference "
                f"{best['recall'] - base['recall']:+.3f} +/- {se:.3f} (1 SE, paired "
                f"over queries), {result['n_features'] / best['bits']:.1f}x fewer bits."
            )
        parts += [
            "",
            "### Recall@10 after rescoring",
            "",
            "Cosine (the ground truth of the protocol) and Euclidean (the same "
            "codes and candidates, rescored and judged by Euclidean distance); "
            "x1 / x3 / x10: oversampling, 10 / 30 / 100 candidates.",
            "",
            recall_table(result),
            "",
            "### Speed, cosine, 1,000 queries (MNIST-5k: 500) per call",
            "",
            "q/s: the whole search, query encoding included (skhash: "
            "`RescoringNeighbors.kneighbors`; FAISS: encode, "
            "`IndexBinaryFlat.search`, skhash's `rescore`). 1st stage: the "
            "Hamming search alone on the encoded queries. Ratios are skhash's "
            "queries/s over FAISS's (above 1: skhash faster). encode / rescore "
            "ms: the query encoding and the rescoring, the same code in both "
            "pipelines. Same candidate lists / same Hamming distances: queries "
            "whose candidates are identical, in order / whose sorted Hamming "
            "distances are identical (the stages agree up to ties); same "
            "neighbours: queries whose 10 rescored neighbours are identical. Ties at "
            "cut-off: queries whose (candidates + 1)-th code is as near as the "
            "last candidate.",
            "",
            speed_table(result),
            "",
            "### Fit time",
            "",
            "Fit of the hasher on the database; encode database: "
            "`RescoringNeighbors(FrozenEstimator(hasher)).fit` (encoding the "
            "database, building the index). Loss: ITQ's quantization loss "
            "`||B - VR||^2`.",
            "",
            fit_table(result),
            "",
            cca_text(result),
        ]
    return "\n".join(parts) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="fashion,mnist")
    parser.add_argument("--bits", default="64,128,256,512,1024")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--mnist-queries", type=int, default=500)
    parser.add_argument(
        "--database", type=int, default=0, help="Fashion database rows (0: all)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-iter", type=int, default=50)
    parser.add_argument(
        "--n-iter-large",
        type=int,
        default=10,
        help="ITQ / CCA-ITQ iterations from 512 bits on Fashion",
    )
    parser.add_argument(
        "--no-control",
        dest="control",
        action="store_false",
        help="skip the ITQ 256-bit row at --n-iter-large iterations",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.bits, args.queries, args.mnist_queries = "64,256", 200, 200
        args.database, args.repeats, args.n_iter, args.n_iter_large = 10_000, 1, 5, 3
    output = args.output or ("-" if args.quick else str(RESULTS))
    args.bits = [int(b) for b in args.bits.split(",")]
    import faiss

    faiss.omp_set_num_threads(args.threads)
    load_before, steal_before = os.getloadavg(), cpu_times()
    started = time.time()
    log(f"load average at start: {load_before}")
    results = []
    for name in args.datasets.split(","):
        if name == "fashion":
            title, reduced = "Fashion-MNIST, EfficientNet-Lite0 features", True
            data = load_fashion(args)
        elif name == "mnist":
            title, reduced = "MNIST-5k pixels", False
            data = load_mnist(args)
        else:
            sys.exit(f"unknown dataset {name!r}: fashion or mnist")
        results.append(run_dataset(title, *data, args, faiss, reduced))
        del data
    steal_after = cpu_times()
    context = {
        "argv": sys.argv[1:] if argv is None else argv,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": (time.time() - started) / 60,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "stolen": (steal_after[0] - steal_before[0])
        / max(1, steal_after[1] - steal_before[1]),
        "faiss": faiss.__version__,
        "protocol": PROTOCOL.format(
            n_iter=args.n_iter,
            n_iter_large=args.n_iter_large,
            repeats=args.repeats,
            seed=args.seed,
        ),
    }
    text = report(results, args, context)
    if output == "-":
        print(text)
    else:
        Path(output).write_text(text)
        log(f"wrote {output}")


PROTOCOL = """\
Protocol. Queries drawn at random (seed {seed}), the rest is the database; each
hasher fits on the database (CCA-ITQ with the database's class labels); the
ground truth is `exact_neighbors(queries, database, 10, metric="cosine")`;
recall@10 is `recall_at_k` with distances (a returned neighbour counts when
its exact distance is within 1e-3 of the 10th true one). Searches:
`RescoringNeighbors(FrozenEstimator(hasher), n_neighbors=10,
oversample=1 / 3 / 10)` (10 / 30 / 100 Hamming candidates rescored), algorithm
and backend left on "auto"; reference: `faiss.IndexBinaryFlat` over the same
database codes, searched for the same number of candidates, then skhash's own
`rescore` + `nearest_first`, so that only the first stage differs. Each
configuration: one untimed Hamming search (compilation, tables), then {repeats}
interleaved repetitions of (skhash, FAISS, skhash first stage alone); the
median is reported.

Ties at the Hamming cut-off: skhash orders candidates by (Hamming distance,
database row); FAISS's `IndexBinaryFlat` heap also breaks ties by id (lower
row first), so both should return the same candidate lists. The tables compare
recall, and report how often the candidate lists and their sorted Hamming
distances agree.

Hashers. Sign baselines, one bit per feature: `SignHasher()` (bit = x >= 0,
skhash's rule; on non-negative features every bit is 1 and the Hamming stage
picks candidates by row number alone), `SignHasher(threshold="mean")`, and
"sign > 0", Qdrant's rule (x > 0, defined in this script). The baseline of the
summary is the best of the three at each oversampling. Learned: `ITQHasher`,
`CCAITQHasher` (`reg="auto"` picked once, at the first length, and reused: the
same value every fit would pick), {n_iter} iterations; random: `LSHHasher`;
all with `random_state={seed}`. Lengths 64 to 1024 bits; past the number of
features ITQ and CCA-ITQ use `extra_bits="expand"` (a random orthonormal
embedding of the principal / canonical directions, skhash's extension; the
reference ITQ cannot make more bits than features). Time budget: on
Fashion-MNIST (69,000 x 1280) ITQ and CCA-ITQ iterate {n_iter_large} times at
512 and 1024 bits instead of {n_iter} (one iteration at 1024 bits is two
69,000 x 1024 x 1024 products and an SVD), and a control row fits ITQ at 256
bits with {n_iter_large} iterations to show what the reduction costs."""


if __name__ == "__main__":
    main()
