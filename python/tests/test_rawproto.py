# SPDX-License-Identifier: MIT
"""docs/protocol.md is enough to write a client: a raw-socket client in the standard library
alone (socket, struct, json, os, mmap, select), written from protocol.md and coordination.md
without libmmapd or the C code, drives every op, field and event of the protocol's newer parts
(hello's features, adopt with SCM_RIGHTS, rename, copy, truncate-on-close, temporary and
truncating opens, range flush, external and page subscriptions, timestamps, quiet close)
against a real daemon. A failure here means the document and the daemon disagree: fix
whichever is wrong."""
from __future__ import annotations

import json
import mmap
import os
import select
import socket
import struct
import tempfile
import time
import unittest

from harness import Daemon

TIMEOUT = 10.0  # generous: the machine may be loaded; nothing below measures time


class Conn:
    """One connection, as protocol.md's "Writing a client in another language" describes."""

    def __init__(self, path: str, name: str) -> None:
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(TIMEOUT)
        self.s.connect(path)
        self.fdq: list[int] = []     # received descriptors not yet claimed by a frame
        self.events: list[dict] = []  # events read while waiting for replies
        self.next_id = 1
        self.hello = self.call("hello", version=1, client=name)[0]

    def close(self) -> None:
        for fd in self.fdq:
            os.close(fd)
        self.s.close()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            data, fds, _, _ = socket.recv_fds(self.s, n - len(buf), 8)
            if not data:
                raise EOFError("mmapd closed the connection")
            buf += data
            self.fdq.extend(fds)
        return buf

    def frame(self) -> tuple[dict, list[int]]:
        n = struct.unpack(">I", self._recv_exact(4))[0]
        msg = json.loads(self._recv_exact(n))
        take = msg.get("fds", 0) if "event" not in msg else 0
        return msg, [self.fdq.pop(0) for _ in range(take)]

    def encode(self, op: str, **fields) -> tuple[int, bytes]:
        rid = self.next_id
        self.next_id += 1
        b = json.dumps(dict(id=rid, op=op, **fields)).encode()
        return rid, struct.pack(">I", len(b)) + b

    def send_raw(self, data: bytes, attach: list[int] | None = None) -> None:
        if attach:
            # Sending a descriptor: one sendmsg, SCM_RIGHTS rides on the data's first byte.
            sent = socket.send_fds(self.s, [data], attach)
            self.s.sendall(data[sent:])
        else:
            self.s.sendall(data)

    def send(self, op: str, attach: list[int] | None = None, **fields) -> int:
        rid, data = self.encode(op, **fields)
        self.send_raw(data, attach)
        return rid

    def reply(self, rid: int) -> tuple[dict, list[int]]:
        while True:
            msg, fds = self.frame()
            if "event" in msg:
                self.events.append(msg)
            elif msg.get("id") == rid:
                return msg, fds
            else:
                raise AssertionError(f"reply to another request: {msg}")

    def call(self, op: str, attach: list[int] | None = None, **fields) -> tuple[dict, list[int]]:
        return self.reply(self.send(op, attach, **fields))

    def ok(self, op: str, attach: list[int] | None = None, **fields) -> tuple[dict, list[int]]:
        r, got = self.call(op, attach, **fields)
        if not r["ok"]:
            raise AssertionError(f"{op} {fields}: {r['error']}")
        return r, got

    def err(self, op: str, attach: list[int] | None = None, **fields) -> str:
        r, got = self.call(op, attach, **fields)
        assert not r["ok"], f"{op} {fields} succeeded: {r}"
        assert not got
        return r["error"]["code"]

    def event(self, pred) -> dict:
        """The first event (seen already or read now) that satisfies pred; removed from the list."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, e in enumerate(self.events):
                if pred(e):
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise AssertionError(f"no such event; seen {self.events}")
            msg, fds = self.frame()
            assert "event" in msg and not fds, f"unexpected frame {msg}"
            self.events.append(msg)


class TestRawProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.d = Daemon()
        cls.tmp = tempfile.mkdtemp(prefix="mmapd-raw.")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.d.stop()
        for f in os.listdir(cls.tmp):
            os.unlink(os.path.join(cls.tmp, f))
        os.rmdir(cls.tmp)

    def conn(self) -> Conn:
        c = Conn(self.d.sock, "raw-" + self.id().rsplit(".", 1)[-1][:50])
        self.addCleanup(c.close)
        return c

    def fd(self, fds: list[int]) -> int:
        self.assertEqual(len(fds), 1)
        self.addCleanup(os.close, fds[0])
        return fds[0]

    def test_hello_features_and_limits(self):
        c = self.conn()
        h = c.hello
        self.assertTrue(h["ok"])
        self.assertEqual(h["version"], 1)
        for f in ("file", "anonymous", "locks", "notify", "flush", "manage", "external",
                  "quiet-close"):
            self.assertIn(f, h["features"])
        for k in ("max_frame", "max_fds_in_flight", "max_region_size", "size_check_ms",
                  "external_poll_ms", "max_watched_files_per_uid", "max_fds_per_uid"):
            self.assertIsInstance(h["limits"][k], int, k)
        self.assertEqual(c.err("hello", version=1), "EPROTO")

    def test_quiet_close(self):
        c = self.conn()
        self.fd(c.ok("open", name="raw-quiet", mode="rw", create=True, size=4096)[1])
        r, fds = c.ok("open", name="raw-quiet")
        self.fd(fds)
        # Released: no reply; the next frame is the reply to the request sent after it.
        c.send("close", handle=r["handle"], reply=False)
        after = c.send("ping")
        self.assertEqual(c.frame()[0], {"id": after, "ok": True})
        # Refused: answered with its id and error, before the reply to what followed.
        rid = c.send("close", handle=r["handle"], reply=False)
        after = c.send("ping")
        msg = c.frame()[0]
        self.assertEqual((msg["id"], msg["ok"], msg["error"]["code"]), (rid, False, "EBADF"))
        self.assertEqual(c.frame()[0], {"id": after, "ok": True})
        self.assertEqual(c.err("close", handle=r["handle"], reply=0), "EINVAL")

    def test_frame_header(self):
        c = self.conn()
        # Big-endian length: a payload of 256+ bytes tells it from little-endian.
        self.assertEqual(c.ok("ping", pad="x" * 300)[0]["ok"], True)
        c.send_raw(struct.pack(">I", 0))  # L = 0: connection-fatal, with an `error` event
        msg, fds = c.frame()
        self.assertEqual((msg["event"], msg["error"]["code"]), ("error", "EPROTO"))
        with self.assertRaises(EOFError):
            c.frame()

    def test_open_size0_temporary_truncate_timestamps(self):
        c = self.conn()
        r, fds = c.ok("open", name="raw-empty", mode="rw", create=True, size=0)
        self.fd(fds)
        reg = r["region"]
        self.assertEqual(reg["size"], 0)
        self.assertIsInstance(reg["mtime_us"], int)
        self.assertIsInstance(reg["ctime_us"], int)
        self.assertNotIn("temporary", reg)
        self.assertNotIn("adopted", reg)
        # Seconds since the epoch within a day of now: the unit is microseconds.
        self.assertLess(abs(reg["mtime_us"] / 1e6 - time.time()), 86400)
        st = c.ok("stat", name="raw-empty")[0]["region"]
        self.assertIn("mtime_us", st)
        self.assertIn("ctime_us", st)
        self.assertIn("mtime_us", c.ok("list", after="raw-emptx", limit=1)[0]["regions"][0])
        # resize's region object carries them too, and ctime moves (or stays, same tick).
        rz = c.ok("resize", name="raw-empty", size=4096)[0]["region"]
        self.assertGreaterEqual(rz["ctime_us"], reg["ctime_us"])
        self.assertEqual(c.event(lambda e: e["event"] == "resized")["size"], 4096)

        # truncate: an existing file region emptied and given `size` zero bytes.
        r, fds = c.ok("open", name="raw-trunc", mode="rw", create=True, size=8192)
        m = mmap.mmap(self.fd(fds), 8192)
        m[:5] = b"hello"
        m.close()
        c.ok("close", handle=r["handle"])
        self.assertEqual(c.err("open", name="raw-trunc", mode="ro", create=True, size=4096,
                               truncate=True), "EINVAL")
        self.assertEqual(c.err("open", name="raw-trunc", mode="rw", truncate=True), "EINVAL")
        self.assertEqual(c.err("open", name="raw-trunc", mode="rw", create=True, size=4096,
                               truncate=True, exclusive=True), "EINVAL")
        r, fds = c.ok("open", name="raw-trunc", mode="rw", create=True, size=4096, truncate=True)
        self.assertFalse(r["created"])
        self.assertEqual(r["region"]["size"], 4096)
        fd = self.fd(fds)
        self.assertEqual(os.fstat(fd).st_size, 4096)
        self.assertEqual(os.pread(fd, 5, 0), b"\0" * 5)
        # ... and refused while held (by this connection's grant).
        self.assertEqual(c.err("open", name="raw-trunc", mode="rw", create=True, size=4096,
                               truncate=True), "EBUSY")

        # temporary: gone with its last grant; the region object says so meanwhile; a copy
        # of it is not temporary, a rename keeps it so; subscribers hear `deleted`.
        self.assertEqual(c.err("open", name="raw-tmp0", mode="rw", temporary=True), "EINVAL")
        r, fds = c.ok("open", name="raw-tmp0", mode="rw", create=True, size=4096, temporary=True)
        self.fd(fds)
        self.assertIs(r["region"]["temporary"], True)
        self.assertNotIn("temporary", c.ok("copy", name="raw-tmp0", to="raw-tmpcopy")[0]["region"])
        c.ok("rename", name="raw-tmp0", to="raw-tmp")
        self.assertEqual(c.event(lambda e: e["event"] == "renamed")["to"], "raw-tmp")
        self.assertIs(c.ok("stat", name="raw-tmp")[0]["region"]["temporary"], True)
        self.assertTrue(os.path.exists(os.path.join(self.d.data, "raw-tmp")))
        sub = self.conn()
        sub.ok("subscribe", name="raw-tmp")
        c.ok("close", handle=r["handle"])
        self.assertEqual(c.err("stat", name="raw-tmp"), "ENOENT")
        self.assertFalse(os.path.exists(os.path.join(self.d.data, "raw-tmp")))
        self.assertEqual(sub.event(lambda e: e["event"] == "deleted")["region"], "raw-tmp")
        self.assertNotIn("temporary", c.ok("stat", name="raw-tmpcopy")[0]["region"])

    def test_adopt(self):
        a, b = self.conn(), self.conn()
        path = os.path.join(self.tmp, "adopt.dat")
        with open(path, "wb") as f:
            f.write(b"x" * 8192)
        st = os.stat(path)
        rdwr = os.open(path, os.O_RDWR)
        self.addCleanup(os.close, rdwr)
        rdonly = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, rdonly)

        # No descriptor: EBADF; a descriptor on another op: EPROTO, the connection stays.
        self.assertEqual(a.err("adopt", mode="rw"), "EBADF")
        self.assertEqual(a.err("ping", [rdonly]), "EPROTO")
        self.assertEqual(a.err("adopt", [rdonly, rdonly], mode="ro"), "E2BIG")
        # A read-only descriptor proves no right to rw.
        self.assertEqual(a.err("adopt", [rdonly], mode="rw"), "EACCES")

        r, fds = a.ok("adopt", [rdwr], mode="rw", fds=1)  # `fds`: informative
        reg = r["region"]
        self.assertIs(reg["adopted"], True)
        self.assertIs(reg["anonymous"], False)
        self.assertEqual(reg["size"], 8192)
        self.assertEqual(reg["perm"], 0o600)
        self.assertEqual((r["mode"], r["created"], r["exec"]), ("rw", False, False))
        # The default name: the file's device and inode numbers, lowercase hexadecimal.
        self.assertEqual(reg["name"], f"adopted-{st.st_dev:x}-{st.st_ino:x}")
        name = reg["name"]
        m = mmap.mmap(self.fd(fds), 8192)
        m[:4] = b"adpt"
        m.close()
        with open(path, "rb") as f:
            self.assertEqual(f.read(4), b"adpt")

        # A second adopt of the same inode joins the region (same name, one region).
        r2, fds2 = b.ok("adopt", [rdonly], mode="ro")
        self.fd(fds2)
        self.assertEqual(r2["region"]["name"], name)
        self.assertEqual(r2["region"]["grants"], 2)
        self.assertEqual(r2["region"]["clients"], 2)
        self.assertEqual(b.err("adopt", [rdonly], mode="rw"), "EACCES")
        self.assertEqual(b.err("adopt", [rdonly], mode="ro", name="other-name"), "EEXIST")
        # Adopted regions are never deleted, renamed or truncated by the daemon.
        self.assertEqual(a.err("delete", name=name), "EPERM")
        self.assertEqual(a.err("rename", name=name, to="raw-adopt-renamed"), "EPERM")
        self.assertEqual(a.err("truncate-on-close", name=name, size=0), "EPERM")
        # Frames after the adopt frame in the same sendmsg: the descriptor is still the adopt's.
        rid1, f1 = b.encode("adopt", mode="ro", name=name)
        rid2, f2 = b.encode("ping")
        b.send_raw(f1 + f2, [rdonly])
        r3, fds3 = b.reply(rid1)
        self.assertTrue(r3["ok"], r3)
        self.fd(fds3)
        self.assertEqual(b.reply(rid2), ({"id": rid2, "ok": True}, []))
        # A directory is EISDIR.
        dfd = os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.assertEqual(a.err("adopt", [dfd], mode="ro"), "EISDIR")
        finally:
            os.close(dfd)

    def test_rename_under_holder(self):
        a, b = self.conn(), self.conn()
        r, fds = a.ok("open", name="raw-ren", mode="rw", create=True, size=4096)
        self.fd(fds)
        b.ok("subscribe", name="raw-ren")
        self.assertEqual(a.err("rename", name="raw-ren", to="raw-ren"), "EINVAL")
        self.assertEqual(a.err("rename", name="raw-ren", to="../x"), "EINVAL")
        rid = a.send("rename", name="raw-ren", to="raw-ren2")
        # The renaming holder gets `renamed` before the reply.
        msg, fds = a.frame()
        self.assertEqual(msg, {"event": "renamed", "region": "raw-ren", "to": "raw-ren2"})
        msg, fds = a.frame()
        self.assertEqual(msg, {"id": rid, "ok": True, "replaced": False})
        self.assertEqual(b.event(lambda e: e["event"] == "renamed")["to"], "raw-ren2")
        self.assertEqual(a.err("stat", name="raw-ren"), "ENOENT")
        self.assertEqual(a.ok("stat", name="raw-ren2")[0]["region"]["grants"], 1)
        # Later events name the new name.
        a.ok("changed", name="raw-ren2", offset=0, length=1)
        self.assertEqual(b.event(lambda e: e["event"] == "changed")["region"], "raw-ren2")
        # Replacing: EEXIST without replace; with it, the target's holders get deleted first.
        r, fds = b.ok("open", name="raw-ren3", mode="rw", create=True, size=4096)
        self.fd(fds)
        self.assertEqual(a.err("rename", name="raw-ren2", to="raw-ren3"), "EEXIST")
        r, _ = b.ok("rename", name="raw-ren2", to="raw-ren3", replace=True)
        self.assertIs(r["replaced"], True)
        order = [e["event"] for e in b.events if e["event"] in ("deleted", "renamed")]
        self.assertEqual(order, ["deleted", "renamed"])
        self.assertEqual(a.event(lambda e: e["event"] == "renamed")["to"], "raw-ren3")

    def test_copy_and_truncate_on_close(self):
        c = self.conn()
        r, fds = c.ok("open", name="raw-src", mode="rw", create=True, size=65536)
        fd = self.fd(fds)
        os.pwrite(fd, b"copy me", 4096)
        r, _ = c.ok("copy", name="raw-src", to="raw-dst", perm=0o640)
        self.assertIn(r["method"], ("reflink", "copy_file_range", "bytes"))
        self.assertIs(r["replaced"], False)
        self.assertEqual(r["region"]["name"], "raw-dst")
        self.assertEqual(r["region"]["size"], 65536)
        self.assertEqual(r["region"]["perm"], 0o640)
        self.assertNotIn("temporary", r["region"])
        with open(os.path.join(self.d.data, "raw-dst"), "rb") as f:
            f.seek(4096)
            self.assertEqual(f.read(7), b"copy me")
        self.assertEqual(c.err("copy", name="raw-src", to="raw-dst"), "EEXIST")
        self.assertIs(c.ok("copy", name="raw-src", to="raw-dst", replace=True)[0]["replaced"], True)

        # truncate-on-close: applied when the last grant goes (at once when there is none).
        c.ok("truncate-on-close", name="raw-src", size=10)
        self.assertEqual(os.fstat(fd).st_size, 65536)
        self.assertEqual(c.ok("stat", name="raw-src")[0]["region"]["grants"], 1)
        # Nobody holds raw-dst: truncated at once, before the reply (the subscribed requester
        # hears `resized` first).
        c.ok("subscribe", name="raw-dst")
        rid = c.send("truncate-on-close", name="raw-dst", size=7)
        msg, _ = c.frame()
        self.assertEqual((msg.get("event"), msg.get("size"), msg.get("external")),
                         ("resized", 7, False), msg)
        self.assertEqual(c.frame(), ({"id": rid, "ok": True}, []))
        self.assertEqual(os.stat(os.path.join(self.d.data, "raw-dst")).st_size, 7)
        self.assertEqual(c.err("truncate-on-close", name="raw-dst"), "EINVAL")
        r, fds = c.ok("open", name="raw-anon", mode="rw", create=True, size=4096, anonymous=True)
        self.fd(fds)
        self.assertEqual(c.err("truncate-on-close", name="raw-anon", size=0), "EINVAL")

    def test_truncate_on_close_at_last_close(self):
        c, s = self.conn(), self.conn()
        r, fds = c.ok("open", name="raw-toc", mode="rw", create=True, size=65536)
        fd = self.fd(fds)
        s.ok("subscribe", name="raw-toc")
        c.ok("truncate-on-close", name="raw-toc", size=5)
        self.assertEqual(os.fstat(fd).st_size, 65536)
        c.ok("subscribe", name="raw-toc")
        rid = c.send("close", handle=r["handle"])
        # Done when the close reply comes: the subscribed closer hears `resized` first.
        self.assertEqual(c.frame()[0]["event"], "resized")
        self.assertEqual(c.frame(), ({"id": rid, "ok": True}, []))
        self.assertEqual(os.fstat(fd).st_size, 5)
        e = s.event(lambda e: e["event"] == "resized")
        self.assertEqual((e["size"], e["old_size"], e["external"]), (5, 65536, False))

    def test_flush_range(self):
        c = self.conn()
        r, fds = c.ok("open", name="raw-flush", mode="rw", create=True, size=65536)
        fd = self.fd(fds)
        os.pwrite(fd, b"d" * 4096, 8192)
        self.assertEqual(c.ok("flush", name="raw-flush", offset=8192, length=4096)[0],
                         {"id": c.next_id - 1, "ok": True})
        c.ok("flush", name="raw-flush", offset=8192, length=0)  # to the end
        c.ok("flush", name="raw-flush")
        self.assertEqual(c.err("flush", name="raw-flush", offset=65536, length=1), "ERANGE")
        self.assertEqual(c.err("flush", name="raw-flush", offset=1 << 30, length=1), "ERANGE")
        self.assertEqual(c.err("flush", name="raw-flush", offset=0, length=65537), "ERANGE")

    def test_subscribe_external(self):
        c = self.conn()
        r, fds = c.ok("open", name="raw-ext", mode="rw", create=True, size=8192)
        self.fd(fds)
        c.ok("close", handle=r["handle"])
        s = self.conn()
        seq = s.ok("subscribe", name="raw-ext", external=True)[0]["seq"]
        self.assertEqual(s.err("subscribe", name="raw-ext"), "EALREADY")
        self.assertEqual(s.err("subscribe", name="raw-ext2", external=1), "EINVAL")
        # A process that is no client writes the file with write(2).
        with open(os.path.join(self.d.data, "raw-ext"), "r+b") as f:
            f.write(b"outside")
        e = s.event(lambda e: e["event"] == "changed")
        self.assertIs(e["external"], True)
        self.assertIsNone(e["ranges"])
        self.assertEqual(e["first_seq"], e["seq"])
        self.assertGreater(e["seq"], seq)
        self.assertEqual(e["size"], 8192)
        self.assertNotIn("writer", e)
        # An ftruncate behind the daemon's back: resized external, then changed.
        os.truncate(os.path.join(self.d.data, "raw-ext"), 4096)
        e = s.event(lambda e: e["event"] == "resized")
        self.assertEqual((e["size"], e["old_size"], e["external"]), (4096, 8192, True))

    def test_page_subscription(self):
        w = self.conn()
        r, fds = w.ok("open", name="raw-page", mode="rw", create=True, size=65536)
        self.fd(fds)
        h = r["handle"]
        s = self.conn()
        r, fds = s.ok("subscribe", name="raw-page", page=True)
        self.assertEqual(r["fds"], 2)
        self.assertEqual(len(fds), 2)
        for fd in fds:
            self.addCleanup(os.close, fd)
        page_fd, bell = fds
        self.assertTrue(256 <= r["slot"] <= 65534)
        seq0 = r["seq"]
        page = mmap.mmap(page_fd, 12288, mmap.MAP_SHARED, mmap.PROT_READ)
        self.addCleanup(page.close)
        magic, version, size, nslots = struct.unpack_from("<QIII", page, 0)
        self.assertEqual((magic, version, size, nslots), (0x4c5443445041504d, 2, 12288, 56))
        log = 4096
        self.assertGreaterEqual(struct.unpack_from("<I", page, log + 24)[0], 1)  # listeners
        self.assertEqual(select.select([bell], [], [], 0)[0], [])

        # Another connection reports a change with the op: the daemon publishes it in the log
        # and rings the doorbell; the page subscriber gets no `changed` event for it.
        seq = w.ok("changed", name="raw-page", offset=4096, length=100)[0]["seq"]
        self.assertEqual(seq, seq0 + 1)
        self.assertEqual(select.select([bell], [], [], TIMEOUT)[0], [bell])
        self.assertGreaterEqual(struct.unpack_from("<Q", page, log)[0], seq)  # head
        e_seq, off, length, pid, slot, flags = struct.unpack_from(
            "<QQQIHH", page, log + 128 + 32 * (seq % 248))
        self.assertEqual((e_seq, off, length), (seq, 4096, 100))
        self.assertEqual(pid, os.getpid())
        # A connection with neither a slot in the page nor a page subscription: the daemon's.
        self.assertEqual(slot, 65535)
        self.assertEqual(flags, 0)  # a reported change: neither relayed nor external
        s.ok("ping")
        self.assertEqual([e for e in s.events if e["event"] == "changed"], [])

        # The subscriber's own `changed` requests carry its tag.
        seq2 = s.ok("changed", name="raw-page", offset=0, length=1)[0]["seq"]
        _, _, _, _, slot2, _ = struct.unpack_from("<QQQIHH", page, log + 128 + 32 * (seq2 % 248))
        self.assertEqual(slot2, r["slot"])
        # A connection holding a slot in the page: its slot.
        ctl, cfds = w.ok("control", handle=h)
        self.fd(cfds)
        seq3 = w.ok("changed", name="raw-page", offset=0, length=1)[0]["seq"]
        _, _, _, _, slot3, _ = struct.unpack_from("<QQQIHH", page, log + 128 + 32 * (seq3 % 248))
        self.assertEqual(slot3, ctl["slot"])


if __name__ == "__main__":
    unittest.main()
