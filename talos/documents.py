"""Machine config documents: parse and write multi-document YAML the way Talos does.

A machine config is a list of documents. The first is the legacy `v1alpha1` document (`version: v1alpha1`,
no apiVersion/kind); the others are typed documents identified by `apiVersion`, `kind` and, for named
kinds, `name`. Documents are plain dicts in key order; Talos writes them with 4-space indentation and lists
indented under their key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from talos.errors import ConfigError

Document = dict[str, Any]


class _TalosDumper(yaml.SafeDumper):
    """Write like go-yaml: block sequences indented under their key, quoted scalars in double quotes."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        mapping_in_sequence_item = bool(self.states) and self.states[-1] == self.expect_block_sequence_item
        super().increase_indent(flow, False)
        if mapping_in_sequence_item and isinstance(self.event, yaml.MappingStartEvent):
            self.indent -= self.best_indent - 2  # `- key: value`, continuation lines aligned with the key

    def choose_scalar_style(self) -> str:
        style: str = super().choose_scalar_style()
        return '"' if style == "'" else style


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TalosDumper.add_representer(str, _str_presenter)


class GoYamlLoader(yaml.SafeLoader):
    """Plain scalars resolved as go-yaml v4 does, duplicate keys refused (as go-yaml does).

    PyYAML follows YAML 1.1, where `off`, `yes` or `52:54:00:12:34:56` are booleans or numbers; Talos'
    go-yaml keeps them strings. Booleans are only true/false, `0755` is octal, `1_000` is 1000, and
    timestamps stay strings. One difference remains: Talos decodes a number written for a string field
    (a label value `1_000`) as its text, where we keep the number it reads as.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'mapping key "{key}" already defined at line {seen[key] + 1}', key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _go_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | float:
    text = node.value.replace("_", "")
    sign, digits = (-1, text[1:]) if text[0] == "-" else (1, text.lstrip("+"))
    base = {"0x": 16, "0o": 8, "0b": 2}.get(digits[:2].lower())
    if base is not None:
        return sign * int(digits[2:], base)
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8) if set(digits) <= set("01234567") else float(text)
    return sign * int(digits)


def _go_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = node.value.replace("_", "").lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


GoYamlLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("int", r"[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)", "-+0123456789"),
    (
        "float",
        r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+.0123456789",
    ),
    ("merge", r"<<", "<"),
):
    GoYamlLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_pattern})$"), list(_first))
GoYamlLoader.add_constructor("tag:yaml.org,2002:bool", lambda loader, node: node.value in ("true", "True", "TRUE"))
GoYamlLoader.add_constructor("tag:yaml.org,2002:int", _go_int)
GoYamlLoader.add_constructor("tag:yaml.org,2002:float", _go_float)


def document_id(doc: Document) -> str:
    """A readable identity: `v1alpha1`, `HostnameConfig`, `LinkConfig/eth0`."""
    if "kind" not in doc and "apiVersion" not in doc:
        return "v1alpha1"
    kind = str(doc.get("kind", "?"))
    name = doc.get("name")
    return f"{kind}/{name}" if name is not None else kind


def document_key(doc: Document) -> tuple[str, str, str]:
    """The key Talos matches documents by: (apiVersion, kind, name); v1alpha1 has its own."""
    if "kind" not in doc and "apiVersion" not in doc:
        return ("", "v1alpha1", "")
    return (str(doc.get("apiVersion", "")), str(doc.get("kind", "")), str(doc.get("name") or ""))


def yaml_problem(err: yaml.YAMLError, *, position: bool = True) -> str:
    """`not valid YAML at line L, column C: <what>`, without the snippet of the text PyYAML would quote (the text
    may hold a secret); `position=False` leaves out where, for callers that report it themselves."""
    mark = getattr(err, "problem_mark", None)
    problem = " ".join(str(getattr(err, "problem", None) or "malformed").split())
    if position and mark is not None:
        return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"not valid YAML: {problem}"


def parse_documents(text: str | bytes, *, source: str = "config") -> list[Document]:
    """Parse multi-document YAML; empty documents are dropped, non-mappings are refused by position."""
    try:
        raw = list(yaml.load_all(text, Loader=GoYamlLoader))
    except yaml.YAMLError as err:
        raise ConfigError(source, "$", yaml_problem(err), "fix the YAML syntax") from None
    docs: list[Document] = []
    for index, doc in enumerate(raw):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ConfigError(
                source,
                f"document {index + 1}",
                f"is a {type(doc).__name__}, not a mapping",
                "each YAML document must be a mapping of fields",
            )
        docs.append(doc)
    return docs


def dump_documents(docs: Iterable[Document]) -> str:
    """Write documents as Talos does: 4-space indent, lists under their key, `---` between documents."""
    return "---\n".join(
        yaml.dump(doc, Dumper=_TalosDumper, indent=4, sort_keys=False, allow_unicode=True, width=1 << 16)
        for doc in docs
    )
