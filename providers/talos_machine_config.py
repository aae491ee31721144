"""TalosMachineConfig: one node's machine config, rendered, validated, applied and kept in step with the stack.

The config is rendered from the cluster options, the secrets bundle and the patches (cluster -> role -> node, in
that order) exactly as `talosctl gen config --with-secrets ... --config-patch ...` would. `check` renders and
validates offline, so a bad patch fails `pulumi preview` naming the node, the patch and the path; it also puts a
redacted rendering (`configRedacted`, secrets masked) into the inputs, so `pulumi preview --diff` shows a readable
per-field diff. `diff` is semantic: formatting and key order never cause a change.

`create` applies the config over the Talos API: insecurely only to a node that shows, on the same connection, that
it is in maintenance mode; a node that already runs a config is only spoken to with mTLS from the cluster's OS CA
(and adopted when it already runs this config). It then waits until the node answers with mTLS and reports the
config. `update` applies with the chosen mode: `auto` (Talos decides whether to reboot), `no-reboot`, `reboot`,
`staged`, or `staged-if-needing-reboot` (a dry run asks Talos; a change that needs a reboot is staged for the
next one). `delete` touches nothing. The rendered config is a secret output (`machineConfig`).

Outputs describe what the node runs: `machineConfig` (secret), its redacted rendering `configRedacted`, its hash
`configSha256`, and `live` (`applied`, `drifted` or `maintenance`); `declaredSha256` is the hash of the config the
inputs declare. `pulumi preview --diff` shows an update of this resource as its old inputs against the new ones
(seen with the real engine), so the `configRedacted` input carries the readable, redacted per-field diff.

Kubernetes images belong to the Kubernetes upgrade once a node exists: `talos:KubernetesUpgrade` rolls the
Kubernetes version node by node as `talosctl upgrade-k8s` does, by re-pinning the component images (kubelet,
kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy) in each node's live config. So on a configured
node this resource keeps the tags of the images the node runs (the repository stays the declared one), and
neither `diff` nor drift detection count a tag change. A change of `kubernetesVersion` alone is an update of the
state only: the node is not touched. A node in maintenance mode (new, or reset) gets the declared version, as
`create` always did.

Drift (`pulumi refresh`): `read` fetches the running config over mTLS (COSI MachineConfigs). A config that
differs from the applied one, beyond image tags, is marked `drifted` and becomes the outputs and the stored
`configRedacted` input (ReadResult inputs), so preview shows node against stack field by field and the next `up`
re-applies the declared config; refresh prints the redacted diff as well. Only image tags moved: the state
follows silently. A node found in maintenance mode (reset out of band) is marked `maintenance` with an empty
config; the next `up` applies the declared config over the maintenance channel, as for a new node: that channel
only sends a config to a node that shows, on the same connection, that it has none, so nothing running is
overwritten. An unreachable or rebooting node is retried briefly (at most `READ_PATIENCE` seconds, or the
`timeout` input if shorter); then its state is kept as it was: a refresh never drops the resource nor fails for it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
from pulumi.output import Unknown

from common.waiting import Deadline, NotYet, Progress, format_elapsed, wait_until
from providers.inputs import changed, has_unknown, is_unknown
from providers.registration import camel_props, secret_outputs, with_outputs
from talos.api.client import TalosClient
from talos.api.domain import ApplyMode
from talos.api.errors import (
    CallTimeoutError,
    FailedPreconditionError,
    NodeConfiguredError,
    NodeInMaintenanceError,
    NodeUnreachableError,
    NotFoundError,
    TalosApiError,
)
from talos.api.waiting import POLL
from talos.compare import canonical_documents, configs_equal, redact, render_diff
from talos.config import ROLES, ClusterOptions, generate_config, render_config
from talos.documents import Document, document_id, dump_documents
from talos.errors import TalosError
from talos.kubernetes_images import component_images, image_version, retag, with_component_images
from talos.patches import Patch, apply_patches, load_patch
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosContext, issue_admin_certificate
from talos.validation import ConfigValidationError, validate_config
from talos.versions import contract_for

APPLY_MODES = ("auto", "no-reboot", "reboot", "staged", "staged-if-needing-reboot")
DEFAULT_TIMEOUT = 1800.0
"""Seconds a create or update may take: a maintenance apply installs Talos and reboots a dedicated server."""
REPLACING = ("address", "machine", "role")
"""Another server, a reinstalled one, or another role: the config is applied afresh."""
SETTINGS = ("node", "talosPort", "applyMode", "timeout")
"""Inputs that change how the provider works, not the config."""
OUTPUTS = ("machineConfig", "configSha256", "declaredSha256", "live", "applied", "talosVersion")
SECRET_OUTPUTS = ["machineConfig", "secretsYaml"]

_CLUSTER_OPTIONS = {
    "clusterName": "cluster_name",
    "endpoint": "endpoint",
    "talosVersion": "talos_version",
    "kubernetesVersion": "kubernetes_version",
    "dnsDomain": "dns_domain",
    "installerImage": "installer_image",
    "discovery": "discovery",
    "allowSchedulingOnControlPlanes": "allow_scheduling_on_control_planes",
    "cni": "cni",
    "cniUrls": "cni_urls",
    "kubeProxy": "kube_proxy",
    "additionalSans": "additional_sans",
}
_TUPLES = ("cni_urls", "additional_sans")
_TRANSITIONAL = (NodeUnreachableError, CallTimeoutError, NodeInMaintenanceError, FailedPreconditionError, NotFoundError)
"""Errors a node gives while it installs, reboots or starts its services: wait, do not fail."""
_UNREADABLE = (NodeUnreachableError, CallTimeoutError, FailedPreconditionError, NotFoundError)
"""Errors of a node that is down or (re)booting: `read` retries them briefly, then keeps the state."""
READ_PATIENCE = 20.0
"""Seconds `read` retries a node that does not answer (a reboot), before it keeps the state as it was."""
_DIFF_LINES = 60
_ATTEMPT_TIMEOUT = 5.0
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()
_RENDERED: dict[str, tuple[SecretsBundle, list[Document]]] = {}


@dataclass
class TalosMachineConfigArgs:
    """Inputs of one node's TalosMachineConfig; every field may be a Pulumi Output."""

    node: str
    """The node's name in progress lines and errors."""
    role: pulumi.Input[str]
    """`controlplane` or `worker`."""
    address: pulumi.Input[str]
    """Where its Talos API answers (the server's main IPv4 address)."""
    cluster: pulumi.Input[dict[str, Any]]
    """Cluster options: `{clusterName, endpoint, talosVersion, kubernetesVersion?, dnsDomain?, installerImage?,
    discovery?, allowSchedulingOnControlPlanes?, cni?, cniUrls?, kubeProxy?, additionalSans?}`."""
    secrets_yaml: pulumi.Input[str]
    """The cluster's secrets bundle (talosctl `secrets.yaml`); a secret."""
    patches: pulumi.Input[list[dict[str, str]]] = field(default_factory=list)
    """`[{source, patch}]` in the order they apply (cluster, role, node); `patch` is YAML or JSON text."""
    install_disk: pulumi.Input[str] | None = None
    """machine.install.disk, e.g. the `/dev/disk/by-id/...` name the image was written to."""
    install_disk_selector: pulumi.Input[dict[str, str]] | None = None
    """machine.install.diskSelector, when no disk path is known."""
    machine: pulumi.Input[Any] = None
    """Identity of the installed machine (e.g. the RescueInstall's id and reinstall trigger): a change re-applies."""
    apply_mode: pulumi.Input[str] = "auto"
    talos_port: pulumi.Input[int] = 50000
    timeout: pulumi.Input[float] = DEFAULT_TIMEOUT


