"""Wait for Talos nodes to reach a state, polling their API within a deadline.

Each wait polls with one client per node and a bounded attempt timeout, and reports progress lines
`<node>: <phase>: <why not yet> (<elapsed>)` each time the reason changes. Errors that are part of the
transition (node down while rebooting, still in maintenance, etcd not up yet) mean "not yet"; anything
else (wrong CA, missing role, invalid answer) ends the wait at once.

Polling: the pause grows by 2% per poll, from 10 ms up to 2 s. After waiting T seconds the pause is about
0.02 T + 10 ms, so the moment a node becomes ready is noticed within ~2% of the wait (plus the cost of one
poll): a client adds well under 5% to a reboot of a second or more (bench/bench_talos_api.py measures it),
while a long wait settles at one poll per 2 s (after ~100 s and ~270 polls).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal, TypeVar

from common.waiting import Backoff, Deadline, NotYet, Progress, format_elapsed, no_progress, wait_until
from talos.api.client import TalosClient
from talos.api.domain import NodeVersion
from talos.api.errors import (
    AlreadyBootstrappedError,
    CallTimeoutError,
    FailedPreconditionError,
    NodeConfiguredError,
    NodeInMaintenanceError,
    NodeUnreachableError,
    TalosApiError,
)
from talos.bootstrap_marker import BootstrapMarker, cluster_fingerprint, read_marker
from talos.errors import TalosError
from talos.talosconfig import TalosContext

T = TypeVar("T")

POLL = Backoff(first=0.01, factor=1.02, cap=2.0)
NOT_READY_WITHOUT_CNI = "nodeReady"
"""The MachineStatus condition Talos keeps unmet while the kubelet's node is NotReady, as it stays without a CNI."""
ATTEMPT_TIMEOUT = 5.0
"""Longest single poll: a node that accepts connections but does not answer must not stall the wait."""

_DOWN = (NodeUnreachableError, CallTimeoutError)


def wait_for_maintenance(
    node: str,
    deadline: Deadline,
    *,
    fingerprints: Sequence[str] = (),
    progress: Progress = no_progress,
    backoff: Backoff = POLL,
) -> NodeVersion:
    """Until the node answers in maintenance mode (no machine config); returns its version."""
    with TalosClient(node, fingerprints=fingerprints) as client:

        def check() -> NodeVersion:
            version = _attempt(client, deadline, client.version, (*_DOWN, NodeConfiguredError))
            if version.configured:
                raise NotYet("the node reports a machine config")
            return version

        return _wait(node, "maintenance mode", check, deadline, progress, backoff)


def wait_for_configured(
    node: str,
    credentials: TalosContext,
    deadline: Deadline,
    *,
    progress: Progress = no_progress,
    backoff: Backoff = POLL,
) -> NodeVersion:
    """Until the node answers with mTLS from the cluster's OS CA (it runs with a machine config)."""
    with TalosClient(node, credentials) as client:
        return _wait(
            node,
            "configured mode (mTLS)",
            lambda: _attempt(client, deadline, client.version, (*_DOWN, NodeInMaintenanceError)),
            deadline,
            progress,
            backoff,
        )


def wait_ready_to_bootstrap(
    node: str,
    credentials: TalosContext,
    deadline: Deadline,
    *,
    progress: Progress = no_progress,
    backoff: Backoff = POLL,
) -> None:
    """Until a control plane can take Bootstrap: CRI runs and etcd waits to be bootstrapped (or already runs)."""
    with TalosClient(node, credentials) as client:

        def check() -> bool:
            services = {s.id: s for s in _attempt(client, deadline, client.service_list, _TRANSITIONAL)}
            cri, etcd = services.get("cri"), services.get("etcd")
            if cri is None or cri.state != "Running":
                raise NotYet(f"cri is {cri.state if cri else 'not started'}")
            if etcd is None:
                raise NotYet("no etcd service: not a control plane, or not started yet")
            if etcd.state not in ("Preparing", "Running"):
                raise NotYet(f"etcd is {etcd.state}")
            return True

        _wait(node, "ready to bootstrap", check, deadline, progress, backoff)


def bootstrap_when_ready(
    node: str,
    credentials: TalosContext,
    deadline: Deadline,
    *,
    progress: Progress = no_progress,
    backoff: Backoff = POLL,
) -> Literal["bootstrapped", "adopted"]:
    """Bootstrap etcd once; a node whose etcd already has data is adopted, not failed."""
    wait_ready_to_bootstrap(node, credentials, deadline, progress=progress, backoff=backoff)
    with TalosClient(node, credentials) as client:

        def check() -> Literal["bootstrapped", "adopted"]:
            try:
                _attempt(client, deadline, client.bootstrap, _TRANSITIONAL)
            except AlreadyBootstrappedError:
                return "adopted"
            return "bootstrapped"

        return _wait(node, "bootstrap", check, deadline, progress, backoff)


