"""Near-duplicate groups: planted copies in Fashion-MNIST, and the Dask
pipeline at scale.

Two parts (``--parts quality throughput``, both by default):

- ``quality`` (one process): the 70,000 Fashion-MNIST images (``--quick``:
  the first 10,000), pixels scaled to [0, 1], and three altered copies of
  each of 1,000 of them (``--quick``: 200) drawn at random: a crop of one
  pixel row and one column resized back to 28 x 28 (bilinear), additive
  Gaussian noise (sigma 0.03, clipped) and a JPEG round trip (Pillow,
  quality 75). 64-bit ITQ codes fitted on all the rows; candidate pairs at
  Hamming radius 0 to 4, verified on the pixels with a Euclidean threshold
  chosen beforehand from the distances of planted pairs (copies of as many
  other images) and of random pairs (all pairs of 10,000 images; see
  :func:`choose_threshold`); then connected components, with and without
  the verification. The truth: the planted groups joined by every pair of
  rows whose pixels are within the threshold (Fashion-MNIST has
  near-identical images of its own), found by an exact float search;
  scores against the planted groups alone are printed too. The groups of
  each radius are the components of ``duplicate_pairs``' verified pairs;
  ``duplicate_groups`` runs at ``--api-radii`` and must give the same.
- ``throughput``: a LocalCluster of 2 worker processes of 1 thread. 10^7
  rows (``--quick``: 10^5) made on the workers block by block, never all in
  memory: each the mixture of two Fashion-MNIST images (weights in [0.3,
  0.7]) plus Gaussian noise (sigma 0.01, rows of a pool of 8,192), drawn by
  hashes of the row number; 1% of the rows are a planted copy of another
  row (its mixture, their own noise). ``skhash.dask.transform`` encodes them
  with a 128-bit ITQ fitted on the first 20,000 rows; the verification
  vectors are their 64-d PCA (float32, 256 bytes a row: 2.6 GB at 10^7,
  where the pixels would take 31 GB), made on the fly as well. Then the
  candidate count (an unverified ``skhash.dask.similarity_join``, or above
  ``--count-candidates-max`` rows an estimate from a sample of rows), the
  verified join and ``skhash.dask._duplicates.duplicate_groups`` at
  ``--radius``, each with the workers' peak resident memory; the groups are
  checked against the components of the join's pairs and, up to
  ``--local-check-max`` rows, against the single-machine functions.

Usage::

    python benchmarks/bench_duplicates.py [--quick] [--parts quality throughput]

Results: benchmarks/results/duplicates.md.
"""

import argparse
import io
import time
from functools import cache

import dask
import dask.array as da
import numpy as np
from _machine import reset_peak  # beside this script
from distributed import Client, LocalCluster, wait
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

import skhash
import skhash.dask
from skhash import ITQHasher
from skhash.dask._duplicates import duplicate_groups as dask_duplicate_groups
from skhash.datasets import load_fashion_mnist
from skhash.neighbors._duplicates import duplicate_groups, duplicate_pairs

try:
    from PIL import Image
except ImportError:  # the crop becomes a shift, the JPEG a quantization
    Image = None

KINDS = ("crop", "noise", "jpeg")
NOISE = 0.03  # sigma of the additive noise, pixels in [0, 1]
JPEG_QUALITY = 75  # Pillow's default
N_BITS = 64
RADII = range(5)
NOISE_POOL = 8192  # rows of noise the rows of part 2 draw from


# --- Part 1: planted copies in Fashion-MNIST --------------------------------


def to_uint8(image):
    return np.round(image * 255).astype(np.uint8)


