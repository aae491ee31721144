"""One gRPC connection to one node's apid (grpclib over `ssl`), and calls on it that fail with typed errors.

grpclib hides why a connection died and offers no hook between the TLS handshake and the first request;
`NodeChannel` adds both (a protocol that keeps the transport and the error it was lost with, and a
fingerprint check right after connecting), so a TLS rejection becomes a TlsIdentityError that says what
happened instead of an anonymous "connection lost". It relies on grpclib 0.4's `_create_connection` and
`_protocol_factory` (pinned in requirements.txt).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message
from grpclib.client import Channel, Handler
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from grpclib.protocol import H2Protocol

from talos.api.errors import (
    CallTimeoutError,
    NodeConfiguredError,
    NodeInMaintenanceError,
    NodeUnreachableError,
    TalosApiError,
    TlsIdentityError,
    error_for_status,
)
from talos.api.methods import Method
from talos.api.tls import is_maintenance_certificate, maintenance_context, spki_fingerprint

APID_PORT = 50000

# OpenSSL reasons for alerts a Go TLS server sends when it turns our client certificate down.
_NO_CERTIFICATE = ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE")
_BAD_CERTIFICATE = ("SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_UNKNOWN")


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port); port 50000 unless given."""
    text = endpoint.strip()
    if not text or "://" in text or any(c.isspace() for c in text):
        raise ValueError(f"endpoint {endpoint!r} is not a host or host:port (fix: give an IP or name, no scheme)")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or str(APID_PORT)
    elif text.count(":") > 1:
        ipaddress.IPv6Address(text)
        host, port = text, str(APID_PORT)
    else:
        host, _, port = text.partition(":")
        port = port or str(APID_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"endpoint {endpoint!r} has no valid port (fix: use host:port with a port in 1-65535)")
    return host, int(port)


class _Protocol(H2Protocol):
    """grpclib's client protocol, keeping the transport, whether the server spoke, and why it was lost."""

    transport: asyncio.BaseTransport | None = None
    lost_with: BaseException | None = None
    certificate: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.certificate = _server_certificate(transport)
        loop = asyncio.get_running_loop()
        self.server_spoke: asyncio.Future[bool] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.server_spoke.done():
            self.server_spoke.set_result(True)
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_with = exc
        if not self.server_spoke.done():
            self.server_spoke.set_result(False)
        self.closed.set_result(None)
        super().connection_lost(exc)


class _ClosedEarly(Exception):
    """The node ended the connection after the TLS handshake, before its HTTP/2 preface."""


class _NotPinned(Exception):
    """The server's certificate key is not one of the pinned fingerprints."""


_LOST = (_ClosedEarly, StreamTerminatedError, ProtocolError, ConnectionResetError, BrokenPipeError)
"""Errors of a connection that was up and went away: its `lost_with` tells why."""


class NodeChannel(Channel):
    """A grpclib channel to one node, with optional SPKI pinning of the server certificate."""

    def __init__(
        self,
        node: str,
        context: ssl.SSLContext,
        *,
        presents_certificate: bool = False,
        fingerprints: Sequence[str] = (),
    ) -> None:
        host, port = split_endpoint(node)
        super().__init__(host, port, ssl=context)
        self.node = node
        self.presents_certificate = presents_certificate
        self._fingerprints = tuple(fingerprints)
        self._last: _Protocol | None = None

    def _protocol_factory(self) -> H2Protocol:
        self._last = _Protocol(Handler(), self._config, self._h2_config)
        return self._last

    async def _create_connection(self) -> H2Protocol:
        """Connect, and wait for the server's HTTP/2 preface as grpc-go does before sending anything.

        A TLS server that turns our certificate down (or wants one) answers the handshake with an alert
        instead; waiting here lets that alert be read rather than lost in a write to a closed socket.
        """
        protocol = await super()._create_connection()
        assert isinstance(protocol, _Protocol)
        if not await protocol.server_spoke:
            raise _ClosedEarly()
        if self._fingerprints:
            fingerprint = spki_fingerprint(self.peer_certificate() or b"")
            if fingerprint not in self._fingerprints:
                if protocol.transport is not None:
                    protocol.transport.abort()
                raise _NotPinned(fingerprint)
        return protocol

    async def aclose(self, grace: float = 1.0) -> None:
        """Close the connection, waiting up to `grace` seconds for TLS to say goodbye, then cutting it."""
        last = self._last
        self.close()
        if last is None or last.transport is None or last.closed.done():
            return
        last.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(last.closed), grace)
        except TimeoutError:
            last.transport.abort()

    def pin_peer(self) -> None:
        """From now on accept only the server certificate key of the current connection."""
        certificate = self.peer_certificate()
        if certificate is not None:
            self._fingerprints = (spki_fingerprint(certificate),)

    def peer_certificate(self) -> bytes | None:
        """DER of the server certificate of the current (or last) connection."""
        return self._last.certificate if self._last else None

    def lost_with(self) -> BaseException | None:
        """The error the last connection died with, if it died."""
        return self._last.lost_with if self._last else None


