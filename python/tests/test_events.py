"""Events from Python: the iterator, the callback (from dispatch() and from libmmapd's
dispatch thread), asyncio (aevents(), wait_changed()) and change reports both ways between
Python and a C process (tests/mmapd-testclient in session mode)."""
import asyncio
import threading
import unittest

from harness import TESTCLIENT, DaemonTest, mmapd
from mmapd import EventType


class TestEvents(DaemonTest):
    def setUp(self):
        super().setUp()
        self.w = mmapd.connect(self.d.sock, name="writer")
        self.r = self.w.open("ev", size=8192, create=True, mode="rw")

    def tearDown(self):
        self.r.close()
        self.w.close()
        super().tearDown()

    def test_iterator(self):
        seq0 = self.c.subscribe("ev")
        s1 = self.r.report_changed(0, 16)
        s2 = self.w.report_changed("ev", 100, 4)
        evs = list(self.c.events(timeout=0.3))
        changed = [e for e in evs if e.type == EventType.CHANGED]
        self.assertEqual([e.seq for e in changed], [s1, s2])
        self.assertEqual(changed[0].ranges, ((0, 16),))
        self.assertEqual(changed[0].writer_client, "writer")
        self.assertEqual(changed[0].region, "ev")
        self.assertGreater(s1, seq0)

    def test_callback_and_dispatch_thread(self):
        got = []
        self.c.on_event(got.append)
        self.c.subscribe("ev")
        self.r.report_changed(0, 1)
        while not got:
            self.c.dispatch(1.0)
        self.assertEqual(got[0].type, EventType.CHANGED)
        seen = threading.Event()
        got.clear()
        self.c.on_event(lambda ev: (got.append(ev), seen.set()))
        self.c.start_dispatch_thread()
        try:
            self.r.report_changed(8, 8)
            self.assertTrue(seen.wait(5))
            self.assertEqual(got[0].ranges, ((8, 8),))
            self.assertNotEqual(threading.current_thread(), None)
        finally:
            self.c.stop_dispatch_thread()

    def test_flush_async_and_report_writes(self):
        token = self.r.flush_async()
        ev = next(e for e in self.w.events(timeout=5) if e.type == EventType.FLUSH_DONE)
        self.assertEqual((ev.seq, ev.error, ev.region), (token, 0, "ev"))
        self.c.subscribe("ev")
        with self.w.open("ev", mode="rw", report_writes=True) as rw:
            rw.write(256, b"reported")
        ev = next(self.c.events(timeout=5))
        self.assertEqual((ev.type, ev.ranges), (EventType.CHANGED, ((256, 8),)))

    def test_resize_event(self):
        mine = self.c.open("ev", mode="ro")
        self.w.resize("ev", 16384)
        ev = next(e for e in self.c.events(timeout=2) if e.type == EventType.RESIZED)
        self.assertEqual((ev.size, ev.old_size), (16384, 8192))
        self.assertEqual(len(mine), 16384)
        self.assertEqual(len(memoryview(mine)), 16384)
        mine.close()
        self.w.resize("ev", 8192)

    def test_asyncio(self):
        async def main():
            mine = self.c.open("ev", mode="ro")
            waiter = asyncio.ensure_future(mine.wait_changed(timeout=5))
            await asyncio.sleep(0.05)          # it subscribes and watches the client's fd
            seq = self.r.report_changed(32, 32)
            ev = await waiter
            self.assertEqual((ev.type, ev.seq, ev.ranges), (EventType.CHANGED, seq, ((32, 32),)))
            got = []

            async def consume():
                async for e in self.c.aevents():
                    got.append(e)
                    if len(got) == 2:
                        return

            task = asyncio.ensure_future(consume())
            await asyncio.sleep(0.05)
            self.r.report_changed(1, 1)
            self.r.report_changed(2, 2)
            await asyncio.wait_for(task, 5)
            self.assertEqual([e.ranges for e in got], [((1, 1),), ((2, 2),)])
            with self.assertRaises(TimeoutError):
                await mine.wait_changed(timeout=0.05)
            mine.close()

        asyncio.run(main())

        async def again():                   # a later loop watches the same client
            mine = self.c.open("ev", mode="ro")
            waiter = asyncio.ensure_future(mine.wait_changed(timeout=5))
            await asyncio.sleep(0.05)
            self.r.report_changed(3, 3)
            self.assertEqual((await waiter).ranges, ((3, 3),))
            mine.close()

        asyncio.run(again())

    def test_reconnection_is_libmmapds(self):
        mine = self.c.open("ev", mode="rw")
        mine[0:5] = b"alive"
        lk = mine.lock(0, 1)
        self.d.kill()
        self.d.start()
        self.c.ping()                          # reconnects (and reopens "ev") by itself
        types = [e.type for e in self.c.events(timeout=0.3)]
        self.assertIn(EventType.RECONNECTED, types)
        self.assertIn(EventType.LOCKS_LOST, types)
        self.assertEqual(mine[0:5], b"alive")  # the mapping never went away
        self.assertEqual(self.c.stat("ev").grants, 1)
        with self.assertRaises(OSError) as e:  # it died with the old connection
            lk.release()
        self.assertEqual(e.exception.errno, 9)
        lk.release()                           # once said, released
        mine.close()
        # The fixture's own writer connection reconnects on its next call too.

    def test_c_reports_python_sees(self):
        self.c.subscribe("ev")
        sess = self.spawn(TESTCLIENT, "session", "c-writer")
        try:
            self.assertTrue(sess.stdout.readline().startswith("= ready"))
            sess.stdin.write("changed ev 64 8\n")
            self.assertTrue(sess.stdout.readline().startswith("= ok seq="))
            ev = next(self.c.events(timeout=5))
            self.assertEqual((ev.type, ev.ranges, ev.writer_client),
                             (EventType.CHANGED, ((64, 8),), "c-writer"))
        finally:
            self.end(sess)

    def test_python_reports_c_sees(self):
        sess = self.spawn(TESTCLIENT, "session")
        try:
            self.assertTrue(sess.stdout.readline().startswith("= ready"))
            sess.stdin.write("subscribe ev\n")
            self.assertTrue(sess.stdout.readline().startswith("= ok"))
            seq = self.r.report_changed(128, 16)
            sess.stdin.write("dispatch 2000\n")
            lines = [sess.stdout.readline().strip() for _ in range(2)]
            self.assertIn(f"! changed ev seq={seq} first={seq} ranges=128+16", " ".join(lines))
        finally:
            self.end(sess)


if __name__ == "__main__":
    unittest.main()
