"""Build the pinned control-plane binaries from their Go modules into a shared cache."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import StepFailed

HACK_DIR = Path(__file__).resolve().parent.parent
GO_DIR = HACK_DIR / "go"
KUBERNETES_VERSION = "v1.36.3"
HELM_VERSION = "v3.22.0"


@dataclass(frozen=True)
class GoBuild:
    """One `go build` run: a module folder and the main packages it yields."""

    module_dir: str
    packages: tuple[str, ...]
    ldflags: str = ""


def _k8s_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    sets = {
        "k8s.io/component-base/version.gitVersion": KUBERNETES_VERSION,
        "k8s.io/component-base/version.gitMajor": major,
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "k8s.io/client-go/pkg/version.gitVersion": KUBERNETES_VERSION,
        "k8s.io/client-go/pkg/version.gitMajor": major,
        "k8s.io/client-go/pkg/version.gitMinor": minor,
    }
    return "-s -w " + " ".join(f"-X {k}={v}" for k, v in sets.items())


BUILDS = (
    GoBuild(
        "k8s",
        (
            "./cmd/etcd",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "k8s.io/kubernetes/cmd/kubectl",
            "sigs.k8s.io/kwok/cmd/kwok",
        ),
        _k8s_ldflags(),
    ),
    GoBuild(
        "helm",
        ("helm.sh/helm/v3/cmd/helm",),
        f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    ),
    GoBuild("kubeconform", ("github.com/yannh/kubeconform/cmd/kubeconform",), "-s -w"),
)

BINARIES = tuple(pkg.rstrip("/").rsplit("/", 1)[-1] for b in BUILDS for pkg in b.packages)


@dataclass(frozen=True)
class Toolset:
    """Binaries built and cached together, in a folder keyed by their own pins only.

    Each toolset hashes only its own module folders under hack/go, so adding or bumping one
    (KEDA) never invalidates another's cache (the half-hour Kubernetes build).
    """

    name: str  # the cache folder's prefix, e.g. k8s-v1.36.3
    builds: tuple[GoBuild, ...]
    recipe: object  # hashed as data (its repr): versions, builds, files copied
    binaries: tuple[str, ...]  # what bin/ holds once finished
    data_dir: str = ""  # a folder of YAML files the install must hold ("": binaries only)
    finish: Callable[[Path], None] = lambda install: None  # fills data_dir, names binaries

    @property
    def module_dirs(self) -> frozenset[str]:
        return frozenset(build.module_dir for build in self.builds)


def cache_root() -> Path:
    return Path(os.environ.get("SLOSCALE_CACHE", Path.home() / ".cache" / "sloscale"))


def _pin_digest(go_version: str, toolset: Toolset) -> str:
    """Hash of everything that decides the binaries: pins, this recipe, the Go release."""
    digest = hashlib.sha256(go_version.encode())
    for path in sorted(GO_DIR.rglob("*")):
        relative = path.relative_to(GO_DIR)
        if path.is_file() and relative.parts[0] in toolset.module_dirs:
            digest.update(str(relative).encode())
            digest.update(path.read_bytes())
    # The recipe as data, not this file's bytes: editing the code around it keeps the cache.
    digest.update(repr(toolset.recipe).encode())
    return digest.hexdigest()[:12]


def _go_version() -> str:
    if shutil.which("go") is None:
        raise StepFailed(
            "check Go toolchain",
            "`go` is not on PATH",
            "install Go 1.26 or newer (https://go.dev/dl/) and run `make cluster-up` again",
        )
    out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def install_dir(toolset: Toolset | None = None) -> Path:
    """The cache folder for this exact set of pins (may not exist yet)."""
    toolset = toolset or K8S
    return cache_root() / f"{toolset.name}-{_pin_digest(_go_version(), toolset)}"


def cached_install(toolset: Toolset | None = None) -> Path | None:
    """The complete cached install, or None when anything is missing."""
    toolset = toolset or K8S
    root = install_dir(toolset)
    complete = all(os.access(root / "bin" / name, os.X_OK) for name in toolset.binaries) and (
        not toolset.data_dir or any((root / toolset.data_dir).glob("*.yaml"))
    )
    return root if complete else None


def _log(message: str) -> None:
    print(f"[build] {message}", file=sys.stderr, flush=True)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=readonly -buildvcs=false").strip()
    return env


def _download(build: GoBuild) -> None:
    _log(f"downloading Go modules for {build.module_dir} (cached in $(go env GOMODCACHE))")
    result = subprocess.run(
        ["go", "mod", "download"],
        cwd=GO_DIR / build.module_dir,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StepFailed(
            f"download Go modules ({build.module_dir})",
            result.stderr.strip()[-2000:],
            "check that the Go module proxy is reachable (GOPROXY) and that "
            f"hack/go/{build.module_dir}/go.sum is intact; then run `make cluster-up` again",
        )


def _package_count(build: GoBuild) -> int:
    result = subprocess.run(
        ["go", "list", "-deps", *build.packages],
        cwd=GO_DIR / build.module_dir,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return len(result.stdout.split()) if result.returncode == 0 else 0


def _compile(build: GoBuild, out_dir: Path, step: str) -> None:
    total = _package_count(build)
    names = ", ".join(p.rsplit("/", 1)[-1] for p in build.packages)
    _log(f"{step} compiling {names} ({total} packages; the first build takes many minutes)")
    cmd = ["go", "build", "-v", "-trimpath", "-ldflags", build.ldflags, "-o", f"{out_dir}/"]
    proc = subprocess.Popen(
        [*cmd, *build.packages],
        cwd=GO_DIR / build.module_dir,
        env=_go_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []  # `go build -v` names each package as it compiles it
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    started = time.monotonic()
    while reader.is_alive():
        reader.join(timeout=15)
        pct = f" ({min(len(lines), total) * 100 // total}%)" if total else ""
        elapsed = time.monotonic() - started
        _log(f"{step} {names}: {len(lines)}/{total} packages{pct}, {elapsed:.0f}s")
    if proc.wait() != 0:
        raise StepFailed(
            f"compile {names}",
            "".join(lines[-40:]),
            "read the compiler output above; a stale cache is cleared with `make cluster-clean`",
        )


# kwok's own stage definitions, shipped in its Go module: a realistic pod lifecycle (create,
# init containers, ready, delete) and node initialisation with lease heartbeats.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/general/pod-create.yaml",
    "kustomize/stage/pod/general/pod-init-container-running.yaml",
    "kustomize/stage/pod/general/pod-init-container-completed.yaml",
    "kustomize/stage/pod/general/pod-ready.yaml",
    "kustomize/stage/pod/general/pod-complete.yaml",
    "kustomize/stage/pod/general/pod-delete.yaml",
)


def module_source(module_dir: str, module: str) -> Path:
    """Where the Go module cache holds a pinned dependency's source (after `go mod download`)."""
    result = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", module],
        cwd=GO_DIR / module_dir,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    source = Path(result.stdout.strip())
    if result.returncode != 0 or not source.is_dir():
        raise StepFailed(f"find {module}", result.stderr.strip(), "run `make cluster-clean`")
    return source


