"""ClusterBootstrap: bootstrap etcd once on the first control plane, wait for a healthy cluster, fetch kubeconfig.

A one-shot that survives state loss. `create` first surveys every control plane (talos.api.waiting.bootstrap_once):
etcd running anywhere -> adopted (Bootstrap is never called: lost state, a re-created resource, or a reinstalled
first control plane next to running ones); no etcd but this cluster's bootstrap marker in some control plane's
META -> refused with the fix (etcd was lost: recover it from a snapshot, or set `allowNewEtcd` to knowingly start
a new one); neither -> Bootstrap on the first control plane. Then it waits for health: every node up with its
services, etcd with a leader and one member per control plane (talos.api.waiting.wait_healthy), the Kubernetes
API answering with the kubeconfig and every node registered. Without a CNI (`cni: none`, this program's end
state: the CNI comes later) nodes stay NotReady, and that is accepted, never waited out. Last, the bootstrap
marker (talos.bootstrap_marker) goes to every control plane's META. Outputs: `outcome`, `etcd` (where etcd
runs), `talosconfig` (an admin context aimed at the control planes' real addresses) and `kubeconfig`, both
secret.

Nothing re-runs unless `trigger` (or the secrets bundle, i.e. the cluster) changes; other input changes only
re-aim the talosconfig, and a changed `nodes` also writes the marker to control planes that lack it (one short
attempt each; an unreachable node is reported, never fatal). `delete` touches nothing remote.
"""

from __future__ import annotations

import http.client
import ssl
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

from common.waiting import Deadline, NotYet, Progress, format_elapsed, wait_until
from providers.inputs import changed, has_unknown
from providers.registration import camel_props, secret_outputs, with_outputs
from providers.talos_machine_config import load_bundle, stderr_progress
from talos.api.client import TalosClient
from talos.api.errors import (
    CallTimeoutError,
    FailedPreconditionError,
    NodeInMaintenanceError,
    NodeUnreachableError,
    NotFoundError,
    TalosApiError,
    UnimplementedError,
)
from talos.api.waiting import NOT_READY_WITHOUT_CNI, POLL, bootstrap_once, wait_healthy
from talos.bootstrap_marker import OCCUPIED, PRESENT, WRITTEN, BootstrapMarker, spread_marker
from talos.errors import TalosError
from talos.kubeapi import KubeApi
from talos.kubernetes_upgrade import ClusterNode
from talos.talosconfig import TalosConfig, TalosContext, issue_admin_certificate

DEFAULT_TIMEOUT = 1800.0
REPLACING = ("trigger", "secretsYaml")
"""Only a new trigger, or another cluster's secrets, bootstraps again."""
SETTINGS = ("clusterName", "nodes", "cni", "talosPort", "timeout", "allowNewEtcd")
"""Inputs whose change only re-aims the talosconfig (or changes how a later bootstrap would go)."""
OUTPUTS = ("outcome", "etcd", "talosconfig", "kubeconfig", "kubernetesVersion", "health")
SECRET_OUTPUTS = ["talosconfig", "kubeconfig", "secretsYaml"]
_TRANSITIONAL = (
    NodeUnreachableError,
    CallTimeoutError,
    NodeInMaintenanceError,
    FailedPreconditionError,
    NotFoundError,
    UnimplementedError,  # etcd APIs before the machine type is known
)
_ATTEMPT_TIMEOUT = 5.0


