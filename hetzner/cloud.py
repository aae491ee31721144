"""Hetzner Cloud through the official `hcloud` client, plus what a rescue install needs that it lacks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

import hcloud
import requests
from hcloud.actions import BoundAction
from hcloud.servers import Server as HcloudServer

from common.retry import RetryPolicy
from common.waiting import Backoff, Deadline, NotYet, Sleep, WaitTimeout, wait_until
from hetzner.errors import HetznerError
from hetzner.transport import failure_reason, never_sent

CLOUD_URL = "https://api.hetzner.cloud/v1"
T = TypeVar("T")

_DID_NOT_ACT = frozenset({"locked", "rate_limit_exceeded"})
"""Answers that prove a request changed nothing: retried for every call."""
_TRANSIENT = frozenset({"conflict", "timeout", "bad_gateway", "unavailable", 502, 503, 504})
"""Answers worth retrying for reads only: a POST may have acted before failing."""


class CloudError(HetznerError):
    """The Cloud API refused a request or could not be reached."""

    def __init__(self, request: str, code: str, message: str, correlation_id: str | None = None) -> None:
        extra = f", {correlation_id}" if correlation_id else ""
        super().__init__(f"{message} ({code}{extra}) on {request}")
        self.request, self.code, self.message, self.correlation_id = request, code, message, correlation_id


class CloudActionError(HetznerError):
    """A Cloud action finished with an error or did not finish in time."""

    def __init__(self, command: str, action_id: int, reason: str) -> None:
        super().__init__(f"action {command} ({action_id}) {reason}")
        self.command, self.action_id, self.reason = command, action_id, reason


@dataclass(frozen=True)
class CloudServer:
    """What a rescue install reads from a Cloud server."""

    id: int
    name: str
    status: str
    """running, off, starting, stopping, initializing, rebuilding, migrating, deleting or unknown."""
    rescue_enabled: bool
    ipv4: str | None

    @classmethod
    def from_hcloud(cls, server: HcloudServer) -> CloudServer:
        ipv4 = server.public_net.ipv4.ip if server.public_net and server.public_net.ipv4 else None
        status, rescue = server.status or "unknown", bool(server.rescue_enabled)
        return cls(int(server.id or 0), server.name or "", status, rescue, ipv4)


@dataclass(frozen=True)
class RescueEnabled:
    """The answer to enable_rescue: the rescue root password (secret)."""

    root_password: str | None = field(repr=False)


class CloudClient:
    """Hetzner Cloud servers, SSH keys and actions for rescue installs, over the official `hcloud` client.

    **Retry rules.** hcloud's own retry loop is switched off: it sleeps with `time.sleep` for up to five minutes
    outside any deadline and does not retry `locked`. Instead, every call goes through `_call`:

    - 423 `locked` (an action is already running, e.g. just after create or enable_rescue) and 429
      `rate_limit_exceeded` are retried for every call, since the request did not act;
    - reads are also retried after `conflict`, `timeout`, `bad_gateway`, 502/503/504 and network failures;
    - a POST is retried after a network failure only when the connection was never established.

    Pauses follow `retry` and never pass `deadline`. Actions are awaited by polling `GET /actions/{id}` with
    `poll` until the deadline.
    """

    def __init__(
        self,
        token: str,
        *,
        endpoint: str = CLOUD_URL,
        retry: RetryPolicy = RetryPolicy(attempts=8, base=0.5, cap=15.0),  # noqa: B008 - frozen value
        poll: Backoff = Backoff(first=0.1, factor=1.0, cap=0.1),  # noqa: B008 - frozen value
        deadline: Deadline | None = None,
        sleep: Sleep = time.sleep,
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        self._hcloud = hcloud.Client(token, api_endpoint=endpoint, timeout=timeout, application_name="talos-hetzner")
        self._hcloud._client._retry_max_retries = 0  # one retry loop, ours (see the class docstring)
        self._endpoint = endpoint
        self._retry, self._poll, self._deadline, self._sleep = retry, poll, deadline, sleep

    def __repr__(self) -> str:
        return f"CloudClient({self._endpoint!r})"

    def server(self, server_id: int) -> CloudServer:
        get = self._hcloud.servers.get_by_id
        return CloudServer.from_hcloud(self._call(f"GET /servers/{server_id}", lambda: get(server_id)))

    def ensure_ssh_key(self, name: str, public_key: str, fingerprint: str) -> int:
        """The id of the project's SSH key with this fingerprint, uploading it under `name` when missing."""
        keys = self._hcloud.ssh_keys
        found = self._call("GET /ssh_keys", lambda: keys.get_by_fingerprint(fingerprint))
        if found is None:
            found = self._call("POST /ssh_keys", lambda: keys.create(name=name, public_key=public_key), posts=True)
        return int(found.id or 0)

    def enable_rescue(self, server_id: int, ssh_key_ids: list[int]) -> RescueEnabled:
        """Arm the rescue system (linux64) with these keys for the next boot; an older activation is dropped."""
        servers = self._hcloud.servers
        server = HcloudServer(id=server_id)
        if self.server(server_id).rescue_enabled:
            self._act(f"POST /servers/{server_id}/actions/disable_rescue", lambda: servers.disable_rescue(server))
        request = f"POST /servers/{server_id}/actions/enable_rescue"
        keys = cast(list[str], ssh_key_ids)  # the API takes integer ids; hcloud's annotation says str
        answer = self._call(request, lambda: servers.enable_rescue(server, type="linux64", ssh_keys=keys), posts=True)
        self._wait(answer.action, request)
        return RescueEnabled(answer.root_password)

    def reset(self, server_id: int) -> None:
        """Cut the power and start the server again."""
        server = HcloudServer(id=server_id)
        self._act(f"POST /servers/{server_id}/actions/reset", lambda: self._hcloud.servers.reset(server))

    def power_on(self, server_id: int) -> None:
        server = HcloudServer(id=server_id)
        self._act(f"POST /servers/{server_id}/actions/poweron", lambda: self._hcloud.servers.power_on(server))

    def delete_server(self, server_id: int) -> bool:
        """Delete the server (its disk is lost); False when it was gone already."""
        request = f"DELETE /servers/{server_id}"
        try:
            self._act(request, lambda: self._hcloud.servers.delete(HcloudServer(id=server_id)))
        except CloudError as error:
            if error.code == "not_found":
                return False
            raise
        return True

    def _act(self, request: str, post: Callable[[], BoundAction]) -> None:
        self._wait(self._call(request, post, posts=True), request)

    def _call(self, request: str, call: Callable[[], T], *, posts: bool = False) -> T:
        """Run one API call under the retry rules, turning hcloud's and requests' errors into CloudError."""
        attempt = 0
        while True:
            try:
                return call()
            except hcloud.APIException as error:
                retryable = error.code in _DID_NOT_ACT or (not posts and error.code in _TRANSIENT)
                failure = CloudError(request, str(error.code), error.message, error.correlation_id)
            except requests.RequestException as error:
                retryable = never_sent(error) or not posts
                failure = CloudError(request, failure_reason(error), "no answer from the Cloud API")
            pause = self._retry.delay(attempt)
            if not retryable or not self._retry.allows(attempt, pause, self._deadline):
                raise failure
            self._sleep(pause)
            attempt += 1

    def _wait(self, action: BoundAction, request: str) -> None:
        """Poll the action until it succeeds; raise CloudActionError when it fails or the deadline passes."""
        command, action_id = action.command or request, int(action.id or 0)

        def finished() -> bool | None:
            current = action if action.status != "running" else self._reload(action_id, request)
            if current.status == "running":
                raise NotYet(f"{command} {current.progress or 0}%")
            if current.status == "error":
                error = current.error or {}
                raise CloudActionError(command, action_id, f"failed: {error.get('message')} ({error.get('code')})")
            return True

        deadline = self._deadline or Deadline.after(600)
        try:
            wait_until(finished, deadline, what=f"action {command}", backoff=self._poll, sleep=self._sleep)
        except WaitTimeout as timeout:
            raise CloudActionError(command, action_id, f"still running ({timeout})") from None

    def _reload(self, action_id: int, request: str) -> BoundAction:
        return self._call(f"GET /actions/{action_id} ({request})", lambda: self._hcloud.actions.get_by_id(action_id))
