"""A real node in the local cluster (`up --real-node`): containerd and a kubelet.

Everything lives under the cluster's folder, in node/: containerd's config, root, state and
socket, the kubelet's root and certificates, the CNI config and its IP allocations. Pods get
addresses on a bridge of their own (podnet.py); no registry is needed: the sandbox image and
every pod image are built here with podman and imported into containerd (images.py).

Settings this machine needs (found by trying): runc (crun refuses the hybrid cgroup layout),
`restrict_oom_score_adj` (a negative oom_score_adj is refused; without it every sandbox fails
with "can't get final child's PID from pipe"), and in the kubelet `failCgroupV1: false`,
cgroupfs, no QoS cgroups and no node-allocatable enforcement.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import build, images, pki, podnet
from .errors import StepFailed

if TYPE_CHECKING:
    from .cluster import LocalCluster

NODE_NAME = "real-node"
LABEL = "sloscale.dev/real-node"
TAINT = {"key": LABEL, "value": "true", "effect": "NoSchedule"}
# What a pod needs to land on the real node: the label to select it, the taint to tolerate.
NODE_SELECTOR = {LABEL: "true"}
TOLERATION = {"key": LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
COMPONENTS = ("containerd", "kubelet")
CNI_BIN_DIR = Path("/usr/lib/cni")  # where Debian's containernetworking-plugins puts them
CNI_PLUGINS = ("bridge", "host-local", "loopback")
DRAIN_TIMEOUT_S = 60.0
NODE_READY_TIMEOUT_S = 90.0
KUBECTL_TIMEOUT_S = 30.0


def node_dir(local: LocalCluster) -> Path:
    return local.root / "node"


def socket_path(local: LocalCluster) -> Path:
    return node_dir(local) / "containerd" / "containerd.sock"


# -- what it stands on ----------------------------------------------------------------------
def check_tools() -> None:
    """containerd, ctr, runc and the CNI plugins: `make system-deps` installs them."""
    missing = [
        tool
        for tool in ("containerd", "ctr", "runc", "ip", "iptables")
        if shutil.which(tool) is None
    ]
    missing += [str(CNI_BIN_DIR / p) for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).exists()]
    if missing:
        raise StepFailed(
            "check the real node's tools",
            f"missing: {', '.join(missing)}",
            "run `make system-deps` (apt-get install containerd runc containernetworking-plugins)",
        )


# -- configuration files ----------------------------------------------------------------------
def containerd_config(base: Path, sandbox_image: str, cni_conf_dir: Path) -> str:
    """containerd's own config: root, state and socket under `base`, CRI with runc."""
    cri = {
        "sandbox_image": sandbox_image,
        "restrict_oom_score_adj": True,
        # The pods' network namespaces under our state folder, not /var/run/netns.
        "netns_mounts_under_state_dir": True,
        "stream_server_address": "127.0.0.1",
        "stream_server_port": "0",
        "enable_selinux": False,
        "containerd": {
            "snapshotter": "overlayfs",
            "default_runtime_name": "runc",
            "runtimes": {
                "runc": {
                    "runtime_type": "io.containerd.runc.v2",
                    "options": {
                        "BinaryName": shutil.which("runc") or "runc",
                        "SystemdCgroup": False,
                    },
                }
            },
        },
        "cni": {"bin_dir": str(CNI_BIN_DIR), "conf_dir": str(cni_conf_dir), "max_conf_num": 1},
    }
    config = {
        "version": 2,
        "root": str(base / "root"),
        "state": str(base / "state"),
        "grpc": {"address": str(base / "containerd.sock")},
        "ttrpc": {"address": str(base / "containerd.sock.ttrpc")},
        "debug": {"address": ""},
        "metrics": {"address": ""},
        "plugins": {
            "io.containerd.grpc.v1.cri": cri,
            "io.containerd.internal.v1.opt": {"path": str(base / "opt")},
        },
    }
    return _toml(config)


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    """The small TOML subset containerd's config needs: scalars, lists of strings, tables."""
    lines, tables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key)
        text += f"\n[{name}]\n" + _toml(value, name)
    return text


