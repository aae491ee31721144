"""The datacenter model: machines with power, firmware, boot order, rescue activations and disks.

A machine's firmware boots the network first: an armed rescue activation is consumed (one boot) and the
rescue system comes up; otherwise the disks are tried in order and the first bootable one starts (a Talos
image -> the boot handler, another installed OS -> `InstalledOs`, nothing -> the machine sits in
`no-boot`). Every physical step takes its simulated delay; a newer power event cancels pending steps.

Power semantics (hetzner.md §1.3, §2.3, §4.4):
- hard reset (`hw`, Cloud `reset`): restarts a powered machine at once; a machine that is off stays off.
- power button (`power`): a running OS shuts down (ACPI), a machine that is off powers on.
- power cut (`power_long`, Cloud `poweroff`): off at once.
- CTRL+ALT+DEL (`sw`) and Cloud `reboot`: a running OS reboots; nothing happens without one.
- inside the OS: `reboot` reboots, `poweroff`/`shutdown -h` leaves the machine off, `halt` leaves it
  powered but halted (only a reset or power cycle recovers it).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import paramiko

from lab.boot import BootContext, InstalledOs, RunningSystem, current_boot_handler, register_boot_handler
from lab.delays import Delays, MachineTimings
from lab.disks import Disk, DiskSpec, TalosInstall
from lab.disks import InstalledOs as InstalledOsContent
from lab.faults import Fault, Faults
from lab.net import ROBOT_PREFIX, LabNetwork
from lab.rescue.ssh import DropFault, Login, generate_host_key
from lab.rescue.system import RescueSetup, RescueSystem

__all__ = ["Datacenter", "Machine", "MachineSpec", "Phase", "RescueArm", "register_boot_handler"]

log = logging.getLogger(__name__)
RESCUE_TIMEOUT = 3600.0
"""An activation not used within 60 minutes lapses (hetzner.md §1.5, §2.3)."""


class Phase(StrEnum):
    OFF = "off"
    POST = "post"
    RESCUE_BOOTING = "rescue-booting"
    RESCUE = "rescue"
    OS_BOOTING = "os-booting"
    OS = "os"
    NO_BOOT = "no-boot"
    SHUTTING_DOWN = "shutting-down"
    HALTED = "halted"


@dataclass(frozen=True)
class MachineSpec:
    """A machine as the lab creates it."""

    kind: str
    """`robot` (dedicated server) or `cloud`."""
    ident: int
    """Robot server number or Cloud server id."""
    name: str
    product: str
    dc: str
    disks: tuple[DiskSpec, ...]
    reset_types: tuple[str, ...] = ("sw", "hw", "man", "power", "power_long")
    installed_os: str | None = None
    """Hostname of an OS installed on the first disk at delivery; None: blank disks."""

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.ident}"


@dataclass(frozen=True)
class RescueArm:
    """A rescue activation waiting for the next boot."""

    os: str
    keys: tuple[str, ...]
    """OpenSSH public key lines allowed to log in as root."""
    password: str = field(repr=False)
    host_key: paramiko.PKey = field(repr=False)
    """Generated at activation, used by that one boot: every rescue boot has a fresh host key."""
    armed_at: float = field(default_factory=time.monotonic)

    @property
    def host_key_fingerprint(self) -> str:
        """MD5 colon-hex, as Robot shows fingerprints."""
        return self.host_key.get_fingerprint().hex(":")


@dataclass(frozen=True)
class BootRecord:
    """One thing the machine booted."""

    target: str
    """`rescue`, `talos`, `os` or `none`."""
    disk: str | None = None
    detail: str = ""
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Placement:
    """Where a machine lives in the lab: addresses, state directory, sandbox uid."""

    address: str
    ipv6_net: str
    gateway: str
    prefix: int
    root: Path
    uid: int


class Machine:
    """One server. All state changes happen under its lock; delayed steps run on timer threads."""

    def __init__(self, spec: MachineSpec, placement: Placement, datacenter: Datacenter) -> None:
        self.spec, self.placement, self.datacenter = spec, placement, datacenter
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lab/{placement.address}/{spec.key}"))
        self.disks = [Disk(d, placement.root / "disks" / f"{d.name}.img") for d in spec.disks]
        self.user_data: str | None = None
        self.powered = False
        self.phase = Phase.OFF
        self.rescue: RescueArm | None = None
        self.running: RunningSystem | None = None
        self.boots: list[BootRecord] = []
        self.last_error: str | None = None
        self._os_host_key = generate_host_key()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._timers: list[threading.Timer] = []

    def __repr__(self) -> str:
        return f"Machine({self.key}, {self.address}, {self.phase.value})"

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def address(self) -> str:
        return self.placement.address

    @property
    def talos_port(self) -> int:
        return self.datacenter.talos_port

    @property
    def operating_status(self) -> str:
        """Robot's `operating_status`."""
        return "running" if self.powered else "shut off"

    # --- lifecycle --------------------------------------------------------------------------------

    def deliver(self) -> None:
        """Fresh from the datacenter: disks as delivered, powered on and booted (without delays)."""
        with self._lock:
            self._new_power_event()
            self._stop_running()
            shutil.rmtree(self.placement.root, ignore_errors=True)
            for disk in self.disks:
                disk.blank()
            if self.spec.installed_os and self.disks:
                self.disks[0].install_os(self.spec.installed_os)
            self.rescue, self.boots, self.last_error, self.user_data = None, [], None, None
            self.powered = True
            self._pick_boot_device(instant=True)

    def shutdown_lab(self) -> None:
        """Stop everything running on the machine (lab teardown)."""
        with self._lock:
            self._new_power_event()
            self._stop_running()
            self.powered, self.phase = False, Phase.OFF

    # --- rescue activation --------------------------------------------------------------------------

    def arm_rescue(self, os_name: str, keys: tuple[str, ...], password: str | None = None) -> RescueArm:
        """Arm the rescue system for the next boot (a new activation replaces an old one)."""
        arm = RescueArm(os_name, keys, password or _rescue_password(), generate_host_key())
        with self._lock:
            self.rescue = arm
            self._changed.notify_all()
        return arm

    def disarm_rescue(self) -> None:
        with self._lock:
            self.rescue = None
            self._changed.notify_all()

    @property
    def rescue_armed(self) -> bool:
        with self._lock:
            if self.rescue is not None and time.monotonic() - self.rescue.armed_at > self.datacenter.rescue_timeout:
                self.rescue = None
            return self.rescue is not None

    # --- power ------------------------------------------------------------------------------------

    def power_on(self) -> None:
        with self._lock:
            if not self.powered:
                self._new_power_event()
                self.powered = True
                self._begin_post()

    def hard_reset(self) -> None:
        """The reset button: restarts a powered machine; a machine that is off stays off."""
        with self._lock:
            if self.powered:
                self._new_power_event()
                self._stop_running()
                self._begin_post()

    def power_cut(self) -> None:
        with self._lock:
            self._new_power_event()
            self._stop_running()
            self._set(Phase.OFF, powered=False)

    def power_button(self) -> None:
        """Short press: a running OS shuts down; a machine that is off powers on."""
        with self._lock:
            if not self.powered:
                self.power_on()
            elif self.running is not None:
                self._orderly("poweroff")
            else:
                self.power_cut()

    def ctrl_alt_del(self) -> None:
        """A running OS reboots; firmware, a halted or bootless machine ignore it."""
        with self._lock:
            if self.running is not None:
                self._orderly("reboot")

    def power_cycle(self) -> None:
        """A technician's power cycle (Robot `man`): off machines come on, running ones restart."""
        with self._lock:
            if self.powered:
                self.hard_reset()
            else:
                self.power_on()

    def os_power(self, action: str) -> None:
        """Called by the running system: `reboot`, `poweroff` or `halt`."""
        with self._lock:
            if self.running is not None:
                self._orderly(action)

    # --- waiting (tests) --------------------------------------------------------------------------

    def wait_phase(self, *phases: Phase, timeout: float = 10.0) -> Phase:
        """Block until the machine is in one of `phases`; raise TimeoutError naming where it is."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.phase not in phases:
                left = deadline - time.monotonic()
                if left <= 0:
                    wanted = ", ".join(p.value for p in phases)
                    raise TimeoutError(f"{self.key} is {self.phase.value}, not {wanted}, after {timeout}s")
                self._changed.wait(left)
            return self.phase

    # --- internals --------------------------------------------------------------------------------

    def _timings(self) -> MachineTimings:
        return self.datacenter.delays.timings(self.spec.kind)

    def _set(self, phase: Phase, *, powered: bool | None = None) -> None:
        self.phase = phase
        if powered is not None:
            self.powered = powered
        self._changed.notify_all()

    def _new_power_event(self) -> None:
        self._generation += 1
        self._cancel_steps()

    def _cancel_steps(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _after(self, delay: float, step: Callable[..., None], *args: Any) -> None:
        generation = self._generation
        timer = threading.Timer(delay, self._run_step, (generation, step, args))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _run_step(self, generation: int, step: Callable[..., None], args: tuple[Any, ...]) -> None:
        with self._lock:
            if generation != self._generation:
                return
            try:
                step(*args)
            except Exception as err:  # a failing boot must not kill the timer thread silently
                log.exception("%s: %s failed", self.key, step.__name__)
                self.last_error = f"{step.__name__}: {err}"
                self._set(Phase.NO_BOOT)

    def _stop_running(self) -> None:
        running, self.running = self.running, None
        if running is not None:
            running.stop()

    def _orderly(self, action: str) -> None:
        """An OS going down: its services stop at once, power follows after the shutdown time."""
        self._new_power_event()
        self._stop_running()
        self._set(Phase.SHUTTING_DOWN)
        after = {"reboot": self._begin_post, "poweroff": self._off, "halt": self._halted}[action]
        self._after(self._timings().shutdown, after)

    def _off(self) -> None:
        self._set(Phase.OFF, powered=False)

    def _halted(self) -> None:
        self._set(Phase.HALTED)

    def _slow_extra(self) -> float:
        slow = self.datacenter.faults.take(Fault.BOOT_SLOW, self.key)
        return float(slow.params.get("extra", 1.0)) if slow else 0.0

    def _begin_post(self) -> None:
        self._set(Phase.POST)
        self._after(self._timings().post + self._slow_extra(), self._pick_boot_device)

    def _pick_boot_device(self, instant: bool = False) -> None:
        timings, faults = self._timings(), self.datacenter.faults
        arm = self.rescue if self.rescue_armed else None
        if arm is not None and faults.take(Fault.RESCUE_NOT_COMING_UP, self.key) is None:
            self.rescue = None
            self._set(Phase.RESCUE_BOOTING)
            self._step(instant, timings.rescue_boot, self._start_rescue, arm)
            return
        disks = list(self.disks)
        if faults.take(Fault.BOOT_WRONG_DISK_FIRST, self.key):
            disks.reverse()
        for disk in disks:
            content = disk.inspect()
            if isinstance(content, TalosInstall):
                self._set(Phase.OS_BOOTING)
                self._step(instant, timings.os_boot, self._start_talos, disk, content)
                return
            if isinstance(content, InstalledOsContent):
                self._set(Phase.OS_BOOTING)
                self._step(instant, timings.os_boot, self._start_installed_os, disk, content)
                return
        self.boots.append(BootRecord("none"))
        self._set(Phase.NO_BOOT)

    def _step(self, instant: bool, delay: float, step: Callable[..., None], *args: Any) -> None:
        if instant:
            step(*args)
        else:
            self._after(delay + self._slow_extra(), step, *args)

    def _start_rescue(self, arm: RescueArm) -> None:
        system = RescueSystem(
            RescueSetup(
                address=self.address,
                ssh_port=self.datacenter.ssh_port,
                root=self.placement.root / "rescue",
                uid=self.placement.uid,
                disks=self.disks,
                hardware=self._hardware(),
                host_key=arm.host_key,
                login=Login(arm.password, arm.keys),
                power=self.os_power,
                drop=self._drop_fault(),
            )
        )
        system.start()
        self.running = system
        self.boots.append(BootRecord("rescue", detail=arm.host_key_fingerprint))
        self._set(Phase.RESCUE)

    def _start_talos(self, disk: Disk, content: TalosInstall) -> None:
        self.running = current_boot_handler()(BootContext(self, disk, content.image))
        self.boots.append(BootRecord("talos", disk.spec.name, content.image.version))
        self._set(Phase.OS)

    def _start_installed_os(self, disk: Disk, content: InstalledOsContent) -> None:
        self.running = InstalledOs(self.address, self.datacenter.ssh_port, self._os_host_key, content.hostname)
        self.boots.append(BootRecord("os", disk.spec.name, content.hostname))
        self._set(Phase.OS)

    def _drop_fault(self) -> DropFault:
        faults, fault = self.datacenter.faults, Fault.SSH_DROP_MID_WRITE

        def delay() -> float | None:
            arm = faults.peek(fault, self.key)
            return None if arm is None else float(arm.params.get("after", 0.2))

        return DropFault(delay, lambda: faults.take(fault, self.key) is not None)

    def _hardware(self) -> dict[str, Any]:
        manufacturer = "Hetzner" if self.spec.kind == "cloud" else "FUJITSU"
        return {"uuid": self.uuid, "manufacturer": manufacturer, "product": self.spec.product, "serial": self.key}


def _rescue_password() -> str:
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class Datacenter:
    """All machines of one lab: Robot servers by number, Cloud servers by id."""

    def __init__(
        self,
        network: LabNetwork,
        root: Path,
        delays: Delays,
        faults: Faults,
        *,
        ssh_port: int = 22,
        talos_port: int = 50000,
        rescue_timeout: float = RESCUE_TIMEOUT,
    ) -> None:
        self.network, self.root, self.delays, self.faults = network, root, delays, faults
        self.ssh_port, self.talos_port, self.rescue_timeout = ssh_port, talos_port, rescue_timeout
        self.machines: dict[str, Machine] = {}
        self._robot_specs: list[MachineSpec] = []
        self._cloud_slots: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def uid_base(self) -> int:
        """Host uids of the rescue sandboxes: one per machine, distinct per lab network."""
        return 1_000_000 + self.network.net * 1000

    def add_robot_server(self, spec: MachineSpec) -> Machine:
        """Add a dedicated server (kept across `restore`)."""
        with self._lock:
            slot = len(self._robot_specs)
            self._robot_specs.append(spec)
        return self._place(spec, self.network.robot_server(slot), slot, "robot")

    def add_cloud_server(self, spec: MachineSpec) -> Machine:
        """Add a Cloud server (removed again by `restore`); it starts powered off with blank disks."""
        with self._lock:
            slot = next(s for s in range(240) if s not in self._cloud_slots.values())
            self._cloud_slots[spec.ident] = slot
        machine = self._place(spec, self.network.cloud_server(slot), 100 + slot, "cloud", deliver=False)
        for disk in machine.disks:
            disk.blank()
        if spec.installed_os and machine.disks:
            machine.disks[0].install_os(spec.installed_os)
        return machine

    def remove_cloud_server(self, ident: int) -> None:
        machine = self.machines.pop(f"cloud-{ident}", None)
        with self._lock:
            self._cloud_slots.pop(ident, None)
        if machine is not None:
            machine.shutdown_lab()
            shutil.rmtree(machine.placement.root, ignore_errors=True)

    def robot(self, number: int) -> Machine | None:
        return self.machines.get(f"robot-{number}")

    def cloud(self, ident: int) -> Machine | None:
        return self.machines.get(f"cloud-{ident}")

    def robot_machines(self) -> list[Machine]:
        return [m for m in self.machines.values() if m.spec.kind == "robot"]

    def restore(self) -> None:
        """A fresh datacenter: Cloud servers gone, dedicated servers as delivered."""
        for ident in [m.spec.ident for m in self.machines.values() if m.spec.kind == "cloud"]:
            self.remove_cloud_server(ident)
        for machine in self.robot_machines():
            machine.deliver()

    def stop(self) -> None:
        for machine in list(self.machines.values()):
            machine.shutdown_lab()

    def _place(self, spec: MachineSpec, address: str, slot: int, kind: str, deliver: bool = True) -> Machine:
        placement = Placement(
            address=address,
            ipv6_net=self.network.ipv6_net(kind, slot if kind == "robot" else slot - 100),
            gateway=self.network.robot_gateway if kind == "robot" else "172.31.1.1",
            prefix=ROBOT_PREFIX if kind == "robot" else 32,
            root=self.root / spec.key,
            uid=self.uid_base + slot,
        )
        machine = Machine(spec, placement, self)
        self.machines[spec.key] = machine
        if deliver:
            machine.deliver()
        return machine
