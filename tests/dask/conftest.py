"""One local process cluster for the whole directory, and partitionings drawn by hypothesis.

Most property examples run on Dask's synchronous scheduler (the partitioning is what is
under test, and a process round trip per example would not fit the CI budget); every
engine also has a test that runs on the two-process cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import strategies as st

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402


@pytest.fixture(scope="session")
def cluster_client() -> Iterator[Any]:
    """A two-worker, one-thread-each LocalCluster of real processes, closed at the end."""
    with (
        dask.config.set({"distributed.admin.system-monitor.gil.enabled": False}),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit="1GiB",
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def on_cluster(cluster_client: Any) -> Iterator[Any]:
    """Computations in the test run on the process cluster."""
    with dask.config.set(scheduler=cluster_client):
        yield cluster_client


@pytest.fixture(scope="module")
def synchronous() -> Iterator[None]:
    """Dask's synchronous scheduler (the fixture lasts for the module, so hypothesis
    examples share it; the cluster tests switch to the cluster inside it)."""
    with dask.config.set(scheduler="synchronous"):
        yield


@st.composite
def cuts(draw: st.DrawFn, n: int, max_parts: int = 5) -> list[int]:
    """Partition boundaries over ``n`` rows: sorted, repeats allowed (empty partitions)."""
    inner = draw(st.lists(st.integers(0, n), min_size=0, max_size=max_parts - 1))
    return [0, *sorted(inner), n]


def partitioned(frame: pd.DataFrame, bounds: Sequence[int]) -> dd.DataFrame:
    """``frame`` as a Dask DataFrame with exactly these partitions (empty ones kept)."""
    pieces = [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    return dd.from_delayed(
        [dask.delayed(p) for p in pieces], meta=frame.iloc[:0], verify_meta=False
    )
