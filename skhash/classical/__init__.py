"""Classical (shallow) hashers."""

from ._lsh import LSHHasher

__all__ = ["LSHHasher"]