class TalosMachineConfig(Resource, module="talos", name="TalosMachineConfig"):
    """One node's machine config, applied over the Talos API; `machineConfig` is a secret output."""

    configRedacted: pulumi.Output[dict[str, Any]]
    machineConfig: pulumi.Output[str]
    configSha256: pulumi.Output[str]
    applied: pulumi.Output[dict[str, Any]]
    talosVersion: pulumi.Output[str]

    def __init__(self, name: str, args: TalosMachineConfigArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = with_outputs({**camel_props(args), "configRedacted": None}, OUTPUTS)
        super().__init__(TalosMachineConfigProvider(), name, props, secret_outputs(SECRET_OUTPUTS, opts))


class TalosMachineConfigProvider(ResourceProvider):
    """Renders in check/diff (pure, offline), applies in create/update. Thread-safe: no per-call state."""

    serialize_as_secret_always = False  # nothing secret is captured: the bundle arrives as an input

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures, redacted = check_inputs(news)
        checked = {**news, "configRedacted": redacted}
        return CheckResult(checked, [CheckFailure(name, reason) for name, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACING if changed(olds.get(key), news.get(key))]
        if replaces:
            return DiffResult(changes=True, replaces=replaces)
        settings = [key for key in SETTINGS if changed(olds.get(key), news.get(key))]
        return DiffResult(changes=bool(settings) or config_changed(olds, news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        target = Target.from_props(props)
        declared = render(props)
        applied, documents = converge(target, declared, load_bundle(props["secretsYaml"]))
        return CreateResult(f"{target.node}@{target.address}", outputs(props, documents, applied, declared=declared))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        declared = render(news)
        documents = keep_running_images(declared, applied_documents(olds))
        if config_sha256(documents) == olds.get("configSha256"):
            previous = {key: olds.get(key) for key in ("applied", "talosVersion")}
            return UpdateResult(outputs(news, documents, previous, declared=declared))
        target = Target.from_props(news)
        applied, documents = converge(target, declared, load_bundle(news["secretsYaml"]))
        return UpdateResult(outputs(news, documents, applied, declared=declared))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The node's running config as the outputs (drift); the state as it was when the node cannot tell."""
        outs = read_live(props)
        if outs.get("configRedacted") == props.get("configRedacted"):
            return ReadResult(id_, outs)
        return ReadResult(id_, outs, inputs=drifted_inputs(outs))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing remote: removing the resource never resets or reconfigures the node."""


# --- check and diff: pure and offline ----------------------------------------------------------------------


def check_inputs(news: dict[str, Any]) -> tuple[list[tuple[str, str]], Any]:
    """Every bad input as (property, reason naming the node and the fix), and the redacted rendering.

    The rendering is Unknown while any input it depends on is not known yet (preview of a new stack); patches
    are then still loaded and checked on a placeholder bundle, so a bad patch fails the first preview too.
    """
    node = str(news.get("node") or "node")
    problems: list[tuple[str, str]] = []
    role = news.get("role")
    if not is_unknown(role) and role not in ROLES:
        problems.append(("role", f"{node}: role {role!r} is not one of {', '.join(ROLES)}"))
    address = news.get("address")
    if not is_unknown(address) and not (isinstance(address, str) and address.strip()):
        problems.append(("address", f"{node}: the node's address is required (its Talos API answers there)"))
    mode = news.get("applyMode") or "auto"
    if not is_unknown(mode) and mode not in APPLY_MODES:
        problems.append(("applyMode", f"{node}: apply mode {mode!r} is not one of {', '.join(APPLY_MODES)}"))
    timeout = news.get("timeout")
    if not is_unknown(timeout) and timeout is not None and not (_number(timeout) and timeout > 0):
        problems.append(("timeout", f"{node}: timeout {timeout!r} must be a positive number of seconds"))
    if problems or any(has_unknown(news.get(key)) for key in ("cluster", "patches", "role")):
        return problems, Unknown()
    known = not any(has_unknown(news.get(key)) for key in ("secretsYaml", "installDisk", "installDiskSelector"))
    try:
        options = cluster_options(news if known else {**news, "installDisk": None, "installDiskSelector": None})
    except TalosError as err:
        return [("cluster", f"{node}: {err}")], Unknown()
    try:
        patches = load_node_patches(news.get("patches"))
    except TalosError as err:
        return [("patches", f"{node}: {err}")], Unknown()
    try:
        bundle = load_bundle(news.get("secretsYaml")) if known else placeholder_bundle(options.talos_version)
    except TalosError as err:
        return [("secretsYaml", f"{node}: {err}")], Unknown()
    try:
        documents = generate_cached(options, bundle, str(role), patches)
    except ConfigValidationError as err:
        return [("patches", f"{node}: {blame(options, bundle, str(role), patches, err)}")], Unknown()
    except TalosError as err:
        return [("patches", f"{node}: {err}")], Unknown()
    return [], redacted_rendering(documents) if known else Unknown()


def config_changed(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Whether the declared config changed, or the node's differs from it beyond image tags (True while unknown).

    A declared change of image tags alone counts, so the state follows it (`update` then touches nothing).
    """
    if any(
        has_unknown(news.get(key))
        for key in ("cluster", "patches", "secretsYaml", "installDisk", "installDiskSelector", "role")
    ):
        return True
    try:
        declared = render(news)
    except TalosError:
        return True
    if config_sha256(declared) != (olds.get("declaredSha256") or olds.get("configSha256")):
        return True
    return config_sha256(keep_running_images(declared, applied_documents(olds))) != olds.get("configSha256")


def keep_running_images(declared: list[Document], running: Sequence[Document] | None) -> list[Document]:
    """The declared config with the tags of the Kubernetes component images `running` has (see the module doc).

    Without a running config (a new node, one in maintenance mode) the declared config is returned as it is.
    """
    if not running:
        return declared
    wanted = component_images(declared)
    kept = {
        name: retag(wanted[name], image_version(image)) if image_version(image) else image
        for name, image in component_images(running).items()
        if name in wanted
    }
    return with_component_images(declared, kept) if kept != wanted else declared


def applied_documents(state: dict[str, Any]) -> list[Document] | None:
    """The config the state's outputs say the node runs (None when it runs none, e.g. found in maintenance mode)."""
    text = state.get("machineConfig")
    return canonical_documents(text) if isinstance(text, str) and text.strip() else None


def render(props: dict[str, Any]) -> list[Document]:
    """The node's validated config from its (known) inputs."""
    return generate_cached(
        cluster_options(props),
        load_bundle(props["secretsYaml"]),
        props["role"],
        load_node_patches(props.get("patches")),
    )


def cluster_options(props: dict[str, Any]) -> ClusterOptions:
    """ClusterOptions from the `cluster` input and the node's install target (ConfigError names the option)."""
    cluster = props.get("cluster")
    if not isinstance(cluster, dict):
        raise TalosError("cluster: must be {clusterName, endpoint, talosVersion, ...}")
    unknown = sorted(set(cluster) - set(_CLUSTER_OPTIONS))
    if unknown:
        raise TalosError(f"cluster: unknown option(s) {', '.join(unknown)} (fix: use {', '.join(_CLUSTER_OPTIONS)})")
    values = {_CLUSTER_OPTIONS[key]: value for key, value in cluster.items() if value is not None}
    for name in _TUPLES:
        if name in values:
            values[name] = tuple(values[name])
    if props.get("installDisk"):
        values["install_disk"] = props["installDisk"]
    elif props.get("installDiskSelector"):
        values["install_disk_selector"] = dict(props["installDiskSelector"])
    try:
        return ClusterOptions(**values)
    except TypeError as err:
        raise TalosError(f"cluster: {err}") from None


def load_node_patches(values: Any) -> tuple[Patch, ...]:
    """Patches as `[{source, patch}]`, each patch YAML or JSON text (objects would lose their ints on the wire)."""
    if values is None:
        return ()
    if not isinstance(values, list):
        raise TalosError("patches: must be a list of {source, patch}")
    patches = []
    for number, entry in enumerate(values, 1):
        if not (isinstance(entry, dict) and isinstance(entry.get("patch"), str)):
            raise TalosError(f"patches: entry {number} must be {{source, patch}} with the patch as YAML or JSON text")
        patches.append(load_patch(entry["patch"], source=str(entry.get("source") or f"patch #{number}")))
    return tuple(patches)


def generate_cached(options: ClusterOptions, bundle: SecretsBundle, role: str, patches: tuple[Patch, ...]) -> Any:
    """generate_config, remembered per process: check and diff of one preview render the same node twice.

    Callers never change the documents returned (they dump, hash or redact copies).
    """
    key = repr((options, id(bundle), role, patches))
    with _CACHE_LOCK:
        cached = _RENDERED.get(key)
    if cached is not None and cached[0] is bundle:
        return cached[1]
    if role not in ROLES:
        raise TalosError(f"role {role!r} is not one of {', '.join(ROLES)}")
    documents = generate_config(options, bundle, role, patches)  # type: ignore[arg-type]
    with _CACHE_LOCK:
        if len(_RENDERED) >= _CACHE_SIZE:
            _RENDERED.pop(next(iter(_RENDERED)))
        _RENDERED[key] = (bundle, documents)
    return documents


def blame(
    options: ClusterOptions, bundle: SecretsBundle, role: str, patches: tuple[Patch, ...], error: Exception
) -> str:
    """Name the first patch after which the config stops validating, with the validator's findings."""
    documents = render_config(options, bundle, role)  # type: ignore[arg-type]
    for patch in patches:
        documents = apply_patches(documents, [patch])
        try:
            validate_config(documents, options.contract)
        except ConfigValidationError as err:
            return f"after patch {patch.source}: {err}"
    return str(error)


@functools.lru_cache(maxsize=16)
def load_bundle(text: Any) -> SecretsBundle:
    """The secrets bundle from its YAML (SecretsError names the field)."""
    if not isinstance(text, str) or not text.strip():
        raise TalosError("secretsYaml: the cluster's secrets bundle is missing (fix: pass ClusterSecrets.secretsYaml)")
    return SecretsBundle.from_yaml(text, source="secretsYaml")


@functools.lru_cache(maxsize=4)
def placeholder_bundle(talos_version: str) -> SecretsBundle:
    """A throwaway bundle to validate patches before the real one exists (never applied, never stored)."""
    return SecretsBundle.generate(contract_for(talos_version))


def redacted_rendering(documents: list[Document]) -> dict[str, Any]:
    """The config with secrets masked, by document (`v1alpha1`, `HostnameConfig`, `LinkConfig/eth0`)."""
    return {document_id(doc): doc for doc in redact(canonical_documents(documents))}


def config_sha256(documents: list[Document]) -> str:
    """SHA-256 of the config's meaning (canonical JSON): compares configs without keeping them in plain text."""
    canonical = json.dumps(canonical_documents(documents), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- create and update: talk to the node ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and how to apply: plain data taken from the inputs."""

    node: str
    address: str
    port: int
    mode: str
    timeout: float

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Target:
        return cls(
            node=str(props["node"]),
            address=str(props["address"]),
            port=int(props.get("talosPort") or 50000),
            mode=str(props.get("applyMode") or "auto"),
            timeout=float(props.get("timeout") or DEFAULT_TIMEOUT),
        )

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Applied:
    """What the apply did, for the outputs: never any secret."""

    how: Literal["maintenance", "adopted", "mtls"]
    mode: str
    details: str
    talos_version: str

    def to_outputs(self) -> dict[str, Any]:
        return {
            "applied": {"how": self.how, "mode": self.mode, "details": self.details},
            "talosVersion": self.talos_version,
        }


def converge(target: Target, declared: list[Document], bundle: SecretsBundle) -> tuple[Applied, list[Document]]:
    """Make the node run the declared config (on a configured node: with the Kubernetes image tags it runs) over
    the right channel, then wait until it reports it. Returns what was done and the config the node now runs."""
    progress = stderr_progress(target.node)
    deadline = Deadline.after(target.timeout)
    credentials = admin_context(bundle)
    try:
        state = _wait_reachable(target, deadline, progress)
        if state == "maintenance":
            documents = declared
            applied = _apply_in_maintenance(target, dump_documents(documents), progress)
        else:
            documents, applied = _apply_with_mtls(target, declared, credentials, progress)
        persistent = applied.mode == "staged"
        version = _wait_reports(
            target, dump_documents(documents), credentials, deadline, progress, persistent=persistent
        )
    except TalosApiError as err:
        raise RuntimeError(f"{target.node}: {err}") from None
    except TimeoutError as err:
        raise RuntimeError(f"{target.node}: {err} (fix: check the node's console; then run pulumi up again)") from None
    return Applied(applied.how, applied.mode, applied.details, version), documents


def _wait_reachable(target: Target, deadline: Deadline, progress: Progress) -> str:
    """`maintenance` or `configured`, once the node answers on its Talos API port."""
    with TalosClient(target.endpoint, timeout=_ATTEMPT_TIMEOUT) as client:

        def answer() -> str:
            try:
                version = client.version()
            except NodeConfiguredError:
                return "configured"
            except (NodeUnreachableError, CallTimeoutError) as err:
                raise NotYet(err.message) from None
            return "configured" if version.configured else "maintenance"

        return _wait(target, "Talos API", answer, deadline, progress)


def _apply_in_maintenance(target: Target, text: str, progress: Progress) -> Applied:
    """The insecure channel, only after the node proved on it that it has no config (the client checks)."""
    with TalosClient(target.endpoint) as client:
        result = client.apply_configuration(text, mode="auto")
    progress(f"config applied in maintenance mode ({result.details.splitlines()[0] if result.details else 'ok'})")
    return Applied("maintenance", result.mode, result.details, "")


def _apply_with_mtls(
    target: Target, declared: list[Document], credentials: TalosContext, progress: Progress
) -> tuple[list[Document], Applied]:
    """Apply to a configured node with the cluster's credentials, keeping the Kubernetes image tags it runs; a node
    already running the config is adopted."""
    with TalosClient(target.endpoint, credentials) as client:
        running = canonical_documents(client.machine_config())
        documents = keep_running_images(declared, running)
        if documents is not declared:
            kept = sorted({image_version(image) for image in component_images(documents).values()})
            progress(f"keeps the Kubernetes images it runs ({', '.join(kept)}): a KubernetesUpgrade moves them")
        if configs_equal(running, documents):
            progress("already runs this config: adopted")
            return documents, Applied("adopted", "none", "the node already runs this config", "")
        text = dump_documents(documents)
        mode = _resolve_mode(client, target.mode, text)
        result = client.apply_configuration(text, mode=mode)
    progress(f"config applied ({result.mode}): {result.details.splitlines()[0] if result.details else 'ok'}")
    return documents, Applied("mtls", result.mode, result.details, "")


def _resolve_mode(client: TalosClient, mode: str, text: str) -> ApplyMode:
    """The apply mode to send; `staged-if-needing-reboot` asks the node with a dry run first."""
    if mode != "staged-if-needing-reboot":
        return mode  # type: ignore[return-value]
    dry = client.apply_configuration(text, mode="auto", dry_run=True)
    return "staged" if dry.mode == "reboot" else "auto"


def _wait_reports(
    target: Target, text: str, credentials: TalosContext, deadline: Deadline, progress: Progress, *, persistent: bool
) -> str:
    """Until the node answers with mTLS and reports `text` as its running (or, staged, saved) config."""
    what = "saved config (staged)" if persistent else "running config"
    with TalosClient(target.endpoint, credentials, timeout=_ATTEMPT_TIMEOUT) as client:

        def reports() -> str:
            try:
                current = client.machine_config(persistent=persistent)
            except _TRANSITIONAL as err:
                raise NotYet(err.message) from None
            if not configs_equal(current, text):
                raise NotYet(f"the node reports another {what}")
            return client.version().tag

        return _wait(target, f"mTLS and the new {what}", reports, deadline, progress)


def _wait(target: Target, what: str, check: Callable[[], str], deadline: Deadline, progress: Progress) -> str:
    result = wait_until(check, deadline, what=f"{target.node} {what}", backoff=POLL, progress=progress)
    progress(f"{what}: reached ({format_elapsed(deadline.elapsed())})")
    return result


def outputs(
    props: dict[str, Any],
    documents: list[Document],
    applied: Applied | dict[str, Any],
    *,
    declared: list[Document] | None = None,
) -> dict[str, Any]:
    """The complete output bag: inputs, the config the node runs (secret), its redacted rendering and hash, the
    hash of the `declared` config (default: the same), and what the apply did."""
    facts = applied.to_outputs() if isinstance(applied, Applied) else applied
    return {
        **props,
        "configRedacted": redacted_rendering(documents),
        "machineConfig": dump_documents(documents),
        "configSha256": config_sha256(documents),
        "declaredSha256": config_sha256(documents if declared is None else declared),
        "live": "applied",
        **facts,
    }


# --- read: drift -----------------------------------------------------------------------------------------------


def read_live(props: dict[str, Any]) -> dict[str, Any]:
    """The outputs after a look at the node (see the module docstring): what it runs, or the state as it was."""
    target = Target.from_props(props)
    progress = stderr_progress(target.node)
    try:
        credentials = admin_context(load_bundle(props.get("secretsYaml")))
        running = _read_running(target, credentials, Deadline.after(min(READ_PATIENCE, target.timeout)))
    except NodeInMaintenanceError:
        progress("in maintenance mode: it runs no machine config (reset out of band?); pulumi up applies it again")
        return {**props, "live": "maintenance", "configRedacted": {}, "machineConfig": "", "configSha256": ""}
    except (TalosError, TimeoutError) as err:
        progress(f"could not read its running config, the state is kept as it was: {err}")
        return props
    applied = applied_documents(props)
    if applied is not None and configs_equal(running, applied):
        return {**props, "live": "applied"}
    if applied is not None and configs_equal(running, keep_running_images(applied, running)):
        progress("its Kubernetes images moved (a KubernetesUpgrade): the state follows")
        live = "applied"
    else:
        _report_drift(render_diff(applied or [], running), progress)
        live = "drifted"
    return {
        **props,
        "live": live,
        "configRedacted": redacted_rendering(running),
        "machineConfig": dump_documents(running),
        "configSha256": config_sha256(running),
    }


def drifted_inputs(outs: dict[str, Any]) -> dict[str, Any]:
    """The stored inputs after a drift, with `configRedacted` rendering what the node runs.

    `pulumi preview --diff` shows an update as old inputs against new inputs; this makes it show, per field, what
    the node runs against what the stack declares. The outputs hold every input; output-only keys are None in the
    inputs, as the program sends them.
    """
    inputs = {key: value for key, value in outs.items() if key != "__provider"}
    return {**inputs, **dict.fromkeys(OUTPUTS), "configRedacted": outs["configRedacted"]}


def _report_drift(diff: str, progress: Progress) -> None:
    lines = diff.splitlines()
    if len(lines) > _DIFF_LINES:
        lines = [*lines[:_DIFF_LINES], f"... {len(lines) - _DIFF_LINES} more lines"]
    progress("drift: it runs another config than the one applied; pulumi up restores it. Redacted diff:")
    for line in lines:
        progress(f"  {line}")


def _read_running(target: Target, credentials: TalosContext, deadline: Deadline) -> list[Document]:
    """The node's running config over mTLS, retrying a node that is down or rebooting until `deadline`."""
    with TalosClient(target.endpoint, credentials, timeout=_ATTEMPT_TIMEOUT) as client:

        def running() -> list[Document]:
            try:
                return canonical_documents(client.machine_config())
            except _UNREADABLE as err:
                raise NotYet(err.message) from None

        return wait_until(running, deadline, what=f"{target.node} running config", backoff=POLL)


# --- helpers shared with the other Talos providers -----------------------------------------------------------


def admin_context(bundle: SecretsBundle) -> TalosContext:
    """Short-lived os:admin credentials from the bundle's OS CA, for this call only (never stored)."""
    pair = issue_admin_certificate(bundle)
    return TalosContext(ca=bundle.os.crt, crt=pair.crt, key=pair.key)


def stderr_progress(node: str) -> Progress:
    """Progress lines `<node>: <what>` on stderr, which `pulumi up` shows."""

    def progress(line: str) -> None:
        print(f"{node}: {line.removeprefix(f'{node}: ')}", file=sys.stderr, flush=True)

    return progress


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
