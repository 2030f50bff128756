"""GridSearchCV of a hashing pipeline on the cluster, through joblib's Dask
backend: the same search as in one process."""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skhash import CCAITQHasher, HammingNeighbors

distributed = pytest.importorskip("distributed")
get_task_stream = distributed.get_task_stream


def test_grid_search_on_the_cluster_equals_local(client):
    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16, y[:600]

    def search(n_jobs):
        pipeline = Pipeline(
            [("hash", CCAITQHasher(random_state=0)), ("nn", HammingNeighbors())]
        )
        grid = {"hash__n_bits": [8, 16], "hash__reg": [0.01, 1.0]}
        return GridSearchCV(pipeline, grid, cv=3, n_jobs=n_jobs).fit(X, y)

    local = search(n_jobs=None)
    with parallel_backend("dask"), get_task_stream(client) as tasks:
        distributed = search(n_jobs=-1)
    assert distributed.best_params_ == local.best_params_
    np.testing.assert_array_equal(
        distributed.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    # The 12 fits (4 candidates x 3 folds) ran on the workers.
    workers = set(client.scheduler_info()["workers"])
    assert tasks.data and {task["worker"] for task in tasks.data} <= workers
