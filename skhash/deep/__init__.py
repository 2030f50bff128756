"""Deep hashers trained with PyTorch through skorch (imported when fitted)."""

from ._dsh import DSHHasher
from ._hashnet import HashNetHasher

__all__ = ["DSHHasher", "HashNetHasher"]
