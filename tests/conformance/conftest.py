"""Re-points Pyro5 5.17's own network tests at a server in another process.

The runner (run.py) copies this file next to the tests of Pyro5's sdist.
Pyro5's tests start their daemons in the test's own process; here every
daemon such a test starts is a stand-in (`OutOfProcessDaemon`) that serves
the same objects from a separate server process:

- CONFORMANCE_TARGET=pyrolab-host: `pyrolab-host run daemon` serving the
  `pyro5_test_objects` driver (tests/conformance/pyro5-test-objects),
  which holds Pyro5's test objects written in Rust;
- CONFORMANCE_TARGET=pyro5: stock Pyro5 serving Pyro5's own test objects
  (stock_server.py), the control: what the re-pointing alone costs.

Every proxy uses the serializer CONFORMANCE_SERIALIZER, whatever the test
sets (the tests pin serpent; the runner runs them with each serializer).

Tests that cannot be re-pointed at another process, because they reach
into the daemon's own Python objects, are skipped with the reason, for
both targets alike (NOT_REPOINTABLE).
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import Pyro5.client
import Pyro5.core
import Pyro5.nameserver
import Pyro5.server
import Pyro5.utils.echoserver
from Pyro5 import config

TARGET = os.environ["CONFORMANCE_TARGET"]
SERIALIZER = os.environ["CONFORMANCE_SERIALIZER"]
HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0
SHUTDOWN_GRACE = 1.0

NOT_REPOINTABLE = {
    "testDaemonConnectFail": "tests the client against a Python daemon whose handshake the test rigs",
    "testAutoProxy": "registers the test's own Python objects with the daemon while it runs",
    "testRegisterWeak": "registers a Python object weakly and deletes it in the test's process",
    "testResourceFreeing": "inspects the server object's Python state from the test",
    "testNatPortIPv6": "constructs a daemon in the test's process only to read its location strings",
    "testTimeoutConnect": "needs a daemon in the test's process that never runs its loop",
    "testNameserverWithStmt": "checks a name-server daemon object in the test's process",
    "testStartNSfunc": "checks that start_ns gives Pyro5's own daemon and broadcast-server objects",
    "testNAT": "starts a name server in the test's process only to read its locations",
    "testRemoveNameThreadSafe": "takes the name server's own lock and storage in the test's process",
    "testAutoClean": "runs name-server daemons in the test's process with its autocleaner's internals changed",
    # A name server in a process of its own is registered in itself, as
    # Pyro.NameServer; the NameServer object these tests make in their
    # process is not, and they count its names (stock Pyro5 fails alike).
    "testRegister": "counts the names of a NameServer object that, unlike a running name server, is not registered in itself",
    "testList": "counts the names of a NameServer object that, unlike a running name server, is not registered in itself",
    "testMetadata": "lists the names of a NameServer object that, unlike a running name server, is not registered in itself",
    "testEmptyMetadata": "compares with a Python set what crossed a serializer (serpent sends an empty set as an empty tuple, json and msgpack as a list)",
}

# Server settings some tests change in the middle of the test, which an
# in-process daemon sees at once; a server in its own process is started
# with them instead.
SETTINGS_CHANGED_IN_TEST = {
    "testGeneratorLinger": {"ITER_STREAM_LINGER": 0.5, "COMMTIMEOUT": 0.2},
    "testGeneratorNoLinger": {"ITER_STREAM_LINGER": 0},
}

# The objects each stand-in daemon serves, by the class of the first one a
# test registers: Pyro5's test modules register these in their setup.
SERVED = {
    "ServerTestObject": [
        ("something", "test_server", "ServerTestObject", {}),
        ("unexposed", "test_server", "NotEverythingExposedClass", {"name": "hello"}),
    ],
    "EchoServer": [
        ("test.echoserver", "Pyro5.utils.echoserver", "EchoServer", {}),
    ],
}

_current_test = None
_original_daemon = Pyro5.server.Daemon
_original_name_server = Pyro5.nameserver.NameServer
_original_start_ns = Pyro5.nameserver.start_ns
# Name-server processes the running test started, stopped after it.
_name_servers = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before the test's own setup: every daemon it makes (directly, or
    through the echo server's main) is an `OutOfProcessDaemon`."""
    global _current_test
    _current_test = item.name
    reason = NOT_REPOINTABLE.get(item.name)
    if reason:
        pytest.skip("not re-pointable: " + reason)
    Pyro5.server.Daemon = OutOfProcessDaemon
    Pyro5.nameserver.NameServer = out_of_process_name_server
    Pyro5.nameserver.start_ns = out_of_process_start_ns


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    global _current_test
    _current_test = None
    Pyro5.server.Daemon = _original_daemon
    Pyro5.nameserver.NameServer = _original_name_server
    Pyro5.nameserver.start_ns = _original_start_ns
    while _name_servers:
        _name_servers.pop().stop()