def copy_module_files(source: Path, files: tuple[str, ...], out_dir: Path, step: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for relative in files:
        if not (source / relative).is_file():
            raise StepFailed(step, f"{source / relative} not found", "run `make cluster-clean`")
        shutil.copyfile(source / relative, out_dir / Path(relative).name)


def _copy_kwok_stages(install: Path) -> None:
    source = module_source("k8s", "sigs.k8s.io/kwok")
    copy_module_files(source, KWOK_STAGE_FILES, install / "kwok-stages", "copy kwok stages")


K8S = Toolset(
    name=f"k8s-{KUBERNETES_VERSION}",
    builds=BUILDS,
    # Exactly what the key hashed before toolsets existed: the Kubernetes cache keeps its name.
    recipe=(KUBERNETES_VERSION, HELM_VERSION, BUILDS, KWOK_STAGE_FILES),
    binaries=BINARIES,
    data_dir="kwok-stages",
    finish=_copy_kwok_stages,
)

# The kubelet of the real node (`up --real-node`), from the same pinned module as the control
# plane but cached apart: its recipe differs, so adding it left the Kubernetes key (and its
# half-hour build) as it was, and only clusters with a real node pay for this build.
KUBELET_BUILD = GoBuild("k8s", ("k8s.io/kubernetes/cmd/kubelet",), _k8s_ldflags())
KUBELET = Toolset(
    name=f"kubelet-{KUBERNETES_VERSION}",
    builds=(KUBELET_BUILD,),
    recipe=(KUBERNETES_VERSION, KUBELET_BUILD),
    binaries=("kubelet",),
)


def ensure_install(toolset: Toolset | None = None) -> Path:
    """Return the toolset's cache folder (bin/ and its data), building whatever is missing."""
    toolset = toolset or K8S
    cached = cached_install(toolset)
    if cached is not None:
        return cached
    final = install_dir(toolset)
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / ".build.lock", "w") as lock:
        # Worktrees and CI share the cache: one builds, the others wait and reuse it.
        if not _try_lock(lock):
            _log(f"another build of {final.name} is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        cached = cached_install(toolset)
        return cached if cached is not None else _build(toolset, final)


def _try_lock(lock: object) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[arg-type]
    except BlockingIOError:
        return False
    return True


def _build(toolset: Toolset, final: Path) -> Path:
    started = time.monotonic()
    _log(f"building {', '.join(toolset.binaries)} into {final}")
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".partial-") as tmp:
        bin_out = Path(tmp) / "bin"
        for index, build in enumerate(toolset.builds, start=1):
            _download(build)
            _compile(build, bin_out, f"[{index}/{len(toolset.builds)}]")
        toolset.finish(Path(tmp))
        missing = [name for name in toolset.binaries if not (bin_out / name).exists()]
        if missing:
            raise StepFailed("collect binaries", f"not produced: {missing}", "report this as a bug")
        if final.exists():
            shutil.rmtree(final)  # an incomplete install left by an interrupted build
        os.replace(tmp, final)
        os.mkdir(tmp)  # TemporaryDirectory's cleanup expects it
    _log(f"all binaries ready in {time.monotonic() - started:.0f}s: {final}")
    return final
