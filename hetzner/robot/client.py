"""Client for the Hetzner Robot webservice (dedicated servers), one sub-client per area."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests

from common.retry import RetryPolicy
from common.waiting import Deadline, Sleep
from hetzner.robot.domain import IpAddress, Key, Rescue, ResetOptions, ResetType, Server
from hetzner.robot.errors import (
    RobotConflictError,
    RobotConnectionError,
    RobotError,
    RobotNotFoundError,
    RobotRateLimitError,
    RobotServerError,
    robot_error,
)
from hetzner.transport import failure_reason, never_sent

ROBOT_URL = "https://robot-ws.your-server.de"
_IDEMPOTENT = frozenset({"GET", "DELETE"})


class RobotClient:
    """Client for the Robot webservice: HTTP basic auth, form-encoded POSTs, JSON answers.

    **Retry rules** (all in `_request`, bounded by `retry` and by `deadline` when given):

    - 403 `RATE_LIMIT_EXCEEDED` is retried for every method (the request did not act), pausing Robot's
      documented `interval` capped by the policy.
    - GET and DELETE are also retried after connection failures, timeouts and 5xx answers.
    - A POST that may have acted (activation, reset, key upload) is retried only when the failure proves it did
      not: the rate-limit answer or a connection that was never established. Never after a read timeout or 5xx.
    - 401 is never retried: three failed logins block the caller's IP for ten minutes.
    """

    def __init__(
        self,
        user: str,
        password: str,
        *,
        base_url: str = ROBOT_URL,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        timeout: tuple[float, float] = (10.0, 60.0),
        deadline: Deadline | None = None,
        sleep: Sleep = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._retry, self._timeout, self._deadline, self._sleep = retry, timeout, deadline, sleep
        self._session = session or requests.Session()
        self._session.auth = (user, password)
        self._session.headers["Accept"] = "application/json"
        self.servers = ServersClient(self)
        self.boot = BootClient(self)
        self.reset = ResetClient(self)
        self.keys = KeysClient(self)
        self.ips = IpsClient(self)

    def __repr__(self) -> str:
        return f"RobotClient({self._base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RobotClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, data: Sequence[tuple[str, str]] | None = None) -> Any:
        """Send one request and return the decoded JSON answer (None for an empty body), retrying per the rules."""
        label = f"{method} {path}"
        attempt = 0
        while True:
            try:
                return self._send(method, path, data, label)
            except (RobotError, RobotConnectionError) as error:
                pause = self._retry_pause(method, error, attempt)
                if pause is None:
                    raise
            self._sleep(pause)
            attempt += 1

    def _send(self, method: str, path: str, data: Sequence[tuple[str, str]] | None, label: str) -> Any:
        try:
            response = self._session.request(method, self._base_url + path, data=data, timeout=self._timeout)
        except requests.RequestException as error:
            raise _connection_error(label, error) from error
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise robot_error(response.status_code, body, request=label, reason=response.reason or "")
        if response.content and body is None:
            raise RobotServerError(response.status_code, "NOT_JSON", "answer is not JSON", request=label)
        return body

    def _retry_pause(self, method: str, error: Exception, attempt: int) -> float | None:
        """The pause before retrying `error`, or None when it must not (or can no longer) be retried."""
        retry_after: float | None = None
        if isinstance(error, RobotRateLimitError):
            retry_after = float(error.interval) if error.interval else None
        elif isinstance(error, _ConnectFailed):
            pass
        elif method not in _IDEMPOTENT or not isinstance(error, (RobotConnectionError, RobotServerError)):
            return None
        pause = self._retry.delay(attempt, retry_after)
        return pause if self._retry.allows(attempt, pause, self._deadline) else None


class _ConnectFailed(RobotConnectionError):
    """The connection was never established, so the request cannot have acted."""


def _connection_error(label: str, error: requests.RequestException) -> RobotConnectionError:
    kind = _ConnectFailed if never_sent(error) else RobotConnectionError
    return kind(label, failure_reason(error))


class _SubClient:
    def __init__(self, client: RobotClient) -> None:
        self._client = client


class ServersClient(_SubClient):
    """`/server`: the account's dedicated servers."""

    def get(self, number: int) -> Server:
        return Server.from_dict(self._client.request("GET", f"/server/{number}")["server"])

    def list(self) -> list[Server]:
        try:
            items = self._client.request("GET", "/server") or []
        except RobotNotFoundError:  # Robot documents 404 SERVER_NOT_FOUND for an account without servers
            return []
        return [Server.from_dict(item["server"]) for item in items]


class BootClient(_SubClient):
    """`/boot/{number}/rescue`: arm the rescue system for the next boot."""

    def rescue(self, number: int) -> Rescue:
        return Rescue.from_dict(self._client.request("GET", f"/boot/{number}/rescue")["rescue"])

    def disable_rescue(self, number: int) -> Rescue:
        return Rescue.from_dict(self._client.request("DELETE", f"/boot/{number}/rescue")["rescue"])

    def enable_rescue(self, number: int, fingerprints: Sequence[str], *, os: str = "linux") -> Rescue:
        """Activate rescue for the next boot with these key fingerprints; the answer holds the root password.

        An activation that already exists is dropped first: it may carry other keys, and Robot refuses a second
        one (`BOOT_ALREADY_ENABLED`, seen in the field with 409).
        """
        if self.rescue(number).active:
            self.disable_rescue(number)
        data = [("os", os), *(("authorized_key[]", fingerprint) for fingerprint in fingerprints)]
        try:
            answer = self._client.request("POST", f"/boot/{number}/rescue", data)
        except RobotConflictError as error:
            if error.code != "BOOT_ALREADY_ENABLED":
                raise
            self.disable_rescue(number)  # armed concurrently since our check: drop it and try once more
            answer = self._client.request("POST", f"/boot/{number}/rescue", data)
        return Rescue.from_dict(answer["rescue"])


class ResetClient(_SubClient):
    """`/reset/{number}`: reset types and power state (the reset POST is limited to 50 per hour)."""

    def options(self, number: int) -> ResetOptions:
        return ResetOptions.from_dict(self._client.request("GET", f"/reset/{number}")["reset"])

    def execute(self, number: int, type: ResetType) -> None:
        self._client.request("POST", f"/reset/{number}", [("type", type)])


class KeysClient(_SubClient):
    """`/key`: SSH public keys stored in Robot, named by their MD5 fingerprint."""

    def get(self, fingerprint: str) -> Key | None:
        try:
            return Key.from_dict(self._client.request("GET", f"/key/{fingerprint}")["key"])
        except RobotNotFoundError:
            return None

    def create(self, name: str, public_key: str) -> Key:
        return Key.from_dict(self._client.request("POST", "/key", [("name", name), ("data", public_key)])["key"])

    def ensure(self, name: str, public_key: str, fingerprint: str) -> Key:
        """The stored key with this fingerprint, uploading it under `name` when Robot does not have it yet."""
        existing = self.get(fingerprint)
        if existing is not None:
            return existing
        try:
            return self.create(name, public_key)
        except RobotConflictError as error:
            if error.code != "KEY_ALREADY_EXISTS":
                raise
            stored = self.get(fingerprint)
            if stored is None:
                raise
            return stored


class IpsClient(_SubClient):
    """`/ip/{ip}`: gateway and netmask of a server's address (static network configuration)."""

    def get(self, ip: str) -> IpAddress:
        return IpAddress.from_dict(self._client.request("GET", f"/ip/{ip}")["ip"])
