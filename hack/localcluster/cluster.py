"""Start and stop the local control plane: processes, ports, kubeconfig, node pool."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import build, pki, realnode
from .errors import StepFailed
from .nodes import NodePool, node_manifests, stage_config

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PORT_ATTEMPTS = 3
# Metadata of every request once it is answered (verb, resource, user): no bodies, no reads
# of the log's own noise such as health checks.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version"]},
        {"level": "Metadata"},
    ],
}
PORT_TAKEN = "a port it needs is taken"


def _log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port nothing listens on now, on loopback (the OS picks, so runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class State:
    """What `down` needs to find again: written next to the kubeconfig."""

    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    install_dir: str = ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def _known_component(name: str) -> None:
    if name not in COMPONENTS:
        raise ValueError(f"unknown component {name!r}; one of {', '.join(COMPONENTS)}")


class LocalCluster:
    """One control plane on loopback, its state kept in `root` (kubeconfig, logs, data)."""

    def __init__(
        self,
        root: Path,
        pool: NodePool | None = None,
        keda: bool = False,
        real_node: bool = False,
    ) -> None:
        self.root = Path(root).resolve()
        self.pool = pool or NodePool()
        self.keda = keda  # also start KEDA (operator, external metrics API server)
        self.real_node = real_node  # also start a kubelet on containerd (realnode.py)
        self.kubeconfig = self.root / "kubeconfig"
        self.state_file = self.root / "state.json"
        self.logs = self.root / "logs"
        self.state = self._read_state()

    # -- public interface -------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        return Path(self.state.install_dir or build.ensure_install()) / "bin"

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses that talk to this cluster (kubectl, the operator)."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def is_running(self) -> bool:
        pids = self.state.pids
        return bool(pids) and all(_alive(pids.get(name, -1)) for name in COMPONENTS)

    def up(self) -> LocalCluster:
        """Start every component (idempotent: a running cluster is left as it is)."""
        if not (self.is_running() and self._apiserver_ready()):
            self._up_control_plane()
        if self.keda:
            from . import keda

            keda.start(self)  # on a running cluster too: KEDA joins it
        if self.real_node:
            realnode.start(self)  # likewise
        return self

    def _up_control_plane(self) -> None:
        self.down()  # whatever is left of an earlier, half-dead run
        install = build.ensure_install()
        started = time.monotonic()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.state = State(install_dir=str(install))
            try:
                self._start_all(install)
                break
            except StepFailed as err:
                with contextlib.suppress(StepFailed):  # the first failure is the one to report
                    self.down()
                # Ports are picked free, but another process may take one before we bind it.
                if PORT_TAKEN not in err.cause or attempt == PORT_ATTEMPTS:
                    raise
                _log(f"{err.step}: a port was taken meanwhile; retrying with new ports")
            except BaseException:
                with contextlib.suppress(StepFailed):
                    self.down()
                raise
        _log(f"control plane ready in {time.monotonic() - started:.1f}s")

    def down(self) -> None:
        """Stop everything this cluster started (idempotent) and check its ports are free."""
        if realnode.node_dir(self).exists():
            realnode.stop(self)  # first: it drains its pods through the running apiserver
        stopped = []
        for name, pid in reversed(list(self.state.pids.items())):  # the reverse of start order
            if _alive(pid):
                self._stop(name, pid)
                stopped.append(name)
        # Only ports our live components held: one that never bound (taken by someone
        # else) is not ours to report.
        ours = {n: p for n, p in self.state.ports.items() if n.split("-peer")[0] in stopped}
        busy = [f"{n}:{p}" for n, p in ours.items() if port_open(p)]
        self.state = State(install_dir=self.state.install_dir)
        self.state_file.unlink(missing_ok=True)
        if busy:
            raise StepFailed("stop cluster", f"ports still listening: {busy}", "report this bug")

    def stop_component(self, name: str) -> None:
        """Stop one component (a fault to inject); the others keep running."""
        _known_component(name)
        pid = self.state.pids.get(name)
        if pid is not None and _alive(pid):
            self._stop(name, pid)
        port = self.state.ports[name]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_component(self, name: str) -> None:
        """Start one stopped component again, on its old port, so clients reconnect to it."""
        _known_component(name)
        pid = self.state.pids.get(name)
        if pid is not None and _alive(pid):
            return
        argv = self._argv(self.bin_dir, pki.Pki(self.root / "pki"), self.state.ports)
        self._start(name, argv[name], self._ready_probe(name))

    def __enter__(self) -> LocalCluster:
        """`with LocalCluster(...) as local:` starts it and stops it, also when starting fails
        halfway (a real node that never got Ready leaves no control plane running)."""
        try:
            return self.up()
        except BaseException:
            with contextlib.suppress(StepFailed):
                self.down()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    def export_line(self) -> str:
        return f"export KUBECONFIG={self.kubeconfig}"

    # -- processes beside the control plane (KEDA) ----------------------------------------
    def start_process(
        self, name: str, argv: list[str], env: dict[str, str], ready: Callable[[], bool]
    ) -> None:
        """Start a process that talks to this cluster, logged and stopped with it."""
        self._start(name, argv, ready, env)

    def stop_process(self, name: str) -> None:
        pid = self.state.pids.pop(name, None)
        if pid is not None and _alive(pid):
            self._stop(name, pid)
        self._write_state()

    def http_probe(self, port: int, path: str) -> Callable[[], bool]:
        return lambda: self._http_ok(port, path)

    def https_probe(self, port: int, path: str) -> Callable[[], bool]:
        return lambda: self._https_ok(port, path)

    # -- starting -----------------------------------------------------------------------
    def _start_all(self, install: Path) -> None:
        for directory in (self.logs, self.root / "etcd"):
            directory.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("etcd", "etcd-peer", *COMPONENTS[1:])}
        self.state.ports = ports
        certs = pki.create(self.root / "pki")
        self._write_kubeconfig(certs, ports["kube-apiserver"])
        (self.root / "kwok-stages.yaml").write_text(
            stage_config(install / "kwok-stages", self.pool)
        )
        (self.root / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        argv = self._argv(install / "bin", certs, ports)
        for name in COMPONENTS[:-1]:
            self._start(name, argv[name], self._ready_probe(name))
        self._create_nodes()
        self._start("kwok", argv["kwok"], self._ready_probe("kwok"))
        self._wait_nodes_ready()

    def _ready_probe(self, name: str) -> Callable[[], bool]:
        port = self.state.ports[name]
        if name == "kube-apiserver":
            return self._apiserver_ready
        if name in ("etcd", "kwok"):
            return lambda: self._http_ok(port, "/health" if name == "etcd" else "/healthz")
        return lambda: self._https_ok(port, "/healthz")

    def _argv(self, bin_dir: Path, certs: pki.Pki, ports: dict[str, int]) -> dict[str, list[str]]:
        kubeconfig = str(self.kubeconfig)
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        component_auth = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        return {
            "etcd": [
                str(bin_dir / "etcd"), "--name=local", f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
            ],
            "kube-apiserver": [
                str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={ports['kube-apiserver']}",
                f"--tls-cert-file={certs.path('apiserver.crt')}",
                f"--tls-private-key-file={certs.path('apiserver.key')}",
                f"--client-ca-file={certs.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs.path('sa.pub')}",
                f"--service-account-signing-key-file={certs.path('sa.key')}",
                "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
                # Logs and exec reach a real node's kubelet (`up --real-node`) at its
                # InternalIP (its bridge's gateway: a kubelet refuses a loopback node IP); its
                # name resolves nowhere.
                f"--kubelet-client-certificate={certs.path('admin.crt')}",
                f"--kubelet-client-key={certs.path('admin.key')}",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false", f"--cert-dir={self.root / 'pki'}",
                # Who did what: tests derive the operator's RBAC needs from this log.
                f"--audit-policy-file={self.root / 'audit-policy.yaml'}",
                f"--audit-log-path={self.logs / 'audit.log'}",
                "--audit-log-maxsize=200", "--audit-log-maxbackup=1",
                # API aggregation, so that an extension API server (KEDA's external metrics,
                # `up --keda`) can serve under this apiserver: it proxies as the front-proxy
                # client and passes the caller on in these headers.
                f"--requestheader-client-ca-file={certs.front_proxy_ca_cert}",
                f"--requestheader-allowed-names={pki.FRONT_PROXY_CLIENT}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={certs.path(pki.FRONT_PROXY_CLIENT + '.crt')}",
                f"--proxy-client-key-file={certs.path(pki.FRONT_PROXY_CLIENT + '.key')}",
            ],
            "kube-controller-manager": [
                str(bin_dir / "kube-controller-manager"), *component_auth,
                f"--secure-port={ports['kube-controller-manager']}",
                f"--cert-dir={self.root / 'pki' / 'kcm'}",
                f"--service-account-private-key-file={certs.path('sa.key')}",
                f"--root-ca-file={certs.ca_cert}",
                f"--cluster-signing-cert-file={certs.ca_cert}",
                f"--cluster-signing-key-file={certs.path('ca.key')}",
                "--controllers=*", "--profiling=false",
            ],
            "kube-scheduler": [
                str(bin_dir / "kube-scheduler"), *component_auth,
                f"--secure-port={ports['kube-scheduler']}",
                f"--cert-dir={self.root / 'pki' / 'scheduler'}", "--profiling=false",
            ],
            "kwok": [
                str(bin_dir / "kwok"), f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.0.0.0/16", "--node-ip=10.0.0.1",
                # Renew node leases like a kubelet; without them the node controller marks
                # every node NotReady after its 40 s grace period, and the pods with them.
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{ports['kwok']}",
                f"--config={self.root / 'kwok-stages.yaml'}",
            ],
        }  # fmt: skip

    def _start(
        self, name: str, argv: list[str], ready: object, env: dict[str, str] | None = None
    ) -> None:
        _log(f"starting {name}")
        log_path = self.logs / f"{name}.log"
        with open(log_path, "ab") as log:
            # A session of its own: the cluster outlives `make cluster-up`, and Ctrl-C in
            # the terminal that started it does not take it down.
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
                env=env,
            )
        self.state.pids[name] = proc.pid
        self._write_state()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._fail(name, f"exited with code {proc.returncode}", log_path)
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.2)
        self._fail(name, f"not ready after {START_TIMEOUT_S:.0f}s", log_path)

    def _fail(self, name: str, cause: str, log_path: Path) -> None:
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        if any("address already in use" in line for line in tail):
            cause = f"{cause}: {PORT_TAKEN}"
        print(f"---- last lines of {log_path} ----", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
        print("---- end of log ----", file=sys.stderr)
        raise StepFailed(
            f"start {name}", cause, f"read {log_path}; the half-started cluster was torn down"
        )

    # -- readiness probes ---------------------------------------------------------------
    def _http_ok(self, port: int, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _https_ok(self, port: int, path: str, context: ssl.SSLContext | None = None) -> bool:
        if context is None:  # components' self-signed serving certs; loopback only
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            url = f"https://127.0.0.1:{port}{path}"
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _apiserver_ready(self) -> bool:
        port = self.state.ports.get("kube-apiserver")
        if port is None or not (self.root / "pki" / "admin.crt").exists():
            return False
        context = ssl.create_default_context(cafile=str(self.root / "pki" / "ca.crt"))
        pki_dir = self.root / "pki"
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        return self._https_ok(port, "/readyz", context)

    # -- cluster contents ---------------------------------------------------------------
    def _write_kubeconfig(self, certs: pki.Pki, port: int) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sloscale-local",
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "certificate-authority": str(certs.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "sloscale-admin",
                    "user": {
                        "client-certificate": str(certs.path("admin.crt")),
                        "client-key": str(certs.path("admin.key")),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "sloscale-local",
                    "context": {"cluster": "sloscale-local", "user": "sloscale-admin"},
                }
            ],
            "current-context": "sloscale-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    def _create_nodes(self) -> None:
        manifests = {"apiVersion": "v1", "kind": "List", "items": node_manifests(self.pool)}
        self.kubectl("apply", "-f", "-", input=json.dumps(manifests))

    def _wait_nodes_ready(self) -> None:
        total = self.pool.gpu_nodes + self.pool.cpu_nodes
        result = self.kubectl(
            "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=60s", check=False
        )
        if result.returncode != 0:
            self._fail(
                "kwok", f"{total} nodes not Ready: {result.stderr.strip()}", self.logs / "kwok.log"
            )

    # -- stopping and state -------------------------------------------------------------
    def _stop(self, name: str, pid: int) -> None:
        _log(f"stopping {name}")
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)

    def _read_state(self) -> State:
        try:
            return State(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return State()

    def _write_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(self.state), indent=1))
