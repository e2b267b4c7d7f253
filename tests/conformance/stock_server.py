"""The control server of the conformance runner: stock Pyro5 serving
Pyro5's own test objects, in a process of its own, exactly as
conftest.py's stand-in daemon asks pyrolab-host to serve them.

Usage: stock_server.py SPEC, where SPEC is JSON:
{"objects": [[name, module, classname, parameters], ...],
 "settings": {"SERVERTYPE": ..., "COMMTIMEOUT": ..., ...},
 "path": the directory holding Pyro5's test modules}
or, for a name server, {"nameserver": true, "storage": None or "sql:FILE"}.
Prints "listening on HOST:PORT" once it serves.
"""

import importlib
import json
import os
import signal
import sys

spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["path"])

import Pyro5.server  # noqa: E402
from Pyro5 import config  # noqa: E402

if spec.get("nameserver"):
    import Pyro5.nameserver  # noqa: E402

    uri, daemon, bcserver = Pyro5.nameserver.start_ns(
        host=spec.get("host", "127.0.0.1"), port=0, bcport=0,
        enableBroadcast=spec.get("broadcast", False), storage=spec["storage"])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening on %s" % uri.location, flush=True)
    if bcserver is not None:
        bcserver.runInThread()
        print("broadcast responder on 0.0.0.0:%d" % bcserver.getPort(), flush=True)
    daemon.requestLoop()
    sys.exit(0)

# Imported first: Pyro5's tests/support.py resets the configuration.
classes = [getattr(importlib.import_module(module), classname)
           for _name, module, classname, _parameters in spec["objects"]]
for key, value in spec["settings"].items():
    setattr(config, key, value)

daemon = Pyro5.server.Daemon(host="127.0.0.1", port=0)
for cls, (name, _module, _classname, parameters) in zip(classes, spec["objects"]):
    daemon.register(cls(**parameters), name)

# The test is over when it stops the server: no need to wait for Pyro5's
# workers to let their connections go.
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
print("listening on %s" % daemon.locationStr, flush=True)
daemon.requestLoop()
