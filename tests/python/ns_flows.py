"""Name-server flows the end-to-end tests run with the stock Pyro5 client
against `pyrolab-host run nameserver`. Usage: ns_flows.py FLOW PORT SERIALIZER [ARGS...]

Each flow checks what a Pyro5 user relies on and prints what it saw; any
surprise raises, so the process exits non-zero with a traceback.
"""

import socket
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


def registry(port):
    """The Pyro.NameServer methods, with Pyro5's results and errors."""
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    ns.ping()
    own = ns.lookup("Pyro.NameServer")
    assert own.port == port and own.object == "Pyro.NameServer", own
    before = ns.count()
    ns.register("my.obj", "PYRO:obj@127.0.0.1:5555", metadata={"a", "b"})
    ns.register("my.obj2", Pyro5.api.URI("PYRO:obj2@127.0.0.1:5556"), safe=True)
    expect_raises(Pyro5.errors.NamingError, ns.register, "my.obj2", "PYRO:x@127.0.0.1:1", safe=True)
    assert ns.count() == before + 2
    uri = ns.lookup("my.obj")
    assert isinstance(uri, Pyro5.api.URI) and uri.host == "127.0.0.1" and uri.port == 5555, uri
    uri, metadata = ns.lookup("my.obj", return_metadata=True)
    assert set(metadata) == {"a", "b"}, metadata
    error = expect_raises(Pyro5.errors.NamingError, ns.lookup, "nope")
    assert str(error) == "unknown name: nope", error
    listed = ns.list(prefix="my.")
    assert listed == {"my.obj": "PYRO:obj@127.0.0.1:5555", "my.obj2": "PYRO:obj2@127.0.0.1:5556"}, listed
    with_meta = ns.list(prefix="my.", return_metadata=True)
    assert set(with_meta["my.obj"][1]) == {"a", "b"} and not with_meta["my.obj2"][1], with_meta
    assert ns.list(regex=r"my\..*2") == {"my.obj2": "PYRO:obj2@127.0.0.1:5556"}
    assert ns.list(regex=r"obj") == {}, "regex is anchored at the start, like re.match"
    expect_raises(Pyro5.errors.NamingError, ns.list, regex="(")
    # Python's re syntax, as Pyro5's name server takes it: look-ahead and
    # back-references too.
    assert ns.list(regex=r"my\.obj(?!2)") == {"my.obj": "PYRO:obj@127.0.0.1:5555"}
    assert ns.list(regex=r"(m)y\.(?=o)obj\d") == {"my.obj2": "PYRO:obj2@127.0.0.1:5556"}
    assert ns.list(regex=r"(?P<m>m)y") == ns.list(prefix="my")
    expect_raises(ValueError, ns.list, prefix="my.", regex="my")
    found = ns.yplookup(meta_all={"a"})
    assert list(found) == ["my.obj"] and set(found["my.obj"][1]) == {"a", "b"}, found
    assert ns.yplookup(meta_any={"b", "zz"}, return_metadata=False) == {"my.obj": "PYRO:obj@127.0.0.1:5555"}
    expect_raises(TypeError, ns.yplookup, meta_all="a")
    ns.set_metadata("my.obj", ["x"])
    assert set(ns.lookup("my.obj", return_metadata=True)[1]) == {"x"}
    expect_raises(Pyro5.errors.NamingError, ns.set_metadata, "nope", ["x"])
    expect_raises(Pyro5.errors.PyroError, ns.register, "bad", "not a uri")
    expect_raises(TypeError, ns.register, "bad", "PYRO:x@127.0.0.1:1", metadata="a")
    assert ns.remove("my.obj") == 1
    assert ns.remove("my.obj") == 0
    assert ns.remove("Pyro.NameServer") == 0, "the name server's own entry is protected"
    assert ns.remove(prefix="my.") == 1
    assert ns.remove(prefix="Pyro.") == 0
    assert ns.count() == before
    ns.ping()
    print("registry ok")


def register(port, name, uri):
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    ns.register(name, uri, metadata={"test"})
    print("registered", name)


def remove(port, name):
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    print("removed", ns.remove(name))


def register_many(port, count):
    """Registers names one after another, printing each acknowledged one,
    until the name server goes away (the test kills it mid-stream)."""
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    for i in range(int(count)):
        ns.register("bulk.%06d" % i, "PYRO:bulk%d@127.0.0.1:5555" % i, metadata={"bulk", "n%d" % i})
        print("acked", i, flush=True)


def listing(port):
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    for name, uri in sorted(ns.list().items()):
        print("entry", name, uri)


def pyroname(port, name):
    """A PYRONAME proxy to the library catalog served by a pyrolab-host daemon."""
    with Pyro5.api.Proxy("PYRONAME:%s@127.0.0.1:%d" % (name, port)) as catalog:
        catalog.add_book("Dune", 2)
        catalog.checkout("Dune")
        expect_raises(ValueError, catalog.checkout, "Dune", quantity=5)
        print("catalog", catalog.get_catalog())


def garbage(port):
    """Bytes that are not Pyro on the name-server port, then a normal call."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)))
        sock.settimeout(10)
        while sock.recv(4096):
            pass  # the name server closes this connection
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    ns.ping()
    print("still serving, count", ns.count())


FLOWS = {"registry": registry, "register": register, "remove": remove, "register_many": register_many, "list": listing, "pyroname": pyroname, "garbage": garbage}

if __name__ == "__main__":
    flow, port, serializer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    config.SERIALIZER = serializer
    config.COMMTIMEOUT = 20.0
    FLOWS[flow](port, *sys.argv[4:])
    print("OK", flow, serializer)
