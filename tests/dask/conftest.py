"""One ``distributed.LocalCluster`` of two worker processes for the Dask tests.

Starting worker processes takes seconds, so the cluster is shared by the whole
session; a test that harms its cluster (killing a worker) starts its own.
"""

import pytest

pytest.importorskip("distributed")


@pytest.fixture(scope="session")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: no clash, no warning
            memory_limit="2GiB",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
