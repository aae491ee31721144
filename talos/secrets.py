"""The cluster secrets bundle (`secrets.yaml`) as `talosctl gen secrets` makes, writes and reads it.

The file layout is Talos' `secrets.Bundle` marshalled by go-yaml: lowercase Go field names in struct order,
4-space indentation, every certificate and key as standard base64 of its whole PEM text. Loading checks
what `talosctl gen config --with-secrets` checks, plus the formats Kubernetes and Talos rely on later
(bootstrap token, encryption key sizes, each key belonging to its certificate), and reports every problem
by field without ever quoting a secret value.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import string
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from talos.documents import GoYamlLoader, dump_documents, yaml_problem
from talos.errors import SecretsError
from talos.pki import (
    CertAndKey,
    PrivateKey,
    generate_ca,
    load_private_key,
    private_key_pem,
    public_key_matches,
)
from talos.versions import CURRENT, VersionContract

BOOTSTRAP_TOKEN = re.compile(r"[0-9a-z]{6}\.[0-9a-z]{16}")
"""Kubernetes' bootstrap token format; Talos generates its trustd token the same way."""

_TOKEN_ALPHABET = string.digits + string.ascii_lowercase
_TRUSTD_TOKEN = re.compile(r"[\x21-\x7e]+")  # sent as gRPC metadata: printable ASCII, no spaces
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{43}=")  # URL-safe base64 of 32 random bytes, as Talos generates it
_REDACTED = "******"
_LAYOUT: dict[str, tuple[str, ...]] = {
    "cluster": ("id", "secret"),
    "secrets": ("bootstraptoken", "aescbcencryptionsecret", "secretboxencryptionsecret"),
    "trustdinfo": ("token",),
    "certs": ("etcd", "k8s", "k8saggregator", "k8sserviceaccount", "os"),
}
_REGENERATE = "take the value from the original secrets.yaml, or generate a new bundle"
_Section = dict[str, Any] | None


