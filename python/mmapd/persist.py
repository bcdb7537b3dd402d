# SPDX-License-Identifier: MIT
"""libmmapd's persistent structures (mmapd-persist.h) from Python: structs (pstruct()),
fixed-capacity strings (FStr), vectors (PVec), hash maps (PHash) and string maps (PStrMap,
keys and values of any length). N-d arrays are in ndarray.py.

They are libmmapd's own (same headers, same region layout, same locks), so C and Python
processes share them. Elements and structs are plain bytes in the host's byte order; Python
describes them with a ctypes type (a Structure mirrors a C struct, padding included) or a
NumPy dtype (a structured dtype with align=True matches the C layout), or just a size in
bytes. A PVec's elements never move while it is open, so PVec.array() is a NumPy structured
array over the shared elements with no copy. Every change a vector or map makes is atomic
across a crash of its process (libmmapd's redo journal); sort() and bsearch() call back into
Python for the comparisons, one call per comparison.
"""
from __future__ import annotations

import ctypes
import weakref
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Iterator

from . import _lib
from ._errors import check
from ._lib import lib
from ._types import timeout_ms

if TYPE_CHECKING:
    from .client import Client
    from .region import Region


class _Codec:
    """Elements as bytes, ctypes instances or NumPy records, by what described them."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype
        if isinstance(dtype, int):
            self.kind, self.size = "bytes", dtype
        elif isinstance(dtype, type) and issubclass(dtype, ctypes._SimpleCData | ctypes.Structure
                                                    | ctypes.Union | ctypes.Array):
            self.kind, self.size = "ctypes", ctypes.sizeof(dtype)
        else:
            import numpy as np
            self.dtype = np.dtype(dtype)
            self.kind, self.size = "numpy", self.dtype.itemsize

    def encode(self, item: Any) -> bytes:
        if self.kind == "numpy" and not isinstance(item, (bytes, bytearray, memoryview)):
            import numpy as np
            b = np.array(item, dtype=self.dtype).tobytes()
        else:
            b = bytes(item)
        if len(b) != self.size:
            raise ValueError(f"an element is {self.size} bytes, not {len(b)}")
        return b

    def decode(self, b: bytes) -> Any:
        if self.kind == "ctypes":
            return self.dtype.from_buffer_copy(b)
        if self.kind == "numpy":
            import numpy as np
            return np.frombuffer(b, dtype=self.dtype)[0]
        return b

    def numpy_dtype(self) -> Any:
        import numpy as np
        if self.kind == "numpy":
            return self.dtype
        if self.kind == "ctypes":
            return np.dtype(self.dtype)
        return np.dtype((np.void, self.size))


def _flags(create: bool, anonymous: bool, durable: bool) -> int:
    """MMAPD_PERSIST_* of the open calls. durable: every operation is on stable storage when
    it returns, and a power loss leaves it before or after (msync per operation)."""
    return ((_lib.PERSIST_CREATE if create else 0) | (_lib.PERSIST_ANONYMOUS if anonymous else 0)
            | (_lib.PERSIST_DURABLE if durable else 0))


Field = tuple["Region", int]   # a struct mmapd_pfield at a window offset of a region


def _open(client: "Client", where: "str | Field", by_name: Any, by_field: Any, region_fn: Any,
          sizes: tuple[int, ...], flags: int) -> tuple[int, str]:
    """Opens a vector or hash map by region name, or by the field (region, offset) that
    stands for it; returns the handle and the name of its region."""
    ptr = ctypes.c_void_p()
    if isinstance(where, str):
        client._call(by_name, client._p(), where.encode(), *sizes, flags, ctypes.byref(ptr),
                     name=where)
    else:
        owner, offset = where
        owner.view(offset, ctypes.sizeof(_lib.PField))   # inside the window (IndexError)
        client._call(by_field, client._p(), owner._p(), owner.address + offset, *sizes, flags,
                     ctypes.byref(ptr), name=owner.name)
    return ptr.value, lib.mmapd_region_name(region_fn(ptr.value)).decode()  # type: ignore[return-value]


def field_name(owner: "Region", offset: int) -> str:
    """The name of the companion region that the field at window offset of owner stands for
    ("<owner>.f<offset in the region>": mmapd_pfield_name()), e.g. for Client.delete()."""
    owner.view(offset, ctypes.sizeof(_lib.PField))
    buf = ctypes.create_string_buffer(256)
    n = check(lib.mmapd_pfield_name(owner._p(), owner.address + offset, buf, len(buf)),
              owner.name)
    return buf.raw[:n].decode()


class _Owner:
    """Owns a toolbox pointer; close_fn runs when the last reference (handle, array) goes."""

    def __init__(self, ptr: int, close_fn: Any) -> None:
        self.ptr = ptr
        self._final = weakref.finalize(self, _lib.closer(close_fn, ptr))


class _Locked:
    """A held lock of a vector or map; it keeps the structure open until released."""

    def __init__(self, unlock: Any, owner: _Owner) -> None:
        self._unlock, self._owner = unlock, owner

    def __enter__(self) -> "_Locked":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._unlock is not None:
            unlock, self._unlock = self._unlock, None
            check(unlock(self._owner.ptr))


class _Persistent:
    _lock_fn: Any
    _unlock_fn: Any
    _region_fn: Any

    def _p(self) -> int:
        if self._owner is None:
            raise ValueError(f"'{self.name}' is closed")
        return self._owner.ptr

    def lock(self, timeout: float | None = None) -> _Locked:
        """Takes the structure's lock (a daemon lock: it dies with the process) and returns a
        context manager that releases it. Writers from several processes must hold it."""
        self.client._call(type(self)._lock_fn, self._p(), timeout_ms(timeout), name=self.name)
        return _Locked(type(self)._unlock_fn, self._owner)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Makes the structure durable through the daemon (fdatasync of its region)."""
        region = type(self)._region_fn(self._p())
        self.client._call(lib.mmapd_region_flush, region, 0, 0, name=self.name)

    def close(self) -> None:
        """Closes it (at once, or when the last array over it is gone)."""
        self._owner = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PVec(_Persistent):
    """A persistent vector (mmapd_pvec_*) of fixed-size elements: a mutable sequence with
    append/pop, and array() for a zero-copy NumPy view. One writer at a time: writers in
    several processes hold lock(). Readers without it see only complete elements."""
    _lock_fn = lib.mmapd_pvec_lock
    _unlock_fn = lib.mmapd_pvec_unlock
    _region_fn = lib.mmapd_pvec_region

    def __init__(self, client: "Client", name: "str | Field", dtype: Any, create: bool,
                 anonymous: bool, durable: bool = False) -> None:
        self.client = client
        self._codec = _Codec(dtype)
        ptr, self.name = _open(client, name, lib.mmapd_pvec_open, lib.mmapd_pvec_open_field,
                               lib.mmapd_pvec_region, (self._codec.size,),
                               _flags(create, anonymous, durable))
        self._owner: _Owner | None = _Owner(ptr, lib.mmapd_pvec_close)
        self._tmp = ctypes.create_string_buffer(self._codec.size)

    @property
    def itemsize(self) -> int:
        return self._codec.size

    @property
    def capacity(self) -> int:
        return lib.mmapd_pvec_capacity(self._p())

    def __len__(self) -> int:
        return lib.mmapd_pvec_len(self._p())

    def _index(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a vector of {n}")
        return i

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        check(lib.mmapd_pvec_get(self._p(), self._index(i), self._tmp), self.name)
        return self._codec.decode(self._tmp.raw)

    def __setitem__(self, i: int, item: Any) -> None:
        check(lib.mmapd_pvec_set(self._p(), self._index(i), self._codec.encode(item)), self.name)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def append(self, item: Any) -> None:
        """Appends an element (growing the region through the daemon when full)."""
        self.client._call(lib.mmapd_pvec_push, self._p(), self._codec.encode(item),
                          name=self.name)

    def extend(self, items: Any) -> None:
        """Appends every element of items at once (mmapd_pvec_extend()): after a crash, all
        of them or none. A NumPy array of the vector's dtype is taken as it is."""
        if self._codec.kind == "numpy" and hasattr(items, "dtype"):
            import numpy as np
            data = np.ascontiguousarray(items, dtype=self._codec.dtype).tobytes()
        else:
            data = b"".join(self._codec.encode(item) for item in items)
        count = len(data) // self._codec.size
        if count:
            self.client._call(lib.mmapd_pvec_extend, self._p(), data, count, name=self.name)

    def insert(self, i: int, item: Any) -> None:
        """Inserts item before element i (mmapd_pvec_insert(); i == len(self) appends),
        moving the elements from i on up by one."""
        n = len(self)
        i = max(0, min(n, i + n if i < 0 else i))
        self.client._call(lib.mmapd_pvec_insert, self._p(), i, self._codec.encode(item),
                          name=self.name)

    def _take(self, fn: Any, i: int) -> Any:
        r = fn(self._p(), self._index(i), self._tmp)
        check(r, self.name)
        return self._codec.decode(self._tmp.raw)

    def pop(self, i: int = -1) -> Any:
        """Removes and returns element i (default the last: mmapd_pvec_pop(); another:
        mmapd_pvec_remove(), which keeps the order). IndexError when out of range."""
        if i == -1:
            r = lib.mmapd_pvec_pop(self._p(), self._tmp)
            if r == -34:   # -ERANGE
                raise IndexError("pop from an empty vector")
            check(r, self.name)
            return self._codec.decode(self._tmp.raw)
        return self._take(lib.mmapd_pvec_remove, i)

    def __delitem__(self, i: int) -> None:
        """Removes element i, keeping the order (mmapd_pvec_remove(), O(len))."""
        self._take(lib.mmapd_pvec_remove, i)

    def swap_remove(self, i: int) -> Any:
        """Removes and returns element i, moving the last element into its place
        (mmapd_pvec_swap_remove(), O(1))."""
        return self._take(lib.mmapd_pvec_swap_remove, i)

    def truncate(self, length: int) -> None:
        """Drops the elements from index length on (ValueError when longer than it is)."""
        r = lib.mmapd_pvec_truncate(self._p(), length)
        if r == -34:
            raise ValueError(f"cannot truncate a vector of {len(self)} to {length}")
        check(r, self.name)

    def clear(self) -> None:
        check(lib.mmapd_pvec_clear(self._p()), self.name)

    def _cmp(self, key: Any) -> tuple[Any, list[BaseException]]:
        """A C comparator of two elements by key(element) (the element itself by default),
        and the list that catches what key raises (a C callback cannot raise)."""
        size, decode, errors = self._codec.size, self._codec.decode, []
        key = key or (lambda e: e)

        def cmp(a: int, b: int) -> int:
            try:
                ka = key(decode(ctypes.string_at(a, size)))
                kb = key(decode(ctypes.string_at(b, size)))
                return 1 if ka > kb else -1 if ka < kb else 0
            except BaseException as e:   # noqa: B036 (re-raised by the caller)
                errors.append(e)
                return 0
        return _lib.PVEC_CMP_FN(cmp), errors

    def sort(self, key: Any = None) -> None:
        """Sorts the elements by key(element) (the decoded element itself by default) with
        mmapd_pvec_sort(): in one journalled step, a crash leaves it unsorted or sorted."""
        fn, errors = self._cmp(key)
        self.client._call(lib.mmapd_pvec_sort, self._p(), fn, name=self.name)
        if errors:
            raise errors[0]

    def bsearch(self, item: Any, key: Any = None) -> tuple[int, bool]:
        """Binary search of a vector sorted by key for item (an element): (index, True) for a
        matching element, (where it would be inserted, False) otherwise (mmapd_pvec_bsearch())."""
        fn, errors = self._cmp(key)
        at = ctypes.c_uint64()
        r = lib.mmapd_pvec_bsearch(self._p(), self._codec.encode(item), fn, ctypes.byref(at))
        if errors:
            raise errors[0]
        if r != -2:   # -ENOENT: not found, at is the insertion point
            check(r, self.name)
        return at.value, r == 0

    def foreach(self, fn: Any, start: int = 0, stop: int | None = None,
                reverse: bool = False) -> Any:
        """Calls fn(i, element) for start <= i < stop (stop cut to the length), in increasing
        order or, with reverse, decreasing (mmapd_pvec_foreach()). A true result of fn stops
        the iteration and is returned (None otherwise). fn must not change the length."""
        size, decode = self._codec.size, self._codec.decode
        result: list[Any] = []

        def each(i: int, elem: int, _u: int) -> int:
            try:
                r = fn(i, decode(ctypes.string_at(elem, size)))
            except BaseException as e:   # noqa: B036 (re-raised below)
                r = e
            if r:
                result.append(r)
                return 1
            return 0

        check(lib.mmapd_pvec_foreach(self._p(), start, 2**64 - 1 if stop is None else stop,
                                     _lib.PVEC_REVERSE if reverse else 0, _lib.PVEC_FN(each),
                                     None), self.name)
        if result and isinstance(result[0], BaseException):
            raise result[0]
        return result[0] if result else None

    def __reversed__(self) -> Iterator[Any]:
        for i in range(len(self) - 1, -1, -1):
            yield self[i]

    def reserve(self, count: int) -> None:
        """Makes room for count elements."""
        self.client._call(lib.mmapd_pvec_reserve, self._p(), count, name=self.name)

    def array(self) -> Any:
        """A NumPy array of the current elements (a structured array for a structured
        dtype) over the shared memory, no copy; writes to it change the elements. Elements
        appended later are not in it: call array() again."""
        import numpy as np
        dt = self._codec.numpy_dtype()
        n = len(self)
        if n == 0:
            return np.empty(0, dtype=dt)
        at = ctypes.c_void_p()
        check(lib.mmapd_pvec_at(self._p(), 0, ctypes.byref(at)), self.name)
        keep = type("_Elements", (ctypes.c_ubyte * (n * self._codec.size),), {})
        pages = keep.from_address(at.value)  # type: ignore[attr-defined]
        pages.owner = self._owner
        return np.frombuffer(memoryview(pages).cast("B"), dtype=dt, count=n)

    def __repr__(self) -> str:
        return f"<mmapd.PVec {self.name!r} len={len(self) if self._owner else 'closed'}>"


class PHash(_Persistent):
    """A persistent hash map (mmapd_phash_*) from fixed-size byte keys to fixed-size byte
    values, as a mutable mapping. When any process writes, every process holds lock() for
    every call (a rebuild moves entries); len() alone is safe without it."""
    _lock_fn = lib.mmapd_phash_lock
    _unlock_fn = lib.mmapd_phash_unlock
    _region_fn = lib.mmapd_phash_region

    def __init__(self, client: "Client", name: "str | Field", key_size: int, value_size: int,
                 create: bool, anonymous: bool, durable: bool = False) -> None:
        self.client = client
        self.key_size, self.value_size = key_size, value_size
        ptr, self.name = _open(client, name, lib.mmapd_phash_open, lib.mmapd_phash_open_field,
                               lib.mmapd_phash_region, (key_size, value_size),
                               _flags(create, anonymous, durable))
        self._owner: _Owner | None = _Owner(ptr, lib.mmapd_phash_close)
        self._tmp = ctypes.create_string_buffer(value_size)

    def _key(self, key: Any) -> bytes:
        k = bytes(key)
        if len(k) != self.key_size:
            raise ValueError(f"a key is {self.key_size} bytes, not {len(k)}")
        return k

    def __len__(self) -> int:
        return lib.mmapd_phash_count(self._p())

    def __getitem__(self, key: Any) -> bytes:
        r = lib.mmapd_phash_get(self._p(), self._key(key), self._tmp)
        if r == -2:
            raise KeyError(key)
        check(r, self.name)
        return self._tmp.raw

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: Any) -> bool:
        return self.get(key) is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        v = bytes(value)
        if len(v) != self.value_size:
            raise ValueError(f"a value is {self.value_size} bytes, not {len(v)}")
        self.client._call(lib.mmapd_phash_put, self._p(), self._key(key), v, name=self.name)

    def __delitem__(self, key: Any) -> None:
        r = lib.mmapd_phash_remove(self._p(), self._key(key))
        if r == -2:
            raise KeyError(key)
        check(r, self.name)

    @property
    def capacity(self) -> int:
        """Entries the map holds before a put rebuilds it (mmapd_phash_capacity())."""
        return lib.mmapd_phash_capacity(self._p())

    def reserve(self, count: int) -> None:
        """Makes room for count entries without a rebuild (mmapd_phash_reserve())."""
        self.client._call(lib.mmapd_phash_reserve, self._p(), count, name=self.name)

    def iter_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Yields (key, value) copies in table order by cursor (mmapd_phash_next()): removing
        entries between steps is allowed, and every entry present throughout comes once."""
        cursor = ctypes.c_uint64(0)
        k = ctypes.create_string_buffer(self.key_size)
        v = ctypes.create_string_buffer(self.value_size)
        while check(lib.mmapd_phash_next(self._p(), ctypes.byref(cursor), k, v), self.name):
            yield k.raw, v.raw

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value), in table order (a copy)."""
        return list(self.iter_items())

    def keys(self) -> list[bytes]:
        return [k for k, _ in self.items()]

    def values(self) -> list[bytes]:
        return [v for _, v in self.items()]

    def __iter__(self) -> Iterator[bytes]:
        return (k for k, _ in self.iter_items())

    def __repr__(self) -> str:
        return f"<mmapd.PHash {self.name!r} len={len(self) if self._owner else 'closed'}>"


