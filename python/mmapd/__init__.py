# SPDX-License-Identifier: MIT
"""mmapd from Python: share memory-mapped regions between processes through the mmapd
daemon, with NumPy arrays over the shared pages, locks, change events (also with asyncio),
rings, persistent structures and N-d arrays.

    import mmapd
    with mmapd.connect() as c:                       # $MMAPD_SOCKET or the default socket
        r = c.open("frames", size=1 << 20, create=True, mode="rw")
        a = r.array("f4", (256, 1024))               # no copy: the shared pages themselves
        with r.lock(0, 4096, exclusive=True, timeout=1.0):
            a[0, :] = 1.0
        r.report_changed(0, 4096)

Built on libmmapd through ctypes (nothing to compile): the same library, fast paths,
reconnection, rings and persistent structures as C programs, which interoperate with it.
NumPy is used when present and needed only by the calls that return arrays.
Documentation: docs/python.md; the C API underneath: docs/client-api.md.
"""
from ._buffer import HAS_BUFFER
from ._lib import PField
from ._lib import lib as _lib_handle
from ._types import Advice, Event, EventType, ClientInfo, LockInfo, Mode, RegionInfo, Status
from .client import Client, connect
from .ndarray import NDArray, ndarray_footprint
from .persist import FStr, PHash, PStrMap, PVec, pstruct, pstruct_footprint
from .region import DEFAULT_RESERVE, Lock, Region
from .ring import Ring

__all__ = ["Advice", "Client", "ClientInfo", "DEFAULT_RESERVE", "Event", "EventType", "FStr",
           "HAS_BUFFER", "Lock", "LockInfo", "Mode", "NDArray", "PField", "PHash", "PStrMap",
           "PVec", "Region", "RegionInfo", "Ring", "Status", "connect", "library_version",
           "ndarray_footprint", "pstruct", "pstruct_footprint"]

__version__ = "0.1.0"


def library_version() -> str:
    """The version of the libmmapd loaded (mmapd_version())."""
    return _lib_handle.mmapd_version().decode()
