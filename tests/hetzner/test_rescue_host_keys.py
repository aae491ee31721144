"""Host key handling of rescue sessions: API-reported keys pinned, otherwise the first key for this boot."""

from __future__ import annotations

import paramiko
import pytest

from hetzner.keys import md5_fingerprint, sha256_fingerprint
from hetzner.rescue import HostKeyMismatch, HostKeyPins

CLIENT = paramiko.SSHClient()


def test_key_reported_by_the_api_accepted_by_md5_or_sha256() -> None:
    key = paramiko.ECDSAKey.generate()

    for expected in (md5_fingerprint(key), sha256_fingerprint(key)):
        pins = HostKeyPins((expected,))
        pins.missing_host_key(CLIENT, "127.0.1.10", key)
        assert pins.seen is key


def test_other_key_than_reported_refused() -> None:
    reported, offered = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    pins = HostKeyPins((md5_fingerprint(reported),))

    with pytest.raises(HostKeyMismatch, match=r"127\.0\.1\.10 offered host key SHA256:"):
        pins.missing_host_key(CLIENT, "127.0.1.10", offered)
    assert pins.seen is None


def test_first_key_trusted_then_pinned_for_reconnects() -> None:
    first, other = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    pins = HostKeyPins()
    pins.missing_host_key(CLIENT, "127.0.1.10", first)

    again = pins.pinned()

    again.missing_host_key(CLIENT, "127.0.1.10", first)
    with pytest.raises(HostKeyMismatch):
        again.missing_host_key(CLIENT, "127.0.1.10", other)