def _text(b: Any) -> bytes:
    return b.encode() if isinstance(b, str) else bytes(b)


class PStrMap(_Persistent, MutableMapping):  # type: ignore[type-arg]
    """A persistent string map (mmapd_pstrmap_*): keys and values of any length, as a
    mutable mapping of bytes to bytes (str keys and values are stored UTF-8 encoded). It
    takes region name (the index) and "<name>.arena" (the bytes, which grow until compact()).
    Each put, remove and compaction is atomic across a crash. When any process writes, every process holds lock()
    for every call, as for PHash."""
    _lock_fn = lib.mmapd_pstrmap_lock
    _unlock_fn = lib.mmapd_pstrmap_unlock

    def __init__(self, client: "Client", name: str, create: bool, anonymous: bool,
                 durable: bool = False) -> None:
        self.client, self.name = client, name
        flags = _flags(create, anonymous, durable)
        ptr = ctypes.c_void_p()
        client._call(lib.mmapd_pstrmap_open, client._p(), name.encode(), flags,
                     ctypes.byref(ptr), name=name)
        self._owner: _Owner | None = _Owner(ptr.value, lib.mmapd_pstrmap_close)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Makes the map durable through the daemon (its index and its arena)."""
        m = self._p()
        for region in (lib.mmapd_phash_region(lib.mmapd_pstrmap_index(m)),
                       lib.mmapd_pvec_region(lib.mmapd_pstrmap_arena(m))):
            self.client._call(lib.mmapd_region_flush, region, 0, 0, name=self.name)

    def __len__(self) -> int:
        """The number of entries (mmapd_pstrmap_count(): one load)."""
        return int(lib.mmapd_pstrmap_count(self._p()))

    def compact(self) -> None:
        """Reclaims the arena bytes of replaced and removed entries and the index's
        tombstones (mmapd_pstrmap_compact()), atomic across a crash. Values are copied out
        by this package, so no Python object points into the arena; C code holding pointers
        from mmapd_pstrmap_get() must not run meanwhile."""
        self.client._call(lib.mmapd_pstrmap_compact, self._p(), name=self.name)

    def __getitem__(self, key: bytes | str) -> bytes:
        k = _text(key)
        val, n = ctypes.c_void_p(), ctypes.c_size_t()
        r = lib.mmapd_pstrmap_get(self._p(), k, len(k), ctypes.byref(val), ctypes.byref(n))
        if r == -2:
            raise KeyError(key)
        check(r, self.name)
        return ctypes.string_at(val.value or 0, n.value) if n.value else b""

    def __setitem__(self, key: bytes | str, value: bytes | str) -> None:
        k, v = _text(key), _text(value)
        self.client._call(lib.mmapd_pstrmap_put, self._p(), k, len(k), v, len(v),
                          name=self.name)

    def __delitem__(self, key: bytes | str) -> None:
        k = _text(key)
        r = lib.mmapd_pstrmap_remove(self._p(), k, len(k))
        self.client._sync()   # a removal may grow the index's region
        if r == -2:
            raise KeyError(key)
        check(r, self.name)

    def iter_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Yields (key, value) copies by cursor (mmapd_pstrmap_next()); removing entries
        between steps is allowed, and every entry present throughout comes once."""
        cursor = ctypes.c_uint64(0)
        k, v = ctypes.c_void_p(), ctypes.c_void_p()
        kn, vn = ctypes.c_size_t(), ctypes.c_size_t()
        while check(lib.mmapd_pstrmap_next(self._p(), ctypes.byref(cursor), ctypes.byref(k),
                                           ctypes.byref(kn), ctypes.byref(v), ctypes.byref(vn)),
                    self.name):
            yield (ctypes.string_at(k.value or 0, kn.value) if kn.value else b"",
                   ctypes.string_at(v.value or 0, vn.value) if vn.value else b"")

    def __iter__(self) -> Iterator[bytes]:
        return (k for k, _ in self.iter_items())

    def items(self) -> list[tuple[bytes, bytes]]:  # type: ignore[override]
        """Every (key, value), in table order (a copy)."""
        return list(self.iter_items())

    def keys(self) -> list[bytes]:  # type: ignore[override]
        return [k for k, _ in self.iter_items()]

    def values(self) -> list[bytes]:  # type: ignore[override]
        return [v for _, v in self.iter_items()]

    def __repr__(self) -> str:
        return f"<mmapd.PStrMap {self.name!r} len={len(self) if self._owner else 'closed'}>"


