"""talosconfig: the admin client certificate and the client config file `talosctl` reads (~/.talos/config).

The layout is Talos' client config (pkg/machinery/client/config) marshalled by go-yaml: `context`, then
`contexts` by name, each with `endpoints` (always written, `[]` when empty), then `nodes`, `ca`, `crt`, `key`,
`auth` and `cluster` when set; certificates and keys as standard base64 of their PEM text.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from talos.documents import GoYamlLoader, dump_documents
from talos.errors import TalosError
from talos.pki import CertAndKey, issue_certificate, load_private_key, public_key_matches
from talos.secrets import SecretsBundle, write_private_file

ADMIN_CERT_LIFETIME = timedelta(hours=8760)
"""Talos' default client certificate lifetime (constants.TalosAPIDefaultCertificateValidityDuration)."""

ROLES = (
    "os:admin",
    "os:operator",
    "os:reader",
    "os:etcd:backup",
    "os:image:verifier",
    "os:meta:writer",
    "os:impersonator",
)
"""Roles Talos grants (role.All); a client certificate carries them as Subject Organization values."""


class TalosconfigError(TalosError):
    """A talosconfig is malformed, or asks for something Talos does not have."""


@dataclass(frozen=True)
class TalosContext:
    """How to reach one cluster: endpoints to dial, default target nodes, and the mTLS credentials (PEM)."""

    endpoints: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    ca: bytes = b""
    crt: bytes = b""
    key: bytes = field(default=b"", repr=False)
    auth: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """Other authentication (basic, siderov1), kept as read so a merge never loses it."""
    cluster: str = ""

    @classmethod
    def from_dict(cls, data: Any, *, path: str) -> TalosContext:
        """Read one context; a deprecated `target` joins the endpoints, as talosctl does on load."""
        if not isinstance(data, dict):
            raise TalosconfigError(f"{path}: is not a mapping (fix: write the context as talosctl does)")
        endpoints = _strings(data.get("endpoints"), f"{path}.endpoints")
        target = data.get("target")
        if target:
            endpoints += (str(target),)
        auth = data.get("auth") or {}
        if not isinstance(auth, dict):
            raise TalosconfigError(f"{path}.auth: is not a mapping (fix: write basic or siderov1 under auth)")
        context = cls(
            endpoints=endpoints,
            nodes=_strings(data.get("nodes"), f"{path}.nodes"),
            ca=_pem(data.get("ca"), f"{path}.ca"),
            crt=_pem(data.get("crt"), f"{path}.crt"),
            key=_pem(data.get("key"), f"{path}.key"),
            auth=auth,
            cluster=str(data.get("cluster") or ""),
        )
        _check_credentials(context, path)
        return context

    def to_dict(self) -> dict[str, Any]:
        """The context in talosctl's field order, empty optional fields left out."""
        data: dict[str, Any] = {"endpoints": list(self.endpoints)}
        optional = {
            "nodes": list(self.nodes),
            "ca": _b64(self.ca),
            "crt": _b64(self.crt),
            "key": _b64(self.key),
            "auth": dict(self.auth),
            "cluster": self.cluster,
        }
        data.update((name, value) for name, value in optional.items() if value)
        return data


@dataclass(frozen=True)
class TalosConfig:
    """A talosconfig: named contexts and the current one."""

    context: str
    contexts: Mapping[str, TalosContext]

    def current(self) -> TalosContext:
        """The context named by `context`."""
        if self.context not in self.contexts:
            known = ", ".join(self.contexts) or "none"
            raise TalosconfigError(
                f"context: {self.context!r} is not among the contexts ({known}) (fix: pick one of them)"
            )
        return self.contexts[self.context]

    @classmethod
    def from_dict(cls, data: Any) -> TalosConfig:
        if not isinstance(data, dict):
            raise TalosconfigError("document: is not a mapping (fix: pass a talosconfig written by talosctl)")
        contexts = data.get("contexts") or {}
        if not isinstance(contexts, dict):
            raise TalosconfigError("contexts: is not a mapping of context names (fix: write it as talosctl does)")
        return cls(
            context=str(data.get("context") or ""),
            contexts={
                str(name): TalosContext.from_dict(ctx, path=f"contexts.{name}") for name, ctx in contexts.items()
            },
        )

    @classmethod
    def from_yaml(cls, text: str | bytes, *, source: str = "talosconfig") -> TalosConfig:
        """Parse a talosconfig; errors name `source` and the field, never a credential."""
        try:
            return cls.from_dict(yaml.load(text, Loader=GoYamlLoader))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise TalosconfigError(f"{source}: not valid YAML{where} (fix: correct the YAML syntax)") from None
        except TalosconfigError as err:
            raise TalosconfigError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context, "contexts": {name: ctx.to_dict() for name, ctx in self.contexts.items()}}

    def to_yaml(self) -> str:
        """The talosconfig text as talosctl writes it (contexts kept in their order here)."""
        return dump_documents([self.to_dict()])


