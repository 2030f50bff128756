"""Optional search backends of HammingNeighbors: FAISS and torch.

Both give the same exact results as the compiled kernels, ties by database
index. Their libraries are imported only when the backend is asked for.

- ``faiss``: ``IndexBinaryFlat`` (an exhaustive scan with a heap that breaks
  ties by id). Its ``range_search`` keeps distances strictly below the radius,
  so it is called with ``radius + 1``.
- ``torch``: bits as +-1 floats, so that ``d = (n_bits - <q, x>) / 2`` comes
  out of one matrix product per block (GPU-friendly; exact, since +-1 and
  integer sums below ``2 ** 24`` are exact in float32 and in TF32). Each block
  keeps the ``k`` smallest keys ``d * n_codes + index``, which are distinct and
  order exactly by (distance, index), so ``topk`` needs no stable ties.
"""

import numpy as np

# Elements of one queries x codes block on the torch backend.
_TORCH_BLOCK = 1 << 22


def resolve(backend, device):
    """The backend and torch device that ``backend`` and ``device`` mean here.

    ``backend="auto"`` is the compiled kernels (numba), or torch when
    ``device="cuda"``. Raises ImportError for a missing optional library and
    ValueError for CUDA without a GPU.
    """
    if backend == "auto":
        backend = "torch" if device == "cuda" else "numba"
    if device == "cuda" and backend != "torch":
        raise ValueError(f'device="cuda" needs backend="torch", got {backend!r}.')
    if backend == "faiss":
        _import_faiss()
    if backend != "torch":
        return backend, "cpu"
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is a core dependency
        raise ImportError('backend="torch" needs PyTorch: pip install torch') from error
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ValueError('device="cuda" but torch.cuda.is_available() is False.')
    return backend, "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"


def _import_faiss():
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            'backend="faiss" needs FAISS: pip install faiss-cpu (or skhash[faiss]).'
        ) from error
    return faiss


def faiss_index(codes):
    """An IndexBinaryFlat over packed codes (built on demand, never pickled)."""
    faiss = _import_faiss()
    index = faiss.IndexBinaryFlat(8 * codes.shape[1])
    index.add(np.ascontiguousarray(codes))
    return index


def faiss_kneighbors(index, queries, k, *, exclude_self, n_jobs):
    faiss = _import_faiss()
    faiss.omp_set_num_threads(n_jobs)
    distances, indices = index.search(np.ascontiguousarray(queries), k + exclude_self)
    if exclude_self:
        # The k + 1 best of all codes, less the query itself when it is among
        # them, are exactly the k best of the others.
        own = indices == np.arange(len(queries))[:, None]
        own[~own.any(axis=1), -1] = True
        keep = ~own
        distances = distances[keep].reshape(len(queries), k)
        indices = indices[keep].reshape(len(queries), k)
    return distances.astype(np.int32), indices.astype(np.intp)


def faiss_radius_neighbors(index, queries, radius, *, exclude_self, n_jobs, by_dist):
    faiss = _import_faiss()
    faiss.omp_set_num_threads(n_jobs)
    limits, distances, indices = index.range_search(
        np.ascontiguousarray(queries), radius + 1
    )
    query_of = np.repeat(np.arange(len(queries)), np.diff(limits.astype(np.int64)))
    return _group(query_of, indices, distances, len(queries), exclude_self, by_dist)


def _group(query_of, indices, distances, n_queries, exclude_self, by_dist):
    """Per-query arrays ordered by index, or by (distance, index)."""
    if exclude_self:
        keep = indices != query_of
        query_of, indices, distances = query_of[keep], indices[keep], distances[keep]
    keys = (query_of, distances, indices) if by_dist else (query_of, indices)
    order = np.lexsort(keys[::-1])
    indices = indices[order].astype(np.intp)
    distances = distances[order].astype(np.int32)
    bounds = np.searchsorted(query_of[order], np.arange(n_queries + 1))
    pairs = [slice(bounds[i], bounds[i + 1]) for i in range(n_queries)]
    return [distances[s] for s in pairs], [indices[s] for s in pairs]


class TorchDatabase:
    """The database as +-1 floats on a torch device (built on demand)."""

    def __init__(self, codes, device):
        import torch

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

    def kneighbors(self, queries, k, *, exclude_self):
        torch = self.torch
        query_signs = self.to_signs(queries)
        rows, columns = self._blocks(len(queries))
        worst = (self.n_bits + 1) * self.n_codes
        out = []
        for r0 in range(0, len(queries), rows):
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
        return (keys // self.n_codes).astype(np.int32), keys % self.n_codes

    def radius_neighbors(self, queries, radius, *, exclude_self, by_dist):
        query_signs = self.to_signs(queries)
        rows, columns = self._blocks(len(queries))
        found = []
        for r0 in range(0, len(queries), rows):
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
        return _group(query_of, indices, distances, len(queries), exclude_self, by_dist)
