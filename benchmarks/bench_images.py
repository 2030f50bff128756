"""Training and encoding throughput of HashNet on a folder of PNG files:
skhash against a hand-written PyTorch loop (issue #22).

**Images**: the first Fashion-MNIST training images (``--images``, 256 by
default; ``--quick``: 64), upscaled to 64 x 64 (Pillow, bilinear) and
coloured: each image is ``grey * ink + (1 - grey) * paper`` with an ink and a
paper colour drawn per image (seed 0), written as 8-bit RGB PNG files to a
cache folder (``--cache-dir``, made once, reused). Labels: Fashion-MNIST's 10
classes.

**The two contenders**, with the same model, optimizer, DataLoader settings,
transforms and loss:

- *skhash*: ``HashNetHasher(32, backbone=efficientnet_lite0(freeze=...),
  augmentation=imagenet_augmentation(64),
  preprocessing=imagenet_preprocessing(64), batch_size=64, lr=1e-4,
  num_workers=2, max_epochs=1, device="cpu")``, ``fit(paths, y)`` then
  ``transform(paths)``;
- *plain*: the loop a user would write: a ``Dataset`` that opens each PNG
  with Pillow, scales it to [0, 1] and applies the same skhash transforms; a
  ``DataLoader(batch_size=64, shuffle=True, num_workers=2)``;
  ``nn.Sequential(backbone, nn.Linear(1280, 32))`` with the backbone built by
  the same call; Adam at the same learning rate; HashNet's loss, skhash's own
  module (``skhash.deep._losses.WeightedPairwiseCrossEntropy``, private) with
  the same continuation of beta (every 200 iterations); encoding an eval
  loop under ``torch.no_grad`` with the preprocessing, then
  ``np.packbits(outputs >= 0)``.

**Rows** (``--modes``): ``finetune`` (``freeze=False``: every weight trains)
and ``frozen`` (``freeze=True``: with an augmentation the backbone runs in
eval mode at each step and only the head trains). A ResNet-18 (torchvision,
random weights: throughput does not depend on them) is added to the
backbones where ``torchvision`` imports, and skipped with a message where it
does not.

``--device cuda --size 224 --precision bfloat16`` gives the rows of a GPU:
both contenders on that device, under ``torch.autocast`` (float16: with a
gradient scaler in both).

Three parts (``--parts``, all by default):

**Overhead** (one process, ``num_workers=0``): what skhash itself costs,
with a backbone that costs next to nothing (8 x 8 average pooling and a
linear layer) in place of EfficientNet: CPU milliseconds per image of the
training loader alone (skhash's ``StreamedData`` loader, private, against
the plain ``DataLoader``), of ``fit`` and of ``transform``, median of
``--repeats`` alternating rounds after an untimed one.

**Speed** (one process): a warm-up (three training steps and two encoding
batches of a throwaway model of the same backbone: the first steps of a
fresh process are several times slower), then ``--repeats`` rounds, each
fitting one epoch and encoding all the images with both contenders, the
order alternating from round to round; each fit gets a freshly built
pretrained backbone (built outside the timing). Reported: images per second
of the median round and skhash / plain; the median of each round's ratio
(its two runs adjacent in time, under about the same load); the ratio of
the best rounds; and the CPU seconds (the process and its reaped DataLoader
workers) per image. A check: the plain encoding loop, given skhash's
trained network, gives the codes ``transform`` gives.

**Memory** (fine-tuning): one child process per contender and number of
images (``--memory-images``, by default ``--images``, and
``--memory-factor`` = 4 times it), each warming up, resetting its
peak (Linux's ``/proc/self/clear_refs``), fitting one epoch and encoding,
then reporting its peak resident memory (``resource.getrusage``'s
``ru_maxrss``) for itself and for its DataLoader workers
(``RUSAGE_CHILDREN``: the largest worker; a forked worker's resident pages
are mostly the parent's, shared).

Usage::

    python benchmarks/bench_images.py [--quick] [--parts overhead speed memory]
        [--modes finetune frozen] [--images 256] [--repeats 7]
        [--memory-images 256] [--threads N] [--json raw.json]

Results: benchmarks/results/images.md.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BACKBONES = ("efficientnet-lite0", "resnet18")
MODES = ("finetune", "frozen")
KINDS = ("skhash", "plain")
STEPS = ("fit", "encode", "fit_cpu", "encode_cpu")


# --- The images --------------------------------------------------------------


def make_images(folder, n_images, size):
    """``n_images`` coloured, upscaled Fashion-MNIST PNG files in ``folder``
    (written once, reused), their paths and labels."""
    from PIL import Image

    from skhash.datasets import load_fashion_mnist

    folder = Path(folder) / f"fashion_mnist_rgb_{size}"
    folder.mkdir(parents=True, exist_ok=True)
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    paths = [folder / f"{i:06d}.png" for i in range(n_images)]
    missing = [i for i, path in enumerate(paths) if not path.exists()]
    if missing:
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        ink = rng.integers(0, 256, size=(len(X), 3))  # the same draws each run
        paper = rng.integers(0, 256, size=(len(X), 3))
        for i in missing:
            grey = Image.fromarray(X[i].reshape(28, 28).astype(np.uint8))
            grey = np.asarray(grey.resize((size, size), Image.BILINEAR), np.float32)
            weight = (grey / 255)[..., None]
            rgb = weight * ink[i] + (1 - weight) * paper[i]
            image = Image.fromarray(np.round(rgb).astype(np.uint8), mode="RGB")
            # Written under another name, then renamed: never half a file.
            partial = paths[i].with_suffix(".part.png")
            image.save(partial)
            os.replace(partial, paths[i])
        print(
            f"wrote {len(missing)} PNG files to {folder} "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    return np.array([str(path) for path in paths], dtype=object), y[:n_images]


# --- The models ----------------------------------------------------------------


def torchvision_missing():
    """Why the ResNet-18 row cannot run here, or None where it can."""
    try:
        import torchvision  # noqa: F401
    except Exception as error:  # ImportError, or a torch/torchvision mismatch
        return f"{type(error).__name__}: {error}"
    return None


def make_backbone(name, freeze):
    from skhash.deep import efficientnet_lite0, torchvision_backbone

    if name == "efficientnet-lite0":
        return efficientnet_lite0(freeze=freeze)
    from torchvision.models import resnet18

    return torchvision_backbone(resnet18(weights=None), freeze=freeze)


def transforms(size):
    from skhash.deep import imagenet_augmentation, imagenet_preprocessing

    return imagenet_augmentation(size), imagenet_preprocessing(size)


# --- skhash --------------------------------------------------------------------


def skhash_fit(backbone, paths, y, args):
    from skhash import HashNetHasher

    augmentation, preprocessing = transforms(args.size)
    hasher = HashNetHasher(
        args.n_bits,
        backbone=backbone,
        augmentation=augmentation,
        preprocessing=preprocessing,
        num_workers=args.num_workers,
        batch_size=args.batch_size,
        lr=args.lr,
        max_epochs=args.epochs,
        device=args.device,
        precision=args.precision,
        random_state=args.seed,
    )
    return hasher.fit(paths, y)


def skhash_encode(hasher, paths, args):
    return hasher.transform(paths)


# --- The plain PyTorch loop ----------------------------------------------------


class PNGDataset:
    """Image ``i``: the PNG file read with Pillow, as a float (C, H, W)
    tensor in [0, 1] through ``transform``, and its one-hot label."""

    def __init__(self, paths, targets, transform):
        self.paths, self.targets, self.transform = paths, targets, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        import torch
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            array = np.array(image.convert("RGB"), dtype=np.uint8)
        pixels = torch.from_numpy(array).permute(2, 0, 1).float().div_(255)
        target = 0 if self.targets is None else self.targets[index]
        return self.transform(pixels), target


def plain_fit(backbone, paths, y, args):
    import torch
    from torch import nn

    from skhash.deep._losses import WeightedPairwiseCrossEntropy

    torch.manual_seed(args.seed)
    augmentation, _ = transforms(args.size)
    targets = np.eye(int(y.max()) + 1, dtype=np.float32)[y]
    loader = torch.utils.data.DataLoader(
        PNGDataset(paths, targets, augmentation),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
        pin_memory=args.device.startswith("cuda"),
    )
    model = nn.Sequential(backbone, nn.Linear(backbone.out_features, args.n_bits))
    model = model.to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = WeightedPairwiseCrossEntropy(alpha=10 / args.n_bits)
    device_type = torch.device(args.device).type
    scaler = torch.amp.GradScaler(device_type, enabled=args.precision == "float16")
    gamma, power, step_size = 0.005, 0.5, 200  # HashNetHasher's defaults
    iteration, losses = 0, []
    for _ in range(args.epochs):
        model.train()
        for images, labels in loader:
            images = images.to(args.device, non_blocking=True)
            labels = labels.to(args.device, non_blocking=True)
            if iteration % step_size == 0:
                criterion.beta = (1 + gamma * iteration) ** power
            optimizer.zero_grad()
            with autocast(device_type, args.precision):
                loss = criterion(model(images).float(), labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
            iteration += 1
    return model


def autocast(device_type, precision):
    """The plain loop's mixed precision: torch.autocast, or nothing."""
    import contextlib

    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=getattr(torch, precision))


