"""A Robot account's state: webservice login, stored SSH keys, request limits, failed logins.

Limits are the documented ones (hetzner.md §1.2): per endpoint group and per hour; over a limit the
webservice answers 403 RATE_LIMIT_EXCEEDED with `max_request` and `interval`. Three failed logins from
one address block it for ten minutes (§1.1).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from lab.ratelimit import SlidingWindow

LIMITS: dict[str, int] = {
    "server": 200,
    "ip": 5000,
    "boot": 500,
    "reset": 500,
    "reset_post": 50,
    "key": 500,
    "key_post": 200,
}
"""Requests per interval, by endpoint group."""


@dataclass(frozen=True)
class RobotKey:
    """An SSH key stored in Robot."""

    name: str
    fingerprint: str
    type: str
    size: int
    data: str
    created_at: str

    def reference(self) -> dict[str, object]:
        """The short form used inside rescue objects."""
        return {"name": self.name, "fingerprint": self.fingerprint, "type": self.type, "size": self.size}

    def full(self) -> dict[str, object]:
        return {**self.reference(), "data": self.data, "created_at": self.created_at}


def parse_robot_key(name: str, data: str) -> RobotKey:
    """A key from an OpenSSH public key line; raises ValueError for anything else."""
    text = data.strip()
    key = load_ssh_public_key(text.encode())
    if isinstance(key, ed25519.Ed25519PublicKey):
        kind, size = "ED25519", 256
    elif isinstance(key, rsa.RSAPublicKey):
        kind, size = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, size = "ECDSA", key.curve.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        kind, size = "DSA", key.key_size
    else:
        raise ValueError("unsupported key type")
    blob = base64.b64decode(text.split()[1])
    fingerprint = ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return RobotKey(name, fingerprint, kind, size, " ".join(text.split()[:2]), created)


@dataclass
class RobotAccount:
    """One webservice user and what Robot keeps for it."""

    user: str
    password: str = field(repr=False)
    interval: float = 3600.0
    limits: dict[str, int] = field(default_factory=lambda: dict(LIMITS))
    block_after: int = 3
    block_for: float = 600.0

    def __post_init__(self) -> None:
        self.keys: dict[str, RobotKey] = {}
        self._windows: dict[str, SlidingWindow] = {}
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.keys.clear()
            self._windows.clear()
            self._failures.clear()

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < self.block_for]
            self._failures[client] = recent
            return len(recent) >= self.block_after

    def failed_login(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(time.monotonic())

    def acquire(self, group: str) -> bool:
        """Count one request of `group`; False when the group is over its limit."""
        with self._lock:
            window = self._windows.setdefault(group, SlidingWindow(self.limits[group], self.interval))
        return window.acquire()
