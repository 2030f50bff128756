"""What a fitted search checks before it trusts its engines: that the database
still holds the codes it was fitted on.

The engines derive data from the codes once (the scan's word-major copy, the
multi-index tables) and keep it. Codes changed afterwards, in memory or in the
file a database is mapped from, would leave that data stale, and the engines
would disagree: a scan reading the file now, a copy or the tables what it held
before. A :class:`Snapshot` taken at fit is checked before every search, at the
cost of a ``stat`` and a few rows: a mapped file must keep its identity, size
and modification time, and sampled rows their bytes. It sees any rewrite
through the file system and most in-place changes; a change of a few rows
within one page already written since fit can escape it, which is why a
database must not be written to after fit (see ``HammingNeighbors.fit``).
"""

import hashlib
import os

import numpy as np

# Rows compared at each search: evenly spaced, first and last included.
_SAMPLED_ROWS = 16


def digest(*arrays):
    """A fingerprint of the arrays' shapes, dtypes and bytes (BLAKE2b).

    Not a signature: whoever writes a file can write a matching digest. It
    tells arrays saved together from arrays changed or mixed up since.
    """
    fingerprint = hashlib.blake2b(digest_size=16)
    for array in arrays:
        fingerprint.update(repr((array.shape, array.dtype.str)).encode())
        fingerprint.update(np.ascontiguousarray(array).data)
    return fingerprint.hexdigest()


class Snapshot:
    """A database's identity at fit, cheap to check again.

    Parameters
    ----------
    codes : ndarray of shape (n_codes, n_bytes), dtype uint8
        The database, in memory or mapped from a file.
    """

    def __init__(self, codes):
        rows = np.linspace(0, len(codes) - 1, _SAMPLED_ROWS).round().astype(np.intp)
        self.rows = np.unique(rows)
        self.sample = codes[self.rows].tobytes()
        self.path = mapped_path(codes)
        self.stat = None if self.path is None else _identity(self.path)
        # (path, identity) of files mapped as data derived from the codes.
        self.derived = []

    def watch(self, array):
        """Also check at each search the file that ``array``, data derived
        from the codes (multi-index tables reopened from a directory), is
        mapped from, if any: the kernels index with it."""
        path = mapped_path(array)
        if path is not None:
            self.derived.append((path, _identity(path)))

    def check(self, codes):
        """Raise ValueError if the codes are no longer those of the snapshot."""
        if self.path is not None and _identity(self.path) != self.stat:
            raise ValueError(
                f"The file mapped as the database, {self.path}, has changed "
                "since fit (its size, modification time or identity): the "
                "search would mix old and new codes. Fit again on the file as "
                "it is now (an index reopened by load_index: open it again)."
            )
        for path, identity in self.derived:
            if _identity(path) != identity:
                raise ValueError(
                    f"The file {path}, mapped as search tables, has changed "
                    "since it was opened: its tables may not fit the codes "
                    "any more. Open the saved index again."
                )
        if codes[self.rows].tobytes() != self.sample:
            raise ValueError(
                "The database codes have changed since fit (they are used in "
                "place, not copied): the search would mix old and new codes. "
                "Fit again after changing them."
            )


def mapped_path(array):
    """The file an array is mapped from (np.memmap, np.load(mmap_mode=...)),
    or None for an array in memory."""
    while array is not None:
        if isinstance(array, np.memmap) and array.filename is not None:
            return array.filename
        array = getattr(array, "base", None)
    return None


def _identity(path):
    try:
        stat = os.stat(path)
    except OSError as error:
        raise ValueError(
            f"The file mapped as the database, {path}, cannot be read any more "
            f"({error.strerror}). Fit again on the file as it is now (an index "
            "reopened by load_index: open it again)."
        ) from error
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns
