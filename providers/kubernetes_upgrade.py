"""KubernetesUpgrade: the cluster kept on the stack's Kubernetes version, rolled like `talosctl upgrade-k8s` when
it changes. One per cluster.

`check` validates offline: the version format, the nodes, and the path from the version in the old state (within a
minor or one minor up, as upgrade-k8s allows; a lower minor or a skipped minor is refused, naming the fix). `diff`:
a changed version, or a live version that `pulumi refresh` found off target, is an update that rolls (never a
replace); other changes update the state and touch nothing (the program orders it after the Talos upgrades with
`depends_on`). `create` converges (a fresh cluster already runs the version: every component is skipped fast); `update`
rolls through talos.kubernetes_upgrade, and a re-run after a failure resumes. `read` reports the version
kube-apiserver answers on /version (unreachable: the state is kept). `delete` touches nothing. `secretsYaml` and
`kubeconfig` are secret outputs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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
from providers.cluster_bootstrap import check_inputs as bootstrap_problems
from providers.inputs import changed, has_unknown, timeout_problems, timeouts_with_defaults
from providers.registration import camel_props, secret_outputs, with_outputs
from providers.talos_machine_config import admin_context, load_bundle
from talos.errors import TalosError
from talos.kubeapi import KUBE_API_ERRORS, KubeApi
from talos.kubernetes_upgrade import (
    DEFAULT_STEP_TIMEOUT,
    ClusterNode,
    normal,
    parse_kubernetes_version,
    path_problem,
    upgrade_kubernetes,
)

DEFAULT_TIMEOUTS = {"upgrade": 3600.0, "step": DEFAULT_STEP_TIMEOUT, "health": 600.0}
"""Seconds: the whole roll, one component on one node, and each health gate."""
SETTINGS = ("clusterName", "nodes", "secretsYaml", "kubeconfig", "cni", "timeouts")
"""A change updates the state without touching the cluster."""
OUTPUTS = ("version", "outcome")
SECRET_OUTPUTS = ["secretsYaml", "kubeconfig"]


@dataclass
class KubernetesUpgradeArgs:
    """Inputs of the cluster's KubernetesUpgrade; every field may be a Pulumi Output."""

    cluster_name: pulumi.Input[str]
    nodes: pulumi.Input[list[dict[str, str]]]
    """`[{name, address, role}]` as ClusterBootstrap takes them; control planes roll first, in this order."""
    secrets_yaml: pulumi.Input[str] = field(repr=False)
    """The cluster's secrets bundle (secret): the admin credentials for the Talos API."""
    kubeconfig: pulumi.Input[str] = field(repr=False)
    """ClusterBootstrap's `kubeconfig` output (secret)."""
    kubernetes_version: pulumi.Input[str]
    """The Kubernetes release the cluster must run, e.g. `1.36.3`."""
    cni: pulumi.Input[str] = "none"
    """With `none`, Nodes stay NotReady and the waits accept that."""
    timeouts: pulumi.Input[dict[str, float]] | None = None
    """`{upgrade?, step?, health?}` in seconds; see DEFAULT_TIMEOUTS."""


