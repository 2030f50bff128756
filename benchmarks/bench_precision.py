"""Epoch time of HashNet with each device setting: precision, channels_last,
compile (issue #22).

HashNet, 32 bits, batch 64, on generated uint8 images (a class-coloured
square on noise, 4 classes) streamed from a 4-D array: the small
convolutional backbone, and EfficientNet-Lite0 fine-tuned (``skhash[pretrained]``,
skipped when missing). Each setting trains ``--epochs`` epochs; the first
epoch (which pays ``torch.compile``'s compilation) is reported apart, the
others give the s/epoch, then ``transform`` is timed. The settings run
round-robin ``--rounds`` times (the median is reported), so that a machine
busy with other work slows them alike. Bits equal to float32's: the fraction
of the codes' bits that agree with the float32 fit's (same seed)::

    python benchmarks/bench_precision.py                      # CPU, 64 x 64
    python benchmarks/bench_precision.py --device cuda        # GPU, 224 x 224
    python benchmarks/bench_precision.py --no-compile --no-efficientnet
"""

import argparse
import os
import shutil
import time

import numpy as np
import torch
from _machine import cpu_name

from skhash import HashNetHasher
from skhash.codes import unpack_codes

SETTINGS = {
    "float32": {},
    "bfloat16": {"precision": "bfloat16"},
    "float16": {"precision": "float16"},
    "channels_last": {"channels_last": True},
    "bfloat16 + channels_last": {"precision": "bfloat16", "channels_last": True},
    "compile": {"compile": True},
    "compile + bfloat16": {"compile": True, "precision": "bfloat16"},
}


def generated_images(n_images, size, seed=0):
    """uint8 images (n, 3, size, size): noise with a square whose colour and
    place say the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n_images)
    images = rng.integers(0, 96, (n_images, 3, size, size), dtype=np.uint8)
    side = size // 3
    for index, label in enumerate(y):
        top, left = rng.integers(0, size - side, 2)
        images[index, label % 3, top : top + side, left : left + side] = 255
        if label == 3:
            images[index, :, top : top + side, left : left + side] = 255
    return images, y


def backbones(include_efficientnet):
    yield "small CNN", "cnn"
    if not include_efficientnet:
        return
    try:
        from skhash.deep import efficientnet_lite0

        efficientnet_lite0(freeze=False)
    except ImportError as error:
        print(f"EfficientNet-Lite0 skipped: {error}")
        return
    yield "EfficientNet-Lite0 (fine-tuned)", "efficientnet"


def run(backbone, setting, images, y, args):
    if backbone == "efficientnet":
        from skhash.deep import efficientnet_lite0

        backbone = efficientnet_lite0(freeze=False)
    hasher = HashNetHasher(
        32,
        backbone=backbone,
        input_shape=images.shape[1:],
        max_epochs=args.epochs,
        batch_size=64,
        lr=1e-4 if backbone != "cnn" else 1e-3,
        device=args.device,
        random_state=0,
        **SETTINGS[setting],
    )
    hasher.fit(images, y)
    durations = hasher.net_.history[:, "dur"]
    start = time.perf_counter()
    codes = hasher.transform(images)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    encode = time.perf_counter() - start
    return {
        "first": durations[0],
        "epoch": float(np.median(durations[1:])),
        "encode": encode,
        "loss": hasher.net_.history[-1, "train_loss"],
        "bits": unpack_codes(codes, 32),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=None, help="64 (CPU), 224 (GPU)")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-efficientnet", action="store_true")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=SETTINGS, help="settings left out"
    )
    parser.add_argument(
        "--efficientnet-images", type=int, default=None, help="128 (CPU), --images"
    )
    parser.add_argument(
        "--efficientnet-compile",
        action="store_true",
        help="compile EfficientNet on the CPU too (minutes of compilation)",
    )
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    size = args.size or (224 if cuda else 64)
    n_images = args.images or (2048 if cuda else 512)
    settings = [name for name in SETTINGS if name not in args.skip]
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if args.no_compile or (not cuda and compiler is None):
        settings = [name for name in settings if "compile" not in name]
    images, y = generated_images(n_images, size)
    where = torch.cuda.get_device_name() if cuda else cpu_name()
    print(
        f"device {args.device} ({where}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, load average "
        f"{os.getloadavg()[0]:.1f}; {n_images} images of {size} x {size}, "
        f"{args.epochs} epochs, {args.rounds} rounds\n"
    )
    for name, backbone in backbones(not args.no_efficientnet):
        data, labels, tried = images, y, settings
        if backbone == "efficientnet":
            count = args.efficientnet_images or (n_images if cuda else 128)
            data, labels = images[:count], y[:count]
            if not (cuda or args.efficientnet_compile):
                tried = [setting for setting in settings if "compile" not in setting]
        results = {setting: [] for setting in tried}
        for _ in range(args.rounds):
            for setting in tried:
                results[setting].append(run(backbone, setting, data, labels, args))
        print(f"### {name}, {len(data)} images\n")
        print(
            "| setting | s/epoch | x float32 | first epoch s | transform s "
            "| x float32 | last loss | bits equal to float32's |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        base = results["float32"]
        base_epoch = np.median([r["epoch"] for r in base])
        base_encode = np.median([r["encode"] for r in base])
        for setting in tried:
            runs = results[setting]
            epoch = np.median([r["epoch"] for r in runs])
            encode = np.median([r["encode"] for r in runs])
            first = np.median([r["first"] for r in runs])
            agree = np.mean(runs[0]["bits"] == base[0]["bits"])
            print(
                f"| {setting} | {epoch:.2f} | {epoch / base_epoch:.2f} | "
                f"{first:.1f} | {encode:.2f} | {encode / base_encode:.2f} | "
                f"{runs[0]['loss']:.4f} | {agree:.3f} |",
                flush=True,
            )
        print()


if __name__ == "__main__":
    main()