def altered(image, kind, rng):
    """An altered copy of a 28 x 28 image with pixels in [0, 1]."""
    if kind == "crop":
        top, left = rng.integers(0, 2, size=2)
        if Image is None:
            return np.roll(image, (2 * top - 1, 2 * left - 1), (0, 1))
        # One pixel row and one column cut (at random sides), resized back.
        box = (left, top, left + 27, top + 27)
        resized = Image.fromarray(to_uint8(image)).resize(
            (28, 28), Image.BILINEAR, box=box
        )
        return np.asarray(resized, np.float32) / 255
    if kind == "noise":
        noisy = image + rng.normal(0, NOISE, image.shape)
        return np.clip(noisy, 0, 1).astype(np.float32)
    if Image is None:
        return np.round(image * 15).astype(np.float32) / 15
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buffer), np.float32) / 255


def planted_copies(images, sources, rng):
    """One copy of each kind of each source image: the copies (rows of
    pixels), the row of the source of each, and its kind."""
    copies = [altered(images[s], kind, rng) for s in sources for kind in KINDS]
    copy_of = np.repeat(sources, len(KINDS))
    kinds = np.tile(np.array(KINDS), len(sources))
    return np.stack(copies).reshape(len(copies), -1), copy_of, kinds


def row_distances(X, left, right, block=8192):
    """Exact Euclidean distance of each pair of rows (float64 differences)."""
    out = np.empty(len(left))
    for start in range(0, len(left), block):
        pair = slice(start, start + block)
        diff = X[left[pair]].astype(np.float64) - X[right[pair]]
        out[pair] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def within(X, max_distance, n_components=64, block=1024):
    """Every pair ``i < j`` of rows within ``max_distance`` of each other,
    exactly, with its distance: first a PCA to ``n_components`` dimensions,
    whose distances never exceed the pixels' (an orthogonal projection), so
    its pairs within ``max_distance`` are a superset; then the pixels."""
    centred = X - X.mean(0, dtype=np.float64)
    components = PCA(n_components, svd_solver="randomized", random_state=0).fit(
        centred[::4]
    )
    projected = (centred @ components.components_.T).astype(np.float32)
    half_norms = 0.5 * np.einsum("ij,ij->i", projected, projected, dtype=np.float64)
    # Room for float32 rounding in the dot products, far above its bound.
    slack = 2e-4 * half_norms.max() + 1e-6
    lefts, rights = [], []
    for start in range(0, len(X), block):
        stop = min(start + block, len(X))
        dots = projected[start:stop] @ projected[start:].T
        dots -= half_norms[None, start:].astype(np.float32)
        # ||a - b||^2 <= t^2  <=>  a.b - |b|^2/2 >= |a|^2/2 - t^2/2
        bound = half_norms[start:stop] - 0.5 * max_distance**2 - slack
        rows, columns = np.nonzero(dots >= bound[:, None].astype(np.float32))
        columns += start
        upper = columns > rows + start
        lefts.append(rows[upper] + start)
        rights.append(columns[upper])
    left, right = np.concatenate(lefts), np.concatenate(rights)
    distance = row_distances(X, left, right)
    keep = distance <= max_distance
    return left[keep], right[keep], distance[keep]


def choose_threshold(planted, random, n_random_sampled, n_random, n_planted):
    """The distance threshold with the fewest expected pair errors.

    ``planted`` are distances of planted pairs, ``random`` those of random
    pairs below the largest planted one (of ``n_random_sampled`` sampled);
    the errors are ``n_random * FPR(t) + n_planted * FNR(t)``, the pairs a
    data set of ``n_random`` pairs, ``n_planted`` of them planted, would
    wrongly accept or reject. The cost changes only at the sampled distances
    and, between two planted ones, grows with ``t``: the best ``t`` is a
    planted distance, pushed to the middle of the gap above it.
    """
    planted, random = np.sort(planted), np.sort(random)
    accepted = np.searchsorted(random, planted, side="right")
    rejected = len(planted) - np.searchsorted(planted, planted, side="right")
    cost = n_random * accepted / n_random_sampled + n_planted * rejected / len(planted)
    best = int(np.argmin(np.concatenate([[n_planted], cost])))
    if best == 0:  # rejecting every pair costs least
        return 0.0, float(n_planted)
    low = planted[best - 1]
    above = [planted[best:], random[random > low]]
    high = min((side[0] for side in above if len(side)), default=low)
    return float((low + high) / 2), float(cost[best - 1])


