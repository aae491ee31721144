"""The Robot webservice (robot-ws.your-server.de) for the lab's dedicated servers.

Basic auth, form-encoded POSTs, JSON answers in the documented shapes and error codes (hetzner.md §1):
servers, IPs (gateway/mask), boot/rescue activations (one boot, password in the activating answer),
resets with the documented types, SSH keys. Not served: the `.yaml` variants and the endpoints the
project does not use (orders, failover, vSwitch, storage boxes ...), which answer 404 NOT_FOUND.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import ipaddress
import threading
from collections.abc import Callable
from typing import Any

from lab.datacenter import Datacenter, Machine
from lab.delays import Delays
from lab.faults import Fault, Faults
from lab.httpserver import DropConnection, Request, Response, Router
from lab.robot.account import RobotAccount, parse_robot_key

RESCUE_OSES = ("linux", "vkvm")
_JSON = {"Content-Type": "application/json; charset=utf-8"}

Handler = Callable[[Request], Response]


def robot_error(status: int, code: str, message: str, **extra: Any) -> Response:
    """Robot's error body: `{"error": {"status", "code", "message", ...}}`."""
    return Response.json(status, {"error": {"status": status, "code": code, "message": message, **extra}}, _JSON)


def invalid_input(missing: list[str] | None = None, invalid: list[str] | None = None) -> Response:
    return robot_error(400, "INVALID_INPUT", "invalid input", missing=missing or None, invalid=invalid or None)


def _ok(payload: Any, status: int = 200) -> Response:
    return Response.json(status, payload, _JSON)


