"""The Robot webservice, driven with `requests` as the documentation describes it."""

from __future__ import annotations

import pytest
import requests

from lab.datacenter import Phase
from lab.faults import Fault
from lab.services import Lab

from .helpers import new_key

NUMBER = 2100001


class Robot:
    def __init__(self, lab: Lab) -> None:
        self.url, self.auth = lab.robot_url, (lab.spec.robot_user, lab.spec.robot_password)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, auth=self.auth, timeout=10)

    def post(self, path: str, data: dict | list | None = None) -> requests.Response:
        return requests.post(self.url + path, data=data, auth=self.auth, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, auth=self.auth, timeout=10)


@pytest.fixture
def robot(lab: Lab) -> Robot:
    return Robot(lab)


def _error(response: requests.Response) -> tuple[int, str]:
    error = response.json()["error"]
    assert error["status"] == response.status_code
    return response.status_code, error["code"]


def test_wrong_credentials_get_401_unauthorized(lab: Lab) -> None:
    response = requests.get(lab.robot_url + "/server", auth=("#ws+nobody", "wrong"), timeout=10)
    assert _error(response) == (401, "UNAUTHORIZED")


def test_three_failed_logins_block_the_address(lab: Lab, robot: Robot) -> None:
    for _ in range(3):
        requests.get(lab.robot_url + "/server", auth=("#ws+nobody", "wrong"), timeout=10)
    assert robot.get("/server").status_code == 401


def test_server_list_has_the_short_shape_and_detail_the_flags(lab: Lab, robot: Robot) -> None:
    listed = robot.get("/server").json()
    assert [entry["server"]["server_number"] for entry in listed] == [2100001, 2100002, 2100003]
    assert "reset" not in listed[0]["server"]
    server = robot.get(f"/server/{NUMBER}").json()["server"]
    assert server["server_ip"] == lab.robot_server(NUMBER).address
    assert server["subnet"] == [{"ip": server["server_ipv6_net"], "mask": "64"}]
    assert server["reset"] is True and server["rescue"] is True


def test_unknown_server_is_server_not_found(robot: Robot) -> None:
    assert _error(robot.get("/server/1")) == (404, "SERVER_NOT_FOUND")
    assert _error(robot.post("/reset/1", {"type": "hw"})) == (404, "SERVER_NOT_FOUND")


def test_rename_needs_server_name(robot: Robot) -> None:
    response = robot.post(f"/server/{NUMBER}", {})
    assert _error(response) == (400, "INVALID_INPUT")
    assert response.json()["error"]["missing"] == ["server_name"]
    assert robot.post(f"/server/{NUMBER}", {"server_name": "cp-1"}).json()["server"]["server_name"] == "cp-1"


def test_ip_detail_gives_gateway_mask_and_broadcast(lab: Lab, robot: Robot) -> None:
    address = lab.robot_server(NUMBER).address
    ip = robot.get(f"/ip/{address}").json()["ip"]
    assert ip["gateway"] == lab.network.robot_gateway
    assert ip["mask"] == 26 and isinstance(ip["mask"], int)
    assert ip["broadcast"].endswith(".63")
    assert _error(robot.get("/ip/192.0.2.1")) == (404, "IP_NOT_FOUND")


def test_key_lifecycle_and_documented_errors(robot: Robot) -> None:
    assert _error(robot.get("/key")) == (404, "NOT_FOUND")
    _, public = new_key()
    created = robot.post("/key", {"name": "ops", "data": public})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key["type"] == "ED25519" and key["size"] == 256 and len(key["fingerprint"].split(":")) == 16
    assert _error(robot.post("/key", {"name": "again", "data": public})) == (409, "KEY_ALREADY_EXISTS")
    assert robot.get(f"/key/{key['fingerprint']}").json()["key"]["name"] == "ops"
    assert robot.post(f"/key/{key['fingerprint']}", {"name": "renamed"}).json()["key"]["name"] == "renamed"
    assert robot.delete(f"/key/{key['fingerprint']}").status_code == 200
    assert _error(robot.get(f"/key/{key['fingerprint']}")) == (404, "NOT_FOUND")


def test_key_with_garbage_data_is_invalid_input(robot: Robot) -> None:
    response = robot.post("/key", {"name": "bad", "data": "ssh-ed25519 not-base64"})
    assert _error(response) == (400, "INVALID_INPUT")
    assert response.json()["error"]["invalid"] == ["data"]


def test_rescue_activation_returns_password_once_and_is_listed_with_keys(lab: Lab, robot: Robot) -> None:
    _, public = new_key()
    fingerprint = robot.post("/key", {"name": "ops", "data": public}).json()["key"]["fingerprint"]
    inactive = robot.get(f"/boot/{NUMBER}/rescue").json()["rescue"]
    assert inactive["active"] is False and inactive["os"] == ["linux", "vkvm"] and inactive["password"] is None
    active = robot.post(f"/boot/{NUMBER}/rescue", [("os", "linux"), ("authorized_key[]", fingerprint)]).json()["rescue"]
    assert active["active"] is True and active["os"] == "linux" and active["password"]
    assert active["authorized_key"] == [
        {"key": {"name": "ops", "fingerprint": fingerprint, "type": "ED25519", "size": 256}}
    ]
    assert active["host_key"] == []
    assert lab.robot_server(NUMBER).rescue_armed
    assert robot.get(f"/boot/{NUMBER}").json()["boot"]["rescue"]["password"] == active["password"]
    last = robot.get(f"/boot/{NUMBER}/rescue/last").json()["rescue"]
    assert last["password"] is None and last["os"] == "linux"


