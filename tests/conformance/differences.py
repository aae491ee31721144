"""Intended differences between our Python and Talos' machinery, each explained in docs/conformance.md.

A conformance case that meets one asserts the difference is exactly as described (ours and machinery's
verdicts as listed), so a difference can never widen silently; the end-of-run summary counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

RecordProperty = Callable[[str, object], None]


@dataclass(frozen=True)
class Difference:
    """One intended difference: an id docs/conformance.md lists, and a one-line statement of it."""

    id: str
    summary: str


DIFFERENCES: dict[str, Difference] = {
    d.id: d
    for d in (
        Difference("secrets-token-format", "ours refuses a bootstrap/trustd token Kubernetes would not accept"),
        Difference("secrets-key-format", "ours refuses a cluster or encryption secret that is not base64 of its size"),
        Difference("secrets-cluster-id-format", "ours refuses a cluster id that is not URL-safe base64 of 32 bytes"),
        Difference("secrets-key-pair", "ours refuses a CA key that is not the key of its certificate"),
        Difference("secrets-strict-yaml", "ours refuses unknown fields, and numbers or booleans where text belongs"),
        Difference("validation-yaml11-booleans", "ours refuses a quoted 'yes'/'on' where a boolean belongs"),
        Difference("validation-endpoint-https", "ours refuses a control plane endpoint that is not https://"),
        Difference(
            "encoding-as-written", "ours keeps patched YAML as written; Talos re-encodes it, adding Go zero values"
        ),
        Difference("validation-v1alpha1-required", "ours refuses a config without the v1alpha1 document"),
        Difference("validation-subnets", "ours refuses pod/service subnets that Talos only refuses at runtime"),
        Difference(
            "validation-installer-pinned", "ours refuses an installer image not pinned to a Talos release or a digest"
        ),
    )
}


def note_difference(record_property: RecordProperty, difference_id: str) -> Difference:
    """Mark the running case as meeting a listed difference (for the summary); unknown ids are a bug."""
    difference = DIFFERENCES[difference_id]
    record_property("difference", difference.id)
    return difference


def pending_fix(case: Any, reason: str) -> Any:
    """A case where our Python is wrong and the fix is not in yet: it must fail (strict xfail) until fixed.

    The summary counts it as a disagreement; once the fix lands the case passes, which fails the run until
    this wrapper is removed.
    """
    return pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=f"disagreement, fix pending: {reason}"))
