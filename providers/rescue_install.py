"""RescueInstall: one Hetzner server (Robot or Cloud) brought to Talos maintenance mode from the rescue system.

Inputs name the server, its address, the image, the install disk selector, the wipe policy, a reinstall trigger
and the deadlines; credentials come from stack config in `configure()` and are never captured in the pickled
provider or written to outputs. `check` validates everything offline so `pulumi preview` fails early; `create`
runs `hetzner.install.install_talos` (probe, adopt or install); `diff` replaces only for another server or a
new reinstall trigger; `delete` never touches the server.

The one secret output, `rescuePassword` (the root password Robot or the Cloud API returned for the rescue
activation that came up, "" for an adopted node; the user's way into that rescue system should the key fail), is
declared in `SECRET_OUTPUTS`, so the engine stores it encrypted; it never appears in other outputs, progress lines or
errors. It is never sent over SSH.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from common.waiting import Deadline
from hetzner.cloud import CLOUD_URL, CloudClient, CloudError
from hetzner.disks import DiskSelector, WipePolicy, validate_selector
from hetzner.errors import HetznerError
from hetzner.images import image_from_inputs, validate_image
from hetzner.install import InstallPlan, InstallReport, Timeouts, install_talos
from hetzner.keys import load_private_key
from hetzner.machines import CloudMachine, RescueMachine, RobotMachine
from hetzner.robot import ROBOT_URL, RobotAuthError, RobotClient
from providers.inputs import changed, is_unknown
from providers.registration import secret_outputs, with_outputs
from talos.errors import UnsupportedVersionError
from talos.versions import contract_for

SERVER_KINDS = ("robot", "cloud")
INPUTS = ("node", "server", "address", "sshPort", "talosPort", "image", "disk", "wipe", "reinstall", "timeouts")
REPLACING = ("server", "reinstall")
"""Inputs whose change means another install: another server, or a new reinstall trigger."""
OUTPUTS = (
    "outcome",
    "installDisk",
    "imageUrl",
    "imageSha256",
    "checksumVerified",
    "talosVersion",
    "talosState",
    "resets",
    "rescueHostKey",
    "timings",
    "rescuePassword",
)
SECRET_OUTPUTS = ("rescuePassword",)
"""Outputs the engine stores encrypted (declared at registration through `additional_secret_outputs`)."""
_TIMEOUT_FIELDS = {"rescue": "rescue", "install": "install", "boot": "boot", "resetAttempts": "reset_attempts"}


@dataclass
class RescueInstallArgs:
    """Inputs of one RescueInstall; every field may be a Pulumi Output."""

    server_kind: pulumi.Input[str]
    """`robot` (a dedicated server, by Robot server number) or `cloud` (a Cloud server, by id)."""
    server_id: pulumi.Input[int]
    address: pulumi.Input[str]
    """The server's main IPv4 address: SSH to the rescue system and the Talos API go there."""
    image: pulumi.Input[dict[str, Any]]
    """`{version, schematic?, platform?, arch?, format?, factoryUrl?, sha256?}` or `{url, sha256, version?}`."""
    disk: pulumi.Input[dict[str, Any]] = field(default_factory=dict)
    """Selector: `{wwn?, serial?, model?, minSize?, maxSize?, byId?}`; it must match exactly one disk."""
    wipe: pulumi.Input[str] = WipePolicy.REFUSE.value
    """`refuse` a disk holding partitions or filesystems (default), allow replacing only `talos`, or `any`."""
    reinstall: pulumi.Input[str] | None = None
    """Reinstall trigger: set or change it to wipe and reinstall even a configured Talos node."""
    node: str | None = None
    """Name in progress lines and errors (default: the resource name)."""
    ssh_port: pulumi.Input[int] = 22
    talos_port: pulumi.Input[int] = 50000
    timeouts: pulumi.Input[dict[str, Any]] | None = None
    """Seconds: `{rescue (per reset), install, boot, resetAttempts}`."""

    def to_props(self, name: str) -> dict[str, Any]:
        return {
            "node": self.node or name,
            "server": {"kind": self.server_kind, "id": self.server_id},
            "address": self.address,
            "sshPort": self.ssh_port,
            "talosPort": self.talos_port,
            "image": self.image,
            "disk": self.disk,
            "wipe": self.wipe,
            "reinstall": self.reinstall,
            "timeouts": self.timeouts,
        }


