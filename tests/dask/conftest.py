"""One ``distributed.LocalCluster`` of two worker processes for the Dask tests.

Starting worker processes takes seconds, so the cluster is shared by the whole
session; a test that harms its cluster (killing a worker) starts its own.
"""

import pytest

pytest.importorskip("distributed")


def _local_cluster():
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: no clash, no warning
        memory_limit="2GiB",
    )


@pytest.fixture(scope="session")
def client():
    from distributed import Client

    with _local_cluster() as cluster, Client(cluster) as client:
        yield client


@pytest.fixture
def own_cluster():
    """A cluster of the test's own, to harm: ``(cluster, client)``, the client
    current for the test only."""
    from distributed import Client

    with (
        _local_cluster() as cluster,
        Client(cluster, set_as_default=False) as client,
        client.as_current(),
    ):
        yield cluster, client
