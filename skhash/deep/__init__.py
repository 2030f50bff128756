"""Deep hashers trained with PyTorch through skorch (imported when fitted)."""

from ._dnnh import DNNHHasher
from ._dsh import DSHHasher
from ._dsth import DSTHHasher
from ._hashnet import HashNetHasher

__all__ = ["DNNHHasher", "DSHHasher", "DSTHHasher", "HashNetHasher"]
