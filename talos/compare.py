"""Compare machine configs by meaning, mask their secrets, and render a readable diff.

Two configs are equal when their documents carry the same values: indentation, key order, comments, quoting
style and the order of the typed documents do not matter, and a config read back from a node (the
`MachineConfigs.config.talos.dev` resource as `talosctl get machineconfig -o yaml` prints it, with the config
in `spec`) compares equal to the documents that were applied. Values are compared as written: `certSANs: []`
and a missing `certSANs` differ, as `"true"` and `true` do.

Redaction masks the same values Talos' own `Redact` masks (private keys, tokens, shared secrets, passwords,
API tokens, static encryption passphrases) with `******`; certificates and the cluster id stay visible,
because they are public and a diff of them is useful. A secret that changed between two configs shows in
`render_diff` as `****** (changed)`, so a rotated secret is visible without its value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any

from talos.documents import Document, document_key, dump_documents, parse_documents
from talos.errors import ConfigError

MASK = "******"
CHANGED_MASK = f"{MASK} (changed)"

Config = str | bytes | Sequence[Document]
Path = tuple[str | int, ...]

_ANY = "*"
_MISSING = object()
_V1ALPHA1_SECRETS = (
    "machine.token",
    "machine.ca.key",
    "machine.registries.config.*.auth.password",
    "machine.registries.config.*.auth.auth",
    "machine.registries.config.*.auth.identityToken",
    "machine.registries.config.*.tls.clientIdentity.key",
    "machine.network.interfaces.*.wireguard.privateKey",
    "machine.network.interfaces.*.vip.equinixMetal.apiToken",
    "machine.network.interfaces.*.vip.hcloud.apiToken",
    "machine.network.interfaces.*.vlans.*.vip.equinixMetal.apiToken",
    "machine.network.interfaces.*.vlans.*.vip.hcloud.apiToken",
    "machine.systemDiskEncryption.*.keys.*.static.passphrase",
    "cluster.secret",
    "cluster.token",
    "cluster.aescbcEncryptionSecret",
    "cluster.secretboxEncryptionSecret",
    "cluster.serviceAccount.key",
    "cluster.ca.key",
    "cluster.aggregatorCA.key",
    "cluster.etcd.ca.key",
)
_VOLUME_SECRETS = ("encryption.keys.*.static.passphrase",)
_SECRETS_BY_KIND: dict[str, tuple[str, ...]] = {
    "v1alpha1": _V1ALPHA1_SECRETS,
    "SideroLinkConfig": ("uniqueToken",),
    "WireguardConfig": ("privateKey", "peers.*.presharedKey"),
    "HCloudVIPConfig": ("apiToken",),
    "RegistryTLSConfig": ("clientIdentity.key",),
    "RegistryAuthConfig": ("password", "auth", "identityToken"),
    "VolumeConfig": _VOLUME_SECRETS,
    "UserVolumeConfig": _VOLUME_SECRETS,
    "RawVolumeConfig": _VOLUME_SECRETS,
    "SwapVolumeConfig": _VOLUME_SECRETS,
}
_JOIN_TOKEN = re.compile(r"(?<=[?&]jointoken=)[^&#]*")
_URL_QUERY = re.compile(r"[?#].*", re.DOTALL)
_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?[^?#]*@")


def canonical_documents(config: Config) -> list[Document]:
    """The config's documents, unwrapped from a node's resource YAML, v1alpha1 first, then by kind and name."""
    documents = _unwrap(parse_documents(config, source="config") if isinstance(config, str | bytes) else config)
    return [_sorted_keys(doc) for doc in sorted(documents, key=document_key)]


def configs_equal(a: Config, b: Config) -> bool:
    """Whether two configs mean the same (see the module docstring)."""
    return canonical_documents(a) == canonical_documents(b)


def redact(documents: Sequence[Document]) -> list[Document]:
    """Copies of the documents with every secret value replaced by `******` (empty values stay empty)."""
    return [_redact(doc, lambda _: MASK) for doc in documents]


def is_secret_path(doc: Document, path: Sequence[str | int]) -> bool:
    """Whether the value at `path` in `doc` is one `redact` masks (a key, token, password, passphrase)."""
    return any(_matches(pattern, tuple(path)) for pattern in _secret_patterns(doc))


def masked_url(text: str) -> str:
    """`text` with what a URL may carry in secret masked: `user:password@` and everything from `?` or `#` on.

    Works on text that is not a well-formed URL too (no scheme, a bad port), as found in a config that failed to
    validate; other text comes back as it is.
    """
    text = _URL_QUERY.sub(f"?{MASK}", text, count=1)
    return _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text, count=1)


def render_diff(old: Config, new: Config, *, context: int = 3) -> str:
    """A unified diff of the canonical, redacted YAML of two configs; "" when they are equal."""
    before, after = canonical_documents(old), canonical_documents(new)
    if before == after:
        return ""
    previous = {document_key(doc): doc for doc in before}

    def new_mask(doc: Document) -> Callable[[Path], str]:
        old_doc = previous.get(document_key(doc))
        return lambda path: CHANGED_MASK if old_doc is not None and _changed(old_doc, doc, path) else MASK

    old_text = dump_documents(redact(before))
    new_text = dump_documents([_redact(doc, new_mask(doc)) for doc in after])
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile="old",
        tofile="new",
        n=context,
    )
    return "".join(lines)


def _unwrap(documents: Sequence[Document]) -> list[Document]:
    """The config inside a MachineConfig resource (`spec`), or the documents themselves."""
    resources = [doc for doc in documents if _is_resource(doc)]
    if not resources:
        return list(documents)
    if len(resources) > 1:
        active = [doc for doc in resources if doc["metadata"].get("id") == "v1alpha1"]
        if len(active) != 1:
            raise ConfigError(
                "config",
                "metadata.id",
                f"{len(resources)} MachineConfig resources and none is the active one (id v1alpha1)",
                "pass the output of `talosctl get machineconfig v1alpha1 -o yaml` for one node",
            )
        resources = active
    spec = resources[0]["spec"]
    if isinstance(spec, str | bytes):
        return parse_documents(spec, source="config resource spec")
    if isinstance(spec, dict):
        return [spec]
    raise ConfigError("config", "spec", f"is {type(spec).__name__}, not a machine config", "pass the resource YAML")


def _is_resource(doc: Document) -> bool:
    return isinstance(doc.get("metadata"), dict) and "spec" in doc and not {"version", "kind"} & doc.keys()


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _secret_patterns(doc: Document) -> list[tuple[str, ...]]:
    kind = "v1alpha1" if document_key(doc)[1] == "v1alpha1" else str(doc.get("kind"))
    return [tuple(pattern.split(".")) for pattern in _SECRETS_BY_KIND.get(kind, ())]


def _redact(doc: Document, mask: Callable[[Path], str]) -> Document:
    """A copy of `doc` with the secrets of its kind replaced by `mask(path)`."""
    patterns = _secret_patterns(doc)

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, str) and value and any(_matches(pattern, path) for pattern in patterns):
            return mask(path)
        return value

    redacted = walk(doc, ())
    if doc.get("kind") == "SideroLinkConfig" and isinstance(redacted.get("apiUrl"), str):
        redacted["apiUrl"] = _JOIN_TOKEN.sub(MASK, redacted["apiUrl"])
    return redacted


def _matches(pattern: tuple[str, ...], path: Path) -> bool:
    return len(pattern) == len(path) and all(p in (_ANY, str(part)) for p, part in zip(pattern, path, strict=True))


def _changed(old: Document, new: Document, path: Path) -> bool:
    """Whether `old` has a value at `path` and `new` has a different one there."""
    before = _lookup(old, path)
    return before is not _MISSING and before != _lookup(new, path)


def _lookup(value: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(value, dict | list):
            return _MISSING
        try:
            value = value[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return value
