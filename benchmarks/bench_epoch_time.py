"""Training time per epoch of the deep hashers, on the CPU or a GPU.

The retrieval benchmark's training set (5,000 Fashion-MNIST images, 500 per
class) and network (the small convolutional backbone on raw pixels), 32 bits,
batch 64; each hasher trains for two epochs and skorch's history gives their
mean duration. DSTH's time is its hash-training epoch (after the graph step)::

    python benchmarks/bench_epoch_time.py [--device cpu|cuda] [--epochs 2]
"""

import argparse

import numpy as np
import torch

from skhash import DNNHHasher, DSHHasher, DSTHHasher, HashNetHasher
from skhash.datasets import load_fashion_mnist, retrieval_split


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    X, y = load_fashion_mnist(return_X_y=True)
    split = retrieval_split(
        (X / 255).astype(np.float32),
        y,
        n_queries_per_class=100,
        n_train_per_class=500,
        random_state=0,
    )
    print(
        f"device {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print("| hasher | s/epoch |\n|---|---:|")
    for Hasher in (HashNetHasher, DSHHasher, DNNHHasher, DSTHHasher):
        hasher = Hasher(
            32,
            backbone="cnn",
            input_shape=(1, 28, 28),
            max_epochs=args.epochs,
            device=args.device,
            random_state=0,
        )
        labels = None if Hasher is DSTHHasher else split.y_train
        hasher.fit(split.X_train, labels)
        seconds = np.mean(hasher.net_.history[:, "dur"])
        print(f"| {Hasher.__name__} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
