"""Classical (shallow) hashers."""

from ._itq import CCAITQHasher, ITQHasher
from ._ksh import KSHHasher
from ._lsh import LSHHasher
from ._sign import SignHasher
from ._spectral import SpectralHasher
from ._ssh import SSHHasher
from ._sth import STHHasher

__all__ = [
    "CCAITQHasher",
    "ITQHasher",
    "KSHHasher",
    "LSHHasher",
    "SSHHasher",
    "STHHasher",
    "SignHasher",
    "SpectralHasher",
]
