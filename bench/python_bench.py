#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python package against the standard library's own shared-memory tools, in one run.

`make bench` runs it after mmapd-bench. It starts its own mmapd ($MMAPD_BIN) on a temporary
directory, loads the package from python/ of the tree (libmmapd from $MMAPD_LIBRARY), and
measures four things each way, in the same run, on the same machine:

  open+map        Client.open() + close() of an existing 64 KiB region
                  vs multiprocessing.shared_memory.SharedMemory(name) + close()
  lock+unlock     Region.lock() + release() of the whole region (the control page's fast
                  path: no daemon) vs multiprocessing.Lock acquire + release (a futex)
  change report   a report_changed() in one process seen as an event by a subscriber in
                  another, which reports back: half the round trip
                  vs the same ping-pong of (offset, length) tuples over two multiprocessing.Queue
  ring 64 B       64-byte messages from one process to another through a Ring (each write
                  published; then in batches of 64 with put() and flush()) vs through a
                  multiprocessing.Queue, time per message

Each figure is the median of --runs runs (default 3). The last column is the ratio of the
baseline's time per operation to mmapd's (above 1: mmapd is faster). Usage:
  MMAPD_BIN=build/mmapd MMAPD_LIBRARY=build/libmmapd.so.0 python3 bench/python_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import shared_memory

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "python"))
os.environ.setdefault("MMAPD_LIBRARY", os.path.join(TOP, "build", "libmmapd.so.0"))

import mmapd  # noqa: E402

# Children are forked before the parent connects in each case, and leave with os._exit()
# (multiprocessing's way), so no connection is ever shared across fork().
CTX = mp.get_context("fork")


def start_daemon() -> tuple[subprocess.Popen, str]:
    d = tempfile.mkdtemp(prefix="mmapd-pybench.")
    sock = os.path.join(d, "s")
    bin_ = os.environ.get("MMAPD_BIN", os.path.join(TOP, "build", "mmapd"))
    proc = subprocess.Popen([bin_, "--foreground", "--no-config", "--socket", sock, "--data-dir",
                             os.path.join(d, "data"), "--log-level", "warn"],
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
            return proc, d
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("python_bench: mmapd did not start")
            time.sleep(0.01)


def per_op(fn, n: int) -> float:
    """Seconds per operation of fn(n) (which does n operations)."""
    t0 = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t0) / n


# ---- open+map -----------------------------------------------------------------------------

def open_mmapd(sock: str, n: int) -> float:
    with mmapd.connect(sock) as c:
        c.open("bench-open", size=65536, create=True, mode="rw").close()

        def run(k: int) -> None:
            for _ in range(k):
                c.open("bench-open", mode="rw").close()
        return per_op(run, n)


def open_shm(n: int) -> float:
    shm = shared_memory.SharedMemory(create=True, size=65536)
    try:
        def run(k: int) -> None:
            for _ in range(k):
                shared_memory.SharedMemory(name=shm.name).close()
        return per_op(run, n)
    finally:
        shm.close()
        shm.unlink()


# ---- lock+unlock --------------------------------------------------------------------------

def lock_mmapd(sock: str, n: int) -> float:
    with mmapd.connect(sock) as c, c.open("bench-lock", size=4096, create=True, mode="rw") as r:
        def run(k: int) -> None:
            for _ in range(k):
                r.lock().release()
        return per_op(run, n)


def lock_mp(n: int) -> float:
    lk = CTX.Lock()

    def run(k: int) -> None:
        for _ in range(k):
            lk.acquire()
            lk.release()
    return per_op(run, n)


# ---- change report -> subscriber (ping-pong) ----------------------------------------------

def _pong_mmapd(sock: str, n: int, ready) -> None:
    with mmapd.connect(sock, name="pong") as c:
        c.subscribe("bench-ping")
        r = c.open("bench-pong", mode="rw")
        ready.set()
        seen = 0
        for ev in c.events():
            if ev.type == mmapd.EventType.CHANGED:
                seen += 1
                r.report_changed(0, 8)
                if seen == n:
                    break
        r.close()


