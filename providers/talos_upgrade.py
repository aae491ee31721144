"""TalosUpgrade: one node kept on the stack's Talos version and installer image, upgraded in place when they change.

The program chains the nodes' TalosUpgrades (control planes first, each `depends_on` the previous one), so a version
change rolls through the cluster one node at a time, each behind the health gates of talos.upgrade.

`check` validates offline and fills `installerImage` with the installer for `talosVersion` when none is given (the
derivation the machine config uses), so `pulumi preview` shows which nodes' image changes. `diff` is offline: a
changed version or image, or a running version that `pulumi refresh` found off target, is an update that upgrades
(never a replace); other changes are updates that touch no node. `create` makes sure the
node runs the target (a fresh install already does: a fast no-op); `update` upgrades only when the target changed or
the node drifted, and a re-run after a failure skips every node already on the target. `read` reports the node's live
version (unreachable: the state is kept). `delete` touches nothing. With a `kubeconfig`, each upgrade cordons and
drains the Kubernetes node before the reboot and uncordons it after (talos.upgrade). `secretsYaml` and `kubeconfig`
are secret outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from common.waiting import Deadline
from providers.inputs import changed, has_unknown, timeout_problems, timeouts_with_defaults
from providers.registration import camel_props, secret_outputs, with_outputs
from providers.talos_machine_config import admin_context, load_bundle, stderr_progress
from talos.api.client import TalosClient
from talos.api.transport import split_endpoint
from talos.errors import TalosError
from talos.kube_drain import KubeCluster
from talos.upgrade import InstallerImage, running_image, upgrade_node
from talos.versions import contract_for, installer_image

DEFAULT_TIMEOUTS = {"upgrade": 1800.0, "health": 600.0, "drain": 300.0}
"""Seconds: a whole node's upgrade (install, reboot, both gates), each health gate and the drain within it."""
READ_TIMEOUT = 10.0
TARGET = ("talosVersion", "installerImage")
"""What the node must run: a change upgrades it."""
SETTINGS = ("node", "address", "endpoint", "secretsYaml", "kubeconfig", "controlPlanes", "cni", "timeouts")
"""How to reach the node and judge the cluster: a change updates the state without touching the node."""
OUTPUTS = ("version", "outcome")
SECRET_OUTPUTS = ["secretsYaml", "kubeconfig"]


@dataclass
class TalosUpgradeArgs:
    """Inputs of one node's TalosUpgrade; every field may be a Pulumi Output."""

    node: str
    """The node's name in progress lines and errors."""
    address: pulumi.Input[str]
    """The node's address (its Talos API answers there on port 50000 unless `endpoint` says otherwise)."""
    secrets_yaml: pulumi.Input[str]
    """The cluster's secrets bundle (talosctl `secrets.yaml`); a secret."""
    talos_version: pulumi.Input[str]
    """The Talos release the node must run, e.g. `v1.13.9`."""
    control_planes: pulumi.Input[list[str]]
    """The cluster's control-plane addresses (`host` or `host:port`), for the health gates."""
    installer_image: pulumi.Input[str] | None = None
    """The installer to upgrade with; default: the one the machine config installs for `talos_version`."""
    endpoint: pulumi.Input[str] | None = None
    """`host[:port]` of the node's Talos API when it is not `address:50000`."""
    cni: pulumi.Input[str] = "none"
    """The cluster's CNI; with `none`, Talos' nodeReady condition stays unmet and the health gates accept that."""
    timeouts: pulumi.Input[dict[str, float]] | None = None
    """`{upgrade?, health?, drain?}` in seconds; see DEFAULT_TIMEOUTS."""
    kubeconfig: pulumi.Input[str] | None = None
    """An admin kubeconfig (ClusterBootstrap's output): the node is drained before its reboot; without it, it is
    not. A secret."""


