# SPDX-License-Identifier: MIT
"""Regions from Python against a real daemon: the buffer protocol, NumPy arrays over the
shared pages, errors as the built-in OSError subclasses with the daemon's message, locks,
resize with live arrays, close with live arrays, queries, policies and flushes."""
import ctypes
import gc
import os
import unittest

from harness import HAVE_NUMPY, DaemonTest, mmapd


class TestRegion(DaemonTest):
    def test_buffer_protocol_and_slicing(self):
        with self.c.open("buf", size=4096, create=True, mode="rw") as r:
            self.assertEqual(len(r), 4096)
            m = memoryview(r)
            self.assertEqual((m.format, m.nbytes, m.readonly), ("B", 4096, False))
            r[0:5] = b"hello"
            m[5] = ord("!")
            self.assertEqual(r[0:6], b"hello!")
            self.assertEqual(r[0], ord("h"))
            self.assertEqual(bytes(r)[:6], b"hello!")
            self.assertEqual(r.read(0, 6), b"hello!")
            r.write(6, b"?")
            self.assertEqual(bytes(m[:7]), b"hello!?")
            del m

    def test_read_only_mapping_refuses_writes(self):
        self.c.open("ro", size=4096, create=True, mode="rw").close()
        with self.c.open("ro") as r:
            self.assertEqual(r.mode, "ro")
            self.assertTrue(memoryview(r).readonly)
            with self.assertRaises(TypeError):
                r[0:1] = b"x"
            with self.assertRaises(PermissionError):
                r.write(0, b"x")

    def test_errors_are_oserror_subclasses_with_the_daemons_message(self):
        with self.assertRaises(FileNotFoundError) as e:
            self.c.open("missing")
        self.assertIn("missing", str(e.exception))
        self.assertEqual(e.exception.filename, "missing")
        self.c.open("dup", size=4096, create=True, mode="rw").close()
        with self.assertRaises(FileExistsError):
            self.c.open("dup", size=4096, create=True, exclusive=True, mode="rw")
        with self.assertRaises(OSError) as e:
            self.c.open("../etc", size=1, create=True)
        self.assertEqual(e.exception.errno, 22)
        with self.assertRaises(ValueError):
            self.c.open("x", mode="wx")

    def test_lock_context_manager_and_timeout(self):
        r = self.c.open("lk", size=8192, create=True, mode="rw")
        with mmapd.connect(self.d.sock) as other:
            with r.lock(0, 4096, exclusive=True, timeout=1.0) as lk:
                self.assertTrue(lk.held)
                self.assertEqual(len(self.c.locks("lk")), 1)
                with self.assertRaises(BlockingIOError):
                    other.lock("lk", 0, 4096, nowait=True)
                with self.assertRaises(TimeoutError):
                    other.lock("lk", 100, 10, timeout=0.05)
                with other.lock("lk", 4096, 4096, exclusive=True, timeout=1.0):
                    pass   # another range is free
            self.assertFalse(lk.held)
            with other.lock("lk", 0, 4096, exclusive=False, nowait=True):
                with r.lock(0, 4096, exclusive=False, nowait=True):
                    pass   # shared locks share
            lk = r.lock(0, 1)
            r.close()                                      # the lock keeps it usable
            lk.release()
            by_name = other.lock("lk", 0, 1)
        by_name.release()                                  # released with its connection
        self.assertEqual(self.c.locks("lk"), [])

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_array_is_the_shared_pages(self):
        import numpy as np
        with self.c.open("arr", size=4096, create=True, mode="rw") as r:
            a = r.array("<u4", (4, 8))
            self.assertFalse(a.flags.owndata)
            a[1, 2] = 0xdeadbeef
            self.assertEqual(r.read(40, 4), (0xdeadbeef).to_bytes(4, "little"))
            with self.c.open("arr", mode="ro") as ro:
                b = ro.array(np.uint32, 32)
                self.assertEqual(b[10], 0xdeadbeef)
                self.assertFalse(b.flags.writeable)
                del b
            with self.assertRaises(ValueError):
                r.array("f8", (1000,))
            del a

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_resize_keeps_arrays_valid_within_the_reservation(self):
        r = self.c.open("grow", size=4096, create=True, mode="rw")
        a = r.array("u1", 4096)
        a[:] = 7
        addr = r.address
        r.resize(1 << 20)
        self.assertEqual((r.address, len(r), len(memoryview(r))), (addr, 1 << 20, 1 << 20))
        self.assertEqual(int(a.sum()), 7 * 4096)          # the old array still reads
        r.array("u1")[-1] = 9                              # the new pages are there
        with self.assertRaises(BufferError):               # a shrink would cut the array
            r.resize(2048)
        del a
        r.resize(2048)
        self.assertEqual(len(r), 2048)
        r.close()

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_resize_that_would_move_arrays_raises(self):
        r = self.c.open("nores", size=4096, create=True, mode="rw", reserve=0)
        a = r.array("u1")
        with self.assertRaises(BufferError) as e:
            r.resize(1 << 20)
        self.assertIn("reserve", str(e.exception))
        del a
        gc.collect()
        r.resize(1 << 20)                                  # nothing over it: it may move
        self.assertEqual(len(r), 1 << 20)
        r.close()

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_close_waits_for_the_last_array(self):
        r = self.c.open("keep", size=4096, create=True, mode="rw")
        a = r.array("u1")
        r.close()
        self.assertTrue(r.closed)
        with self.assertRaises(ValueError):
            r.view()
        with self.assertRaises(ValueError):
            memoryview(r)
        a[0] = 5                                           # still mapped
        self.assertEqual(self.c.stat("keep").grants, 1)
        del a
        gc.collect()
        self.assertEqual(self.c.stat("keep").grants, 0)

    def test_a_forked_child_leaves_the_parents_objects_alone(self):
        # The child's copies of the parent's objects must not close anything when they go:
        # the client is the parent's, and the mapping the child inherited stays usable.
        r = self.c.open("forked", size=4096, create=True, mode="rw")
        r[0:2] = b"ok"
        addr = r.address
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                r.close()
                self.c.close()
                gc.collect()
                status = 0 if ctypes.string_at(addr, 2) == b"ok" else 1
            finally:
                os._exit(status)
        self.assertEqual(os.waitpid(pid, 0)[1], 0)
        self.assertEqual(self.c.stat("forked").grants, 1)  # still the parent's
        self.assertEqual(r[0:2], b"ok")
        r.close()
        self.assertEqual(self.c.stat("forked").grants, 0)

    def test_queries_delete_chmod(self):
        with self.c.open("q1", size=8192, create=True, mode="rw", policy="every-writes 3"):
            info = self.c.stat("q1")
            self.assertEqual((info.name, info.size, info.policy), ("q1", 8192, "every-writes 3"))
            self.assertIn("q1", [i.name for i in self.c.list()])
            self.c.chmod("q1", 0o600)
            self.assertEqual(self.c.stat("q1").perm, 0o600)
            st = self.c.status()
            self.assertEqual(st.pid, self.d.proc.pid)
            self.assertGreaterEqual(st.grants, 1)
            self.assertIn(os.getpid(), [k.pid for k in self.c.clients()])
        self.c.delete("q1")
        self.assertFalse(self.c.exists("q1"))
        with self.assertRaises(FileNotFoundError):
            self.c.delete("q1")

    def test_stats_json_and_prometheus(self):
        self.c.ping()
        stats = self.c.stats()
        self.assertGreaterEqual(stats["requests"]["ping"], 1)
        self.assertIn("uptime_seconds", stats)
        text = self.c.stats_prometheus()
        self.assertIn('mmapd_requests_total{op="ping"}', text)
        self.assertIn("# TYPE", text)

    def test_policy_flush_and_msync(self):
        with self.c.open("pol", size=8192, create=True, mode="rw") as r:
            self.assertEqual(r.policy, "manual")
            r.set_policy("every-bytes 1M")
            self.assertEqual(r.policy, "every-bytes 1048576")
            with self.assertRaises(OSError):
                r.set_policy("sometimes")
            r[0:4] = b"data"
            r.flush()
            r.flush(0, 4096)
            self.assertTrue(r.msync(0, 4096))
            self.c.flush("pol")
            r.set_policy("manual")

    def test_window_and_modes(self):
        self.c.open("win", size=3 * 4096, create=True, mode="rw").close()
        with self.c.open("win", mode="rw", offset=4096, length=100) as w:
            self.assertEqual((w.offset, len(w)), (4096, 100))
            w[0:3] = b"abc"
        with self.c.open("win", mode="cow") as cow:
            self.assertEqual(cow.read(4096, 3), b"abc")
            cow[4096:4099] = b"xyz"                        # private to this mapping
            self.assertEqual(self.c.open("win").read(4096, 3), b"abc")
            cow.set_mode("ro")
            self.assertEqual(cow.mode, "ro")
            self.assertTrue(memoryview(cow).readonly)
            with self.assertRaises(TypeError):
                cow[0:1] = b"x"


if __name__ == "__main__":
    unittest.main()
