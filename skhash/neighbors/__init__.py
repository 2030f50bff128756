"""Hamming-space nearest neighbours."""
