"""Triton's dynamic batcher per pod, request by request, compiled (numba): routing and batches.

Each pod has its own FIFO queue (a linked list through `next_request`) and one model instance.
A batch closes when the instance can take it and either `max_batch` requests are queued or the
oldest has waited `max_queue_delay` (Triton's dynamic batcher: the delay counts from the oldest
request's arrival, so a backlog goes at once); it takes everything queued by then, up to
`max_batch`, and runs for (base + per_item * size) * batch_scale[first] once the batch before
it has finished, `first` being the batch's oldest request (ServiceModel.batch_scales: one
multiplier per request, as each request is the oldest of at most one batch, so a request's
batch draws the same multiplier under every policy; a single 1.0 for the line exactly). The
instance can take its next batch once `close_fraction[first]` of the running batch's time has
passed (ServiceModel.close_at_fraction, or at once for ServiceModel.early_close_share of the
batches; 1.0 is the ideal batcher, which takes it when the running one ends; a single value
for every batch). The emulator's replica (hack/emulator/replica.py) follows the same rules
one request at a time in Python; these kernels exist because a 24 h trace has millions of
requests per policy.

A batch is final only once every arrival up to its closing is known: `advance_pod(p, until)`
dispatches the batches that close by `until` and leaves the rest queued for the next call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ROUTE_RANDOM = 0
ROUTE_LEAST_REQUESTS = 1  # Envoy's LEAST_REQUEST: the less busy of two pods drawn at random


class PodQueues:
    """The batchers' state: per request (next in queue, start, finish) and per pod.

    Plain arrays so that the kernels can read and write them; pods are numbered as created and
    the per-pod arrays grow when more pods exist than they hold.
    """

    def __init__(self, n_requests: int, pods: int = 64) -> None:
        self.next_request = np.full(n_requests, -1, dtype=np.int64)
        self.start_s = np.full(n_requests, np.inf)
        self.finish_s = np.full(n_requests, np.inf)
        self.pod_of = np.full(n_requests, -1, dtype=np.int64)
        self.log = np.empty(n_requests, dtype=np.int64)  # requests in the order batches form
        self.log_len = np.zeros(1, dtype=np.int64)
        self.head = np.full(pods, -1, dtype=np.int64)
        self.tail = np.full(pods, -1, dtype=np.int64)
        self.queued = np.zeros(pods, dtype=np.int64)
        self.free_s = np.zeros(pods)  # when the last batch dispatched finishes
        self.take_s = np.zeros(pods)  # when the instance can take the next batch
        self.batch_size = np.zeros(pods, dtype=np.int64)  # of the last batch dispatched

    def ensure_pods(self, count: int) -> None:
        if count <= len(self.head):
            return
        extra = max(count, 2 * len(self.head)) - len(self.head)
        self.head = np.concatenate((self.head, np.full(extra, -1, dtype=np.int64)))
        self.tail = np.concatenate((self.tail, np.full(extra, -1, dtype=np.int64)))
        self.queued = np.concatenate((self.queued, np.zeros(extra, dtype=np.int64)))
        self.free_s = np.concatenate((self.free_s, np.zeros(extra)))
        self.take_s = np.concatenate((self.take_s, np.zeros(extra)))
        self.batch_size = np.concatenate((self.batch_size, np.zeros(extra, dtype=np.int64)))

    def pod_arrays(self) -> tuple[np.ndarray, ...]:
        return self.head, self.tail, self.queued, self.free_s, self.take_s, self.batch_size

    def request_arrays(self) -> tuple[np.ndarray, ...]:
        return self.next_request, self.start_s, self.finish_s, self.log, self.log_len

    def routing_arrays(self) -> tuple[np.ndarray, ...]:
        return (self.pod_of,)

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """A copy of the per-pod state (the requests' arrays are rewritten on replay)."""
        return tuple(a.copy() for a in (*self.pod_arrays(), self.log_len))

    def restore(self, saved: tuple[np.ndarray, ...]) -> None:
        head, tail, queued, free_s, take_s, batch_size, log_len = (a.copy() for a in saved)
        self.head, self.tail, self.queued, self.free_s, self.take_s, self.batch_size = (
            head, tail, queued, free_s, take_s, batch_size)
        self.log_len = log_len
        # A replay appends behind the saved tails: their links must end there again.
        self.next_request[tail[tail >= 0]] = -1


@njit(cache=True)
def advance_pod(p, until, arrivals_s, base_s, per_item_s, max_batch, delay_s, close_fraction,
                batch_scale, head, tail, queued, free_s, take_s, batch_size,
                next_request, start_s, finish_s, log, log_len):  # pragma: no cover (compiled)
    """Dispatch pod p's batches that close at or before `until`."""
    while queued[p] > 0:
        first = head[p]
        deadline = max(take_s[p], arrivals_s[first] + delay_s)
        # The max_batch-th queued request, if any: a full batch need not wait.
        last = first
        for _ in range(max_batch - 1):
            if next_request[last] < 0:
                break
            last = next_request[last]
        full = queued[p] >= max_batch and arrivals_s[last] <= deadline
        closed = max(take_s[p], arrivals_s[last]) if full else deadline
        if closed > until:
            return
        size = 0
        request = first
        while request >= 0 and size < max_batch and arrivals_s[request] <= closed:
            size += 1
            request = next_request[request]
        start = max(closed, free_s[p])
        service = (base_s + per_item_s * size) * batch_scale[first % len(batch_scale)]
        finish = start + service
        request = first
        for _ in range(size):
            start_s[request] = start
            finish_s[request] = finish
            log[log_len[0]] = request
            log_len[0] += 1
            request = next_request[request]
        head[p] = request
        queued[p] -= size
        if queued[p] == 0:
            tail[p] = -1
        free_s[p] = finish
        take_s[p] = start + close_fraction[first % len(close_fraction)] * service
        batch_size[p] = size


@njit(cache=True)
def advance_all(pod_count, until, arrivals_s, base_s, per_item_s, max_batch, delay_s,
                close_fraction, batch_scale, head, tail, queued, free_s, take_s, batch_size,
                next_request, start_s, finish_s, log, log_len):  # pragma: no cover
    for p in range(pod_count):
        if queued[p] > 0:
            advance_pod(p, until, arrivals_s, base_s, per_item_s, max_batch, delay_s,
                        close_fraction, batch_scale, head, tail, queued, free_s, take_s, batch_size,
                        next_request, start_s, finish_s, log, log_len)


@njit(cache=True)
def route(first, last, arrivals_s, draws, pods, pods_ready_s, mode, max_queue,
          base_s, per_item_s, max_batch, delay_s, close_fraction, batch_scale,
          head, tail, queued, free_s, take_s, batch_size,
          next_request, start_s, finish_s, log, log_len, pod_of, rejected):  # pragma: no cover
    """Send requests first..last-1 to pods Ready at their arrival (`pods` sorted by the time
    in `pods_ready_s`); a request finding no Ready pod, or a full queue, is rejected."""
    ready = 0
    for i in range(first, last):
        now = arrivals_s[i]
        while ready < len(pods) and pods_ready_s[ready] <= now:
            ready += 1
        if ready == 0:
            rejected[i] = True
            continue
        p = pods[min(int(draws[i, 0] * ready), ready - 1)]
        if mode == ROUTE_LEAST_REQUESTS or max_queue > 0:
            advance_pod(p, now, arrivals_s, base_s, per_item_s, max_batch, delay_s,
                        close_fraction, batch_scale, head, tail, queued, free_s, take_s, batch_size,
                        next_request, start_s, finish_s, log, log_len)
        if mode == ROUTE_LEAST_REQUESTS:
            other = pods[min(int(draws[i, 1] * ready), ready - 1)]
            advance_pod(other, now, arrivals_s, base_s, per_item_s, max_batch, delay_s,
                        close_fraction, batch_scale, head, tail, queued, free_s, take_s, batch_size,
                        next_request, start_s, finish_s, log, log_len)
            busy_p = queued[p] + (batch_size[p] if free_s[p] > now else 0)
            busy_other = queued[other] + (batch_size[other] if free_s[other] > now else 0)
            if busy_other < busy_p:
                p = other
        if max_queue > 0 and queued[p] >= max_queue:
            rejected[i] = True
            continue
        next_request[i] = -1
        pod_of[i] = p
        if queued[p] == 0:
            head[p] = i
        else:
            next_request[tail[p]] = i
        tail[p] = i
        queued[p] += 1
