"""What every Cloud API resource module shares: errors, ids, timestamps, paging, label selectors, actions.

Shapes follow hetzner.md §2 and §9 (what hcloud-python and hcloud-go decode): errors are
`{"error": {"code", "message", "details"}}` with `invalid_input` always carrying `details.fields`;
timestamps are RFC 3339 with a zone; lists carry `meta.pagination`.
"""

from __future__ import annotations

import datetime
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.httpserver import Request, Response, Router

MAX_PER_PAGE = 50
DEFAULT_PER_PAGE = 25


class CloudError(Exception):
    """Raised by a handler to answer with a Cloud API error."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{message} ({code})")
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "details": self.details or {}}
        return Response.json(self.status, {"error": error})


def invalid_input(fields: dict[str, str]) -> CloudError:
    """422 invalid_input naming each bad field (hcloud-go panics without `details`)."""
    details = {"fields": [{"name": name, "messages": [message]} for name, message in fields.items()]}
    name, message = next(iter(fields.items()))
    return CloudError(422, "invalid_input", f"invalid input in field '{name}': {message}", details)


def uniqueness_error(message: str, field: str) -> CloudError:
    """409 uniqueness_error naming the field that must be unique."""
    return CloudError(409, "uniqueness_error", message, {"fields": [{"name": field}]})


def not_found(what: str) -> CloudError:
    return CloudError(404, "not_found", f"{what} not found")


def timestamp(at: float) -> str:
    """RFC 3339 with an explicit UTC offset."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).replace(microsecond=0).isoformat()


class Ids:
    """Increasing ids per resource kind, large like Hetzner's."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def next(self, kind: str) -> int:
        with self._lock:
            counter = self._counters.setdefault(kind, itertools.count(_ID_BASES.get(kind, 1000)))
            return next(counter)

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()


_ID_BASES = {"server": 51_000_001, "ssh_key": 21_000_001, "action": 700_000_001, "primary_ip": 81_000_001}
_ID_BASES |= {"zone": 310_001}


def body(request: Request) -> dict[str, Any]:
    """The JSON body as an object; 400 json_error when it is not one."""
    try:
        data = request.json()
    except ValueError:
        raise CloudError(400, "json_error", "invalid JSON in request body") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CloudError(400, "json_error", "request body must be a JSON object")
    return data


def int_arg(request: Request, name: str, default: int) -> int:
    value = request.arg(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise invalid_input({name: "must be a positive integer"})
    return int(value)


def paginate(request: Request, key: str, items: list[dict[str, Any]]) -> Response:
    """One page of `items` under `key`, with `meta.pagination`."""
    page = max(1, int_arg(request, "page", 1))
    per_page = min(MAX_PER_PAGE, max(1, int_arg(request, "per_page", DEFAULT_PER_PAGE)))
    total = len(items)
    last = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last else None,
        "last_page": last,
        "total_entries": total,
    }
    return Response.json(200, {key: chunk, "meta": {"pagination": pagination}})


_SELECTOR = re.compile(r"^\s*(!)?\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def label_filter(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """A predicate for Hetzner's label selectors: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (..)`."""
    if not selector:
        return lambda labels: True
    terms = []
    for term in _split_selector(selector):
        match = _SELECTOR.match(term)
        if not match:
            raise invalid_input({"label_selector": f"invalid term {term!r}"})
        terms.append(match.groups())

    def matches(labels: dict[str, str]) -> bool:
        for negate, key, op, value, set_op, values in terms:
            if set_op:
                members = {v.strip() for v in values.split(",")}
                ok = (labels.get(key) in members) == (set_op == "in")
            elif op in ("=", "=="):
                ok = labels.get(key) == value
            elif op == "!=":
                ok = labels.get(key) != value
            else:
                ok = (key in labels) != bool(negate)
            if not ok:
                return False
        return True

    return matches