@dataclass(frozen=True)
class SecretsBundle:
    """Every secret a Talos cluster is built from; the fields of talosctl's secrets.yaml."""

    cluster_id: str
    cluster_secret: str = field(repr=False)
    bootstrap_token: str = field(repr=False)
    secretbox_encryption_secret: str | None = field(repr=False)
    aescbc_encryption_secret: str | None = field(repr=False)
    trustd_token: str = field(repr=False)
    etcd: CertAndKey
    k8s: CertAndKey
    k8s_aggregator: CertAndKey
    k8s_service_account_key: bytes = field(repr=False)
    os: CertAndKey

    @classmethod
    def generate(cls, contract: VersionContract = CURRENT, *, now: datetime | None = None) -> SecretsBundle:
        """A new bundle as `talosctl gen secrets` makes it for `contract`; every CA starts at `now`.

        The RSA-4096 service-account key dominates the time taken (0.1-0.8 s here, it varies by key).
        """
        secretbox = contract.minor > (1, 2)
        return cls(
            cluster_id=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            cluster_secret=_new_encryption_secret(),
            bootstrap_token=_new_token(),
            secretbox_encryption_secret=_new_encryption_secret() if secretbox else None,
            aescbc_encryption_secret=None if secretbox else _new_encryption_secret(),
            trustd_token=_new_token(),
            etcd=generate_ca("ecdsa-p256", "etcd", now=now),
            k8s=generate_ca("ecdsa-p256", "kubernetes", now=now),
            k8s_aggregator=generate_ca("ecdsa-p256", None, now=now),
            k8s_service_account_key=_new_service_account_key(contract),
            os=generate_ca("ed25519", "talos", now=now),
        )

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "secrets bundle") -> SecretsBundle:
        """Read talosctl's layout; a SecretsError lists every problem by field, never by value."""
        if not isinstance(data, dict):
            raise SecretsError(f"{source}: is {_kind(data)}, not a mapping (fix: pass a secrets.yaml from talosctl)")
        reader = _Reader()
        reader.unknown_keys(data, "", tuple(_LAYOUT))
        cluster, secrets_, trustd, certs = (reader.section(data, name, keys) for name, keys in _LAYOUT.items())
        bundle = cls(
            cluster_id=reader.token(
                cluster, "cluster.id", _CLUSTER_ID, form="URL-safe base64 of 32 bytes (44 characters)", fix=_REGENERATE
            ),
            cluster_secret=reader.base64_key(cluster, "cluster.secret", sizes=(32,)),
            bootstrap_token=reader.token(
                secrets_,
                "secrets.bootstraptoken",
                BOOTSTRAP_TOKEN,
                form="a Kubernetes bootstrap token",
                fix="use 6 then 16 characters from [0-9a-z] joined by '.', as talosctl generates",
            ),
            secretbox_encryption_secret=reader.base64_key(
                secrets_, "secrets.secretboxencryptionsecret", sizes=(32,), required=False
            ),
            aescbc_encryption_secret=reader.base64_key(
                secrets_, "secrets.aescbcencryptionsecret", sizes=(16, 24, 32), required=False
            ),
            trustd_token=reader.token(
                trustd,
                "trustdinfo.token",
                _TRUSTD_TOKEN,
                form="printable ASCII without spaces",
                fix=_REGENERATE,
            ),
            etcd=reader.ca(certs, "etcd"),
            k8s=reader.ca(certs, "k8s"),
            k8s_aggregator=reader.ca(certs, "k8saggregator"),
            k8s_service_account_key=reader.service_account_key(certs),
            os=reader.ca(certs, "os"),
        )
        encryption = [bundle.secretbox_encryption_secret, bundle.aescbc_encryption_secret]
        if secrets_ is not None and encryption.count(None) != 1:
            names = "secretboxencryptionsecret, aescbcencryptionsecret"
            reason = f"only one of {names} is allowed" if None not in encryption else f"one of {names} is required"
            reader.problem("secrets", reason, "keep one; Talos v1.3 and later use secretboxencryptionsecret")
        reader.raise_problems(source)
        return bundle

    @classmethod
    def from_yaml(cls, text: str | bytes, *, source: str = "secrets.yaml") -> SecretsBundle:
        """Parse a secrets.yaml as talosctl writes it (see from_dict for the checks)."""
        try:
            data = yaml.load(text, Loader=GoYamlLoader)
        except yaml.YAMLError as err:
            raise SecretsError(f"{source}: {yaml_problem(err)} (fix: correct the YAML syntax)") from None
        return cls.from_dict(data, source=source)

    def to_dict(self) -> dict[str, Any]:
        """talosctl's layout: lowercase keys in Go struct order, PEM as standard base64."""
        secrets_: dict[str, str] = {"bootstraptoken": self.bootstrap_token}
        if self.aescbc_encryption_secret:
            secrets_["aescbcencryptionsecret"] = self.aescbc_encryption_secret
        if self.secretbox_encryption_secret:
            secrets_["secretboxencryptionsecret"] = self.secretbox_encryption_secret
        return {
            "cluster": {"id": self.cluster_id, "secret": self.cluster_secret},
            "secrets": secrets_,
            "trustdinfo": {"token": self.trustd_token},
            "certs": {
                "etcd": _pair_dict(self.etcd),
                "k8s": _pair_dict(self.k8s),
                "k8saggregator": _pair_dict(self.k8s_aggregator),
                "k8sserviceaccount": {"key": _b64(self.k8s_service_account_key)},
                "os": _pair_dict(self.os),
            },
        }

    def to_yaml(self) -> str:
        """The secrets.yaml text, byte for byte as talosctl writes it."""
        return dump_documents([self.to_dict()])


