# SPDX-License-Identifier: MIT
"""A mapped region (struct mmapd_region) as a Python object: the window's bytes through the
buffer protocol and NumPy, and the daemon's coordination (locks, resize, change reports,
flush, policy) on it.

Memory safety. Views and arrays point into libmmapd's mapping, so each one keeps it alive: it
holds a "pages" object (a ctypes array at the window's address) which holds the region's
handle, and the handle alone calls mmapd_region_close(). close() therefore releases the
region at once when nothing else points into it, and otherwise when the last view or array is
gone. The region's own buffer (memoryview(region)) is replaced after every libmmapd call of
its client, which is when libmmapd follows the region's size, so it always covers the window
as it is. A window that follows the region (length 0) gets a reservation of address space
(DEFAULT_RESERVE unless told) so that growth maps new pages in place and never moves views and
arrays; a resize from this process that would move them (beyond the reservation) or cut them
(a shrink below their end) raises BufferError instead. Growth by another process beyond the
reservation, or a shrink by another process, cannot be refused: as in C, the views then point
at unmapped (or PROT_NONE) pages and touching them faults.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import weakref
from typing import TYPE_CHECKING, Any

from . import _lib
from ._buffer import Exporter
from ._errors import check
from ._lib import lib
from ._types import Advice, Event, EventType, Mode, RegionInfo, mode_of, policy_struct, \
    timeout_ms

if TYPE_CHECKING:
    from .ndarray import NDArray
    from .persist import PHash, PVec
    from .client import Client

# Address space a following window reserves by default: growth up to this never moves it.
DEFAULT_RESERVE = 1 << 30


@functools.lru_cache(maxsize=64)
def _pages_type(length: int) -> type:
    # A subclass, so that instances take attributes (the handle) and weak references.
    return type("_Pages", (ctypes.c_ubyte * length,), {})


class _Handle:
    """Owns the struct mmapd_region *: closes it when the last reference goes."""

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr
        self._final = weakref.finalize(self, _lib.closer(lib.mmapd_region_close, ptr))


class Lock:
    """A lock held in the daemon (mmapd_lock()), released by release() or at the end of a
    with block; the daemon also releases it when the process dies or disconnects."""

    def __init__(self, client: "Client", lock_id: int, handle: "_Handle | None") -> None:
        self.client = client
        self.id = lock_id
        self._handle = handle   # a region's lock keeps the region's handle alive
        self._held = True

    @property
    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        """Releases the lock (a no-op when it was released already, or when its connection
        was closed, which released it). Raises OSError EBADF when the daemon no longer knew
        it: the connection broke and was re-made meanwhile (a LOCKS_LOST event), so the
        bytes were not protected all along."""
        if not self._held:
            return
        self._held = False
        if self._handle is not None:
            self.client._call(lib.mmapd_region_unlock, self._handle.ptr, self.id)
        elif not self.client.closed:
            self.client._call(lib.mmapd_unlock, self.client._p(), self.id)

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<mmapd.Lock {self.id} {'held' if self.held else 'released'}>"


class Region(Exporter):
    """An open region: a window onto a region's bytes, mapped in this process.

    Supports the buffer protocol (memoryview(region), bytes(region), numpy.frombuffer),
    len(), indexing and slicing (bytes), assignment to slices, and array() for a NumPy array
    over the shared pages. Use it as a context manager, or call close().
    """

    def __init__(self, client: "Client", ptr: int, reserve: int, follows: bool) -> None:
        self.client = client
        self._follows = follows
        self._handle: _Handle | None = _Handle(ptr)
        self._ptr = ptr
        self._reserve = reserve
        self._name = lib.mmapd_region_name(ptr).decode()
        self._mode = Mode(lib.mmapd_region_mode(ptr))
        self._shape: tuple[int, int, bool] | None = None
        self._exports: list[tuple[weakref.ref, int]] = []   # (pages, window end) handed out
        self.refresh()

    # ---- the window ---------------------------------------------------------------------

    def _p(self) -> int:
        if self._handle is None:
            raise ValueError(f"region '{self._name}' is closed")
        return self._ptr

    def refresh(self) -> None:
        """Brings the exported buffer in line with the window (done after every call of the
        client; call it after touching libmmapd from elsewhere)."""
        if self._handle is None:
            return
        shape = (lib.mmapd_region_data(self._ptr) or 0, lib.mmapd_region_length(self._ptr),
                 self._mode == Mode.RO)
        if shape != self._shape:
            self._shape = shape
            self.export(self._pages_view(0, shape[1]))

    def _pages_view(self, offset: int, length: int) -> memoryview:
        addr, _, ro = self._shape  # type: ignore[misc]
        pages = _pages_type(length).from_address(addr + offset)
        pages.handle = self._handle
        self._exports = [(r, e) for r, e in self._exports if r() is not None]
        self._exports.append((weakref.ref(pages), offset + length))
        view = memoryview(pages).cast("B")
        return view.toreadonly() if ro else view

    def _live_end(self) -> int:
        """The end of the furthest view or array still alive (0: none). The region's own
        buffer counts only while views made of it (memoryview(region)) are alive: it is let
        go of for the count and made again."""
        self.export(None)
        self._shape = None
        self._exports = [(r, e) for r, e in self._exports if r() is not None]
        end = max((e for _, e in self._exports), default=0)
        self.refresh()
        return end

    @property
    def name(self) -> str:
        """The region's name; after a rename (MMAPD_EVENT_RENAMED read), the new one."""
        if self._handle is not None:
            self._name = lib.mmapd_region_name(self._ptr).decode()
        return self._name

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def mode(self) -> str:
        """"ro", "rw" or "cow"."""
        return self._mode.name.lower()

    @property
    def address(self) -> int:
        """The address of the window's first byte (mmapd_region_data())."""
        return lib.mmapd_region_data(self._p()) or 0

    @property
    def length(self) -> int:
        """The window's length in bytes (it follows the region when opened with length 0)."""
        return lib.mmapd_region_length(self._p())

    @property
    def offset(self) -> int:
        return lib.mmapd_region_offset(self._p())

    @property
    def size(self) -> int:
        """The whole region's size as last heard from the daemon."""
        return lib.mmapd_region_size(self._p())

    @property
    def generation(self) -> int:
        return lib.mmapd_region_generation(self._p())

    @property
    def page_size(self) -> int:
        return lib.mmapd_region_page_size(self._p())

    def fileno(self) -> int:
        """The region's descriptor (borrowed: do not close it)."""
        return lib.mmapd_region_fd(self._p())

    def __len__(self) -> int:
        return self.length

    def view(self, offset: int = 0, length: int | None = None) -> memoryview:
        """A memoryview (format "B") of window bytes offset..offset+length (default: to the
        end), read-only on a read-only mapping. It keeps the mapping alive."""
        self._p()
        self.refresh()
        n = self._shape[1]  # type: ignore[index]
        if length is None:
            length = n - offset
        if offset < 0 or length < 0 or offset + length > n:
            raise IndexError(f"range {offset}+{length} is outside the window of {n} bytes")
        return self._pages_view(offset, length)

    def array(self, dtype: Any = "u1", shape: Any = None, offset: int = 0,
              order: str = "C") -> Any:
        """A NumPy array of dtype over the window's bytes from offset, with no copy: writes
        through it are writes to the shared pages. shape None takes as many elements as fit.
        Read-only for a read-only mapping. The array keeps the mapping alive."""
        import numpy as np   # only this call needs NumPy
        dt = np.dtype(dtype)
        n = self.length - offset
        if shape is None:
            shape = (n // dt.itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        count = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        nbytes = count * dt.itemsize
        if offset < 0 or nbytes > n:
            raise ValueError(f"an array of {nbytes} bytes at {offset} does not fit the window "
                             f"of {self.length} bytes")
        view = self.view(offset, nbytes)
        return np.frombuffer(view, dtype=dt, count=count).reshape(shape, order=order)  # type: ignore[call-overload]

    def __getitem__(self, key: int | slice) -> int | bytes:
        v = self.view()
        return v[key] if isinstance(key, int) else v[key].tobytes()

    def __setitem__(self, key: int | slice, value: Any) -> None:
        self.view()[key] = value

    def __bytes__(self) -> bytes:
        return self.view().tobytes()

    def read(self, offset: int, length: int) -> bytes:
        """Copies length bytes at window offset (mmapd_region_read(): bounds-checked)."""
        buf = ctypes.create_string_buffer(length)
        check(lib.mmapd_region_read(self._p(), offset, buf, length), self._name)
        return buf.raw

    def write(self, offset: int, data: bytes) -> None:
        """Copies data to window offset (mmapd_region_write(): bounds-checked, and reported as
        changed when the region was opened with report_writes=True)."""
        data = bytes(data)
        self.client._call(lib.mmapd_region_write, self._p(), offset, data, len(data),
                          name=self._name)

    def pstruct(self, offset: int, ctype: Any, type_name: str, version: int = 1,
                init: bool = True) -> Any:
        """The persistent struct at window offset: see mmapd.persist.pstruct()."""
        from .persist import pstruct
        return pstruct(self, offset, ctype, type_name, version, init)

    def pvec_field(self, offset: int, dtype: Any, *, create: bool = True,
                   anonymous: bool = False, durable: bool = False) -> "PVec":
        """The persistent vector that the field (an mmapd.PField, 16 bytes, 8-byte aligned)
        at window offset stands for (mmapd_pvec_open_field()): it lives in companion region
        field_name(offset), recorded in the field on first open. OSError EPROTO when the
        field holds a hash map or other sizes."""
        from .persist import PVec
        return PVec(self.client, (self, offset), dtype, create, anonymous, durable)

    def phash_field(self, offset: int, key_size: int, value_size: int, *, create: bool = True,
                    anonymous: bool = False, durable: bool = False) -> "PHash":
        """The persistent hash map that the field at window offset stands for
        (mmapd_phash_open_field()); see pvec_field()."""
        from .persist import PHash
        return PHash(self.client, (self, offset), key_size, value_size, create, anonymous,
                     durable)

    def field_name(self, offset: int) -> str:
        """The companion region of the field at window offset (mmapd_pfield_name())."""
        from .persist import field_name
        return field_name(self, offset)

    def ndarray(self, offset: int = 0, dtype: Any = None, shape: Any = None,
                create: bool = True) -> "NDArray":
        """The N-d array at window offset (a multiple of 64 in the region), as an
        mmapd.NDArray (numpy() gives it as a NumPy array, no copy). With dtype and shape the
        header must record exactly them (OSError EPROTO otherwise), and create formats an
        empty header (zeroed elements). Without them (create ignored) the array is opened
        with the type and shape its header records. mmapd.ndarray_footprint() gives the
        bytes it takes."""
        from .ndarray import NDArray
        return NDArray._open(self, offset, dtype, shape, create)

    # ---- coordination -------------------------------------------------------------------

    def lock(self, offset: int = 0, length: int = 0, exclusive: bool = True,
             timeout: float | None = None, nowait: bool = False) -> Lock:
        """Locks window bytes offset..offset+length (0: to the end) and returns the held Lock
        (a context manager). The whole region of a read-write region (the defaults, on a
        window at offset 0) is locked on its control page in shared memory, without a daemon
        round trip; a range is locked in the daemon. Waits up to timeout seconds (None:
        forever), in the daemon's fair queue past the first millisecond; nowait fails at once
        (BlockingIOError) on a conflict. Raises TimeoutError, or OSError with errno EDEADLK
        when waiting would deadlock."""
        flags = (_lib.LOCK_EXCLUSIVE if exclusive else 0) | (_lib.LOCK_NOWAIT if nowait else 0)
        out = ctypes.c_uint64()
        self.client._call(lib.mmapd_region_lock, self._p(), offset, length, flags,
                          timeout_ms(timeout), ctypes.byref(out), name=self._name)
        return Lock(self.client, out.value, self._handle)

    def resize(self, size: int, sparse: bool = False, grow_only: bool = False) -> None:
        """Resizes the whole region to size bytes (growth reaches every process's mapping;
        a shrink is two-phase). Raises BufferError when views or arrays from this region are
        alive and the resize would move them (growth past the window's reservation) or cut
        them (a shrink below their end)."""
        p = self._p()
        live = self._live_end()
        if live:
            window_end = size - self.offset if size > self.offset else 0
            if window_end < live and not grow_only:
                raise BufferError(
                    f"cannot shrink region '{self._name}' to {size} bytes: views or arrays "
                    f"over its first {live} window bytes are alive (release them first)")
            if self._follows and window_end > max(self._reserve, self.length):
                raise BufferError(
                    f"cannot grow region '{self._name}' to {size} bytes: views or arrays "
                    f"over it are alive and its window reserved only {self._reserve} bytes, "
                    "so the mapping would move under them (release them, or open the region "
                    "with a larger reserve=)")
        flags = (_lib.RESIZE_SPARSE if sparse else 0) | (_lib.RESIZE_GROW_ONLY if grow_only else 0)
        self.client._call(lib.mmapd_region_resize, p, size, flags, name=self._name)

    def report_changed(self, offset: int = 0, length: int = 0) -> int:
        """Tells subscribers that window bytes offset..offset+length (0: to the end) changed;
        returns the change's sequence number. Writes through a mapping are invisible to
        everyone else until reported."""
        out = ctypes.c_uint64()
        self.client._call(lib.mmapd_region_report_changed, self._p(), offset, length,
                          ctypes.byref(out), name=self._name)
        return out.value

    def subscribe(self, external: bool = False) -> int:
        """Subscribes this client to the region's events; returns its sequence number.
        external: also changes made outside mmapd (see Client.subscribe)."""
        out = ctypes.c_uint64()
        self.client._call(lib.mmapd_region_subscribe_flags, self._p(),
                          _lib.SUBSCRIBE_EXTERNAL if external else 0, ctypes.byref(out),
                          name=self._name)
        return out.value

    def unsubscribe(self) -> None:
        self.client._call(lib.mmapd_region_unsubscribe, self._p(), name=self._name)

    def flush(self, offset: int = 0, length: int = 0) -> None:
        """Makes the range durable through the daemon (fdatasync); raises OSError(EIO) when
        the region is poisoned by a failed flush."""
        self.client._call(lib.mmapd_region_flush, self._p(), offset, length, name=self._name)

    def flush_async(self) -> int:
        """Starts a flush and returns its token; an Event FLUSH_DONE with seq == token says
        when it ended."""
        out = ctypes.c_uint64()
        self.client._call(lib.mmapd_region_flush_async, self._p(), ctypes.byref(out),
                          name=self._name)
        return out.value

    def msync(self, offset: int = 0, length: int = 0) -> bool:
        """msync() of this process's mapping (no daemon involved). Returns True when the range
        is durable, False when it was only batched (under a page)."""
        r = check(lib.mmapd_region_msync(self._p(), offset, length), self._name)
        return r == 0

    def set_policy(self, policy: str) -> None:
        """Sets the region's flush policy: "manual", "always", "every-bytes N[K|M|G]",
        "every-writes N" or "interval MS"."""
        p = policy_struct(policy)
        self.client._call(lib.mmapd_region_set_policy, self._p(), ctypes.byref(p),
                          name=self._name)

    @property
    def policy(self) -> str:
        return self.stat().policy

    def clear_error(self) -> None:
        """Clears a poisoned region."""
        self.client._call(lib.mmapd_region_clear_error, self._p(), name=self._name)

    def truncate_on_close(self, size: int) -> None:
        """Has the daemon truncate the region's file to size bytes once the region has no
        grant left, anyone's (fmmap's close_with_truncate)."""
        self.client._call(lib.mmapd_region_truncate_on_close, self._p(), size, name=self.name)

    def huge_bytes(self) -> int:
        """Bytes of the window the kernel backs with huge pages now (transparent or hugetlb;
        mmapd_region_huge_bytes(), from /proc/self/smaps)."""
        out = ctypes.c_uint64()
        self.client._call(lib.mmapd_region_huge_bytes, self._p(), ctypes.byref(out),
                          name=self.name)
        return out.value

    def stat(self) -> RegionInfo:
        """What the daemon says about the region."""
        out = ctypes.POINTER(_lib.RegionInfo)()
        self.client._call(lib.mmapd_region_stat, self._p(), ctypes.byref(out), name=self._name)
        try:
            return RegionInfo._from_c(out.contents)
        finally:
            lib.mmapd_region_info_free(out)

    def set_mode(self, mode: str) -> None:
        """Changes the mapping's mode in place ("ro", "rw", "cow"); the address stays."""
        m = mode_of(mode)
        self.client._call(lib.mmapd_region_set_mode, self._p(), int(m), name=self._name)
        self._mode = m
        self.refresh()   # the buffer's read-only flag follows the mode

    def advise(self, advice: Advice | str, offset: int = 0, length: int = 0) -> None:
        """madvise() a range: an Advice or its name ("willneed", "sequential", ...)."""
        a = Advice[advice.upper()] if isinstance(advice, str) else advice
        check(lib.mmapd_region_advise(self._p(), offset, length, int(a)), self._name)

    def prewarm(self, offset: int = 0, length: int = 0) -> None:
        """Faults the range in now, so first touches later do not."""
        check(lib.mmapd_region_prewarm(self._p(), offset, length), self._name)

    def mlock(self, offset: int = 0, length: int = 0) -> None:
        check(lib.mmapd_region_mlock(self._p(), offset, length), self._name)

    def munlock(self, offset: int = 0, length: int = 0) -> None:
        check(lib.mmapd_region_munlock(self._p(), offset, length), self._name)

    async def wait_changed(self, timeout: float | None = None) -> Event:
        """Waits (asyncio) for the next CHANGED (or OVERFLOW) event of this region, i.e. a
        change another client reports after the call; subscribes this client first if it
        is not. Returns the Event;
        raises TimeoutError after timeout seconds."""
        try:
            seq = self.subscribe()
        except OSError as e:
            if e.errno != errno.EALREADY:
                raise
            seq = self.stat().seq
        # Changes up to seq happened before the call: events of them may still be queued.
        fut = self.client._await_event(
            lambda ev: ev.region == self._name and ev.seq > seq and
            ev.type in (EventType.CHANGED, EventType.OVERFLOW))
        return await asyncio.wait_for(fut, timeout)

    # ---- life -------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the region: at once, or, while views or arrays over it are alive, when the
        last of them is gone. Further calls on it raise ValueError."""
        if self._handle is None:
            return
        self.export(None)
        self._handle = None
        self.client._forget(self)

    def __enter__(self) -> "Region":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._handle is None:
            return f"<mmapd.Region {self._name!r} closed>"
        return f"<mmapd.Region {self._name!r} {self.mode} length={self.length}>"
