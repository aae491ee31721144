"""The Hetzner Cloud API (api.hetzner.cloud/v1) for the lab, served under `/v1`.

The transport is shared by every resource module: Bearer token (401 unauthorized), the project's rate
limit (3600 requests, refilled by one per second; every answer carries RateLimit-Limit/-Remaining/-Reset;
over it 429 rate_limit_exceeded), `X-Correlation-Id` on every answer, fault switches, JSON errors.
Resource modules (catalog, ssh_keys, servers, and DNS zones) register their own routes: a new area of
the API is one more module passed to `CloudApp`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable

from lab.cloud.core import Actions, CloudError, Ids, Module
from lab.faults import Fault, Faults
from lab.httpserver import DropConnection, Request, Response, Router
from lab.ratelimit import TokenBucket

PREFIX = "/v1"
DEPRECATION = "https://docs.hetzner.cloud/changelog#2025-01-30-listing-arbitrary-actions-in-the-actions-list-endpoint-is-deprecated"


class CloudApp:
    """Transport and routing; state lives in the modules."""

    def __init__(self, token: str, faults: Faults, ids: Ids, actions: Actions, modules: Iterable[Module]) -> None:
        self.token, self.faults, self.ids, self.actions = token, faults, ids, actions
        self.modules = list(modules)
        self.bucket = TokenBucket(3600, 1.0)
        self.router = Router()
        self.router.add("GET", "/actions", self.list_actions)
        self.router.add("GET", "/actions/{id:int}", self.get_action)
        for module in self.modules:
            module.register(self.router)

    def reset(self) -> None:
        """A fresh project: no servers, keys, zones or actions; a full rate-limit bucket."""
        for module in self.modules:
            module.reset()
        self.actions.reset()
        self.ids.reset()
        self.bucket = TokenBucket(self.bucket.limit, self.bucket.rate)

    def __call__(self, request: Request) -> Response:
        if self.faults.take(Fault.CLOUD_LOST, request.path):
            raise DropConnection()
        allowed, state = self.bucket.acquire()
        if self.faults.take(Fault.CLOUD_RATE_LIMIT, request.path):
            allowed, state = False, self.bucket.drain()
        response = self._answer(request, allowed)
        response.headers.update(state.headers())
        response.headers["X-Correlation-Id"] = secrets.token_hex(8)
        return response

    def _answer(self, request: Request, allowed: bool) -> Response:
        failure = self.faults.take(Fault.CLOUD_SERVER_ERROR, request.path)
        if failure:
            status = int(failure.params.get("status", 500))
            if status in (502, 504):
                return Response.text(status, "<html><body>Bad Gateway</body></html>\n")
            code = {503: "unavailable"}.get(status, "server_error")
            return CloudError(status, code, "the server encountered an error").response()
        if not allowed:
            return CloudError(429, "rate_limit_exceeded", "limit of 3600 requests per hour reached").response()
        header = request.headers.get("Authorization") or ""
        if not hmac.compare_digest(header, f"Bearer {self.token}"):
            return CloudError(401, "unauthorized", "Request was made with an invalid or unknown token").response()
        if not request.path.startswith(PREFIX + "/"):
            return CloudError(404, "not_found", "not found").response()
        resolved = self.router.resolve(request.method, request.path[len(PREFIX) :].rstrip("/"))
        if isinstance(resolved, int):
            code = "method_not_allowed" if resolved == 405 else "not_found"
            return CloudError(resolved, code, code.replace("_", " ")).response()
        handler, request.params = resolved
        try:
            return handler(request)
        except CloudError as err:
            return err.response()

    def list_actions(self, request: Request) -> Response:
        """`GET /actions?id=…`; listing without ids was removed (410 deprecated_api_endpoint)."""
        ids = request.query.get("id")
        if not ids:
            raise CloudError(
                410, "deprecated_api_endpoint", "listing actions without ids was removed", {"announcement": DEPRECATION}
            )
        wanted = {int(i) for i in ids if i.isdigit()}
        return self.actions.list_response(request, [a for a in self.actions.all() if a.id in wanted])

    def get_action(self, request: Request) -> Response:
        return Response.json(200, {"action": self.actions.get(request.params["id"]).to_dict()})
