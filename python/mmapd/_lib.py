# SPDX-License-Identifier: MIT
"""libmmapd through ctypes: finding and loading the library, the public structs mirrored
field for field, and the prototypes of the exported functions.

Everything else in the package calls libmmapd only through ``lib`` here, so the fast paths,
reconnection, rings and persistent structures are libmmapd's own, shared with C programs.
The structs follow client/mmapd.h and the toolbox headers exactly (tests/test_abi.py compares
their sizes and offsets with a C program built against the headers). Info structs and lists
are only ever read through the pointers libmmapd hands out, as the header asks.

The library is found, in order: $MMAPD_LIBRARY (a path, e.g. build/libmmapd.so.0 of a build
tree), the soname libmmapd.so.0 on the dynamic linker's path, ctypes.util.find_library().
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_bool, c_char_p, c_int, c_int32, c_int64, c_size_t,
                    c_ssize_t, c_uint, c_uint32, c_uint64, c_void_p)

SONAME = "libmmapd.so.0"


def _load() -> ctypes.CDLL:
    path = os.environ.get("MMAPD_LIBRARY")
    if path:
        return ctypes.CDLL(path)
    try:
        return ctypes.CDLL(SONAME)
    except OSError:
        found = ctypes.util.find_library("mmapd")
        if found is None:
            raise ImportError(
                f"mmapd: cannot find libmmapd ({SONAME}); install it (make install) or set "
                "MMAPD_LIBRARY to its path") from None
        return ctypes.CDLL(found)


class Policy(Structure):
    """struct mmapd_policy (frozen)."""
    _fields_ = [("kind", c_int32), ("value", c_uint64)]


class Range(Structure):
    """struct mmapd_range (frozen)."""
    _fields_ = [("offset", c_uint64), ("length", c_uint64)]


class OpenOpts(Structure):
    """struct mmapd_open_opts; struct_size is set as MMAPD_OPEN_OPTS() does."""
    _fields_ = [("struct_size", c_size_t), ("flags", c_uint), ("mode", c_int32),
                ("size", c_uint64), ("offset", c_uint64), ("length", c_uint64),
                ("reserve", c_uint64), ("policy", POINTER(Policy))]


class Status(Structure):
    """struct mmapd_status."""
    _fields_ = [("version", c_char_p), ("protocol", c_uint32), ("pid", c_int64)] + [
        (n, c_uint64) for n in (
            "uptime_ms", "clients", "regions", "anonymous_regions", "grants", "bytes_granted",
            "open_fds", "max_clients", "max_grants_per_client", "max_fds_in_flight",
            "max_frame", "max_region_size", "locks", "lock_waiters", "subscriptions")]


class RegionInfo(Structure):
    """struct mmapd_region_info."""
    _fields_ = [("name", c_char_p), ("size", c_uint64), ("anonymous", c_bool),
                ("grants", c_uint64), ("clients", c_uint64), ("generation", c_uint64),
                ("policy", Policy), ("poisoned", c_bool), ("seq", c_uint64),
                ("locks", c_uint64), ("uid", c_uint32), ("gid", c_uint32), ("perm", c_uint32),
                ("huge", c_int32), ("mtime_us", c_uint64), ("ctime_us", c_uint64),
                ("temporary", c_bool),
                ("adopted", c_bool)]


class ClientInfo(Structure):
    """struct mmapd_client_info."""
    _fields_ = [("id", c_uint64), ("name", c_char_p), ("pid", c_int64), ("uid", c_int64),
                ("gid", c_int64)] + [
        (n, c_uint64) for n in (
            "connected_since_ms", "grants", "bytes_granted", "regions_created", "locks_held",
            "locks_waiting", "subscriptions", "queued_bytes", "queued_fds")]


class LockInfo(Structure):
    """struct mmapd_lock_info."""
    _fields_ = [("region", c_char_p), ("lock", c_uint64), ("waiting", c_bool),
                ("exclusive", c_bool), ("offset", c_uint64), ("length", c_uint64),
                ("client", c_char_p), ("pid", c_int64), ("uid", c_int64),
                ("since_ms", c_uint64)]


class Event(Structure):
    """struct mmapd_event."""
    _fields_ = [("type", c_int32), ("region", c_char_p), ("seq", c_uint64),
                ("first_seq", c_uint64), ("ranges", POINTER(Range)), ("nranges", c_size_t),
                ("writer_client", c_char_p), ("writer_pid", c_int64), ("size", c_uint64),
                ("old_size", c_uint64), ("generation", c_uint64), ("external", c_bool),
                ("policy", Policy), ("error", c_int), ("message", c_char_p),
                ("offset", c_uint64), ("length", c_uint64), ("nlocks", c_size_t),
                ("opened", c_void_p), ("lock", c_uint64),
                ("to", c_char_p)]


class Layout(Structure):
    """struct mmapd_layout (mmapd-persist.h); struct_size set as MMAPD_LAYOUT() does."""
    _fields_ = [("struct_size", c_size_t), ("type_name", c_char_p), ("version", c_uint32),
                ("size", c_uint32), ("align", c_uint32)]


class PField(Structure):
    """struct mmapd_pfield (mmapd-persist.h): a vector or hash map as a field of a region's
    bytes (e.g. a member of a persistent struct); the library sets it, zeroed is empty."""
    _fields_ = [("desc", c_uint64), ("reserved", c_uint64)]


ND_DIMS_MAX = 8


class NDView(Structure):
    """struct mmapd_ndview (mmapd-persist.h): a private view of an N-d array."""
    _fields_ = [("data", c_void_p), ("dtype", c_uint32), ("ndim", c_uint32),
                ("elem_size", c_size_t), ("shape", c_uint64 * ND_DIMS_MAX),
                ("strides", c_int64 * ND_DIMS_MAX)]


# The structs a C program compares with (tests/test_abi.py): name -> ctypes type.
STRUCTS = {"mmapd_policy": Policy, "mmapd_range": Range, "mmapd_open_opts": OpenOpts,
           "mmapd_status": Status, "mmapd_region_info": RegionInfo,
           "mmapd_client_info": ClientInfo, "mmapd_lock_info": LockInfo,
           "mmapd_event": Event, "mmapd_layout": Layout, "mmapd_ndview": NDView,
           "mmapd_pfield": PField}

EVENT_FN = ctypes.CFUNCTYPE(None, c_void_p, POINTER(Event), c_void_p)
CHUNK_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_uint64, c_size_t, c_void_p)
PVEC_CMP_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
PVEC_FN = ctypes.CFUNCTYPE(c_int, c_uint64, c_void_p, c_void_p)

P = c_void_p
_u64, _i = c_uint64, c_int
_PROTOS: dict[str, tuple[object, list[object]]] = {
    "mmapd_version": (c_char_p, []),
    "mmapd_connect": (_i, [c_char_p, c_char_p, POINTER(P)]),
    "mmapd_disconnect": (None, [P]),
    "mmapd_region_open": (_i, [P, c_char_p, POINTER(OpenOpts), POINTER(P)]),
    "mmapd_region_adopt": (_i, [P, _i, c_char_p, POINTER(OpenOpts), POINTER(P)]),
    "mmapd_map_path": (_i, [P, c_char_p, POINTER(OpenOpts), POINTER(P)]),
    "mmapd_region_close": (None, [P]),
    "mmapd_region_data": (P, [P]),
    "mmapd_region_length": (c_size_t, [P]),
    "mmapd_region_offset": (_u64, [P]),
    "mmapd_region_size": (_u64, [P]),
    "mmapd_region_mode": (c_int32, [P]),
    "mmapd_region_set_mode": (_i, [P, c_int32]),
    "mmapd_region_name": (c_char_p, [P]),
    "mmapd_region_fd": (_i, [P]),
    "mmapd_region_read": (_i, [P, _u64, P, c_size_t]),
    "mmapd_region_write": (_i, [P, _u64, c_char_p, c_size_t]),
    "mmapd_region_generation": (_u64, [P]),
    "mmapd_region_page_size": (c_size_t, [P]),
    "mmapd_region_advise": (_i, [P, _u64, _u64, c_int32]),
    "mmapd_region_prewarm": (_i, [P, _u64, _u64]),
    "mmapd_region_mlock": (_i, [P, _u64, _u64]),
    "mmapd_region_munlock": (_i, [P, _u64, _u64]),
    "mmapd_region_msync": (_i, [P, _u64, _u64]),
    "mmapd_region_huge_bytes": (_i, [P, POINTER(_u64)]),
    "mmapd_delete": (_i, [P, c_char_p]),
    "mmapd_rename": (_i, [P, c_char_p, c_char_p, c_uint]),
    "mmapd_copy": (_i, [P, c_char_p, c_char_p, c_uint, POINTER(c_int32)]),
    "mmapd_region_truncate_on_close": (_i, [P, _u64]),
    "mmapd_stat": (_i, [P, c_char_p, POINTER(POINTER(RegionInfo))]),
    "mmapd_region_stat": (_i, [P, POINTER(POINTER(RegionInfo))]),
    "mmapd_region_info_free": (None, [POINTER(RegionInfo)]),
    "mmapd_list_regions": (_i, [P, POINTER(P)]),
    "mmapd_region_list_count": (c_size_t, [P]),
    "mmapd_region_list_at": (POINTER(RegionInfo), [P, c_size_t]),
    "mmapd_region_list_free": (None, [P]),
    "mmapd_get_status": (_i, [P, POINTER(POINTER(Status))]),
    "mmapd_status_free": (None, [POINTER(Status)]),
    "mmapd_ping": (_i, [P]),
    "mmapd_stats_json": (_i, [P, POINTER(P)]),
    "mmapd_stats_prometheus": (_i, [P, POINTER(P)]),
    "mmapd_chown": (_i, [P, c_char_p, c_int64, c_int64]),
    "mmapd_chmod": (_i, [P, c_char_p, c_uint]),
    "mmapd_list_clients": (_i, [P, POINTER(P)]),
    "mmapd_client_list_count": (c_size_t, [P]),
    "mmapd_client_list_at": (POINTER(ClientInfo), [P, c_size_t]),
    "mmapd_client_list_free": (None, [P]),
    "mmapd_lock": (_i, [P, c_char_p, _u64, _u64, c_uint, _i, POINTER(_u64)]),
    "mmapd_unlock": (_i, [P, _u64]),
    "mmapd_region_lock": (_i, [P, _u64, _u64, c_uint, _i, POINTER(_u64)]),
    "mmapd_region_unlock": (_i, [P, _u64]),
    "mmapd_list_locks": (_i, [P, c_char_p, POINTER(P)]),
    "mmapd_lock_list_count": (c_size_t, [P]),
    "mmapd_lock_list_at": (POINTER(LockInfo), [P, c_size_t]),
    "mmapd_lock_list_free": (None, [P]),
    "mmapd_resize": (_i, [P, c_char_p, _u64, c_uint]),
    "mmapd_region_resize": (_i, [P, _u64, c_uint]),
    "mmapd_subscribe": (_i, [P, c_char_p, POINTER(_u64)]),
    "mmapd_unsubscribe": (_i, [P, c_char_p]),
    "mmapd_region_subscribe": (_i, [P, POINTER(_u64)]),
    "mmapd_region_unsubscribe": (_i, [P]),
    "mmapd_subscribe_flags": (_i, [P, c_char_p, c_uint, POINTER(_u64)]),
    "mmapd_region_subscribe_flags": (_i, [P, c_uint, POINTER(_u64)]),
    "mmapd_report_changed": (_i, [P, c_char_p, _u64, _u64, POINTER(_u64)]),
    "mmapd_region_report_changed": (_i, [P, _u64, _u64, POINTER(_u64)]),
    "mmapd_flush": (_i, [P, c_char_p, _u64, _u64]),
    "mmapd_region_flush": (_i, [P, _u64, _u64]),
    "mmapd_flush_async": (_i, [P, c_char_p, POINTER(_u64)]),
    "mmapd_region_flush_async": (_i, [P, POINTER(_u64)]),
    "mmapd_set_policy": (_i, [P, c_char_p, POINTER(Policy)]),
    "mmapd_region_set_policy": (_i, [P, POINTER(Policy)]),
    "mmapd_policy_parse": (_i, [c_char_p, POINTER(Policy)]),
    "mmapd_policy_format": (_i, [POINTER(Policy), c_char_p, c_size_t]),
    "mmapd_clear_error": (_i, [P, c_char_p]),
    "mmapd_region_clear_error": (_i, [P]),
    "mmapd_client_set_event_handler": (None, [P, EVENT_FN, P]),
    "mmapd_client_fd": (_i, [P]),
    "mmapd_client_dispatch": (_i, [P, _i]),
    "mmapd_client_dispatch_thread_start": (_i, [P]),
    "mmapd_client_dispatch_thread_stop": (_i, [P]),
    "mmapd_client_set_reconnect": (None, [P, _i]),
    "mmapd_last_message": (c_char_p, []),
    "mmapd_strerror": (c_char_p, [_i]),
    # mmapd-ring.h
    "mmapd_ring_create": (_i, [P, c_char_p, c_size_t, c_uint, POINTER(P)]),
    "mmapd_ring_open": (_i, [P, c_char_p, c_uint, POINTER(P)]),
    "mmapd_ring_close": (None, [P]),
    "mmapd_ring_capacity": (c_size_t, [P]),
    "mmapd_ring_flags": (c_uint, [P]),
    "mmapd_ring_region": (P, [P]),
    "mmapd_ring_lost": (_u64, [P]),
    "mmapd_ring_readable": (c_size_t, [P]),
    "mmapd_ring_writable": (c_size_t, [P]),
    "mmapd_ring_write": (c_ssize_t, [P, c_char_p, c_size_t]),
    "mmapd_ring_read": (c_ssize_t, [P, P, c_size_t]),
    "mmapd_ring_wait_readable": (_i, [P, c_size_t, _i]),
    "mmapd_ring_wait_writable": (_i, [P, c_size_t, _i]),
    "mmapd_ring_read_exact": (_i, [P, P, c_size_t, _i]),
    "mmapd_ring_read_some": (c_ssize_t, [P, P, c_size_t, c_size_t, _i]),
    "mmapd_ring_read_until": (c_ssize_t, [P, _i, P, c_size_t, _i]),
    "mmapd_ring_put": (_i, [P, c_char_p, c_size_t, _i]),
    "mmapd_ring_flush": (_i, [P]),
    # mmapd-persist.h
    "mmapd_pstruct_footprint": (_u64, [POINTER(Layout)]),
    "mmapd_pstruct_open": (_i, [P, _u64, POINTER(Layout), c_uint, POINTER(P)]),
    "mmapd_fstr_set": (_i, [P, c_size_t, c_char_p, c_size_t]),
    "mmapd_fstr_set_raw": (_i, [P, c_size_t, c_char_p, c_size_t]),
    "mmapd_fstr_set_trunc": (_i, [P, c_size_t, c_char_p, c_size_t]),
    "mmapd_fstr_cmp": (_i, [P, c_size_t, c_char_p, c_size_t]),
    "mmapd_fstr_len": (c_int64, [P, c_size_t]),
    "mmapd_fstr_copy": (c_int64, [P, c_size_t, P, c_size_t]),
    "mmapd_pvec_open": (_i, [P, c_char_p, c_size_t, c_uint, POINTER(P)]),
    "mmapd_pvec_close": (None, [P]),
    "mmapd_pvec_lock": (_i, [P, _i]),
    "mmapd_pvec_unlock": (_i, [P]),
    "mmapd_pvec_len": (_u64, [P]),
    "mmapd_pvec_capacity": (_u64, [P]),
    "mmapd_pvec_elem_size": (c_size_t, [P]),
    "mmapd_pvec_push": (_i, [P, c_char_p]),
    "mmapd_pvec_pop": (_i, [P, P]),
    "mmapd_pvec_get": (_i, [P, _u64, P]),
    "mmapd_pvec_set": (_i, [P, _u64, c_char_p]),
    "mmapd_pvec_at": (_i, [P, _u64, POINTER(P)]),
    "mmapd_pvec_clear": (_i, [P]),
    "mmapd_pvec_reserve": (_i, [P, _u64]),
    "mmapd_pvec_extend": (_i, [P, c_char_p, _u64]),
    "mmapd_pvec_truncate": (_i, [P, _u64]),
    "mmapd_pvec_insert": (_i, [P, _u64, c_char_p]),
    "mmapd_pvec_remove": (_i, [P, _u64, P]),
    "mmapd_pvec_swap_remove": (_i, [P, _u64, P]),
    "mmapd_pvec_sort": (_i, [P, PVEC_CMP_FN]),
    "mmapd_pvec_bsearch": (_i, [P, c_char_p, PVEC_CMP_FN, POINTER(_u64)]),
    "mmapd_pvec_foreach": (_i, [P, _u64, _u64, c_uint, PVEC_FN, P]),
    "mmapd_pvec_region": (P, [P]),
    "mmapd_phash_open": (_i, [P, c_char_p, c_size_t, c_size_t, c_uint, POINTER(P)]),
    "mmapd_phash_close": (None, [P]),
    "mmapd_phash_lock": (_i, [P, _i]),
    "mmapd_phash_unlock": (_i, [P]),
    "mmapd_phash_count": (_u64, [P]),
    "mmapd_phash_put": (_i, [P, c_char_p, c_char_p]),
    "mmapd_phash_get": (_i, [P, c_char_p, P]),
    "mmapd_phash_remove": (_i, [P, c_char_p]),
    "mmapd_phash_next": (_i, [P, POINTER(_u64), P, P]),
    "mmapd_phash_capacity": (_u64, [P]),
    "mmapd_phash_reserve": (_i, [P, _u64]),
    "mmapd_phash_region": (P, [P]),
    "mmapd_pstrmap_open": (_i, [P, c_char_p, c_uint, POINTER(P)]),
    "mmapd_pstrmap_close": (None, [P]),
    "mmapd_pstrmap_lock": (_i, [P, _i]),
    "mmapd_pstrmap_unlock": (_i, [P]),
    "mmapd_pstrmap_put": (_i, [P, c_char_p, c_size_t, c_char_p, c_size_t]),
    "mmapd_pstrmap_get": (_i, [P, c_char_p, c_size_t, POINTER(P), POINTER(c_size_t)]),
    "mmapd_pstrmap_remove": (_i, [P, c_char_p, c_size_t]),
    "mmapd_pstrmap_next": (_i, [P, POINTER(_u64), POINTER(P), POINTER(c_size_t), POINTER(P),
                                POINTER(c_size_t)]),
    "mmapd_pstrmap_count": (_u64, [P]),
    "mmapd_pstrmap_compact": (_i, [P]),
    "mmapd_pstrmap_index": (P, [P]),
    "mmapd_pstrmap_arena": (P, [P]),
    "mmapd_pfield_name": (_i, [P, P, c_char_p, c_size_t]),
    "mmapd_pvec_open_field": (_i, [P, P, P, c_size_t, c_uint, POINTER(P)]),
    "mmapd_phash_open_field": (_i, [P, P, P, c_size_t, c_size_t, c_uint, POINTER(P)]),
    "mmapd_ndarray_footprint": (_u64, [c_uint, c_uint, POINTER(_u64)]),
    "mmapd_ndarray_open": (_i, [P, _u64, c_uint, c_uint, POINTER(_u64), c_uint,
                                POINTER(NDView)]),
    "mmapd_ndview_at": (_i, [POINTER(NDView), POINTER(_u64), POINTER(P)]),
    "mmapd_ndview_slice": (_i, [POINTER(NDView), c_uint, _u64, _u64, POINTER(NDView)]),
    "mmapd_ndview_index": (_i, [POINTER(NDView), c_uint, _u64, POINTER(NDView)]),
    "mmapd_ndview_npy_header": (c_int64, [POINTER(NDView), c_char_p, c_size_t]),
}

lib = _load()
for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
del _name, _res, _args, _f

_libc = ctypes.CDLL(None)
_libc.free.argtypes = [c_void_p]
_libc.free.restype = None


def take_string(ptr: int) -> str:
    """The NUL-terminated string libmmapd malloc()ed at ptr, which this frees."""
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        _libc.free(ptr)


def closer(close_fn: object, ptr: int) -> object:
    """A function that calls close_fn(ptr) in the process that made ptr, and does nothing in
    a child forked from it: a child must not use its parent's connection, and closing a
    region there would release the parent's grant over the shared socket."""
    pid = os.getpid()

    def close() -> None:
        if os.getpid() == pid:
            close_fn(ptr)  # type: ignore[operator]
    return close


