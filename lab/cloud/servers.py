"""`/servers` and their actions, backed by the datacenter's machines.

Create answers 201 with `create_server` and, as `next_actions`, `start_server`: the API powers the
server on itself (hetzner.md §9.2). While an action runs on a server it is `locked` and new action POSTs
answer 423 locked. Power actions act on the machine at once; the action finishes after the lab's action
delay. `enable_rescue` arms the rescue system for the next boot and returns the root password; it does
not reboot (hetzner.md §2.3). A `reset` of a server that is off leaves it off (as Robot's `hw`).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.cloud.catalog import DATACENTERS, IMAGES, LOCATIONS, SERVER_TYPES, find
from lab.cloud.core import (
    Action,
    Actions,
    CloudError,
    Ids,
    body,
    invalid_input,
    label_filter,
    not_found,
    paginate,
    register_action_routes,
    sort_items,
    timestamp,
    uniqueness_error,
)
from lab.cloud.ssh_keys import SshKeys, check_labels
from lab.datacenter import Datacenter, Machine, MachineSpec, Phase
from lab.delays import Delays
from lab.disks import DiskSpec
from lab.faults import Fault, Faults
from lab.httpserver import Request, Response, Router

_HOSTNAME = re.compile(
    r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"
)
RESCUE_TYPES = ("linux64",)
USER_DATA_LIMIT = 32 * 1024


@dataclass
class CloudServer:
    """A server of the project and the machine behind it."""

    id: int
    name: str
    server_type: dict[str, Any]
    image: dict[str, Any]
    location: dict[str, Any]
    machine: Machine
    ipv4_id: int
    ipv6_id: int
    labels: dict[str, str] = field(default_factory=dict)
    protection: dict[str, bool] = field(default_factory=lambda: {"delete": False, "rebuild": False})
    created: float = field(default_factory=time.time)
    initialized_at: float = 0.0
    deleting: bool = False

    def status(self) -> str:
        if self.deleting:
            return "deleting"
        if time.time() < self.initialized_at:
            return "initializing"
        if self.machine.phase is Phase.SHUTTING_DOWN:
            return "stopping"
        return "running" if self.machine.powered else "off"


class Servers:
    """The project's servers."""

    def __init__(
        self, datacenter: Datacenter, ids: Ids, actions: Actions, ssh_keys: SshKeys, delays: Delays, faults: Faults
    ) -> None:
        self.datacenter, self.ids, self.actions, self.ssh_keys = datacenter, ids, actions, ssh_keys
        self.delays, self.faults = delays, faults
        self.servers: dict[int, CloudServer] = {}
        self._lock = threading.Lock()

    def register(self, router: Router) -> None:
        register_action_routes(router, self.actions, "server", "servers", "id:int", lambda r: self._server(r).id)
        router.add("GET", "/servers", self.list)
        router.add("POST", "/servers", self.create)
        router.add("GET", "/servers/{id:int}", self.get)
        router.add("PUT", "/servers/{id:int}", self.update)
        router.add("DELETE", "/servers/{id:int}", self.delete)
        simple: dict[str, Callable[[Machine], None]] = {
            "poweron": Machine.power_on,
            "poweroff": Machine.power_cut,
            "reset": Machine.hard_reset,
            "reboot": Machine.ctrl_alt_del,
            "shutdown": _acpi_shutdown,
        }
        commands = {"poweron": "start_server", "poweroff": "stop_server", "reset": "reset_server"}
        commands |= {"reboot": "reboot_server", "shutdown": "shutdown_server"}
        for name, effect in simple.items():
            router.add("POST", f"/servers/{{id:int}}/actions/{name}", self._power_action(commands[name], effect))
        router.add("POST", "/servers/{id:int}/actions/enable_rescue", self.enable_rescue)
        router.add("POST", "/servers/{id:int}/actions/disable_rescue", self.disable_rescue)
        router.add("POST", "/servers/{id:int}/actions/change_protection", self.change_protection)

    def reset(self) -> None:
        with self._lock:
            self.servers.clear()

    # --- representation ---------------------------------------------------------------------------

    def to_dict(self, server: CloudServer) -> dict[str, Any]:
        machine = server.machine
        return {
            "id": server.id,
            "name": server.name,
            "status": server.status(),
            "created": timestamp(server.created),
            "public_net": {
                "ipv4": {"id": server.ipv4_id, "ip": machine.address, "blocked": False, "dns_ptr": _ptr(machine)},
                "ipv6": {
                    "id": server.ipv6_id,
                    "ip": f"{machine.placement.ipv6_net}/64",
                    "blocked": False,
                    "dns_ptr": [],
                },
                "floating_ips": [],
                "firewalls": [],
            },
            "private_net": [],
            "server_type": server.server_type,
            "location": server.location,
            "datacenter": next(dc for dc in DATACENTERS if dc["location"]["id"] == server.location["id"]),
            "image": server.image,
            "iso": None,
            "rescue_enabled": machine.rescue_armed,
            "locked": self.actions.running_on("server", server.id),
            "backup_window": None,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21990232555520,
            "protection": dict(server.protection),
            "labels": dict(server.labels),
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": server.server_type["disk"],
            "placement_group": None,
        }

    def _server(self, request: Request) -> CloudServer:
        server = self.servers.get(request.params["id"])
        if server is None:
            raise not_found("server")
        return server

    # --- CRUD -------------------------------------------------------------------------------------

    def list(self, request: Request) -> Response:
        name, statuses = request.arg("name"), request.query.get("status")
        labels = label_filter(request.arg("label_selector"))
        with self._lock:
            servers = sorted(self.servers.values(), key=lambda s: s.id)
        items = [
            self.to_dict(s)
            for s in servers
            if (name is None or s.name == name) and labels(s.labels) and (not statuses or s.status() in statuses)
        ]
        return paginate(request, "servers", sort_items(items, request, ("id", "name", "created")))

    def get(self, request: Request) -> Response:
        return Response.json(200, {"server": self.to_dict(self._server(request))})

    def create(self, request: Request) -> Response:
        data = body(request)
        name = data.get("name")
        if not isinstance(name, str) or not _HOSTNAME.match(name):
            raise invalid_input({"name": "must be a valid hostname (RFC 1123)"})
        for required in ("server_type", "image"):
            if data.get(required) in (None, ""):
                raise invalid_input({required: "is required"})
        server_type = find(SERVER_TYPES, data["server_type"], "server_type")
        image = find([i for i in IMAGES if i["architecture"] == server_type["architecture"]], data["image"], "image")
        location = find(LOCATIONS, data.get("location") or _location_of(data.get("datacenter")), "location")
        keys = [self.ssh_keys.resolve(ref) for ref in data.get("ssh_keys") or []]
        user_data = data.get("user_data")
        if user_data is not None and (not isinstance(user_data, str) or len(user_data) > USER_DATA_LIMIT):
            raise invalid_input({"user_data": f"must be a string of at most {USER_DATA_LIMIT} bytes"})
        labels = check_labels(data.get("labels"))
        with self._lock:
            if any(s.name == name for s in self.servers.values()):
                raise uniqueness_error("server name is already used", "name")
            ident = self.ids.next("server")
            spec = MachineSpec(
                kind="cloud",
                ident=ident,
                name=name,
                product=server_type["name"],
                dc=location["name"],
                disks=(_cloud_disk(server_type["disk"]),),
                reset_types=(),
                installed_os=name,
            )
            machine = self.datacenter.add_cloud_server(spec)
            machine.user_data = user_data
            server = CloudServer(
                ident,
                name,
                server_type,
                image,
                location,
                machine,
                self.ids.next("primary_ip"),
                self.ids.next("primary_ip"),
                labels,
            )
            server.initialized_at = time.time() + self.delays.action
            self.servers[ident] = server
        start = data.get("start_after_create", True) is not False
        create = self.actions.start(
            "create_server", [("server", ident)], self.delays.action, on_finish=machine.power_on if start else None
        )
        next_actions = (
            [self.actions.start("start_server", [("server", ident)], 2 * self.delays.action)] if start else []
        )
        password = None if keys else _root_password()
        reply = {
            "server": self.to_dict(server),
            "action": create.to_dict(),
            "next_actions": [a.to_dict() for a in next_actions],
            "root_password": password,
        }
        return Response.json(201, reply)

    def update(self, request: Request) -> Response:
        server, data = self._server(request), body(request)
        if "name" in data:
            name = data["name"]
            if not isinstance(name, str) or not _HOSTNAME.match(name):
                raise invalid_input({"name": "must be a valid hostname (RFC 1123)"})
            if any(s.name == name and s.id != server.id for s in self.servers.values()):
                raise uniqueness_error("server name is already used", "name")
            server.name = name
        if "labels" in data:
            server.labels = check_labels(data["labels"])
        return Response.json(200, {"server": self.to_dict(server)})

    def delete(self, request: Request) -> Response:
        server = self._server(request)
        if server.protection["delete"]:
            raise CloudError(423, "protected", "server is delete protected")
        server.deleting = True
        server.machine.power_cut()
        action = self.actions.start(
            "delete_server", [("server", server.id)], self.delays.action, on_finish=lambda: self._forget(server)
        )
        return Response.json(200, {"action": action.to_dict()})

    def _forget(self, server: CloudServer) -> None:
        with self._lock:
            self.servers.pop(server.id, None)
        self.datacenter.remove_cloud_server(server.id)

    # --- actions ----------------------------------------------------------------------------------

    def _begin(self, request: Request, command: str) -> tuple[CloudServer, Action]:
        """Check the server is free, then start `command` on it."""
        server = self._server(request)
        if server.deleting:
            raise not_found("server")
        if self.faults.take(Fault.CLOUD_LOCKED, request.path) or self.actions.running_on("server", server.id):
            raise CloudError(423, "locked", "server is locked: another action is running")
        return server, self.actions.start(command, [("server", server.id)], self.delays.action)

    def _power_action(self, command: str, effect: Callable[[Machine], None]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            server, action = self._begin(request, command)
            effect(server.machine)
            return Response.json(201, {"action": action.to_dict()})

        return handler

    def enable_rescue(self, request: Request) -> Response:
        data = body(request)
        rescue_type = data.get("type") or "linux64"
        if rescue_type not in RESCUE_TYPES:
            raise invalid_input({"type": f"rescue type must be one of {', '.join(RESCUE_TYPES)}"})
        refs = data.get("ssh_keys") or []
        if not isinstance(refs, list) or not all(isinstance(r, int) for r in refs):
            raise invalid_input({"ssh_keys": "must be a list of SSH key ids"})
        keys = [self.ssh_keys.resolve(ref) for ref in refs]
        server, action = self._begin(request, "enable_rescue")
        arm = server.machine.arm_rescue(rescue_type, tuple(k.public_key for k in keys))
        return Response.json(201, {"root_password": arm.password, "action": action.to_dict()})

    def disable_rescue(self, request: Request) -> Response:
        server, action = self._begin(request, "disable_rescue")
        server.machine.disarm_rescue()
        return Response.json(201, {"action": action.to_dict()})

    def change_protection(self, request: Request) -> Response:
        data = body(request)
        for flag in ("delete", "rebuild"):
            if flag in data and not isinstance(data[flag], bool):
                raise invalid_input({flag: "must be a boolean"})
        server, action = self._begin(request, "change_protection")
        server.protection.update({k: data[k] for k in ("delete", "rebuild") if k in data})
        return Response.json(201, {"action": action.to_dict()})


def _acpi_shutdown(machine: Machine) -> None:
    if machine.powered:
        machine.power_button()


def _location_of(datacenter: Any) -> Any:
    """The location of a (deprecated) `datacenter` argument such as `fsn1-dc14`; default fsn1."""
    if isinstance(datacenter, str) and "-" in datacenter:
        return datacenter.split("-", 1)[0]
    return "fsn1"


def _cloud_disk(size_gb: int) -> DiskSpec:
    return DiskSpec("sda", size_gb * (1 << 30), "QEMU HARDDISK", "drive-scsi0-0-0-0", None, "virtio")


def _ptr(machine: Machine) -> str:
    return f"static.{'.'.join(reversed(machine.address.split('.')))}.clients.your-server.de"


def _root_password() -> str:
    return secrets.token_urlsafe(15)
