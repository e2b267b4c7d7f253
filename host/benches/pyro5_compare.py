"""The stock Python Pyro5 client (serpent) calling echo on a pyrolab-host
daemon (URI given) and on a stock Python Pyro5 daemon, in the same run.
Used by the daemon_rpc benchmark.

The stock daemon runs in a process of its own, as ours does, so it does not
share the client's interpreter lock. The two are measured in alternating
trials and each reports its best, so a noisy moment cannot decide the ratio.
"""

import os
import select
import subprocess
import sys
import time

import Pyro5.api
from Pyro5 import config

TRIALS = 4
CALLS = 3000


@Pyro5.api.expose
class Sample:
    def echo(self, message):
        return "SERVER RECEIVED: " + message

    def echo_bytes(self, data):
        return data

    def count(self, count):
        for i in range(count):
            yield i

    def chunks(self, count, size):
        for i in range(count):
            yield bytes([i % 256]) * size


def serve_stock_daemon():
    # Bulk calls in msgpack need the server to read it (Pyro5 reads every
    # serializer it has; msgpack is installed in the test environment).
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    print(daemon.register(Sample, "sample"), flush=True)
    daemon.requestLoop()


def start_stock_daemon():
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    ready, _, _ = select.select([process.stdout], [], [], 30)
    if not ready:
        process.kill()
        sys.exit("the stock Pyro5 daemon did not start within 30 s")
    return process, process.stdout.readline().strip()


def calls_per_second(proxy):
    start = time.perf_counter()
    for _ in range(CALLS):
        proxy.echo("hello")
    return CALLS / (time.perf_counter() - start)


BULK_BYTES = 1 << 20
BULK_ROUNDS = 60
BULK_TRIALS = 7


def process_seconds(pid):
    """CPU time the threads of process `pid` alive now have had: the
    scheduler's account in /proc, precise to the nanosecond."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that has just ended
    return total / 1e9


class Trial:
    """BULK_ROUNDS echoes: their rate, and the CPU time per call of the
    client and of the daemon process (`daemon_pid`)."""

    def __init__(self, proxy, data, daemon_pid):
        daemon_before = process_seconds(daemon_pid)
        client_before = time.thread_time()
        start = time.perf_counter()
        for _ in range(BULK_ROUNDS):
            back = proxy.echo_bytes(data)
            assert len(back) == len(data)
        self.rate = BULK_ROUNDS / (time.perf_counter() - start)
        self.client = (time.thread_time() - client_before) / BULK_ROUNDS
        self.daemon = (process_seconds(daemon_pid) - daemon_before) / BULK_ROUNDS


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def bulk(ours_uri):
    """1 MB msgpack echo from the stock Python client: ours against stock.

    Also the CPU time per call of the client and of each daemon (ours is
    the benchmark's process, this script's parent, idle but for its
    daemon meanwhile): the client's own share bounds the ratio, which a
    daemon costing nothing would raise only to (client + stock) / client.
    """
    config.SERIALIZER = "msgpack"
    process, stock_uri = start_stock_daemon()
    data = bytes(range(256)) * (BULK_BYTES // 256)
    ratios, stock_trials, our_trials = [], [], []
    try:
        for _ in range(BULK_TRIALS):
            # Connections of their own for each trial, as in daemon_rpc.
            with Pyro5.api.Proxy(ours_uri) as ours, Pyro5.api.Proxy(stock_uri) as stock:
                ours.echo_bytes(data)
                stock.echo_bytes(data)
                stock_trials.append(Trial(stock, data, process.pid))
                our_trials.append(Trial(ours, data, os.getppid()))
                ratios.append(our_trials[-1].rate / stock_trials[-1].rate)
    finally:
        process.kill()
        process.wait()
    ratios.sort()
    print(
        "%-52s %9.2fx   (trials %.2f-%.2fx)"
        % (
            "  Python msgpack client, 1 MB echo: ours vs stock",
            ratios[len(ratios) // 2],
            ratios[0],
            ratios[-1],
        )
    )
    client = median(t.client for t in stock_trials + our_trials)
    stock_daemon = median(t.daemon for t in stock_trials)
    our_daemon = median(t.daemon for t in our_trials)
    print(
        "    CPU per call: client %.0f \u00b5s, stock daemon %.0f \u00b5s, ours %.0f \u00b5s; "
        "a daemon costing nothing: at most %.2fx"
        % (client * 1e6, stock_daemon * 1e6, our_daemon * 1e6, (client + stock_daemon) / client)
    )


STREAM_ITEMS = 5000
STREAM_CHUNKS = 16
STREAM_TRIALS = 5


def items_per_second(proxy, method, *args):
    start = time.perf_counter()
    items = 0
    for _ in getattr(proxy, method)(*args):
        items += 1
    return items / (time.perf_counter() - start)


def streams(ours_uri):
    """Streamed items/s from the stock Python client (msgpack): small items
    and 1 MB items, ours against stock, in alternating trials."""
    config.SERIALIZER = "msgpack"
    process, stock_uri = start_stock_daemon()
    try:
        for what, method, args in [
            ("small items", "count", (STREAM_ITEMS,)),
            ("1 MB items", "chunks", (STREAM_CHUNKS, BULK_BYTES)),
        ]:
            ratios, ours_rates, stock_rates = [], [], []
            for _ in range(STREAM_TRIALS):
                with Pyro5.api.Proxy(ours_uri) as ours, Pyro5.api.Proxy(stock_uri) as stock:
                    stock_rates.append(items_per_second(stock, method, *args))
                    ours_rates.append(items_per_second(ours, method, *args))
                    ratios.append(ours_rates[-1] / stock_rates[-1])
            ratios.sort()
            print(
                "%-52s %9.0f items/s (stock %.0f)   %.2fx (trials %.2f-%.2fx)"
                % (
                    "  Python client, stream of %s" % what,
                    median(ours_rates),
                    median(stock_rates),
                    ratios[len(ratios) // 2],
                    ratios[0],
                    ratios[-1],
                )
            )
    finally:
        process.kill()
        process.wait()


def main():
    config.SERIALIZER = "serpent"
    process, stock_uri = start_stock_daemon()
    try:
        with Pyro5.api.Proxy(sys.argv[1]) as ours, Pyro5.api.Proxy(stock_uri) as stock:
            for _ in range(300):  # warm up both
                ours.echo("hello")
                stock.echo("hello")
            ours_best = stock_best = 0.0
            for _ in range(TRIALS):
                ours_best = max(ours_best, calls_per_second(ours))
                stock_best = max(stock_best, calls_per_second(stock))
    finally:
        process.kill()
        process.wait()
    print()
    print("%-52s %10.0f calls/s" % ("Python Pyro5 %s client -> pyrolab-host daemon" % Pyro5.__version__, ours_best))
    print("%-52s %10.0f calls/s" % ("Python Pyro5 client -> stock Pyro5 daemon", stock_best))
    print("%-52s %9.1fx" % ("  pyrolab-host vs stock Pyro5 daemon", ours_best / stock_best))


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve_stock_daemon()
    elif sys.argv[1:2] == ["--bulk"]:
        bulk(sys.argv[2])
    elif sys.argv[1:2] == ["--streams"]:
        streams(sys.argv[2])
    else:
        main()
