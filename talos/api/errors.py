"""Errors of Talos API calls: one class per thing a caller acts on, each naming the node and the call.

`error_for_status` maps a gRPC status (from the call itself, or from `metadata.status` of a one-to-many
reply) to its class. Transport failures (refused, timed out, TLS) are raised by talos.api.transport.
"""

from __future__ import annotations

from grpclib.const import Status

from talos.errors import TalosError


class TalosApiError(TalosError):
    """A Talos API call failed."""

    def __init__(self, node: str, call: str, status: Status, message: str) -> None:
        super().__init__(f"{node}: {call}: {message} ({status.name})")
        self.node, self.call, self.status, self.message = node, call, status, message


class NodeUnreachableError(TalosApiError):
    """The node did not answer: connection refused, timed out or dropped. Safe to retry."""


class CallTimeoutError(TalosApiError):
    """The call was sent but no answer came in time: the node may have acted on it."""


class TlsIdentityError(TalosApiError):
    """The TLS handshake failed: the node is not the one the credentials expect, or refused ours."""


class NodeInMaintenanceError(TlsIdentityError):
    """The node still serves its self-signed maintenance certificate: it has no machine config yet."""


class NodeConfiguredError(TlsIdentityError):
    """The node demands a client certificate: it is configured, so the maintenance channel is refused."""


class PermissionDeniedError(TalosApiError):
    """The client certificate's roles do not allow the call (or the node is in maintenance mode)."""


class InvalidArgumentError(TalosApiError):
    """The node rejected the request as invalid."""


class InvalidConfigError(InvalidArgumentError):
    """The node rejected the machine config; the message is Talos' own validation error."""


class AlreadyExistsError(TalosApiError):
    """The thing to create exists already."""


class AlreadyBootstrappedError(AlreadyExistsError):
    """etcd on the node already has data: the cluster was bootstrapped before."""


class NotFoundError(TalosApiError):
    """The requested resource does not exist (yet)."""


class FailedPreconditionError(TalosApiError):
    """The node is not in a state that allows the call (yet)."""


class UnimplementedError(TalosApiError):
    """The node does not serve the call: wrong machine type, no machine type yet, or an unknown method."""


class InstallerFailedError(TalosApiError):
    """The installer (LifecycleService upgrade) ran and exited with a non-zero code."""


_BY_STATUS: dict[Status, type[TalosApiError]] = {
    Status.UNAVAILABLE: NodeUnreachableError,
    Status.DEADLINE_EXCEEDED: CallTimeoutError,
    Status.PERMISSION_DENIED: PermissionDeniedError,
    Status.UNAUTHENTICATED: PermissionDeniedError,
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.ALREADY_EXISTS: AlreadyExistsError,
    Status.NOT_FOUND: NotFoundError,
    Status.FAILED_PRECONDITION: FailedPreconditionError,
    Status.UNIMPLEMENTED: UnimplementedError,
}

_BY_CALL: dict[tuple[str, Status], type[TalosApiError]] = {
    ("ApplyConfiguration", Status.INVALID_ARGUMENT): InvalidConfigError,
    ("Bootstrap", Status.ALREADY_EXISTS): AlreadyBootstrappedError,
}


def error_for_status(node: str, call: str, status: Status, message: str) -> TalosApiError:
    """The typed error for a non-OK gRPC status of `call` on `node`."""
    kind = _BY_CALL.get((call, status)) or _BY_STATUS.get(status, TalosApiError)
    return kind(node, call, status, message)
