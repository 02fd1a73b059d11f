"""A throwaway Redis Cluster of ``redis-server`` children on free ports, owned by the tests.

Each node is a ``RedisServer`` started with ``cluster-enabled yes``;
``redis-cli --cluster create`` then spreads the 16,384 slots over the
masters and, with ``replicas``, gives each master its replicas. Nodes are
stopped by pid like any other test Redis, and each keeps its
``nodes.conf`` in its own directory, so a killed node started again rejoins
the cluster it belonged to (as a replica, once its replica took over).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.ports import free_cluster_port
from tests.support.redis import RedisServer, redis_binary

__all__ = ["ClusterNode", "RedisClusterServers", "require_cluster_binaries"]

#: Milliseconds without an answer before the cluster calls a node failed; a
#: replica takes over a failed master about this long after it stopped.
NODE_TIMEOUT_MS = 1000


def require_cluster_binaries() -> None:
    """Skip without ``redis-server`` and ``redis-cli`` on PATH; under CI=true, fail instead."""
    if redis_binary() is not None and shutil.which("redis-cli") is not None:
        return
    reason = "a Redis Cluster needs redis-server and redis-cli (apt-get install redis-server)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: required under CI=true", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``: who a node is and what it serves."""

    node_id: str
    port: int
    master: bool
    failed: bool
    #: Slot ranges it serves, inclusive (masters only).
    slots: tuple[tuple[int, int], ...]

    def serves(self, slot: int) -> bool:
        """Whether this master holds ``slot``."""
        return any(low <= slot <= high for low, high in self.slots)


