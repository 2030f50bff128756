"""skhash: learning to hash with the scikit-learn API.

Hashers turn data into compact binary codes (``fit`` / ``transform``);
:class:`HammingNeighbors` searches them by Hamming distance; :mod:`skhash.metrics`
scores retrieval. Importing skhash does not import torch: the deep hashers load
it when they are fitted.
"""

from .baselines import ClassifierCodes
from .classical import (
    CCAITQHasher,
    ITQHasher,
    KSHHasher,
    LSHHasher,
    SignHasher,
    SpectralHasher,
    SSHHasher,
    STHHasher,
)
from .codes import hamming_distances, pack_codes, unpack_codes
from .deep import (
    CSQHasher,
    DNNHHasher,
    DPNHasher,
    DSHHasher,
    DSTHHasher,
    GreedyHashHasher,
    HashNetHasher,
    OrthoHashHasher,
)
from .neighbors import HammingNeighbors, RescoringNeighbors

__version__ = "0.1.0.dev0"

__all__ = [
    "CCAITQHasher",
    "CSQHasher",
    "ClassifierCodes",
    "DNNHHasher",
    "DPNHasher",
    "DSHHasher",
    "DSTHHasher",
    "GreedyHashHasher",
    "HammingNeighbors",
    "HashNetHasher",
    "ITQHasher",
    "KSHHasher",
    "LSHHasher",
    "OrthoHashHasher",
    "RescoringNeighbors",
    "SSHHasher",
    "STHHasher",
    "SignHasher",
    "SpectralHasher",
    "hamming_distances",
    "pack_codes",
    "unpack_codes",
    "__version__",
]
