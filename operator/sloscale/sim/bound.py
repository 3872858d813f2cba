"""A proven lower bound on the replica-seconds of any schedule that meets the objective.

Proof sketch (docs/design.md has it whole). Let r(t) be the pods able to serve at t (Ready,
or deleted and draining their queue) and alive(t) the pods paid for.
- Serving: for the objective's percentile to hold in window w (N_w arrivals), at least
  m_w = floor(q (N_w - 1)) + 1 of its requests must finish within the target (numpy's
  interpolated percentile is at least the value at rank floor(q (N_w - 1))). A batch holding
  such a request starts after it arrived and ends before its deadline, so lies inside
  I_w = [start_w, end_w + target]. Its batch ran within the target, so it held at most
  s_fast = (target - base) / per_item requests, and a batch of s <= s_fast requests occupies
  its pod (base + per_item s) / s >= 1 / mu seconds per request, with
  mu = s_fast / (base + per_item s_fast) (the most a pod serves in batches that fast). So
  integral of r over I_w >= m_w / mu.
- Paying: a pod that serves at s was created a cold start before it was first Ready (or is
  one of the warm pods of time 0), and is paid for until its queue is empty, so
  alive(t) >= r(s) for every s in [t, t + cold start], and alive(t) >= minReplicas.
With R_b the mean of r over bucket b, both hold for bucket averages, and the smallest
sum of alive over buckets subject to them is a linear program; its optimum is the bound.
It rests on batches lasting their line: with ServiceModel.batch_time_cv > 0 a batch may beat
it, and sim/compare.py claims no bound.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from sloscale.autoscale.policies.base import AutoscalingSpec
from sloscale.sim.service import ServiceModel

BUCKET_S = 10.0


def fast_rps(service: ServiceModel, target_ms: float) -> float:
    """The most requests per second a pod serves in batches that finish within target_ms."""
    if service.per_item_ms > 0:
        size = min(service.max_batch, int((target_ms - service.base_ms) // service.per_item_ms))
    else:
        size = service.max_batch
    if size < 1 or service.batch_ms(size) > target_ms:
        raise ValueError(f"no batch finishes within the target {target_ms:g} ms")
    return size / (service.batch_ms(size) / 1000.0)


def must_meet(requests: np.ndarray, spec: AutoscalingSpec) -> np.ndarray:
    """Per window: requests that must finish within the target for the objective to hold."""
    percentile = spec.objective.percentile
    if percentile is None:  # a mean bounds no count of fast requests: no serving constraint
        return np.zeros(len(requests), dtype=np.int64)
    fast = np.floor(percentile / 100.0 * (requests - 1) + 1e-9).astype(np.int64) + 1
    return np.where(requests > 0, fast, 0)


def lower_bound_replica_seconds(arrivals_s: np.ndarray, end_s: float, spec: AutoscalingSpec,
                                service: ServiceModel, cold_start_s: float,
                                bucket_s: float = BUCKET_S) -> float:
    """The bound over [0, end_s] (the simulator charges pods until end_s: last arrival plus
    its drain time)."""
    window_s, target_s = spec.objective.window, spec.objective.targetMs / 1000.0
    n_windows = int(arrivals_s[-1] // window_s) + 1 if len(arrivals_s) else 0
    requests = np.bincount((arrivals_s // window_s).astype(np.int64), minlength=n_windows)
    fast = must_meet(requests, spec)
    mu = fast_rps(service, spec.objective.targetMs)
    paid = int(end_s // bucket_s)  # whole buckets only: a bound may leave cost out
    span = max(paid, int(math.ceil((n_windows * window_s + target_s) / bucket_s)))
    ahead = max(0, int(cold_start_s // bucket_s) - 1)  # buckets inside [t, t + cold] for all t
    n_vars = span + paid  # R_0..R_{span-1} then alive A_0..A_{paid-1}
    rows, cols, values = [], [], []
    row = 0
    for b in range(paid):  # R_b' - A_b <= 0 for b' in {b} and b+1..b+ahead
        for other in [b, *range(b + 1, min(span, b + ahead + 1))]:
            rows += [row, row]
            cols += [other, span + b]
            values += [1.0, -1.0]
            row += 1
    upper = [0.0] * row
    for w in np.flatnonzero(fast):  # -sum of R over I_w <= -m_w / (mu * bucket)
        first = int(w * window_s // bucket_s)
        last = int(math.ceil(((w + 1) * window_s + target_s) / bucket_s))
        for b in range(first, min(last, span)):
            rows.append(row)
            cols.append(b)
            values.append(-1.0)
        upper.append(-float(fast[w]) / (mu * bucket_s))
        row += 1
    floor_pods = float(spec.minReplicas)
    bounds = [(0.0, None)] * span + [(floor_pods, None)] * paid
    cost = np.concatenate((np.zeros(span), np.full(paid, bucket_s)))
    matrix = coo_matrix((values, (rows, cols)), shape=(row, n_vars)).tocsr()
    result = linprog(cost, A_ub=matrix, b_ub=np.array(upper), bounds=bounds, method="highs")
    if not result.success:
        raise RuntimeError(f"lower bound: the linear program failed: {result.message}")
    return float(result.fun)
