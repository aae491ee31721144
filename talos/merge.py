"""Strategic merge of machine config documents, as Talos v1.13.9's configpatcher does it.

Talos decodes the config and each patch into typed Go structs and merges them by reflection
(pkg/machinery/config/merge). We keep documents as plain dicts, so the Go types that change the outcome are
recorded below as path rules (RULES, ALWAYS_REPLACED, CONFLICTS), each read in the v1.13.9 source
(v1alpha1_types.go and the other document types, merge.go, the custom `Merge` methods) and checked against
Talos' own configpatcher. The rules:

- Documents are matched by (apiVersion, kind, name); a patch document without a match is appended. The
  v1alpha1 document (no apiVersion/kind) always comes first in the result.
- Within one patch, every `$patch: delete` aimed at the v1alpha1 document runs first, then the v1alpha1
  merge, then the other documents in order, each preceded by its own deletes.
- A mapping merges key by key, recursively. A list is appended to the existing one (`certSANs`, `addresses`,
  `routes`, ... add to what is there). Exceptions: `cluster.network.podSubnets`, `serviceSubnets`,
  `cluster.apiServer.auditPolicy` and NetworkRuleConfig `ingress` / `portSelector.ports` are replaced, even by
  an empty list (`merge:"replace"`); `machine.network.interfaces` merges by `interface`, else by an equal
  `deviceSelector` (a selector that sets `physical` never equals another: Go compares the pointers); their
  `vlans` merge by `vlanId`; `cluster.apiServer.admissionControl` by `name`; ExtensionServiceConfig
  `configFiles` by `mountPath`; ImageVerificationConfig `rules` are swapped by `image`; `extraArgs` (Args) is
  overwritten key by key, a value being a string or a list. A value placed where the config has no parent
  mapping is copied as written (two `eth0` entries in it stay two).
- Zero values: the patch is decoded into typed structs first, so it cannot tell "set to the zero value" from
  "not set". An explicit `""` or `0` for a struct field changes nothing, neither overwriting nor adding it;
  boolean `false` always overwrites; `null` never changes anything. Exceptions: a field Go declares as a
  pointer to a number takes an explicit 0 (`machine.network.kubespan.mtu`, ZswapConfig `maxPoolPercent`);
  keys of Go maps (`nodeLabels`, `sysctls`, `env`, `extraArgs`, ...) are added even with an empty value (an
  existing non-empty value still stays).
- Free-form maps (Unstructured: `kubelet.extraConfig`, an admission plugin's `configuration`, ...) merge the
  same way, but a value of another type (1 vs "1") is an error, as is `null` over a value (Talos crashes).
- Special values: a certificate/key pair (`machine.ca`, `cluster.ca`, ...) in a patch replaces both fields,
  an omitted one becoming empty; `cluster.controlPlane.endpoint` merges URL part by part (a path the patch URL
  lacks is kept); a `machine.install.diskSelector.size` cannot be merged into an existing one (Talos fails;
  delete the old one in an earlier patch); VolumeConfig-family `provisioning.minSize` and CEL `match`
  expressions take the patch document's value, and disappear when the patch leaves them out.
- Deletes: a mapping holding `$patch: delete` names what goes; its other keys are ignored. A key is removed
  if present; an absent key of a struct is a no-op, of a Go map an error; a missing parent is an error (Talos:
  "lookup failed"). A list element is removed by the first key/value of its entry: the first element whose
  field reads as that text goes (`vlanId: 5` never matches, Talos compares text); an emptied list stays `[]`.

Known gaps, left to validation: field names and scalar types are not checked against the Talos schema, so an
unknown field or a scalar where Talos expects a mapping is merged instead of refused, and a delete of an
unknown field of an existing struct is a no-op instead of "lookup failed". A delete under a sub-struct Talos
stores by value (e.g. VolumeConfig `provisioning`) that the config leaves out is refused here, a no-op in Talos.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from talos.documents import Document, document_id, document_key
from talos.errors import PatchError

Loc = tuple[str, ...]
"""Where a value sits, for rule lookup: mapping keys, `[]` for any list element."""

ITEM = "[]"
ANY = "*"
LEGACY: tuple[str, str, str] = ("", "v1alpha1", "")
"""document_key of the v1alpha1 document."""

How = Literal[
    "replace", "interfaces", "keyed", "keyed-replace", "args", "map", "free", "pointer", "pem", "endpoint", "disk-size"
]


@dataclass(frozen=True)
class Rule:
    """How Talos merges the value at one path; `key` names the match field or the certificate fields."""

    how: How
    key: str = ""


def _at(rule: Rule, *dotted: str) -> dict[Loc, Rule]:
    return {tuple(path.split(".")): rule for path in dotted}


_RESOURCES = [
    f"cluster.{c}.resources.{r}"
    for c in ("apiServer", "controllerManager", "scheduler")
    for r in ("requests", "limits")
]

RULES: dict[str, dict[Loc, Rule]] = {
    "v1alpha1": {
        **_at(
            Rule("replace"),
            "cluster.network.podSubnets",
            "cluster.network.serviceSubnets",
            "cluster.apiServer.auditPolicy",
        ),
        **_at(Rule("interfaces"), "machine.network.interfaces"),
        **_at(Rule("keyed", "vlanId"), "machine.network.interfaces.[].vlans"),
        **_at(Rule("keyed", "name"), "cluster.apiServer.admissionControl"),
        **_at(
            Rule("args"),
            "machine.kubelet.extraArgs",
            *(f"cluster.{c}.extraArgs" for c in ("apiServer", "controllerManager", "proxy", "scheduler", "etcd")),
        ),
        **_at(
            Rule("map"),
            *(f"machine.{m}" for m in ("env", "sysctls", "sysfs", "nodeLabels", "nodeAnnotations", "nodeTaints")),
            "machine.registries.mirrors",
            "machine.registries.config",
            "machine.logging.destinations.[].extraTags",
            "cluster.extraManifestHeaders",
            *(f"cluster.{c}.env" for c in ("apiServer", "controllerManager", "scheduler")),
        ),
        **_at(
            Rule("free"),
            "machine.baseRuntimeSpecOverrides",
            "machine.pods.[]",
            "machine.seccompProfiles.[].value",
            "machine.kubelet.extraConfig",
            "machine.kubelet.credentialProviderConfig",
            "cluster.apiServer.admissionControl.[].configuration",
            "cluster.apiServer.authorizationConfig.[].webhook",
            "cluster.scheduler.config",
            *_RESOURCES,
        ),
        **_at(Rule("pointer"), "machine.network.kubespan.mtu"),
        **_at(
            Rule("pem", "crt key"),
            "machine.ca",
            "cluster.ca",
            "cluster.aggregatorCA",
            "cluster.etcd.ca",
            "machine.registries.config.*.tls.clientIdentity",
        ),
        **_at(Rule("pem", "key"), "cluster.serviceAccount"),
        **_at(Rule("endpoint"), "cluster.controlPlane.endpoint"),
        **_at(Rule("disk-size"), "machine.install.diskSelector.size"),
    },
    "NetworkRuleConfig": _at(Rule("replace"), "ingress", "portSelector.ports"),
    "ExtensionServiceConfig": _at(Rule("keyed", "mountPath"), "configFiles"),
    "ImageVerificationConfig": _at(Rule("keyed-replace", "image"), "rules"),
    "ZswapConfig": _at(Rule("pointer"), "maxPoolPercent"),
}

_PROVISIONING = ("provisioning.minSize", "provisioning.diskSelector.match")
ALWAYS_REPLACED: dict[str, tuple[str, ...]] = {
    "VolumeConfig": _PROVISIONING,
    "RawVolumeConfig": _PROVISIONING,
    "SwapVolumeConfig": _PROVISIONING,
    "UserVolumeConfig": _PROVISIONING,
    "ExistingVolumeConfig": ("discovery.volumeSelector.match",),
    "LinkAliasConfig": ("selector.match",),
    "OOMConfig": ("triggerExpression", "cgroupRankingExpression"),
}
"""Fields with a custom Go merger that copies the patch value even when the patch leaves it out."""

_LINK_KINDS = (
    "BondConfig",
    "BridgeConfig",
    "DummyLinkConfig",
    "LinkConfig",
    "VLANConfig",
    "VRFConfig",
    "WireguardConfig",
)
CONFLICTS: dict[str, tuple[str, ...]] = {
    **{kind: tuple(k for k in _LINK_KINDS if k != kind) for kind in _LINK_KINDS},
    "UserVolumeConfig": ("ExistingVolumeConfig",),
    "ExistingVolumeConfig": ("UserVolumeConfig",),
    "HCloudVIPConfig": ("Layer2VIPConfig",),
    "Layer2VIPConfig": ("HCloudVIPConfig",),
}
"""Kinds that may not share a name (container.New's ConflictsWithKinds)."""

_SELECTOR_FIELDS = ("busPath", "hardwareAddr", "permanentAddr", "pciID", "driver")
"""NetworkDeviceSelector's string fields; its `physical` is a *bool (see _same_selector)."""


@dataclass(frozen=True)
class Delete:
    """One `$patch: delete` of a patch document: a whole document, a key, or a list element."""

    target: tuple[str, str, str]
    """document_key of the document it applies to."""
    path: tuple[str, ...]
    """Keys, with `[i]` for a position in a patch list, as Talos records them; empty for the whole document."""
    key: str = ""
    """For a list element: the element's first key and its value as text."""
    value: str = ""

    def shown(self) -> str:
        """The path as `machine.network.interfaces[interface=eth1]`."""
        text = _show_talos_path(self.path)
        if self.key:
            text = text.rsplit("[", 1)[0] + f"[{self.key}={self.value}]"
        return text


def split_deletes(doc: Document, source: str) -> tuple[list[Delete], Document | None]:
    """Take the `$patch: delete` entries out of a patch document (changed in place).

    Returns the deletes and what is left to merge, None when nothing is (an empty document, or one with
    only `version`/`kind`/`name`, counts as nothing, as in Talos' decoder).
    """
    scan = _DeleteScan(doc, source)
    emptied = scan.node(doc, in_list=False, path=[])
    if emptied or all(k in ("version", "kind", "name") and not isinstance(v, dict | list) for k, v in doc.items()):
        return scan.found, None
    return scan.found, doc


class _DeleteScan:
    """Talos' processNode: walk a patch document, record each delete and cut it out of the document."""

    def __init__(self, root: Document, source: str) -> None:
        self.root, self.source, self.found = root, source, list[Delete]()

    def node(self, value: Any, *, in_list: bool, path: list[str]) -> bool:
        """Record the deletes under value; True when value itself goes (deleted, or emptied by deletes)."""
        if isinstance(value, dict):
            for key, item in list(value.items()):
                if key == "$patch" and item == "delete":
                    self.record(value, in_list, path)
                    return True
                if self.node(item, in_list=False, path=[*path, str(key)]):
                    del value[key]
                    if not value:
                        return True
        elif isinstance(value, list):
            index = 0
            while index < len(value):
                if self.node(value[index], in_list=True, path=[*path, f"[{index}]"]):
                    del value[index]
                    if not value:
                        return True
                else:
                    index += 1
        return False

    def record(self, mapping: dict[Any, Any], in_list: bool, path: list[str]) -> None:
        shown = _show_talos_path(tuple(path))
        key = value = ""
        if in_list:
            first = next(((str(k), v) for k, v in mapping.items() if k != "$patch"), None)
            if first is None:
                raise PatchError(
                    self.source,
                    shown,
                    "a list element with only `$patch: delete` selects nothing; add its key, e.g. `interface: eth0`",
                )
            key, value = first[0], _text(first[1])
        elif any(part.startswith("[") for part in path):
            raise PatchError(
                self.source,
                shown,
                "cannot delete a key inside a list element; "
                "delete the whole element (its first key plus `$patch: delete`)",
            )
        self.found.append(Delete(self.target(path), tuple(path), key, value))

    def target(self, path: list[str]) -> tuple[str, str, str]:
        api, kind, name = (_text(self.root.get(k)) for k in ("apiVersion", "kind", "name"))
        if not path and ("apiVersion" not in self.root or "kind" not in self.root):
            missing = "apiVersion" if "apiVersion" not in self.root else "kind"
            raise PatchError(
                self.source,
                "$",
                f"missing {missing} in a document deleted with `$patch: delete`; name the document by apiVersion "
                "and kind (the v1alpha1 document cannot be deleted)",
            )
        if bool(api) != bool(kind):
            raise PatchError(
                self.source,
                _show_talos_path(tuple(path)),
                "kind and apiVersion must be both set (or both absent for the v1alpha1 document)",
            )
        return (api, kind, name) if kind else LEGACY


def plan(documents: Sequence[Document], source: str) -> list[Delete | Document]:
    """Patch documents in Talos' application order: v1alpha1 deletes, v1alpha1, then the rest as written."""
    legacy_deletes: list[Delete | Document] = []
    legacy: list[Delete | Document] = []
    rest: list[Delete | Document] = []
    for raw in documents:
        deletes, content = split_deletes(copy.deepcopy(raw), source)
        for delete in deletes:
            (legacy_deletes if delete.target[1] == "v1alpha1" else rest).append(delete)
        if content is not None:
            (legacy if document_key(content) == LEGACY else rest).append(content)
    return [*legacy_deletes, *legacy, *rest]


def merge_documents(documents: list[Document], patch: Sequence[Document], source: str) -> list[Document]:
    """Apply one strategic patch (its raw documents, left unchanged) to a config, changing its documents in place."""
    result = list(documents)
    index = {document_key(doc): doc for doc in result}
    for item in plan(patch, source):
        if isinstance(item, Delete):
            _delete(result, index, item, source)
            continue
        target = index.get(document_key(item))
        if target is None:
            result.append(item)
        else:
            _merge_document(target, item, source)
    check_document_set(result, source)
    return sorted(result, key=lambda doc: document_key(doc) != LEGACY)


def _merge_document(target: Document, patch: Document, source: str) -> None:
    kind = document_key(target)[1]
    _merge_mapping(kind, target, patch, (), "" if kind == "v1alpha1" else document_id(target), source)
    for dotted in ALWAYS_REPLACED.get(kind, ()):
        _replace_path(target, dotted.split("."), _get(patch, dotted.split(".")))


def _merge_mapping(
    kind: str, left: dict[str, Any], right: Mapping[str, Any], loc: Loc, shown: str, source: str
) -> dict[str, Any]:
    is_map = _is_map(kind, loc)
    for key, value in right.items():
        if value is None:
            continue
        here = (*loc, str(key))
        rule = _rule(kind, here)
        if left.get(key) is None and _is_zero(value) and not is_map and not (rule and rule.how == "pointer"):
            continue
        left[key] = _merge_value(kind, left.get(key), value, here, _join(shown, str(key)), source)
    return left


def _merge_value(kind: str, left: Any, right: Any, loc: Loc, shown: str, source: str) -> Any:
    """Merge a patch value into the config value at loc (which may be changed in place)."""
    rule = _rule(kind, loc)
    how = rule.how if rule else None
    if how == "free":
        return _merge_free(left, right, shown, source)
    if right is None:
        return left
    if rule is not None and how in ("interfaces", "keyed", "keyed-replace"):
        return _merge_list_by_key(kind, [] if left is None else left, right, rule, loc, shown, source)
    if left is None or how == "pem":
        return _fresh(right, rule, shown, source)
    _check_same_type(left, right, shown, source)
    if how == "replace":
        return right
    if isinstance(right, dict):
        return {**left, **right} if how == "args" else _merge_mapping(kind, left, right, loc, shown, source)
    if isinstance(right, list):
        return [*left, *right]
    if how == "disk-size":
        raise PatchError(
            source,
            shown,
            "Talos cannot merge a disk size condition into an existing one (merge not possible); "
            "delete the old one first, in an earlier patch: `size: {$patch: delete}`",
        )
    if isinstance(right, bool) or how == "pointer" or not _is_zero(right):
        return _merge_endpoint(left, right) if how == "endpoint" else right
    return left


def _fresh(value: Any, rule: Rule | None, shown: str, source: str) -> Any:
    """A patch value placed where the config has none (certificate pairs get both fields, as Talos decodes them)."""
    if rule is not None and rule.how == "pem":
        if not isinstance(value, dict):
            raise PatchError(
                source, shown, f"expected a mapping of {rule.key.replace(' ', ' and ')}, got a {type_name(value)}"
            )
        return {field: value.get(field) or "" for field in rule.key.split()}
    return value


def _merge_list_by_key(
    kind: str, left: list[Any], right: Any, rule: Rule, loc: Loc, shown: str, source: str
) -> list[Any]:
    """The custom Go mergers of lists: merge (or, for keyed-replace, swap) the element with the same key."""
    _check_same_type(left, right, shown, source)
    positions = {_key_of(el, rule.key): i for i, el in enumerate(left)} if rule.how == "keyed-replace" else {}
    for i, item in enumerate(right):
        if not isinstance(item, dict):
            raise PatchError(
                source,
                f"{shown}[{i}]",
                f"expected a mapping, got a {type_name(item)}; write each element as a mapping naming it by "
                f"{rule.key or 'interface (or deviceSelector)'}",
            )
        if rule.how == "keyed-replace":
            position = positions.get(_key_of(item, rule.key))
            if position is None:
                left.append(item)
            else:
                left[position] = item
            continue
        existing = next((el for el in left if isinstance(el, dict) and _same_element(rule, el, item)), None)
        if existing is None:
            left.append(item)
        else:
            _merge_value(kind, existing, item, (*loc, ITEM), f"{shown}[{i}]", source)
    return left


def _same_element(rule: Rule, existing: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether the patch element merges into this config element (NetworkDeviceList.mergeDevice for interfaces:
    the same `interface`, else an equal `deviceSelector`)."""
    if rule.how != "interfaces":
        return bool(_key_of(existing, rule.key) == _key_of(item, rule.key))
    if item.get("interface"):
        return bool(existing.get("interface") == item["interface"])
    return _same_selector(existing.get("deviceSelector"), item.get("deviceSelector"))


def _same_selector(a: Any, b: Any) -> bool:
    """Go struct equality: `physical` is a *bool, so two selectors that set it are never equal."""
    if (
        not isinstance(a, dict)
        or not isinstance(b, dict)
        or a.get("physical") is not None
        or b.get("physical") is not None
    ):
        return False
    return all(_text(a.get(field)) == _text(b.get(field)) for field in _SELECTOR_FIELDS)


def _key_of(item: Any, key: str) -> Any:
    """The element's key value; absent means the Go zero value, which equals 0 or ""."""
    return (item.get(key) if isinstance(item, dict) else None) or ""


def _merge_free(left: Any, right: Any, shown: str, source: str) -> Any:
    """Merge inside a free-form map (Go map[string]any): types must match exactly."""
    if right is None:
        return left
    if left is None:
        return right
    _check_same_type(left, right, shown, source, exact=True)
    if isinstance(right, dict):
        for key, value in right.items():
            current = left.get(key)
            if current is not None and value is None:
                raise PatchError(
                    source,
                    _join(shown, str(key)),
                    "null cannot replace a value in a free-form map (Talos crashes on it); "
                    "use `$patch: delete` to remove the key",
                )
            left[key] = value if current is None else _merge_free(current, value, _join(shown, str(key)), source)
        return left
    if isinstance(right, list):
        return [*left, *right]
    return right if isinstance(right, bool) or not _is_zero(right) else left


def _merge_endpoint(left: Any, right: Any) -> str:
    """url.URL merged field by field: each non-empty part of the patch URL replaces the config's."""
    old, new = urlsplit(str(left)), urlsplit(str(right))
    return urlunsplit(tuple(n or o for o, n in zip(old, new, strict=True)))


def _delete(result: list[Document], index: dict[tuple[str, str, str], Document], delete: Delete, source: str) -> None:
    target = index.get(delete.target)
    if target is None:
        doc = delete.target[1] if delete.target[1] == "v1alpha1" else "/".join(p for p in delete.target[1:] if p)
        raise PatchError(
            source,
            doc,
            "patch targets nothing: `$patch: delete` names a document the config does not have "
            "(talosctl would write an empty `{}` document that Talos then refuses to load); "
            "drop the delete or fix apiVersion/kind/name",
        )
    if not delete.path:
        result[:] = [doc for doc in result if doc is not target]
        del index[delete.target]
        return
    kind = delete.target[1]
    shown = _join("" if kind == "v1alpha1" else document_id(target), delete.shown())
    node: Any = target
    loc: Loc = ()
    for depth, part in enumerate(delete.path):
        last = depth == len(delete.path) - 1
        if part.startswith("["):
            if not last:
                raise PatchError(
                    source,
                    shown,
                    "Talos cannot delete inside a list nested in a list element; delete the whole element",
                )
            if not isinstance(node, list) or not _delete_element(kind, node, loc, delete):
                raise _nothing(source, shown)
            return
        if isinstance(node, list):
            raise PatchError(
                source, shown, f"the config has a list at {_show_loc(loc)}, not a mapping; select elements by a key"
            )
        if not isinstance(node, dict):
            raise _nothing(source, shown)
        if last:
            if part in node:
                del node[part]
            elif _is_map(kind, loc):
                raise _nothing(source, shown)
            return
        node, loc = node.get(part), (*loc, part)
        if node is None:
            raise _nothing(source, shown)


def _delete_element(kind: str, items: list[Any], loc: Loc, delete: Delete) -> bool:
    """deleteStructFrom: remove the first struct element whose field `key` reads as `value`."""
    rule = _rule(kind, (*loc, ITEM))
    if rule is not None and rule.how == "free":
        return False
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get(delete.key), str) and item[delete.key] == delete.value:
            del items[i]
            return True
    return False


def _nothing(source: str, shown: str) -> PatchError:
    return PatchError(
        source,
        shown,
        "patch targets nothing: `$patch: delete` found nothing there (Talos: lookup failed); "
        "drop the delete or fix the path",
    )


def check_document_set(docs: list[Document], source: str) -> None:
    """container.New: no two documents with the same kind/name, none of a conflicting kind with the same name."""
    seen: set[str] = set()
    conflicting: dict[str, str] = {}
    for doc in docs:
        _, kind, name = document_key(doc)
        doc_id = f"{kind}/{name}"
        if doc_id in seen:
            raise PatchError(source, document_id(doc), "duplicate document; keep one document of this kind and name")
        seen.add(doc_id)
        other = conflicting.get(doc_id) or next(
            (f"{k}/{name}" for k in CONFLICTS.get(kind, ()) if f"{k}/{name}" in seen), None
        )
        if other is not None:
            raise PatchError(
                source,
                document_id(doc),
                f"conflicts with {other.rstrip('/')}: they configure the same link or volume; keep one",
            )
        for k in CONFLICTS.get(kind, ()):
            conflicting[f"{k}/{name}"] = doc_id


def _rule(kind: str, loc: Loc) -> Rule | None:
    return next((rule for pattern, rule in RULES.get(kind, {}).items() if _fits(pattern, loc)), None)


def _is_map(kind: str, loc: Loc) -> bool:
    """Whether loc holds a Go map (absent keys are real misses there) rather than a struct."""
    return any(
        _fits(pattern, loc)
        if rule.how in ("map", "args")
        else rule.how == "free" and _fits(pattern, loc[: len(pattern)])
        for pattern, rule in RULES.get(kind, {}).items()
    )


def _fits(pattern: Loc, loc: Loc) -> bool:
    return len(pattern) == len(loc) and all(p in (ANY, part) for p, part in zip(pattern, loc, strict=True))


def _check_same_type(left: Any, right: Any, shown: str, source: str, *, exact: bool = False) -> None:
    """Refuse a mapping, list or scalar where the config has another one (Talos fails decoding the patch); with
    exact (free-form maps) also a scalar of another type (Talos: merge type mismatch)."""
    same = type(left) is type(right) if exact else _shape(left) == _shape(right)
    if not same:
        raise PatchError(
            source,
            shown,
            f"type mismatch: cannot merge a {type_name(right)} into the {type_name(left)} the config has here; "
            f"write a {type_name(left)}",
        )


def _replace_path(doc: Document, path: list[str], value: Any) -> None:
    """Set doc at path to value, or remove it (and parents it leaves empty) when value is None."""
    parent = doc
    parents = []
    for part in path[:-1]:
        child = parent.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = parent[part] = {}
        parents.append((parent, part))
        parent = child
    if value is not None:
        parent[path[-1]] = value
        return
    parent.pop(path[-1], None)
    for holder, part in reversed(parents):
        if holder[part]:
            break
        del holder[part]


def _get(doc: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = doc
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _is_zero(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | str) and not value


def _shape(value: Any) -> str:
    return type_name(value) if isinstance(value, dict | list) else "scalar"


def type_name(value: Any) -> str:
    """The YAML type of a value, for messages: mapping, list, boolean, number, string or null."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def _text(value: Any) -> str:
    """A scalar as Talos reads its YAML text (`true`, `5`); mappings, lists and null read as ""."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _join(shown: str, key: str) -> str:
    return f"{shown}.{key}" if shown else key


def _show_loc(loc: Loc) -> str:
    return ".".join(loc) or "the document root"


def _show_talos_path(path: tuple[str, ...]) -> str:
    """Talos' `a.b.[0].c` path as `a.b[0].c`."""
    return ".".join(path).replace(".[", "[")
