"""Machine config documents: parse and write multi-document YAML the way Talos does.

A machine config is a list of documents. The first is the legacy `v1alpha1` document (`version: v1alpha1`,
no apiVersion/kind); the others are typed documents identified by `apiVersion`, `kind` and, for named
kinds, `name`. Documents are plain dicts in key order; Talos writes them with 4-space indentation and lists
indented under their key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from talos.errors import ConfigError

Document = dict[str, Any]


class _TalosDumper(yaml.SafeDumper):
    """Write like go-yaml: block sequences indented under their key, quoted scalars in double quotes."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def choose_scalar_style(self) -> str:
        style: str = super().choose_scalar_style()
        return '"' if style == "'" else style


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TalosDumper.add_representer(str, _str_presenter)


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


def parse_documents(text: str | bytes, *, source: str = "config") -> list[Document]:
    """Parse multi-document YAML; empty documents are dropped, non-mappings are refused by position."""
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise ConfigError(source, "$", f"not valid YAML: {err}", "fix the YAML syntax") from None
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
