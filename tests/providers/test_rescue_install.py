"""RescueInstall through the SDK's dynamic-provider gRPC server: check, diff, update, delete and the create paths
that need no Hetzner (adopt, refuse), plus what must never leak."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcloud
import pulumi
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from pulumi.runtime.mocks import MockMonitor

from hetzner.keys import md5_fingerprint, sha256_fingerprint
from hetzner.robot.client import RobotClient
from lab.datacenter import Machine, Phase, RescueArm
from lab.disks import InstalledOs
from lab.faults import Fault
from lab.rescue.ssh import generate_host_key
from lab.services import Lab
from lab.testing import requires_root, slow_image_downloads
from providers.rescue_install import RescueInstall, RescueInstallArgs, RescueInstallProvider
from tests.hetzner.scripted_http import ScriptedServer
from tests.providers.harness import (
    UNKNOWN,
    ProviderCallError,
    ProviderServer,
    ResourceDriver,
    provider_server,
)

TYPE = "pulumi-python:dynamic/hetzner:RescueInstall"
ROBOT_PASSWORD = "robot-Pa55word-never-shown"
CLOUD_TOKEN = "c" * 64
SSH_KEY = (
    ed25519.Ed25519PrivateKey.generate()
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    .decode()
)
SECRETS = (ROBOT_PASSWORD, CLOUD_TOKEN, SSH_KEY.splitlines()[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(robot_url: str | None = None, **overrides: str) -> dict[str, str]:
    base = {
        "talos-hetzner:robotUser": "#ws+abc",
        "talos-hetzner:robotPassword": ROBOT_PASSWORD,
        "talos-hetzner:robotUrl": robot_url or f"http://127.0.0.1:{closed_port()}",
        "hcloud:token": CLOUD_TOKEN,
        "hcloud:endpoint": f"http://127.0.0.1:{closed_port()}/v1",
        "talos-hetzner:rescueSshKey": SSH_KEY,
    }
    return {**base, **overrides}


def inputs(**overrides: Any) -> dict[str, Any]:
    base = {
        "node": "cp-1",
        "server": {"kind": "robot", "id": 321},
        "address": "127.0.0.1",
        "sshPort": 2222,
        "talosPort": 1,  # nothing listens on port 1: Talos is down
        "image": {"version": "v1.13.9"},
        "disk": {"model": "SAMSUNG*"},
        "wipe": "refuse",
        "timeouts": {"rescue": 5, "install": 60, "boot": 5, "resetAttempts": 1},
    }
    return {**base, **overrides}


@pytest.fixture
def robot_api() -> Iterator[ScriptedServer]:
    """A Robot that rejects the credentials (401 is never retried: a failing create ends at once)."""
    with ScriptedServer() as robot:
        for _ in range(5):
            robot.answer(401, {"error": {"status": 401, "code": "UNAUTHORIZED", "message": "Unauthorized"}})
        yield robot


@pytest.fixture
def server(tmp_path: Path, robot_api: ScriptedServer) -> Iterator[ProviderServer]:
    secrets = ("talos-hetzner:robotPassword", "hcloud:token", "talos-hetzner:rescueSshKey")
    with provider_server(tmp_path / "provider.log", config(robot_api.url), secrets=secrets) as started:
        yield started


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, RescueInstallProvider(), "cp-1-install", TYPE)


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for value in SECRETS:
            assert value not in text


def test_check_valid_inputs_pass(resource: ResourceDriver) -> None:
    checked, diff = resource.preview(inputs())

    assert checked.failures == [] and diff is None
    assert checked.inputs["server"] == {"kind": "robot", "id": 321.0}


def test_check_names_each_bad_field_with_its_fix(resource: ResourceDriver) -> None:
    bad = inputs(
        server={"kind": "vps", "id": -1},
        address="",
        sshPort=70000,
        image={"version": "v1.99.0", "format": "gz"},
        disk={"wwn": "nope", "minSize": "2TB", "maxSize": "1TB"},
        wipe="sometimes",
        timeouts={"rescue": 0, "later": 1},
    )

    checked, _ = resource.preview(bad)

    fields = [name for name, _ in checked.failures]
    assert fields == [
        "server",
        "server",
        "address",
        "sshPort",
        "image.format",
        "image.version",
        "disk.maxSize",
        "disk.wwn",
        "wipe",
        "timeouts.later",
        "timeouts.rescue",
    ]
    reasons = dict(checked.failures)
    assert "supported contracts" in reasons["image.version"] and "fix:" in reasons["disk.wwn"]


def test_check_unknown_values_in_preview_not_judged(resource: ResourceDriver) -> None:
    checked, _ = resource.preview(inputs(server={"kind": "cloud", "id": UNKNOWN}, address=UNKNOWN))
    whole, _ = resource.preview(inputs(server=UNKNOWN, image=UNKNOWN, disk={"serial": UNKNOWN}))

    assert checked.failures == [] and whole.failures == []


def test_check_missing_credentials_named_with_config_command(tmp_path: Path) -> None:
    partial = {"talos-hetzner:robotUser": "#ws+abc"}
    with provider_server(tmp_path / "log", partial) as server:
        driver = ResourceDriver(server, RescueInstallProvider(), "cp-1-install", TYPE)
        checked, _ = driver.preview(inputs())

    reasons = [reason for name, reason in checked.failures if name == "server"]
    assert reasons == [
        "robotPassword is not set (fix: pulumi config set --secret robotPassword ...)",
        "rescueSshKey is not set (fix: pulumi config set --secret rescueSshKey ...)",
    ]


def test_check_unusable_ssh_key_named_without_quoting_it(tmp_path: Path) -> None:
    with provider_server(tmp_path / "log", config(**{"talos-hetzner:rescueSshKey": "not a key"})) as server:
        driver = ResourceDriver(server, RescueInstallProvider(), "cp-1-install", TYPE)
        checked, _ = driver.preview(inputs())

    assert [reason for _, reason in checked.failures] == [
        "rescueSshKey: the rescue SSH private key is not an unencrypted OpenSSH or PEM private key"
        " (fix: set it from a key file without passphrase, e.g. `ssh-keygen -t ed25519 -N ''`)"
    ]


def test_create_node_in_maintenance_adopted_without_touching_apis(
    resource: ResourceDriver, server: ProviderServer, maintenance_port: int
) -> None:
    step = resource.up(inputs(talosPort=maintenance_port))

    assert step.op == "create" and resource.id == "robot-321"
    assert step.outputs["outcome"] == "adopted" and step.outputs["talosState"] == "maintenance"
    assert step.outputs["talosVersion"] == "v1.13.9" and step.outputs.get("installDisk") is None
    assert "cp-1: Talos already up in maintenance mode" in server.stderr()


def test_create_configured_node_refused_without_reinstall_trigger(
    resource: ResourceDriver, configured_port: int
) -> None:
    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(talosPort=configured_port))

    assert "cp-1: Talos is configured and running at 127.0.0.1; refusing to wipe it" in raised.value.details
    assert "reinstall trigger" in raised.value.details and resource.id is None


def test_create_reinstall_trigger_passes_the_configured_guard(
    resource: ResourceDriver, configured_port: int, robot_api: ScriptedServer
) -> None:
    with pytest.raises(ProviderCallError) as raised:  # then Robot refuses: the guard did not stop it
        resource.up(inputs(talosPort=configured_port, reinstall="2026-01"))

    assert "Unauthorized (401 UNAUTHORIZED) on GET /key/" in raised.value.details
    assert "(fix: set the Robot webservice user and password: pulumi config set robotUser" in raised.value.details
    assert "pulumi config set --secret robotPassword ...)" in raised.value.details
    assert [seen.path.split("/")[1] for seen in robot_api.seen] == ["key"]


def test_create_with_rejected_cloud_token_names_the_config_command_to_fix_it(tmp_path: Path) -> None:
    with ScriptedServer() as cloud:
        cloud.answer(401, {"error": {"code": "unauthorized", "message": "unable to authenticate", "details": {}}})
        with provider_server(tmp_path / "log", config(**{"hcloud:endpoint": cloud.url})) as server:
            driver = ResourceDriver(server, RescueInstallProvider(), "cp-1-install", TYPE)
            with pytest.raises(ProviderCallError) as raised:
                driver.up(inputs(server={"kind": "cloud", "id": 42}))

    assert "cp-1: unable to authenticate (unauthorized) on GET /ssh_keys" in raised.value.details
    assert "(fix: pulumi config set --secret hcloudToken ..." in raised.value.details
    assert len(cloud.seen) == 1  # a rejected token is not retried


@pytest.fixture
def adopted(resource: ResourceDriver, maintenance_port: int) -> ResourceDriver:
    resource.up(inputs(talosPort=maintenance_port))
    return resource


def test_diff_same_inputs_no_change(adopted: ResourceDriver, maintenance_port: int) -> None:
    assert adopted.up(inputs(talosPort=maintenance_port)).op == "same"


def test_diff_image_change_is_update_keeping_install_facts(adopted: ResourceDriver, maintenance_port: int) -> None:
    before = dict(adopted.outputs)

    step = adopted.up(inputs(talosPort=maintenance_port, image={"version": "v1.13.8"}))

    assert step.op == "update"
    assert step.outputs["image"] == {"version": "v1.13.8"} and step.outputs["talosVersion"] == before["talosVersion"]
    assert step.outputs["outcome"] == "adopted"


@pytest.mark.parametrize(
    "change",
    [{"reinstall": "again"}, {"server": {"kind": "robot", "id": 322}}, {"server": {"kind": "cloud", "id": 321}}],
)
def test_diff_trigger_or_other_server_replaces(adopted: ResourceDriver, maintenance_port: int, change: dict) -> None:
    _, diff = adopted.preview(inputs(talosPort=maintenance_port, **change))

    assert diff is not None and diff.changes == "some" and diff.replaces == list(change)


def test_diff_unknown_server_in_preview_replaces(adopted: ResourceDriver, maintenance_port: int) -> None:
    _, diff = adopted.preview(inputs(talosPort=maintenance_port, server={"kind": "robot", "id": UNKNOWN}))

    assert diff is not None and diff.replaces == ["server"]


def test_delete_never_calls_hetzner(adopted: ResourceDriver) -> None:
    adopted.destroy()  # Robot and Cloud URLs point at closed ports: any call would fail

    assert adopted.id is None


def test_refresh_keeps_outputs(adopted: ResourceDriver) -> None:
    before = dict(adopted.outputs)

    adopted.refresh()

    assert adopted.outputs == before


def test_secrets_never_in_blob_outputs_or_logs(adopted: ResourceDriver, server: ProviderServer) -> None:
    with pytest.raises(ProviderCallError) as raised:
        adopted.up(inputs(reinstall="x"))  # a failing install: errors and logs

    blob = base64.b64decode(adopted.blob).decode("latin-1")
    assert_no_secrets(blob, repr(adopted.outputs), repr(adopted.inputs), server.stderr(), raised.value.details)


# --- acceptance against the lab: Robot and Cloud APIs, rescue systems over SSH, image factory -----------------

VERSION = "v1.13.9"
ROBOT = 2100001
LAB_TIMEOUTS = {"rescue": 10, "install": 60, "boot": 10, "resetAttempts": 2}


def lab_config(lab: Lab) -> dict[str, str]:
    return {
        "talos-hetzner:robotUser": lab.spec.robot_user,
        "talos-hetzner:robotPassword": lab.spec.robot_password,
        "talos-hetzner:robotUrl": lab.robot_url,
        "hcloud:token": lab.spec.cloud_token,
        "hcloud:endpoint": lab.cloud_url,
        "talos-hetzner:rescueSshKey": SSH_KEY,
    }


def lab_secrets(lab: Lab) -> tuple[str, ...]:
    return (lab.spec.robot_password, lab.spec.cloud_token, SSH_KEY.splitlines()[1])


@pytest.fixture
def lab_server(tmp_path: Path, lab: Lab) -> Iterator[ProviderServer]:
    secret_keys = ("talos-hetzner:robotPassword", "hcloud:token", "talos-hetzner:rescueSshKey")
    with provider_server(tmp_path / "provider.log", lab_config(lab), secrets=secret_keys) as started:
        yield started


def robot_inputs(lab: Lab, number: int = ROBOT, disk_index: int = 0, **overrides: Any) -> dict[str, Any]:
    machine = lab.robot_server(number)
    base = {
        "node": "cp-1",
        "server": {"kind": "robot", "id": number},
        "address": machine.address,
        "sshPort": lab.spec.ssh_port,
        "talosPort": lab.spec.talos_port,
        "image": {"version": VERSION, "factoryUrl": lab.factory_url},
        "disk": {"serial": machine.spec.disks[disk_index].serial},
        "wipe": "refuse",
        "timeouts": LAB_TIMEOUTS,
    }
    return {**base, **overrides}


def lab_resource(server: ProviderServer, name: str = "cp-1-install") -> ResourceDriver:
    return ResourceDriver(server, RescueInstallProvider(), name, TYPE)


def written_but_left_in_rescue(lab: Lab, server: ProviderServer) -> Machine:
    """A server whose disk holds the written image while it still runs the rescue system, as when `pulumi up` is
    killed between the write and the reboot."""
    machine = lab.robot_server(ROBOT)
    lab_resource(server, "earlier-run").up(robot_inputs(lab))
    robot = RobotClient(lab.spec.robot_user, lab.spec.robot_password, base_url=lab.robot_url)
    robot.boot.enable_rescue(ROBOT, [])
    robot.reset.execute(ROBOT, "hw")
    machine.wait_phase(Phase.RESCUE)
    return machine


def booted(machine: Machine) -> list[str]:
    return [record.target for record in machine.boots]


def new_cloud_server(lab: Lab, name: str) -> tuple[Machine, dict[str, Any]]:
    """A Cloud server created through hcloud and running its image, and the inputs that install on it."""
    client = hcloud.Client(lab.spec.cloud_token, api_endpoint=lab.cloud_url)
    created = client.servers.create(
        name, server_type=ServerType(name="cx23"), image=Image(name="debian-12"), location=Location(name="fsn1")
    )
    server_id = int(created.server.id or 0)
    machine = lab.cloud_server(server_id)
    machine.wait_phase(Phase.OS)
    inputs = robot_inputs(lab, server={"kind": "cloud", "id": server_id}, address=machine.address, wipe="any")
    inputs.update(disk={}, node=name)
    return machine, inputs


@pytest.fixture
def rescue_arms(monkeypatch: pytest.MonkeyPatch) -> list[RescueArm]:
    """Every rescue activation the lab's Robot and Cloud API arm during the test (root password, host key)."""
    arms: list[RescueArm] = []
    arm_rescue = Machine.arm_rescue

    def recording(machine: Machine, *args: Any, **kwargs: Any) -> RescueArm:
        arms.append(arm_rescue(machine, *args, **kwargs))
        return arms[-1]

    monkeypatch.setattr(Machine, "arm_rescue", recording)
    return arms


