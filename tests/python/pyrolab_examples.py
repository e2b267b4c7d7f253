"""What PyroLab's example client scripts do, step by step, against a running
lab: examples/library-catalog/client.py, examples/101.simpleserver/client.py,
examples/locking/client.py and examples/autoconnect/client.py in the PyroLab
repository (GPLv3; not copied here: these are the same calls, through the
same PyroLab 0.5 API, written for this test). Like the originals, they find
the name server with `locate_ns(host="localhost")`, so Pyro5's
PYRO_NS_PORT says where it is. Usage: pyrolab_examples.py EXAMPLE
"""

import sys

from pyrolab.api import Proxy, locate_ns


def library_catalog():
    with locate_ns(host="localhost") as ns:
        uri = ns.lookup("library")
    with Proxy(uri) as catalog:
        books = {
            "The Hobbit": 3,
            "The Lord of the Rings": 2,
            "Harry Potter": 3,
            "The Lightning Thief": 2,
            "C Programming": 2,
        }
        for book, number in books.items():
            catalog.add_book(book, number)
        print("Initial Catalog...")
        print(catalog.get_catalog(), "\n")
        catalog.checkout("The Hobbit")
        print(catalog.get_catalog(), "\n")
        catalog.checkout("C Programming", 2)
        print(catalog.get_catalog(), "\n")
        try:
            catalog.checkout("C Programming")
        except ValueError as e:
            print(e, "\n")
        try:
            catalog.checkin("Dune")
        except LookupError as e:
            print(e, "\n")
        try:
            catalog.checkout("Coding for Dummies")
        except LookupError as e:
            print(e)


def simpleserver():
    ns = locate_ns(host="localhost")
    uri = ns.lookup("test.SampleService")
    with Proxy(uri) as service:
        resp = service.echo("Hello, server!")
        print(type(resp), resp)
        resp = service.delayed_echo("This response will be delayed by 2 seconds.", 2)
        print(type(resp), resp)
        resp = service.multiply(4, 5, 100)
        print(type(resp), resp)


def locking():
    ns = locate_ns(host="localhost")
    uri = ns.lookup("test.SampleService")
    service1 = Proxy(uri)
    service2 = Proxy(uri)
    resp = service1.echo("Hello, server!")
    print(type(resp), resp)
    resp = service1.multiply(4, 5, 100)
    print(type(resp), resp)
    service1.lock()
    # The example ends here with the refusal as a traceback.
    service2.add(2, 3)


def autoconnect():
    ns = locate_ns(host="localhost")
    uri = ns.lookup("test.SampleAutoconnectInstrument")
    service = Proxy(uri)
    resp = service.autoconnect()
    print(type(resp), resp)
    resp = service.do_something()
    print(type(resp), resp)


if __name__ == "__main__":
    {
        "library-catalog": library_catalog,
        "101.simpleserver": simpleserver,
        "locking": locking,
        "autoconnect": autoconnect,
    }[sys.argv[1]]()
