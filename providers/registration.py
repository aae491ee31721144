"""What every resource of this project passes the engine when it registers: its outputs declared up front (so
they can be read before the first create) and the ones the engine must store encrypted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi


def with_outputs(props: Mapping[str, Any], outputs: Iterable[str]) -> dict[str, Any]:
    """The inputs plus every output name, unset until the provider fills it."""
    return {**props, **dict.fromkeys(outputs)}


def secret_outputs(names: Sequence[str], opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """The caller's options plus `additional_secret_outputs` (merged: the caller's own list is kept too)."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(additional_secret_outputs=list(names)), opts)
