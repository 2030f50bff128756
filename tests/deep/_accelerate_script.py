"""Trains deep hashers data-parallel; launched by test_accelerate.py with
``torchrun --nproc-per-node 2`` (CPU processes, gloo).

Every process writes what it ended with (a hash of its weights, its number of
training batches) to ``<out>/rank<r>.json``; the main process alone saves the
trained hashers and their codes, as a user's script would.
"""

import hashlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from skhash import GreedyHashHasher, HashNetHasher

FAST = {"n_bits": 16, "max_epochs": 2, "batch_size": 16, "hidden_layer_sizes": (16,)}


def data():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:320], y[:320]


def digest(module):
    """A hash of a module's state (names and values)."""
    hashed = hashlib.sha256()
    for name, value in module.state_dict().items():
        hashed.update(name.encode())
        hashed.update(value.detach().cpu().numpy().tobytes())
    return hashed.hexdigest()


def main(out):
    import torch
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    X, y = data()
    report = {
        "rank": accelerator.process_index,
        "num_processes": accelerator.num_processes,
    }
    try:
        HashNetHasher(accelerator=accelerator, random_state=None, **FAST).fit(X, y)
    except ValueError as error:
        report["refused_without_seed"] = str(error)
    hashers = {
        "hashnet": HashNetHasher(accelerator=accelerator, random_state=0, **FAST),
        # The same fit again: the same seed gives the same model.
        "hashnet_again": HashNetHasher(accelerator=accelerator, random_state=0, **FAST),
        # Its loss has parameters, trained (and synchronised) with the network.
        "greedyhash": GreedyHashHasher(accelerator=accelerator, random_state=0, **FAST),
    }
    # A frozen backbone (only the head trains, on its features); each
    # process draws different weights: rank 0's are the ones trained with.
    torch.manual_seed(accelerator.process_index)
    backbone = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU())
    hashers["frozen"] = HashNetHasher(
        backbone=backbone.requires_grad_(False),
        accelerator=accelerator,
        random_state=0,
        **FAST,
    )
    for name, hasher in hashers.items():
        hasher.fit(X, y)
        report[name] = {
            "network": digest(hasher.net_.module_),
            "loss": digest(hasher.net_.criterion_),
            "batches": len(hasher.net_.history[-1, "batches"]),
        }
    (out / f"rank{accelerator.process_index}.json").write_text(json.dumps(report))
    if accelerator.is_main_process:
        for name, hasher in hashers.items():
            (out / f"{name}.pkl").write_bytes(pickle.dumps(hasher))
            np.save(out / f"{name}_codes.npy", hasher.transform(X))
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