# Constants of the headers (values are ABI: they never change).
OPEN_CREATE, OPEN_EXCL, OPEN_ANONYMOUS, OPEN_SPARSE = 0x1, 0x2, 0x4, 0x8
OPEN_REPORT_WRITES, OPEN_POPULATE, OPEN_STACK, OPEN_HUGETLB, OPEN_EXEC = 0x10, 0x20, 0x40, 0x80, 0x100
OPEN_TEMPORARY, OPEN_TRUNCATE = 0x200, 0x400
MANAGE_REPLACE = 0x1
COPY_METHODS = ("reflink", "copy_file_range", "bytes")
LOCK_EXCLUSIVE, LOCK_NOWAIT = 0x1, 0x2
RESIZE_SPARSE, RESIZE_GROW_ONLY = 0x1, 0x2
SUBSCRIBE_EXTERNAL = 0x1
RING_OVERWRITE, RING_ANONYMOUS, RING_WRITER, RING_READER = 0x1, 0x2, 0x4, 0x8
PSTRUCT_INIT = 0x1
PERSIST_CREATE, PERSIST_ANONYMOUS, PERSIST_DURABLE = 0x1, 0x2, 0x4
PVEC_REVERSE = 0x1
PSTRUCT_HEADER = 64
LAYOUT_NAME_MAX = 23