def FStr(capacity: int) -> type:
    """The ctypes type of MMAPD_FSTR(capacity), a fixed-capacity string member of a persistent
    struct: a commit word and two buffers of capacity + 1 bytes, read and written only through
    libmmapd, so that every set is atomic (a reader, or the next process after the setter died,
    sees the old string or the new one). Its value property reads and writes it
    (mmapd_fstr_copy(), mmapd_fstr_set(): OSError ENAMETOOLONG when too long, EILSEQ when not
    UTF-8); set_truncated() cuts to the capacity at a character boundary, set_raw() stores any
    bytes, compare() orders like memcmp()."""

    class _FStr(ctypes.Structure):
        _fields_ = [("word", ctypes.c_uint64),
                    ("bytes", (ctypes.c_char * (capacity + 1)) * 2)]

        @property
        def value(self) -> bytes:
            buf = ctypes.create_string_buffer(capacity + 1)
            n = check(lib.mmapd_fstr_copy(ctypes.addressof(self), capacity, buf, len(buf)))
            return buf.raw[:n]

        @value.setter
        def value(self, data: bytes | str) -> None:
            b = data.encode() if isinstance(data, str) else bytes(data)
            check(lib.mmapd_fstr_set(ctypes.addressof(self), capacity, b, len(b)))

        def set_truncated(self, data: bytes | str) -> bool:
            """Sets the string to data cut to the capacity, never inside a UTF-8 sequence
            (mmapd_fstr_set_trunc()); True when it was cut."""
            b = _text(data)
            return check(lib.mmapd_fstr_set_trunc(ctypes.addressof(self), capacity, b,
                                                  len(b))) == 1

        def set_raw(self, data: bytes) -> None:
            """Stores any bytes, unchecked for UTF-8 (mmapd_fstr_set_raw())."""
            b = bytes(data)
            check(lib.mmapd_fstr_set_raw(ctypes.addressof(self), capacity, b, len(b)))

        def compare(self, other: bytes | str) -> int:
            """< 0, 0 or > 0 as the string sorts before, equal to or after other
            (mmapd_fstr_cmp(): bytewise, a prefix first)."""
            b = _text(other)
            return lib.mmapd_fstr_cmp(ctypes.addressof(self), capacity, b, len(b))

    _FStr.__name__ = f"FStr{capacity}"
    return _FStr


