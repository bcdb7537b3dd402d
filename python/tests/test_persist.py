# SPDX-License-Identifier: MIT
"""Persistent structures from Python beyond append/get: string maps (mmapd.PStrMap over
mmapd_pstrmap_*, both ways with C through mmapd-pypeer strmap-*), the vector's insert,
remove, swap_remove, truncate, extend, sort, bsearch, foreach and reversed iteration (checked
against C's pvec-dump), the hash map's capacity, reserve and cursor iteration, durable
opens, and vectors and hash maps as fields (mmapd.PField) of a persistent struct."""
import ctypes
import unittest

from harness import HAVE_NUMPY, DaemonTest, mmapd
from mmapd._lib import lib


class Rec(ctypes.Structure):
    """struct rec of mmapd-pypeer."""
    _fields_ = [("id", ctypes.c_uint32), ("value", ctypes.c_float),
                ("stamp", ctypes.c_double), ("tag", ctypes.c_char * 8)]


def rec(i, tag=None):
    return Rec(i, i * 0.5, i * 2.0, tag if tag is not None else b"c%d" % i)


class TestPStrMap(DaemonTest):
    def test_c_puts_python_reads_and_the_reverse(self):
        self.peer("strmap-put", "sm", "from C", "a value written by C")
        with self.c.pstrmap("sm") as m, m.lock(timeout=5):
            self.assertEqual(m["from C"], b"a value written by C")
            m["from Python, a longer key than any fixed size"] = "x" * 5000
            m[b"empty"] = b""
            m["\u00e9t\u00e9"] = "summer"               # str keys and values: UTF-8
            self.assertEqual(len(m), 4)
        self.assertEqual(self.peer("strmap-get", "sm", "from Python, a longer key than any "
                                   "fixed size").strip(), "x" * 5000)
        self.assertEqual(self.peer("strmap-get", "sm", "\u00e9t\u00e9").strip(), "summer")
        self.assertEqual(self.peer("strmap-get", "sm", "empty"), "\n")
        self.peer("strmap-put", "sm", "from C", "replaced")
        with self.c.pstrmap("sm", create=False) as m, m.lock(timeout=5):
            self.assertEqual(m["from C"], b"replaced")
            del m["empty"]
            self.assertNotIn("empty", m)
            self.assertEqual(self.c.stat("sm.arena").name, "sm.arena")
        self.assertEqual(self.peer("strmap-get", "sm", "empty").strip(), "absent")
        dump = sorted(self.peer("strmap-dump", "sm").splitlines())
        self.assertEqual(dump, sorted(["from C=replaced", "\u00e9t\u00e9=summer",
                                       "from Python, a longer key than any fixed size="
                                       + "x" * 5000]))

    def test_mapping_interface_and_iteration(self):
        with self.c.pstrmap("sm2", anonymous=True) as m, m.lock(timeout=5):
            data = {b"k%d" % i: b"v" * i for i in range(200)}
            m.update(data)
            self.assertEqual(len(m), 200)
            self.assertEqual(dict(m.items()), data)
            self.assertEqual(sorted(m), sorted(data))
            self.assertEqual(sorted(m.values()), sorted(data.values()))
            self.assertEqual(m.get("nothing", b"default"), b"default")
            with self.assertRaises(KeyError):
                m["nothing"]
            with self.assertRaises(KeyError):
                del m["nothing"]
            self.assertEqual(m.pop(b"k5"), b"vvvvv")
            for k in list(m.keys())[:50]:               # removal between cursor steps
                del m[k]
            self.assertEqual(len(m), 149)
            before, arena = dict(m.items()), lib.mmapd_pstrmap_arena(m._p())
            used = lib.mmapd_pvec_len(arena)
            m.compact()                                 # the removed values' bytes go
            self.assertEqual(len(m), 149)
            self.assertEqual(dict(m.items()), before)
            self.assertLess(lib.mmapd_pvec_len(arena), used)
            m.flush()
            self.assertIn("PStrMap", repr(m))
        self.c.delete("sm2")
        self.c.delete("sm2.arena")


