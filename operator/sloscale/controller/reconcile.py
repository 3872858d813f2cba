"""One idempotent reconcile: spec -> rendered children -> server-side apply -> status."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sloscale.api import AUTOSCALER_FIELD_MANAGER, FIELD_MANAGER, GROUP, SERVICE_LABEL
from sloscale.api.spec import InferenceServiceSpec, SpecError, parse_object
from sloscale.api.status import Observed, Problem, compute_status
from sloscale.autoscale.conflicts import competing_autoscaler
from sloscale.controller.drift import contains
from sloscale.controller.retry import RetryLater
from sloscale.kube.errors import ApplyError
from sloscale.kube.status import write_status as write_status_retrying
from sloscale.render.renderer import Manifest, render_children
from sloscale.render.templates import TemplateError, TemplateSet
from sloscale.render.values import RenderOptions, service_url

log = logging.getLogger(__name__)
SERVICEMONITOR_CRD = "servicemonitors.monitoring.coreos.com"
# Children that come and go with the spec; deleted when no longer rendered.
OPTIONAL_CHILDREN = (("policy/v1", "PodDisruptionBudget"),
                     ("monitoring.coreos.com/v1", "ServiceMonitor"))

# On each child we apply: a digest of the manifest we last applied to it. With it, a child
# that holds every rendered field and carries this rendering's digest needs no apply: our
# last apply was this very manifest, so no field we used to set is left to drop.
APPLIED_ANNOTATION = f"{GROUP}/applied"

# Services whose latest rendering is kept for drift checks: more than a fleet, so that a
# restart renders each service once for its child events (three per service), not three times.
RENDER_CACHE_SIZE = 10_000

# (type Normal|Warning, reason, message) posted on the InferenceService.
PostEvent = Callable[[str, str, str], None]


class Cluster(Protocol):
    def get(self, api_version: str, kind: str, namespace: str,
            name: str) -> dict[str, Any] | None: ...
    def observed(self, api_version: str, kind: str, namespace: str,
                 name: str) -> dict[str, Any] | None: ...
    def apply(self, manifest: dict[str, Any],
              field_manager: str = FIELD_MANAGER) -> dict[str, Any]: ...
    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...
    def merge_patch(self, manifest: dict[str, Any], patch: dict[str, Any]) -> None: ...
    def secret_exists(self, namespace: str, name: str) -> bool: ...
    def crd_exists(self, name: str) -> bool: ...
    def hpas_near(self, namespace: str, deployment: str) -> list[dict[str, Any]]: ...
    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def newest(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch_status(self, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None) -> None: ...


class RenderCache:
    """Each service's latest rendering, with what rendering read: its spec and options.

    A service's child events come in a burst (its children created, then its Deployment's
    rollout), and at a restart every child arrives once: each is checked for drift against the
    rendering the first of them made (a reconcile renders apart). One entry per service (by
    namespace, name and uid; a new spec replaces the old rendering), the least recently used
    dropped beyond `size` services and a deleted one's at once (`forget`; a drift check
    rendering at that moment may put it back, until the LRU drops it). Entries are shared:
    read them, never change them. Handler threads share the cache, hence the lock.
    """

    def __init__(self, size: int = RENDER_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, ...], tuple[Any, list[Manifest] | None]] = \
            OrderedDict()
        self._lock = threading.Lock()

    def get(self, service: tuple[str, ...], inputs: Any,
            render: Callable[[], list[Manifest] | None]) -> list[Manifest] | None:
        with self._lock:
            entry = self._entries.get(service)
            if entry is not None and entry[0] == inputs:
                self._entries.move_to_end(service)
                return entry[1]
        children = render()
        with self._lock:
            self._entries[service] = (inputs, children)
            self._entries.move_to_end(service)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return children

    def forget(self, service: tuple[str, ...]) -> None:
        """A deleted service's rendering goes: the cache holds the live fleet, not its past."""
        with self._lock:
            self._entries.pop(service, None)


