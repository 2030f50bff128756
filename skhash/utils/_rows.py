"""Training data as row blocks, for the hashers whose fit is sums over rows.

LSH, ITQ and CCA-ITQ learn only from sums over the training rows (means,
covariances, each ITQ iteration's ``B^T V``). They are written against
:class:`Rows`, so the same code fits on an in-memory array (one block) and,
through ``skhash.dask``, on partitions spread over a cluster, where each sum is
a reduction of the partitions' sums and no row leaves its worker.
"""


class Rows:
    """Row-aligned arrays (data, and labels when given) held in memory.

    A distributed counterpart implements the same three members over many
    blocks.
    """

    def __init__(self, *arrays):
        self.arrays = arrays

    @property
    def n_samples(self):
        return len(self.arrays[0])

    def reduce(self, statistic):
        """``statistic(*block)`` summed over the row blocks: a tuple of arrays
        (or numbers) that add up."""
        return statistic(*self.arrays)

    def map(self, function):
        """New rows ``function(*block)`` of every block (one array per block)."""
        return Rows(function(*self.arrays))


def column_sums(*arrays):
    """The statistic of means: each array's sum over its rows."""
    return tuple(array.sum(axis=0) for array in arrays)
