# SPDX-License-Identifier: MIT
"""Test harness of the Python package: a real mmapd ($MMAPD_BIN, default build/mmapd) on a
fresh temporary socket and data directory per test class, as tests/harness.c does for the C
suites, plus the C peer program (build/python/mmapd-pypeer) that the interop tests run as a
separate process. libmmapd is the build tree's ($MMAPD_LIBRARY, default build/libmmapd.so.0);
the package is imported from python/ of the tree.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MMAPD_BUILD", os.path.join(TOP, "build"))
os.environ.setdefault("MMAPD_LIBRARY", os.path.join(BUILD, "libmmapd.so.0"))
sys.path.insert(0, os.path.join(TOP, "python"))

import mmapd  # noqa: E402

MMAPD_BIN = os.environ.get("MMAPD_BIN", os.path.join(BUILD, "mmapd"))
PYPEER = os.environ.get("MMAPD_PYPEER", os.path.join(BUILD, "python", "mmapd-pypeer"))
TESTCLIENT = os.environ.get("MMAPD_TESTCLIENT", os.path.join(BUILD, "tests", "mmapd-testclient"))

HAVE_NUMPY = importlib.util.find_spec("numpy") is not None


class Daemon:
    """mmapd on <tmp>/s with data directory <tmp>/data; stop() asserts exit status 0."""

    def __init__(self, config: str | None = None, log_level: str = "warn") -> None:
        self.dir = tempfile.mkdtemp(prefix="mmapd-py.")
        self.sock = os.path.join(self.dir, "s")
        self.data = os.path.join(self.dir, "data")
        # --no-config: never the host's /etc/mmapd/mmapd.json; a later --config wins over it.
        self.argv = [MMAPD_BIN, "--foreground", "--no-config", "--socket", self.sock,
                     "--data-dir", self.data, "--log-level", log_level]
        if config is not None:
            cfg = os.path.join(self.dir, "cfg.json")
            with open(cfg, "w") as f:
                f.write(config)
            os.chmod(cfg, 0o600)  # mmapd refuses a config file others may write
            self.argv += ["--config", cfg]
        self.start()

    def start(self) -> None:
        """Starts mmapd (again, after kill(), on the same socket and data directory)."""
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS")}
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mmapd did not start (status {self.proc.poll()})")
                time.sleep(0.01)

    def env(self) -> dict[str, str]:
        return dict(os.environ, MMAPD_SOCKET=self.sock)

    def kill(self) -> None:
        """Kills mmapd with SIGKILL (the directory stays for start())."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(5)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
        assert status == 0, f"mmapd exited with status {status}"


class DaemonTest(unittest.TestCase):
    """A test class with its own daemon (self.d) and a connection per test (self.c)."""
    config: str | None = None
    log_level = "warn"

    @classmethod
    def setUpClass(cls) -> None:
        cls.d = Daemon(cls.config, cls.log_level)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.d.stop()

    def setUp(self) -> None:
        self.c = mmapd.connect(self.d.sock, name=self.id().rsplit(".", 1)[-1][:60])

    def tearDown(self) -> None:
        self.c.close()

    def peer(self, *args: str, timeout: float = 10, check: bool = True,
             input: str | None = None) -> str:
        """Runs the C peer to completion; returns its stdout."""
        return self.run_c(PYPEER, *args, timeout=timeout, check=check, input=input)

    def run_c(self, prog: str, *args: str, timeout: float = 10, check: bool = True,
              input: str | None = None) -> str:
        p = subprocess.run([prog, *args], env=self.d.env(), capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and p.returncode != 0:
            self.fail(f"{os.path.basename(prog)} {' '.join(args)}: status {p.returncode}, "
                      f"stderr {p.stderr!r}")
        return p.stdout

    @staticmethod
    def end(proc: subprocess.Popen) -> int:
        """Closes a spawned program's stdin (its end of input), waits, returns its status."""
        proc.stdin.close()
        try:
            return proc.wait(5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def spawn(self, prog: str, *args: str) -> subprocess.Popen:
        """Starts a C program with pipes on stdin and stdout (text, line-buffered)."""
        return subprocess.Popen([prog, *args], env=self.d.env(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1)


def run_plain(prog: str, *args: str) -> str:
    """Runs a program that needs no daemon; returns its stdout (asserting status 0)."""
    p = subprocess.run([prog, *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, f"{prog} {args}: status {p.returncode}: {p.stderr}"
    return p.stdout
