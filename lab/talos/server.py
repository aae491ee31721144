"""apid's listening socket for a lab node: TLS by mode, gRPC (grpclib) underneath, faults on demand.

- maintenance: the self-signed maintenance certificate, no client certificate asked;
- configured: the apid certificate from the OS CA; a client certificate chaining to the accepted CAs is
  required (OpenSSL sends the TLS 1.3 `certificate_required` alert when none comes, as Go does), and, as
  apid's extra check, the client certificate's extended key usage must be exactly ClientAuth. OpenSSL offers
  no hook inside the handshake for that check, so such a connection is aborted right after it instead of
  failing it (the client sees the connection drop, not Go's "bad certificate" alert).
Both: TLS 1.2+, ALPN `h2`, no session tickets. While closed (booting, rebooting, refusing), connections to
the port are refused.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from asyncio import sslproto
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpclib.server import Server

from lab.talos.api import NodeApi
from talos.api.tls import load_certificate_chain

if TYPE_CHECKING:
    from lab.talos.node import TalosNode


class ApiListener:
    """Opens and closes a node's apid port; `serve`/`stop` follow the node's boots, faults close it meanwhile."""

    def __init__(self, node: TalosNode) -> None:
        self.node = node
        self.rejected_connections = 0
        self.opened_at = 0.0
        """time.monotonic() when the port last opened (benchmarks split a wait into node and client time)."""
        self.last_client_certificate: bytes | None = None
        """DER of the last client certificate a configured node accepted (tests look at its key type)."""
        self._server: Server | None = None
        self._wanted = False
        self._refuse_until = 0.0
        self._connections: dict[Any, asyncio.BaseTransport] = {}
        self._changing = asyncio.Lock()

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def serve(self) -> None:
        """Open the port with the TLS identity of the node's current mode."""
        self._wanted = True
        await self._apply()

    async def stop(self) -> None:
        """Close the port and every connection (in-flight calls are cancelled)."""
        self._wanted = False
        await self._apply()

    async def refuse_for(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._refuse_until = loop.time() + seconds
        await self._apply()
        loop.call_later(seconds, lambda: loop.create_task(self._apply()))

    def abort_connection(self, peer: Any) -> None:
        """Cut the connection of `peer` (its address) without a goodbye: a stream dropped midway."""
        transport = self._connections.get(peer)
        if transport is not None:
            transport.abort()

    async def _apply(self) -> None:
        """Open or close the port to match what is wanted (one change at a time)."""
        async with self._changing:
            loop = asyncio.get_running_loop()
            should_serve = self._wanted and loop.time() >= self._refuse_until
            if should_serve and self._server is None:
                server = _GatedServer([NodeApi(self.node)], self)
                await server.start_tls(self.node.address, self.node.port, self._tls_context())
                self._server, self.opened_at = server, time.monotonic()
            elif not should_serve and self._server is not None:
                server, self._server = self._server, None
                server.close()
                await server.wait_closed()
                for transport in list(self._connections.values()):
                    transport.abort()
                self._connections.clear()

    def _tls_context(self) -> ssl.SSLContext:
        node = self.node
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["h2"])
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0
        if node.config is None:
            assert node.maintenance_cert is not None
            load_certificate_chain(context, node.maintenance_cert.crt, node.maintenance_cert.key)
            context.verify_mode = ssl.CERT_NONE
        else:
            assert node.apid_cert is not None
            load_certificate_chain(context, node.apid_cert.crt, node.apid_cert.key)
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=b"".join(node.config.accepted_cas).decode())
        return context

    def _accept(self, transport: asyncio.BaseTransport) -> bool:
        """apid's verifyExtKeyUsage: a verified client certificate must have EKU exactly [ClientAuth]."""
        if self.node.config is None:
            return True
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if der is None:
            return False
        certificate = x509.load_der_x509_certificate(der)
        try:
            usages = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            usages = []
        if _is_ca(certificate) or usages == [ExtendedKeyUsageOID.CLIENT_AUTH]:
            self.last_client_certificate = der
            return True
        self.rejected_connections += 1
        return False


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class _GatedServer(Server):
    """grpclib's server over `_AlertingTLS`, each connection passing `listener._accept` before any gRPC.

    Uses grpclib 0.4 internals (`_protocol_factory`, `_server`, `_server_closed_fut`), pinned in requirements.
    """

    def __init__(self, handlers: list[Any], listener: ApiListener) -> None:
        super().__init__(handlers)
        self._listener = listener

    def _protocol_factory(self) -> Any:
        return _Gate(super()._protocol_factory(), self._listener)

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.BaseProtocol:
            return _AlertingTLS(loop, self._protocol_factory(), context, None, server_side=True)

        # Bound, not yet serving: create_server's own start yields before returning the server, so a power-off
        # cancelling it there would leak the listening socket.
        self._server = await loop.create_server(factory, host, port, reuse_address=True, start_serving=False)
        self._server_closed_fut = loop.create_future()
        try:
            await self._server.start_serving()
        except asyncio.CancelledError:
            self.close()
            raise


class _AlertingTLS(sslproto.SSLProtocol):
    """asyncio's server-side TLS, except that a failed handshake sends OpenSSL's alert before closing.

    asyncio drops the alert (it closes the socket with the alert still in its buffer); Go's TLS server
    sends it, so a client without a certificate reads `certificate required`, not a bare disconnect.
    """

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            self._process_outgoing()
        super()._on_handshake_complete(handshake_exc)


class _Gate(asyncio.Protocol):
    """Hands a connection to grpclib's protocol only once the peer is accepted; tracks it for aborts."""

    def __init__(self, inner: Any, listener: ApiListener) -> None:
        self._inner, self._listener = inner, listener
        self._open = False
        self._peer: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._listener._accept(transport):
            transport.abort()
            return
        self._open = True
        self._peer = transport.get_extra_info("peername")
        self._listener._connections[self._peer] = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._open:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._open else None

    def pause_writing(self) -> None:
        if self._open:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._open:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._open:
            self._open = False
            self._listener._connections.pop(self._peer, None)
            self._inner.connection_lost(exc)