def load_secrets(path: str | os.PathLike[str]) -> SecretsBundle:
    """Read and check a secrets.yaml file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SecretsError(f"{path}: cannot read the secrets bundle ({err.strerror})") from None
    return SecretsBundle.from_yaml(text, source=str(path))


def save_secrets(bundle: SecretsBundle, path: str | os.PathLike[str]) -> None:
    """Write a secrets.yaml readable only by its owner (mode 0600), as talosctl does."""
    write_private_file(path, bundle.to_yaml())


def write_private_file(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600: a reader never sees a partial file of secrets."""
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class _Reader:
    """Reads fields of talosctl's layout, collecting every problem so one error lists them all.

    A section that is missing or malformed is reported once; the fields inside it are then skipped.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, reason: str, fix: str) -> None:
        self.problems.append(f"{path}: {reason} (fix: {fix})")

    def raise_problems(self, source: str) -> None:
        if len(self.problems) == 1:
            raise SecretsError(f"{source}: {self.problems[0]}")
        if self.problems:
            raise SecretsError(f"{source}: {len(self.problems)} problems:\n  " + "\n  ".join(self.problems))

    def section(self, parent: _Section, path: str, keys: tuple[str, ...]) -> _Section:
        if parent is None:
            return None
        data = parent.get(path.rsplit(".", 1)[-1])
        if data is None:
            self.problem(path, "is missing", "add it as talosctl gen secrets writes it")
            return None
        if not isinstance(data, dict):
            self.problem(path, f"is {_kind(data)}, not a mapping", "write it as talosctl gen secrets does")
            return None
        self.unknown_keys(data, f"{path}.", keys)
        return data

    def unknown_keys(self, data: dict[str, Any], prefix: str, keys: tuple[str, ...]) -> None:
        for key in data:
            if key not in keys:
                self.problem(
                    f"{prefix}{key}",
                    "is not a field of a secrets bundle",
                    f"remove it or correct the spelling (fields here: {', '.join(keys)})",
                )

    def text(self, section: _Section, path: str, *, required: bool = True) -> str:
        value = None if section is None else section.get(path.rsplit(".", 1)[-1])
        if value is None or value == "":
            if required and section is not None:
                self.problem(path, "is missing", _REGENERATE)
            return ""
        if not isinstance(value, str):
            self.problem(path, f"is {_kind(value)}, not a string", "quote the value")
            return ""
        return value

    def token(self, section: _Section, path: str, pattern: re.Pattern[str], *, form: str, fix: str) -> str:
        value = self.text(section, path)
        if value and not pattern.fullmatch(value):
            self.problem(path, f"is not {form}", fix)
        return value

    def base64_key(self, section: _Section, path: str, *, sizes: tuple[int, ...], required: bool = True) -> str | None:
        value = self.text(section, path, required=required)
        if not value:
            return None
        decoded = self._decode(path, value)
        if decoded is not None and len(decoded) not in sizes:
            expected = " or ".join(str(size) for size in sizes)
            self.problem(path, f"decodes to {len(decoded)} bytes, not {expected}", _REGENERATE)
        return value

    def ca(self, certs: _Section, name: str) -> CertAndKey:
        path = f"certs.{name}"
        section = self.section(certs, path, ("crt", "key"))
        pair = CertAndKey(self._pem(section, f"{path}.crt"), self._pem(section, f"{path}.key"))
        crt = self._certificate(f"{path}.crt", pair)
        key = self._private_key(f"{path}.key", pair.key)
        if crt is not None and key is not None and not public_key_matches(crt, key):
            self.problem(f"{path}.key", f"is not the private key of {path}.crt", "store the key of this certificate")
        return pair

    def service_account_key(self, certs: _Section) -> bytes:
        path = "certs.k8sserviceaccount"
        pem = self._pem(self.section(certs, path, ("key",)), f"{path}.key")
        self._private_key(f"{path}.key", pem)
        return pem

    def _pem(self, section: _Section, path: str) -> bytes:
        value = self.text(section, path)
        if value == _REDACTED:
            self.problem(path, "is redacted ('******')", "use the unredacted secrets.yaml the cluster was made from")
            return b""
        return (self._decode(path, value) or b"") if value else b""

    def _certificate(self, path: str, pair: CertAndKey) -> x509.Certificate | None:
        if not pair.crt:
            return None
        try:
            return pair.certificate()
        except SecretsError:
            self.problem(path, "is not a PEM certificate", "store base64 of the CA's PEM certificate")
            return None

    def _private_key(self, path: str, pem: bytes) -> PrivateKey | None:
        if not pem:
            return None
        try:
            return load_private_key(pem)
        except SecretsError as err:
            self.problem(path, str(err), "store base64 of the PEM private key talosctl wrote")
            return None

    def _decode(self, path: str, value: str) -> bytes | None:
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            self.problem(path, "is not standard base64", "store the base64 text exactly as talosctl wrote it")
            return None


def _new_token() -> str:
    """`xxxxxx.yyyyyyyyyyyyyyyy` from [0-9a-z], uniformly (secrets.choice is unbiased, like Talos' generator)."""
    return ".".join("".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(n)) for n in (6, 16))


def _new_encryption_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _new_service_account_key(contract: VersionContract) -> bytes:
    """RSA-4096 after contract v1.6 (Talos' UseRSAServiceAccountKey), ECDSA P-256 before."""
    if contract.minor > (1, 6):
        return private_key_pem(rsa.generate_private_key(public_exponent=65537, key_size=4096))
    return private_key_pem(ec.generate_private_key(ec.SECP256R1()))


def _pair_dict(pair: CertAndKey) -> dict[str, str]:
    return {"crt": _b64(pair.crt), "key": _b64(pair.key)}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kind(value: object) -> str:
    kinds = {list: "a list", dict: "a mapping", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "empty" if value is None else kinds.get(type(value), f"a {type(value).__name__}")