class TestPVecBreadth(DaemonTest):
    def dump(self, name):
        return [line.split()[0] for line in self.peer("pvec-dump", name).splitlines()]

    def test_insert_remove_swap_remove_truncate_seen_by_c(self):
        with self.c.pvec("ops", Rec) as v, v.lock(timeout=5):
            v.extend(rec(i) for i in range(6))          # 0 1 2 3 4 5, one step
            v.insert(2, rec(20))                        # 0 1 20 2 3 4 5
            v.insert(-1, rec(40))                       # 0 1 20 2 3 4 40 5
            v.insert(100, rec(99))                      # appended
            self.assertEqual(v.pop(0).id, 0)            # 1 20 2 3 4 40 5 99
            del v[1]                                    # 1 2 3 4 40 5 99
            self.assertEqual(v.swap_remove(1).id, 2)    # 1 99 3 4 40 5
            v.truncate(5)                               # 1 99 3 4 40
            with self.assertRaises(ValueError):
                v.truncate(6)
            with self.assertRaises(IndexError):
                v.swap_remove(5)
            self.assertEqual([r.id for r in reversed(v)], [40, 4, 3, 99, 1])
        self.assertEqual(self.dump("ops"), ["1", "99", "3", "4", "40"])

    def test_sort_bsearch_foreach(self):
        with self.c.pvec("sorted", Rec) as v, v.lock(timeout=5):
            v.extend(rec(i) for i in (7, 3, 9, 1, 5))
            v.sort(key=lambda r: r.id)
            self.assertEqual([r.id for r in v], [1, 3, 5, 7, 9])
            by_id = lambda r: r.id                      # noqa: E731
            self.assertEqual(v.bsearch(rec(7), key=by_id), (3, True))
            self.assertEqual(v.bsearch(rec(4), key=by_id), (2, False))
            self.assertEqual(v.bsearch(rec(10), key=by_id), (5, False))
            v.sort(key=lambda r: -r.id)
            seen = []
            self.assertIsNone(v.foreach(lambda i, r: seen.append((i, r.id))))
            self.assertEqual(seen, [(0, 9), (1, 7), (2, 5), (3, 3), (4, 1)])
            seen.clear()
            self.assertEqual(v.foreach(lambda i, r: seen.append(r.id) or (r.id == 5 and "stop"),
                                       1, 4, reverse=True), "stop")
            self.assertEqual(seen, [3, 5])
            with self.assertRaises(ZeroDivisionError):   # the key's error reaches the caller
                v.sort(key=lambda r: 1 // 0)
            with self.assertRaises(KeyError):
                v.foreach(lambda i, r: {}[i])
        self.assertEqual(self.dump("sorted"), ["9", "7", "5", "3", "1"])

    def test_durable_vector_and_maps_open_and_work(self):
        with self.c.pvec("dur", Rec, durable=True) as v, v.lock(timeout=5):
            v.extend([rec(1), rec(2)])
            v.insert(0, rec(0))
        self.assertEqual(self.dump("dur"), ["0", "1", "2"])
        with self.c.phash("durh", 8, 8, durable=True) as h, h.lock(timeout=5):
            h[b"12345678"] = b"abcdefgh"
        with self.c.pstrmap("durs", durable=True) as m, m.lock(timeout=5):
            m["k"] = "v"
        self.assertEqual(self.peer("phash-get", "durh", "12345678").strip(), "abcdefgh")
        self.assertEqual(self.peer("strmap-get", "durs", "k").strip(), "v")

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_extend_with_a_numpy_array(self):
        import numpy as np
        dt = np.dtype([("id", "u4"), ("value", "f4"), ("stamp", "f8"), ("tag", "S8")],
                      align=True)
        a = np.zeros(1000, dtype=dt)
        a["id"] = np.arange(1000)
        a["stamp"] = -np.arange(1000)
        with self.c.pvec("npext", dt) as v, v.lock(timeout=5):
            v.extend(a)
            self.assertEqual(len(v), 1000)
            v.sort(key=lambda r: r["stamp"])            # NumPy scalars as keys
            self.assertEqual(int(v[0]["id"]), 999)
        self.assertEqual(self.dump("npext")[:3], ["999", "998", "997"])


class TestFields(DaemonTest):
    def test_containers_as_fields_of_a_persistent_struct(self):
        class Owner(ctypes.Structure):
            _fields_ = [("count", ctypes.c_uint64), ("recs", mmapd.PField),
                        ("index", mmapd.PField)]

        with self.c.open("owner", size=4096, create=True, mode="rw") as r:
            s = r.pstruct(0, Owner, "owner", 1)
            base = ctypes.addressof(s) - r.address     # the struct's window offset
            at_recs, at_index = base + Owner.recs.offset, base + Owner.index.offset
            name = r.field_name(at_recs)
            self.assertEqual(name, "owner.f%d" % at_recs)
            self.assertEqual(s.recs.desc, 0)               # empty until the first open
            with r.pvec_field(at_recs, Rec) as v, v.lock(timeout=5):
                self.assertEqual(v.name, name)
                v.extend([rec(4), rec(5)])
            self.assertNotEqual(s.recs.desc, 0)            # what it holds, recorded
            with r.phash_field(at_index, 8, 8) as h, h.lock(timeout=5):
                h[b"field-k\0"] = b"field-v\0"
            with self.assertRaises(OSError) as e:
                r.phash_field(at_recs, 8, 8)               # the field holds a vector
            self.assertEqual(e.exception.errno, 71)       # EPROTO
            with self.assertRaises(OSError) as e:
                r.pvec_field(at_recs, 16)                  # of other elements
            self.assertEqual(e.exception.errno, 71)
            with self.assertRaises(IndexError):
                r.pvec_field(4090, Rec)                    # not inside the window
            del s
        self.assertEqual([x.split()[0] for x in self.peer("pvec-dump", name).splitlines()],
                         ["4", "5"])
        self.assertEqual(self.peer("phash-get", "owner.f%d" % at_index, "field-k").strip(),
                         "field-v")


class TestFStr(DaemonTest):
    def test_layout_is_a_word_and_two_buffers(self):
        self.assertEqual(ctypes.sizeof(mmapd.FStr(7)), 8 + 2 * 8)
        self.assertEqual(ctypes.sizeof(mmapd.FStr(8)), 32)          # 8 + 18, rounded up to 8
        self.assertEqual(ctypes.alignment(mmapd.FStr(8)), 8)

    def test_truncate_raw_and_compare(self):
        class Named(ctypes.Structure):
            _fields_ = [("label", mmapd.FStr(7))]

        with self.c.open("fstr", size=4096, create=True, mode="rw") as r:
            s = r.pstruct(0, Named, "named", 1)
            self.assertFalse(s.label.set_truncated("short"))
            self.assertTrue(s.label.set_truncated("\u00e9t\u00e9 \u00e9t\u00e9"))   # 2-byte chars
            self.assertEqual(s.label.value, "\u00e9t\u00e9 ".encode())   # 6: not half an é
            with self.assertRaises(OSError) as e:
                s.label.value = b"\xff\xfe"                 # not UTF-8
            self.assertEqual(e.exception.errno, 84)          # EILSEQ
            s.label.set_raw(b"\xff\xfe")
            self.assertEqual(s.label.value, b"\xff\xfe")
            s.label.value = "mid"
            self.assertLess(s.label.compare("zzz"), 0)
            self.assertEqual(s.label.compare(b"mid"), 0)
            self.assertGreater(s.label.compare("mi"), 0)
            del s


class TestPHashBreadth(DaemonTest):
    def test_capacity_reserve_and_cursor(self):
        self.peer("phash-put", "hm", "c-key", "c-val")
        with self.c.phash("hm", 8, 8) as m, m.lock(timeout=5):
            cap = m.capacity
            self.assertGreater(cap, 0)
            m.reserve(cap * 4)
            self.assertGreaterEqual(m.capacity, cap * 4)
            for i in range(100):
                m[b"k%07d" % i] = b"v%07d" % i
            self.assertEqual(m.capacity >= 101, True)
            items = dict(m.iter_items())
            self.assertEqual(len(items), 101)
            self.assertEqual(items[b"c-key\0\0\0"], b"c-val\0\0\0")
            for k, _ in m.iter_items():                 # removing while iterating
                if k.startswith(b"k"):
                    del m[k]
            self.assertEqual(m.items(), [(b"c-key\0\0\0", b"c-val\0\0\0")])
        self.assertEqual(self.peer("phash-get", "hm", "k0000001").strip(), "absent")


if __name__ == "__main__":
    unittest.main()
