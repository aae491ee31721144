"""The official `hcloud` client (hcloud-python) against the lab's Cloud API, unchanged."""

from __future__ import annotations

import dataclasses
import os

import pytest
import requests
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer

from lab.datacenter import Phase
from lab.faults import Fault
from lab.services import Lab

from .helpers import new_key


@pytest.fixture
def client(lab: Lab) -> Client:
    return Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.02)


def _create(client: Client, name: str = "cp-3", **kwargs: object) -> BoundServer:
    response = client.servers.create(name, server_type=ServerType(name="cx23"), image=Image(name="debian-12"), **kwargs)
    response.action.wait_until_finished()
    for action in response.next_actions:
        action.wait_until_finished()
    return client.servers.get_by_id(response.server.id)


def test_create_server_returns_create_and_start_actions(client: Client) -> None:
    response = client.servers.create("cp-3", server_type=ServerType(name="cx23"), image=Image(name="debian-12"))
    assert response.server.status == "initializing"
    assert response.action.command == "create_server" and response.action.status == "running"
    assert [a.command for a in response.next_actions] == ["start_server"]
    assert response.root_password
    response.action.wait_until_finished()
    for action in response.next_actions:
        action.wait_until_finished()
    server = client.servers.get_by_id(response.server.id)
    assert server.status == "running"
    assert server.server_type.name == "cx23" and server.location.name == "fsn1" and server.image.name == "debian-12"
    assert server.public_net.ipv6.ip.endswith("::/64")


def test_created_server_boots_its_installed_os(lab: Lab, client: Client) -> None:
    server = _create(client)
    machine = lab.cloud_server(server.id)
    machine.wait_phase(Phase.OS)
    assert machine.boots[-1].target == "os" and machine.boots[-1].detail == "cp-3"
    assert machine.disks[0].spec.by_id == ("scsi-0QEMU_QEMU_HARDDISK_drive-scsi0-0-0-0",)


def test_ssh_key_create_lookup_and_uniqueness(client: Client) -> None:
    _, public = new_key()
    key = client.ssh_keys.create(name="ops", public_key=public, labels={"team": "infra"})
    assert key.public_key == public and len(key.fingerprint.split(":")) == 16
    assert client.ssh_keys.get_by_name("ops").id == key.id
    assert client.ssh_keys.get_by_fingerprint(key.fingerprint).id == key.id
    with pytest.raises(APIException) as err:
        client.ssh_keys.create(name="ops", public_key=public)
    assert err.value.code == "uniqueness_error"
    key.delete()
    assert client.ssh_keys.get_by_name("ops") is None


def test_server_create_with_ssh_key_gives_no_root_password(client: Client) -> None:
    _, public = new_key()
    key = client.ssh_keys.create(name="ops", public_key=public)
    response = client.servers.create(
        "w-2", server_type=ServerType(name="cx23"), image=Image(name="debian-12"), ssh_keys=[key]
    )
    assert response.root_password is None


def test_enable_rescue_arms_rescue_and_reset_boots_it(lab: Lab, client: Client) -> None:
    server = _create(client)
    _, public = new_key()
    key = client.ssh_keys.create(name="ops", public_key=public)
    rescue = client.servers.enable_rescue(server, type="linux64", ssh_keys=[key.id])
    assert rescue.root_password and rescue.action.command == "enable_rescue"
    rescue.action.wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is True
    if lab.spec.ssh_port == 22 and os.geteuid() == 0:
        client.servers.reset(server).wait_until_finished()
        lab.cloud_server(server.id).wait_phase(Phase.RESCUE)
        assert client.servers.get_by_id(server.id).rescue_enabled is False


def test_poweroff_then_poweron_changes_status(client: Client) -> None:
    server = _create(client)
    client.servers.power_off(server).wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "off"
    client.servers.reset(server).wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "off"
    client.servers.power_on(server).wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "running"


def test_action_while_another_runs_is_423_locked(lab: Lab, client: Client) -> None:
    server = _create(client)
    lab.set_delays(dataclasses.replace(lab.delays, action=30.0))
    client.servers.power_off(server)
    with pytest.raises(APIException) as err:
        client.servers.power_on(server)
    assert err.value.code == "locked"


def test_locked_fault_answers_423(lab: Lab, client: Client) -> None:
    server = _create(client)
    lab.faults.arm(Fault.CLOUD_LOCKED)
    with pytest.raises(APIException) as err:
        client.servers.reset(server)
    assert err.value.code == "locked"
    client.servers.reset(server).wait_until_finished()


def test_unknown_server_is_not_found(client: Client) -> None:
    with pytest.raises(APIException) as err:
        client.servers.get_by_id(1)
    assert err.value.code == "not_found"
    assert err.value.correlation_id


def test_duplicate_name_is_uniqueness_error(client: Client) -> None:
    _create(client)
    with pytest.raises(APIException) as err:
        client.servers.create("cp-3", server_type=ServerType(name="cx23"), image=Image(name="debian-12"))
    assert err.value.code == "uniqueness_error"


