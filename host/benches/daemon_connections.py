"""The Python side of the daemon_connections benchmark (see the doc comment
of daemon_connections.rs, which runs this script; it is not run by hand).

  serve thread|multiplex THREADPOOL_SIZE
      A stock Pyro5 daemon serving `sample` (one instance, as our daemons'
      `instancemode: single`) on 127.0.0.1, any free port; prints its URI,
      then serves until killed.

  clients URI PROCESSES THREADS SECONDS
      PROCESSES client processes of THREADS threads each, every thread with
      its own stock Pyro5 Proxy (serpent), all connected and warmed up
      before any starts; then all call echo("hello") for SECONDS, from one
      start time to one end time. Prints one line:
      RESULT calls=N seconds=S errors=E p50_us=X p99_us=Y

  worker URI THREADS
      One client process of `clients` (told when to start on its stdin).

Several processes, because one interpreter's threads take turns on its
lock: 256 threads in one process would measure the client's GIL, not the
server.
"""

import json
import select
import subprocess
import sys
import threading
import time

import Pyro5.api
from Pyro5 import config


@Pyro5.api.expose
class Sample:
    def echo(self, message):
        return "SERVER RECEIVED: " + message


def serve(servertype, threadpool_size):
    config.SERVERTYPE = servertype
    config.THREADPOOL_SIZE = threadpool_size
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    print(daemon.register(Sample(), "sample"), flush=True)
    daemon.requestLoop()


def worker(uri, threads):
    config.SERIALIZER = "serpent"
    results = [None] * threads
    connected = threading.Barrier(threads + 1)
    go = threading.Event()
    window = []

    def run(index):
        # A Pyro5 proxy belongs to the thread that made it.
        try:
            proxy = Pyro5.api.Proxy(uri)
            proxy._pyroBind()
            for _ in range(5):
                proxy.echo("hello")
        except Exception as error:
            results[index] = ([], 1, repr(error))
            connected.wait()
            return
        connected.wait()
        go.wait()
        start, end = window
        latencies = []
        errors = 0
        first_error = None
        now = time.monotonic()
        while now < start:
            time.sleep(min(start - now, 0.005))
            now = time.monotonic()
        while True:
            before = time.monotonic()
            if before >= end:
                break
            try:
                proxy.echo("hello")
            except Exception as error:
                errors += 1
                first_error = repr(error)
                break
            after = time.monotonic()
            if after <= end:
                latencies.append(int((after - before) * 1e6))
        proxy._pyroRelease()
        results[index] = (latencies, errors, first_error)

    runners = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for runner in runners:
        runner.start()
    connected.wait()
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    window.extend([float(line[1]), float(line[2])])
    go.set()
    for runner in runners:
        runner.join()
    latencies = [x for lat, _, _ in results for x in lat]
    errors = sum(err for _, err, _ in results)
    first_error = next((e for _, _, e in results if e), None)
    print(json.dumps({"errors": errors, "first_error": first_error, "latencies": latencies}), flush=True)


def read_line(process, deadline):
    """The next line from process, or exit if none comes by deadline."""
    remaining = deadline - time.monotonic()
    ready, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
    if not ready:
        sys.exit("a client process did not answer in time")
    return process.stdout.readline()


def clients(uri, processes, threads, seconds):
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", uri, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        deadline = time.monotonic() + 60
        for process in workers:
            if read_line(process, deadline).strip() != "ready":
                sys.exit("a client process failed to connect")
        # time.monotonic is the system-wide CLOCK_MONOTONIC on Linux: the
        # same clock in every process.
        start = time.monotonic() + 0.3
        end = start + seconds
        for process in workers:
            process.stdin.write("go %r %r\n" % (start, end))
            process.stdin.flush()
        latencies = []
        errors = 0
        first_error = None
        deadline = end + 60
        for process in workers:
            line = read_line(process, deadline)
            if not line:
                sys.exit("a client process died")
            result = json.loads(line)
            latencies.extend(result["latencies"])
            errors += result["errors"]
            first_error = first_error or result["first_error"]
        for process in workers:
            process.wait(timeout=30)
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    latencies.sort()

    def percentile(p):
        return latencies[round((len(latencies) - 1) * p)] if latencies else 0

    print(
        "RESULT calls=%d seconds=%r errors=%d p50_us=%d p99_us=%d"
        % (len(latencies), seconds, errors, percentile(0.50), percentile(0.99)),
        flush=True,
    )
    if first_error:
        print("FIRST ERROR " + first_error, flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif mode == "clients":
        clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "worker":
        worker(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("unknown mode " + mode)
