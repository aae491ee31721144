"""Install Talos on a Hetzner server from the rescue system, or adopt a node that already has it.

The flow: probe the Talos API port (a node in maintenance mode is adopted; a configured node is only
reinstalled when asked), arm rescue and reset (escalating reset types a bounded number of times), prove the
SSH server is the rescue system, pick exactly one disk, stream and verify the image, reboot (never halt),
and wait until Talos answers. Every wait has its own deadline; progress goes to the callback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

import paramiko

from common.waiting import (
    Backoff,
    Deadline,
    NotYet,
    Progress,
    Sleep,
    WaitTimeout,
    format_elapsed,
    no_progress,
    wait_until,
)
from hetzner.disks import Disk, DiskError, DiskSelector, WipePolicy, check_wipe, select_install_disk
from hetzner.errors import HetznerError
from hetzner.images import ImageSource
from hetzner.keys import md5_fingerprint, public_key_line
from hetzner.machines import RescueAccess, RescueMachine
from hetzner.probe import TALOS_API_PORT, NodeProbe, Probe, TalosState, talos_api_probe
from hetzner.rescue import (
    HostKeyPins,
    ImageWriteError,
    NotRescueError,
    RescueSession,
    RescueUnreachable,
    WriteInterrupted,
    WriteResult,
)

_TALOS_UP = frozenset({TalosState.MAINTENANCE, TalosState.CONFIGURED})
_POLL = Backoff(first=0.05, factor=1.5, cap=0.1)
"""Polls for SSH and the Talos port are cheap (a refused connect); a short cap keeps the wait close to the boot."""
_RESCUE_ATTEMPTS = 2
"""Connections to one rescue boot: the first, and one more after a drop."""


class InstallError(HetznerError):
    """The install cannot proceed or did not complete; the message names the step and the fix."""


class Outcome(StrEnum):
    INSTALLED = "installed"
    ADOPTED = "adopted"


@dataclass(frozen=True)
class Timeouts:
    """Seconds each phase may take. Real dedicated servers spend minutes in firmware on every reset."""

    rescue: float = 600.0
    """Per reset attempt: from the reset until the rescue system answers on SSH."""
    install: float = 3600.0
    """Download and write of the image."""
    boot: float = 900.0
    """From the reboot until Talos answers on its API port."""
    reset_attempts: int = 3


@dataclass(frozen=True)
class InstallPlan:
    """Everything the install needs to know about one node (plain data, no credentials)."""

    node: str
    address: str
    image: ImageSource
    selector: DiskSelector
    wipe: WipePolicy = WipePolicy.REFUSE
    reinstall: bool = False
    """A configured Talos may be wiped and reinstalled (the user asked for it with the reinstall trigger)."""
    ssh_port: int = 22
    talos_port: int = TALOS_API_PORT
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(frozen=True)
class InstallReport:
    """What happened, for the provider's outputs; the one secret, `rescue_password`, is never in its repr."""

    outcome: Outcome
    talos_state: str
    disk: Disk | None = None
    sha256: str | None = None
    verified: bool = False
    resets: tuple[str, ...] = ()
    rescue_host_key: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    rescue_password: str | None = field(default=None, repr=False)
    """The root password of the rescue activation that came up (secret: for the provider's secret output only)."""


def install_talos(
    machine: RescueMachine,
    plan: InstallPlan,
    *,
    key: paramiko.PKey,
    probe: Probe = talos_api_probe,
    progress: Progress = no_progress,
    sleep: Sleep = time.sleep,
) -> InstallReport:
    """Bring the node to Talos from the rescue system, or adopt it when Talos already waits for its config."""
    started = time.monotonic()
    found = probe(plan.address, plan.talos_port, 5.0)
    if _adoptable(plan, found):
        progress(f"Talos already up in maintenance mode ({found.version or 'version not readable'}): adopted")
        return _adopted(found, started)
    if found.state is TalosState.CONFIGURED:
        progress("Talos is configured; reinstalling as asked by the reinstall trigger")
    session, resets, access = _enter_rescue(machine, plan, key, progress, sleep)
    timings = {"rescue": time.monotonic() - started}
    install_started = time.monotonic()
    try:
        disk, written, host_key = _install_in_rescue(session, plan, key, progress, sleep)
    except TalosOnDisk as found_on_disk:
        return _adopt_talos_on_disk(plan, found_on_disk, probe, progress, sleep, started)
    timings["install"] = time.monotonic() - install_started
    boot_started = time.monotonic()
    up = _wait_for_talos(plan, probe, progress, sleep)
    timings["boot"] = time.monotonic() - boot_started
    timings["total"] = time.monotonic() - started
    progress(f"Talos up ({up.state.value}) after {format_elapsed(timings['total'])}")
    return InstallReport(
        outcome=Outcome.INSTALLED,
        talos_state=up.state.value,
        disk=disk,
        sha256=written.sha256,
        verified=written.verified,
        resets=resets,
        rescue_host_key=host_key,
        timings=_rounded(timings),
        rescue_password=access.password,
    )


