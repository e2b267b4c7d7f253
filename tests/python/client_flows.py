"""Client flows the end-to-end tests run against a pyrolab-host daemon with
the stock Pyro5 client. Usage: client_flows.py FLOW URI SERIALIZER

Each flow checks the behaviour a PyroLab user relies on and prints what it
saw; any surprise raises, so the process exits non-zero with a traceback.
"""

import json
import sys

import Pyro5.api
import Pyro5.errors
from Pyro5 import config


def expect_raises(exception_class, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except exception_class as e:
        print(type(e).__name__, e)
        return e
    raise AssertionError("expected %s from %s%r" % (exception_class.__name__, call, args))


def library(uri):
    """The seed documentation's library-catalog client, plus keywords."""
    with Pyro5.api.Proxy(uri) as catalog:
        books = {
            "The Hobbit": 3,
            "The Lord of the Rings": 2,
            "Harry Potter": 3,
            "The Lightning Thief": 2,
            "C Programming": 2,
        }
        for book, number in books.items():
            catalog.add_book(book, number)
        assert catalog.get_catalog() == books, catalog.get_catalog()
        catalog.checkout("The Hobbit")
        catalog.checkout("C Programming", 2)
        error = expect_raises(ValueError, catalog.checkout, "C Programming")
        assert "Not enough copies of C Programming" in str(error), error
        expect_raises(LookupError, catalog.checkin, "Dune")
        expect_raises(LookupError, catalog.checkout, "Coding for Dummies")
        catalog.checkin(title="C Programming", quantity=2)
        catalog.add_book("Dune", quantity=4)
        expect_raises(TypeError, catalog.checkout, "Dune", copies=1)
        final = catalog.get_catalog()
        print("final", json.dumps(final, sort_keys=True))
        assert final["The Hobbit"] == 2 and final["C Programming"] == 2 and final["Dune"] == 4, final


def marshal_client_crashes_on_none_kwargs():
    """Pyro5's marshal client cannot send calls without keyword arguments
    (properties, batches): its MarshalSerializer.dumpsCall does
    kwargs.items() on the None those calls pass, and raises AttributeError
    before anything is sent. A limitation of Pyro5, not of the daemon."""
    return config.SERIALIZER == "marshal"


def sample(uri):
    """Properties, keywords, driver exceptions, batches, oneway calls."""
    with Pyro5.api.Proxy(uri) as service:
        assert service.echo("hi") == "SERVER RECEIVED: hi"
        # Every service answers these, as PyroLab's Service base class does.
        assert service.ping() is True
        assert service.pyrolab_version() == "0.5.0"
        assert service.add(1, 2, 3) == 6
        assert service.subtract(b=3, a=10) == 7
        # A driver's **kwargs, as a Python method's.
        assert service.options(prefix="x.", a=1, b="two") == {"x.a": 1, "x.b": "two"}
        assert service.options(c=True) == {"c": True}
        assert service.divide(1, 4) == 0.25
        expect_raises(ZeroDivisionError, service.divide, 1, 0)
        expect_raises(AttributeError, getattr, service, "no_such_thing")
        if marshal_client_crashes_on_none_kwargs():
            # The daemon's side of properties still works with marshal: the
            # same calls, with the {} kwargs Pyro5 fails to send itself.
            service._pyroInvoke("__setattr__", ("attribute", [1, "two", 3.5]), {})
            value = service._pyroInvoke("__getattr__", ("attribute",), {})
            assert value == [1, "two", 3.5], value
            print("properties skipped (Pyro5's marshal client); batches skipped too")
            return
        service.attribute = None  # a single instance: earlier runs set it
        assert service.attribute is None, service.attribute
        service.attribute = [1, "two", 3.5]
        assert list(service.attribute) == [1, "two", 3.5], service.attribute
        batch = Pyro5.api.BatchProxy(service)
        batch.add(1, 1)
        batch.divide(1, 0)
        batch.add(2, 2)
        results = batch()
        assert next(results) == 2
        expect_raises(ZeroDivisionError, next, results)
        print("batch ok")


def oneway(uri):
    """A oneway call returns at once, even while the method runs."""
    import time
    with Pyro5.api.Proxy(uri) as faulty:
        faulty._pyroBind()  # connects and fetches the metadata
        assert "fire" in faulty._pyroOneway, faulty._pyroOneway
        assert "slow_fire" in faulty._pyroOneway, faulty._pyroOneway
        start = time.time()
        faulty.slow_fire(2.0)
        faulty.settings()  # a shared (&self) method runs beside it
        elapsed = time.time() - start
        assert elapsed < 1.5, elapsed
        print("oneway ok in %.3f s" % elapsed)


def daemon(uri):
    """The Pyro.Daemon object: ping, info, registered, metadata."""
    with Pyro5.api.Proxy(uri) as d:
        assert d.ping() is True  # as PyroLab's daemons answer
        assert d.pyrolab_version() == "0.5.0"
        names = sorted(d.registered())
        print("registered", json.dumps(names))
        metadata = d.get_metadata("sample")
        assert "echo" in metadata["methods"], metadata
        assert "attribute" in metadata["attrs"], metadata
        print("info", d.info())
        expect_raises(Pyro5.errors.DaemonError, d.get_metadata, "nothing-here")


def lock(uri):
    """Lock semantics across two proxies, including release on disconnect."""
    import time
    holder = Pyro5.api.Proxy(uri)
    other = Pyro5.api.Proxy(uri)
    # PyroLab 0.5's return values: lock() True once held (again too),
    # unlock() whether there was a lock to end.
    assert holder.lock("alice") is True
    assert holder.lock("alice") is True
    assert holder.islocked() is True
    error = expect_raises(ConnectionRefusedError, other.echo, "hi")
    assert "locked (by 'alice')" in str(error), error
    assert holder.unlock() is True
    assert holder.unlock() is False
    assert holder.islocked() is False
    assert other.echo("hi") == "SERVER RECEIVED: hi"
    holder.lock("bob")
    expect_raises(ConnectionRefusedError, other.echo, "hi")
    holder._pyroRelease()  # the holder disconnects without unlocking
    deadline = time.time() + 10
    while True:
        try:
            assert other.echo("free") == "SERVER RECEIVED: free"
            break
        except ConnectionRefusedError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
    other._pyroRelease()
    print("lock ok")


def shape(value):
    """A value's type and content, recursively, for comparing kinds exactly
    (Python's == calls (1,) and [1] different, but {1} and frozenset({1})
    equal, and 1 and 1.0 and True equal)."""
    kind = type(value).__name__
    if isinstance(value, (list, tuple)):
        return "%s(%s)" % (kind, ", ".join(shape(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return "%s{%s}" % (kind, ", ".join(sorted(shape(v) for v in value)))
    if isinstance(value, dict):
        items = sorted("%s: %s" % (shape(k), shape(v)) for k, v in value.items())
        return "dict{%s}" % ", ".join(items)
    return "%s:%r" % (kind, value)


# Python's types beyond JSON's, alone and nested.
PYTHON_KINDS = [
    (1, "a"), (1,), (), {1, 2}, set(), frozenset({3}), frozenset(),
    2**70, -2**100, 2**63, -2**63 - 1, 1 + 2j, complex(0.5, -1.5),
    {"pair": (1, {2}), "big": [2**70]}, [(1, 2), {3}, frozenset({4})],
]

# What each serializer carries unchanged in type and value (Pyro5's own
# limits: serpent writes a frozenset as a set and an empty set as (); json
# and msgpack turn tuples and sets into lists; json cannot send complex).
CARRIED = {
    "serpent": [(1, "a"), (1,), (), {1, 2}, 2**70, -2**100, 2**63, 1 + 2j,
                {"pair": (1, {2}), "big": [2**70]}],
    "json": [2**70, -2**100, 2**63, -2**63 - 1, {"big": [2**70]}],
    "msgpack": [2**70, -2**100, 2**63, -2**63 - 1, 1 + 2j, complex(0.5, -1.5)],
    "marshal": PYTHON_KINDS,
}


def types(uri, stock_uri):
    """Python's types through a driver method, compared with what a stock
    Pyro5 daemon gives back for the same call with the same serializer."""
    serializer = config.SERIALIZER
    with Pyro5.api.Proxy(uri) as ours, Pyro5.api.Proxy(stock_uri) as stock:
        for value in PYTHON_KINDS:
            try:
                expected = shape(stock.echo(value))
            except Exception as e:  # noqa: BLE001 - what stock Pyro5 does
                error = expect_raises(type(e), ours.echo_value, value)
                print("both refuse", shape(value), type(error).__name__)
                continue
            got = shape(ours.echo_value(value))
            assert got == expected, (serializer, shape(value), got, expected)
        for value in CARRIED[serializer]:
            got = ours.echo_value(value)
            assert shape(got) == shape(value), (serializer, shape(value), shape(got))
        # The driver's typed parameters and results.
        pair = ours.swap((1, "a"))
        assert list(pair) == ["a", 1], pair
        words = ours.distinct(("b", "a", "b"))
        assert sorted(words) == ["a", "b"], words
        assert ours.negate(2**70) == -2**70
        assert ours.negate(-2**100) == 2**100
        assert ours.negate(5) == -5
        expect_raises(TypeError, ours.negate, 1.5)
        if serializer in ("serpent", "marshal"):
            assert type(pair) is tuple and type(words) is set, (pair, words)
        if serializer != "json":
            assert ours.conjugate(1 + 2j) == 1 - 2j
            assert ours.conjugate(3) == 3 + 0j
        if serializer in ("msgpack", "marshal"):
            # Large byte strings, which a msgpack reply sends from the
            # driver's own buffer, alone and inside other values.
            blob = bytes(range(256)) * 1024
            assert ours.echo_bytes(blob) == blob
            nested = {"data": blob, "more": [blob[:70000], 1], "n": 1}
            assert ours.echo_value(nested) == stock.echo(nested) == nested
    print("types ok")


def same(a, b):
    """Equal, and of exactly the same types all the way down (1 == 1.0 ==
    True and (1,) == [1] are not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(k, l) and same(a[k], b[l]) for k, l in zip(a, b))
    if isinstance(a, (set, frozenset)):
        rest = list(b)
        for x in a:
            match = next((i for i, y in enumerate(rest) if same(x, y)), None)
            if match is None:
                return False
            del rest[match]
        return not rest
    return a == b


def types_marshal(uri):
    """Python's types through the sample driver's echo_value and back, each
    of the same type and value as it went (run with marshal)."""
    shared = (2**70, "shared text")  # sent once, then as marshal references
    values = [
        None, True, False, 0, -1, 2**31 - 1, 2**31, -2**31 - 1, 2**63 - 1, -2**63,
        2**63, 2**70, -2**100, 3**500, 2.5, -0.0, float("inf"), 1 + 2j, -1.5j,
        "", "ascii", "héllo ✓", "x" * 300, b"", b"a\x00b\xff",
        (), (1,), (1, "two", 3.0), tuple(range(300)), [], [1, [2, [3]]],
        set(), {1, 2, 3}, frozenset(), frozenset({"a", "b"}),
        {}, {"k": "v"}, {1: "one", (1, 2): "pair", frozenset({3}): "fs", 2**70: "big"},
        {"t": (1, (2, [3, {4}])), "fs": frozenset({(1, 2), -2**100}), "c": [1 + 2j, (2j,)]},
        [shared, shared, {"again": shared}],
    ]
    with Pyro5.api.Proxy(uri) as service:
        for value in values:
            back = service.echo_value(value)
            assert same(back, value), "%r came back as %r" % (value, back)
        everything = service.echo_value(tuple(values))
        assert same(everything, tuple(values)), everything
        nan = service.echo_value(float("nan"))
        assert type(nan) is float and nan != nan, nan
    print("types ok", len(values))


def context(uri):
    """A driver method that takes a CallContext sees what Pyro5's
    current_context would show a Python method: the client's address,
    the correlation id and the request's annotations; the annotation it
    sets comes back in current_context.response_annotations."""
    import uuid
    from Pyro5.callcontext import current_context
    with Pyro5.api.Proxy(uri) as service:
        service._pyroBind()
        local = "%s:%d" % service._pyroConnection.sock.getsockname()[:2]
        correlation = uuid.uuid4()
        current_context.correlation_id = correlation
        current_context.annotations = {"ECHO": b"abc", "XTRA": b"\x00\xff"}
        seen = service.caller()
        assert seen["client"] == local, (seen, local)
        assert seen["correlation_id"] == str(correlation), seen
        assert {"ECHO", "XTRA"} <= set(seen["annotations"]), seen
        assert current_context.response_annotations.get("ECHO") == b"cba", current_context.response_annotations
        # A batched call has the batch request's context (Pyro5's client
        # cannot send batches with marshal).
        if config.SERIALIZER != "marshal":
            batch = Pyro5.api.BatchProxy(service)
            batch.caller()
            batch.caller()
            for seen in batch():
                assert seen["client"] == local and seen["correlation_id"] == str(correlation), seen
        # Without annotations the reply has none.
        current_context.annotations = {}
        current_context.correlation_id = None
        seen = service.caller()
        assert seen["correlation_id"] is None, seen
        assert "ECHO" not in current_context.response_annotations, current_context.response_annotations
    print("context ok")


FLOWS = {
    "context": context,
    "library": library,
    "sample": sample,
    "oneway": oneway,
    "daemon": daemon,
    "lock": lock,
    "types": types,
    "types_marshal": types_marshal,
}

if __name__ == "__main__":
    flow, uri, serializer = sys.argv[1:4]
    config.SERIALIZER = serializer
    config.COMMTIMEOUT = 20.0
    FLOWS[flow](uri, *sys.argv[4:])
    print("OK", flow, serializer)