class BootstrapRefusedError(TalosError):
    """The cluster was bootstrapped before (its marker is on a control plane) but no control plane has etcd."""


@dataclass(frozen=True)
class BootstrapResult:
    outcome: Literal["bootstrapped", "adopted"]
    etcd: str
    """Where etcd runs, for people: `bootstrapped on cp-1`, `found running on cp-2, cp-3 (3 member(s))`."""


def bootstrap_once(
    control_planes: Mapping[str, str],
    credentials: TalosContext,
    deadline: Deadline,
    *,
    cluster_id: str,
    allow_new_etcd: bool = False,
    progress: Progress = no_progress,
    backoff: Backoff = POLL,
) -> BootstrapResult:
    """Bootstrap etcd on the first control plane (name -> endpoint, in order) unless the cluster shows it was
    bootstrapped before; never on the strength of IaC state.

    Every control plane is surveyed first: its etcd (ServiceList: `Preparing` means no data yet, waiting to be
    bootstrapped or to join; `Running`: EtcdMemberList) and its bootstrap marker (talos.bootstrap_marker).
    - etcd runs with members on any control plane -> "adopted" at once: Bootstrap is never called (a first
      control plane reinstalled with an empty disk joins the running etcd instead);
    - otherwise the survey waits until every control plane answers with etcd preparing; then a marker of this
      cluster on any of them means its etcd is gone: BootstrapRefusedError, unless `allow_new_etcd`;
    - no etcd and no marker: Bootstrap on the first control plane ("adopted" if it answers that etcd already
      has data there).
    """
    if not control_planes:
        raise ValueError("bootstrap_once needs at least one control plane (fix: pass the control plane nodes)")
    cluster = cluster_fingerprint(cluster_id)
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(TalosClient(endpoint, credentials)) for name, endpoint in control_planes.items()
        }

        def survey() -> list[_Sighting]:
            sightings = [_sight(name, client, deadline, cluster) for name, client in clients.items()]
            unknown = [s for s in sightings if s.members is None]
            if unknown and not any(s.members for s in sightings):
                raise NotYet("; ".join(f"{s.name}: {s.why}" for s in unknown))
            return sightings

        sightings = _wait(", ".join(clients), "etcd survey", survey, deadline, progress, backoff)
    marker = next((s.marker for s in sightings if s.marker), None)
    running = [s for s in sightings if s.members]
    if running:
        members = max(s.members or 0 for s in running)
        where = f"found running on {', '.join(s.name for s in running)} ({members} member(s))"
        return BootstrapResult("adopted", where)
    if marker is not None and not allow_new_etcd:
        raise BootstrapRefusedError(_refusal(sightings, marker))
    first, endpoint = next(iter(control_planes.items()))
    if marker is not None:
        progress(f"{first}: starting a new, empty etcd although the cluster was {marker.describe()} (allowed)")
    outcome = bootstrap_when_ready(endpoint, credentials, deadline, progress=progress, backoff=backoff)
    where = f"bootstrapped on {first}" if outcome == "bootstrapped" else f"found data on {first}"
    return BootstrapResult(outcome, where)


@dataclass(frozen=True)
class _Sighting:
    name: str
    marker: BootstrapMarker | None
    members: int | None
    """etcd members a running etcd reports; 0: etcd preparing (no data); None: not known yet (see `why`)."""
    why: str = ""


def _sight(name: str, client: TalosClient, deadline: Deadline, cluster: str) -> _Sighting:
    """One control plane's marker and etcd, or why they are not known yet."""
    try:
        marker = _attempt(client, deadline, lambda: read_marker(client, cluster), _TRANSITIONAL)
        services = _attempt(client, deadline, client.service_list, _TRANSITIONAL)
        etcd = next((s for s in services if s.id == "etcd"), None)
        if etcd is None or etcd.state not in ("Preparing", "Running"):
            return _Sighting(name, marker, None, f"etcd is {etcd.state if etcd else 'not started'}")
        if etcd.state == "Preparing":
            return _Sighting(name, marker, 0)
        return _Sighting(name, marker, len(_attempt(client, deadline, client.etcd_members, _TRANSITIONAL, etcd=True)))
    except NotYet as why:
        return _Sighting(name, None, None, str(why))


