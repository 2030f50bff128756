"""A grid search over a frozen backbone's features, without and with
``feature_cache``, side by side in one run.

HashNet on frozen EfficientNet-Lite0 (from its wheel), ``GridSearchCV`` over
``n_bits`` in {16, 32, 64} with ``cv=3`` (9 fits and the refit, 5 epochs),
300 generated 64 x 64 PNG files. Rounds alternate: no cache, a cold cache
(an empty directory), a warm cache (the one just filled). Reported: wall
time, and the images whose features the fits computed (counted by wrapping
``skhash.deep._pretrained.extract_features``); the scores must be equal.
One torch thread, so that other jobs on a shared machine disturb less::

    python benchmarks/bench_feature_cache.py [--rounds 2]

Results: benchmarks/results/feature_cache.md.
"""

import argparse
import os
import shutil
import tempfile
import time
from unittest import mock

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import GridSearchCV

import skhash.deep._pretrained as pretrained
from skhash import HashNetHasher
from skhash.deep import efficientnet_lite0
from skhash.metrics import get_retrieval_scorer


def write_images(folder, n_images, rng):
    """Smooth colour images, a class colour plus noise; paths and labels."""
    labels = rng.integers(0, 5, n_images)
    paths = []
    for i, label in enumerate(labels):
        base = rng.random((8, 8, 3)) * 0.5 + 0.5 * np.eye(3)[label % 3]
        image = np.kron(base, np.ones((8, 8, 1)))
        image = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1)
        paths.append(os.path.join(folder, f"{i:04d}.png"))
        Image.fromarray((image * 255).astype(np.uint8), mode="RGB").save(paths[-1])
    return np.array(paths, dtype=object), labels


def search(paths, labels, backbone, cache):
    """(seconds, images computed by the fits, mean test scores)."""
    computed = []
    extract = pretrained.extract_features

    def counted(module, X, **options):
        computed.append(len(X))
        return extract(module, X, **options)

    grid = GridSearchCV(
        HashNetHasher(
            backbone=backbone, max_epochs=5, batch_size=32, device="cpu",
            random_state=0, feature_cache=cache,
        ),
        {"n_bits": [16, 32, 64]}, cv=3, scoring=get_retrieval_scorer("map"),
    )  # fmt: skip
    start = time.perf_counter()
    with mock.patch.object(pretrained, "extract_features", counted):
        grid.fit(paths, labels)
    seconds = time.perf_counter() - start
    # Only the fits extract features (transform runs the whole network).
    return seconds, sum(computed), grid.cv_results_["mean_test_score"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp(prefix="skhash-cache-bench-")
    try:
        paths, labels = write_images(folder, args.images, np.random.default_rng(0))
        backbone = efficientnet_lite0()
        print("| round | cache | wall s | images computed in fits | MAP by n_bits |")
        print("|---|---|---:|---:|---|")
        for round_ in range(args.rounds):
            cache = os.path.join(folder, f"cache-{round_}")
            for kind, where in (("none", None), ("cold", cache), ("warm", cache)):
                seconds, computed, scores = search(paths, labels, backbone, where)
                print(
                    f"| {round_} | {kind} | {seconds:.1f} | {computed} | "
                    + " / ".join(f"{s:.4f}" for s in scores)
                    + " |",
                    flush=True,
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