def notify_mmapd(sock: str, n: int) -> float:
    with mmapd.connect(sock) as c:
        for name in ("bench-ping", "bench-pong"):
            c.open(name, size=4096, create=True, mode="rw").close()
    ready = CTX.Event()
    child = CTX.Process(target=_pong_mmapd, args=(sock, n, ready))
    child.start()
    with mmapd.connect(sock, name="ping") as c:
        ready.wait(10)
        c.subscribe("bench-pong")
        r = c.open("bench-ping", mode="rw")
        t0 = time.perf_counter()
        for _ in range(n):
            r.report_changed(0, 8)
            next(e for e in c.events() if e.type == mmapd.EventType.CHANGED)
        dt = time.perf_counter() - t0
        r.close()
        child.join(10)
        return dt / n / 2


def _pong_queue(qin, qout, n: int) -> None:
    for _ in range(n):
        qout.put(qin.get())


def notify_queue(n: int) -> float:
    qin, qout = CTX.Queue(), CTX.Queue()
    child = CTX.Process(target=_pong_queue, args=(qin, qout, n))
    child.start()
    qin.put((0, 8))
    qout.get()                                   # the child is running
    t0 = time.perf_counter()
    for _ in range(n - 1):
        qin.put((0, 8))
        qout.get()
    dt = time.perf_counter() - t0
    child.join(10)
    return dt / (n - 1) / 2


# ---- ring 64 B messages -------------------------------------------------------------------

MSG = bytes(range(64))


def _ring_reader(sock: str, name: str, n: int, ready) -> None:
    with mmapd.connect(sock) as c:
        ready.wait(10)
        ring = c.ring(name, "r", timeout=10)
        buf = bytearray(1 << 16)
        left = n * len(MSG)
        while left > 0:
            left -= ring.readinto(memoryview(buf)[:min(len(buf), left)])
        ring.close()


def ring_mmapd(sock: str, n: int, run_no: list[int], batch: int = 1) -> float:
    run_no[0] += 1
    name = f"bench-ring-{run_no[0]}"
    ready = CTX.Event()
    child = CTX.Process(target=_ring_reader, args=(sock, name, n, ready))
    child.start()
    with mmapd.connect(sock) as c:
        ring = c.ring(name, "w", capacity=1 << 16, timeout=10)
        ready.set()
        t0 = time.perf_counter()
        if batch == 1:
            for _ in range(n):
                ring.write(MSG)
        else:
            for i in range(1, n + 1):
                ring.put(MSG)
                if i % batch == 0:
                    ring.flush()
            ring.flush()
        child.join(30)
        dt = time.perf_counter() - t0
        ring.close()
        c.delete(name)
        return dt / n


def _queue_reader(q, n: int) -> None:
    for _ in range(n):
        q.get()


def ring_queue(n: int) -> float:
    q = CTX.Queue()
    child = CTX.Process(target=_queue_reader, args=(q, n))
    child.start()
    t0 = time.perf_counter()
    for _ in range(n):
        q.put(MSG)
    child.join(30)
    return (time.perf_counter() - t0) / n


def fmt(s: float) -> str:
    us = s * 1e6
    return f"{us * 1000:.0f}ns" if us < 1 else f"{us:.2f}us" if us < 100 else f"{us:.0f}us"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few iterations (smoke runs)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    proc, d = start_daemon()
    sock = os.path.join(d, "s")
    ring_runs = [0]
    cases = [
        ("open+map", "SharedMemory(name)+close", 2000,
         lambda n: open_mmapd(sock, n), open_shm),
        ("lock+unlock", "multiprocessing.Lock", 5000,
         lambda n: lock_mmapd(sock, n), lock_mp),
        ("change report -> subscriber (one way)", "multiprocessing.Queue ping-pong", 2000,
         lambda n: notify_mmapd(sock, n), notify_queue),
        ("ring 64 B messages", "multiprocessing.Queue", 100000,
         lambda n: ring_mmapd(sock, n, ring_runs), ring_queue),
        ("ring 64 B messages, published 64 at a time (put, flush)", "multiprocessing.Queue",
         100000, lambda n: ring_mmapd(sock, n, ring_runs, 64), ring_queue),
    ]
    print(f"python bench: Python {sys.version.split()[0]}, libmmapd {mmapd.library_version()}, "
          f"{os.cpu_count()} CPUs, median of {args.runs} runs; ratio = baseline time / mmapd time")
    try:
        for label, base_label, n, mine, base in cases:
            n = max(n // scale, 20)
            m = statistics.median(mine(n) for _ in range(args.runs))
            b = statistics.median(base(n) for _ in range(args.runs))
            print(f"python {label}: mmapd {fmt(m)}/op, {base_label} {fmt(b)}/op: "
                  f"ratio {b / m:.3g}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
