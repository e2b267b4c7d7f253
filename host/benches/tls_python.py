"""The stock Python Pyro5 client's side of the daemon_rpc benchmark's `tls`
section: small calls and 1 MB echoes against one URI, plain or over TLS as
the PYRO_SSL_* variables say. Prints `small CALLS_PER_S` and
`bulk MB_PER_S` (both directions).
"""

import sys
import time

import Pyro5.api

SMALL_CALLS = 2000
BULK_ROUNDS = 20
BULK_BYTES = 1 << 20


def main():
    uri = sys.argv[1]
    with Pyro5.api.Proxy(uri) as proxy:
        proxy._pyroBind()
        for _ in range(SMALL_CALLS // 10):
            proxy.echo("hello")
        start = time.perf_counter()
        for _ in range(SMALL_CALLS):
            proxy.echo("hello")
        print("small", SMALL_CALLS / (time.perf_counter() - start), flush=True)
    with Pyro5.api.Proxy(uri) as proxy:
        proxy._pyroSerializer = "msgpack"
        data = b"\x2a" * BULK_BYTES
        proxy.echo_bytes(data)
        start = time.perf_counter()
        for _ in range(BULK_ROUNDS):
            proxy.echo_bytes(data)
        elapsed = time.perf_counter() - start
        print("bulk", 2 * BULK_ROUNDS * BULK_BYTES / 1e6 / elapsed, flush=True)


if __name__ == "__main__":
    main()
