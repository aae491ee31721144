"""API object shapes: versions and label selectors (nodes are checked through the official client)."""

from __future__ import annotations

import pytest

from lab.kubernetes.objects import NodeInfo, matches_label_selector, version_info

LABELS = {"kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}


def test_version_info_splits_the_version_and_states_compatibility() -> None:
    info = version_info("1.36.3")
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "36", "v1.36.3")
    assert (info["emulationMinor"], info["minCompatibilityMinor"]) == ("36", "35")


def test_version_info_refuses_what_is_not_a_version() -> None:
    with pytest.raises(ValueError, match="'latest' is not a version"):
        version_info("latest")


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("node-role.kubernetes.io/control-plane", True),
        ("!node-role.kubernetes.io/control-plane", False),
        ("kubernetes.io/os=linux", True),
        ("kubernetes.io/os==linux,node-role.kubernetes.io/control-plane", True),
        ("kubernetes.io/os!=linux", False),
        ("kubernetes.io/arch=amd64", False),
    ],
)
def test_equality_based_selectors_match_labels(selector: str, matches: bool) -> None:
    assert matches_label_selector(LABELS, selector) is matches


def test_set_based_selector_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'kubernetes.io/os in \(linux\)' is set-based"):
        matches_label_selector(LABELS, "kubernetes.io/os in (linux)")


def test_node_with_an_unknown_role_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="node 'cp-1': role 'master'"):
        NodeInfo("cp-1", "127.0.0.11", "master", "v1.36.3")  # type: ignore[arg-type]