def kubelet_config(local: LocalCluster, ports: dict[str, int], node_ip: str) -> dict[str, Any]:
    base = node_dir(local)
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # The API server reaches the kubelet (logs, exec) at the node's address, which may not
        # be a loopback one: the bridge's, on the host's side.
        "address": node_ip,
        "port": ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet-healthz"],
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(local.root / "pki" / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{socket_path(local)}",
        # This machine: hybrid cgroups v1, no systemd, no negative oom_score_adj.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "registerWithTaints": [TAINT],
        "podLogsDir": str(local.logs / "pods"),
        "volumePluginDir": str(base / "kubelet" / "volume-plugins"),
        # The disk is shared with other work: never evict pods or collect images for it.
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "maxPods": 30,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }  # fmt: skip


def _kubelet_kubeconfig(local: LocalCluster, certs: pki.Pki) -> dict[str, Any]:
    admin = yaml.safe_load(local.kubeconfig.read_text())
    user = f"system:node:{NODE_NAME}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": user, "user": {
            "client-certificate": str(certs.path(f"{NODE_NAME}.crt")),
            "client-key": str(certs.path(f"{NODE_NAME}.key"))}}],
        "contexts": [{"name": "node", "context": {"cluster": admin["clusters"][0]["name"],
                                                  "user": user}}],
        "current-context": "node",
    }  # fmt: skip


# -- starting ---------------------------------------------------------------------------------
def is_running(local: LocalCluster) -> bool:
    from .cluster import _alive

    pids = local.state.pids
    return all(name in pids and _alive(pids[name]) for name in COMPONENTS)


