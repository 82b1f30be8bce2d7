"""Shards under one rate limit submit in the order their syncs started (components/resource/submit_order.py)."""

import threading
from datetime import datetime, timedelta, timezone

from components.resource.submit_order import SubmitOrder

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def waiting(place, sent):
    """A thread that waits for ``place``'s turn, then notes it."""
    thread = threading.Thread(target=lambda: (place.wait_turn(), sent.append(place)), daemon=True)
    thread.start()
    return thread


def test_a_sync_that_started_later_waits_until_the_earlier_one_has_left_the_line():
    order, sent = SubmitOrder(), []
    with order.line("cdn", T0 + timedelta(seconds=1)) as late:  # came to the line first, started later
        with order.line("cdn", T0) as early:
            thread = waiting(late, sent)
            thread.join(0.2)
            assert thread.is_alive() and sent == []  # held while the earlier sync is in line
            early.wait_turn()  # first at once, every batch
            early.wait_turn()
            sent.append(early)
        thread.join(5)
        assert sent == [early, late]


def test_a_paced_sync_holds_no_one_up_during_its_pause_and_keeps_its_place():
    order, sent = SubmitOrder(), []
    with order.line("cdn", T0) as early:
        with order.line("cdn", T0 + timedelta(seconds=1)) as late:
            with early.aside():
                late.wait_turn()  # returns: the earlier sync is pausing
            thread = waiting(late, sent)
            thread.join(0.2)
            assert thread.is_alive() and sent == []  # the earlier one is back in its place, first again
            early.wait_turn()
            with early.aside():  # its next pause lets the later one go
                thread.join(5)
            assert sent == [late]


def test_lines_of_different_limits_do_not_wait_for_each_other():
    order = SubmitOrder()
    with order.line(("edgeone", "prefetch"), T0), order.line(("tencent-cdn", "prefetch"), T0 + timedelta(1)) as other:
        other.wait_turn()  # returns at once