def pstruct(region: "Region", offset: int, ctype: Any, type_name: str, version: int = 1,
            init: bool = True) -> Any:
    """Opens the persistent struct at window offset of region (mmapd_pstruct_open()), whose
    header must name type_name and version and the size and alignment of ctype (a ctypes
    Structure, or a NumPy dtype). init formats an empty header (zeroed struct). Returns a
    ctypes instance (or a 0-d NumPy array) over the shared struct; it keeps the mapping alive.
    Raises OSError EPROTO when the header describes another layout."""
    import_np = not (isinstance(ctype, type) and issubclass(ctype, ctypes.Structure))
    if import_np:
        import numpy as np
        dt = np.dtype(ctype)
        size, align = dt.itemsize, dt.alignment
    else:
        size, align = ctypes.sizeof(ctype), ctypes.alignment(ctype)
    layout = _lib.Layout(struct_size=ctypes.sizeof(_lib.Layout), type_name=type_name.encode(),
                         version=version, size=size, align=align)
    out = ctypes.c_void_p()
    region.client._call(lib.mmapd_pstruct_open, region._p(), offset, ctypes.byref(layout),
                        _lib.PSTRUCT_INIT if init else 0, ctypes.byref(out), name=region.name)
    view = region.view(out.value - region.address, size)  # type: ignore[operator]
    if import_np:
        return np.frombuffer(view, dtype=dt, count=1).reshape(())
    if view.readonly:
        obj = ctype.from_address(out.value)
        obj._mmapd_keep = view
        return obj
    return ctype.from_buffer(view)


def pstruct_footprint(ctype: Any, type_name: str = "x", version: int = 1) -> int:
    """Bytes a persistent struct of ctype takes in its region (header, padding, struct)."""
    layout = _lib.Layout(struct_size=ctypes.sizeof(_lib.Layout), type_name=type_name.encode(),
                         version=version, size=ctypes.sizeof(ctype),
                         align=ctypes.alignment(ctype))
    return lib.mmapd_pstruct_footprint(ctypes.byref(layout))