def random_pair_distances(X, cap, block=2000):
    """Distances below ``cap`` of all the pairs of rows of ``X`` (and the
    smallest of all, whatever the cap), and the number of pairs."""
    X = X.astype(np.float64)
    norms = np.einsum("ij,ij->i", X, X)
    kept, smallest = [], np.inf
    for start in range(0, len(X) - 1, block):
        part = slice(start, start + block)
        squared = norms[part, None] + norms[None, start:] - 2 * X[part] @ X[start:].T
        # Each pair once: row i of the block is row start + i of X.
        squared[np.arange(len(squared))[:, None] >= np.arange(squared.shape[1])] = (
            np.inf
        )
        smallest = min(smallest, squared.min())
        kept.append(squared[squared <= cap**2])
    kept = np.concatenate([*kept, [smallest] if smallest > cap**2 else []])
    return np.sqrt(np.maximum(kept, 0)), len(X) * (len(X) - 1) // 2


def groups_of(n_rows, left, right):
    """Connected components of the pairs, each labelled by its smallest row."""
    graph = coo_array(
        (np.ones(len(left), bool), (np.asarray(left), np.asarray(right))),
        shape=(n_rows, n_rows),
    )
    _, component = connected_components(graph.tocsr(), directed=False)
    # Rows are numbered in order: a component's first row is its smallest.
    _, first = np.unique(component, return_index=True)
    return first[component]


def n_pairs(counts):
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pair_scores(predicted, truth):
    """Pair precision, recall and F1 of the groups (the pairs of rows that
    share a group), and the adjusted Rand index."""
    key = predicted.astype(np.int64) * (int(truth.max()) + 1) + truth
    both = n_pairs(np.unique(key, return_counts=True)[1])
    found = n_pairs(np.unique(predicted, return_counts=True)[1])
    true = n_pairs(np.unique(truth, return_counts=True)[1])
    precision = both / found if found else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if both else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ari": adjusted_rand_score(truth, predicted),
        "pairs in groups": found,
    }


def group_sizes(labels):
    sizes = np.bincount(labels)
    return {"largest": int(sizes.max()), "groups >= 2": int((sizes >= 2).sum())}


