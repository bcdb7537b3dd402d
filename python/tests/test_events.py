# SPDX-License-Identifier: MIT
"""Events from Python: the iterator, the callback (from dispatch() and from libmmapd's
dispatch thread), asyncio (aevents(), wait_changed()), change reports both ways between
Python and a C process (tests/mmapd-testclient in session mode), and RELEASE_FAILED from a
fake daemon that refuses a close."""
import array
import asyncio
import json
import os
import socket
import tempfile
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

    def test_external_change_of_a_process_that_is_no_client(self):
        seq0 = self.c.subscribe("ev", external=True)
        fd = os.open(os.path.join(self.d.data, "ev"), os.O_RDWR)
        try:
            os.pwrite(fd, b"outside", 10)   # this process writes the file, not through mmapd
        finally:
            os.close(fd)
        ev = next(e for e in self.c.events(timeout=5.0) if e.type == EventType.CHANGED)
        self.assertTrue(ev.external)
        self.assertEqual(ev.ranges, ())
        self.assertEqual(ev.size, 8192)
        self.assertEqual(ev.seq, seq0 + 1)

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


def _send(sock, text, fd=None):
    data = len(text).to_bytes(4, "big") + text.encode()
    anc = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    sock.sendmsg([data], anc)


def _recv(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    return exact(int.from_bytes(exact(4), "big")).decode()


def _refusing_daemon(lsock, result):
    """As tests/check_grants.c's: on one connection, hello, open (grant 7 of a 4096-byte
    memfd), close of handle 7 and ping, in that order; the close is refused (ENOENT), and
    answered only once the ping has come (the close does not wait for its reply)."""
    replies = [
        '{"id":%d,"ok":true,"version":1}',
        '{"id":%d,"ok":true,"fds":1,"handle":7,"mode":"ro","created":false,"exec":false,'
        '"region":{"name":"r","size":4096,"anonymous":false,"grants":1,"clients":1}}',
        '{"id":%d,"ok":false,"error":{"code":"ENOENT","errno":2,'
        '"message":"no grant 7 on this connection"}}',
        '{"id":%d,"ok":true}']
    conn, _ = lsock.accept()
    mfd = os.memfd_create("r")
    os.ftruncate(mfd, 4096)
    try:
        ids = []
        for i, op in enumerate(('"hello"', '"open"', '"close"', '"ping"')):
            req = _recv(conn)
            if op not in req or (i == 2 and '"handle":7' not in req):
                result.append(f"request {i} is not {op}: {req}")
                return
            ids.append(json.loads(req)["id"])
            if i == 2:
                continue
            for k in ((2, 3) if i == 3 else (i,)):
                _send(conn, replies[k] % ids[k], mfd if k == 1 else None)
        result.append("ok" if conn.recv(1) == b"" else "more requests")
    finally:
        os.close(mfd)
        conn.close()


class TestReleaseFailed(unittest.TestCase):
    def test_a_refused_close_is_an_event_with_the_grant_error_and_message(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s")
            lsock = socket.socket(socket.AF_UNIX)
            lsock.bind(path)
            lsock.listen(1)
            result = []
            t = threading.Thread(target=_refusing_daemon, args=(lsock, result), daemon=True)
            t.start()
            c = mmapd.connect(path, name="refused", reconnect=None)
            r = c.open("r")
            self.assertEqual(len(r), 4096)
            r.close()                   # does not wait for the refusal...
            c.ping()                    # ...which the next call reads on its way
            evs = [e for e in c.events(timeout=0.2) if e.type == EventType.RELEASE_FAILED]
            c.close()
            t.join(5)
            lsock.close()
        self.assertEqual(result, ["ok"])
        self.assertEqual(len(evs), 1)
        ev = evs[0]
        self.assertEqual((ev.region, ev.seq, ev.error), ("r", 7, -2))
        self.assertIn("no grant 7 on this connection", ev.message)


if __name__ == "__main__":
    unittest.main()