async def call(
    channel: NodeChannel,
    method: Method,
    request: Message,
    *,
    timeout: float,
    metadata: Sequence[tuple[str, str]] = (),
) -> list[Any]:
    """Send one request and collect every reply message; any failure becomes a TalosApiError."""
    sent = False
    try:
        async with channel.request(
            method.path, method.cardinality, method.request, method.reply, timeout=timeout, metadata=metadata
        ) as stream:
            await stream.send_message(request, end=True)
            sent = True
            return [reply async for reply in stream]
    except (GRPCError, OSError, StreamTerminatedError, ProtocolError, _ClosedEarly, _NotPinned) as err:
        raise await _api_error(channel, method, err, sent=sent, timeout=timeout) from None


async def _api_error(
    channel: NodeChannel, method: Method, err: Exception, *, sent: bool, timeout: float
) -> TalosApiError:
    """The TalosApiError for whatever ended a call: a gRPC status, TLS, or the network."""
    node, name = channel.node, method.name
    if isinstance(err, GRPCError):
        return error_for_status(node, name, err.status, err.message or "")
    if isinstance(err, ssl.SSLCertVerificationError):
        return await _verification_error(channel, method, err)
    if isinstance(err, _NotPinned):
        message = f"the node's certificate key (fingerprint {err}) is not one of the pinned fingerprints"
        return TlsIdentityError(node, name, Status.UNAVAILABLE, message)
    lost_connection = isinstance(err, (*_LOST, ssl.SSLError))
    lost = err if isinstance(err, ssl.SSLError) else channel.lost_with() if lost_connection else None
    if isinstance(lost, ssl.SSLError):
        return _rejection_error(channel, method, lost)
    if isinstance(err, _ClosedEarly) and channel.presents_certificate:
        return TlsIdentityError(
            node,
            name,
            Status.UNAVAILABLE,
            "the node closed the connection right after the TLS handshake: it refused our client certificate "
            "(fix: use a client certificate from the cluster's talosconfig, with extended key usage ClientAuth)",
        )
    if isinstance(err, TimeoutError):
        if sent:
            return CallTimeoutError(node, name, Status.DEADLINE_EXCEEDED, f"no answer within {timeout:g}s")
        return NodeUnreachableError(node, name, Status.UNAVAILABLE, f"no connection within {timeout:g}s")
    if isinstance(err, _ClosedEarly):
        reason = "the node closed the connection during setup"
    elif lost_connection:
        reason = f"connection lost ({err or type(err).__name__})"
    else:
        reason = os.strerror(err.errno) if isinstance(err, OSError) and err.errno else str(err) or type(err).__name__
    return NodeUnreachableError(node, name, Status.UNAVAILABLE, reason)


def _rejection_error(channel: NodeChannel, method: Method, err: ssl.SSLError) -> TalosApiError:
    """The node ended the TLS session: it wants a client certificate, or refuses ours."""
    reason = err.reason or ""
    if reason in _NO_CERTIFICATE and not channel.presents_certificate:
        return NodeConfiguredError(
            channel.node,
            method.name,
            Status.UNAVAILABLE,
            "the node requires a client certificate: it is configured (fix: use the cluster's talosconfig)",
        )
    if reason in _BAD_CERTIFICATE or reason in _NO_CERTIFICATE:
        return TlsIdentityError(
            channel.node,
            method.name,
            Status.UNAVAILABLE,
            f"the node refused our client certificate ({reason}): not issued by this node's OS CA, or not a "
            "client certificate (fix: use the talosconfig of the cluster this node belongs to)",
        )
    return TlsIdentityError(channel.node, method.name, Status.UNAVAILABLE, f"TLS failed: {reason or err}")


async def _verification_error(
    channel: NodeChannel, method: Method, err: ssl.SSLCertVerificationError
) -> TlsIdentityError:
    """Why the server certificate failed: maintenance mode, another cluster's CA, or another name."""
    if err.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return TlsIdentityError(
            channel.node,
            method.name,
            Status.UNAVAILABLE,
            f"the node's certificate does not name {channel._host} ({err.verify_message}; fix: dial an address "
            "the node's apid certificate lists, or add it to machine.certSANs)",
        )
    if await _serves_maintenance_certificate(channel):
        return NodeInMaintenanceError(
            channel.node,
            method.name,
            Status.UNAVAILABLE,
            "the node is in maintenance mode (self-signed certificate, no machine config yet; fix: apply a "
            "config over the maintenance channel first)",
        )
    return TlsIdentityError(
        channel.node,
        method.name,
        Status.UNAVAILABLE,
        f"the node's certificate is not signed by the cluster's OS CA ({err.verify_message}): it belongs to "
        "another cluster or is not a Talos node (fix: use the talosconfig of the cluster this node belongs to)",
    )


async def _serves_maintenance_certificate(channel: NodeChannel) -> bool:
    """Look at the server certificate once without verifying it (diagnosis only, nothing is sent)."""
    loop = asyncio.get_running_loop()
    try:
        transport, peek = await asyncio.wait_for(
            loop.create_connection(_Peek, channel._host, channel._port, ssl=maintenance_context()), timeout=5
        )
    except (OSError, TimeoutError):
        return False
    transport.abort()
    return bool(peek.certificate) and is_maintenance_certificate(peek.certificate)


class _Peek(asyncio.Protocol):
    """Takes the server certificate at the end of the handshake, then lets the connection go."""

    certificate: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.certificate = _server_certificate(transport)


def _server_certificate(transport: asyncio.BaseTransport) -> bytes | None:
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object.getpeercert(binary_form=True) if ssl_object else None
