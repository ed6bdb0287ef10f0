"""Loopback networking helpers the local stack shares (ports and readiness probes)."""

from __future__ import annotations

import contextlib
import socket
import urllib.error
import urllib.request

HOST = "127.0.0.1"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (from the kernel's ephemeral range)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1: all held bound until all are chosen (separate
    :func:`free_port` calls can return the same port twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers HTTP 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False