class ServiceLocks:
    """One lock per service: its reconciles and status refreshes run one at a time.

    Handlers of different objects run on parallel threads, so a reconcile started by one child's
    drift can overlap the refresh for its Deployment's last rollout event. Unserialized, the
    status computed from the older Deployment (the reconcile's apply answer, taken before the
    rollout ended) could be written after the one computed from the newer, and with no event
    left to correct it Ready stayed False. Serialized, a refresh starts after its event was
    indexed and after any reconcile begun before it: the last status written is the newest.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # uid -> lock, holders
        self._lock = threading.Lock()

    @contextmanager
    def held(self, uid: str) -> Iterator[None]:
        """A service's lock, kept only while someone holds or waits for it: the dict holds
        the services being worked on, not every service ever seen."""
        with self._lock:
            lock, holders = self._locks.get(uid) or (threading.Lock(), 0)
            self._locks[uid] = (lock, holders + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, holders = self._locks[uid]
                if holders == 1:
                    del self._locks[uid]
                else:
                    self._locks[uid] = (lock, holders - 1)

    def __contains__(self, uid: str) -> bool:
        with self._lock:
            return uid in self._locks


@dataclass
class Settings:
    templates: TemplateSet
    storage_initializer_image: str
    said_no_servicemonitor: bool = field(default=False)
    render_cache: RenderCache = field(default_factory=RenderCache)
    service_locks: ServiceLocks = field(default_factory=ServiceLocks)
    retries: RetryLater = field(default_factory=RetryLater)


@dataclass(frozen=True)
class Outcome:
    status: dict[str, Any]
    problem: Problem | None
    permanent: bool  # retrying cannot help until the object changes


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what changes on every write or by others' controllers (status)."""
    volatile = ("resourceVersion", "managedFields", "generation")
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in volatile}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def owns_replicas(deployment: dict[str, Any], manager: str) -> bool:
    """Whether `manager` owns spec.replicas according to the managed fields."""
    for entry in deployment.get("metadata", {}).get("managedFields") or []:
        fields = (entry.get("fieldsV1") or {}).get("f:spec", {})
        if entry.get("manager") == manager and "f:replicas" in fields:
            return True
    return False


def _hand_replicas_to_autoscaler(cluster: Cluster, child: Manifest,
                                 before: dict[str, Any] | None) -> None:
    """Autoscaling was just enabled: give the current replicas to the autoscaler's manager.

    Dropping a field we alone own from our apply would reset it to the default (1); with
    the autoscaler as co-owner first, the running replica count stays.
    """
    if child["kind"] != "Deployment" or "replicas" in child["spec"] or before is None:
        return
    if not owns_replicas(before, FIELD_MANAGER):
        return
    meta = child["metadata"]
    cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                   "spec": {"replicas": before["spec"]["replicas"]}},
                  field_manager=AUTOSCALER_FIELD_MANAGER)


def repair_patch(rendered: Manifest, resource_version: str) -> dict[str, Any]:
    """A JSON merge patch that sets what we render on the read version of the object.

    Unlike apply, a merge patch replaces a list whole: an item another manager added to a
    list we render goes. Keys others set outside what we render (extra labels, a Service's
    clusterIP, the autoscaler's replicas) are left as they are.
    """
    meta = {key: rendered["metadata"][key] for key in ("labels", "annotations",
                                                        "ownerReferences")
            if key in rendered["metadata"]}
    rest = {k: v for k, v in rendered.items() if k not in ("apiVersion", "kind", "metadata")}
    return {"metadata": {**meta, "resourceVersion": resource_version}, **rest}


def _apply_or_repair(cluster: Cluster, child: Manifest) -> dict[str, Any]:
    """Server-side apply; when a hand edit made it invalid in place, merge-patch and apply.

    Apply cannot drop a field another manager owns: a Service port renumbered by hand stays
    next to ours, and the two now share a name (422). If our own manifest is what is
    invalid, the patch is refused too and the object stays as it is.
    """
    try:
        return cluster.apply(child)
    except ApplyError as error:
        if error.status != 422:
            raise
        meta = child["metadata"]
        live = cluster.get(child["apiVersion"], child["kind"], meta["namespace"], meta["name"])
        if live is None:
            raise
        log.info("%s %s/%s: apply invalid against hand edits (%s); patching", child["kind"],
                 meta["namespace"], meta["name"], error)
        cluster.merge_patch(child, repair_patch(child, live["metadata"]["resourceVersion"]))
        return cluster.apply(child)


