"""Rescue systems over SSH with paramiko as the client, and what the machine boots afterwards."""

from __future__ import annotations

import json
import os
import socket
import ssl
from pathlib import Path

import paramiko
import pytest
import requests
from hcloud import Client
from hcloud.images import Image
from hcloud.server_types import ServerType

from lab.datacenter import Machine, Phase
from lab.faults import Fault
from lab.services import Lab
from lab.testing import requires_root

from .helpers import new_key, run, ssh

pytestmark = requires_root()
NUMBER = 2100003
VERSION = "v1.13.9"


def _robot(lab: Lab, method: str, path: str, data: dict | list | None = None) -> dict:
    auth = (lab.spec.robot_user, lab.spec.robot_password)
    response = requests.request(method, lab.robot_url + path, data=data, auth=auth, timeout=10)
    response.raise_for_status()
    return response.json()


def _rescue_via_robot(lab: Lab, public_key: str) -> tuple[Machine, str]:
    """Store the key, arm rescue with it, hw reset, wait for SSH; the activation's password."""
    fingerprint = _robot(lab, "POST", "/key", {"name": "ops", "data": public_key})["key"]["fingerprint"]
    rescue = _robot(lab, "POST", f"/boot/{NUMBER}/rescue", [("os", "linux"), ("authorized_key[]", fingerprint)])
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "hw"})
    machine = lab.robot_server(NUMBER)
    machine.wait_phase(Phase.RESCUE)
    return machine, rescue["rescue"]["password"]


def _again(lab: Lab, machine: Machine) -> None:
    _robot(lab, "POST", f"/boot/{NUMBER}/rescue", {"os": "linux"})
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "hw"})
    machine.wait_phase(Phase.RESCUE)


def _write_image(client: paramiko.SSHClient, lab: Lab, target: str, fmt: str = ".raw.zst") -> tuple[int, str]:
    tool = "zstd -d" if fmt == ".raw.zst" else "xz -d"
    url = lab.image_url(VERSION, fmt=fmt)
    command = f"set -o pipefail; curl -fsSL {url} | {tool} | dd of={target} bs=4M status=none && sync"
    status, _, err = run(client, command)
    return status, err


def _talos_answers(address: str, port: int) -> bool:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((address, port), timeout=2) as raw, context.wrap_socket(raw) as tls:
            return tls.selected_alpn_protocol() == "h2"
    except OSError:
        return False


def _host_root_device() -> tuple[int, int]:
    """Major and minor of the device holding the host's root file system."""
    device = os.stat("/").st_dev
    return os.major(device), os.minor(device)


def test_rescue_login_with_key_shows_hostname_rescue(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, key=key)
    with client:
        assert run(client, "hostname") == (0, "rescue\n", "")
        assert (
            run(client, "id -u; test -x /root/.oldroot/nfs/install/installimage && echo hetzner")[1] == "0\nhetzner\n"
        )


def test_rescue_login_with_the_armed_password_and_not_another(lab: Lab) -> None:
    _, public = new_key()
    machine, password = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, password=password)
    client.close()
    with pytest.raises(paramiko.AuthenticationException):
        ssh(machine.address, password=password + "x")


def test_every_rescue_boot_has_a_fresh_host_key(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    first, policy = ssh(machine.address, key=key)
    first.close()
    _robot(
        lab,
        "POST",
        f"/boot/{NUMBER}/rescue",
        [("os", "linux"), ("authorized_key", _robot(lab, "GET", "/key")[0]["key"]["fingerprint"])],
    )
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "hw"})
    machine.wait_phase(Phase.RESCUE)
    second, second_policy = ssh(machine.address, key=key)
    second.close()
    assert policy.keys[0].asbytes() != second_policy.keys[0].asbytes()


