"""Power and boot semantics of the machine model (no rescue sandbox involved)."""

from __future__ import annotations

from lab.boot import BootContext, boot_handler_in_use
from lab.datacenter import Machine, Phase
from lab.faults import Fault
from lab.images.raw import ImageProfile, TalosImage, write_raw_image
from lab.services import Lab

NUMBER = 2100002


def _install_talos(machine: Machine, version: str = "v1.13.9") -> None:
    raw = machine.placement.root / "image.raw"
    write_raw_image(raw, TalosImage(version), ImageProfile(raw_size=32 << 20))
    with open(raw, "rb") as source, open(machine.disks[0].path, "r+b") as target:
        target.write(source.read())


def test_delivered_server_is_on_without_an_os(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    assert machine.powered and machine.phase is Phase.NO_BOOT
    assert machine.operating_status == "running"


def test_hard_reset_of_a_server_that_is_off_leaves_it_off(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    machine.power_cut()
    machine.hard_reset()
    machine.ctrl_alt_del()
    assert machine.phase is Phase.OFF and machine.operating_status == "shut off"
    machine.power_button()
    machine.wait_phase(Phase.NO_BOOT)


def test_talos_disk_boots_the_handler_with_the_image(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    _install_talos(machine, "v1.12.11")
    booted: list[BootContext] = []
    stopped: list[bool] = []

    class Node:
        def stop(self) -> None:
            stopped.append(True)

    def boot(context: BootContext) -> Node:
        booted.append(context)
        return Node()

    with boot_handler_in_use(boot):
        machine.hard_reset()
        machine.wait_phase(Phase.OS)
        assert booted[0].image == TalosImage("v1.12.11") and booted[0].disk is machine.disks[0]
        assert booted[0].machine is machine
        machine.power_cut()
        assert stopped == [True]


def test_os_power_requests_reboot_or_leave_the_machine_off(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    _install_talos(machine)
    machine.hard_reset()
    machine.wait_phase(Phase.OS)
    machine.os_power("reboot")
    machine.wait_phase(Phase.OS)
    machine.os_power("poweroff")
    machine.wait_phase(Phase.OFF)
    assert not machine.powered


def test_halt_keeps_power_but_runs_nothing_until_a_reset(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    _install_talos(machine)
    machine.hard_reset()
    machine.wait_phase(Phase.OS)
    machine.os_power("halt")
    machine.wait_phase(Phase.HALTED)
    machine.ctrl_alt_del()
    assert machine.phase is Phase.HALTED and machine.powered
    machine.hard_reset()
    machine.wait_phase(Phase.OS)


def test_power_button_shuts_a_running_os_down(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    _install_talos(machine)
    machine.hard_reset()
    machine.wait_phase(Phase.OS)
    machine.power_button()
    machine.wait_phase(Phase.OFF)


def test_rescue_activation_lapses_after_the_timeout(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    machine.arm_rescue("linux", ())
    lab.datacenter.rescue_timeout = 0.0
    try:
        assert not machine.rescue_armed
    finally:
        lab.datacenter.rescue_timeout = 3600.0


def test_rescue_not_coming_up_keeps_the_activation(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    machine.arm_rescue("linux", ())
    lab.faults.arm(Fault.RESCUE_NOT_COMING_UP, target=machine.key)
    machine.hard_reset()
    machine.wait_phase(Phase.NO_BOOT)
    assert machine.rescue_armed
    assert lab.faults.fired(Fault.RESCUE_NOT_COMING_UP) == 1


def test_reset_restores_disks_and_power(lab: Lab) -> None:
    machine = lab.robot_server(NUMBER)
    _install_talos(machine)
    machine.power_cut()
    lab.reset()
    assert machine.powered and machine.phase is Phase.NO_BOOT
    assert all(disk.inspect() is None for disk in machine.disks)
