"""Worker processes that stop with the command that started them (``run_tasks``).

A worker is a spawned process (no forked torch thread pools) that
- runs in a process group of its own, so that a Ctrl-C at the terminal reaches only the parent, which
  passes it on once;
- is sent SIGTERM by the kernel when the parent dies, even of SIGKILL (Linux's PR_SET_PDEATHSIG);
- on SIGTERM stops its task: a training finishes its update and writes its checkpoint
  (``mdpo.train.learn``), anything else is interrupted.

The parent's first SIGINT or SIGTERM starts no further task and sends SIGTERM to the running ones;
``run_tasks`` waits for them to end and raises ``Stopped``. A second signal is passed on as well (a
training then stops at once, keeping its last checkpoint). A task that fails stops the others in the
same way before its error is raised.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from mdpo.errors import MdpoError
from mdpo.runtime import libc, on_stop_signals

PR_SET_PDEATHSIG = 1  # from linux/prctl.h


class Stopped(KeyboardInterrupt):
    """Tasks were stopped before their end; the message says why."""


def run_tasks(fn: Callable, tasks: list[tuple], jobs: int, on_result: Callable[[Any], None]) -> None:
    """``fn(*task)`` for every task, ``jobs`` at a time, each in a worker process; the parent hands each
    result to ``on_result`` as it arrives. ``fn`` must be importable by name (spawned workers import it)."""
    context = multiprocessing.get_context("spawn")
    todo = list(tasks)
    busy: dict[Connection, multiprocessing.Process] = {}
    stop = _Stop(busy)
    workers = []
    with on_stop_signals(stop.handler):
        try:
            for _ in range(min(jobs, len(todo))):
                ours, theirs = context.Pipe()
                process = context.Process(target=_serve, args=(fn, theirs, os.getpid()), daemon=True)
                process.start()
                theirs.close()
                workers.append((ours, process))
            idle = list(workers)
            while (todo and not stop.reason) or busy:
                while idle and todo and not stop.reason:
                    conn, process = idle.pop()
                    conn.send(todo.pop(0))
                    busy[conn] = process
                for conn in wait(list(busy)):
                    process = busy.pop(conn)
                    idle.append((conn, process))
                    stop.take(conn, process, on_result)
        finally:
            if busy:  # the parent failed: the running tasks stop as on a signal
                stop.request("the parent failed")
            for conn, process in workers:
                with suppress(OSError):
                    conn.send(None)
                process.join()
    if stop.error:
        raise stop.error
    if stop.reason:
        raise Stopped(stop.reason)


class _Stop:
    """Why the tasks stop early (``reason``, None while they do not) and the error that made them, if any."""

    def __init__(self, busy: dict[Connection, multiprocessing.Process]):
        self.busy = busy
        self.reason: str | None = None
        self.error: BaseException | None = None

    def request(self, reason: str) -> None:
        """No further task starts; the running ones get SIGTERM, once (a second stops a training at once)."""
        if self.reason is None:
            self.reason = reason
            self.terminate_busy()

    def handler(self, signum: int, frame) -> None:
        """The parent's SIGINT/SIGTERM: the first one stops the tasks, a second one is passed on too."""
        if self.reason is None:
            self.request(signal.Signals(signum).name)
        else:
            self.terminate_busy()

    def terminate_busy(self) -> None:
        for process in self.busy.values():
            with suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)

    def take(self, conn: Connection, process: multiprocessing.Process, on_result: Callable[[Any], None]) -> None:
        """What a worker sends back when its task has ended."""
        try:
            kind, value = conn.recv()
        except EOFError:  # it died: stopped by us between two tasks, or killed (out of memory?)
            if self.reason:
                return
            process.join()
            kind, value = "error", (MdpoError(f"a worker process died (exit code {process.exitcode})"), "")
        if kind == "result":
            on_result(value)
        elif kind == "stopped":
            self.request("a worker was stopped")
        elif self.error is None:
            error, remote = value
            self.error = error or RuntimeError(f"a worker failed:\n{remote}")
            self.request("a worker failed")


def _serve(fn: Callable, conn: Connection, parent: int) -> None:
    """A worker's life: the tasks the parent sends, one at a time, until it sends None."""
    os.setpgrp()
    prctl = getattr(libc(), "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before prctl took hold
        return
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # outside a training, SIGTERM interrupts
    try:
        while (task := conn.recv()) is not None:
            conn.send(_outcome(fn, task))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):  # stopped while idle, or the parent is gone
        pass


def _outcome(fn: Callable, task: tuple) -> tuple[str, Any]:
    try:
        return "result", fn(*task)
    except KeyboardInterrupt:  # SIGTERM: a training has kept its checkpoint
        return "stopped", None
    except Exception as exc:  # an MdpoError travels as it is, anything else as its traceback
        return "error", (exc if isinstance(exc, MdpoError) else None, traceback.format_exc())
