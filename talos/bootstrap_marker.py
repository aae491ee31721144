"""The bootstrap marker: a note in each control plane's META partition that this cluster's etcd was bootstrapped.

It lives on the cluster, not in any IaC state, so a lost stack, a re-created bootstrap resource or a reinstalled
first control plane can tell a bootstrapped cluster from a new one (talos.api.waiting.bootstrap_once reads it).
META survives reboots, upgrades and resets that wipe STATE/EPHEMERAL; only rewriting the disk loses it.

Key MARKER_KEY (0x0e, Talos' `UserReserved3`: Talos leaves 0x0c-0x0e to users; the last one, so the first stay
free). Value: compact JSON `{"kind", "cluster", "node", "at"}`, never a secret: `cluster` is a short hash of
the secrets bundle's cluster id, `node` the control plane etcd was bootstrapped on (null when the cluster was
adopted without a marker), `at` the UTC time. A value this program did not write is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from common.waiting import Progress, no_progress
from talos.api.client import TalosClient
from talos.api.errors import TalosApiError
from talos.talosconfig import TalosContext

MARKER_KEY = 0x0E
KIND = "talos-hetzner/etcd-bootstrapped"
ATTEMPT_TIMEOUT = 5.0
WRITTEN, PRESENT = "written", "present"
OCCUPIED = f"left alone: META key 0x{MARKER_KEY:02x} holds a value this program did not write"


def cluster_fingerprint(cluster_id: str) -> str:
    """A short, one-way name for the cluster: tells clusters apart without revealing the cluster id."""
    return "sha256:" + hashlib.sha256(cluster_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BootstrapMarker:
    cluster: str
    """cluster_fingerprint of the cluster id."""
    node: str | None
    """The control plane etcd was bootstrapped on; None when unknown (adopted without a marker)."""
    at: str
    """When the marker was made (UTC, ISO 8601, seconds)."""

    @classmethod
    def new(cls, cluster_id: str, node: str | None) -> BootstrapMarker:
        return cls(cluster_fingerprint(cluster_id), node, datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def parse(cls, value: str | None) -> BootstrapMarker | None:
        """The marker in a META value; None when the value is missing or not a marker of this program."""
        try:
            data = json.loads(value) if value else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            return None
        return cls(str(data.get("cluster")), data.get("node"), str(data.get("at")))

    def encode(self) -> bytes:
        fields = {"kind": KIND, "cluster": self.cluster, "node": self.node, "at": self.at}
        return json.dumps(fields, separators=(",", ":")).encode()

    def describe(self) -> str:
        return f"bootstrapped on {self.node or 'an unknown control plane'}, marked {self.at}"


def read_marker(client: TalosClient, cluster: str) -> BootstrapMarker | None:
    """This cluster's marker on the client's node (`cluster` a fingerprint); another cluster's counts as none."""
    marker = BootstrapMarker.parse(client.meta_value(MARKER_KEY))
    return marker if marker is not None and marker.cluster == cluster else None


def spread_marker(
    control_planes: Mapping[str, str],
    credentials: TalosContext,
    fallback: BootstrapMarker,
    *,
    progress: Progress = no_progress,
) -> dict[str, str]:
    """Give every control plane (name -> endpoint) this cluster's marker: the one already on some control plane
    (it knows where etcd was bootstrapped), else `fallback`. One bounded attempt per node, never raising for a
    node: returns name -> WRITTEN, PRESENT, OCCUPIED or `not written (<why>)`."""
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(TalosClient(endpoint, credentials, timeout=ATTEMPT_TIMEOUT))
            for name, endpoint in control_planes.items()
        }
        values = {name: _value(client) for name, client in clients.items()}
        found = [BootstrapMarker.parse(v) for v in values.values() if isinstance(v, str)]
        marker = next((m for m in found if m is not None and m.cluster == fallback.cluster), fallback)
        outcomes = {name: _mark(clients[name], values[name], marker) for name in clients}
    for name, outcome in outcomes.items():
        progress(f"{name}: bootstrap marker {outcome}")
    return outcomes


def _value(client: TalosClient) -> str | TalosApiError | None:
    try:
        return client.meta_value(MARKER_KEY)
    except TalosApiError as err:
        return err


def _mark(client: TalosClient, value: str | TalosApiError | None, marker: BootstrapMarker) -> str:
    if isinstance(value, TalosApiError):
        return f"not written ({value.message})"
    found = BootstrapMarker.parse(value)
    if found is not None and found.cluster == marker.cluster:
        return PRESENT
    if value and found is None:
        return OCCUPIED
    try:
        client.meta_write(MARKER_KEY, marker.encode())
    except TalosApiError as err:
        return f"not written ({err.message})"
    return WRITTEN