class RobotApp:
    """Routes, authentication, request limits and fault switches of the webservice."""

    def __init__(
        self,
        datacenter: Datacenter,
        account: RobotAccount,
        faults: Faults,
        delays: Delays,
        *,
        report_host_keys: bool = False,
    ) -> None:
        self.datacenter, self.account, self.faults, self.delays = datacenter, account, faults, delays
        self.report_host_keys = report_host_keys
        """Fill the rescue `host_key` array (every published example is `[]`, so off by default)."""
        self.names: dict[int, str] = {}
        self.last_rescue: dict[int, dict[str, Any]] = {}
        self._manual: dict[int, threading.Timer] = {}
        self._lock = threading.Lock()
        self.router = Router()
        routes: list[tuple[str, str, str, Handler]] = [
            ("GET", "/server", "server", self.list_servers),
            ("GET", "/server/{number:int}", "server", self.get_server),
            ("POST", "/server/{number:int}", "server", self.rename_server),
            ("GET", "/ip", "ip", self.list_ips),
            ("GET", "/ip/{ip}", "ip", self.get_ip),
            ("GET", "/boot/{number:int}", "boot", self.get_boot),
            ("GET", "/boot/{number:int}/rescue", "boot", self.get_rescue),
            ("POST", "/boot/{number:int}/rescue", "boot", self.enable_rescue),
            ("DELETE", "/boot/{number:int}/rescue", "boot", self.disable_rescue),
            ("GET", "/boot/{number:int}/rescue/last", "boot", self.last_rescue_activation),
            ("GET", "/reset", "reset", self.list_resets),
            ("GET", "/reset/{number:int}", "reset", self.get_reset),
            ("POST", "/reset/{number:int}", "reset_post", self.execute_reset),
            ("GET", "/key", "key", self.list_keys),
            ("POST", "/key", "key_post", self.create_key),
            ("GET", "/key/{fingerprint}", "key", self.get_key),
            ("POST", "/key/{fingerprint}", "key_post", self.rename_key),
            ("DELETE", "/key/{fingerprint}", "key_post", self.delete_key),
        ]
        for method, pattern, group, handler in routes:
            self.router.add(method, pattern, self._limited(group, handler))

    def reset(self) -> None:
        """Forget keys, names, activations, limits and pending manual resets."""
        with self._lock:
            for timer in self._manual.values():
                timer.cancel()
            self._manual.clear()
            self.names.clear()
            self.last_rescue.clear()
        self.account.reset()

    # --- transport --------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        if self.faults.take(Fault.ROBOT_LOST, request.path):
            raise DropConnection()
        failure = self.faults.take(Fault.ROBOT_SERVER_ERROR, request.path)
        if failure:
            status = int(failure.params.get("status", 500))
            if status == 503:
                return robot_error(503, "MAINTENANCE", "Service unavailable: maintenance")
            return robot_error(status, "INTERNAL_ERROR", "internal error")
        if not self._authenticated(request):
            return robot_error(401, "UNAUTHORIZED", "Unable to authenticate")
        resolved = self.router.resolve(request.method, request.path.rstrip("/") or "/")
        if isinstance(resolved, int):
            if resolved == 405:
                return robot_error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
            return robot_error(404, "NOT_FOUND", "Not Found")
        handler, request.params = resolved
        return handler(request)

    def _authenticated(self, request: Request) -> bool:
        if self.account.blocked(request.client):
            return False
        header = request.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        ok = (
            scheme.lower() == "basic"
            and hmac.compare_digest(user, self.account.user)
            and hmac.compare_digest(password, self.account.password)
        )
        if not ok:
            self.account.failed_login(request.client)
        return ok

    def _limited(self, group: str, handler: Handler) -> Handler:
        def limited(request: Request) -> Response:
            fault = self.faults.take(Fault.ROBOT_RATE_LIMIT, request.path)
            if fault is None and self.account.acquire(group):
                return handler(request)
            params = fault.params if fault else {}
            limit = int(params.get("max_request", self.account.limits[group]))
            interval = int(params.get("interval", self.account.interval))
            return robot_error(403, "RATE_LIMIT_EXCEEDED", "rate limit exceeded", max_request=limit, interval=interval)

        return limited

    def _server(self, request: Request) -> Machine | Response:
        machine = self.datacenter.robot(request.params["number"])
        return machine if machine is not None else robot_error(404, "SERVER_NOT_FOUND", "server not found")

    # --- servers and IPs --------------------------------------------------------------------------

    def _server_short(self, machine: Machine) -> dict[str, Any]:
        p = machine.placement
        return {
            "server_ip": p.address,
            "server_ipv6_net": p.ipv6_net,
            "server_number": machine.spec.ident,
            "server_name": self.names.get(machine.spec.ident, machine.spec.name),
            "product": machine.spec.product,
            "dc": machine.spec.dc,
            "traffic": "unlimited",
            "status": "ready",
            "cancelled": False,
            "paid_until": "2027-12-31",
            "ip": [p.address],
            "subnet": [{"ip": p.ipv6_net, "mask": "64"}],
        }

    def _server_full(self, machine: Machine) -> dict[str, Any]:
        flags = {"reset": bool(machine.spec.reset_types), "rescue": True, "vnc": True, "windows": False}
        flags |= {"plesk": False, "cpanel": False, "wol": True, "hot_swap": False, "linked_storagebox": None}
        return {**self._server_short(machine), **flags}

    def list_servers(self, request: Request) -> Response:
        machines = sorted(self.datacenter.robot_machines(), key=lambda m: m.spec.ident)
        return _ok([{"server": self._server_short(m)} for m in machines])

    def get_server(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        return _ok({"server": self._server_full(machine)})

    def rename_server(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        name = request.form().get("server_name")
        if not name:
            return invalid_input(missing=["server_name"])
        self.names[machine.spec.ident] = name[0]
        return _ok({"server": self._server_full(machine)})

    def _ip(self, machine: Machine, detail: bool) -> dict[str, Any]:
        p = machine.placement
        data: dict[str, Any] = {
            "ip": p.address,
            "server_ip": p.address,
            "server_number": machine.spec.ident,
            "locked": False,
            "separate_mac": None,
            "traffic_warnings": False,
            "traffic_hourly": 50,
            "traffic_daily": 50,
            "traffic_monthly": 8,
        }
        if detail:
            network = ipaddress.IPv4Network(f"{p.address}/{p.prefix}", strict=False)
            data |= {"gateway": p.gateway, "mask": p.prefix, "broadcast": str(network.broadcast_address)}
        return data

    def list_ips(self, request: Request) -> Response:
        machines = sorted(self.datacenter.robot_machines(), key=lambda m: m.spec.ident)
        return _ok([{"ip": self._ip(m, detail=False)} for m in machines])

    def get_ip(self, request: Request) -> Response:
        for machine in self.datacenter.robot_machines():
            if machine.address == request.params["ip"]:
                return _ok({"ip": self._ip(machine, detail=True)})
        return robot_error(404, "IP_NOT_FOUND", "ip not found")

    # --- boot configuration -------------------------------------------------------------------------

    def _rescue(self, machine: Machine, *, with_password: bool) -> dict[str, Any]:
        p = machine.placement
        base = {"server_ip": p.address, "server_ipv6_net": p.ipv6_net, "server_number": machine.spec.ident}
        arm = machine.rescue if machine.rescue_armed else None
        if arm is None:
            inactive = {"os": list(RESCUE_OSES), "arch": [64], "active": False, "password": None}
            return base | inactive | {"authorized_key": [], "host_key": []}
        keys = [{"key": self.account.keys[fp].reference()} for fp in self._fingerprints(arm.keys)]
        host_keys = []
        if self.report_host_keys:
            host_keys = [{"key": {"fingerprint": arm.host_key_fingerprint, "type": "ED25519", "size": 256}}]
        return base | {
            "os": arm.os,
            "arch": 64,
            "active": True,
            "password": arm.password if with_password else None,
            "authorized_key": keys,
            "host_key": host_keys,
        }

    def _fingerprints(self, lines: tuple[str, ...]) -> list[str]:
        by_data = {key.data: fp for fp, key in self.account.keys.items()}
        return [by_data[line] for line in lines if line in by_data]

    def get_boot(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        p = machine.placement
        base = {"server_ip": p.address, "server_ipv6_net": p.ipv6_net, "server_number": machine.spec.ident}
        linux = base | {"dist": ["Debian 12 base", "Ubuntu 24.04 LTS base"], "arch": [64], "lang": ["en"]}
        linux |= {"active": False, "password": None, "authorized_key": [], "host_key": []}
        vnc = base | {"dist": ["Debian 12"], "arch": [64], "lang": ["en_US"], "active": False, "password": None}
        boot = {"rescue": self._rescue(machine, with_password=True), "linux": linux, "vnc": vnc}
        boot |= {"windows": None, "plesk": None, "cpanel": None}
        return _ok({"boot": boot})

    def get_rescue(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        return _ok({"rescue": self._rescue(machine, with_password=True)})

    def enable_rescue(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        form = request.form()
        os_name = (form.get("os") or [""])[0]
        if not os_name:
            return invalid_input(missing=["os"])
        fingerprints = [v for k, values in form.items() if k.startswith("authorized_key") for v in values if v]
        invalid = [] if os_name in RESCUE_OSES else ["os"]
        if any(fp not in self.account.keys for fp in fingerprints):
            invalid.append("authorized_key")
        if (form.get("arch") or ["64"])[0] != "64":
            invalid.append("arch")
        if invalid:
            return invalid_input(invalid=invalid)
        if machine.rescue_armed:
            return robot_error(409, "BOOT_ALREADY_ENABLED", "Boot configuration already enabled")
        keys = tuple(self.account.keys[fp].data for fp in fingerprints)
        machine.arm_rescue(os_name, keys)
        body = self._rescue(machine, with_password=True)
        self.last_rescue[machine.spec.ident] = {**body, "password": None}
        return _ok({"rescue": body})

    def disable_rescue(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        machine.disarm_rescue()
        return _ok({"rescue": self._rescue(machine, with_password=True)})

    def last_rescue_activation(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        last = self.last_rescue.get(machine.spec.ident)
        if last is None:
            return robot_error(404, "BOOT_NOT_AVAILABLE", "No boot configuration available for this server")
        return _ok({"rescue": last})

    # --- reset ------------------------------------------------------------------------------------

    def _reset(self, machine: Machine, *, status: bool) -> dict[str, Any]:
        p = machine.placement
        data: dict[str, Any] = {
            "server_ip": p.address,
            "server_ipv6_net": p.ipv6_net,
            "server_number": machine.spec.ident,
            "type": list(machine.spec.reset_types),
        }
        if status:
            data["operating_status"] = machine.operating_status
        return data

    def list_resets(self, request: Request) -> Response:
        machines = [m for m in self.datacenter.robot_machines() if m.spec.reset_types]
        if not machines:
            return robot_error(404, "NOT_FOUND", "No server found")
        return _ok([{"reset": self._reset(m, status=False)} for m in sorted(machines, key=lambda m: m.spec.ident)])

    def get_reset(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        if not machine.spec.reset_types:
            return robot_error(404, "RESET_NOT_AVAILABLE", "The server has no reset option")
        return _ok({"reset": self._reset(machine, status=True)})

    def execute_reset(self, request: Request) -> Response:
        machine = self._server(request)
        if isinstance(machine, Response):
            return machine
        if not machine.spec.reset_types:
            return robot_error(404, "RESET_NOT_AVAILABLE", "The server has no reset option")
        kind = (request.form().get("type") or [""])[0]
        if not kind:
            return invalid_input(missing=["type"])
        if kind not in machine.spec.reset_types:
            return invalid_input(invalid=["type"])
        with self._lock:
            if machine.spec.ident in self._manual:
                return robot_error(409, "RESET_MANUAL_ACTIVE", "There is already a running manual reset")
            if kind == "man":
                timer = threading.Timer(self.delays.manual_reset, self._manual_done, (machine,))
                timer.daemon = True
                self._manual[machine.spec.ident] = timer
                timer.start()
        actions = {"hw": machine.hard_reset, "sw": machine.ctrl_alt_del, "power": machine.power_button}
        actions["power_long"] = machine.power_cut
        if kind in actions:
            actions[kind]()
        p = machine.placement
        reset = {"server_ip": p.address, "server_ipv6_net": p.ipv6_net, "server_number": machine.spec.ident}
        return _ok({"reset": reset | {"type": kind}})

    def _manual_done(self, machine: Machine) -> None:
        with self._lock:
            self._manual.pop(machine.spec.ident, None)
        machine.power_cycle()

    # --- SSH keys ---------------------------------------------------------------------------------

    def list_keys(self, request: Request) -> Response:
        if not self.account.keys:
            return robot_error(404, "NOT_FOUND", "No keys found")
        return _ok([{"key": key.full()} for key in self.account.keys.values()])

    def create_key(self, request: Request) -> Response:
        form = request.form()
        name, data = (form.get("name") or [""])[0], (form.get("data") or [""])[0]
        missing = [field for field, value in (("name", name), ("data", data)) if not value]
        if missing:
            return invalid_input(missing=missing)
        try:
            key = parse_robot_key(name, data)
        except (ValueError, IndexError, binascii.Error):
            return invalid_input(invalid=["data"])
        with self._lock:
            if key.fingerprint in self.account.keys:
                return robot_error(409, "KEY_ALREADY_EXISTS", "The key already exists")
            self.account.keys[key.fingerprint] = key
        return _ok({"key": key.full()}, status=201)

    def get_key(self, request: Request) -> Response:
        key = self.account.keys.get(request.params["fingerprint"])
        if key is None:
            return robot_error(404, "NOT_FOUND", "Key not found")
        return _ok({"key": key.full()})

    def rename_key(self, request: Request) -> Response:
        fingerprint = request.params["fingerprint"]
        key = self.account.keys.get(fingerprint)
        if key is None:
            return robot_error(404, "NOT_FOUND", "Key not found")
        name = (request.form().get("name") or [""])[0]
        if not name:
            return invalid_input(missing=["name"])
        renamed = dataclasses.replace(key, name=name)
        self.account.keys[fingerprint] = renamed
        return _ok({"key": renamed.full()})

    def delete_key(self, request: Request) -> Response:
        if self.account.keys.pop(request.params["fingerprint"], None) is None:
            return robot_error(404, "NOT_FOUND", "Key not found")
        return Response.empty(200, _JSON)