def plain_encode(model, paths, args):
    import torch

    _, preprocessing = transforms(args.size)
    loader = torch.utils.data.DataLoader(
        PNGDataset(paths, None, preprocessing),
        batch_size=args.batch_size,
        shuffle=False,
        num_workers=args.num_workers,
        pin_memory=args.device.startswith("cuda"),
    )
    model.eval()
    device_type = torch.device(args.device).type
    codes = []
    with torch.no_grad(), autocast(device_type, args.precision):
        for images, _ in loader:
            outputs = model(images.to(args.device, non_blocking=True))
            codes.append(np.packbits(outputs.float().cpu().numpy() >= 0, axis=1))
    return np.concatenate(codes)


FIT = {"skhash": skhash_fit, "plain": plain_fit}
ENCODE = {"skhash": skhash_encode, "plain": plain_encode}


# --- Measuring -----------------------------------------------------------------


def warm_up(backbone_name, freeze, args):
    """A few training steps and encoding batches of a throwaway model of the
    same backbone, at the benchmark's batch shape."""
    import torch
    from torch import nn

    from skhash.deep._losses import WeightedPairwiseCrossEntropy

    start = time.perf_counter()
    backbone = make_backbone(backbone_name, freeze)
    model = nn.Sequential(backbone, nn.Linear(backbone.out_features, args.n_bits))
    model = model.to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = WeightedPairwiseCrossEntropy(alpha=10 / args.n_bits)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(args.batch_size, 3, args.size, args.size, generator=generator)
    images = images.to(args.device)
    labels = torch.eye(10)[torch.arange(args.batch_size) % 10].to(args.device)
    device_type = torch.device(args.device).type
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        with autocast(device_type, args.precision):
            loss = criterion(model(images).float(), labels)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad(), autocast(device_type, args.precision):
        for _ in range(2):
            model(images)
    return time.perf_counter() - start


