"""A PyroLab daemon script, as a lab writes one for a driver that is not
ported yet, run by pyrolab-host's manager as a `command` component.

Usage: pyrolab_daemon_script.py NS_HOST NS_PORT NAME

Serves PyroLab's SampleService on a LockableDaemon (a free port of
127.0.0.1), registers it as NAME with the name server at NS_HOST:NS_PORT,
says so on stdout and serves until it is killed or sent SIGTERM. It reads
no stdin: under the manager it has none.
"""

import os
import sys

from pyrolab.api import LockableDaemon, locate_ns
from pyrolab.drivers.sample import SampleService


def main(ns_host, ns_port, name):
    SampleService.set_behavior("single")
    daemon = LockableDaemon(host="127.0.0.1", port=0)
    uri = daemon.register(SampleService)
    ns = locate_ns(host=ns_host, port=int(ns_port))
    ns.register(name, uri, metadata={"PyroLab's sample service, run as a command"})
    print(f"serving {name} at {uri} (pid {os.getpid()})")
    print("a line on stderr", file=sys.stderr)
    daemon.requestLoop()


if __name__ == "__main__":
    main(*sys.argv[1:])
