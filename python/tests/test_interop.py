# SPDX-License-Identifier: MIT
"""Two processes, one in C and one in Python (or two Pythons), sharing one region, ring,
lock or persistent structure through the daemon: the C side is tests/mmapd-testclient (regions,
locks) or mmapd-pypeer (rings, persistent structures), run as separate processes."""
import ctypes
import os
import subprocess
import sys
import textwrap
import threading
import time
import unittest

from harness import HAVE_NUMPY, PYPEER, TESTCLIENT, TOP, DaemonTest, mmapd


class TestInterop(DaemonTest):
    # ---- region bytes -----------------------------------------------------------------

    def test_c_writer_python_reader(self):
        self.run_c(TESTCLIENT, "create", "cw", "4096")
        self.run_c(TESTCLIENT, "write", "cw", "100", "written by C")
        with self.c.open("cw") as r:
            self.assertEqual(r[100:112], b"written by C")

    def test_python_writer_c_reader(self):
        with self.c.open("pw", size=4096, create=True, mode="rw") as r:
            r[10:27] = b"written by Python"
            out = self.run_c(TESTCLIENT, "read", "pw", "10", "17")
            self.assertEqual(out.strip(), "written by Python")

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_numpy_array_between_two_processes(self):
        import numpy as np
        with self.c.open("grid", size=1 << 16, create=True, mode="rw") as r:
            a = r.array("f8", (64, 64))
            a[:] = np.arange(64 * 64).reshape(64, 64) / 2
            reader = textwrap.dedent(f"""
                import sys
                sys.path.insert(0, {os.path.join(TOP, 'python')!r})
                import mmapd
                with mmapd.connect() as c, c.open("grid") as r:
                    b = r.array("f8", (64, 64))
                    print(float(b.sum()), float(b[63, 63]))
                    del b
            """)
            p = subprocess.run([sys.executable, "-c", reader], env=self.d.env(),
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.split(), [str(float(a.sum())), str(float(a[63, 63]))])
            del a

    # ---- locks ------------------------------------------------------------------------

    def test_lock_c_holds_python_waits(self):
        self.c.open("lockc", size=4096, create=True, mode="rw").close()
        sess = self.spawn(TESTCLIENT, "session")
        try:
            self.assertTrue(sess.stdout.readline().startswith("= ready"))
            sess.stdin.write("lock lockc 0 8 exclusive\n")
            held = sess.stdout.readline()
            self.assertTrue(held.startswith("= ok lock="), held)
            with self.assertRaises(BlockingIOError):
                self.c.lock("lockc", 0, 8, nowait=True)
            lock_id = held.split("lock=")[1].split()[0]
            threading.Timer(0.2, lambda: sess.stdin.write(f"unlock {lock_id}\n")).start()
            t0 = time.monotonic()
            with self.c.lock("lockc", 0, 8, timeout=5):
                self.assertGreater(time.monotonic() - t0, 0.1)
            self.assertTrue(sess.stdout.readline().startswith("= ok"))
        finally:
            self.end(sess)

    def test_lock_python_holds_c_waits(self):
        self.c.open("lockp", size=4096, create=True, mode="rw").close()
        sess = self.spawn(TESTCLIENT, "session")
        try:
            self.assertTrue(sess.stdout.readline().startswith("= ready"))
            lk = self.c.lock("lockp", 0, 8)
            sess.stdin.write("lock lockp 0 8 exclusive nowait\n")
            self.assertTrue(sess.stdout.readline().startswith("= err EAGAIN"))
            sess.stdin.write("lock lockp 0 8 exclusive timeout=5000\n")
            time.sleep(0.2)
            lk.release()
            self.assertTrue(sess.stdout.readline().startswith("= ok lock="))
        finally:
            self.end(sess)

    # ---- rings ------------------------------------------------------------------------

    def test_ring_c_writer_python_reader(self):
        ring = self.c.ring("r1", "r", capacity=4096, timeout=5)
        self.peer("ring-write", "r1", "first line", "second", "third")
        self.assertEqual(ring.readline(), b"first line\n")
        self.assertEqual(list(ring), [b"second\n", b"third\n"])   # to the end of the stream
        self.assertEqual(ring.read(), b"")
        ring.close()

    def test_ring_python_writer_c_reader(self):
        ring = self.c.ring("r2", "w", capacity=4096, timeout=5)
        reader = self.spawn(PYPEER, "ring-read", "r2")
        msgs = [f"message {i:03d}\n".encode() for i in range(500)]   # 16 KiB: wraps around
        for m in msgs:
            ring.write(m)
        ring.close()                                        # the end of the stream
        out = reader.stdout.read()
        self.assertEqual(self.end(reader), 0)
        self.assertEqual(out.encode(), b"".join(msgs))

    def test_ring_round_trip_through_c(self):
        to_c = self.c.ring("to-c", "w", capacity=4096, timeout=5)
        from_c = self.c.ring("from-c", "r", capacity=4096, timeout=5)
        echo = self.spawn(PYPEER, "ring-echo", "to-c", "from-c", "50")
        for i in range(50):
            to_c.write(b"ping %d\n" % i)
            self.assertEqual(from_c.readline(), b"PING %d\n" % i)
        self.assertEqual(self.end(echo), 0)
        self.assertEqual(from_c.read(), b"")               # the C writer closed
        to_c.close()
        from_c.close()

    def test_ring_reads_whole_units_in_batches(self):
        ring = self.c.ring("units", "r", capacity=4096, timeout=5, unit=6)
        recs = [b"rec%02d\n" % i for i in range(50)]              # 6-byte records
        self.peer("ring-write", "units", *[r[:-1].decode() for r in recs], "tail")
        self.assertEqual(ring.read(100), b"".join(recs[:16]))       # 96: no record split
        if HAVE_NUMPY:
            import numpy as np
            buf = np.zeros(40, dtype="S6")
        else:
            buf = bytearray(240)
        self.assertEqual(ring.readinto(buf), 34 * 6)                # all there are, at once
        self.assertEqual(bytes(memoryview(buf).cast("B")[:204]), b"".join(recs[16:]))
        self.assertEqual(ring.read(), b"tail\n")                   # a short last piece
        with self.assertRaises(ValueError):
            ring.unit = 8192                                        # above the capacity
        ring.close()

    def test_ring_overwrite_mode_skips_what_was_lost(self):
        w = self.c.ring("ow", "w", capacity=4096, overwrite=True, timeout=1)
        rd = self.c.ring("ow", "r", timeout=1)
        w.write(b"a" * 4096)
        w.write(b"b" * 100)                                  # overwrites the oldest bytes
        got = rd.read(8192)
        self.assertGreater(rd.lost, 0)
        self.assertTrue(got.endswith(b"b" * 100))
        self.assertEqual(len(got) + rd.lost, 4196)
        w.close()
        rd.close()

    def test_help_shows_the_docstrings(self):
        import pydoc
        text = pydoc.render_doc(mmapd.Region, renderer=pydoc.plaintext)
        self.assertIn("buffer protocol", text)
        self.assertIn("NumPy array of dtype over the window", text)

    # ---- persistent structures --------------------------------------------------------

    @unittest.skipUnless(HAVE_NUMPY, "NumPy is not installed")
    def test_pvec_c_push_python_structured_array(self):
        import numpy as np
        rec = np.dtype([("id", "u4"), ("value", "f4"), ("stamp", "f8"), ("tag", "S8")],
                       align=True)
        self.peer("pvec-push", "recs", "1000")
        with self.c.pvec("recs", rec) as v:
            self.assertEqual(len(v), 1000)
            a = v.array()
            self.assertEqual(a.dtype, rec)
            self.assertEqual(a["id"].tolist(), list(range(1000)))
            self.assertEqual(float(a["value"][10]), 5.0)
            self.assertEqual(a["tag"][7], b"c7")
            a["stamp"][0] = -1.5                            # shared, no copy
            with v.lock(timeout=5):
                v.append((1000, 0.25, 3.0, b"py"))
            self.assertEqual(v[-1]["tag"], b"py")
            del a
        dump = self.peer("pvec-dump", "recs").splitlines()
        self.assertEqual(dump[0], "0 0 -1.5 c0")
        self.assertEqual(dump[-1], "1000 0.25 3 py")

    def test_pvec_python_push_c_reads(self):
        class Rec(ctypes.Structure):
            _fields_ = [("id", ctypes.c_uint32), ("value", ctypes.c_float),
                        ("stamp", ctypes.c_double), ("tag", ctypes.c_char * 8)]

        with self.c.pvec("recs2", Rec) as v:
            with v.lock():
                for i in range(3):
                    v.append(Rec(i, i + 0.5, i * 10.0, b"p%d" % i))
            self.assertEqual(v[1].stamp, 10.0)
            self.assertEqual(v.pop().tag, b"p2")
        self.assertEqual(self.peer("pvec-dump", "recs2").splitlines(),
                         ["0 0.5 0 p0", "1 1.5 10 p1"])

    def test_phash_both_ways(self):
        self.peer("phash-put", "map", "from-c", "c-value")
        with self.c.phash("map", 8, 8) as m:
            with m.lock(timeout=5):
                self.assertEqual(m[b"from-c\0\0"], b"c-value\0")
                m[b"from-py\0"] = b"py-value"
                self.assertEqual(len(m), 2)
                self.assertIn(b"from-c\0\0", m.keys())
                with self.assertRaises(KeyError):
                    m[b"nothing\0"]
        self.assertEqual(self.peer("phash-get", "map", "from-py").strip(), "py-value")

    def test_pstruct_both_ways(self):
        class Counters(ctypes.Structure):
            _fields_ = [("hits", ctypes.c_uint64), ("misses", ctypes.c_uint32),
                        ("label", mmapd.FStr(15))]

        with self.c.open("ps", size=4096, create=True, mode="rw") as r:
            self.assertEqual(self.peer("pstruct-set", "ps", "0", "41", "2", "from C").strip(),
                             "41 2 from C")
            s = r.pstruct(0, Counters, "counters", 1)
            self.assertEqual((s.hits, s.misses, s.label.value), (41, 2, b"from C"))
            s.hits += 1
            s.label.value = "from Python"
            with self.assertRaises(OSError):
                s.label.value = "x" * 16                    # over the capacity
            self.assertEqual(self.peer("pstruct-get", "ps", "0").strip(), "42 2 from Python")
            with self.assertRaises(OSError) as e:
                r.pstruct(0, Counters, "counters", 2)       # another version
            self.assertEqual(e.exception.errno, 71)         # EPROTO
            del s


if __name__ == "__main__":
    unittest.main()
