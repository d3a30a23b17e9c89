"""A call's mailbox: events in the order they came, whatever the mix of
deliveries and reads, and nothing kept once read."""

import gc
import weakref
from collections import deque

import gevent
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.call.session import Mailbox


class Item:
    def __init__(self, n: int):
        self.n = n


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.just("get"), st.integers(min_value=1, max_value=80)), max_size=60))
def test_items_come_out_in_the_order_they_went_in(ops):
    box, expected, n = Mailbox(), deque(), 0
    for op in ops:
        if op == "get":
            got = box.get(0)
            assert (got.n if got else None) == (expected.popleft() if expected else None)
        else:
            for _ in range(op):  # a burst of events between two reads
                box.put_nowait(Item(n))
                expected.append(n)
                n += 1
    while expected:
        assert box.get(0).n == expected.popleft()
    assert box.get(0) is None


def test_what_was_read_is_not_kept_even_if_the_box_never_empties():
    box = Mailbox()
    box.put_nowait(Item(0))
    first = weakref.ref(box._items[0])
    for n in range(1, 200):  # one in, one out: the box is never read to its end
        box.put_nowait(Item(n))
        box.get(0)
    gc.collect()
    assert first() is None
    assert len(box._items) < 70


def test_a_waiting_reader_gets_what_is_delivered_later():
    box = Mailbox()
    gevent.spawn_later(0.02, box.put_nowait, Item(7))
    assert box.get(1).n == 7
    assert box.get(0.01) is None


def test_a_pumped_box_reads_through_its_pump_and_gives_up_when_it_says_so():
    pumped = []

    def pump(timeout: float) -> bool:
        pumped.append(timeout)
        if len(pumped) == 2:
            box.put_nowait(Item(1))
        return len(pumped) < 5

    box = Mailbox(pump)
    assert box.get(1).n == 1 and len(pumped) == 2
    assert box.get(1) is None and len(pumped) == 5  # the connection is gone: no more waiting
