"""META on a lab node: MetaWrite/MetaDelete with Talos' roles and errors, the MetaKeys resource, and a partition
that survives reboots and STATE/EPHEMERAL wipes but not a rewritten disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from grpclib.const import Status

from lab.images.raw import TalosImage
from lab.talos.disk_storage import DiskStorage
from lab.talos.node import META_DATA_LENGTH
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api.client import META_KEYS, TalosClient
from talos.api.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError, TalosApiError
from tests.lab.talos.test_disk_storage import talos_disk


def test_write_read_delete_a_user_key(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    with TalosClient(node.address, cluster.admin) as client:
        client.meta_write(0x0C, b"hello")
        assert client.meta_value(0x0C) == "hello"
        assert [r.metadata.id for r in client.list_resources(*META_KEYS)] == ["0x0c"]
        client.meta_delete(0x0C)
        assert client.meta_value(0x0C) is None
        with pytest.raises(NotFoundError, match="meta key not found"):
            client.meta_delete(0x0C)


def test_meta_writer_may_write_and_a_reader_may_only_read(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    with TalosClient(node.address, cluster.credentials("os:meta:writer")) as writer:
        writer.meta_write(0x0D, b"x")
    with TalosClient(node.address, cluster.credentials("os:reader")) as reader:
        assert reader.meta_value(0x0D) == "x"
        with pytest.raises(PermissionDeniedError):
            reader.meta_write(0x0D, b"y")
        with pytest.raises(PermissionDeniedError):
            reader.meta_delete(0x0D)


def test_bad_key_and_overflow_are_refused_as_talos_does(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    with TalosClient(node.address, cluster.admin) as client:
        with pytest.raises(InvalidArgumentError, match="key must be a uint8"):
            client.meta_write(0x100, b"x")
        with pytest.raises(TalosApiError) as overflow:
            client.meta_write(0x0C, bytes(META_DATA_LENGTH))
        assert overflow.value.status is Status.RESOURCE_EXHAUSTED and client.meta_value(0x0C) is None


def test_meta_survives_a_reboot_and_a_state_ephemeral_reset(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    with TalosClient(node.address, cluster.admin) as client:
        client.meta_write(0x0E, b"kept")
        client.reset(wipe_labels=["EPHEMERAL"])
    node.wait_for(lambda n: n.boots == 2 and n.stage.value == "running")
    with TalosClient(node.address, cluster.admin) as client:
        assert client.meta_value(0x0E) == "kept"
        client.reset(wipe_labels=["META"])
    node.wait_for(lambda n: n.boots == 3 and n.stage.value == "running")
    with TalosClient(node.address, cluster.admin) as client:
        assert client.meta_value(0x0E) is None


def test_meta_on_disk_persists_through_upgrades_and_goes_with_a_new_image(tmp_path: Path) -> None:
    disk = talos_disk(tmp_path)
    DiskStorage([disk], disk).write_meta({0x0E: b"marker", 0x0C: b""})
    storage = DiskStorage([disk], disk)
    storage.install(TalosImage("v1.13.10"))
    storage.write_state(b"config")
    assert DiskStorage([disk], disk).read_meta() == {0x0C: b"", 0x0E: b"marker"}
    rewritten = talos_disk(tmp_path)
    assert DiskStorage([rewritten], rewritten).read_meta() == {}
