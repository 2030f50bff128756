"""Torch devices, handled once: what ``device="auto"`` means on this machine,
where a loaded network runs, and how a device is named in a report. torch is
imported by these functions only, when they are called."""

import platform


def cuda_available():
    import torch

    return torch.cuda.is_available()


def resolve_device(device):
    """``"auto"``: CUDA when this machine has it, else the CPU; any other
    device as given."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    return device


def loading_device(device, trained_on):
    """Where a loaded network runs: with ``device="auto"``, this machine's
    choice (a Dask worker with a GPU encodes there, wherever the network was
    trained); otherwise the training device, or the CPU where CUDA is not
    available (or the default GPU where the training one, e.g. a
    data-parallel run's ``cuda:3``, does not exist)."""
    import torch

    if device == "auto":
        return resolve_device(device)
    device = str(trained_on)
    if not device.startswith("cuda"):
        return device
    if not torch.cuda.is_available():
        return "cpu"
    if torch.device(device).index not in (None, *range(torch.cuda.device_count())):
        return "cuda"
    return device


def device_name(device):
    """A device with its hardware, e.g. ``"cuda (NVIDIA H100)"``."""
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({platform.processor() or platform.machine()})"
