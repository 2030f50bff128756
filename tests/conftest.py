"""Shared test configuration: the hypothesis profiles of the property tests.

CI (the default profile) is derandomized, so that a red run replays exactly
whoever runs it, and an unrelated change never turns CI red because
Hypothesis happened to find an old bug that day; finding new bugs is the long
profile's job (``HYPOTHESIS_PROFILE=long``). No example database in CI:
nothing is written to disk. ``deadline=None`` everywhere: numba compiles on
first use and the references are deliberately slow, so the time of one
example says nothing.
"""

import os

from hypothesis import settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, database=None
)
settings.register_profile("long", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
