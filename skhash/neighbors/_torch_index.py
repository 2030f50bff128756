"""torch as a search engine: matrix products on a device, for GPUs.

Bits become +-1 floats, so that ``d = (n_bits - <q, x>) / 2`` comes out of one
matrix product per block (exact: +-1 and integer sums below ``2 ** 24`` are
exact in float32 and in TF32). Each block keeps the ``k`` smallest keys
``d * n_codes + index``, which are distinct and order exactly by (distance,
index), so ``topk`` needs no stable ties.
"""

import numpy as np

from ._index import SearchIndex, group

# Elements of one queries x codes block.
_TORCH_BLOCK = 1 << 22


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

    def to_signs(self, codes):
        bits = self.torch.from_numpy(np.unpackbits(codes, axis=1)).to(self.device)
        return bits.to(self.torch.float32) * 2 - 1

    def _blocks(self, n_queries):
        rows = max(1, min(n_queries, _TORCH_BLOCK // max(1, self.n_codes)))
        columns = max(1, min(self.n_codes, _TORCH_BLOCK // rows))
        return rows, columns

    def _distances(self, query_signs, c0, c1):
        dots = query_signs @ self.signs[c0:c1].T
        return ((self.n_bits - dots) / 2).round().to(self.torch.int64)

    def kneighbors(self, queries, k, *, n_jobs):
        torch = self.torch
        exclude_self = queries is None
        query_signs = self.signs if exclude_self else self.to_signs(queries)
        n_queries = len(query_signs)
        rows, columns = self._blocks(n_queries)
        worst = (self.n_bits + 1) * self.n_codes
        out = []
        for r0 in range(0, n_queries, rows):
            block = query_signs[r0 : r0 + rows]
            best = torch.empty((len(block), 0), dtype=torch.int64, device=self.device)
            for c0 in range(0, self.n_codes, columns):
                c1 = min(c0 + columns, self.n_codes)
                index = torch.arange(c0, c1, device=self.device)
                keys = self._distances(block, c0, c1) * self.n_codes + index
                if exclude_self:
                    own = torch.arange(r0, r0 + len(block), device=self.device)
                    hit = (own >= c0) & (own < c1)
                    keys[hit.nonzero()[:, 0], own[hit] - c0] = worst + own[hit]
                keys = torch.cat([best, keys], dim=1)
                best = keys.topk(min(k, keys.shape[1]), largest=False).values
            out.append(best.sort(dim=1).values.cpu())
        keys = torch.cat(out).numpy()
        distances = (keys // self.n_codes).astype(np.int32)
        return distances, (keys % self.n_codes).astype(np.intp)

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        exclude_self = queries is None
        query_signs = self.signs if exclude_self else self.to_signs(queries)
        n_queries = len(query_signs)
        rows, columns = self._blocks(n_queries)
        found = []
        for r0 in range(0, n_queries, rows):
            block = query_signs[r0 : r0 + rows]
            for c0 in range(0, self.n_codes, columns):
                c1 = min(c0 + columns, self.n_codes)
                distances = self._distances(block, c0, c1)
                pairs = (distances <= radius).nonzero()
                found.append(
                    (
                        (pairs[:, 0] + r0).cpu().numpy(),
                        (pairs[:, 1] + c0).cpu().numpy(),
                        distances[pairs[:, 0], pairs[:, 1]].cpu().numpy(),
                    )
                )
        query_of, indices, distances = (
            np.concatenate([f[i] for f in found]) for i in range(3)
        )
        return group(query_of, indices, distances, n_queries, exclude_self, by_dist)
