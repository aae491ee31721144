"""CloudClient over a scripted HTTP server: locked/rate-limit retries, action waits, rescue arming."""

from __future__ import annotations

from typing import Any

import pytest

from common.retry import RetryPolicy
from hetzner.cloud import CloudActionError, CloudClient, CloudError
from tests.hetzner.scripted_http import ScriptedServer, Sleeper

TOKEN = "t" * 64
ONE_PAGE = {"pagination": {"page": 1, "per_page": 25, "previous_page": None, "next_page": None, "last_page": 1}}


def server(status: str = "running", rescue: bool = False) -> dict[str, Any]:
    return {
        "server": {
            "id": 42,
            "name": "cp-1",
            "status": status,
            "created": "2026-08-20T10:00:00+00:00",
            "public_net": {
                "ipv4": {"id": 1, "ip": "127.0.2.10", "blocked": False, "dns_ptr": "x"},
                "ipv6": None,
                "floating_ips": [],
                "firewalls": [],
            },
            "private_net": [],
            "rescue_enabled": rescue,
            "locked": False,
        }
    }


def action(command: str, status: str = "running", error: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": 7,
        "command": command,
        "status": status,
        "progress": 100 if status != "running" else 0,
        "started": "2026-08-20T10:00:00+00:00",
        "finished": None,
        "resources": [{"id": 42, "type": "server"}],
        "error": error,
    }


def error(code: str, message: str = "m") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}


def cloud(http: ScriptedServer, sleeper: Sleeper, **kwargs: Any) -> CloudClient:
    return CloudClient(TOKEN, endpoint=http.url, sleep=sleeper, **kwargs)


def test_server_reads_status_rescue_and_address(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, server("off", rescue=True))

    got = cloud(http, sleeper).server(42)

    assert (got.id, got.status, got.rescue_enabled, got.ipv4) == (42, "off", True, "127.0.2.10")
    assert http.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_token_not_in_repr_or_errors(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(401, error("unauthorized", "unable to authenticate"))

    client = cloud(http, sleeper)
    with pytest.raises(CloudError) as raised:
        client.server(42)

    assert TOKEN not in repr(client) and TOKEN not in str(raised.value)
    assert raised.value.code == "unauthorized" and sleeper.pauses == []


def test_enable_rescue_locked_waits_then_returns_password_after_action(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, server())
    http.answer(423, error("locked", "server is locked"))
    http.answer(201, {"root_password": "rescue-pw", "action": action("enable_rescue")})
    http.answer(200, {"action": action("enable_rescue", "success")})

    enabled = cloud(http, sleeper).enable_rescue(42, [5, 6])

    assert enabled.root_password == "rescue-pw" and "rescue-pw" not in repr(enabled)
    posts = [s for s in http.seen if s.method == "POST"]
    assert [p.json for p in posts] == [{"type": "linux64", "ssh_keys": [5, 6]}] * 2
    assert http.seen[-1].path == "/actions/7"
    assert len(sleeper.pauses) == 1  # the locked retry; the running action is reloaded at once


def test_enable_rescue_already_enabled_disables_first(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, server(rescue=True))
    http.answer(201, {"action": action("disable_rescue", "success")})
    http.answer(201, {"root_password": "pw", "action": action("enable_rescue", "success")})

    cloud(http, sleeper).enable_rescue(42, [5])

    assert [s.path for s in http.seen] == [
        "/servers/42",
        "/servers/42/actions/disable_rescue",
        "/servers/42/actions/enable_rescue",
    ]


def test_rate_limited_post_retried_with_bounded_backoff(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(429, error("rate_limit_exceeded"))
    http.answer(429, error("rate_limit_exceeded"))
    http.answer(201, {"action": action("reset", "success")})

    cloud(http, sleeper, retry=RetryPolicy(attempts=3, base=1.0, cap=2.0)).reset(42)

    assert len(sleeper.pauses) == 2 and all(0 <= p <= 2.0 for p in sleeper.pauses)


def test_locked_gives_up_after_attempts(http: ScriptedServer, sleeper: Sleeper) -> None:
    for _ in range(3):
        http.answer(423, error("locked"))

    with pytest.raises(CloudError, match=r"\(locked\) on POST /servers/42/actions/poweron"):
        cloud(http, sleeper, retry=RetryPolicy(attempts=2)).power_on(42)

    assert len(http.seen) == 3


def test_post_conflict_not_retried(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(409, error("conflict"))

    with pytest.raises(CloudError):
        cloud(http, sleeper).reset(42)

    assert len(http.seen) == 1 and sleeper.pauses == []


def test_get_unavailable_retried(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(503, error("unavailable"))
    http.answer(200, server())

    assert cloud(http, sleeper).server(42).status == "running"
    assert len(sleeper.pauses) == 1


def test_failed_action_raises_action_error(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(201, {"action": action("reset")})
    http.answer(200, {"action": action("reset", "error", {"code": "action_failed", "message": "reset failed"})})

    with pytest.raises(CloudActionError, match=r"reset \(7\) failed: reset failed \(action_failed\)"):
        cloud(http, sleeper).reset(42)


def test_ensure_ssh_key_finds_by_fingerprint(http: ScriptedServer, sleeper: Sleeper) -> None:
    key = {"id": 5, "name": "rescue", "fingerprint": "aa:bb", "public_key": "ssh-ed25519 AAAA", "labels": {}}
    http.answer(200, {"ssh_keys": [key], "meta": ONE_PAGE})

    assert cloud(http, sleeper).ensure_ssh_key("rescue", "ssh-ed25519 AAAA", "aa:bb") == 5
    assert http.seen[0].query == [("fingerprint", "aa:bb")]


def test_ensure_ssh_key_uploads_missing_key(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, {"ssh_keys": [], "meta": ONE_PAGE})
    key = {"id": 9, "name": "rescue", "fingerprint": "aa:bb", "public_key": "ssh-ed25519 AAAA", "labels": {}}
    http.answer(201, {"ssh_key": key})

    assert cloud(http, sleeper).ensure_ssh_key("rescue", "ssh-ed25519 AAAA", "aa:bb") == 9
    assert http.seen[1].json == {"name": "rescue", "public_key": "ssh-ed25519 AAAA"}


def test_delete_server_waits_for_its_action(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(200, {"action": action("delete_server")})
    http.answer(200, {"action": action("delete_server", "success")})

    assert cloud(http, sleeper).delete_server(42) is True
    assert [(s.method, s.path) for s in http.seen] == [("DELETE", "/servers/42"), ("GET", "/actions/7")]


def test_delete_server_already_gone_is_not_an_error(http: ScriptedServer, sleeper: Sleeper) -> None:
    http.answer(404, error("not_found", "server with ID '42' not found"))

    assert cloud(http, sleeper).delete_server(42) is False
    assert sleeper.pauses == []
