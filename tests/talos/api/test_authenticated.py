"""The client with the cluster's talosconfig against configured lab nodes: every call and its errors."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from google.protobuf import empty_pb2
from grpclib.const import Status
from grpclib.exceptions import StreamTerminatedError

from common.waiting import Deadline
from lab.talos.node import TalosNode
from lab.talos.storage import BlockDevice
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api import methods
from talos.api.archive import ArchiveError, unpack_single_file
from talos.api.client import TalosClient
from talos.api.errors import (
    AlreadyBootstrappedError,
    InstallerFailedError,
    InvalidConfigError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    TalosApiError,
    UnimplementedError,
)
from talos.api.methods import Method
from talos.api.tls import authenticated_context
from talos.api.transport import NodeChannel
from talos.api.waiting import wait_for_configured, wait_for_maintenance, wait_ready_to_bootstrap
from talos.compare import configs_equal
from talos.talosconfig import TalosContext

INSTALLER = "ghcr.io/siderolabs/installer:v1.13.10"


@pytest.fixture
def controlplane(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> TalosNode:
    return talos_nodes.start(config=cluster.controlplane)


@pytest.fixture
def client(controlplane: TalosNode, cluster: ClusterMaterial) -> TalosClient:
    with TalosClient(controlplane.address, cluster.admin) as client:
        yield client  # type: ignore[misc]


def bootstrapped(node: TalosNode, client: TalosClient, cluster: ClusterMaterial) -> None:
    wait_ready_to_bootstrap(node.address, cluster.admin, Deadline.after(10))
    client.bootstrap()
    node.wait_for(lambda n: n.ready())


def test_version_reports_configured(client: TalosClient) -> None:
    version = client.version()
    assert (version.tag, version.configured) == ("v1.13.9", True)


def test_bootstrap_once_then_already_bootstrapped(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    bootstrapped(controlplane, client, cluster)
    with pytest.raises(AlreadyBootstrappedError, match="etcd data directory is not empty") as caught:
        client.bootstrap()
    assert (caught.value.node, caught.value.call) == (controlplane.address, "Bootstrap")


def test_bootstrap_on_worker_is_unimplemented(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, controlplane: TalosNode
) -> None:
    worker = talos_nodes.start(config=cluster.worker)
    with TalosClient(worker.address, cluster.admin) as client:
        worker.wait_for(lambda n: n.services_up)
        with pytest.raises(UnimplementedError, match="only available on control plane nodes"):
            client.bootstrap()


def test_etcd_and_services_after_bootstrap(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    wait_ready_to_bootstrap(controlplane.address, cluster.admin, Deadline.after(10))
    assert {s.id: s.state for s in client.service_list()}["etcd"] == "Preparing"
    bootstrapped(controlplane, client, cluster)
    status, members = client.etcd_status(), client.etcd_members()
    assert status.leader == status.member_id and not status.errors
    assert [m.id for m in members] == [status.member_id]
    etcd = {s.id: s for s in client.service_list()}["etcd"]
    assert (etcd.state, etcd.healthy) == ("Running", True)


def test_kubeconfig_is_admin_for_the_cluster_endpoint(client: TalosClient, cluster: ClusterMaterial) -> None:
    kubeconfig = yaml.safe_load(client.kubeconfig())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{cluster.endpoint_host}:6443"
    assert kubeconfig["current-context"] == "admin@lab"
    user = kubeconfig["users"][0]["user"]
    certificate = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    k8s_ca = x509.load_pem_x509_certificate(cluster.secrets.k8s.crt)
    certificate.verify_directly_issued_by(k8s_ca)
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"


def test_machine_config_is_the_applied_one(client: TalosClient, cluster: ClusterMaterial) -> None:
    assert configs_equal(client.machine_config(), cluster.controlplane)
    assert configs_equal(client.machine_config(persistent=True), cluster.controlplane)


def test_disks_mark_the_system_disk(client: TalosClient) -> None:
    assert [(d.dev_path, d.system_disk) for d in client.disks()] == [("/dev/sda", True)]


def test_resource_errors(client: TalosClient) -> None:
    with pytest.raises(PermissionDeniedError, match=r'resource type "Nope\.talos\.dev" is not supported'):
        client.get_resource("runtime", "Nope.talos.dev", "x")
    with pytest.raises(NotFoundError, match="doesn't exist"):
        client.get_resource("runtime", "Disks.block.talos.dev", "nvme7n1")


def test_apply_auto_without_change_needs_no_reboot(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    result = client.apply_configuration(cluster.controlplane)
    assert (result.mode, result.rebooting) == ("no-reboot", False)
    assert controlplane.boots == 1


def test_apply_auto_reboots_only_for_a_change_that_needs_it(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    labels = cluster.controlplane.replace('exclude-from-external-load-balancers: ""', 'role: "db"')
    assert client.apply_configuration(labels).mode == "no-reboot"
    assert controlplane.boots == 1
    kernel_change = labels.replace("diskQuotaSupport: true", "diskQuotaSupport: false")
    result = client.apply_configuration(kernel_change)
    assert result.mode == "reboot" and "can't be applied in immediate mode" in result.details
    controlplane.wait_for(lambda n: n.boots == 2)  # the old apid answers until the shutdown ends
    wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10))
    assert configs_equal(client.machine_config(), kernel_change)


def test_apply_reboot_mode_reboots_even_for_a_change_that_needs_none(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    labels = cluster.controlplane.replace('exclude-from-external-load-balancers: ""', 'role: "db"')
    result = client.apply_configuration(labels, mode="reboot")
    assert (result.mode, result.rebooting, result.details) == ("reboot", True, "Applied configuration with a reboot")
    controlplane.wait_for(lambda n: n.boots == 2)
    wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10))
    assert configs_equal(client.machine_config(), labels)


def test_apply_no_reboot_refuses_a_change_that_needs_a_reboot(client: TalosClient, cluster: ClusterMaterial) -> None:
    change = cluster.controlplane.replace("diskQuotaSupport: true", "diskQuotaSupport: false")
    with pytest.raises(InvalidConfigError, match="can't be applied in immediate mode"):
        client.apply_configuration(change, mode="no-reboot")


def test_apply_staged_and_dry_run_leave_the_running_config(client: TalosClient, cluster: ClusterMaterial) -> None:
    change = cluster.controlplane.replace("diskQuotaSupport: true", "diskQuotaSupport: false")
    dry = client.apply_configuration(change, dry_run=True)
    assert dry.details.startswith("Dry run summary:\nApplied configuration with a reboot (skipped in dry-run).")
    assert "diskQuotaSupport" in dry.details
    staged = client.apply_configuration(change, mode="staged")
    assert staged.details == "Staged configuration to be applied after the next reboot"
    assert configs_equal(client.machine_config(), cluster.controlplane)
    assert configs_equal(client.machine_config(persistent=True), change)


def test_apply_try_reverts_after_its_timeout(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    change = cluster.controlplane.replace('exclude-from-external-load-balancers: ""', 'role: "try"')
    result = client.apply_configuration(change, mode="try", try_timeout=timedelta(seconds=1))
    assert result.details.endswith("will be automatically reverted back in 1s")
    assert configs_equal(client.machine_config(), change)
    controlplane.wait_for(lambda n: n.config is not None and b'role: "try"' not in n.config.raw, timeout=5)
    assert configs_equal(client.machine_config(), cluster.controlplane)


def test_reboot_comes_back_configured(controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial) -> None:
    assert client.reboot()
    controlplane.wait_for(lambda n: n.boots == 2)
    assert wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10)).configured


def test_legacy_upgrade_changes_the_running_version(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    assert client.upgrade(INSTALLER) == "Upgrade request received"
    controlplane.wait_for(lambda n: n.boots == 2)
    assert wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10)).tag == "v1.13.10"


def test_lifecycle_upgrade_after_pull_then_reboot(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    lines: list[str] = []
    assert client.pull_image(INSTALLER, progress=lines.append) == INSTALLER
    client.lifecycle_upgrade(INSTALLER, progress=lines.append)
    assert client.version().tag == "v1.13.9"
    client.reboot()
    controlplane.wait_for(lambda n: n.boots == 2)
    assert wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10)).tag == "v1.13.10"
    assert any("upgrade successful" in line for line in lines)


def test_lifecycle_upgrade_without_pull_fails_with_exit_code(client: TalosClient) -> None:
    with pytest.raises(InstallerFailedError, match="exited with code 1"):
        client.lifecycle_upgrade(INSTALLER)


def test_unknown_installer_image_is_refused(client: TalosClient) -> None:
    with pytest.raises(TalosApiError, match="error validating installer image"):
        client.upgrade("example.com/not-an-installer:latest")


def test_reset_state_and_ephemeral_returns_to_maintenance(controlplane: TalosNode, client: TalosClient) -> None:
    client.reset(wipe_labels=["STATE", "EPHEMERAL"])
    assert not wait_for_maintenance(controlplane.address, Deadline.after(10)).configured
    assert controlplane.storage.read_state() is None and not controlplane.storage.etcd_data()


def test_reset_whole_disk_leaves_nothing_to_boot(controlplane: TalosNode, client: TalosClient) -> None:
    client.reset(graceful=False)
    controlplane.wait_for(lambda n: n.stage.value == "off" and n.boots == 1)
    with TalosClient(controlplane.address, timeout=1) as probe, pytest.raises(NodeUnreachableError):
        probe.version()


def test_reader_reads_but_cannot_act(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    with TalosClient(controlplane.address, cluster.credentials("os:reader")) as reader:
        assert reader.version().configured
        for call in (reader.bootstrap, reader.machine_config, reader.kubeconfig, reader.reboot):
            with pytest.raises(PermissionDeniedError, match="not authorized"):
                call()
        with pytest.raises(PermissionDeniedError):
            reader.apply_configuration(cluster.controlplane)


def test_operator_may_reboot(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    with TalosClient(controlplane.address, cluster.credentials("os:operator")) as operator:
        operator.reboot()
    controlplane.wait_for(lambda n: n.boots == 2)


def test_node_routing_reaches_another_node(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, client: TalosClient
) -> None:
    worker = talos_nodes.start(config=cluster.worker)
    assert client.version(node=worker.address).configured
    with (
        TalosClient(worker.address, cluster.admin) as through_worker,
        pytest.raises(PermissionDeniedError, match="no request forwarding"),
    ):
        through_worker.version(node=talos_nodes.address())


def test_one_to_many_reports_each_nodes_error(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, client: TalosClient
) -> None:
    worker = talos_nodes.start(config=cluster.worker)
    absent = talos_nodes.address()
    results = client.call_nodes(methods.VERSION, empty_pb2.Empty(), [client.endpoint, worker.address, absent])
    assert results[worker.address].features.rbac
    assert results[client.endpoint].version.tag == "v1.13.9"
    assert isinstance(results[absent], NodeUnreachableError) and "connection refused" in results[absent].message


def test_one_to_many_refused_for_cosi(client: TalosClient) -> None:
    with pytest.raises(ValueError, match="cannot be proxied"):
        client.call_nodes(methods.RESOURCE_GET, methods.RESOURCE_GET.request(), ["a", "b"])


async def received_until_dropped(node: TalosNode, credentials: TalosContext, method: Method) -> list[Any]:
    """The messages of a server stream that arrived before the connection was cut (StreamTerminatedError)."""
    channel = NodeChannel(node.address, authenticated_context(credentials), presents_certificate=True)
    received: list[Any] = []
    try:
        async with channel.request(method.path, method.cardinality, method.request, method.reply, timeout=5) as stream:
            await stream.send_message(method.request(), end=True)
            with pytest.raises(StreamTerminatedError, match="Connection lost"):
                async for message in stream:
                    received.append(message)
    finally:
        await channel.aclose()
    return received


def test_dropped_stream_is_cut_after_part_of_the_reply(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    controlplane.drop_next_stream()
    received = asyncio.run(received_until_dropped(controlplane, cluster.admin, methods.KUBECONFIG))
    assert len(received) == 1 and received[0].bytes
    with pytest.raises(ArchiveError, match="not complete gzip data"):
        unpack_single_file(received[0].bytes)


def test_dropped_stream_is_unreachable_then_recovers(controlplane: TalosNode, client: TalosClient) -> None:
    controlplane.drop_next_stream()
    with pytest.raises(NodeUnreachableError, match="connection lost"):
        client.kubeconfig()
    assert "apiVersion: v1" in client.kubeconfig()


def test_powered_off_node_is_unreachable(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    controlplane.power_off()
    with (
        TalosClient(controlplane.address, cluster.admin, timeout=1) as client,
        pytest.raises(NodeUnreachableError, match="refused") as caught,
    ):
        client.version()
    assert caught.value.node == controlplane.address and caught.value.call == "Version"


def san_ips(der: bytes | None) -> set[str]:
    assert der is not None
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)}


def test_apid_certificate_names_the_ipv4_loopback_only(controlplane: TalosNode, client: TalosClient) -> None:
    client.version()
    assert san_ips(client.server_certificate()) == {controlplane.address, "127.0.0.1"}


@pytest.mark.parametrize(
    ("device", "problem"),
    [("/dev/sdz", "wasn't found"), ("/dev/sdb", "is readonly"), ("/dev/sda", "is the system disk")],
)
def test_reset_refuses_a_user_disk_it_may_not_wipe(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, device: str, problem: str
) -> None:
    disks = (BlockDevice("sda", 512 * 10**9), BlockDevice("sdb", 10**9, readonly=True), BlockDevice("sdc", 10**12))
    node = talos_nodes.start(config=cluster.controlplane, disks=disks)
    with TalosClient(node.address, cluster.admin) as client:
        with pytest.raises(TalosApiError, match=f"reset user disk failed: device {device} {problem}") as caught:
            client.reset(wipe_labels=["STATE"], user_disks=[device])
        assert caught.value.status is Status.UNKNOWN
        assert client.version().configured
        client.reset(wipe_labels=["STATE"], user_disks=["/dev/sdc"])
    assert not wait_for_maintenance(node.address, Deadline.after(10)).configured


def test_reset_of_an_unknown_partition_is_refused_and_the_node_keeps_running(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    with pytest.raises(TalosApiError, match='failed to get volume status with label "SWAP"'):
        client.reset(wipe_labels=["STATE", "SWAP"])
    assert client.version().configured
    assert controlplane.storage.read_state() == cluster.controlplane.encode()


def test_reboot_in_powercycle_mode_reaches_the_node(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    client.reboot(mode="powercycle")
    controlplane.wait_for(lambda n: n.boots == 2)
    assert controlplane.sequences == ["reboot(powercycle)"]
    assert wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10)).configured


def test_staged_upgrade_reboots_then_runs_the_new_version(
    controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial
) -> None:
    client.upgrade(INSTALLER, stage=True)
    controlplane.wait_for(lambda n: n.boots == 2)
    assert controlplane.sequences == ["stageUpgrade"]
    assert wait_for_configured(controlplane.address, cluster.admin, Deadline.after(10)).tag == "v1.13.10"


@pytest.mark.parametrize("option", ["force", "preserve"])
def test_upgrade_of_one_of_two_etcd_members_needs_force_or_preserve(
    talos_nodes: NodeFactory, controlplane: TalosNode, client: TalosClient, cluster: ClusterMaterial, option: str
) -> None:
    bootstrapped(controlplane, client, cluster)
    second = talos_nodes.start(config=cluster.controlplane)
    second.wait_for(lambda n: n.etcd_state.value == "healthy")
    with pytest.raises(TalosApiError, match=r"etcd member count\(2\) is insufficient to maintain quorum"):
        client.upgrade(INSTALLER)
    assert controlplane.sequences == []
    assert client.upgrade(INSTALLER, **{option: True}) == "Upgrade request received"
    assert controlplane.sequences == ["upgrade"]
