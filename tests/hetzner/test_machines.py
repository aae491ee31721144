"""Reset choice for Robot servers and the power cycle over a scripted Robot."""

from __future__ import annotations

import pytest

from hetzner.machines import MachineError, RobotMachine, choose_reset
from hetzner.robot import ResetOptions, RobotClient
from tests.hetzner.scripted_http import ScriptedServer, Sleeper

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
