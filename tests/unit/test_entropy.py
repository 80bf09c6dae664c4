"""Random bytes drawn from the OS a block at a time (dispatcher/entropy.py): the acknowledgement codes
and link nonces they make must stay as unpredictable and unrepeated as drawing each one afresh."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest

from dispatcher import entropy


def test_no_bytes_are_handed_out_twice_within_or_across_threads() -> None:
    chunks: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [entropy.random_bytes(16) for _ in range(2000)]  # several blocks' worth
        with lock:
            chunks.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(chunks) == 8000 and all(len(c) == 16 for c in chunks)
    assert len(set(chunks)) == len(chunks), "the same random bytes went to two nonces"


def test_a_request_larger_than_a_block_is_served_whole() -> None:
    assert len(entropy.random_bytes(entropy.BLOCK * 3 + 5)) == entropy.BLOCK * 3 + 5


def test_codes_cover_their_range_evenly() -> None:
    """9000 four-digit codes (1000-9999): 225,000 draws land on every value (a value left out by chance:
    about once in ten million runs), and the halves get their share."""
    counts = Counter(entropy.randbelow(9000) for _ in range(225_000))
    assert min(counts) == 0 and max(counts) == 8999 and len(counts) == 9000
    # A plain modulo of 16 random bits favours the values below 2536 (8 chances in 65,536 against 7):
    # the low half would get about 116,900 draws. Unbiased: 112,500, standard deviation 237.
    low = sum(n for v, n in counts.items() if v < 4500)
    assert abs(low - 112_500) < 2_000


@pytest.mark.parametrize("limit", [0, -1, (1 << 32) + 1])
def test_a_limit_outside_what_it_can_draw_is_refused(limit: int) -> None:
    """Bad input: a range it cannot draw uniformly from."""
    with pytest.raises(ValueError, match="limit"):
        entropy.randbelow(limit)


def test_a_forked_child_never_hands_out_its_parents_bytes() -> None:
    """Celery's prefork workers are forked from a parent that may have drawn already: each child makes
    link nonces of its own, and they must not repeat the parent's (or a sibling's) buffered bytes."""
    entropy.random_bytes(1)  # the parent has a buffer now
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, entropy.random_bytes(32))
        finally:
            os._exit(0)
    os.close(write)
    from_child = os.read(read, 32)
    os.close(read)
    os.waitpid(child, 0)
    assert len(from_child) == 32
    assert from_child != entropy.random_bytes(32), "the child handed out the bytes its parent had drawn"