def test_lsblk_lists_disks_with_model_serial_wwn_and_by_id(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, key=key)
    with client:
        _, out, _ = run(client, "lsblk --json --bytes -d -o NAME,SIZE,TYPE,MODEL,SERIAL,WWN,ROTA,TRAN")
        _, links, _ = run(client, "ls /dev/disk/by-id")
    disks = {d["name"]: d for d in json.loads(out)["blockdevices"]}
    for spec in machine.spec.disks:
        listed = disks[spec.name]
        assert (listed["size"], listed["model"], listed["serial"], listed["wwn"]) == (
            spec.size,
            spec.model,
            spec.serial,
            spec.wwn,
        )
        assert set(spec.by_id) <= set(links.split())
    assert disks["sda"]["rota"] is True and disks["nvme0n1"]["tran"] == "nvme"


def test_writing_an_image_to_a_by_id_path_changes_that_disk_only(lab: Lab, tmp_path: Path) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    target = machine.disks[1]
    sentinel = tmp_path / "host-file"
    sentinel.write_text("host")
    client, _ = ssh(machine.address, key=key)
    with client:
        assert _write_image(client, lab, f"/dev/disk/by-id/{target.spec.by_id[-1]}") == (0, "")
        _, out, _ = run(client, f"lsblk -J -o NAME,PARTLABEL /dev/{target.spec.name}")
        major, minor = _host_root_device()
        escape = run(client, f"echo x > {sentinel}; echo y > /tmp/inside; mknod /tmp/disk b {major} {minor}")
        _, devices, _ = run(client, "ls /sys/block; find /dev -type b")
    labels = [p["partlabel"] for p in json.loads(out)["blockdevices"][0]["children"]]
    assert labels == ["EFI", "BIOS", "BOOT", "META"]
    assert target.inspect() is not None and machine.disks[0].inspect() is None
    assert sentinel.read_text() == "host" and not Path("/tmp/inside").exists()
    assert escape[0] != 0 and "Operation not permitted" in escape[2]
    assert sorted(devices.split()) == sorted(f"/dev/{d.spec.name}" for d in machine.disks)


def test_reboot_boots_the_written_talos_image(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, key=key)
    with client:
        assert _write_image(client, lab, f"/dev/{machine.disks[0].spec.name}", fmt=".raw.xz") == (0, "")
        client.exec_command("reboot")
        machine.wait_phase(Phase.OS)
    assert machine.boots[-1].target == "talos" and machine.boots[-1].detail == VERSION
    assert _talos_answers(machine.address, lab.spec.talos_port)
    assert not machine.rescue_armed


def test_garbage_on_the_disk_never_comes_up(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, key=key)
    with client:
        run(client, f"dd if=/dev/urandom of=/dev/{machine.disks[0].spec.name} bs=1M count=8 status=none")
        client.exec_command("sync; reboot")
        machine.wait_phase(Phase.NO_BOOT)
    assert machine.boots[-1].target == "none"
    assert not _talos_answers(machine.address, lab.spec.talos_port)


def test_shutdown_h_leaves_the_server_off_until_a_power_reset(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, key=key)
    with client:
        client.exec_command("shutdown -h now")
        machine.wait_phase(Phase.OFF)
    assert _robot(lab, "GET", f"/reset/{NUMBER}")["reset"]["operating_status"] == "shut off"
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "hw"})
    assert machine.phase is Phase.OFF
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "power"})
    machine.wait_phase(Phase.NO_BOOT)