def test_invalid_input_names_the_field(client: Client) -> None:
    with pytest.raises(APIException) as err:
        client.servers.create("not a hostname", server_type=ServerType(name="cx23"), image=Image(name="debian-12"))
    assert err.value.code == "invalid_input"
    assert err.value.details["fields"][0]["name"] == "name"
    with pytest.raises(APIException) as err:
        client.servers.create("ok", server_type=ServerType(name="cx999"), image=Image(name="debian-12"))
    assert err.value.details["fields"][0]["name"] == "server_type"


def test_rate_limited_request_is_retried_by_hcloud(lab: Lab, client: Client) -> None:
    lab.faults.arm(Fault.CLOUD_RATE_LIMIT)
    assert client.server_types.get_by_name("cx23").cores == 2
    assert lab.faults.fired(Fault.CLOUD_RATE_LIMIT) == 1


def test_persistent_rate_limit_raises_rate_limit_exceeded(lab: Lab, client: Client) -> None:
    client._client._retry_interval_func = lambda retries: 0.0  # the retry policy stays hcloud's; only its sleeps go
    lab.faults.arm(Fault.CLOUD_RATE_LIMIT, times=None)
    with pytest.raises(APIException) as err:
        client.locations.get_all()
    assert err.value.code == "rate_limit_exceeded"
    assert lab.faults.fired(Fault.CLOUD_RATE_LIMIT) == 6


def test_every_answer_carries_rate_limit_headers(lab: Lab) -> None:
    headers = {"Authorization": f"Bearer {lab.spec.cloud_token}"}
    ok = requests.get(lab.cloud_url + "/locations", headers=headers, timeout=10)
    lab.faults.arm(Fault.CLOUD_RATE_LIMIT)
    limited = requests.get(lab.cloud_url + "/locations", headers=headers, timeout=10)
    assert int(ok.headers["RateLimit-Limit"]) == 3600 and int(ok.headers["RateLimit-Remaining"]) > 0
    assert limited.status_code == 429 and limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) > 0


def test_wrong_token_is_unauthorized(lab: Lab) -> None:
    client = Client(token="x" * 64, api_endpoint=lab.cloud_url)
    with pytest.raises(APIException) as err:
        client.servers.get_all()
    assert err.value.code == "unauthorized"


def test_list_servers_pages_and_filters_by_label(client: Client) -> None:
    for index in range(3):
        client.servers.create(
            f"w-{index}",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            labels={"role": "worker" if index else "cp"},
        )
    page = client.servers.get_list(page=1, per_page=2)
    assert len(page.servers) == 2 and page.meta.pagination.next_page == 2 and page.meta.pagination.total_entries == 3
    assert len(client.servers.get_all()) == 3
    assert [s.name for s in client.servers.get_all(label_selector="role=worker")] == ["w-1", "w-2"]
    assert client.servers.get_by_name("w-0").labels == {"role": "cp"}


def test_delete_server_removes_it_after_its_action(lab: Lab, client: Client) -> None:
    server = _create(client)
    action = client.servers.delete(server)
    assert action.command == "delete_server"
    action.wait_until_finished()
    assert client.servers.get_by_name("cp-3") is None
    with pytest.raises(KeyError):
        lab.cloud_server(server.id)


def test_delete_protected_server_is_423_protected(client: Client) -> None:
    server = _create(client)
    client.servers.change_protection(server, delete=True).wait_until_finished()
    with pytest.raises(APIException) as err:
        client.servers.delete(server)
    assert err.value.code == "protected"


def test_actions_are_polled_by_id_and_listing_without_ids_is_gone(lab: Lab, client: Client) -> None:
    server = _create(client)
    action = client.servers.power_off(server)
    assert client.actions.get_by_id(action.id).command == "stop_server"
    headers = {"Authorization": f"Bearer {lab.spec.cloud_token}"}
    by_id = requests.get(f"{lab.cloud_url}/actions", params={"id": [action.id]}, headers=headers, timeout=10).json()
    assert [a["id"] for a in by_id["actions"]] == [action.id]
    gone = requests.get(f"{lab.cloud_url}/actions", headers=headers, timeout=10)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "deprecated_api_endpoint"


def test_server_create_lookups_resolve_by_name(client: Client) -> None:
    assert client.server_types.get_by_name("cx23").disk == 40
    assert client.images.get_by_name_and_architecture("debian-12", "x86").os_flavor == "debian"
    assert client.locations.get_by_name("fsn1").network_zone == "eu-central"


def test_server_error_faults_as_hcloud_sees_them(lab: Lab, client: Client) -> None:
    lab.faults.arm(Fault.CLOUD_SERVER_ERROR, status=503)
    with pytest.raises(APIException) as err:
        client.locations.get_all()
    assert err.value.code == "unavailable"
    lab.faults.arm(Fault.CLOUD_LOST)
    with pytest.raises(requests.ConnectionError):
        client.locations.get_all()


def test_server_actions_are_listed_per_server(client: Client) -> None:
    server = _create(client)
    client.servers.power_off(server).wait_until_finished()
    commands = [a.command for a in client.servers.get_actions(server)]
    assert commands == ["create_server", "start_server", "stop_server"]
    assert client.servers.get_actions_list(server, status=["running"]).actions == []
