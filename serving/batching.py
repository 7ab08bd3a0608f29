"""Dynamic batching (--enable_batching): concurrent requests merged into one model call.

Like TF Serving's BasicBatchScheduler: a request waits at most batch_timeout_micros for others to
join, a batch holds at most max_batch_size rows, and each caller gets exactly its own rows back.
A batch whose time is up still takes the requests that arrive until a thread is free to run it.
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serving.config import BatchingParameters
from serving.status import ServingError, invalid

Arrays = dict[str, np.ndarray]
# Called on a batch thread with the task's outputs, or None and the error.
Done = Callable[[Arrays | None, Exception | None], None]


@dataclass
class _Task:
    inputs: Arrays
    rows: int
    enqueued: float
    done: Done


class Batcher:
    """One queue of requests for one signature of one loaded version, drained by worker threads."""

    def __init__(self, run: Callable[[Arrays], Arrays], params: BatchingParameters, name: str):
        self._run = run
        self._params = params
        self._queue: deque[_Task] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{name}-{i}", daemon=True)
            for i in range(max(1, params.num_batch_threads))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Arrays, done: Done) -> None:
        """Queues the inputs; done() gets their outputs. Refusals raise ServingError at once."""
        rows = _batch_rows(inputs)
        if rows > self._params.max_batch_size:
            # shared_batch_scheduler.cc
            raise invalid(
                f"Task size {rows} is larger than maximum input batch size "
                f"{self._params.max_batch_size}"
            )
        task = _Task(inputs, rows, time.monotonic(), done)
        with self._cond:
            limit = self._params.max_enqueued_batches * self._params.max_batch_size
            if self._queued_rows + rows > limit:
                raise ServingError(
                    "UNAVAILABLE",
                    "The batch scheduling queue to which this task was submitted is full",
                )
            self._queue.append(task)
            self._queued_rows += rows
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _next_batch(self) -> list[_Task] | None:
        timeout = self._params.batch_timeout_micros / 1e6
        with self._cond:
            # Wait until the batch is full or the oldest request's time is up. The queue's head
            # is read anew after every wait: another worker may have taken the batch meanwhile.
            while True:
                if self._stopped:
                    return None
                left = None  # an empty queue: wait for a request
                if self._queue:
                    left = self._queue[0].enqueued + timeout - time.monotonic()
                    if self._queued_rows >= self._params.max_batch_size or left <= 0:
                        break
                self._cond.wait(left)
            batch, rows = [], 0
            while self._queue and rows + self._queue[0].rows <= self._params.max_batch_size:
                task = self._queue.popleft()
                rows += task.rows
                batch.append(task)
            self._queued_rows -= rows
            if self._queue:
                self._cond.notify()  # another worker may start the next batch
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                results = self._run_batch(batch)
            except Exception as e:  # every caller learns the batch failed; the worker lives on
                for task in batch:
                    task.done(None, e)
                continue
            for task, outputs in zip(batch, results, strict=True):
                task.done(outputs, None)

    def _run_batch(self, batch: list[_Task]) -> list[Arrays]:
        if len(batch) == 1:
            return [self._run(batch[0].inputs)]
        names = batch[0].inputs.keys()
        merged = {n: np.concatenate([t.inputs[n] for t in batch]) for n in names}
        outputs = self._run(merged)
        results, start = [], 0
        for task in batch:
            stop = start + task.rows
            results.append({n: v[start:stop] for n, v in outputs.items()})
            start = stop
        return results


def _batch_rows(inputs: Arrays) -> int:
    rows = None
    for array in inputs.values():
        if array.ndim == 0:
            # batching_session.cc
            raise invalid("Batching Run() input tensors must have at least one dimension")
        if rows is not None and array.shape[0] != rows:
            raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
        rows = array.shape[0]
    return rows or 0


def can_batch(inputs: Arrays, batcher_inputs: dict) -> bool:
    """Whether arrays can join a merged batch (same inner shapes as the signature wants)."""
    for name, array in inputs.items():
        spec = batcher_inputs[name]
        if spec.shape is None or array.ndim != len(spec.shape) or array.ndim == 0:
            return False
        if any(d not in (-1, a) for d, a in zip(spec.shape[1:], array.shape[1:], strict=True)):
            return False
    return True
