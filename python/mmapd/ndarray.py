# SPDX-License-Identifier: MIT
"""libmmapd's N-dimensional arrays (mmapd_ndarray_*, mmapd_ndview_*) from Python.

An array lives at a window offset of a region: a header that records its element type and
shape, then the elements in row-major order. NDArray wraps libmmapd's private view of it
(type, shape and strides copied out of the header once and checked), so C and Python
processes share one array whatever each asks for. numpy() is a NumPy array over the shared
elements with no copy, of the type and shape the header records; slice() and index() are
sub-range views sharing the elements, as mmapd_ndview_slice() and mmapd_ndview_index().
Element access (nd[i, j]) and npy_header()/save() work without NumPy.
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, BinaryIO, Sequence

from . import _lib
from ._errors import check
from ._lib import lib

if TYPE_CHECKING:
    from .region import Region

# enum mmapd_dtype, in order: (NumPy type string, ctypes type).
DTYPES = [("u1", ctypes.c_uint8), ("i1", ctypes.c_int8), ("u2", ctypes.c_uint16),
          ("i2", ctypes.c_int16), ("u4", ctypes.c_uint32), ("i4", ctypes.c_int32),
          ("u8", ctypes.c_uint64), ("i8", ctypes.c_int64), ("f4", ctypes.c_float),
          ("f8", ctypes.c_double)]
_CODES = {code: i for i, (code, _) in enumerate(DTYPES)}


def dtype_code(dtype: Any) -> int:
    """enum mmapd_dtype of a NumPy dtype in the host's byte order, or of anything NumPy
    takes for one ("f4", "uint16", np.int32; without NumPy, the codes "u1".."u8", "i1".."i8",
    "f4", "f8"). Raises TypeError for a type libmmapd arrays cannot hold."""
    if dtype is None:
        raise TypeError("an N-d array's element type is needed with its shape")
    try:
        import numpy as np
        dt = np.dtype(dtype)
        if dt.byteorder not in ("=", "|"):
            raise TypeError(f"N-d arrays hold the host's byte order, not {dt.str}")
        key = f"{dt.kind}{dt.itemsize}"
    except ImportError:
        key = str(dtype).lstrip("=<>|")
    if key not in _CODES:
        raise TypeError(f"N-d arrays hold u1..u8, i1..i8, f4 or f8 elements, not {dtype!r}")
    return _CODES[key]


def _shape(shape: int | Sequence[int]) -> tuple[int, Any]:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    return len(dims), (ctypes.c_uint64 * max(1, len(dims)))(*dims)


def ndarray_footprint(dtype: Any, shape: int | Sequence[int]) -> int:
    """Bytes an array of dtype and shape takes in its region from its offset (header and
    elements: mmapd_ndarray_footprint()). Raises ValueError for an invalid shape."""
    ndim, dims = _shape(shape)
    n = lib.mmapd_ndarray_footprint(dtype_code(dtype), ndim, dims)
    if n == 0:
        raise ValueError(f"invalid N-d array shape {shape!r} (1 to {_lib.ND_DIMS_MAX} "
                         "dimensions, none of 0)")
    return n


class NDArray:
    """A view of an N-d array in a region (see the module's description). Made by
    Region.ndarray(), slice() and index(); it keeps the region's mapping alive. Views survive
    growth of the region that moves the mapping: each access rebases on the current window."""

    def __init__(self, region: "Region", view: _lib.NDView) -> None:
        self.region = region
        self._view = view
        self._offset = view.data - region.address   # the first element, in the window

    @classmethod
    def _open(cls, region: "Region", offset: int, dtype: Any, shape: Any,
              create: bool) -> "NDArray":
        view = _lib.NDView()
        if shape is None:
            code, ndim, dims = 0, 0, None
        else:
            code = dtype_code(dtype)
            ndim, dims = _shape(shape)
        region.client._call(lib.mmapd_ndarray_open, region._p(), offset, code, ndim, dims,
                            _lib.PSTRUCT_INIT if create and ndim else 0, ctypes.byref(view),
                            name=region.name)
        return cls(region, view)

    def _current(self) -> _lib.NDView:
        """The view with its data pointer at the element's current address."""
        v = _lib.NDView.from_buffer_copy(self._view)
        v.data = self.region.address + self._offset
        return v

    @property
    def dtype(self) -> str:
        """The element type as a NumPy type string ("f8", "u2", ...)."""
        return DTYPES[self._view.dtype][0]

    @property
    def ndim(self) -> int:
        return self._view.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._view.shape[:self._view.ndim])

    @property
    def strides(self) -> tuple[int, ...]:
        """Bytes between neighbours along each dimension."""
        return tuple(self._view.strides[:self._view.ndim])

    @property
    def itemsize(self) -> int:
        return self._view.elem_size

    def __len__(self) -> int:
        return self.shape[0]

    def _extent(self) -> int:
        return sum((n - 1) * s for n, s in zip(self.shape, self.strides)) + self.itemsize

    def numpy(self) -> Any:
        """A NumPy array over the shared elements (no copy) of the recorded type and shape;
        read-only on a read-only mapping. It keeps the mapping alive."""
        import numpy as np
        buf = self.region.view(self._offset, self._extent())
        return np.ndarray(self.shape, dtype=np.dtype(self.dtype), buffer=buf,
                          strides=self.strides)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        """numpy.asarray(nd): numpy() (a copy only when another dtype or copy is asked)."""
        a = self.numpy()
        if dtype is not None and a.dtype != dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def _at(self, index: Any) -> Any:
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) != self.ndim:
            raise IndexError(f"{self.ndim} indexes needed, not {len(idx)}")
        shape = self.shape
        idx = tuple(i + n if i < 0 else i for i, n in zip(idx, shape))
        ptr = ctypes.c_void_p()
        r = -34 if min(idx) < 0 else lib.mmapd_ndview_at(
            ctypes.byref(self._current()), (ctypes.c_uint64 * len(idx))(*idx), ctypes.byref(ptr))
        if r == -34:   # -ERANGE
            raise IndexError(f"index {index} out of range for shape {shape}")
        check(r, self.region.name)
        return DTYPES[self._view.dtype][1].from_address(ptr.value)

    def __getitem__(self, index: Any) -> int | float:
        """The element at index (one index per dimension), through mmapd_ndview_at()."""
        return self._at(index).value

    def __setitem__(self, index: Any, value: int | float) -> None:
        if self.region.mode == "ro":
            raise TypeError("the array's region is mapped read-only")
        self._at(index).value = value

    def _derived(self, fn: Any, *args: Any) -> "NDArray":
        out = _lib.NDView()
        r = fn(ctypes.byref(self._current()), *args, ctypes.byref(out))
        if r == -34:
            raise IndexError(f"{args} is out of the view of shape {self.shape}")
        check(r, self.region.name)
        return NDArray(self.region, out)

    def slice(self, dim: int, start: int, stop: int) -> "NDArray":
        """The view of elements start <= i < stop along dimension dim (the others whole),
        sharing the elements (mmapd_ndview_slice()). IndexError when empty or outside."""
        return self._derived(lib.mmapd_ndview_slice, dim, start, stop)

    def index(self, dim: int, i: int) -> "NDArray":
        """The view of index i along dimension dim, one dimension fewer (a row of a matrix:
        mmapd_ndview_index())."""
        return self._derived(lib.mmapd_ndview_index, dim, i)

    def npy_header(self) -> bytes:
        """The .npy (1.0) header of the view's type and shape (mmapd_ndview_npy_header())."""
        buf = ctypes.create_string_buffer(4096)
        n = check(lib.mmapd_ndview_npy_header(ctypes.byref(self._current()), buf, len(buf)),
                  self.region.name)
        return buf.raw[:n]

    def save(self, f: BinaryIO) -> None:
        """Writes the view as a .npy file to the binary file f (numpy.load() reads it). The
        view must be contiguous: a whole array, or a slice of its first dimension."""
        strides, step = self.strides, self.itemsize
        for n, s in zip(reversed(self.shape), reversed(strides)):
            if n > 1 and s != step:
                raise ValueError("save() needs a contiguous view")
            step *= n
        f.write(self.npy_header())
        f.write(self.region.view(self._offset, step))

    def __repr__(self) -> str:
        return f"<mmapd.NDArray {self.region.name!r} {self.dtype} {self.shape}>"
