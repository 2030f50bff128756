"""``python -m skhash``: the retrieval benchmark on a bundled dataset."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
