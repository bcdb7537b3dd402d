# SPDX-License-Identifier: MIT
"""libmmapd's byte rings (mmapd-ring.h) as binary file objects.

A Ring is an io.RawIOBase over one ring handle: read(), readinto(), readline(), iteration over
lines and readall() on the reading side; write() and writelines() on the writing side. It is
the same ring C programs use (same region layout, same futex wake-ups), so a C writer and a
Python reader (or the reverse) share it directly. Reads wait up to the ring's timeout for
bytes and take all there are in one call (mmapd_ring_read_some()), in whole records of
`unit` bytes when one is set; the end of the stream (b"" from read()) is the writer handle
closing or dying. Each write() is published at once (mmapd_ring_put() then
mmapd_ring_flush()); put() and flush() batch several.
"""
from __future__ import annotations

import ctypes
import io
from typing import TYPE_CHECKING, Any

from . import _lib
from ._errors import check, error
from ._lib import lib
from ._types import timeout_ms

if TYPE_CHECKING:
    from .client import Client

_EPIPE, _ETIMEDOUT, _EOVERFLOW, _EINTR = -32, -110, -75, -4


class Ring(io.RawIOBase):
    """A byte ring between processes, as a binary file (see the module's description).

    mode "r" claims the ring's one reader side, "w" its one writer side, "rw" both, ""
    neither (several unclaimed handles must take turns under a lock of their own).
    timeout: seconds a read or a write waits (None: forever). unit: see the unit property.
    """

    def __init__(self, client: "Client", name: str, mode: str, capacity: int | None,
                 overwrite: bool, anonymous: bool, timeout: float | None,
                 unit: int = 1) -> None:
        super().__init__()
        if mode not in ("r", "w", "rw", ""):
            raise ValueError(f"ring mode must be 'r', 'w', 'rw' or '', not {mode!r}")
        flags = (_lib.RING_READER if "r" in mode else 0) | (_lib.RING_WRITER if "w" in mode else 0)
        ptr = ctypes.c_void_p()
        if capacity is not None:
            flags |= (_lib.RING_OVERWRITE if overwrite else 0) | (_lib.RING_ANONYMOUS if anonymous else 0)
            client._call(lib.mmapd_ring_create, client._p(), name.encode(), capacity, flags,
                         ctypes.byref(ptr), name=name)
        else:
            client._call(lib.mmapd_ring_open, client._p(), name.encode(), flags,
                         ctypes.byref(ptr), name=name)
        self._ptr: int | None = ptr.value
        self._close = _lib.closer(lib.mmapd_ring_close, ptr.value)  # type: ignore[arg-type]
        self.name = name
        self.mode = mode
        self.timeout = timeout
        self.client = client
        self._cap = lib.mmapd_ring_capacity(self._ptr)
        self.unit = unit
        self._buf = ctypes.create_string_buffer(min(self._cap, 1 << 20))

    @property
    def timeout(self) -> float | None:
        """Seconds a read or a write waits (None: forever)."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._tmo = timeout_ms(value)
        self._timeout = value

    def _p(self) -> int:
        if self._ptr is None:
            raise ValueError("I/O operation on closed ring")
        return self._ptr

    @property
    def capacity(self) -> int:
        """The ring's size in bytes (fixed at creation)."""
        return self._cap

    @property
    def lost(self) -> int:
        """Overwrite mode: bytes this handle's reads skipped because they were overwritten."""
        return lib.mmapd_ring_lost(self._p())

    def readable_bytes(self) -> int:
        """Bytes published and not read yet."""
        return lib.mmapd_ring_readable(self._p())

    def writable_bytes(self) -> int:
        return lib.mmapd_ring_writable(self._p())

    def readable(self) -> bool:
        return self.mode != "w"

    def writable(self) -> bool:
        return self.mode != "r"

    def readinto(self, b: Any) -> int:
        """Reads into b every whole unit (see unit) that is there and fits, in one call
        (mmapd_ring_read_some()), waiting for the first; 0 at the end of the stream. At the
        end, a last piece shorter than a unit is read as it is. A b shorter than a unit takes
        what fits, as with unit 1."""
        view = memoryview(b).cast("B")
        if len(view) == 0:
            return 0
        unit = self._unit if len(view) >= self._unit else 1
        dst = (ctypes.c_char * len(view)).from_buffer(view)
        while True:
            n = lib.mmapd_ring_read_some(self._p(), dst, len(view), unit, self._tmo)
            if n == _EINTR or n == _EOVERFLOW:
                continue   # overwritten bytes are skipped (see lost): read the oldest intact
            if n == _EPIPE:
                # The writer is gone: drain what it left (a last partial unit included).
                n = lib.mmapd_ring_read(self._p(), dst, len(view))
                if n == _EOVERFLOW:
                    continue
            return check(n, self.name)

    @property
    def unit(self) -> int:
        """The record size reads deliver whole (1: any byte count). With unit = the size of a
        fixed-size record, read(n) and readinto() never split one, so a NumPy array of
        records is filled with ring.readinto(array)."""
        return self._unit

    @unit.setter
    def unit(self, value: int) -> None:
        if not 1 <= value <= self._cap:
            raise ValueError(f"unit must be 1..{self._cap} (the capacity), not {value}")
        self._unit = value

    def readall(self) -> bytes:
        """Reads until the writer closes."""
        out = bytearray()
        while True:
            chunk = self.read(len(self._buf))
            if not chunk:
                return bytes(out)
            out += chunk

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        """Reads up to and including the next b"\\n" (or size bytes, or what is left at the
        end of the stream), waiting for it."""
        limit = -1 if size is None else size
        out = bytearray()
        while limit < 0 or len(out) < limit:
            want = len(self._buf) if limit < 0 else min(len(self._buf), limit - len(out))
            n = lib.mmapd_ring_read_until(self._p(), 10, self._buf, want,
                                          self._tmo)
            if n == _EINTR or n == _EOVERFLOW:
                continue
            if n == _EPIPE:
                # No newline will come: take the partial last line, if any.
                got = self.read(want)
                out += got
                if not got or lib.mmapd_ring_readable(self._p()) == 0:
                    break
                continue
            check(n, self.name)
            out += self._buf.raw[:n]
            if out.endswith(b"\n"):
                break
        return bytes(out)

    def put(self, data: Any) -> int:
        """Adds data to the pending batch without publishing it (see flush()), waiting for
        room (publishing the batch) when it is full. Returns len(data) in bytes."""
        if type(data) is not bytes:
            data = bytes(data)
        ptr, cap, n = self._p(), self._cap, len(data)
        for i in range(0, n, cap):
            chunk = data[i:i + cap] if n > cap else data
            r = lib.mmapd_ring_put(ptr, chunk, len(chunk), self._tmo)
            if r < 0:
                raise error(r, self.name)
        return n

    def write(self, data: Any) -> int:  # type: ignore[override]
        """Writes all of data, waiting for room, and publishes it. Raises BrokenPipeError when
        the reader handle closed or died, TimeoutError after the ring's timeout."""
        n = self.put(data)
        r = lib.mmapd_ring_flush(self._ptr)
        if r < 0:
            raise error(r, self.name)
        return n

    def flush(self) -> None:
        """Publishes the pending batch of put() with one store (and at most one wake-up)."""
        if self._ptr is not None:
            check(lib.mmapd_ring_flush(self._ptr), self.name)

    def close(self) -> None:
        """Publishes what is pending and closes the handle (the writer's close is the end of
        the stream for the reader)."""
        if self._ptr is not None:
            self._ptr = None
            self._close()  # type: ignore[operator]
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:   # interpreter shutdown: modules may be gone already
            pass

    def __repr__(self) -> str:
        return f"<mmapd.Ring {self.name!r} mode={self.mode!r}{' closed' if self.closed else ''}>"
