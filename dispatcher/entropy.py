"""Random bytes for link nonces and acknowledgement codes, taken from the operating system's
generator (``secrets``) a block at a time.

A fan-out makes a link nonce and an acknowledgement code for each of thousands of officials. Each
``os.urandom`` call is a system call that lets go of the interpreter lock; in the embedded server,
where the API, the scheduler and the worker share one process, getting the lock back waits for the
other threads' turns — 10,000 codes cost a tenth of a second that way (py-spy, 10,000-official
fan-out). The bytes are the same generator's, kept per thread and never handed out twice — also
not across a fork (Celery's prefork workers): a child process drops what its parent had drawn."""

from __future__ import annotations

import os
import secrets
import threading

BLOCK = 4096

_local = threading.local()


def _forget_after_fork() -> None:
    global _local
    _local = threading.local()  # the parent's unused bytes would be handed out again by every child


os.register_at_fork(after_in_child=_forget_after_fork)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's generator (as ``secrets.token_bytes``)."""
    buffer: bytes = getattr(_local, "buffer", b"")
    if len(buffer) < n:
        buffer += secrets.token_bytes(max(BLOCK, n))
    _local.buffer = buffer[n:]
    return buffer[:n]


def randbelow(limit: int) -> int:
    """A uniform integer in [0, ``limit``) for ``limit`` up to 2**32 (rejection sampling)."""
    if not 0 < limit <= 1 << 32:
        raise ValueError(f"limit must be in 1..2**32, not {limit}")
    ceiling = (1 << 32) - (1 << 32) % limit  # the largest multiple of limit: no value more likely than another
    while True:
        value = int.from_bytes(random_bytes(4), "big")
        if value < ceiling:
            return value % limit
