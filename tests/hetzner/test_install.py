"""The install flow's decisions with a fake machine and probe: adopt, refuse, and bounded rescue escalation.

The full flow (rescue SSH, disks, write, reboot) runs against the lab in the provider tests.
"""

from __future__ import annotations

import socket

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hetzner.disks import Disk, DiskSelector, parse_inventory
from hetzner.images import image_from_inputs
from hetzner.install import InstallError, InstallPlan, Outcome, TalosOnDisk, Timeouts, _choose_disk, install_talos
from hetzner.keys import load_private_key
from hetzner.machines import RescueAccess
from hetzner.probe import NodeProbe, Probe, TalosState
from tests.hetzner.test_disks import GB, device, inventory, part


class FakeMachine:
    label = "robot server 321"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def arm_rescue(self, public_key: str, fingerprint: str) -> RescueAccess:
        self.calls.append(f"arm {fingerprint.count(':')}")
        return RescueAccess()

    def reset(self, attempt: int) -> str:
        self.calls.append(f"reset {attempt}")
        return ["hw reset", "sw reset"][attempt % 2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plan(**overrides: object) -> InstallPlan:
    base = {
        "node": "cp-1",
        "address": "127.0.0.1",
        "image": image_from_inputs({"version": "v1.13.9"}),
        "selector": DiskSelector(),
        "ssh_port": closed_port(),
        "timeouts": Timeouts(rescue=0.0, install=10, boot=0.0, reset_attempts=3),
    }
    return InstallPlan(**{**base, **overrides})  # type: ignore[arg-type]


def key() -> paramiko.PKey:
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    return load_private_key(private.decode())


def probe_says(state: TalosState, version: str | None = None) -> Probe:
    return lambda _address, _port, _timeout: NodeProbe(state, version)


def test_maintenance_node_adopted_without_touching_the_machine() -> None:
    machine = FakeMachine()

    report = install_talos(machine, plan(), key=key(), probe=probe_says(TalosState.MAINTENANCE))

    assert report.outcome is Outcome.ADOPTED and machine.calls == []


def test_maintenance_node_with_other_version_is_installed() -> None:
    machine = FakeMachine()

    with pytest.raises(InstallError):  # gets as far as the rescue system, which never answers here
        install_talos(machine, plan(), key=key(), probe=probe_says(TalosState.MAINTENANCE, "v1.12.0"))

    assert machine.calls[:2] == ["arm 15", "reset 0"]


def test_configured_node_refused_without_reinstall() -> None:
    machine = FakeMachine()

    with pytest.raises(InstallError, match=r"Talos is configured and running at 127\.0\.0\.1; refusing to wipe it"):
        install_talos(machine, plan(), key=key(), probe=probe_says(TalosState.CONFIGURED))

    assert machine.calls == []


def test_rescue_not_coming_up_escalates_a_bounded_number_of_times() -> None:
    machine = FakeMachine()
    lines: list[str] = []

    with pytest.raises(InstallError) as raised:
        install_talos(machine, plan(), key=key(), probe=probe_says(TalosState.DOWN), progress=lines.append)

    assert machine.calls == ["arm 15", "reset 0", "arm 15", "reset 1", "arm 15", "reset 2"]
    message = str(raised.value)
    assert "the rescue system did not come up on robot server 321 after 3 reset(s): hw reset: gave up" in message
    assert "sw reset: gave up" in message and "connection refused" in message
    assert "hw reset; waiting for the rescue system" in lines


class InventorySession:
    """A rescue session that only lists disks (a disk holding data is never released here)."""

    def __init__(self, listing: str) -> None:
        self.listing = listing

    def disks(self) -> list[Disk]:
        return parse_inventory(self.listing)


def test_disk_this_run_began_writing_is_chosen_again_with_the_partitions_it_wrote() -> None:
    blank = inventory(device("sda", 100 * GB, serial="A1"), device("sdb", 100 * GB, serial="B2"))
    talos = [part(f"sda{i}", partlabel=label) for i, label in enumerate(("EFI", "META", "STATE"), 1)]
    after_drop = inventory(device("sda", 100 * GB, serial="A1", children=talos), device("sdb", 100 * GB, serial="B2"))
    wanted, lines = plan(selector=DiskSelector(serial="A1")), []
    first = _choose_disk(InventorySession(blank), wanted, lines.append, None)  # type: ignore[arg-type]
    other = parse_inventory(blank)[1]

    again = _choose_disk(InventorySession(after_drop), wanted, lines.append, first)  # type: ignore[arg-type]

    assert again.name == "sda" and again.partitions and len(lines) == 2
    with pytest.raises(TalosOnDisk, match="refusing to overwrite /dev/sda"):  # then booted to see what it is
        _choose_disk(InventorySession(after_drop), wanted, lines.append, other)  # type: ignore[arg-type]
