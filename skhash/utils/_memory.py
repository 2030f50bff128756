"""The one working-memory budget: every temporary block of skhash (distance
blocks, projections, candidate buffers) is sized from it, so that memory
stays bounded whatever the data's size, by the same amount everywhere."""

# Bytes that the temporary arrays of one block of work may take.
WORKING_MEMORY = 64 * 2**20


def rows_within(bytes_per_row):
    """How many rows of ``bytes_per_row`` fit in the working memory (at least
    one; the budget is read at each call, so tests can shrink it)."""
    return max(1, WORKING_MEMORY // max(1, bytes_per_row))
