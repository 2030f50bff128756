"""Save and load fitted estimators safely, with skops.

:mod:`pickle` (and joblib) run arbitrary code while loading, so a pickled model
is only as safe as whoever made the file. `skops <https://skops.readthedocs.io>`_
stores an estimator as data and, when loading, builds only the types the caller
trusts. Every skhash estimator, fitted or not, alone or inside scikit-learn
pipelines, saves with ``skops.io.dump`` and loads with ``skops.io.load(file,
trusted=get_trusted_types())``; :func:`dump` and :func:`load` do the same in one
call. Outputs after a round trip are identical to the original's (a deep
hasher's, when it runs on the same device)::

    skops.io.dump(pipeline, "model.skops")
    pipeline = skops.io.load("model.skops", trusted=get_trusted_types())

A file holds NumPy arrays, built-in values and the estimators' own types,
nothing from numba or torch: the deep hashers keep their trained network as the
arrays of its ``state_dict`` and rebuild it from their parameters when loaded,
on the CPU where CUDA is not available. Needs the optional skops package:
``pip install 'skhash[skops]'``.

Parameters that are themselves Python objects are saved as they are, and the
file then carries their types, which skhash does not trust on your behalf:

- A deep hasher with a user-supplied ``torch.nn.Module`` as ``backbone`` (the
  pretrained :func:`skhash.deep.efficientnet_lite0` included) cannot be saved
  with skops, which raises ``TypeError``: module code cannot be rebuilt from
  data. Save it with pickle or joblib, and load such files only from sources
  you trust.
- A torch optimiser class as ``optimizer`` is saved as a reference to that
  class, e.g. ``"torch.optim.sgd.SGD"``: pass it in ``trusted`` to load.
- skorch ``callbacks`` are saved with their attributes; a callback that keeps
  torch objects after training (``LRScheduler`` keeps its scheduler) cannot be
  saved with skops.

``skops.io.get_untrusted_types(file=...)`` lists what a file needs trusted
before anything in it is built.

Trusted types do not make a file's values safe: its arrays may have been
damaged or rewritten, and compiled code indexes with some of them. Loading
checks what that code relies on (``HammingNeighbors``: its counts and shapes
against its codes, and its multi-index tables' ranges, permutations and a
digest of tables and codes), and raises ``ValueError`` for a file that fails,
so that a file that loads never crashes a later search. A file can still hold
any codes and labels, and an estimator loaded from it answers for those.
"""

__all__ = ["dump", "get_trusted_types", "load"]


def get_trusted_types():
    """Types skhash's estimators need trusted to load from a skops file.

    Everything else that a skhash estimator saves (NumPy arrays and scalars,
    built-in containers, scikit-learn objects) skops trusts by default; a file
    that carries a type trusted neither by default nor here fails to load with
    this list.

    Returns
    -------
    trusted_types : list of str
        Fully qualified names of skhash's public estimators and of the
        search core a fitted ``HammingNeighbors`` keeps, sorted; pass them as
        ``skops.io.load(file, trusted=...)``.

    See Also
    --------
    load : Loads a skops file trusting these types.

    Examples
    --------
    >>> from skhash.persistence import get_trusted_types
    >>> get_trusted_types()  # doctest: +NORMALIZE_WHITESPACE
    ['skhash.baselines.ClassifierCodes', 'skhash.classical._itq.CCAITQHasher',
     'skhash.classical._itq.ITQHasher', 'skhash.classical._ksh.KSHHasher',
     'skhash.classical._lsh.LSHHasher',
     'skhash.classical._sign.SignHasher',
     'skhash.classical._spectral.SpectralHasher',
     'skhash.classical._ssh.SSHHasher', 'skhash.classical._sth.STHHasher',
     'skhash.deep._csq.CSQHasher',
     'skhash.deep._dnnh.DNNHHasher', 'skhash.deep._dpn.DPNHasher',
     'skhash.deep._dsh.DSHHasher', 'skhash.deep._dsth.DSTHHasher',
     'skhash.deep._greedyhash.GreedyHashHasher',
     'skhash.deep._hashnet.HashNetHasher',
     'skhash.deep._orthohash.OrthoHashHasher',
     'skhash.neighbors._hamming_index.HammingIndex',
     'skhash.neighbors._hamming_neighbors.HammingNeighbors',
     'skhash.neighbors._rescoring.RescoringNeighbors']
    """
    from sklearn.base import BaseEstimator

    import skhash

    # The public estimators are exactly the top-level estimator classes (the
    # common tests check that), and listing them imports neither torch nor
    # numba, unlike walking every module.
    from skhash.neighbors import HammingIndex

    public = (getattr(skhash, name) for name in skhash.__all__)
    estimators = [
        cls
        for cls in public
        if isinstance(cls, type) and issubclass(cls, BaseEstimator)
    ]
    # The search core is no estimator, but a fitted HammingNeighbors keeps one.
    return sorted(
        f"{cls.__module__}.{cls.__name__}" for cls in [*estimators, HammingIndex]
    )