def cpu_seconds():
    """CPU time of this process and of its children reaped so far (the
    DataLoader workers, joined when a loader is done)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function, *arguments):
    """``function(*arguments)``, its wall and CPU seconds."""
    start, cpu = time.perf_counter(), cpu_seconds()
    result = function(*arguments)
    return result, time.perf_counter() - start, cpu_seconds() - cpu


def one_run(kind, backbone_name, freeze, paths, y, args):
    """Fit one epoch and encode every image: the model, the codes and the
    wall and CPU seconds of each."""
    backbone = make_backbone(backbone_name, freeze)
    model, fit_s, fit_cpu = timed(FIT[kind], backbone, paths, y, args)
    codes, encode_s, encode_cpu = timed(ENCODE[kind], model, paths, args)
    seconds = {"fit": fit_s, "encode": encode_s}
    seconds |= {"fit_cpu": fit_cpu, "encode_cpu": encode_cpu}
    return model, codes, seconds


def bench_speed(backbone_name, mode, paths, y, args):
    freeze = mode == "frozen"
    seconds = warm_up(backbone_name, freeze, args)
    print(f"\n{backbone_name}, {mode}: warm-up {seconds:.1f} s", flush=True)
    times = {kind: {step: [] for step in STEPS} for kind in KINDS}
    check = None
    for repeat in range(args.repeats):
        order = KINDS if repeat % 2 == 0 else KINDS[::-1]
        for kind in order:
            model, codes, seconds = one_run(kind, backbone_name, freeze, paths, y, args)
            for step in STEPS:
                times[kind][step].append(seconds[step])
            print(
                f"  round {repeat}, {kind}: fit {seconds['fit']:.2f} s "
                f"(CPU {seconds['fit_cpu']:.2f} s), encode {seconds['encode']:.2f} "
                f"s (CPU {seconds['encode_cpu']:.2f} s); load "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if kind == "skhash" and check is None:
                # The plain loop's encoding of skhash's network: the same codes.
                plain_codes = plain_encode(model.net_.module_, paths, args)
                check = bool(np.array_equal(plain_codes, codes))
                print(f"  plain encoding of skhash's network equal: {check}")
    medians = {
        kind: {step: float(np.median(values)) for step, values in steps.items()}
        for kind, steps in times.items()
    }
    return {"times": times, "medians": medians, "check": check}


def tiny_backbone(size):
    """A backbone that costs next to nothing: 8 x 8 average pooling and one
    linear layer, so that a fit's time is the framework's and the images'."""
    from torch import nn

    backbone = nn.Sequential(
        nn.AvgPool2d(8), nn.Flatten(), nn.Linear(3 * (size // 8) ** 2, 64), nn.ReLU()
    )
    backbone.out_features = 64
    return backbone


def loader_only(kind, paths, y, args):
    """Every training batch of one epoch, with no model: skhash's loader
    (private: ``StreamedData``, what ``fit`` iterates) or the plain one."""
    import torch

    from skhash.deep._images import PathImages, StreamedData

    augmentation, _ = transforms(args.size)
    targets = np.eye(int(y.max()) + 1, dtype=np.float32)[y]
    torch.manual_seed(args.seed)
    if kind == "skhash":
        data = StreamedData(
            PathImages(paths),
            targets=targets,
            transform=augmentation,
            seeded=True,
            num_workers=args.num_workers,
        )
        loader = data.loader(args.batch_size, training=True)
    else:
        loader = torch.utils.data.DataLoader(
            PNGDataset(paths, targets, augmentation),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.num_workers,
        )
    return sum(len(images) for images, _ in loader)


def bench_overhead(paths, y, args):
    """skhash's own cost: fit and encode with a backbone that costs next to
    nothing, and the training loaders alone, all in this process
    (``num_workers=0``), CPU seconds per image (after one untimed run of
    each, which imports skorch and the rest)."""
    quiet = argparse.Namespace(**{**vars(args), "num_workers": 0})

    def fit_and_encode(kind):
        backbone = tiny_backbone(args.size)
        model, _, fit_cpu = timed(FIT[kind], backbone, paths, y, quiet)
        _, _, encode_cpu = timed(ENCODE[kind], model, paths, quiet)
        return {"fit": fit_cpu, "encode": encode_cpu}

    def loader(kind):
        return {"training loader": timed(loader_only, kind, paths, y, quiet)[2]}

    results = {}
    for run in (loader, fit_and_encode):
        cpu = {kind: [] for kind in KINDS}
        for kind in KINDS:
            run(kind)  # untimed
        for repeat in range(args.repeats):
            for kind in KINDS if repeat % 2 == 0 else KINDS[::-1]:
                cpu[kind].append(run(kind))
        for case in cpu["skhash"][0]:
            results[case] = {
                kind: 1000 * float(np.median([v[case] for v in values])) / len(paths)
                for kind, values in cpu.items()
            }
            print(f"  {case}: CPU ms per image {results[case]}", flush=True)
    return results


def print_overhead(results, args):
    print(
        "\n### Overhead: a backbone that costs next to nothing, num_workers=0, "
        f"batch {args.batch_size}, median CPU ms per image\n"
    )
    print("| what | skhash | plain | skhash - plain |")
    print("|---|---:|---:|---:|")
    for case, values in results.items():
        print(
            f"| {case} | {values['skhash']:.3f} | {values['plain']:.3f} "
            f"| {values['skhash'] - values['plain']:.3f} |"
        )


def set_threads(threads):
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def child_main(spec):
    """One contender's fit and encoding in this process; prints its peaks."""
    import gc

    from _machine import reset_peak, status_mib  # beside this script

    args = argparse.Namespace(**spec["args"])
    set_threads(args.threads)
    paths, y = make_images(args.cache_dir, spec["n_images"], args.size)
    warm_up(spec["backbone"], spec["freeze"], args)
    gc.collect()
    warm_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The peak of the fit and the encoding, not the warm-up's.
    reset = reset_peak()
    before = status_mib("VmRSS")
    _, _, seconds = one_run(
        spec["kind"], spec["backbone"], spec["freeze"], paths, y, args
    )
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    seconds |= {
        "warm_up_peak_mib": warm_kib / 1024,
        "peak_reset": reset,
        "before_mib": before,
        "self_mib": self_kib / 1024,
        "workers_mib": workers_kib / 1024,
    }
    print(json.dumps(seconds))


def bench_memory(backbone_name, n_images, args):
    rows = []
    shared = {k: v for k, v in vars(args).items() if k not in ("parts",)}
    for n in n_images:
        for kind in KINDS:
            spec = {
                "kind": kind,
                "backbone": backbone_name,
                "freeze": False,
                "n_images": n,
                "args": shared,
            }
            start = time.perf_counter()
            child = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True,
                text=True,
            )
            if child.returncode:
                raise RuntimeError(f"child failed:\n{child.stderr[-3000:]}")
            result = json.loads(child.stdout.strip().splitlines()[-1])
            result |= {"kind": kind, "n_images": n}
            rows.append(result)
            print(
                f"  {kind}, {n} images: fit {result['fit']:.1f} s, encode "
                f"{result['encode']:.1f} s, peak {result['self_mib']:.0f} MiB, "
                f"workers {result['workers_mib']:.0f} MiB "
                f"({time.perf_counter() - start:.0f} s in all)",
                flush=True,
            )
    return rows


# --- Report --------------------------------------------------------------------


def machine_line():
    import PIL
    import skorch
    import torch
    from _machine import cpu_name  # beside this script

    cpu = cpu_name()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), skorch "
        f"{skorch.__version__}, Pillow {PIL.__version__}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )


