"""A Pyro5 script with nothing about TLS in it: the PYRO_SSL_* variables
of its environment alone make it speak TLS (tests/tls.rs).

Usage: tls_client.py NS_PORT SERVICE

Looks SERVICE up by PYRONAME on the name server at 127.0.0.1:NS_PORT,
calls it, locks and releases it, reads an item stream and echoes a
megabyte, and prints one line per step. Any
failure propagates (exit status 1, the exception on stderr).
"""

import sys

import Pyro5.api


def main():
    port, service = int(sys.argv[1]), sys.argv[2]
    with Pyro5.api.locate_ns("127.0.0.1", port) as ns:
        print("lookup", ns.lookup(service))
    with Pyro5.api.Proxy(f"PYRONAME:{service}@127.0.0.1:{port}") as proxy:
        print("echo", proxy.echo("over TLS"))
        print("lock", proxy.lock())
        print("locked", proxy.echo("while locked"))
        print("release", proxy.release())
        print("stream", sum(proxy.count(1000)))
        text = "0123456789abcdef" * 65536  # a megabyte, in every serializer
        back = proxy.echo(text)
        print("bulk", len(text), back == "SERVER RECEIVED: " + text)


if __name__ == "__main__":
    main()
