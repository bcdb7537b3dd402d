# SPDX-License-Identifier: MIT
"""N-d arrays in a region (mmapd.NDArray over mmapd_ndarray_* and mmapd_ndview_*): created
by one side and read by the other between C (mmapd-pypeer nd-write / nd-dump) and Python,
NumPy arrays over the shared elements with the recorded type and shape, sub-range views,
element access without NumPy, the .npy header, and the errors."""
import io
import unittest

from harness import HAVE_NUMPY, DaemonTest, mmapd


class TestNDArray(DaemonTest):
    def region(self, name, size=1 << 16):
        r = self.c.open(name, size=size, create=True, mode="rw")
        self.addCleanup(r.close)
        return r

    def test_c_writes_python_reads_with_the_headers_type_and_shape(self):
        r = self.region("ndc")
        self.peer("nd-write", "ndc", "128", "3", "4")
        nd = r.ndarray(128)                            # type and shape from the header
        self.assertEqual((nd.dtype, nd.shape, nd.itemsize), ("f8", (3, 4), 8))
        self.assertEqual(nd.strides, (32, 8))
        self.assertEqual((nd[0, 0], nd[2, 3], nd[-1, -2]), (0.0, 203.0, 202.0))
        with self.assertRaises(IndexError):
            nd[3, 0]
        with self.assertRaises(IndexError):
            nd[0]                                      # one index per dimension
        if HAVE_NUMPY:
            import numpy as np
            a = nd.numpy()
            self.assertEqual((a.dtype, a.shape), (np.dtype("f8"), (3, 4)))
            self.assertEqual(a.tolist(), [[i * 100 + j for j in range(4)] for i in range(3)])
            del a

    def test_python_writes_c_reads(self):
        r = self.region("ndp")
        nd = r.ndarray(0, "i4", (2, 3))
        for i in range(2):
            for j in range(3):
                nd[i, j] = -(i * 10 + j)
        out = self.peer("nd-dump", "ndp", "0").split("\n")
        self.assertEqual(out[0], "5 2 2 3")           # MMAPD_DT_I32, 2 dimensions
        self.assertEqual(out[1:7], ["0", "-1", "-2", "-10", "-11", "-12"])

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_numpy_zero_copy_both_ways(self):
        import numpy as np
        r = self.region("ndn")
        nd = r.ndarray(64, np.float32, (4, 5, 6))
        a = nd.numpy()
        self.assertEqual((a.dtype, a.shape), (np.dtype("f4"), (4, 5, 6)))
        a[...] = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
        self.assertEqual(nd[3, 4, 5], 119.0)           # the same bytes
        out = self.peer("nd-dump", "ndn", "64").split()
        self.assertEqual(out[:5], ["8", "3", "4", "5", "6"])
        self.assertEqual(out[5:], [str(i) for i in range(120)])
        # A second opening (type and shape from the header) sees the same elements.
        b = r.ndarray(64).numpy()
        self.assertTrue(np.shares_memory(a, b) or a.ctypes.data == b.ctypes.data)
        self.assertEqual(float(b[1, 2, 3]), float(1 * 30 + 2 * 6 + 3))
        del a, b

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_sub_range_views(self):
        import numpy as np
        r = self.region("nds")
        nd = r.ndarray(0, "u2", (6, 8))
        full = nd.numpy()
        full[...] = np.arange(48, dtype=np.uint16).reshape(6, 8)
        rows = nd.slice(0, 2, 5)
        self.assertEqual(rows.shape, (3, 8))
        self.assertEqual(rows.numpy().tolist(), full[2:5].tolist())
        cols = nd.slice(1, 3, 6)
        self.assertEqual((cols.shape, cols.strides), ((6, 3), (16, 2)))
        self.assertEqual(cols.numpy().tolist(), full[:, 3:6].tolist())
        row = nd.index(0, 4)
        self.assertEqual((row.ndim, row.shape), (1, (8,)))
        self.assertEqual(row.numpy().tolist(), full[4].tolist())
        col = nd.index(1, 7)
        self.assertEqual(col.numpy().tolist(), full[:, 7].tolist())
        cols.numpy()[0, 0] = 999                       # a view shares the elements
        self.assertEqual(int(full[0, 3]), 999)
        with self.assertRaises(IndexError):
            nd.slice(0, 5, 9)
        with self.assertRaises(IndexError):
            nd.index(1, 8)
        del full

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_npy_header_and_save_make_a_file_numpy_loads(self):
        import numpy as np
        r = self.region("npy")
        nd = r.ndarray(0, "i8", (5, 3))
        nd.numpy()[...] = np.arange(15).reshape(5, 3)
        self.assertEqual(len(nd.npy_header()) % 64, 0)
        f = io.BytesIO()
        nd.slice(0, 1, 4).save(f)
        f.seek(0)
        self.assertEqual(np.load(f).tolist(), np.arange(15).reshape(5, 3)[1:4].tolist())
        with self.assertRaises(ValueError):
            nd.slice(1, 0, 2).save(io.BytesIO())      # not contiguous

    def test_errors_and_footprint(self):
        r = self.region("nde", size=4096)
        n = mmapd.ndarray_footprint("f8", (10, 10))
        self.assertGreaterEqual(n, 800)
        with self.assertRaises(ValueError):
            mmapd.ndarray_footprint("f8", (0, 3))
        with self.assertRaises(TypeError):
            mmapd.ndarray_footprint("c16", (3,))
        with self.assertRaises(OSError) as e:
            r.ndarray(2048, "f8", (100, 100))          # does not fit the window
        self.assertEqual(e.exception.errno, 34)        # ERANGE
        r.ndarray(0, "f8", (4,))
        with self.assertRaises(OSError) as e:
            r.ndarray(0, "f4", (4,))                   # the header records another type
        self.assertEqual(e.exception.errno, 71)        # EPROTO
        with self.assertRaises(OSError) as e:
            r.ndarray(1024, create=False)              # nothing there
        self.assertEqual(e.exception.errno, 61)        # ENODATA

    def test_read_only_mapping(self):
        self.region("ndro")
        self.peer("nd-write", "ndro", "0", "2", "2")
        with self.c.open("ndro") as ro:
            nd = ro.ndarray(0)
            self.assertEqual(nd[1, 1], 101.0)
            with self.assertRaises(TypeError):
                nd[0, 0] = 1.0
            if HAVE_NUMPY:
                a = nd.numpy()
                self.assertFalse(a.flags.writeable)
                del a


if __name__ == "__main__":
    unittest.main()