def print_speed(results, n_images):
    print(
        f"\n### Speed: one epoch and one encoding of {n_images} images, "
        "median of the rounds\n"
    )
    print(
        "| backbone | mode | step | skhash img/s | plain img/s | skhash / plain "
        "| median of round ratios | best / best | skhash CPU ms/img "
        "| plain CPU ms/img | plain / skhash CPU |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (backbone, mode), result in results.items():
        m, times = result["medians"], result["times"]
        for step in ("fit", "encode"):
            rate = {kind: n_images / m[kind][step] for kind in KINDS}
            cpu = {kind: 1000 * m[kind][step + "_cpu"] / n_images for kind in KINDS}
            # Each round's two runs are adjacent in time: their ratio sees
            # the same load.
            paired = np.median(np.divide(times["plain"][step], times["skhash"][step]))
            best = min(times["plain"][step]) / min(times["skhash"][step])
            print(
                f"| {backbone} | {mode} | {'train' if step == 'fit' else step} "
                f"| {rate['skhash']:.1f} | {rate['plain']:.1f} "
                f"| {rate['skhash'] / rate['plain']:.3f} | {paired:.3f} "
                f"| {best:.3f} | {cpu['skhash']:.1f} | {cpu['plain']:.1f} "
                f"| {cpu['plain'] / cpu['skhash']:.3f} |"
            )
    print("\nWall seconds of each round (skhash; plain):\n")
    for (backbone, mode), result in results.items():
        for step in ("fit", "encode"):
            rounds = "; ".join(
                ", ".join(f"{s:.1f}" for s in result["times"][kind][step])
                for kind in KINDS
            )
            print(f"- {backbone}, {mode}, {step}: {rounds}")
    checks = {key: result["check"] for key, result in results.items()}
    print(f"\nplain encoding of skhash's trained network gives its codes: {checks}")


def print_memory(rows):
    print("\n### Peak resident memory (one child process per row), fine-tuning\n")
    reset = all(row["peak_reset"] for row in rows)
    print(
        "| contender | images | train img/s | encode img/s | MiB after warm-up "
        "| peak MiB, fit + encode | largest worker peak MiB "
        "| peak MiB with the warm-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        n = row["n_images"]
        before = "" if row["before_mib"] is None else f"{row['before_mib']:.0f}"
        print(
            f"| {row['kind']} | {n} | {n / row['fit']:.1f} "
            f"| {n / row['encode']:.1f} | {before} | {row['self_mib']:.0f} "
            f"| {row['workers_mib']:.0f} | {row['warm_up_peak_mib']:.0f} |"
        )
    if not reset:
        print("\n(/proc/self/clear_refs unavailable: the peaks include the warm-up)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["overhead", "speed", "memory"],
        choices=["overhead", "speed", "memory"],
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument(
        "--memory-images",
        type=int,
        default=None,
        help="the smaller number of images of the memory part (default: --images)",
    )
    parser.add_argument("--memory-factor", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--n-bits", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    # A GPU's rows: --device cuda --size 224 --precision bfloat16 (or float16,
    # with a gradient scaler in both contenders).
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "bfloat16", "float16"]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "skhash-bench-images"),
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads of the training process (default: torch's)",
    )
    parser.add_argument("--json", help="also write the raw times to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    set_threads(args.threads)
    if args.images is None:
        args.images = 64 if args.quick else 256
    if args.repeats is None:
        args.repeats = 1 if args.quick else 7
    started = time.perf_counter()
    print(machine_line())
    print(f"command: python benchmarks/bench_images.py {' '.join(sys.argv[1:])}")
    if args.memory_images is None:
        args.memory_images = args.images
    largest = args.images
    if "memory" in args.parts:
        largest = max(largest, args.memory_images * args.memory_factor)
    paths, y = make_images(args.cache_dir, largest, args.size)
    paths, y = paths[: args.images], y[: args.images]
    backbones = ["efficientnet-lite0"]
    why_not = torchvision_missing()
    if why_not is None:
        backbones.append("resnet18")
    else:
        print(f"ResNet-18 rows skipped: torchvision does not import ({why_not})")
    speed, memory, overhead = {}, {}, {}
    if "overhead" in args.parts:
        print("\noverhead (tiny backbone):", flush=True)
        overhead = bench_overhead(paths, y, args)
    if "speed" in args.parts:
        for backbone in backbones:
            for mode in args.modes:
                speed[backbone, mode] = bench_speed(backbone, mode, paths, y, args)
    if "memory" in args.parts:
        sizes = [args.memory_images, args.memory_images * args.memory_factor]
        for backbone in backbones:
            print(f"\n{backbone}, memory:", flush=True)
            memory[backbone] = bench_memory(backbone, sizes, args)
    print()
    print(machine_line())
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if overhead:
        print_overhead(overhead, args)
    if speed:
        print_speed(speed, args.images)
    for backbone, rows in memory.items():
        print(f"\n{backbone}:")
        print_memory(rows)
    if args.json:
        raw = {
            "speed": [
                {"backbone": backbone, "mode": mode, **result}
                for (backbone, mode), result in speed.items()
            ],
            "memory": memory,
            "overhead": overhead,
            "images": args.images,
        }
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
