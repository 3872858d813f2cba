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
# The aggregator proxies to an extension API server (KEDA's) as this client; the extension
# trusts the headers it sets (X-Remote-User, ...) only from a cert of this CA with this name.
FRONT_PROXY_CLIENT = "front-proxy-client"
CLIENT_EXTENSIONS = (
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
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

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.path("front-proxy-ca.crt")


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StepFailed("create certificates", result.stderr.strip(), "check the openssl install")


def _signed(pki: Pki, name: str, subject: str, extensions: str, ca: str = "ca") -> None:
    root = pki.root
    (root / f"{name}.ext").write_text(extensions)
    _openssl("genrsa", "-out", f"{name}.key", "2048", cwd=root)
    _openssl(
        "req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=root
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "365", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=root,
    )  # fmt: skip


def _new_ca(pki: Pki, name: str, common_name: str) -> None:
    _openssl("genrsa", "-out", f"{name}.key", "2048", cwd=pki.root)
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={common_name}",
        "-days", "365", "-out", f"{name}.crt", cwd=pki.root,
    )  # fmt: skip


def _front_proxy(pki: Pki) -> None:
    """A CA of its own for the aggregator's client cert, as kubeadm does: a cert of the
    cluster CA must not be able to pass for the front proxy."""
    if (pki.root / f"{FRONT_PROXY_CLIENT}.crt").exists():
        return
    _new_ca(pki, "front-proxy-ca", "sloscale-front-proxy-ca")
    _signed(pki, FRONT_PROXY_CLIENT, f"/CN={FRONT_PROXY_CLIENT}", CLIENT_EXTENSIONS,
            ca="front-proxy-ca")  # fmt: skip


def service_cert(root: Path, name: str, dns_names: tuple[str, ...]) -> Pki:
    """A CA and one cert (server and client) for a component's own TLS, in `root`:
    ca.crt, tls.crt and tls.key, the names KEDA reads from its --cert-dir."""
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    if (root / "tls.crt").exists():
        return pki
    _new_ca(pki, "ca", f"{name}-ca")
    sans = ",".join(("IP:127.0.0.1", *(f"DNS:{dns}" for dns in dns_names)))
    _signed(
        pki,
        "tls",
        f"/CN={name}",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={sans}\n",
    )
    return pki


def node_client(root: Path, node: str) -> Pki:
    """A kubelet's client cert in the cluster's PKI: the identity the Node authorizer knows
    (user system:node:NODE in group system:nodes), as `<node>.crt` and `<node>.key`."""
    pki = Pki(root)
    if not (root / f"{node}.crt").exists():
        _signed(pki, node, f"/O=system:nodes/CN=system:node:{node}", CLIENT_EXTENSIONS)
    return pki


def create(root: Path) -> Pki:
    """Create a CA, the apiserver's serving cert, an admin client cert, the SA key pair, and
    the front proxy's CA and client cert (API aggregation)."""
    if shutil.which("openssl") is None:
        raise StepFailed(
            "create certificates", "`openssl` is not on PATH", "install it: apt-get install openssl"
        )
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    _front_proxy(pki)  # apart: a cluster folder made before aggregation gains it on restart
    if (root / "admin.crt").exists():
        return pki
    _new_ca(pki, "ca", "sloscale-local-ca")
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
        CLIENT_EXTENSIONS,
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=root)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=root)
    return pki
