"""apid's routing and machined's rules on a lab node, and the COSI resources it serves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import yaml
from google.protobuf import empty_pb2

from lab.talos.node import TalosNode
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api import methods
from talos.api.client import MACHINE_CONFIG, TalosClient
from talos.api.errors import InvalidArgumentError, PermissionDeniedError
from talos.api.methods import Method
from talos.api.tls import authenticated_context, maintenance_context
from talos.api.transport import NodeChannel, call
from talos.talosconfig import TalosContext


def raw_call(
    node: TalosNode, credentials: TalosContext | None, method: Method, request: Any, metadata: Sequence[tuple[str, str]]
) -> list[Any]:
    """One call with metadata the client's methods do not send."""

    async def run() -> list[Any]:
        context = authenticated_context(credentials) if credentials else maintenance_context()
        channel = NodeChannel(node.address, context, presents_certificate=credentials is not None)
        try:
            return await call(channel, method, request, timeout=5, metadata=metadata)
        finally:
            await channel.aclose()

    return asyncio.run(run())


@pytest.fixture
def controlplane(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> TalosNode:
    return talos_nodes.start(config=cluster.controlplane)


@pytest.fixture
def client_admin(controlplane: TalosNode, cluster: ClusterMaterial) -> Iterator[TalosClient]:
    with TalosClient(controlplane.address, cluster.admin) as client:
        yield client


def test_node_metadata_must_be_single_valued(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    metadata = [("node", controlplane.address), ("node", "10.0.0.2")]
    with pytest.raises(InvalidArgumentError, match="node metadata must be single-valued"):
        raw_call(controlplane, cluster.admin, methods.VERSION, empty_pb2.Empty(), metadata)


def test_one_to_many_is_refused_for_cosi(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    request = methods.RESOURCE_GET.request(namespace="runtime", type="Disks.block.talos.dev", id="sda")
    with pytest.raises(InvalidArgumentError, match="one-2-many proxying is not supported for method /cosi"):
        raw_call(controlplane, cluster.admin, methods.RESOURCE_GET, request, [("nodes", controlplane.address)])


def test_maintenance_ignores_routing(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    [reply] = raw_call(node, None, methods.VERSION, empty_pb2.Empty(), [("nodes", "10.0.0.2"), ("nodes", "10.0.0.3")])
    assert [m.metadata.hostname for m in reply.messages] == [""]


def test_worker_serves_a_one_to_many_call_for_itself_locally(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, controlplane: TalosNode
) -> None:
    worker = talos_nodes.start(config=cluster.worker)
    [reply] = raw_call(worker, cluster.admin, methods.VERSION, empty_pb2.Empty(), [("nodes", worker.address)])
    assert [m.metadata.hostname for m in reply.messages] == [""]


def test_impersonator_acts_with_the_forwarded_role(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    impersonator = cluster.credentials("os:impersonator")
    metadata = [("talos-role", "os:reader")]
    assert raw_call(controlplane, impersonator, methods.VERSION, empty_pb2.Empty(), metadata)
    with pytest.raises(PermissionDeniedError, match="not authorized"):
        raw_call(controlplane, impersonator, methods.BOOTSTRAP, methods.BOOTSTRAP.request(), metadata)


def test_unknown_roles_grant_nothing(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    credentials = cluster.credentials("os:meta:writer")
    with TalosClient(controlplane.address, credentials) as client, pytest.raises(PermissionDeniedError):
        client.version()


def test_machine_config_resource_as_talos_serves_it(controlplane: TalosNode, client_admin: TalosClient) -> None:
    resource = client_admin.get_resource(*MACHINE_CONFIG, "v1alpha1")
    assert resource.metadata.annotations["talos.dev/yaml-spec"] == "1"
    assert (resource.metadata.phase, resource.metadata.version) == ("running", "1")
    assert yaml.safe_load(resource.spec.yaml_spec) == controlplane.config.raw.decode()  # type: ignore[union-attr]


def test_resource_definitions_mark_machine_config_sensitive(client_admin: TalosClient) -> None:
    definitions = client_admin.list_resources("meta", "ResourceDefinitions.meta.cosi.dev")
    sensitive = {d.metadata.id: "sensitivity: SENSITIVE" in d.spec.yaml_spec for d in definitions}
    assert sensitive["machineconfigs.config.talos.dev"] and not sensitive["disks.block.talos.dev"]


def test_unknown_namespace_is_refused(client_admin: TalosClient) -> None:
    with pytest.raises(PermissionDeniedError, match='namespace "nowhere" is not supported'):
        client_admin.get_resource("nowhere", "Disks.block.talos.dev", "sda")
