"""What every resource of this project passes the engine when it registers: its outputs declared up front (so
they can be read before the first create) and the ones the engine must store encrypted."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi


def camel_props(args: Any) -> dict[str, Any]:
    """An args dataclass as the engine's properties: each field under its camelCase name (`secrets_yaml` ->
    `secretsYaml`), the names the providers read."""
    return {_camel(field.name): getattr(args, field.name) for field in dataclasses.fields(args)}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def with_outputs(props: Mapping[str, Any], outputs: Iterable[str]) -> dict[str, Any]:
    """The inputs plus every output name, unset until the provider fills it."""
    return {**props, **dict.fromkeys(outputs)}


def secret_outputs(names: Sequence[str], opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """The caller's options plus `additional_secret_outputs` (merged: the caller's own list is kept too)."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(additional_secret_outputs=list(names)), opts)
