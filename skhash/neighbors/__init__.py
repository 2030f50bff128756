"""Nearest-neighbour search in Hamming space."""

from ._hamming_neighbors import HammingNeighbors

__all__ = ["HammingNeighbors"]
