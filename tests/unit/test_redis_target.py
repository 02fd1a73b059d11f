"""REDIS_URL read once into a RedisTarget: one Redis or a cluster, TLS or not."""

from __future__ import annotations

import pytest

from chat_server.core.settings import ConfigError, RedisTarget, Settings


@pytest.mark.parametrize(
    ("raw", "url", "cluster", "tls"),
    [
        ("redis://h:6379/2", "redis://h:6379/2", False, False),
        ("rediss://h:6380", "rediss://h:6380", False, True),
        ("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1", False, False),
        ("redis+cluster://h:7000", "redis://h:7000", True, False),
        ("rediss+cluster://u:pw@h:7000/0", "rediss://u:pw@h:7000/0", True, True),
    ],
)
def test_a_redis_url_names_one_redis_or_a_cluster(
    raw: str, url: str, cluster: bool, tls: bool
) -> None:
    target = RedisTarget.parse(raw)
    assert (target.url, target.cluster, target.tls) == (url, cluster, tls)


def test_a_cluster_url_with_a_database_other_than_0_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL: a Redis Cluster has database 0 only"):
        RedisTarget.parse("redis+cluster://h:7000/3")


def test_settings_hand_out_the_target_of_their_url() -> None:
    assert Settings().redis is None
    target = Settings(redis_url="redis+cluster://h:7000").redis
    assert target is not None
    assert target.cluster
