"""The stock Python Pyro5 client (serpent) looking names up in a
pyrolab-host name server and in a stock Pyro5 name server, in alternating
trials (median of each). Used by the ns_lookup benchmark.

Usage: ns_compare.py OURS_PORT STOCK_PORT NAMES
"""

import statistics
import sys
import time

import Pyro5.api
from Pyro5 import config

TRIALS = 5
LOOKUPS = 2000


def lookups_per_second(ns, names):
    start = time.perf_counter()
    for i in range(LOOKUPS):
        ns.lookup("lab.instrument%d" % (i % names))
    return LOOKUPS / (time.perf_counter() - start)


def main():
    config.SERIALIZER = "serpent"
    ours_port, stock_port, names = (int(a) for a in sys.argv[1:4])
    ours = Pyro5.api.locate_ns("127.0.0.1", ours_port)
    stock = Pyro5.api.locate_ns("127.0.0.1", stock_port)
    for _ in range(200):  # warm up both
        ours.lookup("lab.instrument0")
        stock.lookup("lab.instrument0")
    ours_rates, stock_rates = [], []
    for _ in range(TRIALS):
        ours_rates.append(lookups_per_second(ours, names))
        stock_rates.append(lookups_per_second(stock, names))
    ours_rate, stock_rate = statistics.median(ours_rates), statistics.median(stock_rates)
    print("%-56s %10.0f lookups/s" % ("Python Pyro5 %s client -> pyrolab-host name server" % Pyro5.__version__, ours_rate))
    print("%-56s %10.0f lookups/s" % ("Python Pyro5 client -> stock Pyro5 name server", stock_rate))
    print("%-56s %9.1fx" % ("  pyrolab-host vs stock Pyro5 (Python client)", ours_rate / stock_rate))


if __name__ == "__main__":
    main()
