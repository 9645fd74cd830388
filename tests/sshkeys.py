"""Real OpenSSH ed25519 key pairs for tests: made by ``ssh-keygen`` when it is installed (the
tool reviewers use), else by cryptography's OpenSSH serialization (the same file format)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public_line: str


def make_key(folder: Path, name: str, passphrase: str = "") -> KeyPair:
    """An ed25519 key pair ``folder/name`` and ``folder/name.pub``."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / name
    if shutil.which("ssh-keygen"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", f"{name}@test", "-f", str(private)], check=True)
    else:
        key = Ed25519PrivateKey.generate()
        encryption = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption))
        private.chmod(0o600)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        private.with_name(f"{name}.pub").write_bytes(public + f" {name}@test\n".encode())
    return KeyPair(private, private.with_name(f"{name}.pub").read_text().strip())


def make_rsa_key(folder: Path, name: str) -> Path:
    """An OpenSSH RSA private key (a kind sign-offs refuse)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    path.with_name(f"{name}.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" rsa@test\n"
    )
    return path
