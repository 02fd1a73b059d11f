"""Unit tests of the metrics registry."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from chat_server.core.metrics import Metrics


def test_two_apps_metrics_live_side_by_side_without_clashing() -> None:
    first, second = Metrics(), Metrics()
    first.connections.inc()
    assert first.sample("chat_connections") == 1
    assert second.sample("chat_connections") == 0


def test_unknown_event_names_share_one_label() -> None:
    metrics = Metrics()
    for name in ("x" * 1000, "y", 42, None, "join"):
        metrics.event_received(name)
    labels = {
        labels["event"]
        for name, labels, _ in metrics.samples()
        if name == "chat_events_received_total"
    }
    assert labels == {"other", "join"}
    assert metrics.sample("chat_events_received_total", {"event": "other"}) == 4


def test_redis_state_starts_disabled_and_follows_what_it_is_told() -> None:
    metrics = Metrics()
    assert metrics.sample("chat_redis", {"chat_redis": "disabled"}) == 1
    metrics.set_redis_state("down")
    assert metrics.sample("chat_redis", {"chat_redis": "down"}) == 1
    assert metrics.sample("chat_redis", {"chat_redis": "disabled"}) == 0


def test_tracked_gauge_reads_its_value_at_scrape_time() -> None:
    metrics = Metrics()
    users = {"alice", "bob"}
    metrics.track(metrics.users, lambda: len(users))
    users.add("carol")
    assert metrics.sample("chat_users") == 3


def test_render_is_parseable_prometheus_text() -> None:
    metrics = Metrics()
    metrics.http_requests.labels("429").inc()
    metrics.rate_limited.labels("api").inc()
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert {"chat_http_requests", "chat_rate_limited", "chat_connections"} <= names
