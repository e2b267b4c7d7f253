"""The stock Python Pyro5 client (serpent) calling echo on a pyrolab-host
daemon (URI given) and on a stock Python Pyro5 daemon started here, in the
same run. Used by the daemon_rpc benchmark."""

import statistics
import sys
import threading
import time

import Pyro5.api
from Pyro5 import config


@Pyro5.api.expose
class Sample:
    def echo(self, message):
        return "SERVER RECEIVED: " + message


def calls_per_second(uri, calls=3000, runs=3):
    rates = []
    with Pyro5.api.Proxy(uri) as proxy:
        for _ in range(300):
            proxy.echo("hello")
        for _ in range(runs):
            start = time.perf_counter()
            for _ in range(calls):
                proxy.echo("hello")
            rates.append(calls / (time.perf_counter() - start))
    return statistics.median(rates)


def main():
    config.SERIALIZER = "serpent"
    ours = calls_per_second(sys.argv[1])
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    stock_uri = daemon.register(Sample, "sample")
    threading.Thread(target=daemon.requestLoop, daemon=True).start()
    stock = calls_per_second(stock_uri)
    daemon.shutdown()
    print()
    print("%-52s %10.0f calls/s" % ("Python Pyro5 %s client -> pyrolab-host daemon" % Pyro5.__version__, ours))
    print("%-52s %10.0f calls/s" % ("Python Pyro5 client -> stock Pyro5 daemon", stock))
    print("%-52s %9.1fx" % ("  pyrolab-host vs stock Pyro5 daemon", ours / stock))


if __name__ == "__main__":
    main()
