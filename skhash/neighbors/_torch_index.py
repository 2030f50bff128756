"""torch as a search engine: matrix products on a device, for GPUs.

Bits become +-1 floats, so that distances come out of one ``addmm`` per tile
of queries x codes: ``d = n_bits / 2 - <q, x> / 2``. For the k nearest, the
same product gives each pair's key in its tile, ``scale * d + column``, with
``scale`` the power of two that keeps every key below ``2 ** 24``: exact in
float32 and in TF32 (+-1 inputs, sums of powers of two, integers under
``2 ** 24``), distinct in a row and in (distance, index) order, so ``topk``
needs no stable ties. Each query's k best of a tile become global keys ``d *
n_codes + index`` (int64), merged with its k best so far.

A search holds one tile buffer and each query's k best, so what it adds is
bounded, and each tile is two large operations, ``addmm`` and ``topk``: torch's
threads wait for each other at the end of each, and on a busy CPU a wait can
last a time slice, so the fewer per pair the better. The database signs
(``n_codes x n_bits`` float32, 4 bytes a bit) are built once per fitted
estimator and shared by every search; queries become signs a tile's rows at a
time.
"""

import numpy as np

from ..utils._memory import WORKING_MEMORY
from ._index import SearchIndex, group

# Elements of one queries x codes tile (4 bytes each), on the CPU and on a GPU:
# a quarter of the working memory (16 MiB). Halving it halves a search's memory
# and doubles its waits: 2 to 4x slower under load for k = 1000, where each
# tile also merges 1000 keys a query.
_TORCH_BLOCK = WORKING_MEMORY // 16
# Queries of a CPU tile: each tile of the database's signs serves that many;
# on a GPU a tile spans as many codes as keys allow.
_CPU_ROWS = 1024
# Float32 holds every integer below this exactly.
_EXACT = 1 << 24


class TorchIndex(SearchIndex):
    """The database as +-1 floats on a torch device."""

    def __init__(self, codes, device):
        import torch

        super().__init__(codes)
        self.torch = torch
        self.device = torch.device(device)
        self.n_bits = 8 * codes.shape[1]
        self.n_codes = len(codes)
        self.signs = self.to_signs(codes)
        self.half_bits = torch.tensor(self.n_bits / 2, device=self.device)
        # Keys scale * d + column stay below 2 ** 24 for d <= n_bits.
        self.scale = 1 << max(0, (_EXACT // (self.n_bits + 1)).bit_length() - 1)
        self.max_columns = max(1, min(self.n_codes, self.scale))
        self.key_offsets = torch.arange(
            self.max_columns, dtype=torch.float32, device=self.device
        ).add_(self.scale * self.n_bits / 2)

    @classmethod
    def check_available(cls):
        try:
            import torch  # noqa: F401
        except ImportError as error:
            raise ImportError(
                'backend="torch" needs PyTorch, which skhash\'s core install '
                "leaves out: pip install 'skhash[deep]' (or the PyTorch build "
                "for your GPU)."
            ) from error

    def to_signs(self, codes):
        bits = np.unpackbits(codes, axis=1).view(np.int8)
        bits *= 2
        bits -= 1
        return self.torch.from_numpy(bits).to(self.device, self.torch.float32)

    def _query_signs(self, queries, r0, r1):
        if queries is self.codes:
            return self.signs[r0:r1]
        return self.to_signs(queries[r0:r1])

    def _tiles(self, n_queries, k=0):
        """Queries and codes of a tile."""
        tile = _TORCH_BLOCK
        if self.device.type == "cuda":
            rows = tile // self.max_columns
        else:  # and each query's k best, merged once a tile, stay small
            rows = min(_CPU_ROWS, tile // max(1, 4 * k))
        rows = max(1, min(rows, n_queries))
        return rows, min(self.max_columns, max(k, tile // rows))

    def _distances(self, query_signs, c0, c1, out):
        """Distances of a tile as floats, written into ``out``."""
        return self.torch.addmm(
            self.half_bits, query_signs, self.signs[c0:c1].T, alpha=-0.5, out=out
        )

    def kneighbors(self, queries, k, *, n_jobs):
        torch = self.torch
        n_queries, n_codes, scale = len(queries), self.n_codes, self.scale
        rows, columns = self._tiles(n_queries, k)
        buffer = torch.empty(rows * columns, device=self.device)
        found = np.empty((n_queries, k), np.int64)
        for r0 in range(0, n_queries, rows):
            r1 = min(r0 + rows, n_queries)
            query_signs = self._query_signs(queries, r0, r1)
            best = torch.empty((r1 - r0, 0), dtype=torch.int64, device=self.device)
            for c0 in range(0, n_codes, columns):
                c1 = min(c0 + columns, n_codes)
                keys = torch.addmm(
                    self.key_offsets[: c1 - c0],
                    query_signs,
                    self.signs[c0:c1].T,
                    alpha=-scale / 2,
                    out=_tile(buffer, r1 - r0, c1 - c0),
                )
                top = keys.topk(min(k, c1 - c0), largest=False, sorted=False).values
                top = top.to(torch.int64)
                distances = top // scale
                # scale * d + column  ->  d * n_codes + c0 + column
                top += distances * (n_codes - scale) + c0
                best = torch.cat([best, top], dim=1)
                if best.shape[1] > k:
                    best = best.topk(k, largest=False, sorted=False).values
            found[r0:r1] = best.sort(dim=1).values.cpu().numpy()
        return (found // n_codes).astype(np.int32), (found % n_codes).astype(np.intp)

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        n_queries = len(queries)
        rows, columns = self._tiles(n_queries)
        buffer = self.torch.empty(rows * columns, device=self.device)
        found = []
        for r0 in range(0, n_queries, rows):
            r1 = min(r0 + rows, n_queries)
            query_signs = self._query_signs(queries, r0, r1)
            for c0 in range(0, self.n_codes, columns):
                c1 = min(c0 + columns, self.n_codes)
                distances = self._distances(
                    query_signs, c0, c1, _tile(buffer, r1 - r0, c1 - c0)
                )
                within = distances <= radius
                pairs = within.nonzero()
                found.append(
                    (
                        (pairs[:, 0] + r0).cpu().numpy(),
                        (pairs[:, 1] + c0).cpu().numpy(),
                        distances[within].cpu().numpy(),
                    )
                )
        query_of, indices, distances = (
            np.concatenate([f[i] for f in found]) for i in range(3)
        )
        return group(query_of, indices, distances, n_queries, by_dist)


def _tile(buffer, n_rows, n_columns):
    """A contiguous (n_rows, n_columns) view of a flat buffer: BLAS writes a
    product into it in place (into a strided view, torch adds a copy)."""
    return buffer[: n_rows * n_columns].view(n_rows, n_columns)
