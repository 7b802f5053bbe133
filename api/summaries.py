"""What the server keeps of a Datastream from its Observations: the span of their phenomenon
and result times, and the convex hull of their features (observedArea).

A write collects what its Observations add and remove; `apply` brings the Datastreams up to
date once, before the commit. Additions only widen (no Observation is read again);
a removal at an edge, or of the last Observation of a feature, recomputes from the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.queries import query


@dataclass(frozen=True)
class Seen:
    """The parts of one Observation its Datastream's summary depends on."""

    datastream: int
    phenomenon: datetime
    phenomenon_end: datetime | None
    result_time: datetime | None
    feature: int | None


@dataclass
class Summaries:
    added: list[Seen] = field(default_factory=list)
    removed: list[Seen] = field(default_factory=list)
    refresh: set[int] = field(default_factory=set)

    def mark(self) -> tuple[int, int, frozenset[int]]:
        return len(self.added), len(self.removed), frozenset(self.refresh)

    def restore(self, mark: tuple[int, int, frozenset[int]]) -> None:
        """Forget what came after `mark` (its savepoint was rolled back)."""
        del self.added[mark[0]:]
        del self.removed[mark[1]:]
        self.refresh = set(mark[2])

    async def apply(self, conn: Any) -> None:
        """Bring every touched Datastream's times and area up to date."""
        refresh = set(self.refresh) | await self._edges(conn)
        if refresh:
            await conn.execute(query("datastreams", "refresh_datastream_times"), list(refresh))
        areas = refresh | await self._features_gone(conn)
        if areas:
            await conn.execute(query("datastreams", "refresh_datastream_areas"), list(areas))
        if self.added:
            added = self.added
            await conn.execute(
                query("datastreams", "extend_datastream_times"),
                [s.datastream for s in added], [s.phenomenon for s in added],
                [s.phenomenon_end for s in added], [s.result_time for s in added])
            with_feature = [s for s in added if s.feature is not None]
            if with_feature:
                await conn.execute(
                    query("datastreams", "extend_datastream_areas"),
                    [s.datastream for s in with_feature], [s.feature for s in with_feature])
        self.added, self.removed, self.refresh = [], [], set()

    async def _edges(self, conn: Any) -> set[int]:
        """Datastreams a removed Observation bounded in time."""
        if not self.removed:
            return set()
        spans = {r["id"]: r for r in await conn.fetch(
            query("api_write", "datastream_spans"),
            list({s.datastream for s in self.removed}))}
        edges = set()
        for seen in self.removed:
            span = spans.get(seen.datastream)
            if span is None:
                continue
            end = seen.phenomenon_end or seen.phenomenon
            if seen.phenomenon == span["phenomenon_time_start"] \
                    or end == span["phenomenon_time_end"] \
                    or (seen.result_time is not None
                        and seen.result_time in (span["result_time_start"],
                                                 span["result_time_end"])):
                edges.add(seen.datastream)
        return edges

    async def _features_gone(self, conn: Any) -> set[int]:
        """Datastreams that no longer observe a feature a removed Observation had."""
        gone = set()
        for datastream, feature in {(s.datastream, s.feature) for s in self.removed}:
            if feature is not None and not await conn.fetchval(
                    query("api_write", "feature_still_observed"), datastream, feature):
                gone.add(datastream)
        return gone
