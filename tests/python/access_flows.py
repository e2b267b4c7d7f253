"""One step of the access-control tests (tests/tls.rs), as a stock Pyro5
client whose identity is the certificate the PYRO_SSL_* variables name.

Usage: access_flows.py NS_PORT STEP [ARG]

Steps: call, lock, hold (lock, print, wait for stdin to close), release
(force-release the lock of `sample` through `Pyro.Daemon`), register NAME,
remove NAME, remove-regex REGEX.

Prints `ok RESULT`, or `refused CLASS: MESSAGE` when the lab refused it
with an exception; exits 0 either way.
"""

import sys

import Pyro5.api
import Pyro5.errors


def run(port, step, arg):
    ns = Pyro5.api.locate_ns("127.0.0.1", port)
    sample = Pyro5.api.Proxy(ns.lookup("sample"))
    if step == "call":
        return sample.echo("hello")
    if step == "lock":
        return sample.lock()
    if step == "hold":
        result = sample.lock()
        print("ok", result, flush=True)
        sys.stdin.read()
        return result
    if step == "release":
        daemon = Pyro5.api.Proxy(ns.lookup("lab"))
        return daemon.release(ns.lookup("sample"))
    if step == "register":
        return ns.register(arg, "PYRO:thing@127.0.0.1:5555")
    if step == "remove":
        return ns.remove(arg)
    if step == "remove-regex":
        return ns.remove(regex=arg)
    raise SystemExit("unknown step " + step)


def main():
    port, step = int(sys.argv[1]), sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    try:
        result = run(port, step, arg)
    except (PermissionError, Pyro5.errors.PyroError) as refusal:
        print("refused %s: %s" % (type(refusal).__name__, refusal), flush=True)
        return
    if step != "hold":
        print("ok", result, flush=True)


if __name__ == "__main__":
    main()