lab_test = [pytest.mark.slow, requires_root()]


class TestLab:
    pytestmark = lab_test

    def test_install_on_robot_server_boots_talos_from_the_chosen_disk(
        self, lab: Lab, lab_server: ProviderServer
    ) -> None:
        machine = lab.robot_server(ROBOT)
        resource = lab_resource(lab_server)

        step = resource.up(robot_inputs(lab))

        out = step.outputs
        assert step.op == "create" and out["outcome"] == "installed" and out["talosState"] == "maintenance"
        disk = machine.spec.disks[0]
        assert (
            out["installDisk"]["byId"] == f"/dev/disk/by-id/nvme-{disk.wwn}" and out["installDisk"]["wwn"] == disk.wwn
        )
        assert out["imageSha256"] == lab.artifact(VERSION).sha256 and out["checksumVerified"] is True
        assert out["resets"] == ["hw reset"] and set(out["timings"]) == {"rescue", "install", "boot", "total"}
        assert booted(machine)[-2:] == ["rescue", "talos"] and machine.boots[-1].disk == disk.name
        assert "cp-1: writing image 100% (" in lab_server.stderr()

    def test_install_on_cloud_server_waiting_out_locked_and_rate_limit(
        self, lab: Lab, lab_server: ProviderServer
    ) -> None:
        machine, inputs = new_cloud_server(lab, "cp-2")
        lab.faults.arm(Fault.CLOUD_LOCKED, times=1)
        lab.faults.arm(Fault.CLOUD_RATE_LIMIT, times=2)

        step = lab_resource(lab_server, "cp-2-install").up(inputs)

        assert step.outputs["outcome"] == "installed" and step.outputs["resets"] == ["reset"]
        assert lab.faults.fired(Fault.CLOUD_LOCKED) == 1 and lab.faults.fired(Fault.CLOUD_RATE_LIMIT) == 2
        assert step.outputs["imageUrl"].endswith("/hcloud-amd64.raw.zst")
        assert booted(machine)[-2:] == ["rescue", "talos"]

    def test_rerun_after_lost_state_adopts_without_resetting(self, lab: Lab, lab_server: ProviderServer) -> None:
        machine = lab.robot_server(ROBOT)
        lab_resource(lab_server).up(robot_inputs(lab))
        boots = len(machine.boots)

        step = lab_resource(lab_server).up(robot_inputs(lab))  # a new state: as after an interrupted `pulumi up`

        assert step.outputs["outcome"] == "adopted" and len(machine.boots) == boots

    def test_written_image_not_yet_booted_is_booted_and_adopted_not_rewritten(
        self, lab: Lab, lab_server: ProviderServer
    ) -> None:
        machine = written_but_left_in_rescue(lab, lab_server)

        step = lab_resource(lab_server).up(robot_inputs(lab))  # a new state: the run was killed before Talos came up

        assert step.outputs["outcome"] == "adopted" and booted(machine)[-2:] == ["rescue", "talos"]
        assert "already holds Talos: booting it to see whether it waits" in lab_server.stderr()

    def test_talos_on_disk_of_another_version_is_refused_saying_what_booted(
        self, lab: Lab, lab_server: ProviderServer
    ) -> None:
        written_but_left_in_rescue(lab, lab_server)

        with pytest.raises(ProviderCallError) as raised:
            lab_resource(lab_server).up(robot_inputs(lab, image={"version": "v1.13.8", "factoryUrl": lab.factory_url}))

        assert "it must be empty under wipe policy 'refuse'" in raised.value.details
        assert f"booted, it runs Talos {VERSION} (maintenance)" in raised.value.details

    def test_disk_with_data_refused_and_left_untouched(self, lab: Lab, lab_server: ProviderServer) -> None:
        machine = lab.robot_server(ROBOT)
        machine.disks[1].install_os("old-web-1")

        with pytest.raises(ProviderCallError) as raised:
            lab_resource(lab_server).up(robot_inputs(lab, disk_index=1))

        assert "refusing to overwrite /dev/disk/by-id/nvme-eui." in raised.value.details
        assert "wipe to 'any'" in raised.value.details
        assert isinstance(machine.disks[1].inspect(), InstalledOs)

    def test_ambiguous_selector_lists_the_disks(self, lab: Lab, lab_server: ProviderServer) -> None:
        with pytest.raises(ProviderCallError) as raised:
            lab_resource(lab_server).up(robot_inputs(lab, disk={"model": "SAMSUNG*"}))

        details = raised.value.details
        assert "2 disks match selector {model=SAMSUNG*}" in details
        assert all(disk.serial in details for disk in lab.robot_server(ROBOT).spec.disks)

    def test_checksum_mismatch_leaves_nothing_bootable(self, lab: Lab, lab_server: ProviderServer) -> None:
        machine = lab.robot_server(ROBOT)
        image = {"url": lab.image_url(VERSION), "sha256": "0" * 64, "version": VERSION}

        with pytest.raises(ProviderCallError) as raised:
            lab_resource(lab_server).up(robot_inputs(lab, image=image))

        assert "image checksum mismatch" in raised.value.details and "nothing bootable" in raised.value.details
        assert machine.disks[0].inspect() is None

    def test_rate_limits_waited_out(self, lab: Lab, lab_server: ProviderServer) -> None:
        lab.faults.arm(Fault.ROBOT_RATE_LIMIT, times=2, interval=1)

        step = lab_resource(lab_server).up(robot_inputs(lab))

        assert step.outputs["outcome"] == "installed" and lab.faults.fired(Fault.ROBOT_RATE_LIMIT) == 2

    def test_rescue_not_coming_up_escalates_to_power_cycle(self, lab: Lab, lab_server: ProviderServer) -> None:
        lab.faults.arm(Fault.RESCUE_NOT_COMING_UP, times=1, target=f"robot-{ROBOT}")

        step = lab_resource(lab_server).up(robot_inputs(lab, timeouts={**LAB_TIMEOUTS, "rescue": 3}))

        assert step.outputs["resets"] == ["hw reset", "power cycle"]

    def test_rescue_never_coming_up_fails_with_what_was_tried(self, lab: Lab, lab_server: ProviderServer) -> None:
        lab.faults.arm(Fault.RESCUE_NOT_COMING_UP, times=None, target=f"robot-{ROBOT}")

        with pytest.raises(ProviderCallError) as raised:
            lab_resource(lab_server).up(robot_inputs(lab, timeouts={**LAB_TIMEOUTS, "rescue": 2}))

        assert "did not come up on robot server 2100001 after 2 reset(s): hw reset: gave up" in raised.value.details
        assert "; power cycle: gave up" in raised.value.details

    def test_connection_dropped_in_rescue_started_over_in_the_same_run(
        self, lab: Lab, lab_server: ProviderServer
    ) -> None:
        slow_image_downloads(lab)
        lab.faults.arm(Fault.SSH_DROP_MID_WRITE, times=1, target=f"robot-{ROBOT}", after=0.1)

        step = lab_resource(lab_server).up(robot_inputs(lab))

        assert step.outputs["outcome"] == "installed" and lab.faults.fired(Fault.SSH_DROP_MID_WRITE) == 1
        assert "connection lost" in lab_server.stderr() and "reconnecting to start over" in lab_server.stderr()

    def test_truncated_download_fails_unbootable_and_rerun_converges(
        self, lab: Lab, lab_server: ProviderServer
    ) -> None:
        machine = lab.robot_server(ROBOT)
        lab.faults.arm(Fault.IMAGES_TRUNCATE, times=1)
        resource = lab_resource(lab_server)

        with pytest.raises(ProviderCallError) as raised:
            resource.up(robot_inputs(lab))
        assert "download failed" in raised.value.details and "nothing bootable is left" in raised.value.details
        assert machine.disks[0].inspect() is None

        step = resource.up(robot_inputs(lab))

        assert step.op == "create" and step.outputs["outcome"] == "installed"

    def test_connection_lost_for_good_fails_and_rerun_converges(self, lab: Lab, lab_server: ProviderServer) -> None:
        machine = lab.robot_server(ROBOT)
        slow_image_downloads(lab)
        lab.faults.arm(Fault.SSH_DROP_MID_WRITE, times=2, target=f"robot-{ROBOT}", after=0.1)
        resource = lab_resource(lab_server)

        with pytest.raises(ProviderCallError) as raised:
            resource.up(robot_inputs(lab))
        assert "connection lost" in raised.value.details and machine.disks[0].inspect() is None

        assert resource.up(robot_inputs(lab)).outputs["outcome"] == "installed"

    @pytest.mark.parametrize("kind", ["robot", "cloud"])
    def test_no_secret_in_logs_or_blob_and_rescue_password_only_in_its_secret_output(
        self, lab: Lab, lab_server: ProviderServer, rescue_arms: list[RescueArm], kind: str
    ) -> None:
        wanted = robot_inputs(lab) if kind == "robot" else new_cloud_server(lab, "cp-2")[1]
        resource = lab_resource(lab_server)
        with pytest.raises(ProviderCallError) as raised:  # no such disk: fails after logging in to rescue
            resource.up({**wanted, "disk": {"serial": "no-such-disk"}})

        step = resource.up(wanted)  # then the same server installs, through a new rescue activation

        passwords = [arm.password for arm in rescue_arms]
        assert len(passwords) == 2 and step.outputs["rescuePassword"] == passwords[-1]
        others = {name: value for name, value in step.outputs.items() if name != "rescuePassword"}
        blob = base64.b64decode(resource.blob).decode("latin-1")
        texts = (blob, repr(others), repr(resource.inputs), lab_server.stderr(), raised.value.details)
        for text in texts:
            for value in (*lab_secrets(lab), *passwords):
                assert value not in text

    def test_host_key_reported_by_robot_pinned(
        self, lab: Lab, lab_server: ProviderServer, rescue_arms: list[RescueArm], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(lab.robot_app, "report_host_keys", True)

        step = lab_resource(lab_server).up(robot_inputs(lab))

        assert step.outputs["outcome"] == "installed"
        assert step.outputs["rescueHostKey"] == sha256_fingerprint(rescue_arms[-1].host_key)

    def test_rescue_offering_another_host_key_than_robot_reported_never_used(
        self, lab: Lab, lab_server: ProviderServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        machine = lab.robot_server(ROBOT)
        reported = md5_fingerprint(generate_host_key())
        monkeypatch.setattr(lab.robot_app, "report_host_keys", True)
        monkeypatch.setattr(RescueArm, "host_key_fingerprint", property(lambda _arm: reported))

        with pytest.raises(ProviderCallError) as raised:
            timeouts = {**LAB_TIMEOUTS, "rescue": 3, "resetAttempts": 1}
            lab_resource(lab_server).up(robot_inputs(lab, timeouts=timeouts))

        assert "offered host key SHA256:" in raised.value.details
        assert f"not the expected {reported}" in raised.value.details
        assert booted(machine)[-1] == "rescue" and machine.disks[0].inspect() is None

    def test_factory_without_published_checksums_installs_unverified_and_says_so(
        self, lab: Lab, lab_server: ProviderServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(lab.factory_app, "checksums", False)  # as the public factory: 402 for `.sha256`

        step = lab_resource(lab_server).up(robot_inputs(lab))

        assert step.outputs["outcome"] == "installed" and step.outputs["checksumVerified"] is False
        assert step.outputs["imageSha256"] == lab.artifact(VERSION).sha256
        assert "cp-1: no published checksum for the image; relying on TLS and the decompressor" in lab_server.stderr()


# --- the resource as a program declares it (engine mocked) ---------------------------------------------------


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class SecretOutputsMonitor(MockMonitor):
    """Records what each registration tells the engine to store encrypted."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.secret_outputs: dict[str, list[str]] = {}
        """Resource type -> its `additionalSecretOutputs`."""

    def RegisterResource(self, request: Any) -> Any:
        self.secret_outputs[request.type] = list(request.additionalSecretOutputs)
        return super().RegisterResource(request)


@pytest.mark.usefixtures("pulumi_mocks_loops")
def test_resource_registers_inputs_the_secret_output_and_a_provider_pickled_by_reference() -> None:
    mocks = RecordingMocks()
    monitor = SecretOutputsMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, preview=False, monitor=monitor)
    args = RescueInstallArgs(server_kind="robot", server_id=321, address="127.0.1.10", image={"version": VERSION})

    @pulumi.runtime.test
    def declare() -> pulumi.Output[Any]:
        return RescueInstall("cp-1-install", args).urn

    declare()

    registered = mocks.registered[0]
    assert registered.typ == TYPE
    assert registered.inputs["node"] == "cp-1-install" and registered.inputs["server"] == {"kind": "robot", "id": 321}
    assert registered.inputs["wipe"] == "refuse" and "outcome" not in registered.inputs
    blob = base64.b64decode(registered.inputs["__provider"])
    assert b"providers.rescue_install" in blob and b"RescueInstallProvider" in blob and len(blob) < 300
    assert monitor.secret_outputs[TYPE] == ["rescuePassword"]
