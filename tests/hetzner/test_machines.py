"""Reset choice for Robot servers, the power cycle and rescue arming over a scripted Robot and Cloud API."""

from __future__ import annotations

import pytest

from hetzner.cloud import CloudClient
from hetzner.machines import CloudMachine, MachineError, RobotMachine, choose_reset
from hetzner.robot import ResetOptions, RobotClient
from tests.hetzner.scripted_http import ScriptedServer, Sleeper
from tests.hetzner.test_cloud import ONE_PAGE, TOKEN, action, server

ALL = ("sw", "hw", "man", "power", "power_long")


def options(status: str, *types: str) -> ResetOptions:
    return ResetOptions(321, types, status)


def test_server_that_is_off_gets_power_every_time() -> None:
    assert [choose_reset(options("shut off", *ALL), n) for n in range(3)] == ["power"] * 3


def test_running_server_escalates_hw_then_power_cycle() -> None:
    assert [choose_reset(options("running", *ALL), n) for n in range(4)] == ["hw", "cycle", "hw", "cycle"]


def test_server_without_power_types_repeats_hw() -> None:
    assert [choose_reset(options("running", "sw", "hw", "man"), n) for n in range(2)] == ["hw", "hw"]


def test_server_without_hw_uses_sw() -> None:
    assert choose_reset(options("running", "sw", "man"), 0) == "sw"


def test_off_server_without_power_falls_back_to_hw() -> None:
    assert choose_reset(options("shut off", "hw"), 0) == "hw"


def test_only_manual_reset_refused() -> None:
    with pytest.raises(MachineError, match="offers no automatic reset"):
        choose_reset(options("running", "man"), 0)


def reset_answer(status: str) -> dict[str, object]:
    return {"reset": {"server_number": 321, "type": list(ALL), "operating_status": status}}


def test_power_cycle_waits_until_off_then_powers_on(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, reset_answer("running"))
    http.answer(200, {"reset": {"server_number": 321, "type": "power_long"}})
    http.answer(200, reset_answer("running"))
    http.answer(200, reset_answer("shut off"))
    http.answer(200, {"reset": {"server_number": 321, "type": "power"}})
    machine = RobotMachine(RobotClient("u", "p", base_url=http.url, sleep=sleeper), 321, sleep=sleeper)

    assert machine.reset(1) == "power cycle"

    posts = [seen.form for seen in http.seen if seen.method == "POST"]
    assert posts == [[("type", "power_long")], [("type", "power")]]
    assert len(sleeper.pauses) == 1


def test_power_cycle_that_never_shows_off_fails_naming_the_server_and_the_fix(
    http: ScriptedServer, sleeper: Sleeper
) -> None:
    http.answer(200, reset_answer("running"))
    http.answer(200, {"reset": {"server_number": 321, "type": "power_long"}})
    http.answer(200, reset_answer("running"))  # still running when the (zero) power-off timeout is up
    robot = RobotClient("u", "p", base_url=http.url, sleep=sleeper)
    machine = RobotMachine(robot, 321, sleep=sleeper, power_off_timeout=0.0)

    with pytest.raises(MachineError) as raised:
        machine.reset(1)

    message = str(raised.value)
    assert message.startswith("robot server 321 was sent a forced power-off (power_long), but gave up waiting for")
    assert "(fix: check the server in Robot and power it off or reset it by hand, then re-run)" in message
    assert [seen.form for seen in http.seen if seen.method == "POST"] == [[("type", "power_long")]]


def test_robot_rescue_access_keeps_the_activation_password_out_of_its_repr(
    http: ScriptedServer, sleeper: Sleeper
) -> None:
    key = {"key": {"name": "k", "fingerprint": "aa:bb", "type": "ED25519", "size": 256, "data": "ssh-ed25519 AAAA"}}
    http.answer(200, key)  # the key exists
    http.answer(200, {"rescue": rescue_answer(active=False)})
    http.answer(200, {"rescue": rescue_answer(active=True, password="Rescue-Pw-1")})
    machine = RobotMachine(RobotClient("u", "p", base_url=http.url, sleep=sleeper), 321, sleep=sleeper)

    access = machine.arm_rescue("ssh-ed25519 AAAA", "aa:bb")

    assert access.password == "Rescue-Pw-1" and "Rescue-Pw-1" not in repr(access)


def rescue_answer(*, active: bool, password: str | None = None) -> dict[str, object]:
    return {
        "server_ip": "127.0.1.10",
        "server_ipv6_net": "2a01:4f8::",
        "server_number": 321,
        "os": "linux" if active else ["linux", "vkvm"],
        "arch": 64 if active else [64],
        "active": active,
        "password": password,
        "authorized_key": [],
        "host_key": [],
    }


def test_cloud_server_that_is_off_is_powered_on_not_reset(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, server("off"))
    http.answer(201, {"action": action("start_server", "success")})
    machine = CloudMachine(CloudClient(TOKEN, endpoint=http.url, sleep=sleeper), 42)

    assert machine.reset(0) == "power on"

    assert [(seen.method, seen.path) for seen in http.seen] == [
        ("GET", "/servers/42"),
        ("POST", "/servers/42/actions/poweron"),
    ]


def test_cloud_rescue_access_carries_the_root_password(http: ScriptedServer, sleeper: Sleeper) -> None:
    key = {"id": 5, "name": "k", "fingerprint": "aa:bb", "public_key": "ssh-ed25519 AAAA", "labels": {}}
    http.answer(200, {"ssh_keys": [key], "meta": ONE_PAGE})
    http.answer(200, server())
    http.answer(201, {"root_password": "Cloud-Pw-1", "action": action("enable_rescue", "success")})
    machine = CloudMachine(CloudClient(TOKEN, endpoint=http.url, sleep=sleeper), 42)

    access = machine.arm_rescue("ssh-ed25519 AAAA", "aa:bb")

    assert access.password == "Cloud-Pw-1" and access.host_keys == () and "Cloud-Pw-1" not in repr(access)
