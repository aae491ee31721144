"""The Kubernetes component images of a machine config: reading their version and re-pinning them.

These are the fields `talosctl upgrade-k8s` patches, one component at a time (v1.13 pkg/cluster/kubernetes):
kube-apiserver, kube-controller-manager, kube-scheduler and kube-proxy in the control planes' `cluster` section,
and the kubelet in every node's `machine` section. Re-pinning keeps each image's repository (a mirror stays a
mirror) and replaces only its tag.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

from talos.documents import Document

COMPONENTS: dict[str, tuple[str, str]] = {
    "kube-apiserver": ("cluster", "apiServer"),
    "kube-controller-manager": ("cluster", "controllerManager"),
    "kube-scheduler": ("cluster", "scheduler"),
    "kube-proxy": ("cluster", "proxy"),
    "kubelet": ("machine", "kubelet"),
}
"""Component -> (section, key) of the v1alpha1 document whose `image` runs it, in upgrade-k8s' order."""
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
"""The components a control plane's kubelet runs as static pods that Talos renders."""
CONFIG_TYPES = {
    "kube-apiserver": "APIServerConfigs.kubernetes.talos.dev",
    "kube-controller-manager": "ControllerManagerConfigs.kubernetes.talos.dev",
    "kube-scheduler": "SchedulerConfigs.kubernetes.talos.dev",
}
"""Static pod -> its config resource type in namespace `controlplane` (id: the pod's name)."""
CONFIG_VERSION_ANNOTATION = "talos.dev/config-version"
"""The static pod's annotation carrying the version of the config resource it was rendered from."""


def component_images(documents: Sequence[Document]) -> dict[str, str]:
    """Component -> image, for the components this config runs (a worker runs only kube-proxy's and kubelet's)."""
    config = _v1alpha1(documents)
    found = {}
    for component, (section, key) in COMPONENTS.items():
        image = ((config.get(section) or {}).get(key) or {}).get("image") if config else None
        if isinstance(image, str) and image:
            found[component] = image
    return found


def image_version(image: str) -> str:
    """The tag of an image reference (`registry.k8s.io/kube-apiserver:v1.36.3` -> `v1.36.3`); "" without one."""
    name = image.split("@", 1)[0]
    _, colon, tag = name.rpartition(":")
    return tag if colon and "/" not in tag else ""


def retag(image: str, version: str) -> str:
    """The same repository pinned to Kubernetes `version` (`1.36.4` or `v1.36.4`)."""
    name = image.split("@", 1)[0]
    repository = name.rpartition(":")[0] if image_version(image) else name
    return f"{repository}:v{version.strip().removeprefix('v')}"


def with_component_images(documents: Sequence[Document], images: Mapping[str, str]) -> list[Document]:
    """Copies of the documents with the given components' images set (components the config lacks are skipped)."""
    copies = [copy.deepcopy(doc) for doc in documents]
    config = _v1alpha1(copies)
    if config is None:
        return copies
    for component, image in images.items():
        section, key = COMPONENTS[component]
        entry = (config.get(section) or {}).get(key)
        if isinstance(entry, dict) and entry.get("image"):
            entry["image"] = image
    return copies


def pinned_to(documents: Sequence[Document], version: str, components: Iterable[str] = COMPONENTS) -> list[Document]:
    """Copies of the documents with the named components' images re-tagged to Kubernetes `version`."""
    current = component_images(documents)
    return with_component_images(
        documents, {name: retag(current[name], version) for name in components if name in current}
    )


def _v1alpha1(documents: Sequence[Document]) -> Document | None:
    return next((doc for doc in documents if doc.get("version") == "v1alpha1" and "kind" not in doc), None)