class RescueInstall(pulumi.dynamic.Resource, module="hetzner", name="RescueInstall"):
    """A Talos install on one Hetzner server, done once from the rescue system (never undone on delete)."""

    outcome: pulumi.Output[str]
    installDisk: pulumi.Output[dict[str, Any]]
    imageUrl: pulumi.Output[str]
    imageSha256: pulumi.Output[str]
    talosVersion: pulumi.Output[str]
    timings: pulumi.Output[dict[str, float]]
    rescuePassword: pulumi.Output[str]
    """Secret: the root password of the last rescue activation this install used ("" when adopted); only
    useful while that rescue system runs, e.g. to log in on the console when its SSH key login fails."""

    def __init__(self, name: str, args: RescueInstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = with_outputs(args.to_props(name), OUTPUTS)
        super().__init__(RescueInstallProvider(), name, props, secret_outputs(SECRET_OUTPUTS, opts))


@dataclass(frozen=True)
class Credentials:
    """What the provider reads from stack config; never pickled, never in outputs."""

    robot_user: str | None = None
    robot_password: str | None = field(default=None, repr=False)
    robot_url: str = ROBOT_URL
    cloud_token: str | None = field(default=None, repr=False)
    cloud_endpoint: str = CLOUD_URL
    ssh_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: pulumi.dynamic.Config) -> Credentials:
        return cls(
            robot_user=config.get("robotUser"),
            robot_password=config.get("robotPassword"),
            robot_url=config.get("robotUrl") or ROBOT_URL,
            cloud_token=config.get("hcloudToken") or config.get("hcloud:token"),
            cloud_endpoint=config.get("hcloudEndpoint") or config.get("hcloud:endpoint") or CLOUD_URL,
            ssh_key=config.get("rescueSshKey"),
        )

    def problems(self, kind: str) -> list[str]:
        """What is missing to work on a server of this kind, each with the config command that fixes it."""
        needed = {"robot": ("robotUser", "robotPassword"), "cloud": ("hcloudToken",)}.get(kind, ())
        values = {"robotUser": self.robot_user, "robotPassword": self.robot_password, "hcloudToken": self.cloud_token}
        missing = [key for key in needed if not values[key]]
        if not self.ssh_key:
            missing.append("rescueSshKey")
        found = [f"{key} is not set (fix: pulumi config set --secret {key} ...)" for key in missing]
        if self.ssh_key:
            try:
                load_private_key(self.ssh_key)
            except HetznerError as error:
                found.append(f"rescueSshKey: {error}")
        return found


