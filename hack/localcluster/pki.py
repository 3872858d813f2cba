"""Certificates and keys for the local control plane, made with the openssl command."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import StepFailed

APISERVER_SANS = (
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pki:
    """Paths of everything the components need; all under one folder."""

    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.crt")


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StepFailed("create certificates", result.stderr.strip(), "check the openssl install")


def _signed(pki: Pki, name: str, subject: str, extensions: str) -> None:
    root = pki.root
    (root / f"{name}.ext").write_text(extensions)
    _openssl("genrsa", "-out", f"{name}.key", "2048", cwd=root)
    _openssl(
        "req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=root
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "365", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=root,
    )  # fmt: skip


def create(root: Path) -> Pki:
    """Create a CA, the apiserver's serving cert, an admin client cert, and the SA key pair."""
    if shutil.which("openssl") is None:
        raise StepFailed(
            "create certificates", "`openssl` is not on PATH", "install it: apt-get install openssl"
        )
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    if (root / "admin.crt").exists():
        return pki
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=root)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=sloscale-local-ca",
        "-days", "365", "-out", "ca.crt", cwd=root,
    )  # fmt: skip
    _signed(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(APISERVER_SANS)}\n",
    )
    _signed(
        pki,
        "admin",
        "/O=system:masters/CN=sloscale-admin",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n",
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=root)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=root)
    return pki
