"""The two drivers: :func:`run_sync` and :func:`run_async` execute every step a flow yields.

They are the only place where mediajobs sends, sleeps, copies bytes, calls the caller back or
runs work concurrently; every decision was made by the flow. Each step kind is handled once per
driver (the table is in ``_steps.py``). ``Gather`` runs sub-flows through the same driver:
on threads for :func:`run_sync` (once the parent ends, sub-flows still running are abandoned:
they stop at their next step or chunk, and a body being read has its socket shut down), in an
anyio task group for :func:`run_async` (asyncio and trio alike, cancelled with the parent).
The blocking driver never waits for an abandoned sub-flow, so leaving early is prompt.

Requests are sent with ``follow_redirects=False`` whatever the httpx client says: the flows
follow redirects themselves, hop by hop, so that credentials never leave the provider's hosts.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import httpx

from ._exceptions import DownloadError, MediaJobsError, closed_error
from ._steps import (
    Blocking,
    Consume,
    Consumed,
    Event,
    Flow,
    Gather,
    Notify,
    Pushed,
    Record,
    Refresh,
    Report,
    Send,
    Sleep,
    WakeWatch,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import anyio.abc  # noqa: TC004 - only in a class annotation (a string here)

    from ._models import JobData

__all__ = ["OnProgress", "OnUpdate", "Recorder", "Runtime", "Wakeups", "run_async", "run_sync"]

T = TypeVar("T")

OnUpdate = Callable[[Any], Any]
"""Called with the caller's job handle on every status change (may be async for async)."""
OnProgress = Callable[[int, int | None], Any]
"""Called with ``(done_bytes, total_bytes_or_None)`` (may be async for async)."""
Recorder = Callable[[Event], Any]
"""Receives every durable fact a flow records (may be async for async)."""

_SKIM_LIMIT = 64 * 1024  # bytes of an error body read at most
_TICK = 0.1  # seconds: the blocking driver checks for Ctrl-C this often while waiting on threads


