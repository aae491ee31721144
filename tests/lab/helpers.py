"""Small helpers shared by the lab's tests: SSH keys and rescue logins."""

from __future__ import annotations

import io

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def new_key() -> tuple[paramiko.PKey, str]:
    """A fresh Ed25519 key and its OpenSSH public line."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    return key, f"{key.get_name()} {key.get_base64()} lab-test"


class RecordingPolicy(paramiko.MissingHostKeyPolicy):
    """Accept any host key and remember it (tests compare keys between boots)."""

    def __init__(self) -> None:
        self.keys: list[paramiko.PKey] = []

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.keys.append(key)


def ssh(
    address: str, *, key: paramiko.PKey | None = None, password: str | None = None
) -> tuple[paramiko.SSHClient, RecordingPolicy]:
    """A root login to a lab machine, never touching the user's known_hosts."""
    client = paramiko.SSHClient()
    policy = RecordingPolicy()
    client.set_missing_host_key_policy(policy)
    client.connect(address, 22, "root", pkey=key, password=password, look_for_keys=False, allow_agent=False, timeout=5)
    return client, policy


def run(client: paramiko.SSHClient, command: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run a command; exit status, stdout, stderr."""
    _, out, err = client.exec_command(command, timeout=timeout)
    stdout, stderr = out.read().decode(), err.read().decode()
    return out.channel.recv_exit_status(), stdout, stderr