def dump(estimator, file):
    """Save an estimator (or a pipeline) in skops' format.

    Parameters
    ----------
    estimator : object
        A skhash estimator, fitted or not, or a scikit-learn object containing
        skhash estimators, such as a :class:`~sklearn.pipeline.Pipeline`.
    file : str, path-like or file object
        Where to write; ``.skops`` is the usual extension.

    See Also
    --------
    load : The inverse operation.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skhash import LSHHasher
    >>> from skhash.persistence import dump, load
    >>> X, _ = load_digits(return_X_y=True)
    >>> hasher = LSHHasher(n_bits=16, random_state=0).fit(X)
    >>> file = io.BytesIO()
    >>> dump(hasher, file)
    >>> _ = file.seek(0)
    >>> np.array_equal(load(file).transform(X), hasher.transform(X))
    True
    """
    _refuse_cluster_state(estimator)
    _skops_io().dump(estimator, file)


def _refuse_cluster_state(estimator):
    """A fitted estimator of :mod:`skhash.dask` (alone or inside a pipeline)
    holds references to its workers' memory, which no file can hold."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    for part in [estimator, *params.values()]:
        if type(part).__module__.startswith("skhash.dask.") and hasattr(
            part, "n_samples_fit_"
        ):
            raise TypeError(
                f"A fitted skhash.dask.{type(part).__name__} cannot be saved: its "
                "database is in the memory of its cluster's workers, not in the "
                "object. Save its codes (and labels) and fit it again where it "
                "is needed."
            )


def load(file, *, trusted=None):
    """Load a skops file, trusting skhash's types and those given.

    Parameters
    ----------
    file : str, path-like or file object
        A file written by :func:`dump` or ``skops.io.dump``.
    trusted : list of str or type, default=None
        Types to trust besides :func:`get_trusted_types`, for instance a torch
        optimiser class given as a deep hasher's ``optimizer``.

    Returns
    -------
    estimator : object
        The loaded object.

    Raises
    ------
    skops.io.exceptions.UntrustedTypesFoundException
        When the file carries a type that is not trusted; nothing in the file
        is built then.

    See Also
    --------
    dump : Saves an estimator.
    get_trusted_types : The types trusted here.

    Examples
    --------
    >>> import io
    >>> from sklearn.datasets import load_digits
    >>> from skhash import ITQHasher
    >>> from skhash.persistence import dump, load
    >>> X, _ = load_digits(return_X_y=True)
    >>> file = io.BytesIO()
    >>> dump(ITQHasher(n_bits=8, random_state=0).fit(X), file)
    >>> _ = file.seek(0)
    >>> load(file).transform(X[:3]).shape
    (3, 1)
    """
    return _skops_io().load(file, trusted=[*get_trusted_types(), *(trusted or [])])


def _skops_io():
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(
            "Saving and loading with skops needs the optional skops package: "
            "pip install 'skhash[skops]'."
        ) from error
    return skops.io
