"""RobotClient over a scripted HTTP server: request encoding, error parsing and the retry rules."""

from __future__ import annotations

import socket

import pytest

from common.retry import RetryPolicy
from common.waiting import Deadline
from hetzner.robot import (
    RobotAuthError,
    RobotClient,
    RobotConflictError,
    RobotConnectionError,
    RobotInputError,
    RobotNotFoundError,
    RobotRateLimitError,
    RobotServerError,
)
from tests.hetzner.scripted_http import ScriptedServer, Sleeper

RESCUE_INACTIVE = {
    "rescue": {
        "server_ip": "127.0.1.10",
        "server_ipv6_net": "2001:db8::",
        "server_number": 321,
        "os": ["linux", "vkvm"],
        "arch": [64],
        "active": False,
        "password": None,
        "authorized_key": [],
        "host_key": [],
    }
}
RESCUE_ACTIVE = {
    "rescue": {
        **RESCUE_INACTIVE["rescue"],
        "os": "linux",
        "arch": 64,
        "active": True,
        "password": "jEt0dtUvomlyOwRr",
        "authorized_key": [
            {"key": {"name": "k", "fingerprint": "56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:dd:10", "type": "ED25519"}}
        ],
    }
}
RATE_LIMITED = {
    "error": {
        "status": 403,
        "code": "RATE_LIMIT_EXCEEDED",
        "max_request": 50,
        "interval": 7,
        "message": "rate limit exceeded",
    }
}


def robot(http: ScriptedServer, sleeper: Sleeper, **kwargs: object) -> RobotClient:
    return RobotClient("#ws+user", "s3cret-pass", base_url=http.url, sleep=sleeper, **kwargs)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_enable_rescue_drops_active_activation_then_posts_fingerprints(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, RESCUE_ACTIVE)
    http.answer(200, RESCUE_INACTIVE)
    http.answer(200, RESCUE_ACTIVE)

    rescue = robot(http, sleeper).boot.enable_rescue(321, ["aa:bb", "cc:dd"])

    assert [(s.method, s.path) for s in http.seen] == [
        ("GET", "/boot/321/rescue"),
        ("DELETE", "/boot/321/rescue"),
        ("POST", "/boot/321/rescue"),
    ]
    assert http.seen[2].form == [("os", "linux"), ("authorized_key[]", "aa:bb"), ("authorized_key[]", "cc:dd")]
    assert rescue.active and rescue.os == "linux"
    assert rescue.password == "jEt0dtUvomlyOwRr"
    assert rescue.authorized_keys == ("56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:dd:10",)


def test_enable_rescue_inactive_posts_without_delete(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, RESCUE_INACTIVE)
    http.answer(200, RESCUE_ACTIVE)

    robot(http, sleeper).boot.enable_rescue(321, ["aa:bb"])

    assert [s.method for s in http.seen] == ["GET", "POST"]


def test_enable_rescue_already_enabled_conflict_drops_and_retries_once(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, RESCUE_INACTIVE)
    http.answer(409, {"error": {"status": 409, "code": "BOOT_ALREADY_ENABLED", "message": "already enabled"}})
    http.answer(200, RESCUE_INACTIVE)
    http.answer(200, RESCUE_ACTIVE)

    assert robot(http, sleeper).boot.enable_rescue(321, ["aa:bb"]).active
    assert [s.method for s in http.seen] == ["GET", "POST", "DELETE", "POST"]


def test_rescue_password_not_in_repr(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, RESCUE_INACTIVE)
    http.answer(200, RESCUE_ACTIVE)

    rescue = robot(http, sleeper).boot.enable_rescue(321, ["aa:bb"])

    assert "jEt0dtUvomlyOwRr" not in repr(rescue)


def test_basic_auth_sent_and_not_in_repr(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, {"server": {"server_number": 321, "server_ip": "127.0.1.10", "status": "ready"}})

    client = robot(http, sleeper)
    server = client.servers.get(321)

    assert server.number == 321 and server.ip == "127.0.1.10"
    assert http.seen[0].headers["Authorization"].startswith("Basic ")
    assert "s3cret-pass" not in repr(client)


