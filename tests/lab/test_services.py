import json
import stat
from pathlib import Path

from lab.__main__ import previous_credentials
from lab.services import Lab


def test_lab_json_lists_endpoints_credentials_and_servers_privately(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    lab.write_json(path)
    data = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert data["cloud"] == {"url": lab.cloud_url, "token": lab.spec.cloud_token}
    assert data["robot"]["url"] == lab.robot_url and data["robot"]["user"].startswith("#ws+")
    assert [s["number"] for s in data["servers"]] == [2100001, 2100002, 2100003]
    assert data["servers"][0]["gateway"] == lab.network.robot_gateway and data["servers"][0]["prefix"] == 26
    assert data["servers"][2]["disks"][2]["by_id"][1].startswith("wwn-0x")


def test_restart_keeps_the_credentials_of_the_last_lab_json(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    lab.write_json(path)
    assert previous_credentials(path) == {
        "robot_user": lab.spec.robot_user,
        "robot_password": lab.spec.robot_password,
        "cloud_token": lab.spec.cloud_token,
    }
    assert previous_credentials(tmp_path / "missing.json") == {}


def test_lab_spec_repr_hides_secrets(lab: Lab) -> None:
    text = repr(lab.spec)
    assert lab.spec.robot_password not in text and lab.spec.cloud_token not in text