@dataclass
class ClusterBootstrapArgs:
    """Inputs of the cluster's ClusterBootstrap; every field may be a Pulumi Output."""

    cluster_name: pulumi.Input[str]
    secrets_yaml: pulumi.Input[str]
    """The cluster's secrets bundle (secret): the admin credentials are issued from its OS CA."""
    nodes: pulumi.Input[list[dict[str, str]]]
    """`[{name, address, role}]`; the first control plane is bootstrapped. `name` is the Kubernetes node name."""
    cni: pulumi.Input[str] = "none"
    """`none` (nodes stay NotReady, as expected) or the CNI the config installs (nodes must become Ready)."""
    trigger: pulumi.Input[str] | None = None
    """Change it to bootstrap again (only ever needed after the whole cluster was reset)."""
    talos_port: pulumi.Input[int] = 50000
    timeout: pulumi.Input[float] = DEFAULT_TIMEOUT
    allow_new_etcd: pulumi.Input[bool] = False
    """The escape hatch: bootstrap a new, empty etcd even though the control planes' bootstrap marker says this
    cluster was bootstrapped and its etcd data is gone. Prefer recovering etcd from a snapshot (`talosctl
    bootstrap --recover-from`); set it only for the one run that starts over, then remove it."""


class ClusterBootstrap(Resource, module="talos", name="ClusterBootstrap"):
    """The cluster bootstrapped once; `talosconfig` and `kubeconfig` are secret outputs."""

    outcome: pulumi.Output[str]
    etcd: pulumi.Output[str]
    talosconfig: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kubernetesVersion: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterBootstrapArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = with_outputs(camel_props(args), OUTPUTS)
        super().__init__(ClusterBootstrapProvider(), name, props, secret_outputs(SECRET_OUTPUTS, opts))


