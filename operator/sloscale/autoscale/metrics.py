"""Prometheus metrics source (adapter): runs the tick's batched PromQL, returns per-service data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sloscale.autoscale.promql import (
    SCRAPE_S,
    ServiceKey,
    ServiceMetrics,
    parse_vector,
    queries,
    snapshot_for,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """Every query's parsed vector at one instant, or the error that stopped the fetch."""

    time: float
    vectors: Mapping[str, Mapping[ServiceKey, float]] = field(default_factory=dict)
    error: str | None = None

    def for_service(self, key: ServiceKey, latency: str, stale_after_s: float) -> ServiceMetrics:
        if self.error is not None:
            return ServiceMetrics(None, "PrometheusUnavailable", self.error)
        return snapshot_for(key, self.vectors, latency, self.time, stale_after_s)


class PrometheusSource:
    """Reads every service's metrics with a constant number of queries per tick."""

    def __init__(self, url: str, window_s: float = 60.0, timeout_s: float = 10.0,
                 scrape_s: float = SCRAPE_S) -> None:
        from prometheus_api_client import PrometheusConnect  # heavy import: only when used

        self.url = url
        self.window_s = window_s
        self.timeout_s = timeout_s
        self.scrape_s = scrape_s
        from urllib3.util.retry import Retry

        # One quick retry: the next tick is the real retry, and a dead Prometheus must be
        # reported within a tick, not after a long backoff.
        self._client = PrometheusConnect(
            url=url,
            disable_ssl=not url.startswith("https"),
            retry=Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
            timeout=int(max(1, timeout_s)),
        )

    def fetch(self, now: float, window_s: float | None = None) -> Fetched:
        """Blocking: run every query at time `now`, rates over `window_s` (default: the
        source's). Never raises for Prometheus' failures."""
        vectors: dict[str, dict[ServiceKey, float]] = {}
        for name, query in queries(window_s or self.window_s, self.scrape_s).items():
            try:
                result = self._client.custom_query(
                    query=query, params={"time": now, "timeout": f"{self.timeout_s:g}s"}
                )
            except Exception as err:  # noqa: BLE001 - connection, HTTP and parse errors alike
                log.warning("Prometheus query %s failed: %s", name, err)
                return Fetched(now, error=self._describe(name, err))
            vectors[name] = parse_vector(_as_samples(result))
        return Fetched(now, vectors)

    def fetch_range(
        self, start: float, end: float, step_s: float, extra: dict[str, str] | None = None
    ) -> dict[str, list[dict]]:
        """Every query (and `extra` ones) over [start, end] at `step_s`: one call per query."""
        matrices = {}
        for name, query in {**queries(self.window_s, self.scrape_s), **(extra or {})}.items():
            result = self._client.custom_query_range(
                query=query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step_s:g}s",
            )
            matrices[name] = list(_as_samples(result))
        return matrices

    def _describe(self, query_name: str, err: Exception) -> str:
        text = str(err)
        if "Connection refused" in text or "NewConnectionError" in text:
            return f"cannot connect to Prometheus at {self.url} (connection refused)"
        if "timed out" in text.lower():
            return f"Prometheus at {self.url} did not answer within {self.timeout_s:g}s"
        return f"query {query_name} failed: {_short(err)}"

    async def fetch_async(self, now: float, window_s: float | None = None) -> Fetched:
        """The same, in a worker thread, so the operator's event loop never blocks on HTTP."""
        return await asyncio.to_thread(self.fetch, now, window_s)


def _as_samples(result: object) -> Iterable[Mapping[str, object]]:
    return result if isinstance(result, list) else []


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:300]
