# SPDX-License-Identifier: MIT
"""Managing regions like files from Python against a real daemon: rename (the open region's
name follows, the RENAMED event carries the new one), copy (the method and the bytes),
temporary regions, open with truncate, truncate on close and the timestamps."""
import time
import unittest

from harness import DaemonTest, mmapd


class TestManage(DaemonTest):
    def test_rename_follows_and_copy_copies(self):
        with self.c.open("a", size=4096, create=True, mode="rw") as r:
            r.write(0, b"abc")
            self.c.rename("a", "b")
            self.assertEqual(r.name, "b")
            events = [e for e in self.c.events(0) if e.type == mmapd.EventType.RENAMED]
            self.assertEqual([(e.region, e.to) for e in events], [("a", "b")])
            self.assertIn(self.c.copy("b", "c"), ("reflink", "copy_file_range", "bytes"))
            with self.assertRaises(FileExistsError):
                self.c.copy("b", "c")
            with self.c.open("c") as c:
                self.assertEqual(c.read(0, 3), b"abc")
        self.assertFalse(self.c.exists("a"))
        info = self.c.stat("c")
        self.assertGreater(info.mtime_us, 0)
        self.assertGreaterEqual(info.ctime_us, info.mtime_us)

    def test_temporary_truncate_and_truncate_on_close(self):
        with self.c.open("t", size=4096, create=True, mode="rw", temporary=True):
            self.assertTrue(self.c.stat("t").temporary)
        deadline = time.monotonic() + 5
        while self.c.exists("t") and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(self.c.exists("t"))
        with self.c.open("f", size=8192, create=True, mode="rw") as r:
            r.write(0, b"old")
            r.truncate_on_close(3)
        self.assertEqual(self.c.stat("f").size, 3)
        with self.c.open("f", size=4096, create=True, mode="rw", truncate=True) as r:
            self.assertEqual((len(r), r.read(0, 3)), (4096, b"\0\0\0"))


if __name__ == "__main__":
    unittest.main()