class TalosUpgrade(Resource, module="talos", name="TalosUpgrade"):
    """One node on the stack's Talos version and installer image; `version` is what it runs."""

    installerImage: pulumi.Output[str]
    version: pulumi.Output[str]
    outcome: pulumi.Output[str]

    def __init__(self, name: str, args: TalosUpgradeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = with_outputs(camel_props(args), OUTPUTS)
        super().__init__(TalosUpgradeProvider(), name, props, secret_outputs(SECRET_OUTPUTS, opts))


class TalosUpgradeProvider(ResourceProvider):
    """check/diff pure and offline; create/update upgrade through talos.upgrade. No per-call state."""

    serialize_as_secret_always = False  # nothing secret is captured: the bundle arrives as an input

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_inputs(news)
        return CheckResult(with_default_image(news), [CheckFailure(name, reason) for name, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        settings = [key for key in SETTINGS if changed(olds.get(key), news.get(key))]
        return DiffResult(changes=needs_upgrade(olds, news) or bool(settings), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        plan = Plan.from_props(props)
        return CreateResult(f"{plan.node}@{props['address']}", {**props, **converge(plan, props)})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not needs_upgrade(olds, news):
            return UpdateResult({**news, **{key: olds.get(key) for key in OUTPUTS}})
        return UpdateResult({**news, **converge(Plan.from_props(news), news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The node's live version, so `pulumi refresh` shows drift; an unreachable node keeps the state."""
        plan = Plan.from_props(props)
        try:
            credentials = admin_context(load_bundle(props["secretsYaml"]))
            with TalosClient(plan.endpoint, credentials, timeout=READ_TIMEOUT) as client:
                version = running_image(client).version
        except TalosError:
            return ReadResult(id_, props)
        return ReadResult(id_, {**props, "version": version})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing remote: forgetting an upgrade never touches the node."""


# --- check and diff: pure and offline ----------------------------------------------------------------------


def check_inputs(news: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason naming the node and the fix) for every bad input; unknown values are not judged."""
    node = str(news.get("node") or "node")
    known = {key: value for key, value in news.items() if not has_unknown(value)}
    problems: list[tuple[str, str]] = []
    if "node" in known and not _text(known["node"]):
        problems.append(("node", "is required: the node's name in progress lines and errors"))
    if "address" in known and not _text(known["address"]):
        problems.append(("address", "is required: the node's address (its Talos API answers there)"))
    for key in ("address", "endpoint"):
        if _text(known.get(key)) and (reason := _endpoint_problem(known[key])):
            problems.append((key, reason))
    if not has_unknown(news.get("secretsYaml")):
        try:
            load_bundle(news.get("secretsYaml"))
        except TalosError as err:
            problems.append(("secretsYaml", str(err)))
    problems += _target_problems(news)
    problems += [("controlPlanes", reason) for reason in _control_plane_problems(news.get("controlPlanes"))]
    if known.get("kubeconfig"):
        try:
            KubeCluster.from_kubeconfig(str(known["kubeconfig"]))
        except TalosError as err:
            problems.append(("kubeconfig", str(err)))
    if known.get("cni") is not None and not _text(known["cni"]):
        problems.append(("cni", f"{known['cni']!r} must name the cluster's CNI, or be 'none'"))
    problems += [("timeouts", reason) for reason in timeout_problems(known.get("timeouts"), tuple(DEFAULT_TIMEOUTS))]
    return [(key, f"{node}: {reason}") for key, reason in problems]


def with_default_image(news: dict[str, Any]) -> dict[str, Any]:
    """The inputs with `installerImage` filled from a known, valid `talosVersion` when none is given."""
    version = news.get("talosVersion")
    if news.get("installerImage") is not None or has_unknown(version):
        return news
    try:
        return {**news, "installerImage": installer_image(str(version))}
    except TalosError:
        return news  # check names the bad version


def needs_upgrade(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Whether the node must be brought to the target: it changed, or refresh found the node on another version."""
    if any(changed(olds.get(key), news.get(key)) for key in TARGET):
        return True
    running, wanted = olds.get("version"), news.get("talosVersion")
    return bool(running) and isinstance(wanted, str) and _normal(running) != _normal(wanted)


def _target_problems(news: dict[str, Any]) -> list[tuple[str, str]]:
    version, image = news.get("talosVersion"), news.get("installerImage")
    problems: list[tuple[str, str]] = []
    if not has_unknown(version):
        try:
            contract_for(str(version or ""))
        except TalosError as err:
            problems.append(("talosVersion", str(err)))
    if image is None or has_unknown(image):
        return problems
    try:
        installs = InstallerImage.parse(str(image)).version
    except TalosError as err:
        return [*problems, ("installerImage", str(err))]
    if not problems and not has_unknown(version) and installs != _normal(str(version)):
        fix = "tag the installer with talosVersion, or leave installerImage out to use the default installer"
        problems.append(("installerImage", f"installs {installs}, but talosVersion is {version} (fix: {fix})"))
    return problems


def _control_plane_problems(value: Any) -> list[str]:
    if has_unknown(value):
        return []
    if not isinstance(value, list) or not value:
        return ["must list the cluster's control-plane addresses (the health gates ask them about etcd)"]
    problems = []
    for number, entry in enumerate(value, 1):
        if not _text(entry):
            problems.append(f"entry {number} must be an address (`host` or `host:port`)")
        elif reason := _endpoint_problem(entry):
            problems.append(f"entry {number}: {reason}")
    return problems


def _endpoint_problem(value: str) -> str | None:
    try:
        split_endpoint(value)
    except ValueError as err:
        return str(err)
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _normal(version: str) -> str:
    return "v" + version.strip().removeprefix("v")


# --- create and update: talk to the node ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One node's upgrade as plain data taken from the (known, checked) inputs."""

    node: str
    endpoint: str
    image: str
    control_planes: tuple[str, ...]
    cni_installed: bool
    timeout: float
    health_timeout: float
    drain_timeout: float

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Plan:
        timeouts = timeouts_with_defaults(props, DEFAULT_TIMEOUTS)
        return cls(
            node=str(props["node"]),
            endpoint=str(props.get("endpoint") or props["address"]),
            image=str(props.get("installerImage") or installer_image(str(props["talosVersion"]))),
            control_planes=tuple(str(address) for address in props["controlPlanes"]),
            cni_installed=str(props.get("cni") or "none") != "none",
            timeout=float(timeouts["upgrade"]),
            health_timeout=float(timeouts["health"]),
            drain_timeout=float(timeouts["drain"]),
        )


def converge(plan: Plan, props: dict[str, Any]) -> dict[str, Any]:
    """Make the node run the plan's image; the outputs that says (`version`, `outcome`)."""
    try:
        result = upgrade_node(
            plan.node,
            plan.endpoint,
            admin_context(load_bundle(props["secretsYaml"])),
            plan.image,
            control_planes=plan.control_planes,
            deadline=Deadline.after(plan.timeout),
            health_timeout=plan.health_timeout,
            cni_installed=plan.cni_installed,
            kubeconfig=props.get("kubeconfig") or None,
            drain_timeout=plan.drain_timeout,
            progress=stderr_progress(plan.node),
        )
    except TalosError as err:
        raise RuntimeError(str(err)) from None
    return {"installerImage": plan.image, "version": result.to_version, "outcome": result.outcome}
