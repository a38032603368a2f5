"""Ray for the distributed build and the ingestion: importing it, connecting, running jobs on actors.

- :func:`require_ray` imports Ray, or raises :class:`RayMissingError` saying how to install it.
- :func:`connected` uses a running Ray (``ray.is_initialized()``), else connects to ``address``
  (``"auto"``, ``"ray://host:10001"``, ...) or starts a local Ray; it shuts down only a Ray it
  started itself.
- :func:`run_on_actors`: ``num_workers`` actors (one CPU each, with a ``ready()`` method), each
  holding the per-worker state (a stage with its tokenizer, a data source) built once in its
  process; a job is handed to an actor once it is up, and every job is one actor
  task (Ray's own retries: the actor is restarted when its process dies, and the task is retried;
  Python exceptions are retried only when transient, :data:`TRANSIENT`). Results come back as they
  complete (``ray.wait``); :meth:`JobRun.stop` stops handing out jobs while those running finish.
- **timeouts**: with ``task_timeout_s``, a job running longer is stopped by killing its actor (the
  only way to stop a hung actor task; a new actor takes its place) and given again, up to
  ``max_retries`` times; then its outcome is a :class:`TaskTimeoutError` naming the job.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import (
    RayMissingError,
    TaskTimeoutError,
)

#: Exceptions Ray retries on another attempt (I/O and network hiccups); ours (bad input) never are.
TRANSIENT: tuple[type[BaseException], ...] = (OSError,)
#: Ray's ``ray.init`` defaults here (overridable): no dashboard, worker output not mirrored to the driver
#: (every warning of ours is kept in the reports).
DEFAULT_INIT_KWARGS: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}


def require_ray() -> Any:
    """The ``ray`` module; :class:`RayMissingError` when it is not installed."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissingError(
            f"Ray is not installed ({exc}): pip install 'owa-builders[ray]' (or 'ray>=2.40,<3')"
        ) from None
    return ray


