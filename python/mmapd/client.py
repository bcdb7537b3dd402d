# SPDX-License-Identifier: MIT
"""A connection to mmapd (struct mmapd_client): opening regions, by-name operations, queries,
and events three ways (an iterator, a callback, asyncio).

Events. libmmapd queues events whichever call reads them and hands them out in
mmapd_client_dispatch(), calling one handler per client: here a ctypes callback that copies
each event into an Event (libmmapd's struct is only lent for the call) and queues it in
Python. events() dispatches and yields from that queue; on_event() passes them to a function
(from dispatch(), or from libmmapd's dispatch thread with start_dispatch_thread()); aevents()
and Region.wait_changed() watch mmapd_client_fd() with the running loop's add_reader() and
dispatch without waiting whenever it is readable. The GIL is released while libmmapd waits.

Every call that may have read events ends with a refresh of this client's open regions, so
their exported buffers follow any resize libmmapd acted on.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import json
import os
import time
import weakref
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

from . import _lib
from ._errors import check
from ._lib import lib
from ._types import (ClientInfo, Event, EventType, LockInfo, RegionInfo, Status, mode_of,
                     policy_struct, timeout_ms)
from .region import DEFAULT_RESERVE, Lock, Region

if TYPE_CHECKING:
    from .persist import PHash, PStrMap, PVec
    from .ring import Ring

_P = ctypes.c_void_p
# Events after which libmmapd may have changed a window of this client.
_REMAPS = frozenset((EventType.RESIZED, EventType.SHRINKING, EventType.SHRINK_CANCELLED,
                     EventType.RECONNECTED, EventType.DELETED))


_FLAG_BITS = {"create": _lib.OPEN_CREATE, "exclusive": _lib.OPEN_EXCL,
              "anonymous": _lib.OPEN_ANONYMOUS, "sparse": _lib.OPEN_SPARSE,
              "report_writes": _lib.OPEN_REPORT_WRITES, "populate": _lib.OPEN_POPULATE,
              "hugetlb": _lib.OPEN_HUGETLB, "executable": _lib.OPEN_EXEC,
              "temporary": _lib.OPEN_TEMPORARY, "truncate": _lib.OPEN_TRUNCATE}


def _flags(**on: bool) -> int:
    """The MMAPD_OPEN_* bits of the keyword arguments that are true."""
    return sum(_FLAG_BITS[k] for k, v in on.items() if v)


class Client:
    """A connection to mmapd. Made by connect(); a context manager that disconnects.

    Regions opened through it stay mapped after it is closed (as in C), until they are closed.
    A Client may be used from several threads; do not use it in a child after fork().
    """

    def __init__(self, path: str | None = None, name: str | None = None,
                 reconnect: float | None = 30.0) -> None:
        ptr = _P()
        r = lib.mmapd_connect(path.encode() if path else None,
                              (name or "python").encode(), ctypes.byref(ptr))
        check(r, path or os.environ.get("MMAPD_SOCKET") or "/run/mmapd/mmapd.sock")
        self._ptr: int | None = ptr.value
        self._disconnect = _lib.closer(lib.mmapd_disconnect, ptr.value)  # type: ignore[arg-type]
        self._regions: weakref.WeakSet[Region] = weakref.WeakSet()
        self._queue: collections.deque[Event] = collections.deque()
        self._handler: Callable[[Event], Any] | None = None
        self._thread = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aqueues: set[asyncio.Queue[Event]] = set()
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        me = weakref.ref(self)

        def on_event(_client: int, ev: Any, _userdata: int) -> None:
            c = me()
            if c is None:
                return
            event = Event._from_c(ev.contents)
            if event.type in _REMAPS:
                c._sync()   # libmmapd moved a window (also on the dispatch thread)
            if c._thread and c._handler is not None:
                c._handler(event)
            else:
                c._queue.append(event)

        self._cb = _lib.EVENT_FN(on_event)
        lib.mmapd_client_set_event_handler(self._ptr, self._cb, None)
        if reconnect is None:
            lib.mmapd_client_set_reconnect(self._ptr, -1)
        else:
            lib.mmapd_client_set_reconnect(self._ptr, timeout_ms(reconnect))

    # ---- plumbing ---------------------------------------------------------------------

    def _p(self) -> int:
        if self._ptr is None:
            raise ValueError("the connection is closed")
        return self._ptr

    def _sync(self) -> None:
        for region in list(self._regions):
            region.refresh()

    def _call(self, fn: Any, *args: Any, name: str | None = None) -> int:
        """Calls fn(*args), refreshes the regions, raises on a negative result."""
        r = fn(*args)
        err = None
        if isinstance(r, int) and r < 0:
            try:
                check(r, name)
            except OSError as e:
                err = e
        self._sync()
        if err is not None:
            raise err
        return r

    def _forget(self, region: Region) -> None:
        self._regions.discard(region)

    # ---- regions ----------------------------------------------------------------------

    def open(self, name: str, size: int | None = None, *, create: bool = False,
             mode: str = "ro", exclusive: bool = False, anonymous: bool = False,
             sparse: bool = False, offset: int = 0, length: int = 0,
             reserve: int | None = None, policy: str | None = None,
             report_writes: bool = False, populate: bool = False, hugetlb: bool = False,
             executable: bool = False, temporary: bool = False,
             truncate: bool = False) -> Region:
        """Opens region name (creating it with create=True, of size bytes) and maps the
        window offset..offset+length (length 0: the whole region, following its size) in
        mode "ro", "rw" or "cow". reserve: address space held for a following window to grow
        into without moving (default DEFAULT_RESERVE, 1 GiB; 0 for none). policy: the flush
        policy of a region being created. temporary: a region this call creates is deleted
        when its last grant goes; truncate (with create, mode "rw"): an existing region is
        emptied to size bytes first. Raises FileNotFoundError, FileExistsError (exclusive),
        PermissionError, ...
        """
        if create and size is None:
            raise ValueError("create=True needs size=")
        flags = _flags(create=create, exclusive=exclusive, anonymous=anonymous, sparse=sparse,
                       report_writes=report_writes, populate=populate, hugetlb=hugetlb,
                       executable=executable, temporary=temporary, truncate=truncate)
        return self._map(lib.mmapd_region_open, (self._p(), name.encode()), name, flags, mode,
                         size, offset, length, reserve, policy)

    def adopt(self, file: Any, name: str | None = None, *, mode: str = "ro", offset: int = 0,
              length: int = 0, reserve: int | None = None, report_writes: bool = False,
              populate: bool = False) -> Region:
        """Adopts a regular file this process opened (file: a descriptor, or an object with
        fileno(), such as open(path, "r+b")) as a region shared through the daemon
        (mmapd_region_adopt()): others adopting the same file, or opening the region by name,
        share its pages. name: what others open it by (None: the daemon names it
        "adopted-<dev>-<ino>"). The descriptor's access caps the mode: one opened read-only
        gives "ro" and "cow" only (else PermissionError). The file may be closed afterwards:
        libmmapd keeps its own copy while the region is open, to adopt the file again after
        a daemon restart. Raises FileExistsError (name taken, or the file adopted under
        another name), OSError ENODEV (not a regular file), ...
        """
        fd = file if isinstance(file, int) else file.fileno()
        flags = _flags(report_writes=report_writes, populate=populate)
        return self._map(lib.mmapd_region_adopt,
                         (self._p(), fd, name.encode() if name is not None else None),
                         name, flags, mode, None, offset, length, reserve, None)

    def map_path(self, path: str | os.PathLike[str], mode: str = "ro", *, create: bool = False,
                 exclusive: bool = False, size: int | None = None, offset: int = 0,
                 length: int = 0, reserve: int | None = None, report_writes: bool = False,
                 populate: bool = False) -> Region:
        """Maps the file at path, any file this process can open, shared through the daemon
        (mmapd_map_path(): opened here, read-only for "ro" and "cow", read-write for "rw",
        then adopted under no name). create: make it if missing (with exclusive: it must
        not exist), size: the size given to a file created or found empty. Raises
        FileNotFoundError, PermissionError, ... as open() would for path.
        """
        path = os.fspath(path)
        flags = _flags(create=create, exclusive=exclusive, report_writes=report_writes,
                       populate=populate)
        return self._map(lib.mmapd_map_path, (self._p(), path.encode()), path, flags, mode,
                         size, offset, length, reserve, None)

    def _map(self, fn: Any, args: tuple, label: str | None, flags: int, mode: str,
             size: int | None, offset: int, length: int, reserve: int | None,
             policy: str | None) -> Region:
        """Calls fn(*args, opts, &region) (mmapd_region_open() or an adoption) and wraps the
        region. reserve None: DEFAULT_RESERVE for a window that follows the region's size."""
        if reserve is None:
            reserve = max(DEFAULT_RESERVE, size or 0) if length == 0 else 0
        opts = _lib.OpenOpts(struct_size=ctypes.sizeof(_lib.OpenOpts), flags=flags,
                             mode=int(mode_of(mode)), size=size or 0, offset=offset,
                             length=length, reserve=reserve)
        if policy is not None:
            pol = policy_struct(policy)
            opts.policy = ctypes.pointer(pol)
        ptr = _P()
        self._call(fn, *args, ctypes.byref(opts), ctypes.byref(ptr), name=label)
        region = Region(self, ptr.value, reserve, length == 0)  # type: ignore[arg-type]
        self._regions.add(region)
        return region

    # ---- by name ----------------------------------------------------------------------

    def delete(self, name: str) -> None:
        """Deletes region name; processes that map it keep their mappings."""
        self._call(lib.mmapd_delete, self._p(), name.encode(), name=name)

    def rename(self, name: str, to: str, replace: bool = False) -> None:
        """Renames region name to `to` atomically; holders keep their mappings and get a
        RENAMED event. replace: delete an existing `to` (else FileExistsError)."""
        self._call(lib.mmapd_rename, self._p(), name.encode(), to.encode(),
                   _lib.MANAGE_REPLACE if replace else 0, name=name)

    def copy(self, name: str, to: str, replace: bool = False) -> str:
        """Copies region name into a new file region `to`, in the daemon; returns how:
        "reflink", "copy_file_range" or "bytes"."""
        method = ctypes.c_int32()
        self._call(lib.mmapd_copy, self._p(), name.encode(), to.encode(),
                   _lib.MANAGE_REPLACE if replace else 0, ctypes.byref(method), name=name)
        return _lib.COPY_METHODS[method.value]

    def stat(self, name: str) -> RegionInfo:
        out = ctypes.POINTER(_lib.RegionInfo)()
        self._call(lib.mmapd_stat, self._p(), name.encode(), ctypes.byref(out), name=name)
        try:
            return RegionInfo._from_c(out.contents)
        finally:
            lib.mmapd_region_info_free(out)

    def exists(self, name: str) -> bool:
        try:
            self.stat(name)
        except FileNotFoundError:
            return False
        return True

    def _list(self, maker: Any, count: Any, at: Any, free: Any, cls: Any, *args: Any) -> list:
        out = _P()
        self._call(maker, self._p(), *args, ctypes.byref(out))
        try:
            return [cls._from_c(at(out, i).contents) for i in range(count(out))]
        finally:
            free(out)

    def list(self) -> list[RegionInfo]:
        """Every region, sorted by name."""
        return self._list(lib.mmapd_list_regions, lib.mmapd_region_list_count,
                          lib.mmapd_region_list_at, lib.mmapd_region_list_free, RegionInfo)

    def clients(self) -> list[ClientInfo]:
        """Every connection to the daemon, this one included."""
        return self._list(lib.mmapd_list_clients, lib.mmapd_client_list_count,
                          lib.mmapd_client_list_at, lib.mmapd_client_list_free, ClientInfo)

    def locks(self, name: str | None = None) -> list[LockInfo]:
        """The locks of region name (None: of every region), holders first."""
        return self._list(lib.mmapd_list_locks, lib.mmapd_lock_list_count,
                          lib.mmapd_lock_list_at, lib.mmapd_lock_list_free, LockInfo,
                          name.encode() if name else None)

    def status(self) -> Status:
        out = ctypes.POINTER(_lib.Status)()
        self._call(lib.mmapd_get_status, self._p(), ctypes.byref(out))
        try:
            return Status._from_c(out.contents)
        finally:
            lib.mmapd_status_free(out)

    def stats(self) -> dict[str, Any]:
        """The daemon's counters (mmapd_stats_json()): uptime_seconds,
        connections_accepted_total, ..., and the "requests" and "errors" objects by
        operation and error code; keys the daemon adds later appear too."""
        out = ctypes.c_void_p()
        self._call(lib.mmapd_stats_json, self._p(), ctypes.byref(out))
        return json.loads(_lib.take_string(out.value))  # type: ignore[arg-type]

    def stats_prometheus(self) -> str:
        """The daemon's counters in Prometheus's text format (mmapd_stats_prometheus())."""
        out = ctypes.c_void_p()
        self._call(lib.mmapd_stats_prometheus, self._p(), ctypes.byref(out))
        return _lib.take_string(out.value)  # type: ignore[arg-type]

    def ping(self) -> None:
        """One round trip to the daemon."""
        self._call(lib.mmapd_ping, self._p())

    def chmod(self, name: str, perm: int) -> None:
        """Sets region name's mode bits (0 .. 0o777); root or the owner only."""
        self._call(lib.mmapd_chmod, self._p(), name.encode(), perm, name=name)

    def chown(self, name: str, uid: int = -1, gid: int = -1) -> None:
        """Changes region name's owner and/or group (-1 keeps it)."""
        self._call(lib.mmapd_chown, self._p(), name.encode(), uid, gid, name=name)

    def lock(self, name: str, offset: int = 0, length: int = 0, exclusive: bool = True,
             timeout: float | None = None, nowait: bool = False) -> Lock:
        """Region.lock() by name (region offsets); nothing need be open."""
        flags = (_lib.LOCK_EXCLUSIVE if exclusive else 0) | (_lib.LOCK_NOWAIT if nowait else 0)
        out = ctypes.c_uint64()
        self._call(lib.mmapd_lock, self._p(), name.encode(), offset, length, flags,
                   timeout_ms(timeout), ctypes.byref(out), name=name)
        return Lock(self, out.value, None)

    def resize(self, name: str, size: int, sparse: bool = False,
               grow_only: bool = False) -> None:
        """Resizes region name (see Region.resize(), which also protects this process's
        views)."""
        flags = (_lib.RESIZE_SPARSE if sparse else 0) | (_lib.RESIZE_GROW_ONLY if grow_only else 0)
        self._call(lib.mmapd_resize, self._p(), name.encode(), size, flags, name=name)

    def report_changed(self, name: str, offset: int = 0, length: int = 0) -> int:
        out = ctypes.c_uint64()
        self._call(lib.mmapd_report_changed, self._p(), name.encode(), offset, length,
                   ctypes.byref(out), name=name)
        return out.value

    def subscribe(self, name: str, external: bool = False) -> int:
        """external: also changes made outside mmapd (MMAPD_SUBSCRIBE_EXTERNAL): CHANGED
        events with external True and no ranges."""
        out = ctypes.c_uint64()
        self._call(lib.mmapd_subscribe_flags, self._p(), name.encode(),
                   _lib.SUBSCRIBE_EXTERNAL if external else 0, ctypes.byref(out), name=name)
        return out.value

    def unsubscribe(self, name: str) -> None:
        self._call(lib.mmapd_unsubscribe, self._p(), name.encode(), name=name)

    def flush(self, name: str, offset: int = 0, length: int = 0) -> None:
        self._call(lib.mmapd_flush, self._p(), name.encode(), offset, length, name=name)

    def set_policy(self, name: str, policy: str) -> None:
        p = policy_struct(policy)
        self._call(lib.mmapd_set_policy, self._p(), name.encode(), ctypes.byref(p), name=name)

    def clear_error(self, name: str) -> None:
        self._call(lib.mmapd_clear_error, self._p(), name.encode(), name=name)

    # ---- events -----------------------------------------------------------------------

    def fileno(self) -> int:
        """mmapd_client_fd(): readable when events may be waiting (for select/poll/epoll)."""
        return check(lib.mmapd_client_fd(self._p()))

    def _dispatch(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            r = lib.mmapd_client_dispatch(self._p(), timeout_ms(left))
            if r != -errno.EINTR:
                break
            # A signal: its Python handler runs (and may raise) before the loop goes on.
        self._call(lambda: r)

    def dispatch(self, timeout: float | None = 0) -> int:
        """Reads what the daemon sent (libmmapd acts on it: remaps, acknowledges shrinks,
        reconnects) and queues the events, waiting up to timeout seconds (None: forever) for
        one. With an on_event() handler the queued events go to it. Returns how many events
        are queued (or were handled)."""
        self._dispatch(timeout)
        n = len(self._queue)
        if self._handler is not None:
            while self._queue:
                self._handler(self._queue.popleft())
        return n

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yields events as they come; stops after timeout seconds without one (None: never).
        Subscribe to regions first (Region.subscribe()) for their changes."""
        while True:
            if not self._queue:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._queue:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    self._dispatch(left)
                    if not self._queue and deadline is not None and time.monotonic() >= deadline:
                        return
            yield self._queue.popleft()

    def on_event(self, handler: Callable[[Event], Any] | None) -> None:
        """Sets the function that receives events from dispatch() (or from the dispatch
        thread); None: events stay queued for events()."""
        self._handler = handler

    def start_dispatch_thread(self) -> None:
        """Starts libmmapd's dispatch thread: the on_event() handler then runs on it, for
        each event, with no call of yours."""
        if self._handler is None:
            raise ValueError("set a handler with on_event() first")
        self._thread = True
        try:
            self._call(lib.mmapd_client_dispatch_thread_start, self._p())
        except BaseException:
            self._thread = False
            raise

    def stop_dispatch_thread(self) -> None:
        """Stops the dispatch thread and waits for it (and a handler it runs)."""
        try:
            self._call(lib.mmapd_client_dispatch_thread_stop, self._p())
        finally:
            self._thread = False

    # ---- asyncio ----------------------------------------------------------------------

    def _async_attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None and self._loop.is_closed():
            self._loop = None   # an earlier asyncio.run() ended without letting go
        if self._loop is not None:
            raise RuntimeError("this client's events are already watched by another loop")
        loop.add_reader(self.fileno(), self._async_pump)
        self._loop = loop
        loop.call_soon(self._async_pump)

    def _async_detach(self) -> None:
        if self._loop is not None and not self._aqueues and not self._waiters:
            if self._ptr is not None and not self._loop.is_closed():
                self._loop.remove_reader(lib.mmapd_client_fd(self._ptr))
            self._loop = None

    def _async_pump(self) -> None:
        if self._ptr is not None:
            try:
                self._dispatch(0)
            except OSError as e:
                for _, fut in self._waiters:
                    if not fut.done():
                        fut.set_exception(e)
                self._waiters.clear()
        while self._queue:
            ev = self._queue.popleft()
            for q in list(self._aqueues):
                q.put_nowait(ev)
            keep = []
            for match, fut in self._waiters:
                if fut.done():
                    continue
                if match(ev):
                    fut.set_result(ev)
                else:
                    keep.append((match, fut))
            self._waiters = keep

    def _await_event(self, match: Callable[[Event], bool]) -> "asyncio.Future[Event]":
        self._async_attach()
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((match, fut))

        def done(_f: Any) -> None:
            self._waiters = [(m, f) for m, f in self._waiters if f is not fut]
            self._async_detach()

        fut.add_done_callback(done)
        return fut

    async def aevents(self) -> AsyncIterator[Event]:
        """Yields events in an asyncio program, watching mmapd_client_fd() with the running
        loop (loop.add_reader()); the loop stays free between events."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._aqueues.add(q)
        self._async_attach()
        try:
            while True:
                yield await q.get()
        finally:
            self._aqueues.discard(q)
            self._async_detach()

    # ---- toolbox ----------------------------------------------------------------------

    def ring(self, name: str, mode: str = "r", *, capacity: int | None = None,
             overwrite: bool = False, anonymous: bool = False,
             timeout: float | None = None, unit: int = 1) -> "Ring":
        """Opens (with capacity=: creates) the byte ring in region name as a file-like
        object; mode "r" (the reader), "w" (the writer), "rw" (both), or "" (neither side);
        unit: the record size reads deliver whole. See mmapd.Ring."""
        from .ring import Ring
        return Ring(self, name, mode, capacity, overwrite, anonymous, timeout, unit)

    def pvec(self, name: str, dtype: Any, *, create: bool = True,
             anonymous: bool = False, durable: bool = False) -> "PVec":
        """Opens (creating it by default) the persistent vector of region name; dtype: the
        element size in bytes, a ctypes type, or a NumPy dtype. durable: every change is on stable
        storage when it returns (MMAPD_PERSIST_DURABLE). See mmapd.PVec."""
        from .persist import PVec
        return PVec(self, name, dtype, create, anonymous, durable)

    def phash(self, name: str, key_size: int, value_size: int, *, create: bool = True,
              anonymous: bool = False, durable: bool = False) -> "PHash":
        """Opens (creating it by default) the persistent hash map of region name, from keys of
        key_size bytes to values of value_size bytes; durable as for pvec(). See mmapd.PHash."""
        from .persist import PHash
        return PHash(self, name, key_size, value_size, create, anonymous, durable)

    def pstrmap(self, name: str, *, create: bool = True, anonymous: bool = False,
                durable: bool = False) -> "PStrMap":
        """Opens (creating it by default) the persistent string map of regions name and
        "<name>.arena": keys and values of any length; durable as for pvec(). See mmapd.PStrMap."""
        from .persist import PStrMap
        return PStrMap(self, name, create, anonymous, durable)

    # ---- life -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Disconnects; the daemon releases this connection's locks and grants. Regions
        stay mapped until closed."""
        if self._ptr is None:
            return
        if self._loop is not None:
            try:
                self._loop.remove_reader(lib.mmapd_client_fd(self._ptr))
            except (ValueError, RuntimeError):
                pass
            self._loop = None
        self._ptr = None
        self._disconnect()  # type: ignore[operator]

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_ptr", None) is not None:
                self.close()
        except Exception:   # interpreter shutdown: modules may be gone already
            pass

    def __repr__(self) -> str:
        return f"<mmapd.Client {'closed' if self._ptr is None else 'connected'}>"


def connect(path: str | None = None, name: str | None = None,
            reconnect: float | None = 30.0) -> Client:
    """Connects to mmapd: at path, else $MMAPD_SOCKET, else /run/mmapd/mmapd.sock. name is
    shown to operators (mmapctl clients). reconnect: seconds to keep trying after the daemon
    went away (0: never, None: forever). Raises FileNotFoundError/ConnectionRefusedError when
    no daemon listens."""
    return Client(path, name, reconnect)
