"""gRPC status -> typed error, by call."""

from __future__ import annotations

import pytest
from grpclib.const import Status

from talos.api.errors import (
    AlreadyBootstrappedError,
    AlreadyExistsError,
    CallTimeoutError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidConfigError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    TalosApiError,
    UnimplementedError,
    error_for_status,
)


@pytest.mark.parametrize(
    ("call", "status", "kind"),
    [
        ("ApplyConfiguration", Status.INVALID_ARGUMENT, InvalidConfigError),
        ("Reset", Status.INVALID_ARGUMENT, InvalidArgumentError),
        ("Bootstrap", Status.ALREADY_EXISTS, AlreadyBootstrappedError),
        ("Create", Status.ALREADY_EXISTS, AlreadyExistsError),
        ("Version", Status.PERMISSION_DENIED, PermissionDeniedError),
        ("Version", Status.UNAVAILABLE, NodeUnreachableError),
        ("Version", Status.DEADLINE_EXCEEDED, CallTimeoutError),
        ("Get", Status.NOT_FOUND, NotFoundError),
        ("Bootstrap", Status.FAILED_PRECONDITION, FailedPreconditionError),
        ("Bootstrap", Status.UNIMPLEMENTED, UnimplementedError),
        ("EtcdStatus", Status.UNKNOWN, TalosApiError),
    ],
)
def test_status_maps_to_its_error_class(call: str, status: Status, kind: type[TalosApiError]) -> None:
    error = error_for_status("10.0.0.1", call, status, "why")
    assert type(error) is kind
    assert (error.node, error.call, error.status, error.message) == ("10.0.0.1", call, status, "why")


def test_error_message_names_node_call_and_status() -> None:
    error = error_for_status("10.0.0.1", "Bootstrap", Status.ALREADY_EXISTS, "etcd data directory is not empty")
    assert str(error) == "10.0.0.1: Bootstrap: etcd data directory is not empty (ALREADY_EXISTS)"