def with_applied_digest(child: Manifest) -> Manifest:
    """A copy of `child` annotated with the digest of its own content (APPLIED_ANNOTATION)."""
    digest = hashlib.sha256(json.dumps(child, sort_keys=True).encode()).hexdigest()[:16]
    meta = child["metadata"]
    annotations = {**(meta.get("annotations") or {}), APPLIED_ANNOTATION: digest}
    return {**child, "metadata": {**meta, "annotations": annotations}}


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    found = comparable(obj)
    annotations = {k: v for k, v in (found["metadata"].get("annotations") or {}).items()
                   if k != APPLIED_ANNOTATION}
    return {**found, "metadata": {**found["metadata"], "annotations": annotations}}


def apply_children(cluster: Cluster, children: list[Manifest],
                   post: PostEvent) -> dict[str, dict[str, Any]]:
    """Apply what drifted; the children as they now are, by kind (the apply's answers, or
    the watched version where nothing needed writing)."""
    created, updated = [], []
    live: dict[str, dict[str, Any]] = {}
    for rendered in children:
        child = with_applied_digest(rendered)
        meta = child["metadata"]
        before = cluster.observed(child["apiVersion"], child["kind"], meta["namespace"],
                                  meta["name"])
        if before is not None and contains(before, child):
            live[child["kind"]] = before  # converged: an apply would write nothing new
            continue
        _hand_replicas_to_autoscaler(cluster, child, before)
        after = live[child["kind"]] = _apply_or_repair(cluster, child)
        what = f"{child['kind']} {meta['name']}"
        if before is None:
            created.append(what)
        elif _content(before) != _content(after):  # the digest alone is no news
            updated.append(what)
    # One Event per reason and reconcile: a new service costs the Events API one write, not
    # one per child (at 20 creations a second those writes queued the creations themselves).
    if created:
        post("Normal", "Created", "created " + ", ".join(created))
    if updated:
        post("Normal", "Updated", "put back or changed " + ", ".join(updated))
    return live


def _prune(cluster: Cluster, name: str, namespace: str, uid: str, children: list[Manifest],
           post: PostEvent) -> None:
    """Delete optional children we own that the spec no longer renders."""
    rendered = {(c["apiVersion"], c["kind"]) for c in children}
    for api_version, kind in OPTIONAL_CHILDREN:
        if (api_version, kind) in rendered:
            continue
        if kind == "ServiceMonitor" and not cluster.crd_exists(SERVICEMONITOR_CRD):
            continue
        existing = cluster.observed(api_version, kind, namespace, name)
        owners = (existing or {}).get("metadata", {}).get("ownerReferences") or []
        if any(owner.get("uid") == uid for owner in owners):
            cluster.delete(api_version, kind, namespace, name)
            post("Normal", "Deleted", f"deleted {kind} {name}: no longer needed")


def _servicemonitor_wanted(cluster: Cluster, settings: Settings) -> bool:
    if cluster.crd_exists(SERVICEMONITOR_CRD):
        return True
    if not settings.said_no_servicemonitor:
        settings.said_no_servicemonitor = True
        log.warning("no %s CRD: ServiceMonitors are skipped until it is installed",
                    SERVICEMONITOR_CRD)
    return False


def _converge(cluster: Cluster, settings: Settings, body: dict[str, Any],
              spec: InferenceServiceSpec, post: PostEvent) -> dict[str, dict[str, Any]]:
    meta = body["metadata"]
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    secret = spec.model.credentials_secret_name
    if secret and not cluster.secret_exists(namespace, secret):
        raise _Blocked(Problem("SecretNotFound",
                               f"spec.model.credentialsSecretName: Secret {secret} not found"))
    try:
        children = _render(cluster, settings, body, spec)
    except TemplateError as error:
        raise _Blocked(Problem("RenderFailed", str(error))) from error
    try:
        live = apply_children(cluster, children, post)
    except ApplyError as error:
        raise _Blocked(Problem("ApplyFailed", str(error))) from error
    _prune(cluster, name, namespace, uid, children, post)
    return live


def _scaled_by(cluster: Cluster, body: dict[str, Any], autoscaled: bool) -> str | None:
    """Another autoscaler aimed at the Deployment while ours is off (none counts while ours
    is on: the autoscaler then steps aside itself, AutoscalerConflict)."""
    if autoscaled:
        return None
    meta = body["metadata"]
    return competing_autoscaler(meta["name"], cluster.hpas_near(meta["namespace"], meta["name"]),
                                [])


