"""What a hostile local user gets from Python: the daemon's access control, reported as the
built-in exceptions with the daemon's message. A forked child drops to uid/gid 65534
(nobody; the tests must run as root, else they are skipped) and connects on its own."""
import os
import unittest

from harness import DaemonTest, mmapd

NOBODY = 65534


@unittest.skipUnless(os.geteuid() == 0, "needs root to act as uid 65534")
class TestAccess(DaemonTest):
    config = '{"socket_mode": "0666"}'
    log_level = "error"          # the denials below are expected; the daemon warns of each

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        os.chmod(cls.d.dir, 0o711)                 # nobody reaches the socket, nothing else

    def as_nobody(self, fn) -> int:
        """Runs fn() in a child as uid/gid 65534 with its own connection; returns its exit
        status (fn's return value, 99 on an unexpected exception)."""
        pid = os.fork()
        if pid == 0:
            status = 99
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                with mmapd.connect(self.d.sock, name="nobody") as c:
                    status = fn(c)
            except BaseException as e:   # noqa: BLE001 - reported through the status
                os.write(2, f"as nobody: {e!r}\n".encode())
            finally:
                os._exit(status)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def test_private_region_refuses_nobody(self):
        with self.c.open("secret", size=4096, create=True, mode="rw") as r:
            r[0:6] = b"secret"
            self.c.chmod("secret", 0o600)

            def attack(c):
                for attempt in (lambda: c.open("secret"),
                                lambda: c.open("secret", mode="rw"),
                                lambda: c.chmod("secret", 0o666),
                                lambda: c.delete("secret")):
                    try:
                        attempt()
                        return 1                       # it let us in
                    except PermissionError as e:
                        if "secret" not in (e.strerror or "") and e.filename != "secret":
                            return 2
                return 0

            self.assertEqual(self.as_nobody(attack), 0)
            self.assertEqual(r[0:6], b"secret")
            self.assertEqual(self.c.stat("secret").perm, 0o600)

    def test_read_only_grant_gives_nobody_read_only_buffers(self):
        with self.c.open("public", size=4096, create=True, mode="rw") as r:
            r[0:4] = b"open"
            self.c.chmod("public", 0o644)

            def reader(c):
                with c.open("public") as ro:
                    if bytes(ro[0:4]) != b"open" or not memoryview(ro).readonly:
                        return 1
                    try:
                        ro[0:1] = b"X"
                        return 2
                    except TypeError:
                        pass
                    try:
                        c.open("public", mode="rw")
                        return 3
                    except PermissionError:
                        return 0

            self.assertEqual(self.as_nobody(reader), 0)
            self.assertEqual(r[0:4], b"open")


if __name__ == "__main__":
    unittest.main()
