"""talos.kubernetes_images: which images a rendered config runs, their tags, and re-pinning them without touching
anything else (a mirror stays a mirror; the documents passed in are never changed)."""

from __future__ import annotations

import copy

import pytest

from talos.config import ClusterOptions, render_config
from talos.documents import Document
from talos.kubernetes_images import COMPONENTS, component_images, image_version, pinned_to, retag, with_component_images
from talos.secrets import SecretsBundle

OPTIONS = ClusterOptions(
    cluster_name="c", endpoint="https://c.example:6443", talos_version="v1.13.9", kubernetes_version="1.36.3"
)


@pytest.fixture(scope="module")
def control_plane(secrets_bundle: SecretsBundle) -> list[Document]:
    return render_config(OPTIONS, secrets_bundle, "controlplane")


@pytest.fixture(scope="module")
def worker(secrets_bundle: SecretsBundle) -> list[Document]:
    return render_config(OPTIONS, secrets_bundle, "worker")


def test_control_plane_runs_every_component_worker_only_kubelet_and_proxy(
    control_plane: list[Document], worker: list[Document]
) -> None:
    assert set(component_images(control_plane)) == set(COMPONENTS)
    assert set(component_images(worker)) <= {"kubelet", "kube-proxy"} and "kubelet" in component_images(worker)
    assert {image_version(image) for image in component_images(control_plane).values()} == {"v1.36.3"}


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("registry.k8s.io/kube-apiserver:v1.36.3", "v1.36.3"),
        ("ghcr.io/siderolabs/kubelet:v1.36.3-fat", "v1.36.3-fat"),
        ("mirror.local:5000/kubelet:v1.36.3@sha256:abc", "v1.36.3"),
        ("mirror.local:5000/kubelet", ""),
        ("kubelet", ""),
    ],
)
def test_image_version_is_the_tag_never_a_registry_port(image: str, tag: str) -> None:
    assert image_version(image) == tag


@pytest.mark.parametrize(
    ("image", "version", "expected"),
    [
        ("registry.k8s.io/kube-apiserver:v1.36.3", "1.36.4", "registry.k8s.io/kube-apiserver:v1.36.4"),
        ("mirror.local:5000/kubelet:v1.36.3@sha256:abc", "v1.36.4", "mirror.local:5000/kubelet:v1.36.4"),
        ("mirror.local:5000/kubelet", "1.36.4", "mirror.local:5000/kubelet:v1.36.4"),
    ],
)
def test_retag_keeps_the_repository_and_drops_a_digest(image: str, version: str, expected: str) -> None:
    assert retag(image, version) == expected


def test_pinned_to_retags_only_the_named_components_on_copies(control_plane: list[Document]) -> None:
    original = copy.deepcopy(control_plane)

    pinned = pinned_to(control_plane, "1.36.4", ["kube-apiserver", "kubelet"])

    versions = {name: image_version(image) for name, image in component_images(pinned).items()}
    assert versions == {**dict.fromkeys(COMPONENTS, "v1.36.3"), "kube-apiserver": "v1.36.4", "kubelet": "v1.36.4"}
    assert control_plane == original
    expected = copy.deepcopy(original)
    expected[0]["cluster"]["apiServer"]["image"] = pinned[0]["cluster"]["apiServer"]["image"]
    expected[0]["machine"]["kubelet"]["image"] = pinned[0]["machine"]["kubelet"]["image"]
    assert pinned == expected  # nothing else moved


def test_with_component_images_skips_components_the_config_lacks(worker: list[Document]) -> None:
    images = with_component_images(worker, {"kube-apiserver": "mirror.local/kube-apiserver:v1.36.4"})

    assert images == worker and "kube-apiserver" not in component_images(images)


def test_with_component_images_keeps_a_mirror(control_plane: list[Document]) -> None:
    mirrored = with_component_images(control_plane, {"kubelet": "mirror.local:5000/kubelet:v1.36.3"})

    assert pinned_to(mirrored, "1.36.4")[0]["machine"]["kubelet"]["image"] == "mirror.local:5000/kubelet:v1.36.4"