class Wakeups:
    """Per-job wake-up calls: :meth:`wake` ends every wait's sleep on a job, at once.

    A client owns one; anything that learns a job changed (a verified webhook) calls
    :meth:`wake` from any thread or task, optionally with the job's new snapshot. A ``wait()``
    sleeping on that job resumes with the snapshot (or polls at once without one); an
    ``as_completed()`` / ``wait_all()`` round watching it (``Gather(wake=...)``) ends and hands
    the snapshot over. The most recent wake-ups are remembered (``remember`` jobs), so a wait
    that was busy polling when the wake came still takes it at its next wait.

    Args:
        remember: How many jobs' last wake-ups are kept.
    """

    def __init__(self, remember: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[Callable[[JobData | None], None]]] = {}
        self._watchers: list[Callable[[str], None]] = []
        self._recent: OrderedDict[str, tuple[int, JobData | None]] = OrderedDict()
        self._remember = remember
        self._seq = 0

    def wake(self, job_id: str, snapshot: JobData | None = None) -> int:
        """End the sleeps of every wait on a job.

        Args:
            job_id: The provider's job id.
            snapshot: The job's new state, when known (a pushed snapshot spares a poll).

        Returns:
            How many single-job sleeps were ended.
        """
        with self._lock:
            self._seq += 1
            previous = self._recent.pop(job_id, None)
            if snapshot is None and previous is not None:
                snapshot = previous[1]  # a bare wake keeps what was pushed before
            self._recent[job_id] = (self._seq, snapshot)
            if len(self._recent) > self._remember:
                self._recent.popitem(last=False)
            calls = self._waiting.pop(job_id, [])
            watchers = list(self._watchers)
        for call in calls:
            call(snapshot)
        for watcher in watchers:
            watcher(job_id)
        return len(calls)

    def latest(self, job_id: str) -> JobData | None:
        """Return the last snapshot pushed for a job, if it is still remembered.

        Args:
            job_id: The job.

        Returns:
            The snapshot, or ``None``.
        """
        with self._lock:
            entry = self._recent.get(job_id)
        return None if entry is None else entry[1]

    def take(self, watch: WakeWatch) -> list[tuple[int, Pushed]]:
        """Return the wake-ups of watched jobs since the watch's cursor, and advance it.

        Args:
            watch: A many-job wait's watch.

        Returns:
            ``(key, Pushed(snapshot))`` pairs, oldest first.
        """
        found: list[tuple[int, Pushed]] = []
        with self._lock:
            if self._seq == watch.cursor:
                return found
            for job_id in reversed(self._recent):
                seq, snapshot = self._recent[job_id]
                if seq <= watch.cursor:
                    break
                key = watch.ids.get(job_id)
                if key is not None:
                    found.append((key, Pushed(snapshot)))
            watch.cursor = self._seq
        found.reverse()
        return found

    @contextlib.contextmanager
    def watching(self, watch: WakeWatch, call: Callable[[], None]) -> Generator[None, None, None]:
        """Call ``call`` (from the waking thread) whenever a watched job is woken, meanwhile.

        Args:
            watch: The watched jobs.
            call: Called without arguments; must be quick and thread-safe.

        Yields:
            Nothing.
        """

        def watcher(job_id: str) -> None:
            if job_id in watch.ids:
                call()

        with self._lock:
            self._watchers.append(watcher)
        try:
            yield
        finally:
            with self._lock:
                self._watchers.remove(watcher)

    @contextlib.contextmanager
    def _listening(
        self, job_id: str, call: Callable[[JobData | None], None]
    ) -> Generator[None, None, None]:
        with self._lock:
            self._waiting.setdefault(job_id, []).append(call)
        try:
            yield
        finally:
            with self._lock:
                calls = self._waiting.get(job_id, [])
                if call in calls:
                    calls.remove(call)
                if not calls:
                    self._waiting.pop(job_id, None)

    def _finished(self, job_id: str) -> JobData | None:
        snapshot = self.latest(job_id)
        return snapshot if snapshot is not None and snapshot.done else None

    def sleep(self, job_id: str, seconds: float) -> JobData | None:
        """Sleep on a thread until ``seconds`` pass or the job is woken.

        Args:
            job_id: The job.
            seconds: The longest sleep.

        Returns:
            The snapshot the wake carried; a terminal one pushed earlier ends the sleep at once.
        """
        done = self._finished(job_id)
        if done is not None:
            return done
        event = threading.Event()
        pushed: list[JobData | None] = [None]

        def woken(snapshot: JobData | None) -> None:
            pushed[0] = snapshot
            event.set()

        with self._listening(job_id, woken):
            event.wait(seconds)
        return pushed[0]

    async def sleep_async(self, job_id: str, seconds: float) -> JobData | None:
        """Sleep in a task until ``seconds`` pass or the job is woken (from any thread).

        Args:
            job_id: The job.
            seconds: The longest sleep.

        Returns:
            The snapshot the wake carried; a terminal one pushed earlier ends the sleep at once.
        """
        done = self._finished(job_id)
        if done is not None:
            return done
        event = anyio.Event()
        pushed: list[JobData | None] = [None]
        set_event = _thread_safe(event.set)

        def woken(snapshot: JobData | None) -> None:
            pushed[0] = snapshot
            set_event()

        with self._listening(job_id, woken), anyio.move_on_after(seconds):
            await event.wait()
        return pushed[0]


def _thread_safe(call: Callable[[], Any]) -> Callable[[], None]:
    """Wrap a callable of the current event loop so that any thread may call it."""
    from anyio import from_thread, lowlevel  # noqa: PLC0415 - only for woken waits

    token = lowlevel.current_token()
    home = threading.get_ident()

    def run() -> None:
        if threading.get_ident() == home:
            call()
            return
        with contextlib.suppress(RuntimeError):  # the event loop has ended meanwhile
            from_thread.run_sync(call, token=token)

    return run


