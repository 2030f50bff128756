"""The deep extra: torch and skorch, or an ImportError that says how to get them.

skhash's core install leaves PyTorch and skorch out, so that the classical
hashers, the search and the metrics install light; the deep hashers import
them through :func:`require_deep` at each entry that needs them (``fit``,
loading a fitted network, the backbone helpers), never at import time.
"""

import importlib


def require_deep(what, extras=("deep",)):
    """Import torch and skorch and return torch.

    Parameters
    ----------
    what : str
        What needs them, the subject of the error message
        (``"HashNetHasher.fit"``).
    extras : tuple of str, default=("deep",)
        The extras of skhash that the message tells to install.

    Raises
    ------
    ImportError
        When either is missing (or a module they import), naming the
        ``pip install`` that provides them. A torch that is installed but fails
        to load (a missing shared library, say) raises its own error.
    """
    try:
        # torch first, so that the message names it when both are missing.
        torch = importlib.import_module("torch")
        importlib.import_module("skorch")
    except ModuleNotFoundError as error:
        raise ImportError(
            f"{what} needs PyTorch and skorch, which skhash's core install leaves "
            f"out (no module named {error.name!r}): "
            f"pip install 'skhash[{','.join(extras)}]'. On a machine with a GPU, "
            "install its PyTorch build first (https://pytorch.org/get-started)."
        ) from error
    return torch