def bench_quality(args):
    rng = np.random.default_rng(args.seed)
    images, _ = load_fashion_mnist(return_X_y=True)
    images = images[: args.images] / np.float32(255)
    n_images = len(images)
    chosen = rng.choice(n_images, 2 * args.sources, replace=False)
    sources, calibration = chosen[: args.sources], chosen[args.sources :]
    square = images.reshape(-1, 28, 28)
    start = time.perf_counter()
    copies, copy_of, kinds = planted_copies(square, sources, rng)
    X = np.concatenate([images, copies])
    n_rows = len(X)
    planted = np.concatenate([np.arange(n_images), copy_of])  # truth: planted
    pillow = "yes" if Image else "no: crop = 1-pixel shift, JPEG = 16 levels"
    print(
        f"{n_images} images + {len(copies)} copies of {args.sources} "
        f"({time.perf_counter() - start:.1f} s); Pillow: {pillow}"
    )

    # The threshold, from other sources' copies and random pairs of images.
    calibration_copies, calibration_of, calibration_kinds = planted_copies(
        square, calibration, rng
    )
    calibration_distance = np.linalg.norm(
        calibration_copies - images[calibration_of], axis=1
    )
    sample = rng.choice(n_images, min(args.random_rows, n_images), replace=False)
    random, n_sampled = random_pair_distances(
        images[sample], calibration_distance.max()
    )
    n_planted_pairs = len(copies)  # the source-copy pairs
    threshold, cost = choose_threshold(
        calibration_distance,
        random,
        n_sampled,
        n_rows * (n_rows - 1) // 2,
        n_planted_pairs,
    )
    print(f"threshold {threshold:.4f} (expected pair errors {cost:.0f})")
    for kind in KINDS:
        d = calibration_distance[calibration_kinds == kind]
        print(
            f"  calibration {kind}: median {np.median(d):.3f}, 95% "
            f"{np.quantile(d, 0.95):.3f}, max {d.max():.3f}; within threshold "
            f"{np.mean(d <= threshold):.3f}"
        )
    random = np.sort(random)
    for q in [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]:
        index = int(q * n_sampled)
        value = random[index] if index < len(random) else np.nan
        print(f"  random pairs: quantile {q:g} = {value:.3f}")
    print(
        f"  random pairs within threshold: {np.sum(random <= threshold)} of {n_sampled}"
    )

    # The exact float search: every pair of rows within the threshold.
    start = time.perf_counter()
    left, right, distance = within(X, threshold)
    seconds = time.perf_counter() - start
    originals = right < n_images
    exact_copy = planted[left] == planted[right]
    print(
        f"exact float search ({seconds:.1f} s): {len(left)} pairs within the "
        f"threshold, {int(originals.sum())} of them between original images "
        f"({int((distance[originals] == 0).sum())} identical), "
        f"{int(exact_copy.sum())} planted, "
        f"{int((~originals & ~exact_copy).sum())} between a copy and another row"
    )
    truth = groups_of(
        n_rows,
        np.concatenate([left, np.arange(n_images, n_rows)]),
        np.concatenate([right, copy_of]),
    )
    exact_groups = groups_of(n_rows, left, right)
    print(f"truth (planted + exact pairs): {group_sizes(truth)}")

    start = time.perf_counter()
    with threadpool_limits(1):  # see bench_throughput
        hasher = ITQHasher(N_BITS, random_state=args.seed).fit(X)
    codes = hasher.transform(X)
    print(f"ITQ {N_BITS} bits fit + encode: {time.perf_counter() - start:.1f} s")
    # Every radius's pairs from the largest radius's: the candidates with
    # their Hamming distance, then the verified ones (one verification pass).
    start = time.perf_counter()
    candidates, hamming = duplicate_pairs(codes, radius=max(RADII))
    candidate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    verified_pairs, _ = duplicate_pairs(
        codes, radius=max(RADII), vectors=X, max_distance=threshold
    )
    verify_seconds = time.perf_counter() - start
    keys = candidates[:, 0].astype(np.int64) * n_rows + candidates[:, 1]
    verified_keys = (
        verified_pairs[:, 0].astype(np.int64) * n_rows + verified_pairs[:, 1]
    )
    verified_hamming = hamming[np.searchsorted(keys, verified_keys)]
    exact_keys = np.sort(left.astype(np.int64) * n_rows + right)
    print(
        f"radius {max(RADII)}: {len(candidates)} candidate pairs in "
        f"{candidate_seconds:.1f} s, {len(verified_pairs)} verified in "
        f"{verify_seconds:.1f} s more ({len(candidates) / verify_seconds:,.0f} "
        "candidates/s); verified pairs not in the exact search: "
        f"{len(np.setdiff1d(verified_keys, exact_keys))}"
    )

    rows = []
    reference = {"radius": "exact float search", "verified": len(left)}
    reference.update(_scores(exact_groups, truth, planted, copy_of, kinds, n_images))
    rows.append(reference)
    for radius in RADII:
        found = verified_hamming <= radius
        labels = groups_of(n_rows, *verified_pairs[found].T)
        row = {
            "radius": radius,
            "candidates": int((hamming <= radius).sum()),
            "verified": int(found.sum()),
            "exact pairs found": float(
                np.isin(exact_keys, verified_keys[found]).mean()
            ),
        }
        if radius in args.api_radii:
            # The API's groups, against the components of the pairs above.
            start = time.perf_counter()
            api = duplicate_groups(
                codes, radius=radius, vectors=X, max_distance=threshold
            )
            row["duplicate_groups s"] = round(time.perf_counter() - start, 2)
            row["same as components"] = bool(np.array_equal(api, labels))
        row.update(_scores(labels, truth, planted, copy_of, kinds, n_images))
        start = time.perf_counter()
        unverified = duplicate_groups(codes, radius=radius)
        unverified_row = {
            "duplicate_groups s": round(time.perf_counter() - start, 2),
            "same as components": bool(
                np.array_equal(
                    unverified, groups_of(n_rows, *candidates[hamming <= radius].T)
                )
            ),
        }
        unverified_row.update(
            _scores(unverified, truth, planted, copy_of, kinds, n_images)
        )
        row["unverified"] = unverified_row
        rows.append(row)
        print(row, flush=True)
    _print_quality_tables(rows)
    return {"threshold": threshold, "rows": rows}


