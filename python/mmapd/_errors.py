"""libmmapd's negative errno values as Python exceptions.

A failed call raises OSError built from the errno, so Python picks the familiar subclass
(FileNotFoundError for ENOENT, PermissionError for EACCES/EPERM, TimeoutError for ETIMEDOUT,
FileExistsError, BlockingIOError for EAGAIN, ConnectionResetError, ...); errno is the value,
strerror the sentence of mmapd_last_message() (the daemon's own words when it refused), and
filename the region's name when there is one.
"""
from __future__ import annotations

from ._lib import lib


def error(err: int, name: str | None = None) -> OSError:
    """The exception for err (a negative errno value), with libmmapd's last message."""
    msg = (lib.mmapd_last_message() or b"").decode("utf-8", "replace")
    if not msg or msg == "no error":
        msg = (lib.mmapd_strerror(err) or b"").decode("utf-8", "replace")
    if name is None:
        return OSError(-err, msg)
    return OSError(-err, msg, name)


def check(r: int, name: str | None = None) -> int:
    """Returns r when it is >= 0; raises error(r, name) otherwise."""
    if r < 0:
        raise error(r, name)
    return r