class ClusterBootstrapProvider(ResourceProvider):
    """Bootstraps in create; update only re-aims the talosconfig; delete does nothing. No per-call state."""

    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [CheckFailure(name, reason) for name, reason in check_inputs(news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACING if changed(olds.get(key), news.get(key))]
        others = [key for key in SETTINGS if changed(olds.get(key), news.get(key))]
        return DiffResult(changes=bool(replaces or others), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        plan = Plan.from_props(props)
        bundle = load_bundle(props["secretsYaml"])
        pair = issue_admin_certificate(bundle)
        credentials = TalosContext(ca=bundle.os.crt, crt=pair.crt, key=pair.key)
        progress = stderr_progress(plan.cluster)
        try:
            result = bootstrap_cluster(plan, bundle.cluster_id, credentials, progress)
        except TalosError as err:
            raise RuntimeError(f"{plan.cluster}: {err}") from None
        except TimeoutError as err:
            raise RuntimeError(
                f"{plan.cluster}: {err} (fix: look at the nodes named; then run pulumi up again)"
            ) from None
        talosconfig = aimed_talosconfig(plan, credentials)
        return CreateResult(plan.cluster, {**props, **result, "talosconfig": talosconfig})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Keep the bootstrap facts and the admin certificate, re-aim the talosconfig; a changed node list also
        writes the bootstrap marker to control planes that lack it (never failing on a node)."""
        plan = Plan.from_props(news)
        credentials = TalosConfig.from_yaml(olds["talosconfig"]).current()
        if changed(olds.get("nodes"), news.get("nodes")):
            marker = BootstrapMarker.new(load_bundle(news["secretsYaml"]).cluster_id, None)
            spread_marker(plan.endpoints(), credentials, marker, progress=stderr_progress(plan.cluster))
        kept = {key: olds.get(key) for key in OUTPUTS}
        return UpdateResult({**news, **kept, "talosconfig": aimed_talosconfig(plan, credentials)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing remote: forgetting the bootstrap never touches etcd."""


def check_inputs(news: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason with the fix) for every bad input; values unknown during preview are not judged."""
    problems: list[tuple[str, str]] = []
    name = news.get("clusterName")
    if not has_unknown(name) and not (isinstance(name, str) and name.strip()):
        problems.append(("clusterName", "is required: the cluster's name (it names the talosconfig context)"))
    nodes = news.get("nodes")
    if not has_unknown(nodes):
        problems += [("nodes", reason) for reason in _node_problems(nodes)]
    text = news.get("secretsYaml")
    if not has_unknown(text):
        try:
            load_bundle(text)
        except TalosError as err:
            problems.append(("secretsYaml", str(err)))
    timeout = news.get("timeout")
    if not has_unknown(timeout) and timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        problems.append(("timeout", f"{timeout!r} must be a positive number of seconds"))
    allow = news.get("allowNewEtcd")
    if not has_unknown(allow) and allow is not None and not isinstance(allow, bool):
        problems.append(("allowNewEtcd", f"{allow!r} must be true or false (fix: leave it unset unless etcd is lost)"))
    return problems


def _node_problems(nodes: Any) -> list[str]:
    if not isinstance(nodes, list) or not nodes:
        return ["must list the cluster's nodes as [{name, address, role}] (fix: pass at least one control plane)"]
    problems = []
    for number, node in enumerate(nodes, 1):
        if not isinstance(node, dict) or has_unknown(node):
            problems += [] if isinstance(node, dict) else [f"entry {number} must be {{name, address, role}}"]
            continue
        if node.get("role") not in ("controlplane", "worker"):
            problems.append(f"{node.get('name') or number}: role {node.get('role')!r} is not controlplane or worker")
        if not node.get("name") or not node.get("address"):
            problems.append(f"entry {number} needs a name and an address")
    if not any(isinstance(n, dict) and n.get("role") == "controlplane" for n in nodes):
        problems.append("no control plane to bootstrap (fix: add a node with role controlplane)")
    return problems


@dataclass(frozen=True)
class Plan:
    """The cluster as the provider needs it: plain data from the inputs."""

    cluster: str
    members: tuple[ClusterNode, ...]
    cni: str
    port: int
    timeout: float
    allow_new_etcd: bool = False

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Plan:
        members = tuple(ClusterNode.from_input(n) for n in props["nodes"])
        return cls(
            cluster=str(props["clusterName"]),
            members=members,
            cni=str(props.get("cni") or "none"),
            port=int(props.get("talosPort") or 50000),
            timeout=float(props.get("timeout") or DEFAULT_TIMEOUT),
            allow_new_etcd=props.get("allowNewEtcd") is True,
        )

    @property
    def control_planes(self) -> list[ClusterNode]:
        return [m for m in self.members if m.control_plane]

    def endpoint(self, member: ClusterNode) -> str:
        return f"{member.address}:{self.port}"

    def endpoints(self, *, control_planes: bool = True) -> dict[str, str]:
        """Name -> endpoint of the control planes in order (or, False, of the workers)."""
        return {m.name: self.endpoint(m) for m in self.members if m.control_plane == control_planes}


def bootstrap_cluster(plan: Plan, cluster_id: str, credentials: TalosContext, progress: Progress) -> dict[str, Any]:
    """Bootstrap (or adopt), wait for health, fetch kubeconfig, mark the control planes; the outputs."""
    deadline = Deadline.after(plan.timeout)
    control_planes = plan.endpoints()
    first = plan.control_planes[0]
    progress(f"surveying etcd on {', '.join(control_planes)} before bootstrapping {first.name} ({first.address})")
    result = bootstrap_once(
        control_planes,
        credentials,
        deadline,
        cluster_id=cluster_id,
        allow_new_etcd=plan.allow_new_etcd,
        progress=progress,
        backoff=POLL,
    )
    progress(f"{result.outcome}: etcd {result.etcd}")
    tolerate = (NOT_READY_WITHOUT_CNI,) if plan.cni == "none" else ()
    workers = list(plan.endpoints(control_planes=False).values())
    wait_healthy(list(control_planes.values()), workers, credentials, deadline, tolerate=tolerate, progress=progress)
    kubeconfig = _fetch_kubeconfig(plan, first, credentials, deadline, progress)
    version, health = wait_kubernetes_nodes(plan, kubeconfig, deadline, progress)
    progress(f"cluster {plan.cluster} healthy after {format_elapsed(deadline.elapsed())}: {health}")
    marker = BootstrapMarker.new(cluster_id, first.name if result.outcome == "bootstrapped" else None)
    _mark_control_planes(control_planes, credentials, marker, progress)
    return {
        "outcome": result.outcome,
        "etcd": result.etcd,
        "kubeconfig": kubeconfig,
        "kubernetesVersion": version,
        "health": health,
    }


def _mark_control_planes(
    control_planes: dict[str, str], credentials: TalosContext, marker: BootstrapMarker, progress: Progress
) -> None:
    """Every control plane of a healthy cluster must carry the marker: a node that refused it fails the create."""
    outcomes = spread_marker(control_planes, credentials, marker, progress=progress)
    missing = {name: outcome for name, outcome in outcomes.items() if outcome not in (WRITTEN, PRESENT, OCCUPIED)}
    if missing:
        named = "; ".join(f"{name}: {outcome}" for name, outcome in missing.items())
        raise RuntimeError(
            f"bootstrap marker missing on {named} (fix: run pulumi up again: the cluster is adopted and marked)"
        )


def _fetch_kubeconfig(
    plan: Plan, first: ClusterNode, credentials: TalosContext, deadline: Deadline, progress: Progress
) -> str:
    with TalosClient(plan.endpoint(first), credentials) as client:
        return _wait("kubeconfig", lambda: _attempt(first, client, deadline, client.kubeconfig), deadline, progress)


def wait_kubernetes_nodes(plan: Plan, kubeconfig: str, deadline: Deadline, progress: Progress) -> tuple[str, str]:
    """Until the Kubernetes API answers with the kubeconfig and lists every node; (version, health summary)."""
    api = KubeApi.from_kubeconfig(kubeconfig)
    wanted = {m.name for m in plan.members}

    def check() -> tuple[str, str]:
        try:
            version = api.get("/version")["gitVersion"]
            nodes = api.get("/api/v1/nodes")["items"]
        except (OSError, http.client.HTTPException, ssl.SSLError) as err:
            raise NotYet(f"Kubernetes API at {api.server}: {err}") from None
        listed = {item["metadata"]["name"]: _ready(item) for item in nodes}
        missing = sorted(wanted - set(listed))
        if missing:
            raise NotYet(f"node(s) not registered yet: {', '.join(missing)}")
        not_ready = sorted(name for name in wanted if not listed[name])
        if not_ready and plan.cni != "none":
            raise NotYet(f"node(s) not Ready: {', '.join(not_ready)}")
        if not_ready:
            return version, f"{len(wanted)} node(s) registered, NotReady until a CNI is installed (cni: none)"
        return version, f"{len(wanted)} node(s) registered and Ready"

    return _wait("Kubernetes nodes registered", check, deadline, progress)


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def aimed_talosconfig(plan: Plan, credentials: TalosContext) -> str:
    """A talosconfig whose context dials the control planes' addresses and targets every node."""
    context = TalosContext(
        endpoints=tuple(m.address for m in plan.control_planes),
        nodes=tuple(m.address for m in plan.members),
        ca=credentials.ca,
        crt=credentials.crt,
        key=credentials.key,
    )
    return TalosConfig(context=plan.cluster, contexts={plan.cluster: context}).to_yaml()


def _attempt(member: ClusterNode, client: TalosClient, deadline: Deadline, call: Any) -> Any:
    """One call with a bounded timeout; errors of a node still coming up become NotYet naming the node."""
    client.timeout = max(0.1, min(_ATTEMPT_TIMEOUT, deadline.remaining()))
    try:
        return call()
    except _TRANSITIONAL as err:
        raise NotYet(f"{member.name} ({member.address}): {err.message}") from None
    except TalosApiError as err:
        if err.status.name == "UNKNOWN" and err.call.startswith("Etcd"):  # etcd not reachable yet
            raise NotYet(f"{member.name} ({member.address}): {err.message}") from None
        raise RuntimeError(f"{member.name}: {err}") from None


def _wait(what: str, check: Any, deadline: Deadline, progress: Progress) -> Any:
    result = wait_until(check, deadline, what=what, backoff=POLL, progress=progress)
    progress(f"{what}: reached ({format_elapsed(deadline.elapsed())})")
    return result
