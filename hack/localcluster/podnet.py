"""The real node's pod network: a bridge per cluster, its CNI config, and the one DNAT rule.

Pods get addresses on a private bridge of this machine (a free /24 of 10.244.0.0/16, named
after the cluster folder so that clusters of other worktrees keep theirs), from Debian's
bridge and host-local CNI plugins, without NAT: no traffic leaves the machine. The host side
of the bridge (its gateway address) is also the node's address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .errors import StepFailed

CNI_CACHE_DIR = Path("/var/lib/cni/results")  # libcni's cache; containerd 1.6 cannot move it
POD_SUPERNET = ipaddress.ip_network("10.244.0.0/16")
KUBERNETES_SERVICE = ("10.96.0.1", 443)  # the `kubernetes` Service: first of the service range


def network_name(root: Path) -> str:
    """The bridge's (and the CNI network's) name: one per cluster folder, at most 15 chars."""
    return "slo" + hashlib.sha256(str(root).encode()).hexdigest()[:8]


def routed_networks() -> list[ipaddress.IPv4Network]:
    result = subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, text=True)
    networks = []
    for route in json.loads(result.stdout or "[]"):
        dst = route.get("dst", "default")
        if dst != "default":
            networks.append(ipaddress.ip_network(dst, strict=False))
    return networks


def pick_subnet(root: Path, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A /24 of 10.244.0.0/16 no route of this machine overlaps, starting from the folder's
    hash, so that clusters of other worktrees (and their bridges) keep theirs."""
    subnets = list(POD_SUPERNET.subnets(new_prefix=24))[1:]
    start = int(hashlib.sha256(str(root).encode()).hexdigest(), 16) % len(subnets)
    for offset in range(len(subnets)):
        subnet = subnets[(start + offset) % len(subnets)]
        if not any(subnet.overlaps(net) for net in taken):
            return subnet
    raise StepFailed("pick a pod subnet", f"every /24 of {POD_SUPERNET} is routed", "free one")


def cni_conflist(name: str, subnet: ipaddress.IPv4Network, ipam_dir: Path) -> dict[str, Any]:
    """A bridge with the gateway on the host side; host-local addresses; no NAT (no traffic
    leaves this machine)."""
    return {
        "cniVersion": "0.4.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": name,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(subnet), "gateway": gateway(subnet)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def gateway(subnet: ipaddress.IPv4Network) -> str:
    return str(next(subnet.hosts()))


def bridge_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def create_bridge(name: str, subnet: ipaddress.IPv4Network) -> None:
    """The bridge the CNI plugin would make, made first: the kubelet listens on its address.

    A loopback node address is refused by the kubelet ("nodeIP can't be loopback address"),
    and the gateway address is private to this machine all the same."""
    address = f"{gateway(subnet)}/{subnet.prefixlen}"
    for command in (["ip", "link", "add", "name", name, "type", "bridge"],
                    ["ip", "addr", "add", address, "dev", name],
                    ["ip", "link", "set", name, "up"]):  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StepFailed("create the pod bridge", result.stderr.strip(), "run as root")


def _iptables(*args: str, step: str) -> str:
    result = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise StepFailed(step, result.stderr.strip(), "run as root, with iptables installed")
    return result.stdout


def route_kubernetes_service(bridge: str, apiserver_port: int) -> None:
    """Pods reach the API server the in-cluster way, at the `kubernetes` Service's address.

    There is no kube-proxy, and the API server listens on 127.0.0.1 only (an EndpointSlice may
    not hold a loopback address, so the Service has no endpoints). One DNAT rule, for packets
    that come in from this node's bridge only, plays kube-proxy's part for that one Service;
    route_localnet on the bridge lets them reach loopback (the kubelet's KUBE-FIREWALL chain
    lets DNAT'd connections through)."""
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").write_text("1\n")
    address, port = KUBERNETES_SERVICE
    _iptables(
        "-t", "nat", "-A", "PREROUTING", "-i", bridge, "-d", f"{address}/32", "-p", "tcp",
        "--dport", str(port), "-m", "comment", "--comment", f"sloscale {bridge}: kubernetes",
        "-j", "DNAT", "--to-destination", f"127.0.0.1:{apiserver_port}",
        step="route the kubernetes Service to the API server",
    )  # fmt: skip


def _unroute_kubernetes_service(bridge: str) -> None:
    if shutil.which("iptables") is None:
        return
    rules = _iptables("-t", "nat", "-S", "PREROUTING", step="list the node's NAT rules")
    for rule in rules.splitlines():
        words = rule.split()
        if words[:1] == ["-A"] and f"-i {bridge} " in rule:
            # The rule as listed, quoted words (its comment) put back together.
            spec = shlex.split(rule)[1:]
            _iptables("-t", "nat", "-D", *spec, step="delete the node's NAT rule")


def _delete_bridge(name: str) -> None:
    if bridge_exists(name):
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def teardown(bridge: str) -> None:
    """The NAT rule, the bridge (its veths went with the pods' namespaces), the CNI cache."""
    _unroute_kubernetes_service(bridge)
    _delete_bridge(bridge)
    for cached in CNI_CACHE_DIR.glob(f"{bridge}-*"):
        cached.unlink(missing_ok=True)