def _refusal(sightings: list[_Sighting], marker: BootstrapMarker) -> str:
    marked = ", ".join(s.name for s in sightings if s.marker)
    everyone = ", ".join(s.name for s in sightings)
    return (
        f"refusing to bootstrap a second etcd: {marked} carry this cluster's bootstrap marker ({marker.describe()}) "
        f"but no control plane ({everyone}) has etcd data: it was lost. "
        "Fix: restore etcd from a snapshot (talosctl -n <control plane> bootstrap --recover-from=<etcd snapshot>), "
        "then run again (the cluster is adopted); or, to knowingly start a new, empty etcd, allow it explicitly "
        "(ClusterBootstrap input allowNewEtcd: true) for one run. If a control plane's etcd is still starting, "
        "just run again."
    )


def wait_healthy(
    control_planes: Sequence[str],
    workers: Sequence[str],
    credentials: TalosContext,
    deadline: Deadline,
    *,
    tolerate: Collection[str] = (),
    progress: Progress = no_progress,
    backoff: Backoff = POLL,
) -> None:
    """Until every node is ready and etcd has a leader and one member per control plane.

    `tolerate` names MachineStatus conditions that do not count against a running node, e.g.
    NOT_READY_WITHOUT_CNI while the cluster has no CNI.
    """
    if not control_planes:
        raise ValueError("wait_healthy needs at least one control plane (fix: pass the control plane nodes)")
    with ExitStack() as stack:
        clients = {
            node: stack.enter_context(TalosClient(node, credentials))
            for node in dict.fromkeys([*control_planes, *workers])
        }

        def check() -> bool:
            for node, client in clients.items():
                expected = len(control_planes) if node in control_planes else 0
                try:
                    _node_healthy(node, client, deadline, expected, tolerate)
                except NotYet as why:  # name the node whose call failed
                    raise NotYet(str(why) if str(why).startswith(node) else f"{node}: {why}") from None
            return True

        _wait(", ".join(clients), "cluster healthy", check, deadline, progress, backoff)


_TRANSITIONAL = (*_DOWN, NodeInMaintenanceError, FailedPreconditionError)


def _node_healthy(
    node: str, client: TalosClient, deadline: Deadline, control_planes: int, tolerate: Collection[str]
) -> None:
    status = _attempt(client, deadline, client.machine_status, _TRANSITIONAL)
    unmet = [c for c in status.unmet_conditions if c.split(":", 1)[0] not in tolerate]
    if not status.ready and (unmet or status.stage != "running"):
        raise NotYet(f"{node} is not ready ({'; '.join(unmet) or status.stage})")
    if not control_planes:
        return
    etcd = _attempt(client, deadline, client.etcd_status, _TRANSITIONAL, etcd=True)
    if etcd.leader == 0 or etcd.errors:
        raise NotYet(f"{node}: etcd has no leader yet" if not etcd.errors else f"{node}: etcd: {etcd.errors[0]}")
    members = _attempt(client, deadline, client.etcd_members, _TRANSITIONAL, etcd=True)
    if len(members) != control_planes:
        raise NotYet(f"{node}: etcd has {len(members)} member(s), expected {control_planes}")


def _attempt(
    client: TalosClient,
    deadline: Deadline,
    call: Callable[[], T],
    transitional: tuple[type[TalosApiError], ...],
    *,
    etcd: bool = False,
) -> T:
    """One call with a bounded timeout; errors of the transition become NotYet."""
    client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, deadline.remaining()))
    try:
        return call()
    except transitional as err:
        raise NotYet(err.message) from None
    except TalosApiError as err:
        if etcd and err.status.name == "UNKNOWN":  # etcd not reachable yet on the node
            raise NotYet(err.message) from None
        raise


def _wait(
    node: str, phase: str, check: Callable[[], T | None], deadline: Deadline, progress: Progress, backoff: Backoff
) -> T:
    """wait_until with progress lines naming the node, the phase, the reason and the time waited."""
    start = time.monotonic()
    last: list[str] = []

    def watched() -> T | None:
        try:
            return check()
        except NotYet as reason:
            if [str(reason)] != last:
                last[:] = [str(reason)]
                progress(f"{node}: {phase}: {reason} ({format_elapsed(time.monotonic() - start)})")
            raise

    result = wait_until(watched, deadline, what=f"{node} {phase}", backoff=backoff)
    progress(f"{node}: {phase}: reached ({format_elapsed(time.monotonic() - start)})")
    return result
