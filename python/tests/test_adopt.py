# SPDX-License-Identifier: MIT
"""Any file, any writer, from Python against a real daemon: c.map_path() and c.adopt() (a
descriptor or a file object) make regions of files outside the data directory, the same
inode is one region whoever adopts it (a C process reads by name what Python adopted), the
descriptor's access caps the mode, the region is adopted again after the daemon is killed
and restarted, and region.huge_bytes() reports the window's huge pages."""
import os
import shutil
import tempfile
import time
import unittest

from harness import TESTCLIENT, DaemonTest, mmapd


class TestAdopt(DaemonTest):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="mmapd-py-adopt.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_map_path_creates_maps_and_shares(self):
        p = self.path("mapped.bin")
        with self.c.map_path(p, "rw", create=True, size=8192) as m:
            self.assertEqual(len(m), 8192)
            self.assertTrue(m.name.startswith("adopted-"))
            m[0:5] = b"hello"
            m.flush()
            with open(p, "rb") as f:
                self.assertEqual(f.read(5), b"hello")
            self.assertTrue(self.c.stat(m.name).adopted)
            with self.c.map_path(p) as ro:              # the same inode: the same region
                self.assertEqual((ro.name, ro.mode, ro[0:5]), (m.name, "ro", b"hello"))
        with self.assertRaises(FileExistsError):
            self.c.map_path(p, "rw", create=True, exclusive=True, size=4096)
        with self.assertRaises(FileNotFoundError):
            self.c.map_path(self.path("missing.bin"))

    def test_adopt_a_file_object_or_descriptor_the_c_peer_reads_by_name(self):
        p = self.path("adopted.bin")
        with open(p, "wb") as f:
            f.truncate(4096)
        with open(p, "r+b") as f:
            r = self.c.adopt(f, "pyadopted", mode="rw")
        # The file object is closed: the region lives on libmmapd's own copy.
        with r:
            r[10:27] = b"written by Python"
            out = self.run_c(TESTCLIENT, "read", "pyadopted", "10", "17")
            self.assertEqual(out.strip(), "written by Python")
            fd = os.open(p, os.O_RDONLY)
            try:
                with self.assertRaises(PermissionError):    # a read-only descriptor: no rw
                    self.c.adopt(fd, mode="rw")
                with self.assertRaises(FileExistsError):    # adopted already, another name
                    self.c.adopt(fd, "othername")
                with self.c.adopt(fd, "pyadopted") as again:
                    self.assertEqual(again[10:27], b"written by Python")
            finally:
                os.close(fd)

    def test_huge_bytes(self):
        with self.c.map_path(self.path("huge.bin"), "rw", create=True, size=1 << 21) as m:
            m[0:1] = b"x"
            self.assertGreaterEqual(m.huge_bytes(), 0)
            self.assertLessEqual(m.huge_bytes(), len(m))
        self.assertRaises(ValueError, m.huge_bytes)


class TestAdoptRestart(DaemonTest):
    def test_adopted_region_survives_a_daemon_restart(self):
        tmp = tempfile.mkdtemp(prefix="mmapd-py-adopt.")
        self.addCleanup(shutil.rmtree, tmp, True)
        p = os.path.join(tmp, "kept.bin")
        with self.c.map_path(p, "rw", create=True, size=4096) as m:
            m[0:6] = b"before"
            self.d.kill()
            self.d.start()
            deadline = time.monotonic() + 10
            seen = []
            while not any(e.type == mmapd.EventType.RECONNECTED for e in seen):
                self.assertLess(time.monotonic(), deadline, "no RECONNECTED")
                seen += list(self.c.events(0.1))
            self.assertNotIn(mmapd.EventType.DELETED, [e.type for e in seen])
            self.assertEqual(self.c.stat(m.name).grants, 1)
            m[0:5] = b"after"
            m.flush()
            with open(p, "rb") as f:
                self.assertEqual(f.read(6), b"aftere")


if __name__ == "__main__":
    unittest.main()
