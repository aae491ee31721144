"""What answers on a node's Talos API port: nothing, Talos in maintenance mode (and which version), or a
configured Talos.

One Version call over the maintenance channel (TLS without a client certificate) tells them apart: a node in
maintenance mode answers it with its version; a configured node requires a client certificate and refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from talos.api.client import TalosClient
from talos.api.errors import CallTimeoutError, NodeConfiguredError, NodeUnreachableError, TalosApiError

TALOS_API_PORT = 50000


class TalosState(StrEnum):
    DOWN = "down"
    """Nothing accepts connections on the port."""
    MAINTENANCE = "maintenance"
    """Talos without a config, waiting for one (insecure API)."""
    CONFIGURED = "configured"
    """Talos with a config: the API requires a client certificate."""
    UNKNOWN = "unknown"
    """Something listens but does not speak the Talos API."""


@dataclass(frozen=True)
class NodeProbe:
    state: TalosState
    version: str | None = None
    """The running Talos version, when the probe can read it."""
    detail: str = ""


Probe = Callable[[str, int, float], NodeProbe]
"""`probe(address, port, timeout)`: one look at the node, never raising for an unreachable node."""


def talos_api_probe(address: str, port: int = TALOS_API_PORT, timeout: float = 3.0) -> NodeProbe:
    """One Version call over the maintenance channel: down, maintenance (with its version) or configured."""
    with TalosClient(f"{address}:{port}", timeout=timeout) as client:
        try:
            version = client.version()
        except NodeConfiguredError as error:
            return NodeProbe(TalosState.CONFIGURED, detail=error.message)
        except (NodeUnreachableError, CallTimeoutError) as error:
            return NodeProbe(TalosState.DOWN, detail=f"{address}:{port}: {error.message}")
        except TalosApiError as error:
            return NodeProbe(TalosState.UNKNOWN, detail=error.message)
    state = TalosState.CONFIGURED if version.configured else TalosState.MAINTENANCE
    return NodeProbe(state, version=version.tag or None, detail=f"Talos {version.tag} ({version.platform})")
