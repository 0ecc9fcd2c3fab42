"""A ResultsOnly task end to end over a real hub's relay: the pods run it in workers and
the modeller combines the results."""

from __future__ import annotations

import pandas as pd

from podium.algorithms.sql import SqlQuery
from podium.algorithms.statistics import Statistics
from podium.protocols.results_only import ResultsOnly
from tests.protocols.conftest import Federation, frames


async def test_a_sql_aggregate_runs_on_every_pod_and_matches_pandas(federation: Federation) -> None:
    """Each pod answers its own GROUP BY; the stacked answer equals pandas per pod."""
    data = frames(2)
    async with federation.pods(data) as pods:
        query = (
            'SELECT sex, COUNT(*) AS n, AVG(age) AS mean_age FROM "{table}" '
            "GROUP BY sex ORDER BY sex"
        )
        factories = {pod: SqlQuery(query=query.format(table=pod.split("/")[1])) for pod in pods}
        for pod in pods:
            outcome = await federation.modeller().run_async(
                ResultsOnly(algorithm=factories[pod]), [pod]
            )
            assert outcome.pods[pod].outcome == "completed", outcome.pods[pod].reason
            table = outcome.result.combined[0].per_pod[pod]
            expected = (
                data[pod.split("/")[1]]
                .groupby("sex")
                .agg(n=("age", "size"), mean_age=("age", "mean"))
                .reset_index()
            )
            pd.testing.assert_frame_equal(table.reset_index(drop=True), expected, check_dtype=False)


async def test_statistics_across_pods_equal_the_pooled_data(federation: Federation) -> None:
    """The federated mean and count over three pods are those of the concatenated data."""
    data = frames(3)
    async with federation.pods(data) as pods:
        outcome = await federation.modeller().run_async(
            ResultsOnly(algorithm=Statistics(columns=["age", "hours"])), pods
        )
    assert outcome.completed == tuple(pods)
    table = outcome.result.combined[0].combined.set_index("column")
    pooled = pd.concat(data.values(), ignore_index=True)
    assert table.loc["age", "count"] == len(pooled)
    assert abs(table.loc["hours", "mean"] - pooled["hours"].mean()) < 1e-9
    assert table.loc["age", "max"] == pooled["age"].max()
