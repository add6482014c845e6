"""Reading Prometheus text the way Prometheus does, with prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample `name{labels}`, or None when there is none."""
    return samples(text).get((name, frozenset(labels.items())))


def requests(text: str, route: str, method: str, status: int) -> float:
    """How many `method route` requests were answered with `status`."""
    count = value(
        text, "bazaar_http_requests_total", route=route, method=method, status=str(status)
    )
    return count or 0.0