class RescueInstallProvider(ResourceProvider):
    """Creates by installing (or adopting) Talos; never deletes anything remote. Thread-safe: no per-call state."""

    serialize_as_secret_always = False  # credentials come from configure(), nothing secret is captured
    credentials: Credentials = Credentials()

    def configure(self, req: ConfigureRequest) -> None:
        self.credentials = Credentials.from_config(req.config)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(name, reason) for name, reason in _check_inputs(news, self.credentials)]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACING if changed(olds.get(key), news.get(key))]
        differing = replaces or [key for key in INPUTS if changed(olds.get(key), news.get(key))]
        return DiffResult(changes=bool(differing), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        plan, kind, server_id = _plan(props)
        key = load_private_key(self.credentials.ssh_key or "")
        budget = plan.timeouts.rescue * plan.timeouts.reset_attempts + plan.timeouts.install + plan.timeouts.boot
        with _machine(self.credentials, kind, server_id, Deadline.after(budget)) as machine:
            try:
                report = install_talos(machine, plan, key=key, progress=_stderr(plan.node))
            except HetznerError as error:
                message = _with_fix(error)
                message = message if message.startswith(f"{plan.node}:") else f"{plan.node}: {message}"
                raise RuntimeError(message) from None
        return CreateResult(f"{kind}-{server_id}", {**_inputs(props), **_outputs(plan, report)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Record new inputs; the install facts stay (image or version changes are upgrades, not reinstalls)."""
        return UpdateResult({**_inputs(news), **{key: olds.get(key) for key in OUTPUTS}})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing remote: deleting the resource never wipes or resets the server."""


def _check_inputs(news: dict[str, Any], credentials: Credentials) -> list[tuple[str, str]]:
    """(property, reason with the fix) for every bad input; values unknown during preview are skipped."""
    problems: list[tuple[str, str]] = []
    server = news.get("server")
    if is_unknown(server):
        pass
    elif not isinstance(server, dict):
        problems.append(("server", "must be {kind: robot|cloud, id: <number>}"))
    else:
        kind = server.get("kind")
        if not is_unknown(kind) and kind not in SERVER_KINDS:
            problems.append(("server", f"kind {kind!r} is not robot or cloud (fix: set server_kind)"))
        if not is_unknown(server.get("id")) and not _positive_int(server.get("id")):
            problems.append(("server", "id must be the Robot server number or Cloud server id (a positive integer)"))
        if kind in SERVER_KINDS:
            problems += [("server", reason) for reason in credentials.problems(str(kind))]
    if not is_unknown(news.get("address")) and not news.get("address"):
        problems.append(("address", "is required: the server's main IPv4 address"))
    for name in ("sshPort", "talosPort"):
        value = news.get(name)
        if not is_unknown(value) and value is not None and not (_positive_int(value) and int(value) < 65536):
            problems.append((name, f"{value!r} is not a TCP port"))
    problems += _check_image(news.get("image"))
    problems += _check_nested("disk", news.get("disk") or {}, validate_selector)
    wipe = news.get("wipe")
    if not is_unknown(wipe) and wipe is not None and wipe not in {policy.value for policy in WipePolicy}:
        problems.append(("wipe", f"{wipe!r} is not a wipe policy (fix: refuse, talos or any)"))
    problems += _check_nested("timeouts", news.get("timeouts") or {}, _validate_timeouts)
    return problems


def _check_image(image: Any) -> list[tuple[str, str]]:
    if is_unknown(image):
        return []
    if not isinstance(image, dict):
        return [("image", "must be {version, schematic?, ...} or {url, sha256}")]
    problems = _check_nested("image", image, validate_image)
    version = image.get("version")
    if version and not is_unknown(version):
        try:
            contract_for(str(version))
        except UnsupportedVersionError as error:
            problems.append(("image.version", str(error)))
    return problems


def _check_nested(name: str, value: Any, validate: Any) -> list[tuple[str, str]]:
    if is_unknown(value):
        return []
    if not isinstance(value, dict):
        return [(name, "must be an object")]
    known = {key: item for key, item in value.items() if not is_unknown(item)}
    return [(f"{name}.{key}", reason) for key, reason in validate(known)]


def _validate_timeouts(value: dict[str, Any]) -> list[tuple[str, str]]:
    fix = f"fix: one of {', '.join(_TIMEOUT_FIELDS)}"
    problems = [(key, f"unknown ({fix})") for key in value if key not in _TIMEOUT_FIELDS]
    for key, item in value.items():
        if key in _TIMEOUT_FIELDS and (not isinstance(item, int | float) or item <= 0):
            problems.append((key, f"{item!r} must be a positive number of seconds (attempts for resetAttempts)"))
    return problems


def _plan(props: dict[str, Any]) -> tuple[InstallPlan, str, int]:
    kind, server_id = str(props["server"]["kind"]), int(props["server"]["id"])
    timeouts = {_TIMEOUT_FIELDS[key]: value for key, value in (props.get("timeouts") or {}).items()}
    if "reset_attempts" in timeouts:
        timeouts["reset_attempts"] = int(timeouts["reset_attempts"])
    plan = InstallPlan(
        node=str(props["node"]),
        address=str(props["address"]),
        image=image_from_inputs(props["image"], default_platform="metal" if kind == "robot" else "hcloud"),
        selector=DiskSelector.from_dict(props.get("disk") or {}),
        wipe=WipePolicy(props.get("wipe") or WipePolicy.REFUSE.value),
        reinstall=bool(props.get("reinstall")),
        ssh_port=int(props.get("sshPort") or 22),
        talos_port=int(props.get("talosPort") or 50000),
        timeouts=Timeouts(**timeouts),
    )
    return plan, kind, server_id


@contextmanager
def _machine(credentials: Credentials, kind: str, server_id: int, deadline: Deadline) -> Iterator[RescueMachine]:
    """The RescueMachine for the server kind; its API client lives for this call only."""
    if kind == "robot":
        user, password = credentials.robot_user or "", credentials.robot_password or ""
        with RobotClient(user, password, base_url=credentials.robot_url, deadline=deadline) as robot:
            yield RobotMachine(robot, server_id)
    else:
        token = credentials.cloud_token or ""
        yield CloudMachine(CloudClient(token, endpoint=credentials.cloud_endpoint, deadline=deadline), server_id)


def _outputs(plan: InstallPlan, report: InstallReport) -> dict[str, Any]:
    disk = report.disk
    install_disk = None
    if disk is not None:
        install_disk = {"byId": disk.by_id, "wwn": disk.wwn, "serial": disk.serial, "model": disk.model}
        install_disk |= {"size": disk.size, "path": disk.path}
    return {
        "outcome": report.outcome.value,
        "installDisk": install_disk,
        "imageUrl": plan.image.url,
        "imageSha256": report.sha256,
        "checksumVerified": report.verified,
        "talosVersion": plan.image.version,
        "talosState": report.talos_state,
        "resets": list(report.resets),
        "rescueHostKey": report.rescue_host_key,
        "timings": report.timings,
        "rescuePassword": report.rescue_password or "",  # secret: declared in SECRET_OUTPUTS; "" never reads unknown
    }


def _with_fix(error: HetznerError) -> str:
    """The error's text, plus the config command that fixes rejected credentials."""
    if isinstance(error, RobotAuthError):
        return (
            f"{error} (fix: set the Robot webservice user and password: pulumi config set robotUser '#ws+...' "
            "and pulumi config set --secret robotPassword ...)"
        )
    if isinstance(error, CloudError) and error.code == "unauthorized":
        return f"{error} (fix: pulumi config set --secret hcloudToken ... with a read & write token of the project)"
    return str(error)


def _inputs(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props.get(key) for key in INPUTS}


def _stderr(node: str) -> Callable[[str], None]:
    def progress(line: str) -> None:
        print(f"{node}: {line}", file=sys.stderr, flush=True)

    return progress


def _positive_int(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == int(value) and value > 0