def issue_admin_certificate(
    secrets: SecretsBundle,
    *,
    roles: Sequence[str] = ("os:admin",),
    now: datetime | None = None,
    lifetime: timedelta = ADMIN_CERT_LIFETIME,
) -> CertAndKey:
    """A Talos API client certificate as `gen config` issues it (secrets.NewAdminCertificateAndKey).

    Ed25519, signed by the OS CA; subject is only the roles, each once, as Organization values; KeyUsage
    DigitalSignature and ExtKeyUsage exactly ClientAuth, which apid insists on.
    """
    unknown = [role for role in roles if role not in ROLES]
    if unknown or not roles:
        raise TalosconfigError(
            f"roles: {', '.join(map(repr, unknown)) or 'none given'} (fix: use roles from {', '.join(ROLES)})"
        )
    return issue_certificate(
        secrets.os,
        key_algorithm="ed25519",
        organizations=sorted(set(roles)),
        extended_key_usages=("client_auth",),
        key_usage=("digital_signature",),
        lifetime=lifetime,
        not_before=now,
    )


def build_talosconfig(
    cluster_name: str,
    secrets: SecretsBundle,
    *,
    endpoints: Sequence[str],
    nodes: Sequence[str],
    now: datetime | None = None,
) -> TalosConfig:
    """A talosconfig with one admin context named after the cluster, aimed at the real node addresses.

    Unlike `talosctl gen config`, which leaves the endpoints empty, the context is usable as written.
    """
    if not cluster_name:
        raise TalosconfigError("cluster_name: is empty (fix: pass the cluster's name; it names the context)")
    for name, addresses in (("endpoints", endpoints), ("nodes", nodes)):
        if isinstance(addresses, str) or not addresses:
            raise TalosconfigError(f"{name}: needs a list of node addresses (fix: pass the nodes' IPs or names)")
        for address in addresses:
            if not address or "://" in address or any(c.isspace() for c in address):
                raise TalosconfigError(
                    f"{name}: {address!r} is not a host or host:port (fix: give a bare IP or name, no scheme)"
                )
    admin = issue_admin_certificate(secrets, now=now)
    context = TalosContext(
        endpoints=tuple(endpoints), nodes=tuple(nodes), ca=secrets.os.crt, crt=admin.crt, key=admin.key
    )
    return TalosConfig(context=cluster_name, contexts={cluster_name: context})


def merge_talosconfig(existing: TalosConfig, new: TalosConfig) -> TalosConfig:
    """Add `new`'s contexts to `existing` as `talosctl config merge` does (client config Merge).

    Other contexts are kept. A name already taken gets the first free `-1`, `-2`, ... suffix rather than
    replacing the old context; the current context becomes `new`'s (under its merged name).
    """
    contexts = dict(existing.contexts)
    merged_names: dict[str, str] = {}
    for name, ctx in new.contexts.items():
        merged, suffix = name, 0
        while merged in contexts:
            suffix += 1
            merged = f"{name}-{suffix}"
        merged_names[name] = merged
        contexts[merged] = ctx
    context = merged_names.get(new.context, "") if new.context else existing.context
    return TalosConfig(context=context, contexts=contexts)


def load_talosconfig(path: str | os.PathLike[str]) -> TalosConfig:
    """Read a talosconfig file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise TalosconfigError(f"{path}: cannot read the talosconfig ({err.strerror})") from None
    return TalosConfig.from_yaml(text, source=str(path))


def save_talosconfig(config: TalosConfig, path: str | os.PathLike[str]) -> None:
    """Write a talosconfig as talosctl does: parent directory 0700 if new, the file 0600."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(path, config.to_yaml())


def _strings(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TalosconfigError(f"{path}: is not a list of addresses (fix: write one address per list item)")
    return tuple(value)


def _check_credentials(context: TalosContext, path: str) -> None:
    """Refuse what Talos' client refuses on load: certificates that don't parse, a key not of `crt`."""
    for name in ("ca", "crt"):
        pem = getattr(context, name)
        if pem:
            try:
                x509.load_pem_x509_certificate(pem)
            except ValueError:
                fix = "base64 of the PEM text"
                raise TalosconfigError(f"{path}.{name}: is not a PEM certificate (fix: {fix})") from None
    if not (context.crt or context.key):
        return
    if not (context.crt and context.key):
        missing = "key" if context.crt else "crt"
        raise TalosconfigError(f"{path}.{missing}: is missing (fix: give crt and key together, or neither)")
    try:
        key = load_private_key(context.key)
    except (TalosError, ValueError):
        raise TalosconfigError(f"{path}.key: is not a PEM private key (fix: base64 of the PEM text)") from None
    if not public_key_matches(x509.load_pem_x509_certificate(context.crt), key):
        raise TalosconfigError(f"{path}.key: is not the private key of crt (fix: use the key issued with crt)")


def _pem(value: Any, path: str) -> bytes:
    if not value:
        return b""
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)
    except binascii.Error:
        raise TalosconfigError(f"{path}: is not standard base64 (fix: store base64 of the PEM text)") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode() if data else ""
