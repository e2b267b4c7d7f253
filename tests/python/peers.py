"""Stock Python peers for the mixed-lab tests: Pyro5 and PyroLab name
servers and daemons that pyrolab-host's client, daemons and tools must work
against. Usage: peers.py ROLE [ARGS...]

Each role prints one line "READY <what>" once it serves, then runs until
stdin closes (the test holds it open) or the process is killed.

  pyro5-nameserver              a stock Pyro5 name server on a free port
                                (prints its port)
  pyrolab-nameserver PORT       a name server started by PyroLab
                                (pyrolab.nameserver.start_ns_loop)
  pyro5-daemon [NS_PORT|-] [PORT]
                                a stock Pyro5 daemon serving "thing" (and,
                                with NS_PORT, registering it as
                                "python.thing"), on PORT or a free port;
                                prints its URI
  pyrolab-daemon NS_PORT        a PyroLab LockableDaemon serving PyroLab's
                                SampleService, registered as
                                "python.sample" with its description as
                                metadata, as PyroLab's manager registers
                                services; prints its URI
  hold-lock URI USER            locks a service for USER and keeps the lock
                                until stdin closes
"""

import sys
import threading

import Pyro5.api
import Pyro5.errors
import Pyro5.nameserver
from Pyro5 import config


def serve_until_stdin_closes(daemon):
    """Serve in a thread; return (and stop) when the test closes stdin."""
    thread = threading.Thread(target=daemon.requestLoop, daemon=True)
    thread.start()
    sys.stdin.read()
    daemon.shutdown()


@Pyro5.api.expose
class Thing:
    """A plain Pyro5 object: what a not-yet-ported driver looks like."""

    def echo(self, value):
        return value

    def kinds(self, value):
        """The Python type names of what it received, item by item."""
        return [type(item).__name__ for item in value]

    def fail(self):
        raise ValueError("thing failed")


def pyro5_nameserver():
    uri, daemon, _broadcast = Pyro5.nameserver.start_ns(host="127.0.0.1", port=0)
    print("READY", uri.port, flush=True)
    serve_until_stdin_closes(daemon)


def pyrolab_nameserver(port):
    from pyrolab.configure import NameServerConfiguration
    from pyrolab.nameserver import start_ns_loop

    cfg = NameServerConfiguration(host="127.0.0.1", ns_port=int(port), broadcast=False)
    stop = threading.Event()
    ready = lambda: print("READY", port, flush=True)
    thread = threading.Thread(
        target=start_ns_loop, args=(cfg, lambda: not stop.is_set(), ready), daemon=True
    )
    thread.start()
    sys.stdin.read()
    stop.set()


def pyro5_daemon(ns_port="-", port="0"):
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=int(port))
    uri = daemon.register(Thing, "thing")
    if ns_port != "-":
        ns = Pyro5.api.locate_ns("127.0.0.1", int(ns_port))
        ns.register("python.thing", uri, metadata={"A stock Pyro5 thing"})
    print("READY", uri, flush=True)
    serve_until_stdin_closes(daemon)


def pyrolab_daemon(ns_port):
    from pyrolab.api import LockableDaemon, locate_ns
    from pyrolab.drivers.sample import SampleService

    SampleService.set_behavior("single")
    daemon = LockableDaemon(host="127.0.0.1", port=0)
    uri = daemon.register(SampleService)
    ns = locate_ns(host="127.0.0.1", port=int(ns_port))
    ns.register("python.sample", uri, metadata={"PyroLab's sample service"})
    print("READY", uri, flush=True)
    serve_until_stdin_closes(daemon)


def hold_lock(uri, user):
    proxy = Pyro5.api.Proxy(uri)
    assert proxy.lock(user) is True
    print("READY locked", flush=True)
    sys.stdin.read()
    proxy.unlock()


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    config.SERIALIZER = "serpent"
    {
        "pyro5-nameserver": pyro5_nameserver,
        "pyrolab-nameserver": pyrolab_nameserver,
        "pyro5-daemon": pyro5_daemon,
        "pyrolab-daemon": pyrolab_daemon,
        "hold-lock": hold_lock,
    }[role](*args)
