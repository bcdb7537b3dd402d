# SPDX-License-Identifier: MIT
"""The plain values of the API: modes, flush policies, events and the daemon's reports, as
Python enums and frozen dataclasses built from libmmapd's structs (which are only valid while
libmmapd lends them)."""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass

from ._errors import check
from ._lib import ClientInfo as _CClientInfo
from ._lib import Event as _CEvent
from ._lib import LockInfo as _CLockInfo
from ._lib import Policy as _CPolicy
from ._lib import RegionInfo as _CRegionInfo
from ._lib import Status as _CStatus
from ._lib import lib


class Mode(enum.IntEnum):
    """How a region is mapped: "ro", "rw" or "cow" (copy-on-write) in the API."""
    RO = 0
    RW = 1
    COW = 2


MODES = {"ro": Mode.RO, "r": Mode.RO, "rw": Mode.RW, "w": Mode.RW, "cow": Mode.COW}


def mode_of(mode: str | Mode) -> Mode:
    if isinstance(mode, Mode):
        return mode
    try:
        return MODES[mode]
    except KeyError:
        raise ValueError(f"mode must be 'ro', 'rw' or 'cow', not {mode!r}") from None


class EventType(enum.IntEnum):
    """enum mmapd_event_type."""
    CHANGED = 1
    OVERFLOW = 2
    RESIZED = 3
    SHRINKING = 4
    SHRINK_CANCELLED = 5
    POLICY = 6
    FLUSHED = 7
    FLUSH_FAILED = 8
    DELETED = 9
    UNLOCKED = 10
    RECONNECTED = 11
    LOCKS_LOST = 12
    FLUSH_DONE = 13
    RELEASE_FAILED = 14
    OPEN_DONE = 15
    LOCK_DONE = 16
    RESIZE_DONE = 17
    DELETE_DONE = 18
    RENAMED = 19


class Advice(enum.IntEnum):
    """enum mmapd_advice (madvise(2))."""
    NORMAL = 0
    RANDOM = 1
    SEQUENTIAL = 2
    WILLNEED = 3
    DONTNEED = 4
    HUGEPAGE = 5
    NOHUGEPAGE = 6
    DONTFORK = 7
    DOFORK = 8
    MERGEABLE = 9
    UNMERGEABLE = 10
    DONTDUMP = 11
    DODUMP = 12
    COLD = 13
    PAGEOUT = 14
    POPULATE_READ = 15
    POPULATE_WRITE = 16


def _s(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", "replace")


def policy_text(p: _CPolicy) -> str:
    """A flush policy as mmapctl spells it ("manual", "every-bytes 1048576", ...)."""
    buf = ctypes.create_string_buffer(64)
    check(lib.mmapd_policy_format(ctypes.byref(p), buf, len(buf)))
    return buf.value.decode()


def policy_struct(policy: str) -> _CPolicy:
    """Parses a flush policy ("manual", "always", "every-bytes 1M", "every-writes 10",
    "interval 500") with libmmapd's own parser."""
    p = _CPolicy()
    check(lib.mmapd_policy_parse(policy.encode(), ctypes.byref(p)))
    return p


@dataclass(frozen=True)
class Event:
    """An event from the daemon (or the library: RECONNECTED, LOCKS_LOST). Fields that do
    not apply to the type are zero, None or empty; see docs/client-api.md, "The event"."""
    type: EventType
    region: str | None
    seq: int = 0
    first_seq: int = 0
    ranges: tuple[tuple[int, int], ...] = ()
    writer_client: str | None = None
    writer_pid: int = -1
    size: int = 0
    old_size: int = 0
    generation: int = 0
    external: bool = False
    policy: str = "manual"
    error: int = 0
    message: str | None = None
    offset: int = 0
    length: int = 0
    nlocks: int = 0
    to: str | None = None

    @classmethod
    def _from_c(cls, e: _CEvent) -> "Event":
        try:
            etype = EventType(e.type)
        except ValueError:
            etype = e.type  # a type newer than this package: passed on as its number
        return cls(type=etype, region=_s(e.region), seq=e.seq, first_seq=e.first_seq,
                   ranges=tuple((e.ranges[i].offset, e.ranges[i].length)
                                for i in range(e.nranges)),
                   writer_client=_s(e.writer_client), writer_pid=e.writer_pid, size=e.size,
                   old_size=e.old_size, generation=e.generation, external=e.external,
                   policy=policy_text(e.policy) if etype == EventType.POLICY else "manual",
                   error=e.error, message=_s(e.message), offset=e.offset, length=e.length,
                   nlocks=e.nlocks, to=_s(e.to))


def _copy(cls, c, **conv):
    values = {}
    for name, _ in c._fields_:
        v = getattr(c, name)
        values[name] = conv[name](v) if name in conv else v
    return cls(**values)


@dataclass(frozen=True)
class RegionInfo:
    """A region as the daemon reports it (mmapd_stat(), mmapd_list_regions())."""
    name: str
    size: int
    anonymous: bool
    grants: int
    clients: int
    generation: int
    policy: str
    poisoned: bool
    seq: int
    locks: int
    uid: int
    gid: int
    perm: int
    huge: int
    mtime_us: int
    ctime_us: int
    temporary: bool
    adopted: bool

    @classmethod
    def _from_c(cls, c: _CRegionInfo) -> "RegionInfo":
        return _copy(cls, c, name=_s, policy=policy_text)


@dataclass(frozen=True)
class Status:
    """The daemon's figures (mmapd_get_status())."""
    version: str
    protocol: int
    pid: int
    uptime_ms: int
    clients: int
    regions: int
    anonymous_regions: int
    grants: int
    bytes_granted: int
    open_fds: int
    max_clients: int
    max_grants_per_client: int
    max_fds_in_flight: int
    max_frame: int
    max_region_size: int
    locks: int
    lock_waiters: int
    subscriptions: int

    @classmethod
    def _from_c(cls, c: _CStatus) -> "Status":
        return _copy(cls, c, version=_s)


@dataclass(frozen=True)
class ClientInfo:
    """One connection to the daemon (mmapd_list_clients())."""
    id: int
    name: str
    pid: int
    uid: int
    gid: int
    connected_since_ms: int
    grants: int
    bytes_granted: int
    regions_created: int
    locks_held: int
    locks_waiting: int
    subscriptions: int
    queued_bytes: int
    queued_fds: int

    @classmethod
    def _from_c(cls, c: _CClientInfo) -> "ClientInfo":
        return _copy(cls, c, name=_s)


@dataclass(frozen=True)
class LockInfo:
    """One lock, held or waited for (mmapd_list_locks())."""
    region: str
    lock: int
    waiting: bool
    exclusive: bool
    offset: int
    length: int
    client: str
    pid: int
    uid: int
    since_ms: int

    @classmethod
    def _from_c(cls, c: _CLockInfo) -> "LockInfo":
        return _copy(cls, c, region=_s, client=_s)


def timeout_ms(timeout: float | None) -> int:
    """Seconds (None: forever) as libmmapd's milliseconds (< 0: forever)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    return min(int(timeout * 1000 + 0.999), 2**31 - 1)
