"""The buffer protocol for objects whose bytes move and change length (a region's window).

An Exporter hands out the buffer of a delegate it holds, a memoryview over the current
window that the owner replaces whenever the window changes (export()), so memoryview(obj),
bytes(obj), numpy.frombuffer(obj) and friends always see the window as it is now, and the
views they make keep the delegate (and through it the mapping) alive on their own.

Python 3.12 has the protocol for classes (PEP 688: __buffer__). Python 3.11 has none, so there
the class gets the C slot that pickle.PickleBuffer uses: PickleBuffer's getbuffer reads the
object stored right after the object header plus one pointer (its Py_buffer's .obj) and asks
that object for the buffer, with the caller's flags, in C (errors such as a write view of a
read-only region are raised properly). Exporter's first two slots sit exactly there. The
offsets are checked against the running interpreter before anything is written; where they do
not match (another Python implementation) HAS_BUFFER is False and only region.view() exists.
"""
from __future__ import annotations

import ctypes
import pickle
import sys


class Exporter:
    """Base of objects exporting the buffer of the memoryview given to export()."""
    __slots__ = ("_bv0", "_bv1")   # _bv1 is the delegate (see above); _bv0 is padding

    def export(self, view: memoryview | None) -> None:
        """Makes view the buffer this object exports (None: exports nothing any more)."""
        if view is None:
            try:
                del self._bv1
            except AttributeError:
                pass
        else:
            self._bv1 = view

    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int) -> memoryview:
            try:
                view = self._bv1
            except AttributeError:
                raise ValueError("the region is closed") from None
            return memoryview(view)


def _install_311() -> bool:
    if sys.implementation.name != "cpython":
        return False
    ptr = ctypes.sizeof(ctypes.c_void_p)
    pb = pickle.PickleBuffer
    # PyTypeObject: ob_refcnt, ob_type, ob_size, tp_name, tp_basicsize, ... tp_as_buffer is
    # the 21st pointer-sized field.
    off_name, off_basic, off_asbuf = 3 * ptr, 4 * ptr, 20 * ptr
    if (ctypes.c_char_p.from_address(id(pb) + off_name).value != b"pickle.PickleBuffer" or
            ctypes.c_ssize_t.from_address(id(pb) + off_basic).value != pb.__basicsize__ or
            ctypes.c_ssize_t.from_address(id(Exporter) + off_basic).value
            != Exporter.__basicsize__):
        return False
    procs = ctypes.c_void_p.from_address(id(pb) + off_asbuf).value
    mine = ctypes.c_void_p.from_address(id(Exporter) + off_asbuf).value
    if not procs or not mine:
        return False
    # The delegate slot must be where PickleBuffer keeps its Py_buffer's obj.
    probe = Exporter()
    probe._bv1 = memoryview(b"x")
    if ctypes.c_void_p.from_address(id(probe) + 3 * ptr).value != id(probe._bv1):
        return False
    getbuf = ctypes.c_void_p.from_address(procs).value
    ctypes.c_void_p.from_address(mine).value = getbuf
    return bytes(memoryview(probe)) == b"x"


HAS_BUFFER = sys.version_info >= (3, 12) or _install_311()
