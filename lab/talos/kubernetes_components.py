"""What a lab node's kubelet runs: the control plane's static pods and the kubelet itself, following the images of
the machine config the node runs, with the restart delays a real node shows.

On a real Talos node, applying a config whose `cluster.apiServer.image` (or controllerManager, scheduler) changed
updates the component's config resource (`APIServerConfigs.kubernetes.talos.dev` in namespace `controlplane`,
whose metadata version grows by one); the static pod Talos renders from it carries that version in its
`talos.dev/config-version` annotation; the kubelet replaces the pod, and its mirror pod in `kube-system` shows the
new annotation, NotReady at first, then Ready. A changed `machine.kubelet.image` restarts the kubelet service,
which then registers the Node with its new `kubeletVersion`. kube-apiserver's restart takes the node's Kubernetes
API down for a moment. The lab does the same, each step after `ComponentTimings`; `history` records every
finished restart in order, so tests can see a roll happen.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab.talos.stages import EtcdState
from talos.kubernetes_images import (
    COMPONENTS,
    component_images,
    image_version,
)

if TYPE_CHECKING:
    from lab.talos.machineconfig import MachineConfig
    from lab.talos.node import TalosNode


@dataclass(frozen=True)
class ComponentTimings:
    """Simulated seconds of a component restart after its image changed."""

    static_pod: float = 0.05
    """Config applied until the new static pod is Ready (half with the old pod, half with the new one NotReady)."""
    kubelet: float = 0.05
    """kubelet service down until it runs again and the Node shows its new version."""


@dataclass
class Component:
    """One component as the node runs it."""

    image: str
    """The image its config resource names (follows the applied config at once)."""
    config_version: int = 1
    """The config resource's metadata version: grows with every change of `image`."""
    running_image: str = ""
    running_version: int = 1
    """The config version the running pod was rendered from (its `talos.dev/config-version`)."""
    ready: bool = True

    def __post_init__(self) -> None:
        self.running_image = self.running_image or self.image


@dataclass
class KubernetesComponents:
    """The components of one lab node; mutated on the node's loop only."""

    node: TalosNode
    timings: ComponentTimings = field(default_factory=ComponentTimings)
    running: dict[str, Component] = field(default_factory=dict)
    history: list[tuple[str, str, str]] = field(default_factory=list)
    """(node address, component, image) of every finished restart, in order."""
    stuck: set[str] = field(default_factory=set)
    """Fault: components whose next restart never becomes Ready (until `release`)."""

    def start(self, config: MachineConfig) -> None:
        """A boot: every component starts from the config, version 1 (a new config resource)."""
        self.running = {name: Component(image) for name, image in self._images(config).items()}

    def stop(self) -> None:
        self.running = {}

    def reconfigure(self, config: MachineConfig) -> None:
        """A config applied without a reboot: each component whose image changed restarts."""
        if not self.running:
            return
        for name, image in self._images(config).items():
            component = self.running.get(name)
            if component is None or component.image == image:
                continue
            component.image, component.config_version = image, component.config_version + 1
            self.node._spawn(self._restart(name, component))

    def release(self, name: str) -> None:
        """End the `stuck` fault of a component (from any thread): it finishes its restart and becomes Ready."""
        self.stuck.discard(name)
        self.node.loop.call_soon_threadsafe(self._release, name)

    def _release(self, name: str) -> None:
        component = self.running.get(name)
        if component is not None and not component.ready:
            self._finish(name, component)

    def version(self, name: str) -> str:
        """The version the component runs: its image's tag, without the kubelet image's `-fat`/`-slim` variant
        (the binary reports its own version); "" when it does not run here."""
        component = self.running.get(name)
        tag = image_version(component.running_image) if component else ""
        return tag.removesuffix("-fat").removesuffix("-slim") if name == "kubelet" else tag

    def kubelet_running(self) -> bool:
        component = self.running.get("kubelet")
        return component is not None and component.ready

    async def _restart(self, name: str, component: Component) -> None:
        if name == "kubelet":  # the service stops; the Node keeps its old version until the kubelet registers
            component.ready = False
            self.node._notify()
            await asyncio.sleep(self.timings.kubelet)
        else:  # the old pod runs until the kubelet picks up the new manifest, then the new pod starts NotReady
            await asyncio.sleep(self.timings.static_pod / 2)
            component.ready = False
            component.running_image, component.running_version = component.image, component.config_version
            if name == "kube-apiserver":
                self.node._stop_kubernetes()
            self.node._notify()
            await asyncio.sleep(self.timings.static_pod / 2)
        if name not in self.stuck:
            self._finish(name, component)

    def _finish(self, name: str, component: Component) -> None:
        component.running_image, component.running_version = component.image, component.config_version
        if name == "kube-apiserver" and self.node.kubernetes is None and self.node.etcd_state is EtcdState.HEALTHY:
            self.node._start_kubernetes()
        self.history.append((self.node.address, name, component.running_image))
        component.ready = True
        self.node._notify()

    def _images(self, config: MachineConfig) -> dict[str, str]:
        images = component_images(list(config.documents))
        return {name: images[name] for name in COMPONENTS if name in images and name != "kube-proxy"}
