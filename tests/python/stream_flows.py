"""Item-stream flows the end-to-end tests run against a pyrolab-host daemon
with the stock Pyro5 client. Usage: stream_flows.py FLOW URI SERIALIZER

A driver method that returns an iterator reaches Pyro5 as a generator
result (`_StreamResultIterator`); these flows check what a Python user
relies on and raise on any surprise, so the process exits non-zero.
"""

import sys
import time

import Pyro5.api
import Pyro5.client
import Pyro5.errors
import serpent
from Pyro5 import config


def as_bytes(item):
    """Bytes as the serializer gives them (serpent and json: base64 dicts)."""
    if isinstance(item, dict):
        return serpent.tobytes(item)
    return bytes(item)


def expect_raises(exception_class, call, *args):
    try:
        call(*args)
    except exception_class as e:
        print(type(e).__name__, e)
        return e
    raise AssertionError("expected %s" % exception_class.__name__)


def wait_for(condition, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def basics(uri):
    with Pyro5.api.Proxy(uri) as sample, Pyro5.api.Proxy(uri) as watcher:
        items = sample.count(1000)
        assert isinstance(items, Pyro5.client._StreamResultIterator), type(items)
        assert list(items) == list(range(1000))
        chunks = [as_bytes(c) for c in sample.chunks(3, 100000)]
        assert chunks == [bytes([i]) * 100000 for i in range(3)], [len(c) for c in chunks]

        # A driver error midway: the items before it, then the exception.
        seen = []
        error = expect_raises(ValueError, lambda: seen.extend(sample.count_then_fail(4)))
        assert seen == [0, 1, 2, 3], seen
        assert str(error) == "failed at item 4", error
        assert "count_then_fail" in "".join(error._pyroTraceback), error._pyroTraceback

        # Closed early by the client: the daemon closes it in the driver.
        stream = sample.count(10)
        assert next(stream) == 0 and next(stream) == 1
        assert watcher.open_streams() == 1
        stream.close()
        wait_for(lambda: watcher.open_streams() == 0)

        # Several streams at once on one proxy, read in turns.
        a, b = sample.count(3), sample.count(3)
        assert list(zip(a, b)) == [(0, 0), (1, 1), (2, 2)]
        assert list(b) == []

        # The bound on one connection's open streams (the test sets 4).
        held = [sample.count(5) for _ in range(4)]
        error = expect_raises(Pyro5.errors.PyroError, sample.count, 5)
        assert "too many open item streams on this connection" in str(error), error
        for stream in held:
            stream.close()

        # Abandoned with its connection: closed when the linger (1 s) ends.
        stream = sample.count(10)
        next(stream)
        sample._pyroRelease()
        assert watcher.open_streams() == 1
        wait_for(lambda: watcher.open_streams() == 0)
        expect_raises(Pyro5.errors.ConnectionClosedError, next, stream)
    print("ok", config.SERIALIZER)


def million(uri):
    with Pyro5.api.Proxy(uri) as sample:
        started = time.time()
        expected = 0
        for item in sample.count(1000000):
            if item != expected:
                raise AssertionError("item %d is %r" % (expected, item))
            expected += 1
        seconds = time.time() - started
        assert sample.open_streams() == 0
    print("%d items in %.1f s (%.0f items/s)" % (expected, seconds, expected / seconds))


def hold(uri):
    """Opens a stream, takes an item, and waits to be killed."""
    sample = Pyro5.api.Proxy(uri)
    stream = sample.count(100)
    next(stream)
    print("holding", flush=True)
    time.sleep(600)


FLOWS = {"basics": basics, "million": million, "hold": hold}

if __name__ == "__main__":
    flow, uri, serializer = sys.argv[1:4]
    config.SERIALIZER = serializer
    FLOWS[flow](uri)
