"""Continuous batching: one worker thread per model steps one ``Batch`` for every request.

A request (``Job``) is primed by the worker, joins the batch at the next step and each of its
streams leaves at its own stop, length or cancellation. The kernel releases the GIL, so the
thread that owns the event loop keeps serving while the batch steps. Because a stream draws from
its own generator and the kernel's rows do not depend on the batch, a job's tokens are those of
``seqgen sample`` with the same seed and options, whatever else shares the batch.
"""

import threading
import time
from collections import deque

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.generation.sampler import Batch, Weights, checked_prime, primed_state, stream_generators

MAX_CHUNK = 16  # steps per kernel call at most
CHUNK_SECONDS = 0.004  # ... and about this long (when nobody waits to join)
FLUSH_SECONDS = 0.010  # a running job's new tokens wait at most about this long to be handed over


class QueueFull(SeqgenError):
    """Too many requests are waiting for this model."""


class Job:
    """One request's n streams. The worker appends (stream, ids, logps) items to ``items`` (a
    thread-safe deque; ids None: that stream ended; stream -1: the job failed, logps = the
    error) and calls the scheduler's ``notify`` with the jobs it touched."""

    def __init__(self, plan, seed, n, context=None):
        self.plan, self.seed, self.n, self.context = plan, seed, n, context
        self.rngs = stream_generators(seed, n)
        self.items = deque()
        self.cancelled = False
        self.stopped = set()  # streams the caller has finished with (e.g. at a stop text)
        self.open = n  # streams not yet ended (worker side)
        self.wake_pending = False  # a wake-up of the caller is on its way (set and cleared by the caller)
        self.notified = None  # worker's clock at the last hand-over (None: nothing handed over yet)
        self.urgent = False  # its items include a first token, an end or an error: hand over now

    def cancel(self):
        """Take all streams out of the batch at the next step."""
        self.cancelled = True

    def stop(self, i):
        """Take stream i out of the batch at the next step."""
        self.stopped.add(i)

    def wanted(self, i):
        return not self.cancelled and i not in self.stopped


class Scheduler:
    """The batch of one model and its worker thread. ``notify(jobs)`` is called from the worker
    with the jobs whose new items are due (the service wakes their handlers): at once for a
    job's first tokens, a stream's end or an error; otherwise at most every ``flush_seconds``,
    so a handler takes several steps' tokens per wake-up (one event, one write) instead of one
    wake-up per step. Whatever is waiting is handed over before the worker goes idle."""

    def __init__(self, model, notify, max_streams=256, max_queue=256, name="model", flush_seconds=FLUSH_SECONDS):
        self.model, self.notify = model, notify
        self.max_streams, self.max_queue = max_streams, max_queue
        self.flush_seconds = flush_seconds
        self.waiting = set()  # jobs with items not yet handed over
        self.batch = Batch(Weights(model))
        self.pending = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.steps = 0
        self.peak = 0  # most streams ever stepped together
        self.step_seconds = 1.0  # the last call's time per step
        self.thread = threading.Thread(target=self._run, name=f"seqgen-batch-{name}", daemon=True)
        self.thread.start()

    @property
    def active_streams(self):
        return len(self.batch)

    @property
    def queued(self):
        return len(self.pending)

    def submit(self, job):
        checked_prime(self.model, job.plan.prime_ids)
        with self.cond:
            if self.stopping:
                raise QueueFull("the server is shutting down")
            if len(self.pending) >= self.max_queue:
                raise QueueFull(f"{len(self.pending)} requests are already waiting for this model")
            self.pending.append(job)
            self.cond.notify()

    def close(self):
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join(timeout=10)

    def _hand_over(self, touched, idle=False):
        """Notify the jobs in ``touched`` (or waiting from before) whose items are due."""
        self.waiting |= touched
        if not self.waiting:
            return
        now = time.perf_counter()
        due = [job for job in self.waiting if idle or job.urgent or job.notified is None
               or now - job.notified >= self.flush_seconds]
        if due:
            for job in due:
                job.notified, job.urgent = now, False
            self.waiting.difference_update(due)
            self.notify(due)

    def _take_joining(self):
        with self.cond:
            if not self.pending and not len(self.batch) and self.waiting:
                self._hand_over(set(), idle=True)
            while not self.pending and not len(self.batch) and not self.stopping:
                self.cond.wait()
            joining = []
            room = self.max_streams - len(self.batch)
            while self.pending and (self.pending[0].n <= room or (not joining and not len(self.batch))):
                job = self.pending.popleft()
                room -= job.n
                joining.append(job)
            return joining

    def _run(self):
        while not self.stopping:
            touched = set()
            for job in self._take_joining():
                if job.cancelled:
                    continue
                try:
                    state = primed_state(self.model, job.plan.prime_ids)
                except Exception as e:  # noqa: BLE001  (reported to the request, the worker goes on)
                    job.items.append((-1, None, e))
                    job.urgent = True
                    touched.add(job)
                    continue
                self.batch.add(state, job.plan.prime_ids[-1], job.plan.params, job.rngs, job.plan.length,
                               [(job, i) for i in range(job.n)], job.plan.prime_ids)
            self.peak = max(self.peak, len(self.batch))
            owners = self.batch.owners
            wanted = [job.wanted(i) for job, i in owners]
            if not all(wanted):
                self.batch.keep(np.array(wanted, dtype=np.bool_))
            if not len(self.batch):
                self._hand_over(touched, idle=True)
                continue
            # Several steps per kernel call while nobody waits to join, as many as fit in a few
            # milliseconds: one call's fixed cost (dispatch, taking the GIL back, the items) is
            # then shared, and a newcomer still joins within that (at the next step when it
            # was already waiting).
            k = 1 if self.pending else int(min(MAX_CHUNK, max(1, CHUNK_SECONDS / self.step_seconds)))
            started = time.perf_counter()
            out, logp = self.batch.steps(k)
            if len(out):
                self.step_seconds = (time.perf_counter() - started) / len(out)
            self.steps += len(out)
            owners = self.batch.owners
            drawn = out >= 0
            ids, logps = out.T.tolist(), logp.T.tolist()  # one conversion per call, not per stream
            full = drawn.all(axis=0)
            for row in np.flatnonzero(drawn.any(axis=0)).tolist():
                job, i = owners[row]
                if full[row]:
                    job.items.append((i, ids[row], logps[row]))
                else:  # the stream ended during the call
                    keep = drawn[:, row]
                    job.items.append((i, out[keep, row].tolist(), logp[keep, row].tolist()))
                touched.add(job)
            running = self.batch.running()
            if not running.all():
                for row in np.flatnonzero(~running):
                    job, i = owners[row]
                    job.items.append((i, None, None))
                    job.urgent = True
                    touched.add(job)
                self.batch.keep(running)
            self._hand_over(touched)
