"""Lab Talos nodes on datacenter machines: booted from the disk, state kept in the disk's partitions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.waiting import Deadline
from lab import gpt
from lab.boot import boot_handler_in_use
from lab.datacenter import Machine, Phase
from lab.images.raw import ImageProfile, TalosImage, write_raw_image
from lab.services import Lab
from lab.talos.boot import TalosBootHandler
from lab.talos.fabric import Fabric
from lab.talos.testing import ClusterMaterial
from talos.api.client import TalosClient
from talos.api.errors import InvalidConfigError
from talos.api.waiting import wait_for_configured, wait_for_maintenance

NUMBER = 2100001


@pytest.fixture
def machine(lab: Lab) -> Iterator[Machine]:
    """A dedicated server with Talos v1.13.9 written to its first disk, Talos nodes plugged into its boots."""
    machine = lab.robot_server(NUMBER)
    raw = machine.placement.root / "image.raw"
    write_raw_image(raw, TalosImage("v1.13.9"), ImageProfile(raw_size=32 << 20))
    with open(raw, "rb") as source, open(machine.disks[0].path, "r+b") as target:
        target.write(source.read())
    with boot_handler_in_use(TalosBootHandler(Fabric(), lab.delays.scale)):
        machine.hard_reset()
        try:
            yield machine
        finally:
            machine.power_cut()


def config_for(machine: Machine, cluster: ClusterMaterial) -> str:
    return cluster.controlplane.replace("disk: /dev/sda", f"disk: /dev/{machine.disks[0].spec.name}")


def partition_names(machine: Machine) -> list[str]:
    with open(machine.disks[0].path, "rb") as f:
        table = gpt.read_gpt(f, machine.disks[0].spec.size)
    return [p.name for p in table.partitions] if table else []


def test_talos_disk_boots_into_maintenance_with_the_machines_disks(machine: Machine) -> None:
    version = wait_for_maintenance(machine.address, Deadline.after(20))
    assert (version.tag, version.configured) == ("v1.13.9", False)
    with TalosClient(machine.address) as client:
        assert [d.dev_path for d in client.disks()] == [f"/dev/{d.spec.name}" for d in machine.disks]


def test_apply_reboots_the_machine_into_configured_mode(machine: Machine, cluster: ClusterMaterial) -> None:
    wait_for_maintenance(machine.address, Deadline.after(20))
    with TalosClient(machine.address) as client:
        client.apply_configuration(config_for(machine, cluster))
    assert wait_for_configured(machine.address, cluster.admin, Deadline.after(20)).configured
    assert [b.target for b in machine.boots][-2:] == ["talos", "talos"]
    assert partition_names(machine) == ["EFI", "BIOS", "BOOT", "META", "STATE", "EPHEMERAL"]
    machine.power_cut()
    machine.power_on()
    assert wait_for_configured(machine.address, cluster.admin, Deadline.after(20)).configured


def test_config_naming_a_disk_the_machine_lacks_is_refused(machine: Machine, cluster: ClusterMaterial) -> None:
    wait_for_maintenance(machine.address, Deadline.after(20))
    with TalosClient(machine.address) as client, pytest.raises(InvalidConfigError, match="/dev/sda does not exist"):
        client.apply_configuration(cluster.controlplane)


def test_upgrade_then_reset_through_the_machine(machine: Machine, cluster: ClusterMaterial) -> None:
    wait_for_maintenance(machine.address, Deadline.after(20))
    with TalosClient(machine.address) as client:
        client.apply_configuration(config_for(machine, cluster))
    wait_for_configured(machine.address, cluster.admin, Deadline.after(20))
    with TalosClient(machine.address, cluster.admin) as client:
        client.upgrade("ghcr.io/siderolabs/installer:v1.13.10")
    assert wait_for_configured(machine.address, cluster.admin, Deadline.after(20)).tag == "v1.13.10"
    with TalosClient(machine.address, cluster.admin) as client:
        client.reset(wipe_labels=["STATE", "EPHEMERAL"])
    assert wait_for_maintenance(machine.address, Deadline.after(20)).tag == "v1.13.10"
    with TalosClient(machine.address) as client:
        client.apply_configuration(config_for(machine, cluster))
    wait_for_configured(machine.address, cluster.admin, Deadline.after(20))
    with TalosClient(machine.address, cluster.admin) as client:
        client.reset()
    machine.wait_phase(Phase.NO_BOOT, timeout=20)