def test_unauthorized_raises_auth_error_without_retry(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(401, {"error": {"status": 401, "code": "UNAUTHORIZED", "message": "Unauthorized"}})

    with pytest.raises(RobotAuthError) as raised:
        robot(http, sleeper).servers.get(321)

    assert raised.value.status == 401 and raised.value.code == "UNAUTHORIZED"
    assert len(http.seen) == 1 and sleeper.pauses == []


def test_unauthorized_without_json_still_auth_error_not_retried(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer_raw(401, b"<html>401</html>")

    with pytest.raises(RobotAuthError):
        robot(http, sleeper).servers.get(321)
    assert len(http.seen) == 1


def test_rate_limited_post_waits_interval_then_succeeds(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(403, RATE_LIMITED)
    http.answer(200, {"reset": {"server_ip": "127.0.1.10", "server_number": 321, "type": "hw"}})

    robot(http, sleeper).reset.execute(321, "hw")

    assert sleeper.pauses == [7.0]
    assert [s.form for s in http.seen] == [[("type", "hw")], [("type", "hw")]]


def test_rate_limited_interval_capped_by_policy(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(403, {"error": {**RATE_LIMITED["error"], "interval": 3600}})
    http.answer(200, {"reset": {"server_number": 321, "type": "hw"}})

    robot(http, sleeper, retry=RetryPolicy(attempts=3, cap=30.0)).reset.execute(321, "hw")

    assert sleeper.pauses == [30.0]


def test_rate_limited_gives_up_after_attempts_with_typed_error(http: ScriptedServer, sleeper: Sleeper) -> None:
    for _ in range(3):
        http.answer(403, RATE_LIMITED)

    with pytest.raises(RobotRateLimitError) as raised:
        robot(http, sleeper, retry=RetryPolicy(attempts=2)).reset.execute(321, "hw")

    assert raised.value.max_request == 50 and raised.value.interval == 7
    assert len(http.seen) == 3 and sleeper.pauses == [7.0, 7.0]


def test_rate_limited_gives_up_when_pause_passes_deadline(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(403, RATE_LIMITED)

    with pytest.raises(RobotRateLimitError):
        robot(http, sleeper, deadline=Deadline.after(5.0)).reset.execute(321, "hw")

    assert len(http.seen) == 1 and sleeper.pauses == []


def test_server_error_on_post_not_retried(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(500, {"error": {"status": 500, "code": "RESET_FAILED", "message": "Reset failed"}})

    with pytest.raises(RobotServerError) as raised:
        robot(http, sleeper).reset.execute(321, "hw")

    assert raised.value.code == "RESET_FAILED"
    assert len(http.seen) == 1


def test_server_error_on_get_retried(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(503, {"error": {"status": 503, "code": "MAINTENANCE", "message": "maintenance"}})
    http.answer(200, {"reset": {"server_number": 321, "type": ["sw", "hw", "power"], "operating_status": "shut off"}})

    options = robot(http, sleeper).reset.options(321)

    assert options.types == ("sw", "hw", "power") and options.is_off
    assert len(sleeper.pauses) == 1


def test_read_timeout_on_post_not_retried(http: ScriptedServer, sleeper: Sleeper) -> None:
    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = RobotClient("u", "p", base_url=f"http://127.0.0.1:{port}", sleep=sleeper, timeout=(1.0, 0.2))
        with pytest.raises(RobotConnectionError) as raised:
            client.reset.execute(321, "hw")

    assert "POST /reset/321" in str(raised.value)
    assert sleeper.pauses == []


def test_connection_refused_on_post_retried_because_never_sent(sleeper: Sleeper) -> None:
    client = RobotClient("u", "p", base_url=f"http://127.0.0.1:{closed_port()}", sleep=sleeper)

    with pytest.raises(RobotConnectionError):
        client.reset.execute(321, "hw")

    assert len(sleeper.pauses) == RetryPolicy().attempts


def test_invalid_input_lists_missing_and_invalid(http: ScriptedServer, sleeper: Sleeper) -> None:
    body = {"error": {"status": 400, "code": "INVALID_INPUT", "message": "invalid input", "missing": None}}
    body["error"]["invalid"] = ["type"]
    http.answer(400, body)

    with pytest.raises(RobotInputError) as raised:
        robot(http, sleeper).reset.execute(321, "hw")

    assert raised.value.invalid == ("type",) and raised.value.missing == ()
    assert "invalid type" in str(raised.value)


def test_manual_reset_pending_is_conflict(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(409, {"error": {"status": 409, "code": "RESET_MANUAL_ACTIVE", "message": "manual reset active"}})

    with pytest.raises(RobotConflictError) as raised:
        robot(http, sleeper).reset.execute(321, "hw")

    assert raised.value.code == "RESET_MANUAL_ACTIVE"


def test_key_ensure_uploads_missing_key(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(404, {"error": {"status": 404, "code": "NOT_FOUND", "message": "Key not found"}})
    key = {"name": "rescue", "fingerprint": "aa:bb", "type": "ED25519", "size": 256, "data": "ssh-ed25519 AAAA"}
    http.answer(201, {"key": key})

    stored = robot(http, sleeper).keys.ensure("rescue", "ssh-ed25519 AAAA", "aa:bb")

    assert stored.fingerprint == "aa:bb"
    assert http.seen[1].form == [("name", "rescue"), ("data", "ssh-ed25519 AAAA")]


def test_key_ensure_existing_key_not_uploaded(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, {"key": {"name": "old", "fingerprint": "aa:bb", "type": "RSA", "size": 4096, "data": "x"}})

    assert robot(http, sleeper).keys.ensure("rescue", "ssh-rsa AAAA", "aa:bb").name == "old"
    assert len(http.seen) == 1


def test_ip_details_give_gateway_and_prefix(http: ScriptedServer, sleeper: Sleeper) -> None:
    ip = {"ip": "127.0.1.10", "gateway": "127.0.1.1", "mask": 26, "broadcast": "127.0.1.63", "server_number": 321}
    http.answer(200, {"ip": {**ip, "server_ip": "127.0.1.10", "locked": False}})

    details = robot(http, sleeper).ips.get("127.0.1.10")

    assert (details.gateway, details.mask, details.server_number) == ("127.0.1.1", 26, 321)


def test_server_list_empty_not_found_is_empty(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(404, {"error": {"status": 404, "code": "SERVER_NOT_FOUND", "message": "No server found"}})

    assert robot(http, sleeper).servers.list() == []


def test_unknown_server_raises_not_found(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(404, {"error": {"status": 404, "code": "SERVER_NOT_FOUND", "message": "server not found"}})

    with pytest.raises(RobotNotFoundError, match=r"server not found \(404 SERVER_NOT_FOUND\) on GET /server/9"):
        robot(http, sleeper).servers.get(9)