def _scores(labels, truth, planted, copy_of, kinds, n_images):
    scores = pair_scores(labels, truth)
    scores["planted"] = pair_scores(labels, planted)
    scores.update(group_sizes(labels))
    found = labels[n_images:] == labels[copy_of]
    for kind in KINDS:
        scores[f"recall {kind}"] = float(found[kinds == kind].mean())
    return scores


def _print_quality_tables(rows):
    print(
        "\n| radius | candidate pairs | verified pairs | exact pairs found "
        "| groups >= 2 | largest | pair P | pair R | pair F1 | ARI "
        "| recall crop / noise / JPEG | vs planted only: P / R / F1 / ARI |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        found = row.get("exact pairs found", 1.0)
        counts = (row.get("candidates", ""), row["verified"], _number(found))
        print(_table_row(row, *counts))
    print("\nduplicate_groups' own groups against the components of the pairs:\n")
    print("| radius | verified: s | same | unverified: s | same |")
    print("|---|---:|---|---:|---|")
    for row in rows[1:]:
        unverified = row["unverified"]
        print(
            f"| {row['radius']} | {row.get('duplicate_groups s', 'not run')} "
            f"| {row.get('same as components', '')} "
            f"| {unverified['duplicate_groups s']} "
            f"| {unverified['same as components']} |"
        )
    print("\nWithout verification (every candidate pair connects its rows):\n")
    print(
        "| radius | candidate pairs | groups >= 2 | largest | pair P | pair R "
        "| pair F1 | ARI | recall crop / noise / JPEG "
        "| vs planted only: P / R / F1 / ARI |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows[1:]:
        unverified = {"radius": row["radius"], **row["unverified"]}
        print(_table_row(unverified, row["candidates"]))


def _number(value):
    """Three decimals, or three significant digits below 0.001."""
    return f"{value:.3f}" if value == 0 or value >= 1e-3 else f"{value:.2g}"


def _table_row(scores, *counts):
    planted = scores["planted"]
    cells = [
        str(scores["radius"]),
        *(f"{c:,}" if isinstance(c, int) else str(c) for c in counts),
        f"{scores['groups >= 2']:,}",
        f"{scores['largest']:,}",
        *(_number(scores[name]) for name in ("precision", "recall", "f1", "ari")),
        " / ".join(_number(scores[f"recall {kind}"]) for kind in KINDS),
        " / ".join(
            _number(planted[name]) for name in ("precision", "recall", "f1", "ari")
        ),
    ]
    return "| " + " | ".join(cells) + " |"


# --- Part 2: the Dask pipeline -----------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(values):
    """SplitMix64's finaliser: a well-spread 64-bit hash of each value."""
    z = values + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hash(rows, salt):
    return _mix(rows * np.uint64(8) + np.uint64(salt))


def _uniform(rows, salt):
    return (_hash(rows, salt) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def row_sources(rows, n_rows, duplicate_fraction):
    """The row whose mixture each row shows: its own or, for a planted copy
    (a fraction of the rows, drawn by a hash of the row), another's. Rows
    with the same source are the true groups."""
    rows = np.asarray(rows, np.uint64)
    copy = _uniform(rows, 0) < duplicate_fraction
    return np.where(copy, _hash(rows, 1) % np.uint64(n_rows), rows).astype(np.int64)


@cache
def noise_pool(noise, seed, size=NOISE_POOL):
    """``size`` rows of Gaussian noise of sigma ``noise``, made once per
    process: drawing 784 normals a row would cost more than the rest of the
    pipeline."""
    rng = np.random.default_rng([seed, 1 << 20])
    pool = rng.standard_normal((size, 28 * 28), dtype=np.float32)
    pool *= noise
    return pool


def mixtures(images, sources, noise_keys, noise, seed):
    """Rows of pixels in [0, 1]: for each source, the mixture of two images
    (drawn by a hash of the source) with a weight in [0.3, 0.7], plus a row of
    :func:`noise_pool` drawn by a hash of its noise key (the row itself, so
    that a copy's noise is not its source's)."""
    sources = np.asarray(sources, np.uint64)
    n_images = np.uint64(len(images))
    weight = (0.3 + 0.4 * _uniform(sources, 2)).astype(np.float32)[:, None]
    rows = images[_hash(sources, 3) % n_images].astype(np.float32)
    rows *= weight / 255
    other = images[_hash(sources, 4) % n_images].astype(np.float32)
    other *= (1 - weight) / 255
    rows += other
    del other
    pool = noise_pool(noise, seed)
    keys = np.asarray(noise_keys, np.uint64)
    rows += pool[_hash(keys, 5) % np.uint64(len(pool))]
    return rows


def mixture_block(images, start, stop, n_rows, duplicate_fraction, noise, seed):
    """Rows ``start:stop`` of the data set, the same wherever they are made."""
    rows = np.arange(start, stop)
    sources = row_sources(rows, n_rows, duplicate_fraction)
    return mixtures(images, sources, rows, noise, seed)


def project(block, mean, components):
    return ((block - mean) @ components).astype(np.float32)


def first_column(block):
    return block[:, :1].copy()


def resident_mib():
    """This process's resident memory and its peak, in MiB."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def stage(client, name, function, results):
    """Run ``function`` on empty peaks; record its seconds and the workers'
    peak resident memory."""
    client.run(reset_peak)
    start = time.perf_counter()
    value = function()
    seconds = time.perf_counter() - start
    peaks = sorted(round(peak) for _, peak in client.run(resident_mib).values())
    results[name] = {"seconds": round(seconds, 2), "worker peak MiB": peaks}
    print(name, results[name], flush=True)
    return value, seconds


def bench_throughput(args, client):
    images = load_fashion_mnist(return_X_y=True)[0].astype(np.uint8)
    n_rows, seed = args.rows, args.seed
    rows = (n_rows, args.duplicate_fraction, args.row_noise, seed)
    results = {"rows": n_rows, "partitions": args.partitions, "radius": args.radius}

    # Hasher and PCA, fitted here on the first rows.
    start = time.perf_counter()
    sample = mixture_block(images, 0, min(n_rows, args.fit_rows), *rows)
    # One BLAS thread: on a loaded 2-core machine threaded OpenBLAS spins in
    # ITQ's small SVDs (a 64-bit fit on 20,000 rows: 17.5 s, 3.4 s with one).
    with threadpool_limits(1):
        hasher = ITQHasher(args.dask_bits, random_state=seed).fit(sample)
        pca = PCA(args.components, svd_solver="randomized", random_state=seed)
        pca.fit(sample)
    del sample
    mean = pca.mean_.astype(np.float32)
    components = pca.components_.T.astype(np.float32)
    results["fit s"] = round(time.perf_counter() - start, 2)

    # The threshold, from planted and random pairs of rows made here: mixtures
    # of sources past the data set's rows (which no row shows), each made
    # twice with the noise of two different keys.
    calibration = np.arange(n_rows, n_rows + args.calibration_rows)
    first, second = (
        project(
            mixtures(images, calibration, calibration + offset, args.row_noise, seed),
            mean,
            components,
        )
        for offset in (0, args.calibration_rows)
    )
    planted_distance = np.linalg.norm(first - second, axis=1)
    random, n_sampled = random_pair_distances(first, 4 * planted_distance.max())
    n_planted = int(args.duplicate_fraction * n_rows)
    threshold, cost = choose_threshold(
        planted_distance, random, n_sampled, n_rows * (n_rows - 1) // 2, n_planted
    )
    results["threshold"] = round(threshold, 4)
    results["calibration"] = {
        "planted max": round(float(planted_distance.max()), 4),
        "random min": round(float(random.min()), 4) if len(random) else None,
        "random pairs sampled": n_sampled,
        "expected errors": cost,
    }
    print(results, flush=True)

    images_future = client.scatter(images, broadcast=True)
    client.run(noise_pool, args.row_noise, seed)  # made before the timings
    size = -(-n_rows // args.partitions)
    starts = range(0, n_rows, size)
    X = da.concatenate(
        [
            da.from_delayed(
                dask.delayed(mixture_block)(
                    images_future, start, min(start + size, n_rows), *rows
                ),
                shape=(min(start + size, n_rows) - start, images.shape[1]),
                dtype=np.float32,
            )
            for start in starts
        ]
    )
    first_columns = X.map_blocks(first_column, chunks=(X.chunks[0], (1,)))
    codes = skhash.dask.transform(hasher, X)
    vectors = X.map_blocks(
        project,
        mean,
        components,
        chunks=(X.chunks[0], (args.components,)),
        dtype=np.float32,
    )

    def persisted(collection):
        collection = collection.persist()
        wait(collection)
        return collection

    _, generate_seconds = stage(
        client, "generate", lambda: persisted(first_columns), results
    )
    codes, encode_seconds = stage(
        client, "generate + encode", lambda: persisted(codes), results
    )
    vectors, _ = stage(client, "generate + PCA", lambda: persisted(vectors), results)
    results["codes/s"] = round(n_rows / encode_seconds)
    results["codes/s, generation subtracted"] = round(
        n_rows / max(encode_seconds - generate_seconds, 1e-9)
    )

    verification = {"vectors": vectors, "max_distance": threshold}
    if n_rows <= args.count_candidates_max:
        n_candidates, candidate_seconds = stage(
            client,
            "candidate join (unverified, counted)",
            lambda: len(skhash.dask.similarity_join(codes, radius=args.radius)),
            results,
        )
        results["candidate pairs"] = n_candidates
        results["candidate pairs/s"] = round(n_candidates / candidate_seconds)
    else:
        # A join of a sample of rows with all of them: each sampled row's
        # partners (but itself) times the rows, halved.
        sample = np.sort(
            np.random.default_rng(seed).choice(
                n_rows, args.candidate_sample, replace=False
            )
        )
        sample_codes = codes[sample].compute()
        n_found, _ = stage(
            client,
            f"candidates of {len(sample)} sampled rows",
            lambda: len(
                skhash.dask.similarity_join(sample_codes, codes, radius=args.radius)
            ),
            results,
        )
        per_row = (n_found - len(sample)) / len(sample)
        results["candidate pairs (estimated)"] = round(per_row * n_rows / 2)
    pairs, join_seconds = stage(
        client,
        "verified join",
        lambda: skhash.dask.similarity_join(
            codes, radius=args.radius, **verification
        ).compute(),
        results,
    )
    labels, groups_seconds = stage(
        client,
        "duplicate_groups",
        lambda: dask_duplicate_groups(
            codes, radius=args.radius, **verification
        ).compute(),
        results,
    )
    results["verified pairs"] = len(pairs)
    results["verified pairs/s"] = round(len(pairs) / join_seconds)
    results["verified join rows/s"] = round(n_rows / join_seconds)
    results["duplicate_groups rows/s"] = round(n_rows / groups_seconds)
    results["total s (encode + PCA + verified join + groups)"] = round(
        results["generate + encode"]["seconds"]
        + results["generate + PCA"]["seconds"]
        + join_seconds
        + groups_seconds,
        1,
    )

    labels = labels.sort_index()
    checks = {
        "index is the rows": bool(
            np.array_equal(labels.index.to_numpy(), np.arange(n_rows))
        ),
        "groups = components of the join's pairs": bool(
            np.array_equal(
                labels.to_numpy(),
                groups_of(n_rows, pairs["left"].to_numpy(), pairs["right"].to_numpy()),
            )
        ),
    }
    if n_rows <= args.local_check_max:
        local_codes, local_vectors = dask.compute(codes, vectors)
        start = time.perf_counter()
        local_pairs, _ = duplicate_pairs(
            local_codes, radius=args.radius, vectors=local_vectors,
            max_distance=threshold,
        )  # fmt: skip
        local_labels = duplicate_groups(
            local_codes, radius=args.radius, vectors=local_vectors,
            max_distance=threshold,
        )  # fmt: skip
        results["single machine pairs + groups s"] = round(
            time.perf_counter() - start, 2
        )
        dask_pairs = pairs[["left", "right"]].to_numpy()
        dask_pairs = dask_pairs[np.lexsort(dask_pairs.T[::-1])]
        checks["pairs = single machine's"] = bool(
            np.array_equal(dask_pairs, local_pairs)
        )
        checks["groups = single machine's"] = bool(
            np.array_equal(labels.to_numpy(), local_labels)
        )
    results["checks"] = checks

    truth = row_sources(np.arange(n_rows), n_rows, args.duplicate_fraction)
    predicted = labels.to_numpy()
    scores = pair_scores(predicted, truth)
    scores.update(group_sizes(predicted))
    results["against the planted groups"] = {
        k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()
    }
    results["planted pairs"] = n_pairs(np.unique(truth, return_counts=True)[1])
    print(results, flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 rows in part 2")
    parser.add_argument(
        "--parts", nargs="+", default=["quality", "throughput"],
        choices=["quality", "throughput"],
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    # Part 1.
    parser.add_argument("--images", type=int, default=70_000)
    parser.add_argument("--sources", type=int, default=1_000)
    parser.add_argument("--random-rows", type=int, default=10_000)
    parser.add_argument(
        "--api-radii", type=int, nargs="*", default=None,
        help="radii where the verified duplicate_groups runs (default: all "
        "with --quick, else 2); elsewhere the groups are the components of "
        "duplicate_pairs' verified pairs",
    )  # fmt: skip
    # Part 2.
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--radius", type=int, default=2)
    parser.add_argument("--dask-bits", type=int, default=128)
    parser.add_argument("--row-noise", type=float, default=0.01)
    parser.add_argument("--duplicate-fraction", type=float, default=0.01)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--fit-rows", type=int, default=20_000)
    parser.add_argument("--calibration-rows", type=int, default=5_000)
    # Above these, the single-machine check and the exact candidate count
    # would each cost as much as the joins measured.
    parser.add_argument("--local-check-max", type=int, default=200_000)
    parser.add_argument("--count-candidates-max", type=int, default=200_000)
    parser.add_argument("--candidate-sample", type=int, default=10_000)
    parser.add_argument("--memory-limit", default="8GiB")
    args = parser.parse_args()
    if args.rows is None:
        args.rows = 100_000 if args.quick else 10_000_000
    if args.partitions is None:  # blocks of 10^5 rows (10^4 with --quick)
        args.partitions = max(1, args.rows // (10_000 if args.quick else 100_000))
    if args.quick and args.images == 70_000:
        args.images, args.sources = 10_000, 200
    if args.api_radii is None:
        args.api_radii = list(RADII) if args.quick else [2]
    print("skhash", skhash.__version__, "dask", dask.__version__, vars(args))
    start = time.perf_counter()
    if "quality" in args.parts:
        bench_quality(args)
    if "throughput" in args.parts:
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                dashboard_address=":0",
                memory_limit=args.memory_limit,
            ) as cluster,
            Client(cluster) as client,
        ):
            bench_throughput(args, client)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
