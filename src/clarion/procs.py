"""Helper processes that never outlive the process that started them.

A `clarion serve` killed with SIGKILL runs no clean-up, so its CSV parsing workers would
keep running, orphaned, for ever. Each worker therefore asks the Linux kernel to send it
SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`), and, on every platform, watches
its parent's pid from a daemon thread as a second line (the kernel signal is tied to the
thread that forked, and does not exist outside Linux).
"""

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from clarion import heap

PR_SET_PDEATHSIG = 1
WATCH_EVERY = 0.5  # seconds between two looks at the parent pid


def _kernel_kills_us_with(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)  # orphaned: nobody will ever read our results
        time.sleep(WATCH_EVERY)


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: end this process as soon as `parent_pid` is gone."""
    _kernel_kills_us_with(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="parent-watch", daemon=True).start()


def _start_helper(parent_pid: int) -> None:
    """Process-pool initializer: die with the parent, and settle the heap. A spawned helper
    has loaded the parent's whole `__main__` (the `clarion` command and the application)
    by now, so it holds as many objects as the parent, and without this its full collections
    took 0.9 s of a CSV import's 5.9 s of parsing CPU (100,000 rows)."""
    die_with_parent(parent_pid)
    heap.settle()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that exit when this process dies, however.
    (spawn: forking a process that runs an event loop and database threads is unsafe.)"""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_start_helper,
        initargs=(os.getpid(),),
    )