def _options(cluster: Cluster, settings: Settings, body: dict[str, Any],
             autoscaled: bool) -> RenderOptions:
    return RenderOptions(storage_initializer_image=settings.storage_initializer_image,
                         servicemonitor=_servicemonitor_wanted(cluster, settings),
                         scaled_by=_scaled_by(cluster, body, autoscaled))


def _render(cluster: Cluster, settings: Settings, body: dict[str, Any],
            spec: InferenceServiceSpec, options: RenderOptions | None = None) -> list[Manifest]:
    meta = body["metadata"]
    options = options or _options(cluster, settings, body, spec.autoscaled)
    return render_children(meta["name"], meta["namespace"], meta["uid"], spec,
                           settings.templates, options)


def rendered_children(cluster: Cluster, settings: Settings,
                      body: dict[str, Any]) -> list[Manifest] | None:
    """What a reconcile would apply for `body` now; None when its spec or templates fail.

    Read-only: the result may be shared with other callers (RenderCache)."""
    meta = body["metadata"]
    autoscaled = bool((body.get("spec", {}).get("autoscaling") or {}).get("enabled"))
    options = _options(cluster, settings, body, autoscaled)
    service = (meta["namespace"], meta["name"], meta["uid"])
    inputs = (json.dumps(body.get("spec"), sort_keys=True), options)

    def render() -> list[Manifest] | None:
        try:
            return _render(cluster, settings, body, parse_object(body), options)
        except (SpecError, TemplateError):
            return None

    return settings.render_cache.get(service, inputs, render)


class _Blocked(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def reconcile(cluster: Cluster, settings: Settings, body: dict[str, Any], post: PostEvent,
              now: datetime) -> Outcome:
    """Converge the children of one InferenceService and write its status."""
    problem, permanent, desired = None, False, 0
    deployment = None
    try:
        spec = parse_object(body)
        desired = spec.replicas
        deployment = _converge(cluster, settings, body, spec, post).get("Deployment")
    except SpecError as error:
        problem, permanent = Problem("InvalidSpec", str(error)), True
    except _Blocked as blocked:
        problem = blocked.problem
    if problem is not None:
        post("Warning", problem.reason, problem.message)
    status = write_status(cluster, body, problem, desired, now, deployment)
    return Outcome(status, problem, permanent)


def _status_of(cluster: Cluster, body: dict[str, Any], problem: Problem | None, desired: int,
               now: datetime, deployment: dict[str, Any] | None) -> dict[str, Any]:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    if deployment is None:
        deployment = cluster.observed("apps/v1", "Deployment", namespace, name)
    if deployment is not None and problem is None:
        desired = int(deployment.get("spec", {}).get("replicas", desired) or 0)
    observed = Observed(int(meta.get("generation", 0) or 0), deployment, problem)
    return compute_status(observed, body.get("status") or {}, f"{SERVICE_LABEL}={name}",
                          service_url(name, namespace), desired, now)


def refresh_status(cluster: Cluster, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Status alone, for a service whose children match what it renders and that has no
    problem (drift.status_only_refresh_ok): no apply. The Deployment is the watched one, not
    the event's: a later event of it may already have been seen (and written from)."""
    return write_status(cluster, body, None, 0, now)


def write_status(cluster: Cluster, body: dict[str, Any], problem: Problem | None, desired: int,
                 now: datetime, deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the status on the version it was computed from; on a 409, recompute and retry.

    `deployment`: the Deployment as the apply just answered, else the watched one is read.

    A newer generation is left alone: the spec changed, and its own reconcile reports it.
    A status that would not change is not written (most child events change nothing).
    """
    generation = body["metadata"].get("generation")
    computed: dict[str, Any] = {}

    def compute(current: dict[str, Any]) -> dict[str, Any] | None:
        if current["metadata"].get("generation") != generation:
            return None
        computed["status"] = status = _status_of(cluster, current, problem, desired, now,
                                                 deployment)
        previous = current.get("status") or {}
        if all(previous.get(key) == value for key, value in status.items()):
            return None
        return status

    write_status_retrying(cluster, body, compute)
    return computed["status"]