def test_connection_dropped_mid_write_leaves_an_unbootable_disk(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    lab.faults.arm(Fault.SSH_DROP_MID_WRITE, target=machine.key, after=0.3)
    client, _ = ssh(machine.address, key=key)
    with client:
        slow_writer = f"(sleep 3; cat) | dd of=/dev/{machine.disks[0].spec.name} bs=64k"
        command = f"curl -fsSL {lab.image_url(VERSION)} | zstd -d | {slow_writer}"
        status, _, _ = run(client, command)
        transport = client.get_transport()
        assert status == -1 and transport is not None and not transport.is_active()
    assert lab.faults.fired(Fault.SSH_DROP_MID_WRITE) == 1
    machine.hard_reset()
    machine.wait_phase(Phase.NO_BOOT)


def test_connection_drop_waits_for_a_command_that_writes_a_disk(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    lab.faults.arm(Fault.SSH_DROP_MID_WRITE, target=machine.key, after=0.1)
    client, _ = ssh(machine.address, key=key)
    with client:
        reading = f"sleep 0.5; dd if=/dev/{machine.disks[0].spec.name} of=/dev/null bs=64k count=1 status=none"
        assert run(client, reading)[0] == 0
        assert lab.faults.fired(Fault.SSH_DROP_MID_WRITE) == 0
        status, _, _ = run(client, f"sleep 0.5 | dd of=/dev/{machine.disks[0].spec.name} bs=64k")
    assert status == -1 and lab.faults.fired(Fault.SSH_DROP_MID_WRITE) == 1


def test_rescue_not_coming_up_boots_the_disk_and_stays_armed(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    client, _ = ssh(machine.address, key=key)
    with client:
        _write_image(client, lab, f"/dev/{machine.disks[0].spec.name}")
    _robot(lab, "POST", f"/boot/{NUMBER}/rescue", {"os": "linux"})
    lab.faults.arm(Fault.RESCUE_NOT_COMING_UP, target=machine.key)
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "hw"})
    machine.wait_phase(Phase.OS)
    assert _robot(lab, "GET", f"/boot/{NUMBER}/rescue")["rescue"]["active"] is True
    _robot(lab, "POST", f"/reset/{NUMBER}", {"type": "hw"})
    machine.wait_phase(Phase.RESCUE)


def test_wrong_disk_first_boots_the_other_installed_system(lab: Lab) -> None:
    key, public = new_key()
    machine, _ = _rescue_via_robot(lab, public)
    machine.disks[-1].install_os("old-debian")
    client, _ = ssh(machine.address, key=key)
    with client:
        _write_image(client, lab, f"/dev/{machine.disks[0].spec.name}")
    lab.faults.arm(Fault.BOOT_WRONG_DISK_FIRST, target=machine.key)
    machine.hard_reset()
    machine.wait_phase(Phase.OS)
    assert machine.boots[-1].target == "os" and machine.boots[-1].detail == "old-debian"
    machine.hard_reset()
    machine.wait_phase(Phase.OS)
    assert machine.boots[-1].target == "talos"


def test_slow_boot_fault_delays_but_completes_the_boot(lab: Lab) -> None:
    lab.faults.arm(Fault.BOOT_SLOW, target=f"robot-{NUMBER}", extra=0.2)
    _, public = new_key()
    _rescue_via_robot(lab, public)
    assert lab.faults.fired(Fault.BOOT_SLOW) == 1


def test_installed_os_refuses_the_rescue_credentials(lab: Lab) -> None:
    key, public = new_key()
    cloud = Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.02)
    ssh_key = cloud.ssh_keys.create(name="ops", public_key=public)
    server = cloud.servers.create(
        "w-2", server_type=ServerType(name="cx23"), image=Image(name="debian-12"), ssh_keys=[ssh_key]
    ).server
    machine = lab.cloud_server(server.id)
    machine.wait_phase(Phase.OS)
    with pytest.raises(paramiko.AuthenticationException):
        ssh(machine.address, key=key)
    cloud.servers.enable_rescue(server, type="linux64", ssh_keys=[ssh_key.id]).action.wait_until_finished()
    cloud.servers.reset(server).wait_until_finished()
    machine.wait_phase(Phase.RESCUE)
    client, _ = ssh(machine.address, key=key)
    with client:
        assert run(client, "hostname; lsblk -dn -o NAME,MODEL") == (0, "rescue\nsda QEMU HARDDISK\n", "")
