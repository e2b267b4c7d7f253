"""Baseline for the benchmarks: a stock Python Pyro5 echo call on loopback.

Run: pip install Pyro5 && python3 host/benches/pyro5_baseline.py
"""

import statistics
import threading
import time

import Pyro5.api


@Pyro5.api.expose
class Sample:
    def echo(self, message):
        return "SERVER RECEIVED: " + message


def main():
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Sample, "sample")
    threading.Thread(target=daemon.requestLoop, daemon=True).start()
    with Pyro5.api.Proxy(uri) as proxy:
        for _ in range(500):  # warm up
            proxy.echo("hello")
        runs = []
        for _ in range(5):
            calls = 3000
            start = time.perf_counter()
            for _ in range(calls):
                proxy.echo("hello")
            runs.append((time.perf_counter() - start) / calls * 1e6)
    daemon.shutdown()
    print(
        f"Pyro5 {Pyro5.__version__}: echo round trip on loopback, "
        f"median of 5 runs: {statistics.median(runs):.1f} us per call "
        f"(runs: {', '.join(f'{r:.1f}' for r in runs)})"
    )


if __name__ == "__main__":
    main()