class RedisClusterServers:
    """``masters`` masters with ``replicas`` replicas each, on 127.0.0.1.

    :param masters: masters sharing the slots (3 is the smallest Redis allows).
    :param replicas: replicas per master; 0 leaves a master's death fatal to its slots.
    :param tls: a certificate for 127.0.0.1 and its key (the certificate is
        its own CA, ``certs.self_signed``): every node then also listens
        with TLS on a port of its own, and the cluster is formed, announced
        and linked over TLS (``tls-cluster``, ``tls-replication``); clients
        need no certificate. The plain ports stay open for the harness.
    """

    def __init__(
        self, masters: int = 3, replicas: int = 0, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.masters = masters
        self.replicas = replicas
        self.tls = tls
        config = (
            "cluster-enabled yes\n"
            "cluster-config-file nodes.conf\n"
            f"cluster-node-timeout {NODE_TIMEOUT_MS}\n"
            # a test's cluster is as likely to lose a master as to lose a replica
            "cluster-replica-validity-factor 0\n"
        )
        count = masters * (1 + replicas)
        # With TLS the cluster bus listens on the TLS port + 10,000.
        self.tls_ports = [free_cluster_port() for _ in range(count)] if tls else []
        self.nodes = [
            RedisServer(free_cluster_port(), config=config + self._tls_config(n))
            for n in range(count)
        ]

    def _tls_config(self, n: int) -> str:
        if self.tls is None:
            return ""
        cert, key = self.tls
        return (
            f"tls-port {self.tls_ports[n]}\n"
            f"tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {cert}\n"
            "tls-auth-clients no\ntls-cluster yes\ntls-replication yes\n"
        )

    @property
    def url(self) -> str:
        """The chat's ``REDIS_URL`` for this cluster (any node will do; the first).

        With TLS, ``rediss+cluster://`` to the first TLS port, trusting the
        certificate (redis-py's ``ssl_ca_certs`` in the query).
        """
        if self.tls is not None:
            return f"rediss+cluster://127.0.0.1:{self.tls_ports[0]}?ssl_ca_certs={self.tls[0]}"
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    @property
    def ports(self) -> list[int]:
        """Every node's port, masters and replicas, in start order."""
        return [node.port for node in self.nodes]

    def start(self, timeout: float = 30.0) -> None:
        """Start every node, form the cluster, and wait until it serves every slot."""
        for node in self.nodes:
            node.start()
        ports = self.tls_ports or self.ports
        addresses = [f"127.0.0.1:{port}" for port in ports]
        tls = ["--tls", "--cacert", str(self.tls[0])] if self.tls else []
        try:
            _cluster_cli(
                "create", *addresses, "--cluster-replicas", str(self.replicas), options=tls
            )
        except RuntimeError:
            self.close()
            raise
        self.wait_ok(timeout)

    def client(self, port: int) -> redis.Redis:
        """A plain client of one node (it answers MOVED for keys it does not hold)."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0)

    def running(self) -> list[RedisServer]:
        """The nodes whose process is alive."""
        return [node for node in self.nodes if node.running]

    def topology(self) -> list[ClusterNode]:
        """``CLUSTER NODES`` as one live node sees it."""
        for node in self.running():
            try:
                with self.client(node.port) as client:
                    text = client.execute_command("CLUSTER", "NODES")
            except redis.RedisError:
                continue
            return _parse_nodes(text.decode() if isinstance(text, bytes) else str(text))
        raise RuntimeError("no node of the cluster answers")

    def master_of(self, key: str) -> ClusterNode:
        """The master that serves ``key``'s slot now."""
        with self.client(self.running()[0].port) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for node in self.topology():
            if node.master and not node.failed and node.serves(slot):
                return node
        raise RuntimeError(f"no live master serves slot {slot}")

    def node(self, port: int) -> RedisServer:
        """The ``RedisServer`` listening on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def state(self, port: int) -> dict[str, str]:
        """``CLUSTER INFO`` of one node, as a dict."""
        with self.client(port) as client:
            text = client.execute_command("CLUSTER", "INFO")
        raw = text.decode() if isinstance(text, bytes) else str(text)
        pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
        return {key: value.strip() for key, value in pairs}

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every live node says ``cluster_state:ok`` with all slots served."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._ok(node.port) for node in self.running()):
                return
            if time.monotonic() > deadline:
                states = {node.port: self._state_or_error(node.port) for node in self.running()}
                raise RuntimeError(f"the cluster is not ok after {timeout} s: {states}")
            time.sleep(0.05)

    def wait_replicas_synced(self, timeout: float = 30.0) -> None:
        """Wait until every replica's link to its master is up (so it may take over)."""
        deadline = time.monotonic() + timeout
        while True:
            replicas = [n for n in self.topology() if not n.master and not n.failed]
            if all(self._synced(node.port) for node in replicas):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not in sync after {timeout} s")
            time.sleep(0.05)

    def wait_replicated(self, port: int, timeout: float = 10.0) -> None:
        """Wait until every replica of the master on ``port`` has all it wrote so far.

        Redis replicates asynchronously: a write the master acknowledged a
        moment before it died may be missing on the replica that takes over.
        A test that kills a master and checks what survived waits here first.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.client(port) as client:
                info = client.info("replication")
            offsets = [v["offset"] for k, v in info.items() if k.startswith("slave")]
            if offsets and all(o == info["master_repl_offset"] for o in offsets):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas of {port} still behind after {timeout} s: {info}")
            time.sleep(0.02)

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        self.node(port).kill()

    def wait_failover(self, dead: ClusterNode, timeout: float = 30.0) -> ClusterNode:
        """Wait until the killed master ``dead`` (as it was) is replaced; returns its heir.

        The live nodes must have flagged it failed, a former replica must serve
        its first slot, and every live node must say ``cluster_state:ok``.
        """
        deadline = time.monotonic() + timeout
        first = dead.slots[0][0]
        while True:
            nodes = self.topology()
            flagged = any(n.node_id == dead.node_id and n.failed for n in nodes)
            heir = next((n for n in nodes if n.master and not n.failed and n.serves(first)), None)
            if flagged and heir is not None and heir.node_id != dead.node_id:
                self.wait_ok(max(deadline - time.monotonic(), 0.1))
                return heir
            if time.monotonic() > deadline:
                raise RuntimeError(f"no replica took over from {dead.port} in {timeout} s")
            time.sleep(0.05)

    def reshard(self, source: str, target: str, slots: int) -> None:
        """Move ``slots`` slots from master ``source`` to master ``target`` (node ids).

        It runs ``redis-cli --cluster reshard``, which migrates the keys of
        each slot with ``MIGRATE`` while clients go on using them.
        """
        _cluster_cli(
            "reshard",
            f"127.0.0.1:{self.running()[0].port}",
            *("--cluster-from", source, "--cluster-to", target, "--cluster-slots", str(slots)),
        )

    def flushall(self) -> None:
        """Forget every key on every master, so each test starts from an empty cluster."""
        for node in self.topology():
            if node.master and not node.failed:
                with self.client(node.port) as client:
                    client.flushall()

    def close(self) -> None:
        """Stop every node and remove their directories."""
        for node in self.nodes:
            node.close()

    def _ok(self, port: int) -> bool:
        try:
            info = self.state(port)
        except redis.RedisError:
            return False
        return info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == "16384"

    def _synced(self, port: int) -> bool:
        try:
            with self.client(port) as client:
                link = client.info("replication").get("master_link_status")
        except redis.RedisError:
            return False
        return bool(link == "up")

    def _state_or_error(self, port: int) -> str:
        try:
            return self.state(port).get("cluster_state", "?")
        except redis.RedisError as exc:
            return f"error: {exc}"

    def __enter__(self) -> RedisClusterServers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cluster_cli(command: str, *args: str, options: list[str] | None = None) -> None:
    """``redis-cli [options] --cluster <command> ... --cluster-yes``; RuntimeError if it fails."""
    done = subprocess.run(
        ["redis-cli", *(options or []), "--cluster", command, *args, "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster {command} failed:\n{done.stdout}{done.stderr}")


def _parse_nodes(text: str) -> list[ClusterNode]:
    """``CLUSTER NODES`` lines: ``id host:port@bus flags master ping pong epoch link slots...``."""
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        port = int(fields[1].split("@", 1)[0].rsplit(":", 1)[1])
        ranges = []
        for spec in fields[8:]:
            if spec.startswith("["):  # a slot being migrated, not served yet
                continue
            low, _, high = spec.partition("-")
            ranges.append((int(low), int(high or low)))
        nodes.append(
            ClusterNode(
                node_id=fields[0],
                port=port,
                master="master" in flags,
                failed="fail" in flags or "fail?" in flags,
                slots=tuple(ranges),
            )
        )
    return nodes