def test_second_activation_conflicts_until_deleted(robot: Robot) -> None:
    assert robot.post(f"/boot/{NUMBER}/rescue", {"os": "linux"}).status_code == 200
    assert _error(robot.post(f"/boot/{NUMBER}/rescue", {"os": "linux"})) == (409, "BOOT_ALREADY_ENABLED")
    deleted = robot.delete(f"/boot/{NUMBER}/rescue").json()["rescue"]
    assert deleted["active"] is False and deleted["password"] is None
    assert robot.post(f"/boot/{NUMBER}/rescue", {"os": "linux"}).status_code == 200


def test_activation_with_an_unknown_fingerprint_or_os_is_invalid_input(robot: Robot) -> None:
    response = robot.post(f"/boot/{NUMBER}/rescue", {"os": "dos", "authorized_key": "00:" * 15 + "00"})
    assert _error(response) == (400, "INVALID_INPUT")
    assert response.json()["error"]["invalid"] == ["os", "authorized_key"]
    assert robot.post(f"/boot/{NUMBER}/rescue", {}).json()["error"]["missing"] == ["os"]


def test_reset_types_and_operating_status(robot: Robot) -> None:
    reset = robot.get(f"/reset/{NUMBER}").json()["reset"]
    assert reset["type"] == ["sw", "hw", "man", "power", "power_long"]
    assert reset["operating_status"] == "running"
    assert len(robot.get("/reset").json()) == 3


def test_reset_without_or_with_bad_type_is_invalid_input(robot: Robot) -> None:
    assert robot.post(f"/reset/{NUMBER}", {}).json()["error"]["missing"] == ["type"]
    assert robot.post(f"/reset/{NUMBER}", {"type": "kick"}).json()["error"]["invalid"] == ["type"]


def test_powered_off_server_stays_off_on_hw_and_comes_on_with_power(lab: Lab, robot: Robot) -> None:
    machine = lab.robot_server(NUMBER)
    assert robot.post(f"/reset/{NUMBER}", {"type": "power_long"}).json()["reset"]["type"] == "power_long"
    machine.wait_phase(Phase.OFF)
    assert robot.get(f"/reset/{NUMBER}").json()["reset"]["operating_status"] == "shut off"
    robot.post(f"/reset/{NUMBER}", {"type": "hw"})
    robot.post(f"/reset/{NUMBER}", {"type": "sw"})
    assert machine.phase is Phase.OFF and not machine.powered
    robot.post(f"/reset/{NUMBER}", {"type": "power"})
    assert machine.powered
    machine.wait_phase(Phase.NO_BOOT)


def test_manual_reset_conflicts_while_pending(robot: Robot) -> None:
    assert robot.post(f"/reset/{NUMBER}", {"type": "man"}).status_code == 200
    assert _error(robot.post(f"/reset/{NUMBER}", {"type": "hw"})) == (409, "RESET_MANUAL_ACTIVE")


def test_reset_rate_limit_is_50_per_hour(robot: Robot) -> None:
    for _ in range(50):
        assert robot.post(f"/reset/{NUMBER}", {"type": "hw"}).status_code == 200
    response = robot.post(f"/reset/{NUMBER}", {"type": "hw"})
    assert _error(response) == (403, "RATE_LIMIT_EXCEEDED")
    assert response.json()["error"]["max_request"] == 50 and response.json()["error"]["interval"] == 3600
    assert robot.get(f"/reset/{NUMBER}").status_code == 200


def test_rate_limit_fault_answers_403_with_limits(lab: Lab, robot: Robot) -> None:
    lab.faults.arm(Fault.ROBOT_RATE_LIMIT, target="/boot")
    assert robot.get(f"/server/{NUMBER}").status_code == 200
    response = robot.get(f"/boot/{NUMBER}/rescue")
    assert _error(response) == (403, "RATE_LIMIT_EXCEEDED")
    assert response.json()["error"]["max_request"] == 500
    assert robot.get(f"/boot/{NUMBER}/rescue").status_code == 200


def test_server_error_and_lost_api_faults(lab: Lab, robot: Robot) -> None:
    lab.faults.arm(Fault.ROBOT_SERVER_ERROR, status=503)
    assert _error(robot.get("/server")) == (503, "MAINTENANCE")
    lab.faults.arm(Fault.ROBOT_LOST)
    with pytest.raises(requests.ConnectionError):
        robot.get("/server")
    assert robot.get("/server").status_code == 200