def ctr(local: LocalCluster, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """containerd's own client on this node's socket, in the namespace the CRI uses."""
    return subprocess.run(
        ["ctr", "--address", str(socket_path(local)), "--namespace", "k8s.io", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def start(local: LocalCluster) -> None:
    """Start containerd and a kubelet registered as NODE_NAME (idempotent), then wait Ready."""
    if is_running(local):
        return
    from .cluster import free_port

    check_tools()
    kubelet_bin = build.ensure_install(build.KUBELET) / "bin" / "kubelet"
    sandbox_image = images.ensure_pause()
    base = node_dir(local)
    stop(local)  # whatever an earlier, half-dead real node left
    shutil.rmtree(base / "cni" / "ipam", ignore_errors=True)  # a new node holds no address
    for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (local.logs / "pods").mkdir(parents=True, exist_ok=True)
    name = podnet.network_name(local.root)
    subnet = podnet.pick_subnet(local.root, podnet.routed_networks())
    conflist = podnet.cni_conflist(name, subnet, base / "cni" / "ipam")
    (base / "cni" / "net.d" / "10-sloscale.conflist").write_text(json.dumps(conflist, indent=1))
    (base / "containerd" / "config.toml").write_text(
        containerd_config(base / "containerd", sandbox_image.ref, base / "cni" / "net.d")
    )
    ports = {"kubelet": free_port(), "kubelet-healthz": free_port()}
    local.state.ports.update(ports)
    certs = pki.node_client(local.root / "pki", NODE_NAME)
    node_ip = podnet.gateway(subnet)
    config = kubelet_config(local, ports, node_ip)
    (base / "kubelet-config.yaml").write_text(yaml.safe_dump(config))
    kubeconfig = base / "kubelet.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(_kubelet_kubeconfig(local, certs), sort_keys=False))
    try:
        podnet.create_bridge(name, subnet)
        podnet.route_kubernetes_service(name, local.state.ports["kube-apiserver"])
        local.start_process(
            "containerd",
            ["containerd", "--config", str(base / "containerd" / "config.toml")],
            dict(os.environ),
            lambda: (
                socket_path(local).exists() and ctr(local, "version", timeout=5).returncode == 0
            ),
        )
        images.import_archive(local, sandbox_image.archive)
        local.start_process(
            "kubelet",
            [str(kubelet_bin), f"--config={base / 'kubelet-config.yaml'}",
             f"--kubeconfig={kubeconfig}", f"--root-dir={base / 'kubelet'}",
             f"--cert-dir={base / 'kubelet' / 'pki'}", f"--hostname-override={NODE_NAME}",
             f"--node-ip={node_ip}", f"--node-labels={LABEL}=true"],
            dict(os.environ),
            local.http_probe(ports["kubelet-healthz"], "/healthz"),
        )  # fmt: skip
        _wait_node_ready(local)
    except BaseException:
        with contextlib.suppress(StepFailed):
            stop(local)
        raise


def _wait_node_ready(local: LocalCluster) -> None:
    deadline = time.monotonic() + NODE_READY_TIMEOUT_S
    result = None
    while time.monotonic() < deadline:
        result = local.kubectl(
            "wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=10s", check=False
        )
        if result.returncode == 0:
            return
        time.sleep(1)
    raise StepFailed(
        "real node Ready",
        f"node/{NODE_NAME} not Ready after {NODE_READY_TIMEOUT_S:.0f}s: "
        f"{result.stderr.strip() if result else ''}",
        f"read {local.logs / 'kubelet.log'} and {local.logs / 'containerd.log'}",
    )


# -- stopping ---------------------------------------------------------------------------------
def stop(local: LocalCluster) -> None:
    """Stop the real node and leave nothing behind (idempotent): its pods stopped through the
    kubelet while it runs (so the CNI plugins release their addresses), then the kubelet,
    what is left in containerd, containerd and its shims, the mounts, the bridge."""
    from .cluster import _alive

    base = node_dir(local)
    pids = local.state.pids
    kubelet_alive = "kubelet" in pids and _alive(pids["kubelet"])
    containerd_alive = "containerd" in pids and _alive(pids["containerd"])
    if kubelet_alive and containerd_alive and local.is_running():
        _drain(local)
    local.stop_process("kubelet")
    if containerd_alive:
        _remove_containers(local)
    local.stop_process("containerd")
    _kill_shims(socket_path(local))
    unmount_under(base)
    podnet.teardown(podnet.network_name(local.root))
    if local.is_running():
        local.kubectl("delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false",
                      check=False, timeout=KUBECTL_TIMEOUT_S)  # fmt: skip


def _drain(local: LocalCluster) -> None:
    """Cordon, delete every pod on the node, wait until containerd runs none of them and the
    kubelet has stopped their sandboxes (the IPAM plugin has released every address: a task
    ends before its sandbox's network is torn down, and a sandbox removed later through
    containerd alone would keep its address)."""
    local.kubectl("cordon", NODE_NAME, check=False, timeout=KUBECTL_TIMEOUT_S)
    local.kubectl(
        "delete", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={NODE_NAME}",
        "--grace-period=5", "--wait=false", check=False, timeout=KUBECTL_TIMEOUT_S,
    )  # fmt: skip
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline and (_running_tasks(local) or allocated_addresses(local)):
        time.sleep(0.5)


def allocated_addresses(local: LocalCluster) -> list[str]:
    """The pod addresses the IPAM plugin holds on this node's bridge (one file each)."""
    ipam = node_dir(local) / "cni" / "ipam" / podnet.network_name(local.root)
    return sorted(p.name for p in ipam.glob("*") if p.name[:1].isdigit()) if ipam.is_dir() else []


def _running_tasks(local: LocalCluster) -> list[str]:
    result = ctr(local, "tasks", "ls", timeout=10)
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    return [row[0] for row in rows if len(row) >= 3 and row[2] == "RUNNING"]


def _remove_containers(local: LocalCluster) -> None:
    """Whatever the kubelet left (a stopped sandbox, or all of them when it had died)."""
    for task in ctr(local, "tasks", "ls", "-q", timeout=10).stdout.split():
        ctr(local, "tasks", "delete", "--force", task, timeout=30)
    for container in ctr(local, "containers", "ls", "-q", timeout=10).stdout.split():
        ctr(local, "containers", "delete", container, timeout=30)


def _kill_shims(socket: Path) -> None:
    """containerd's shims outlive it by design: end the ones that serve this node's socket
    (found by their -address argument, so another cluster's and the system's are untouched)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"containerd-shim" in argv[0] and str(socket).encode() in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def mounts_under(base: Path) -> list[str]:
    """Mount points at or below `base` (deepest first), from this process's mount table."""
    prefix = str(base.resolve())
    points = []
    with open("/proc/self/mountinfo") as table:
        for line in table:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_under(base: Path) -> None:
    """Unmount what containerd (rootfs, netns, shm) and the kubelet (volumes) left."""
    for _ in range(3):  # a mount may be stacked on itself (netns, bind mounts)
        points = mounts_under(base) if base.exists() else []
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
    left = mounts_under(base)
    if left:
        raise StepFailed("unmount the real node", f"still mounted: {left}", "umount them by hand")