@contextlib.contextmanager
def connected(address: str | None = None, init_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to the Ray already running in this process, else to
    ``address``, else to a new local Ray (``init_kwargs`` go to ``ray.init``). On exit, only a Ray
    started here is shut down."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = {**DEFAULT_INIT_KWARGS, **(init_kwargs or {})}
    if address is not None:
        kwargs["address"] = address
        kwargs.pop("include_dashboard", None)  # options of a new cluster only
    ray.init(**kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray: Any) -> int:
    """CPUs of the connected cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


@dataclass
class Outcome:
    """What became of one job: ``value`` (what the actor method returned) or ``error`` (the exception
    it raised after Ray's retries, unwrapped from Ray's ``RayTaskError``; or a ``RayActorError``)."""

    job: Any
    value: Any = None
    error: BaseException | None = None


class JobRun:
    """Jobs on a pool of actors, one job in flight per actor. Iterate for :class:`Outcome` s."""

    def __init__(
        self,
        ray: Any,
        actor_class: type,
        actor_args: tuple[Any, ...],
        method: str,
        jobs: Iterable[Any],
        *,
        num_workers: int,
        max_retries: int = 3,
        tick_s: float | None = None,
        task_timeout_s: float | None = None,
        name_of: Any = str,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        self._ray = ray
        self._jobs = iter(jobs)
        self._method = method
        self._max_retries = max_retries
        self._stopped = False
        self._tick_s = tick_s
        self._timeout = task_timeout_s
        self._name_of = name_of
        self._remote = ray.remote(actor_class).options(
            num_cpus=1, max_restarts=max_retries, max_task_retries=max_retries,
            **({"runtime_env": runtime_env} if runtime_env else {}),
        )  # fmt: skip
        self._actor_args = actor_args
        # Passed by value: Ray keeps large arguments in its object store itself, and a restarted actor
        # (max_restarts) needs its arguments again.
        self._actors = [self._remote.remote(*actor_args) for _ in range(max(1, num_workers))]
        self._in_flight: dict[Any, tuple[Any, Any]] = {}  # object ref -> (job, actor)
        self._started: dict[Any, float] = {}  # object ref of a job -> when it was handed out
        self._timeouts: dict[int, int] = {}  # id(job) -> attempts timed out
        self._again: list[Any] = []  # jobs to give again (timed out)

    def stop(self) -> None:
        """Hand out no further job; the jobs in flight still finish and are yielded."""
        self._stopped = True

    def _submit(self, actor: Any) -> None:
        if self._stopped:
            return
        job = self._again.pop(0) if self._again else next(self._jobs, _DONE)
        if job is _DONE:
            return
        call = getattr(actor, self._method).options(
            max_task_retries=self._max_retries, retry_exceptions=list(TRANSIENT)
        )
        ref = call.remote(job)
        self._in_flight[ref] = (job, actor)
        self._started[ref] = time.monotonic()

    def _wait_s(self) -> float | None:
        """How long to wait for a completion: until the tick, or the first job's deadline."""
        waits = [self._tick_s] if self._tick_s is not None else []
        if self._timeout is not None and self._started:
            waits.append(max(0.0, min(self._started.values()) + self._timeout - time.monotonic()))
        return min(waits) if waits else None

    def _expired(self) -> Iterator[Outcome]:
        """Stop every job past its deadline (its actor killed and replaced); give it again, or, after
        ``max_retries`` timeouts, its :class:`TaskTimeoutError` outcome."""
        if self._timeout is None:
            return
        now = time.monotonic()
        for ref, started in list(self._started.items()):
            if now - started < self._timeout:
                continue
            job, actor = self._in_flight.pop(ref)
            del self._started[ref]
            self._ray.kill(actor, no_restart=True)
            fresh = self._remote.remote(*self._actor_args)
            self._actors[self._actors.index(actor)] = fresh
            self._in_flight[fresh.ready.remote()] = (_READY, fresh)
            attempts = self._timeouts.get(id(job), 0) + 1
            self._timeouts[id(job)] = attempts
            if attempts <= self._max_retries:
                self._again.append(job)
            else:
                yield Outcome(job, error=TaskTimeoutError(self._name_of(job), self._timeout, attempts))

    def __iter__(self) -> Iterator[Outcome | None]:
        """Outcomes as jobs complete; ``None`` every ``tick_s`` seconds without a completion (when set)."""
        ray = self._ray
        try:
            for actor in self._actors:  # a job goes to an actor once it is up (a slow one takes fewer)
                self._in_flight[actor.ready.remote()] = (_READY, actor)
            while self._in_flight:
                ready, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=self._wait_s())
                if not ready:
                    expired = list(self._expired())
                    yield from expired
                    if not expired:
                        yield None
                    continue
                ref = ready[0]
                job, actor = self._in_flight.pop(ref)
                self._started.pop(ref, None)
                if job is _READY:
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the actor's constructor failed
                        raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
                    self._submit(actor)
                    continue
                try:
                    outcome = Outcome(job, value=ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    outcome = Outcome(job, error=cause)
                except ray.exceptions.RayError as exc:  # the actor died more often than it may restart
                    outcome = Outcome(job, error=exc)
                self._submit(actor)
                yield outcome
        finally:
            for ref in self._in_flight:
                ray.cancel(ref, force=True)
            for actor in self._actors:
                ray.kill(actor)


_DONE = object()
_READY = object()


def run_on_actors(
    ray: Any,
    actor_class: type,
    actor_args: tuple[Any, ...],
    method: str,
    jobs: Iterable[Any],
    *,
    num_workers: int,
    max_retries: int = 3,
    tick_s: float | None = None,
    task_timeout_s: float | None = None,
    name_of: Any = str,
    runtime_env: dict[str, Any] | None = None,
) -> JobRun:
    """``num_workers`` actors of ``actor_class(*actor_args)`` each calling ``method(job)`` job after job.

    Jobs are taken from ``jobs`` lazily (one per idle actor), so a generator of jobs is never
    materialised. ``task_timeout_s``: see the module docstring; ``name_of(job)`` names a job in a
    :class:`TaskTimeoutError`. ``runtime_env``: Ray's runtime environment of the actors (e.g.
    ``{"env_vars": {...}}``). See :class:`JobRun`.
    """
    return JobRun(
        ray, actor_class, actor_args, method, jobs, num_workers=num_workers, max_retries=max_retries,
        tick_s=tick_s, task_timeout_s=task_timeout_s, name_of=name_of, runtime_env=runtime_env,
    )  # fmt: skip


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` of an exception (Ray's own errors keep their first line only)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