class Runtime:
    """What the drivers need beyond the flow: the httpx client and the caller's callbacks.

    One runtime serves one client call; its sub-flows share it (one progress aggregation, one
    re-read of the job).

    Args:
        http: An ``httpx.Client`` (:func:`run_sync`) or ``httpx.AsyncClient`` (:func:`run_async`).
        on_update: Receives :class:`~mediajobs._steps.Notify` jobs.
        on_progress: Receives download progress.
        recorder: Receives :class:`~mediajobs._steps.Record` events; without one they are no-ops.
        refresh: Re-reads the job for :class:`~mediajobs._steps.Refresh` (called at most once).
        concurrency: Threads for ``Gather`` under :func:`run_sync`.
        wakeups: Ends a ``Sleep`` early when its job is woken.
    """

    __slots__ = (
        "async_locks",
        "concurrency",
        "fresh",
        "http",
        "lock",
        "on_progress",
        "on_update",
        "recorder",
        "refresh",
        "wakeups",
    )

    def __init__(
        self,
        http: Any,
        *,
        on_update: OnUpdate | None = None,
        on_progress: OnProgress | None = None,
        recorder: Recorder | None = None,
        refresh: Callable[[], Any] | None = None,
        concurrency: int = 32,
        wakeups: Wakeups | None = None,
    ) -> None:
        self.http = http
        self.wakeups = wakeups
        self.on_update = on_update
        self.on_progress = on_progress
        self.recorder = recorder
        self.refresh = refresh
        self.concurrency = concurrency
        self.fresh: Any = None
        self.lock = threading.Lock()
        self.async_locks: dict[str, anyio.Lock] = {}


class _Stopped(Exception):
    """Internal: the parent flow ended (a failure elsewhere, or Ctrl-C); stop quietly."""


class _Sink:
    """One :class:`Consume` step's bookkeeping; the two copy loops differ only in iterating."""

    def __init__(self, step: Consume) -> None:
        self.step = step
        self.written = 0
        self.snippet = bytearray()
        self.skimmed = 0
        self.error: httpx.HTTPError | None = None
        self.writing = step.sink is not None
        self.reading = self.writing or step.limit > 0
        # A body the transport handed over whole was read before we got it (httpx preloads it).
        self.in_memory = step.response.is_stream_consumed
        if step.sink is not None:
            step.sink.rewind(step.offset)

    @property
    def done(self) -> int:
        return self.step.offset + self.written

    def feed(self, chunk: bytes) -> bool:
        """Take a chunk; return whether to keep reading."""
        if self.step.sink is None:
            # An error body is read to its end when small: leaving a body half-read leaves
            # httpx's async generators unfinished, which trio reports as a ResourceWarning.
            self.skimmed += len(chunk)
            self.snippet += chunk[: self.step.limit - len(self.snippet)]
            return self.skimmed < _SKIM_LIMIT
        self.step.sink.write(chunk)
        self.written += len(chunk)
        return True

    def result(self) -> Consumed:
        received = None if self.in_memory else self.step.response.num_bytes_downloaded
        return Consumed(self.written, received, bytes(self.snippet), self.error)


def _progress(step: Consume | Report, done: int) -> tuple[int, int | None] | None:
    if step.progress is None:
        return None
    if isinstance(step, Report) and step.key is None:
        return step.progress.final()
    key = step.key if step.key is not None else 0
    return step.progress.update(key, done, step.size)


# ------------------------------------------------------------------------ blocking


def run_sync(flow: Flow[T], runtime: Runtime) -> T:
    """Drive a flow with blocking I/O.

    Args:
        flow: The flow.
        runtime: The httpx client and callbacks.

    Returns:
        The flow's result.

    Raises:
        ConfigurationError: When the httpx client is closed (before the flow's first step, so
            nothing is recorded), or is closed when a request is due.
        MediaJobsError: Whatever the flow raises.
    """
    if runtime.http.is_closed:
        flow.close()
        raise closed_error()
    return _SyncDriver(runtime, None).run(flow)


