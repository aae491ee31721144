"""What answers on a node's Talos API port: nothing, Talos in maintenance mode, or a configured Talos.

A stand-in until the Talos API client exists: it tells the two Talos modes apart by TLS alone. In maintenance
mode apid serves a self-signed certificate and asks no client certificate, so a handshake without one succeeds
(and its HTTP/2 server then speaks first, with its SETTINGS frame); a configured node requires a client
certificate and rejects the handshake with an alert, which TLS 1.3 delivers just after the client's side of the
handshake completed. So the probe reads briefly after the handshake: data or silence means maintenance, an alert
or a close means configured. It sends nothing itself: unread data would turn the server's close into a reset
that can swallow the alert.
It cannot read the Talos version (`version` stays None); the Talos API client replaces `probe_talos` with a
probe that calls the Version API, keeping the `Probe` signature.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

TALOS_API_PORT = 50000
_CLIENT_CERT_REQUIRED = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE")
_ALERT_WAIT = 0.5
"""Seconds to wait after the handshake for a rejection; covers a round trip to any Hetzner location."""


class TalosState(StrEnum):
    DOWN = "down"
    """Nothing accepts connections on the port."""
    MAINTENANCE = "maintenance"
    """Talos without a config, waiting for one (insecure API)."""
    CONFIGURED = "configured"
    """Talos with a config: the API requires a client certificate."""
    UNKNOWN = "unknown"
    """Something listens but does not speak Talos' TLS."""


@dataclass(frozen=True)
class NodeProbe:
    state: TalosState
    version: str | None = None
    """The running Talos version, when the probe can read it."""
    detail: str = ""


Probe = Callable[[str, int, float], NodeProbe]
"""`probe(address, port, timeout)`: one look at the node, never raising for an unreachable node."""


def probe_talos(address: str, port: int = TALOS_API_PORT, timeout: float = 3.0) -> NodeProbe:
    """Look once at `address:port` and classify what answers (see the module docstring)."""
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError as error:
        return NodeProbe(TalosState.DOWN, detail=f"{address}:{port}: {error.strerror or type(error).__name__}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # identity is not the question here; no secret is sent
    context.set_alpn_protocols(["h2"])
    try:
        with context.wrap_socket(raw, server_hostname=None) as tls:
            tls.settimeout(min(timeout, _ALERT_WAIT))
            answer = tls.recv(9)
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        if any(marker in reason.upper() for marker in _CLIENT_CERT_REQUIRED):
            return NodeProbe(TalosState.CONFIGURED, detail=f"client certificate required ({reason})")
        return NodeProbe(TalosState.UNKNOWN, detail=f"TLS failed: {reason}")
    except TimeoutError:
        return NodeProbe(TalosState.MAINTENANCE, detail="TLS without client certificate accepted (server silent)")
    except OSError as error:
        return NodeProbe(TalosState.CONFIGURED, detail=f"connection dropped after the handshake ({error})")
    finally:
        raw.close()
    if not answer:  # closed right after the handshake: the client certificate we did not send was required
        return NodeProbe(TalosState.CONFIGURED, detail="closed the connection after the handshake")
    return NodeProbe(TalosState.MAINTENANCE, detail="TLS without client certificate accepted")
