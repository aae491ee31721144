"""descriptors: every message, enum and service our talos/api/protos define is Talos' own, field for field.

Talos' side is the descriptors machinery's generated Go code registers (the Talos API packages and COSI's
v1alpha1), dumped by the oracle. Ours may be a subset (fewer messages, fields, values and methods), never
different: same file and package, and per field the same number, type, cardinality, presence and oneof.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor, ServiceDescriptor

import talos.api.gen
from tests.conformance.oracle import Oracle

pytestmark = pytest.mark.oracle

PROTOS = Path(talos.api.__file__).parent / "protos"
KINDS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in vars(FieldDescriptor).items()
    if name.startswith("TYPE_")
}
"""Field type numbers to the names Go's protoreflect.Kind prints ("string", "message", "uint64", ...)."""


def _our_files() -> list[FileDescriptor]:
    """Our proto files as the generated modules register them in the default descriptor pool."""
    for module in pkgutil.walk_packages(talos.api.gen.__path__, f"{talos.api.gen.__name__}."):
        importlib.import_module(module.name)
    names = sorted(path.relative_to(PROTOS).as_posix() for path in PROTOS.rglob("*.proto"))
    return [descriptor_pool.Default().FindFileByName(name) for name in names]


def _messages(descriptors: list[Descriptor]) -> list[Descriptor]:
    """Messages with their nested ones (map entries included), depth first."""
    return [m for d in descriptors for m in (d, *_messages(list(d.nested_types)))]


FILES = _our_files()
MESSAGES = _messages([m for f in FILES for m in f.message_types_by_name.values()])
DEFINITIONS: dict[str, Descriptor | EnumDescriptor | ServiceDescriptor] = {
    d.full_name: d
    for d in (
        *MESSAGES,
        *(e for f in FILES for e in f.enum_types_by_name.values()),
        *(e for m in MESSAGES for e in m.enum_types),
        *(s for f in FILES for s in f.services_by_name.values()),
    )
}
"""Every message (nested ones included), enum and service we define, by full name."""
MEMBERS = {"messages": "fields", "enums": "values", "services": "methods"}


@pytest.fixture(scope="module")
def talos_descriptors(oracle: Oracle) -> dict[str, Any]:
    return oracle.descriptors([f.name for f in FILES])


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_proto_file_has_talos_package(talos_descriptors: dict[str, Any], file: FileDescriptor) -> None:
    assert talos_descriptors["files"][file.name] == file.package


@pytest.mark.parametrize("name", DEFINITIONS, ids=str)
def test_definition_is_talos_own(talos_descriptors: dict[str, Any], name: str) -> None:
    """A message's fields, an enum's values or a service's methods: each of ours is Talos', in the same file."""
    ours = DEFINITIONS[name]
    kind = (
        "enums"
        if isinstance(ours, EnumDescriptor)
        else "services"
        if isinstance(ours, ServiceDescriptor)
        else "messages"
    )
    theirs = talos_descriptors[kind].get(name)

    assert theirs is not None, f"Talos defines no {kind.removesuffix('s')} {name}"
    members = _members(ours)
    assert theirs["file"] == ours.file.name
    assert {member: theirs[MEMBERS[kind]].get(member) for member in members} == members


def _members(definition: Descriptor | EnumDescriptor | ServiceDescriptor) -> dict[str, Any]:
    """Our definition's members in the oracle's terms (see descriptors.go)."""
    if isinstance(definition, EnumDescriptor):
        return {value.name: value.number for value in definition.values}
    if isinstance(definition, ServiceDescriptor):
        return {
            method.name: {
                "path": f"/{definition.full_name}/{method.name}",
                "input": method.input_type.full_name,
                "output": method.output_type.full_name,
                "client_streaming": method.client_streaming,
                "server_streaming": method.server_streaming,
            }
            for method in definition.methods
        }
    return {field.name: _field_facts(field) for field in definition.fields}


def _field_facts(field: FieldDescriptor) -> dict[str, Any]:
    kind = field.message_type or field.enum_type
    return {
        "number": field.number,
        "kind": KINDS[field.type],
        "cardinality": "repeated" if field.is_repeated else "required" if field.is_required else "optional",
        "type_name": kind.full_name if kind else "",
        "oneof": field.containing_oneof.name if field.containing_oneof else "",
        "presence": field.has_presence,
    }
