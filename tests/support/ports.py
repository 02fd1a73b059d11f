"""Free TCP ports on 127.0.0.1 for servers started by the tests."""

from __future__ import annotations

import random
import socket

__all__ = ["free_cluster_port", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it, so two callers rarely get the same one; the tiny race
    between closing this socket and the server binding it is accepted.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_cluster_port() -> int:
    """A free port for a Redis Cluster node: at most 55535, with port + 10000 free too.

    A cluster node also listens on its port plus 10,000 (the cluster bus), so
    the kernel's pick from the ephemeral range (often above 55535) will not
    do; ports are drawn at random below that and both checked.
    """
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 55536)
        if _bindable(port) and _bindable(port + 10000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