def _split_selector(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [*terms, current]


def sort_items(items: list[dict[str, Any]], request: Request, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    """Apply `sort=field[:asc|desc]` parameters (last one wins first)."""
    for spec in reversed(request.query.get("sort", [])):
        name, _, direction = spec.partition(":")
        if name not in allowed or direction not in ("", "asc", "desc"):
            raise invalid_input({"sort": f"invalid sort {spec!r}"})
        items = sorted(items, key=lambda item: (item.get(name) is None, item.get(name)), reverse=direction == "desc")
    return items


@dataclass
class Action:
    """An asynchronous operation: running until its duration passed, then success (or its error)."""

    id: int
    command: str
    resources: list[dict[str, Any]]
    started: float
    duration: float
    error: dict[str, str] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def status(self, now: float | None = None) -> str:
        if (now or time.time()) < self.started + self.duration:
            return "running"
        return "error" if self.error else "success"

    def to_dict(self) -> dict[str, Any]:
        now = time.time()
        status = self.status(now)
        progress = 100 if status != "running" else min(99, int(100 * (now - self.started) / self.duration))
        return {
            "id": self.id,
            "command": self.command,
            "status": status,
            "progress": progress,
            "started": timestamp(self.started),
            "finished": None if status == "running" else timestamp(self.started + self.duration),
            "resources": self.resources,
            "error": self.error if status == "error" else None,
        }


class Actions:
    """All actions of the project. Side effects meant for an action's end run on a timer."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self._actions: dict[int, Action] = {}
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()

    def start(
        self,
        command: str,
        resources: list[tuple[str, int]],
        duration: float,
        *,
        delay: float = 0.0,
        on_finish: Callable[[], None] | None = None,
    ) -> Action:
        """A new action starting after `delay` seconds and lasting `duration`."""
        action = Action(
            id=self.ids.next("action"),
            command=command,
            resources=[{"id": rid, "type": kind} for kind, rid in resources],
            started=time.time() + delay,
            duration=max(duration, 0.001),
        )
        with self._lock:
            self._actions[action.id] = action
            if on_finish is not None:
                timer = threading.Timer(delay + action.duration, on_finish)
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
        return action

    def get(self, action_id: int) -> Action:
        with self._lock:
            action = self._actions.get(action_id)
        if action is None:
            raise not_found("action")
        return action

    def all(self) -> list[Action]:
        with self._lock:
            return list(self._actions.values())

    def running_on(self, kind: str, rid: int) -> bool:
        """An action is still running on this resource: it is locked."""
        now = time.time()
        return any(a.status(now) == "running" and {"id": rid, "type": kind} in a.resources for a in self.all())

    def reset(self) -> None:
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._actions.clear()

    def list_response(self, request: Request, actions: list[Action]) -> Response:
        statuses = request.query.get("status")
        items = [a.to_dict() for a in actions]
        if statuses:
            items = [a for a in items if a["status"] in statuses]
        items = sort_items(
            sorted(items, key=lambda a: a["id"]), request, ("id", "command", "status", "started", "finished")
        )
        return paginate(request, "actions", items)


def register_action_routes(
    router: Router, actions: Actions, kind: str, plural: str, param: str, resource_id: Callable[[Request], int]
) -> None:
    """`/{plural}/actions[/{id}]` and `/{plural}/{param}/actions[/{id}]` for one resource kind.

    Register them before the resource's own `/{plural}/{param}` routes: `actions` must not be taken for
    an id or a name.
    """

    def of_kind(action: Action) -> bool:
        return any(r["type"] == kind for r in action.resources)

    def list_all(request: Request) -> Response:
        ids = {int(i) for i in request.query.get("id", []) if i.isdigit()}
        return actions.list_response(request, [a for a in actions.all() if of_kind(a) and (not ids or a.id in ids)])

    def get_any(request: Request) -> Response:
        action = actions.get(request.params["action"])
        if not of_kind(action):
            raise not_found("action")
        return Response.json(200, {"action": action.to_dict()})

    def list_for(request: Request) -> Response:
        resource = {"id": resource_id(request), "type": kind}
        return actions.list_response(request, [a for a in actions.all() if resource in a.resources])

    def get_for(request: Request) -> Response:
        resource = {"id": resource_id(request), "type": kind}
        action = actions.get(request.params["action"])
        if resource not in action.resources:
            raise not_found("action")
        return Response.json(200, {"action": action.to_dict()})

    router.add("GET", f"/{plural}/actions", list_all)
    router.add("GET", f"/{plural}/actions/{{action:int}}", get_any)
    router.add("GET", f"/{plural}/{{{param}}}/actions", list_for)
    router.add("GET", f"/{plural}/{{{param}}}/actions/{{action:int}}", get_for)


class Module(Protocol):
    """A resource module of the Cloud API (servers, ssh_keys, zones, ...)."""

    def register(self, router: Router) -> None:
        """Add the module's routes."""

    def reset(self) -> None:
        """Forget everything: a fresh project."""