class _SyncDriver:
    def __init__(self, runtime: Runtime, stop: _Stop | None) -> None:
        self.rt = runtime
        self.stop = stop  # set when the parent ended: a sub-flow on a thread gives up

    def run(self, flow: Flow[T]) -> T:
        rt = self.rt
        value: Any = None
        error: BaseException | None = None
        opened: list[httpx.Response] = []
        threads: _Threads | None = None
        try:
            while True:
                try:
                    step = flow.send(value) if error is None else flow.throw(error)
                except StopIteration as stop:
                    return cast(T, stop.value)
                value = error = None
                try:
                    if isinstance(step, Send):
                        self.checkpoint()
                        if rt.http.is_closed:
                            raise closed_error()
                        if step.stream:
                            value = rt.http.send(step.request, stream=True, follow_redirects=False)
                            opened.append(value)
                            if self.stop is not None:
                                self.stop.streams.append(value)
                        else:
                            value = self.send(step.request)
                    elif isinstance(step, Sleep):
                        if step.wake is not None and rt.wakeups is not None and self.stop is None:
                            value = rt.wakeups.sleep(step.wake, step.seconds)
                        else:
                            self.sleep(step.seconds)
                    elif isinstance(step, Notify):
                        if rt.on_update is not None:
                            rt.on_update(step.job)
                    elif isinstance(step, Consume):
                        value = self.consume(step)
                    elif isinstance(step, Report):
                        self.report(step, step.done)
                    elif isinstance(step, Record):
                        if rt.recorder is not None:
                            value = rt.recorder(step.event)
                    elif isinstance(step, Refresh):
                        value = self.refresh()
                    elif isinstance(step, Blocking):
                        value = step.call()
                    else:
                        threads = threads or _Threads(self)
                        value = threads.gather(step)
                except (httpx.HTTPError, httpx.InvalidURL, MediaJobsError) as exc:
                    error = exc  # InvalidURL: a redirect's Location httpx could not parse
        finally:
            flow.close()
            if threads is not None:
                threads.close()
            for response in opened:
                response.close()

    def checkpoint(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise _Stopped

    def send(self, request: httpx.Request) -> httpx.Response:
        # The whole answer, body included, within the request's timeout: httpx's timeouts
        # bound each read, and a body trickling a byte at a time never trips them. Checked at
        # every chunk; a read blocked past the limit ends by its own timeout (no longer than
        # the limit), so the answer ends within twice the limit at worst.
        limit = _time_limit(request)
        end = time.monotonic() + limit
        response: httpx.Response = self.rt.http.send(request, stream=True, follow_redirects=False)
        try:
            if time.monotonic() > end:
                raise _overrun(request, limit)
            response.stream = _Bounded(response.stream, request, end, limit)
            response.read()
        except BaseException:
            response.close()
            raise
        return response

    def sleep(self, seconds: float) -> None:
        if self.stop is not None:
            if self.stop.wait(seconds):
                raise _Stopped
        elif seconds > 0:
            time.sleep(seconds)

    def report(self, step: Consume | Report, done: int) -> None:
        if self.rt.on_progress is None:
            return
        with self.rt.lock:  # one report at a time, in order
            report = _progress(step, done)
            if report is not None:
                self.rt.on_progress(*report)

    def refresh(self) -> Any:
        rt = self.rt
        with rt.lock:
            if rt.fresh is None:  # one re-read serves every artifact of the call
                if rt.refresh is None:
                    raise DownloadError("no way to re-read the job")
                rt.fresh = rt.refresh()
            return rt.fresh

    def consume(self, step: Consume) -> Consumed:
        sink = _Sink(step)
        chunks = cast(Generator[bytes, None, None], step.response.iter_bytes())
        try:
            if sink.writing:
                self.report(step, sink.done)
            for chunk in chunks if sink.reading else ():
                self.checkpoint()
                if not sink.feed(chunk):
                    break
                if sink.writing:
                    self.report(step, sink.done)
        except httpx.HTTPError as exc:
            sink.error = exc
        finally:
            chunks.close()
            step.response.close()
        return sink.result()


def _time_limit(request: httpx.Request) -> float:
    # The request's whole time: its longest phase limit (none: no limit).
    parts = (request.extensions.get("timeout") or {}).values()
    limits = [float(p) for p in parts if isinstance(p, (int, float)) and p > 0]
    return max(limits, default=math.inf)


def _overrun(request: httpx.Request, limit: float) -> httpx.ReadTimeout:
    return httpx.ReadTimeout(f"the answer took longer than {limit:g}s in all", request=request)


class _Bounded(httpx.SyncByteStream):
    """A response body that fails once its request's overall time limit has passed."""

    def __init__(self, stream: Any, request: httpx.Request, end: float, limit: float) -> None:
        self.stream = stream
        self.request = request
        self.end = end
        self.limit = limit

    def __iter__(self) -> Generator[bytes, None, None]:
        for chunk in self.stream:
            if time.monotonic() > self.end:
                raise _overrun(self.request, self.limit)
            yield chunk

    def close(self) -> None:
        self.stream.close()


class _Threads:
    """``Gather`` for the blocking driver: sub-flows on a thread pool.

    When the parent ends with sub-flows still running (a failure elsewhere, Ctrl-C, leaving
    ``as_completed`` early), they are abandoned rather than joined: each stops at its next
    step or chunk, and a body being read has its socket shut down, so a read blocked on a
    silent server ends at once. A request still waiting for its answer ends by its timeout;
    its result is never used.
    """

    def __init__(self, parent: _SyncDriver) -> None:
        self.parent = parent
        self.stop = _Stop()
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only when gathering

        self.pool: ThreadPoolExecutor = ThreadPoolExecutor(
            parent.rt.concurrency, thread_name_prefix="mediajobs"
        )
        self.running: dict[Future[Any], int] = {}

    def gather(self, step: Gather) -> list[tuple[int, Any]]:
        for key, flow in step.start:
            child = _SyncDriver(self.parent.rt, self.stop)
            self.running[self.pool.submit(child.run, flow)] = key
        wakeups, watch = self.parent.rt.wakeups, step.wake
        if wakeups is None or watch is None:
            if not self.running:
                self.parent.sleep(step.timeout or 0.0)
                return []
            return self.wait(step.timeout, None)
        alarm: Future[None] = Future()

        def ring() -> None:
            with contextlib.suppress(InvalidStateError):  # rung already
                alarm.set_result(None)

        with wakeups.watching(watch, ring):
            pushed = wakeups.take(watch)
            outcomes = self.wait(0.0 if pushed else step.timeout, alarm)
        return [*outcomes, *pushed, *wakeups.take(watch)]

    def wait(self, timeout: float | None, alarm: Future[None] | None) -> list[tuple[int, Any]]:
        """Wait for finished sub-flows (or the alarm) at most ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        waiting = [*self.running, *([alarm] if alarm is not None else [])]
        while True:
            # Short waits: a pending Ctrl-C is raised here within a tick, even where the signal
            # woke another thread.
            left = _TICK if end is None else min(_TICK, max(end - time.monotonic(), 0.0))
            done, _ = wait_futures(waiting, timeout=left, return_when=FIRST_COMPLETED)
            self.parent.checkpoint()
            if done or (end is not None and time.monotonic() >= end):
                return [
                    (self.running.pop(future), _outcome(future))
                    for future in done
                    if future is not alarm
                ]

    def close(self) -> None:
        self.stop.set()  # the others stop at their next step or chunk
        unfinished = [f for f in self.running if not f.cancel() and not f.done()]
        if unfinished:
            for response in list(self.stop.streams):
                if not response.is_closed:
                    _abort(response)
        self.pool.shutdown(wait=not unfinished, cancel_futures=True)


class _Stop(threading.Event):
    """Set when a ``Gather``'s parent ended; lists the bodies its sub-flows opened."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[httpx.Response] = []


def _abort(response: httpx.Response) -> None:
    """Shut down the socket of a response another thread may be reading (never raises)."""
    stream = response.extensions.get("network_stream")
    sock = None if stream is None else stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _outcome(future: Future[Any]) -> Any:
    try:
        return future.result()
    except Exception as exc:  # handed to the flow as an outcome
        return exc


# --------------------------------------------------------------------------- async


async def run_async(flow: Flow[T], runtime: Runtime) -> T:
    """Drive a flow with async I/O (asyncio or trio, through anyio).

    Callbacks and the recorder may return awaitables; they are awaited.

    Args:
        flow: The flow.
        runtime: The httpx client and callbacks.

    Returns:
        The flow's result.

    Raises:
        ConfigurationError: When the httpx client is closed (before the flow's first step, so
            nothing is recorded), or is closed when a request is due.
        MediaJobsError: Whatever the flow raises.
    """
    if runtime.http.is_closed:
        flow.close()
        raise closed_error()
    return await _AsyncDriver(runtime).run(flow)


async def _call(callback: Callable[..., Any], *args: Any) -> Any:
    result = callback(*args)
    if inspect.isawaitable(result):
        return await result
    return result


class _AsyncDriver:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def run(self, flow: Flow[T]) -> T:
        rt = self.rt
        value: Any = None
        error: BaseException | None = None
        opened: list[httpx.Response] = []
        tasks: _Tasks | None = None
        try:
            while True:
                try:
                    step = flow.send(value) if error is None else flow.throw(error)
                except StopIteration as stop:
                    return cast(T, stop.value)
                value = error = None
                try:
                    if isinstance(step, Send):
                        if rt.http.is_closed:
                            raise closed_error()
                        if step.stream:
                            value = await rt.http.send(
                                step.request, stream=True, follow_redirects=False
                            )
                            opened.append(value)
                        else:
                            value = await self.send(step.request)
                    elif isinstance(step, Sleep):
                        if step.wake is not None and rt.wakeups is not None:
                            value = await rt.wakeups.sleep_async(step.wake, step.seconds)
                        else:
                            await anyio.sleep(step.seconds)
                    elif isinstance(step, Notify):
                        if rt.on_update is not None:
                            await _call(rt.on_update, step.job)
                    elif isinstance(step, Consume):
                        value = await self.consume(step)
                    elif isinstance(step, Report):
                        await self.report(step, step.done)
                    elif isinstance(step, Record):
                        if rt.recorder is not None:
                            value = await _call(rt.recorder, step.event)
                    elif isinstance(step, Refresh):
                        value = await self.refresh()
                    elif isinstance(step, Blocking):
                        from anyio import to_thread  # noqa: PLC0415 - 6 ms to import

                        value = await to_thread.run_sync(step.call)
                    else:
                        tasks = tasks or await _Tasks.open(self)
                        value = await tasks.gather(step)
                except (httpx.HTTPError, httpx.InvalidURL, MediaJobsError) as exc:
                    error = exc  # InvalidURL: a redirect's Location httpx could not parse
        finally:
            flow.close()
            if opened:
                with anyio.CancelScope(shield=True):
                    for response in opened:
                        await response.aclose()
            if tasks is not None:
                await tasks.close()

    async def send(self, request: httpx.Request) -> httpx.Response:
        # The whole answer, body included, within the request's timeout (httpx's timeouts
        # bound each read only).
        limit = _time_limit(request)
        response: httpx.Response | None = None
        readers: list[AsyncGenerator[bytes, None]] = []
        try:
            with anyio.fail_after(limit):
                response = await self.rt.http.send(request, stream=True, follow_redirects=False)
                readers = _track_readers(response)
                await response.aread()
        except BaseException as exc:
            if response is not None:
                with anyio.CancelScope(shield=True):
                    await _finish_readers(readers)
                    await response.aclose()
            if isinstance(exc, TimeoutError):
                raise _overrun(request, limit) from None
            raise
        return response

    async def report(self, step: Consume | Report, done: int) -> None:
        # One thread: updates are ordered; only an awaitable callback needs the lock.
        if self.rt.on_progress is None:
            return
        report = _progress(step, done)
        if report is None:
            return
        result = self.rt.on_progress(*report)
        if inspect.isawaitable(result):
            async with _lock_of(self.rt, "report_lock"):
                await result

    async def refresh(self) -> Any:
        rt = self.rt
        async with _lock_of(rt, "refresh_lock"):
            if rt.fresh is None:
                if rt.refresh is None:
                    raise DownloadError("no way to re-read the job")
                rt.fresh = await _call(rt.refresh)
            return rt.fresh

    async def consume(self, step: Consume) -> Consumed:
        # Chunks are written with plain blocking writes: at most a socket read's worth (tens of
        # KiB) into the page cache takes microseconds, less than a hop to a worker thread would.
        # The one slow call, fsync, runs on a worker thread (a Blocking step).
        sink = _Sink(step)
        readers = _track_readers(step.response)
        chunks = cast(AsyncGenerator[bytes, None], step.response.aiter_bytes())
        try:
            if sink.writing:
                await self.report(step, sink.done)
            if sink.reading:
                async for chunk in chunks:
                    if not sink.feed(chunk):
                        break
                    if sink.writing:
                        await self.report(step, sink.done)
        except httpx.HTTPError as exc:
            sink.error = exc
        finally:
            with anyio.CancelScope(shield=True):
                await chunks.aclose()
                await _finish_readers(readers)
                await step.response.aclose()
        return sink.result()


def _track_readers(response: httpx.Response) -> list[AsyncGenerator[bytes, None]]:
    """Keep every raw reader httpx opens on a response, to finish them ourselves.

    httpx decodes a body in one async generator reading another (``aiter_raw``, itself
    reading more of them down to the socket); when decoding fails, the outer one ends and the
    others are left suspended, for the garbage collector to find (trio warns). The returned
    list fills as httpx asks for readers; :func:`_finish_readers` ends them.
    """
    readers: list[AsyncGenerator[bytes, None]] = []
    original = response.aiter_raw

    def aiter_raw(chunk_size: int | None = None) -> AsyncGenerator[bytes, None]:
        reader = cast(AsyncGenerator[bytes, None], original(chunk_size))
        readers.append(reader)
        return reader

    setattr(response, "aiter_raw", aiter_raw)  # noqa: B010 - shadows the method on this one
    return readers


async def _finish_readers(readers: list[AsyncGenerator[bytes, None]]) -> None:
    # Closing a suspended reader would leave the ones below it suspended: a short rest of the
    # body is read instead, so that every layer ends as it normally does.
    for reader in readers:
        with contextlib.suppress(Exception), anyio.move_on_after(_TICK):
            skimmed = 0
            async for chunk in reader:
                skimmed += len(chunk)
                if skimmed >= _SKIM_LIMIT:
                    break
        with contextlib.suppress(Exception):
            await reader.aclose()


def _lock_of(runtime: Runtime, name: str) -> anyio.Lock:
    lock = runtime.async_locks.get(name)
    if lock is None:
        lock = runtime.async_locks[name] = anyio.Lock()
    return lock


_RING = object()  # a wake-up of a watched job, sent through the outcome stream


class _Tasks:
    """``Gather`` for the async driver: sub-flows in one task group, for the parent's run."""

    group: anyio.abc.TaskGroup

    def __init__(self, parent: _AsyncDriver) -> None:
        self.parent = parent
        self.stack = contextlib.AsyncExitStack()
        self.send, self.receive = anyio.create_memory_object_stream[tuple[int, Any]](math.inf)
        self.active = 0

    @classmethod
    async def open(cls, parent: _AsyncDriver) -> _Tasks:
        tasks = cls(parent)
        tasks.group = await tasks.stack.enter_async_context(anyio.create_task_group())
        return tasks

    async def child(self, key: int, flow: Flow[Any]) -> None:
        try:
            outcome: Any = await _AsyncDriver(self.parent.rt).run(flow)
        except Exception as exc:  # handed to the flow as an outcome
            outcome = exc
        self.send.send_nowait((key, outcome))

    async def gather(self, step: Gather) -> list[tuple[int, Any]]:
        for key, flow in step.start:
            self.group.start_soon(self.child, key, flow)
        self.active += len(step.start)
        wakeups, watch = self.parent.rt.wakeups, step.wake
        if wakeups is None or watch is None:
            if not self.active:
                await anyio.sleep(step.timeout or 0.0)
                return []
            return await self.wait(step.timeout)

        def ring() -> None:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self.send.send_nowait((-1, _RING))

        with wakeups.watching(watch, _thread_safe(ring)):
            pushed = wakeups.take(watch)
            outcomes = await self.wait(0.0 if pushed else step.timeout)
        return [*outcomes, *pushed, *wakeups.take(watch)]

    async def wait(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Wait for finished sub-flows (or a ring) at most ``timeout`` seconds."""
        received: list[tuple[int, Any]] = []
        if timeout is None or timeout > 0:
            with anyio.move_on_after(math.inf if timeout is None else timeout):
                received.append(await self.receive.receive())
        while True:
            try:
                received.append(self.receive.receive_nowait())
            except anyio.WouldBlock:
                break
        outcomes = [(key, outcome) for key, outcome in received if outcome is not _RING]
        self.active -= len(outcomes)
        return outcomes

    async def close(self) -> None:
        self.group.cancel_scope.cancel()
        try:
            await self.stack.aclose()
        finally:
            self.send.close()
            self.receive.close()