class KubernetesUpgrade(Resource, module="talos", name="KubernetesUpgrade"):
    """The cluster on the stack's Kubernetes version; `version` is what kube-apiserver reports."""

    version: pulumi.Output[str]
    outcome: pulumi.Output[str]

    def __init__(self, name: str, args: KubernetesUpgradeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = with_outputs(camel_props(args), OUTPUTS)
        super().__init__(KubernetesUpgradeProvider(), name, props, secret_outputs(SECRET_OUTPUTS, opts))


class KubernetesUpgradeProvider(ResourceProvider):
    """check/diff pure and offline; create/update roll through talos.kubernetes_upgrade. No per-call state."""

    serialize_as_secret_always = False  # nothing secret is captured: the bundle and kubeconfig arrive as inputs

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [CheckFailure(name, reason) for name, reason in check_inputs(olds, news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        settings = [key for key in SETTINGS if changed(olds.get(key), news.get(key))]
        return DiffResult(changes=needs_roll(olds, news) or bool(settings), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(str(props["clusterName"]), {**props, **converge(props)})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not needs_roll(olds, news):
            return UpdateResult({**news, **{key: olds.get(key) for key in OUTPUTS}})
        return UpdateResult({**news, **converge(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The version kube-apiserver reports, so `pulumi refresh` shows drift; unreachable keeps the state."""
        try:
            version = KubeApi.from_kubeconfig(str(props["kubeconfig"])).get("/version")["gitVersion"]
        except (*KUBE_API_ERRORS, KeyError, TypeError, ValueError):
            return ReadResult(id_, props)
        return ReadResult(id_, {**props, "version": version})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing remote: forgetting the upgrade never touches the cluster."""


def check_inputs(olds: dict[str, Any], news: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason with the fix) for every bad input; unknown values are not judged."""
    shared = {key: news.get(key) for key in ("clusterName", "nodes", "secretsYaml")}
    problems = bootstrap_problems(shared)
    kubeconfig = news.get("kubeconfig")
    if not has_unknown(kubeconfig) and not (isinstance(kubeconfig, str) and kubeconfig.strip()):
        problems.append(("kubeconfig", "is required: pass ClusterBootstrap's kubeconfig output"))
    problems += [("kubernetesVersion", reason) for reason in _version_problems(olds, news)]
    cni = news.get("cni")
    if not has_unknown(cni) and cni is not None and not (isinstance(cni, str) and cni.strip()):
        problems.append(("cni", f"{cni!r} must name the cluster's CNI, or be 'none'"))
    problems += [("timeouts", reason) for reason in timeout_problems(news.get("timeouts"), tuple(DEFAULT_TIMEOUTS))]
    return problems


def needs_roll(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Whether the cluster must be rolled: the version changed, or refresh found kube-apiserver on another one."""
    wanted = news.get("kubernetesVersion")
    if changed(olds.get("kubernetesVersion"), wanted):
        return True
    running = olds.get("version")
    return bool(running) and isinstance(wanted, str) and normal(running) != normal(wanted)


def _version_problems(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    version = news.get("kubernetesVersion")
    if has_unknown(version):
        return []
    try:
        parse_kubernetes_version(str(version or ""))
    except TalosError as err:
        return [str(err)]
    before = olds.get("version") or olds.get("kubernetesVersion")
    if not isinstance(before, str) or has_unknown(before):
        return []
    try:
        problem = path_problem(before, str(version))
    except TalosError:
        return []  # an old state this check cannot read does not block the new one
    return [problem] if problem else []


def converge(props: dict[str, Any]) -> dict[str, Any]:
    """Roll the cluster to the version; the outputs that says (`version`, `outcome`)."""
    timeouts = timeouts_with_defaults(props, DEFAULT_TIMEOUTS)
    cluster = str(props["clusterName"])
    nodes = [ClusterNode.from_input(n) for n in props["nodes"]]
    try:
        result = upgrade_kubernetes(
            cluster,
            nodes,
            admin_context(load_bundle(props["secretsYaml"])),
            str(props["kubeconfig"]),
            str(props["kubernetesVersion"]),
            deadline=Deadline.after(float(timeouts["upgrade"])),
            cni_installed=str(props.get("cni") or "none") != "none",
            step_timeout=float(timeouts["step"]),
            health_timeout=float(timeouts["health"]),
            progress=_stderr,
        )
    except TalosError as err:
        raise RuntimeError(str(err)) from None
    return {"version": result.to_version, "outcome": result.outcome}


def _stderr(line: str) -> None:
    """Progress lines (already `<node>: <component>: <what> (<elapsed>)`) on stderr, which `pulumi up` shows."""
    print(line, file=sys.stderr, flush=True)
