"""Plug lab Talos nodes into the datacenter: a machine booting a Talos disk starts a node on its address.

    register_boot_handler(TalosBootHandler(Fabric(), delays.scale))

Each boot starts a fresh node (new maintenance certificate, services starting); what persists lives on the
disk (lab.talos.disk_storage). The machine times firmware, OS boot and shutdown; the node asks it to reboot
or power off through `os_power`.
"""

from __future__ import annotations

from lab.boot import BootContext
from lab.talos.disk_storage import DiskStorage
from lab.talos.fabric import Fabric
from lab.talos.node import NodeTimings, TalosNode


class RunningTalos:
    """The running system a Talos boot leaves on the machine; the machine stops it on reset or reboot."""

    def __init__(self, node: TalosNode) -> None:
        self.node = node

    def stop(self) -> None:
        self.node.close()


class TalosBootHandler:
    """The datacenter's boot handler for Talos disks."""

    def __init__(self, fabric: Fabric, scale: float) -> None:
        self.fabric = fabric
        self.timings = NodeTimings.in_datacenter(scale)

    def __call__(self, context: BootContext) -> RunningTalos:
        machine = context.machine
        node = TalosNode(
            machine.address,
            DiskStorage(machine.disks, context.disk),
            timings=self.timings,
            fabric=self.fabric,
            port=machine.talos_port,
            power=machine.os_power,
        )
        node.power_on()
        return RunningTalos(node)