_original_proxy_init = Pyro5.client.Proxy.__init__


def _proxy_init(self, uri, connected_socket=None):
    _original_proxy_init(self, uri, connected_socket)
    self._pyroSerializer = SERIALIZER


Pyro5.client.Proxy.__init__ = _proxy_init


class NotRepointable(Exception):
    """The test does something with its daemon that a server in another
    process cannot do."""


class ServerProcess:
    """A server process and the location it printed."""

    LISTENING = re.compile(r"listening on (\S+)")

    def __init__(self, command, env):
        self.output = []
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(self._lines,), daemon=True).start()
        self.location = self.wait_for(self.LISTENING)

    def wait_for(self, pattern):
        """The first group of `pattern` in the next line of output that
        has it (at most STARTUP_TIMEOUT)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self.stop()
                raise RuntimeError("the server did not start in time:\n" + "".join(self.output))
            if line is None:
                raise RuntimeError("the server exited:\n" + "".join(self.output))
            found = pattern.search(line)
            if found:
                return found.group(1)

    def _read(self, lines):
        for line in self.process.stdout:
            self.output.append(line)
            lines.put(line)
        lines.put(None)

    def stop(self):
        """Asks the server to stop, as a test's daemon.shutdown() does, and
        kills it if it has not within SHUTDOWN_GRACE (Pyro5 waits for its
        workers' connections a while; the next test need not)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SHUTDOWN_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SHUTDOWN_TIMEOUT)


def _server_settings():
    settings = {
        "SERVERTYPE": config.SERVERTYPE,
        "COMMTIMEOUT": config.COMMTIMEOUT or 0,
        # How often a Pyro5 daemon's loop looks at its sockets (the tests
        # set 0.1 s); pyrolab-host has no such setting, its loop does not poll.
        "POLLTIMEOUT": config.POLLTIMEOUT,
        "ITER_STREAMING": config.ITER_STREAMING,
        "ITER_STREAM_LIFETIME": config.ITER_STREAM_LIFETIME,
        "ITER_STREAM_LINGER": config.ITER_STREAM_LINGER,
        "MAX_MESSAGE_SIZE": config.MAX_MESSAGE_SIZE,
    }
    settings.update(SETTINGS_CHANGED_IN_TEST.get(_current_test, {}))
    return settings


def _yaml_scalar(value):
    return json.dumps(value)


def start_pyrolab_host(objects, settings, workdir):
    daemon = [
        "    host: 127.0.0.1",
        "    port: 0",
        "    servertype: " + settings["SERVERTYPE"],
        "    commtimeout: %s" % settings["COMMTIMEOUT"],
        "    iter_streaming: %s" % ("true" if settings["ITER_STREAMING"] else "false"),
        "    iter_stream_lifetime: %s" % settings["ITER_STREAM_LIFETIME"],
        "    iter_stream_linger: %s" % settings["ITER_STREAM_LINGER"],
        "    max_message_size: %d" % settings["MAX_MESSAGE_SIZE"],
    ]
    services = []
    for name, _module, classname, parameters in objects:
        # A plain Pyro5 object: without PyroLab's ping() and pyrolab_version().
        line = "  %s: {module: pyro5_test_objects, classname: %s, instancemode: single, pyrolab_service: false, daemon: conformance" % (
            _yaml_scalar(name), classname)
        if parameters:
            line += ", parameters: %s" % json.dumps(parameters)
        services.append(line + "}")
    text = "\n".join(
        ["version: '1.0'", "plugin_dirs: [%s]" % json.dumps(os.environ["CONFORMANCE_PLUGIN_DIR"]),
         "daemons:", "  conformance:"] + daemon + ["services:"] + services) + "\n"
    path = os.path.join(workdir, "lab.yaml")
    with open(path, "w") as file:
        file.write(text)
    env = dict(os.environ, PYROLAB_HOME=os.path.join(workdir, "home"))
    env.pop("PYROLAB_PLUGIN_PATH", None)
    command = [os.environ["CONFORMANCE_HOST_BINARY"], "run", "daemon", "conformance", "--config", path]
    return ServerProcess(command, env)


def start_stock_pyro5(objects, settings, workdir):
    spec = {"objects": objects, "settings": settings, "path": HERE}
    command = [sys.executable, os.path.join(HERE, "stock_server.py"), json.dumps(spec)]
    return ServerProcess(command, dict(os.environ))


class OutOfProcessDaemon:
    """Stands in for `Pyro5.server.Daemon` in Pyro5's tests: the objects
    are served by a server process, started at the first registration."""

    def __init__(self, host=None, port=0, unixsocket=None, nathost=None, natport=None, **_):
        if unixsocket or nathost:
            raise NotRepointable("a daemon on a Unix socket or behind NAT")
        self._settings = _server_settings()
        self._server = None
        self._served = None
        self._stopped = threading.Event()
        self._workdir = tempfile.mkdtemp(prefix="conformance-")

    def register(self, obj, objectId=None, force=False, weak=False):
        classname = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        if objectId is None or weak:
            raise NotRepointable("registers an object without a fixed name, or weakly")
        if self._server is None:
            objects = SERVED.get(classname)
            if objects is None:
                raise NotRepointable("serves a %s, which the runner does not know" % classname)
            start = start_pyrolab_host if TARGET == "pyrolab-host" else start_stock_pyro5
            self._server = start(objects, self._settings, self._workdir)
            self._served = {name: served for name, _m, served, _p in objects}
        if self._served.get(objectId) != classname:
            raise NotRepointable("registers a %s as %r, which is not served" % (classname, objectId))
        return self.uriFor(objectId)

    def unregister(self, objectOrId):
        raise NotRepointable("unregisters an object from a running daemon")

    def uriFor(self, objectOrId, nat=True):
        if self._server is None:
            raise NotRepointable("asks for a URI before registering anything")
        name = objectOrId if isinstance(objectOrId, str) else str(objectOrId)
        return Pyro5.core.URI("PYRO:%s@%s" % (name, self._server.location))

    def proxyFor(self, objectOrId, nat=True):
        """A proxy that knows the object's metadata, as Pyro5's has it from
        the daemon's own registry (here it asks the server)."""
        proxy = Pyro5.client.Proxy(self.uriFor(objectOrId, nat))
        proxy._pyroBind()
        return proxy

    @property
    def locationStr(self):
        return self._server.location if self._server else None

    def requestLoop(self, loopCondition=lambda: True):
        while not self._stopped.wait(0.05) and loopCondition():
            pass

    def shutdown(self):
        self._stopped.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    close = shutdown

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


class _StorageStandIn:
    """What the tests do with `ns.storage` of a name server in their
    process: close it at the end."""

    def close(self):
        pass


class NameServerProxy(Pyro5.client.Proxy):
    """A proxy to a name server in another process, standing in for the
    `NameServer` object Pyro5's offline name-server tests make."""

    storage = _StorageStandIn()


def out_of_process_name_server(storageProvider=None):
    """Stands in for `Pyro5.nameserver.NameServer(storageProvider)`: a
    name server of the same kind of storage (memory or SQL), served by a
    process of its own, and a proxy to it."""
    workdir = tempfile.mkdtemp(prefix="conformance-ns-")
    sql = isinstance(storageProvider, Pyro5.nameserver.SqlStorage)
    database = os.path.join(workdir, "names.sqlite")
    if TARGET == "pyrolab-host":
        server = start_pyrolab_host_name_server("sql:" + database if sql else "memory", workdir)
    else:
        spec = {"nameserver": True, "storage": "sql:" + database if sql else None, "path": HERE}
        command = [sys.executable, os.path.join(HERE, "stock_server.py"), json.dumps(spec)]
        server = ServerProcess(command, dict(os.environ))
    _name_servers.append(server)
    return NameServerProxy("PYRO:%s@%s" % (Pyro5.core.NAMESERVER_NAME, server.location))


def start_pyrolab_host_name_server(storage, workdir, host="127.0.0.1", broadcast=False):
    lines = [
        "version: '1.0'",
        "nameservers:",
        "  conformance:",
        "    host: %s" % json.dumps(host),
        "    ns_port: 0",
        "    storage: %s" % json.dumps(storage),
        # Pyro5's tests speak plain TCP, on the machine's address for the
        # network classes: inside the runner's own network namespace.
        "    insecure: true",
    ]
    if broadcast:
        # On every address, as Pyro5's broadcast server: a socket bound to
        # one address does not receive broadcasts.
        lines += ["    broadcast: true", "    ns_bchost: 0.0.0.0", "    ns_bcport: 0"]
    text = "\n".join(lines) + "\n"
    path = os.path.join(workdir, "lab.yaml")
    with open(path, "w") as file:
        file.write(text)
    env = dict(os.environ, PYROLAB_HOME=os.path.join(workdir, "home"))
    command = [os.environ["CONFORMANCE_HOST_BINARY"], "run", "nameserver", "conformance", "--config", path]
    return ServerProcess(command, env)


BROADCASTING = re.compile(r"broadcast \S+ on \S*:(\d+)")


class NameServerDaemonStandIn:
    """What the network name-server tests do with the daemon `start_ns`
    gives: run its loop until they shut it down."""

    def __init__(self, server):
        self._server = server
        self._stopped = threading.Event()

    def requestLoop(self, loopCondition=lambda: True):
        while not self._stopped.wait(0.05) and loopCondition():
            pass

    def shutdown(self):
        self._stopped.set()
        self._server.stop()

    close = shutdown


class BroadcastServerStandIn:
    """What the tests do with the broadcast server `start_ns` gives: ask
    its port, run it in a thread (it runs in the server process), close."""

    def __init__(self, port):
        self.port = port
        self.sock = self

    def getPort(self):
        return self.port

    def fileno(self):
        return self.port

    def runInThread(self):
        thread = threading.Thread(target=lambda: None, daemon=True)
        thread.start()
        return thread

    def close(self):
        pass


def out_of_process_start_ns(host=None, port=None, enableBroadcast=True, bchost=None, bcport=None,
                            unixsocket=None, nathost=None, natport=None, storage=None):
    """Stands in for `Pyro5.nameserver.start_ns`: a name server in a
    process of its own, with a broadcast responder unless told otherwise
    or bound to loopback (as Pyro5 decides)."""
    if unixsocket or nathost or port or bcport:
        raise NotRepointable("a name server on a Unix socket, behind NAT, or on a fixed port")
    host = str(host or "0.0.0.0")
    broadcast = enableBroadcast and not (host.startswith("127.") or host in ("localhost", "::1"))
    workdir = tempfile.mkdtemp(prefix="conformance-ns-")
    if TARGET == "pyrolab-host":
        server = start_pyrolab_host_name_server("memory", workdir, host, broadcast)
    else:
        spec = {"nameserver": True, "storage": storage, "host": host, "broadcast": broadcast, "path": HERE}
        command = [sys.executable, os.path.join(HERE, "stock_server.py"), json.dumps(spec)]
        server = ServerProcess(command, dict(os.environ))
    _name_servers.append(server)
    bcserver = BroadcastServerStandIn(int(server.wait_for(BROADCASTING))) if broadcast else None
    uri = Pyro5.core.URI("PYRO:%s@%s" % (Pyro5.core.NAMESERVER_NAME, server.location))
    return uri, NameServerDaemonStandIn(server), bcserver
