"""The hcloud provider (the setup's pulumi-resource-hcloud, or the user's official one) through the real engine on
the lab's Cloud API."""

from __future__ import annotations

from pathlib import Path

import pytest
from hcloud import APIException, Client

from lab.services import Lab
from tests.engine.conftest import EngineProject, require_hcloud_plugin, start_project

pytestmark = pytest.mark.engine

PROGRAM = Path(__file__).resolve().parents[1] / "data" / "hcloud_program"


@pytest.fixture
def cloud(lab: Lab) -> Client:
    return Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.05)


@pytest.fixture
def hcloud_project(lab: Lab, engine_home: Path, tmp_path: Path) -> EngineProject:
    project = start_project(PROGRAM, tmp_path, engine_home)
    require_hcloud_plugin(project)
    project.pulumi("config", "set", "hcloud:endpoint", lab.cloud_url)
    project.pulumi("config", "set", "--secret", "hcloud:token", stdin=lab.spec.cloud_token)
    project.pulumi("config", "set", "hcloud:pollInterval", "50ms")
    return project


def _exists(cloud: Client, ident: str) -> bool:
    try:
        cloud.servers.get_by_id(int(ident))
    except APIException as err:
        if err.code == "not_found":
            return False
        raise
    return True


def test_servers_created_refreshed_and_destroyed_through_the_engine(
    hcloud_project: EngineProject, cloud: Client, lab: Lab
) -> None:
    hcloud_project.pulumi("preview")
    hcloud_project.pulumi("up", "--yes", "--skip-preview")
    outputs = hcloud_project.outputs()
    servers = {s.name: s for s in cloud.servers.get_all(label_selector="purpose=engine-test")}
    assert sorted(servers) == ["engine-kept", "engine-plain"]
    assert str(servers["engine-plain"].id) == outputs["plainId"]
    assert servers["engine-plain"].public_net.ipv4.ip == outputs["plainIpv4"]
    assert lab.cloud_server(int(outputs["plainId"])) is not None

    hcloud_project.pulumi("refresh", "--yes", "--expect-no-changes")
    hcloud_project.pulumi("up", "--yes", "--expect-no-changes")

    hcloud_project.pulumi("destroy", "--yes", "--skip-preview")
    assert not _exists(cloud, outputs["plainId"])
    assert _exists(cloud, outputs["keptId"])  # retain_on_delete: destroy never wipes it
    assert hcloud_project.resources() == []


def test_refresh_notices_a_server_deleted_behind_the_engine(hcloud_project: EngineProject, cloud: Client) -> None:
    hcloud_project.pulumi("up", "--yes", "--skip-preview")
    cloud.servers.get_by_id(int(hcloud_project.outputs()["plainId"])).delete().wait_until_finished()

    hcloud_project.pulumi("refresh", "--yes")

    names = [
        r["urn"].rsplit("::", 1)[-1] for r in hcloud_project.resources() if r["type"] == "hcloud:index/server:Server"
    ]
    assert names == ["kept"]


def test_cloud_token_never_shows_in_clear(hcloud_project: EngineProject, lab: Lab) -> None:
    hcloud_project.pulumi("up", "--yes", "--skip-preview")

    assert lab.spec.cloud_token not in hcloud_project.state_text()
    assert lab.spec.cloud_token not in "\n".join(hcloud_project.transcript)