class TalosOnDisk(Exception):
    """The install disk holds only Talos partitions, which the wipe policy protects; the rescue system is rebooting
    into them to see what they are."""

    def __init__(self, disk: Disk, refusal: str) -> None:
        super().__init__(refusal)
        self.disk, self.refusal = disk, refusal


def _adopt_talos_on_disk(
    plan: InstallPlan, found: TalosOnDisk, probe: Probe, progress: Progress, sleep: Sleep, started: float
) -> InstallReport:
    """Adopt the Talos the disk boots into when it waits for its config on the wanted version (an install whose
    run was killed after the image was written, before Talos came up); refuse otherwise, saying what booted."""
    try:
        up = _wait_for_talos(plan, probe, progress, sleep)
    except InstallError:
        raise InstallError(f"{plan.node}: {found.refusal}; booted, it did not bring up Talos either") from None
    if _adoptable(plan, up):
        progress(f"Talos on {found.disk.describe()} is up in maintenance mode ({up.version}): adopted")
        return _adopted(up, started, found.disk)
    raise InstallError(f"{plan.node}: {found.refusal}; booted, it runs Talos {up.version} ({up.state.value})")


def _adopted(found: NodeProbe, started: float, disk: Disk | None = None) -> InstallReport:
    return InstallReport(
        Outcome.ADOPTED, found.state.value, disk=disk, timings=_rounded({"total": time.monotonic() - started})
    )


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {name: round(seconds, 3) for name, seconds in timings.items()}


def _adoptable(plan: InstallPlan, found: NodeProbe) -> bool:
    """True when the node already is where an install would leave it; raise when it must not be touched."""
    if found.state is TalosState.MAINTENANCE:
        wanted = plan.image.version
        if found.version is None or wanted is None or found.version == wanted:
            return True
    if found.state is TalosState.CONFIGURED and not plan.reinstall:
        raise InstallError(
            f"{plan.node}: Talos is configured and running at {plan.address}; refusing to wipe it "
            "(fix: to reinstall, set the resource's reinstall trigger to a new value; to keep it, import the node)"
        )
    return False


def _enter_rescue(
    machine: RescueMachine, plan: InstallPlan, key: paramiko.PKey, progress: Progress, sleep: Sleep
) -> tuple[RescueSession, tuple[str, ...], RescueAccess]:
    """Arm rescue and reset until the rescue system answers, escalating reset types; raise with what was tried.

    Returns the session, the resets done and the access (host keys, password) of the activation that came up."""
    public_key, fingerprint = public_key_line(key, "talos-hetzner"), md5_fingerprint(key)
    tried: list[str] = []
    resets: list[str] = []
    for attempt in range(plan.timeouts.reset_attempts):
        progress(f"arming rescue on {machine.label}")
        access = machine.arm_rescue(public_key, fingerprint)
        done = machine.reset(attempt)
        resets.append(done)
        progress(f"{done}; waiting for the rescue system")
        deadline = Deadline.after(plan.timeouts.rescue)
        pins = HostKeyPins(access.host_keys)
        try:
            session = wait_until(
                partial(_rescue_session, plan, key, pins),
                deadline,
                what="the rescue system on SSH",
                backoff=_POLL,
                progress=progress,
                sleep=sleep,
            )
        except WaitTimeout as timeout:
            tried.append(f"{done}: {timeout}")
            continue
        progress(f"rescue system up after {format_elapsed(deadline.elapsed())} (host key {session.host_key})")
        return session, tuple(resets), access
    raise InstallError(
        f"{plan.node}: the rescue system did not come up on {machine.label} after {len(tried)} reset(s): "
        + "; ".join(tried)
        + " (fix: check the server in the Hetzner console; a dedicated server may need a manual reset)"
    )


