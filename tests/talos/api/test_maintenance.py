"""The client in maintenance mode against a lab node that has no machine config yet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509

from common.waiting import Deadline
from lab.talos import api as lab_api
from lab.talos.stages import Stage
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api import methods
from talos.api.client import TalosClient
from talos.api.errors import (
    InvalidConfigError,
    NodeConfiguredError,
    NodeInMaintenanceError,
    PermissionDeniedError,
    TlsIdentityError,
    UnimplementedError,
)
from talos.api.waiting import wait_for_configured


def test_version_in_maintenance_reports_no_config(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        version = client.version()
    assert (version.tag, version.configured, version.platform) == ("v1.13.9", False, "metal")


def test_reads_allowed_in_maintenance(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        disks = client.disks()
        services = {s.id: s.state for s in client.service_list()}
        status = client.machine_status()
        resources = client.list_resources("runtime", "Disks.block.talos.dev")
    assert [(d.dev_path, d.type, d.system_disk) for d in disks] == [("/dev/sda", "ssd", False)]
    assert services["apid"] == "Running"
    assert (status.stage, status.ready) == ("maintenance", False)
    assert [r.metadata.id for r in resources] == ["sda"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.bootstrap(),
        lambda c: c.kubeconfig(),
        lambda c: c.reboot(),
        lambda c: c.reset(),
        lambda c: c.upgrade("ghcr.io/siderolabs/installer:v1.13.9"),
        lambda c: c.pull_image("ghcr.io/siderolabs/installer:v1.13.9"),
        lambda c: c.lifecycle_upgrade("ghcr.io/siderolabs/installer:v1.13.9"),
        lambda c: c.machine_config(),
    ],
    ids=["bootstrap", "kubeconfig", "reboot", "reset", "upgrade", "pull", "lifecycle", "machineconfig"],
)
def test_admin_calls_refused_in_maintenance(talos_nodes: NodeFactory, call: object) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client, pytest.raises(PermissionDeniedError, match="not authorized"):
        call(client)  # type: ignore[operator]


def test_etcd_status_without_machine_type_is_unimplemented(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client, pytest.raises(UnimplementedError, match="machine type is not set"):
        client.etcd_status()


def test_apply_in_maintenance_downgrades_reboot_and_node_comes_up_configured(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        result = client.apply_configuration(cluster.controlplane, mode="reboot")
    assert (result.mode, result.details) == ("no-reboot", "Applied configuration without a reboot")
    version = wait_for_configured(node.address, cluster.admin, Deadline.after(10))
    assert version.configured


def test_apply_invalid_config_carries_the_nodes_message(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    bad = "version: v1alpha1\nmachine:\n    type: router\n"
    with TalosClient(node.address) as client, pytest.raises(InvalidConfigError) as caught:
        client.apply_configuration(bad)
    assert caught.value.node == node.address and caught.value.call == "ApplyConfiguration"
    assert "machine.type" in caught.value.message
    assert node.maintenance


def test_apply_without_a_required_field_names_it_and_keeps_maintenance(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start()
    endpoint = f"        endpoint: https://{cluster.endpoint_host}:6443\n"
    assert endpoint in cluster.controlplane
    config = cluster.controlplane.replace(endpoint, "", 1)
    with TalosClient(node.address) as client, pytest.raises(InvalidConfigError) as caught:
        client.apply_configuration(config)
    assert "cluster.controlPlane.endpoint: is required" in caught.value.message
    assert node.maintenance and node.storage.read_state() is None
    with TalosClient(node.address) as client:
        assert not client.version().configured


def test_apply_with_missing_install_disk_is_invalid(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start()
    config = cluster.controlplane.replace("disk: /dev/sda", "disk: /dev/nvme9n1")
    with TalosClient(node.address) as client, pytest.raises(InvalidConfigError, match="/dev/nvme9n1"):
        client.apply_configuration(config)


def test_pinned_fingerprint_accepts_the_node_and_refuses_another(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    assert node.maintenance_fingerprint is not None
    with TalosClient(node.address, fingerprints=[node.maintenance_fingerprint]) as client:
        assert not client.version().configured
    wrong = "A" * 43 + "="
    with TalosClient(node.address, fingerprints=[wrong]) as client, pytest.raises(TlsIdentityError, match="pinned"):
        client.version()


def test_authenticated_client_sees_node_still_in_maintenance(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address, cluster.admin) as client, pytest.raises(NodeInMaintenanceError):
        client.version()


def test_apply_over_maintenance_channel_refused_by_configured_node(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    other = cluster.controlplane.replace("certSANs: []", "certSANs:\n        - 192.0.2.1")
    with TalosClient(node.address) as client, pytest.raises(NodeConfiguredError, match="client certificate"):
        client.apply_configuration(other)
    assert node.storage.read_state() == cluster.controlplane.encode()


def test_apply_refused_when_the_maintenance_channel_shows_a_config(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that answers without a client certificate yet reports features (a configured node) gets no config."""
    served = lab_api._HANDLERS[methods.VERSION.path]

    async def version_with_features(api: Any, request: Any, roles: frozenset[str]) -> list[Any]:
        replies = await served(api, request, roles)
        replies[0].messages[0].features.rbac = True
        return replies

    monkeypatch.setitem(lab_api._HANDLERS, methods.VERSION.path, version_with_features)
    node = talos_nodes.start()
    with (
        TalosClient(node.address) as client,
        pytest.raises(NodeConfiguredError, match="authenticated client") as caught,
    ):
        client.apply_configuration(cluster.controlplane)
    assert (caught.value.node, caught.value.call) == (node.address, "ApplyConfiguration")
    assert node.storage.read_state() is None and node.maintenance


def test_apply_refused_when_the_node_changes_after_it_showed_no_config(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node is power-cycled after the check (a fresh maintenance key): the pinned channel refuses it."""
    node = talos_nodes.start()
    confirm = TalosClient._confirm_unconfigured

    def confirm_then_power_cycle(client: TalosClient, target: str | None) -> None:
        confirm(client, target)
        node.power_off()
        node.power_on()
        node.wait_for(lambda n: n.stage is Stage.MAINTENANCE)

    monkeypatch.setattr(TalosClient, "_confirm_unconfigured", confirm_then_power_cycle)
    with TalosClient(node.address) as client, pytest.raises(TlsIdentityError, match="pinned") as caught:
        client.apply_configuration(cluster.controlplane)
    assert (caught.value.node, caught.value.call) == (node.address, "ApplyConfiguration")
    assert node.boots == 2 and node.storage.read_state() is None and node.maintenance


def test_apply_in_try_mode_answers_try_with_the_requested_revert_time(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        result = client.apply_configuration(cluster.controlplane, mode="try", try_timeout=timedelta(seconds=30))
    assert result.mode == "try"
    assert result.details == (
        "Applied configuration without a reboot\n"
        "The config is applied in 'try' mode and will be automatically reverted back in 30s"
    )


def test_maintenance_certificate_names_the_node_and_both_loopbacks(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        client.version()
        der = client.server_certificate()
    assert der is not None
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {node.address, "127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == [node.hostname]