def _rescue_session(plan: InstallPlan, key: paramiko.PKey, pins: HostKeyPins) -> RescueSession:
    try:
        session = RescueSession.connect(plan.address, key=key, port=plan.ssh_port, pins=pins)
    except RescueUnreachable as error:
        raise NotYet(str(error)) from None
    try:
        session.prove_rescue()
    except (NotRescueError, RescueUnreachable) as error:
        session.close()
        raise NotYet(str(error)) from None
    return session


def _choose_disk(session: RescueSession, plan: InstallPlan, progress: Progress, started: Disk | None) -> Disk:
    """The install disk; one this run `started` writing may hold the Talos partitions it wrote, whatever the policy
    (a connection lost after the partition table was written leaves them behind)."""
    try:
        disk = select_install_disk(session.disks(), plan.selector)
    except HetznerError as error:
        raise InstallError(f"{plan.node}: {error}") from None
    ours = started is not None and (disk.by_id or disk.path) == (started.by_id or started.path)
    try:
        check_wipe(disk, plan.wipe, resumed=ours)
    except DiskError as error:
        if disk.holds_only_talos and not disk.mounted and not plan.reinstall:
            raise TalosOnDisk(disk, str(error)) from None
        raise InstallError(f"{plan.node}: {error}") from None
    progress(f"install disk {disk.describe()}")
    if disk.holders:
        session.release(disk)
    return disk


def _published_checksum(session: RescueSession, image: ImageSource, progress: Progress) -> str | None:
    if image.checksum_url is None:
        return None
    published = session.fetch_checksum(image.checksum_url)
    if published is None:
        progress("no published checksum for the image; relying on TLS and the decompressor's integrity check")
    return published


def _install_in_rescue(
    session: RescueSession,
    plan: InstallPlan,
    key: paramiko.PKey,
    progress: Progress,
    sleep: Sleep,
) -> tuple[Disk, WriteResult, str]:
    """Choose the disk, write, verify and reboot; return the disk, the write and the rescue host key.

    A dropped connection reconnects to the same rescue boot (host key pinned) and starts over from the disk
    inventory, once: a half-written disk has no partition table, so it is chosen again and not refused.
    """
    deadline = Deadline.after(plan.timeouts.install)
    attempt, started = 1, None
    while True:
        try:
            with session:
                try:
                    disk = started = _choose_disk(session, plan, progress, started)
                except TalosOnDisk as found:
                    progress(f"{found.disk.describe()} already holds Talos: booting it to see whether it waits")
                    session.reboot()
                    raise
                sha256 = plan.image.sha256 or _published_checksum(session, plan.image, progress)
                written = session.write_image(plan.image, disk, sha256=sha256, deadline=deadline, progress=progress)
                progress("rebooting into Talos")
                session.reboot()
            return disk, written, session.host_key
        except (WriteInterrupted, RescueUnreachable) as error:
            if attempt == _RESCUE_ATTEMPTS:
                raise InstallError(f"{plan.node}: {error}") from None
            progress(f"{error}; reconnecting to start over")
        except ImageWriteError as error:
            raise InstallError(f"{plan.node}: {error}") from None
        session = wait_until(
            partial(_rescue_session, plan, key, session.pins.pinned()),
            deadline.within(plan.timeouts.rescue),
            what="the rescue system to answer again",
            backoff=_POLL,
            progress=progress,
            sleep=sleep,
        )
        attempt += 1


def _wait_for_talos(plan: InstallPlan, probe: Probe, progress: Progress, sleep: Sleep) -> NodeProbe:
    def up() -> NodeProbe:
        found = probe(plan.address, plan.talos_port, 3.0)
        if found.state not in _TALOS_UP:
            raise NotYet(f"Talos API {found.state.value} ({found.detail})")
        return found

    try:
        return wait_until(
            up,
            Deadline.after(plan.timeouts.boot),
            what="Talos on its API port",
            backoff=_POLL,
            progress=progress,
            sleep=sleep,
        )
    except WaitTimeout as timeout:
        raise InstallError(
            f"{plan.node}: the image was written and the server rebooted, but {timeout} (fix: check that the "
            "server boots from the install disk first; Talos comes up in maintenance mode on port 50000)"
        ) from None
