#!/usr/bin/env python3
"""Pyro5's own network tests, pointed at pyrolab-host (and, as the control,
at stock Pyro5 in its own process).

Fetches the pinned Pyro5 sdist (checked against its SHA-256), copies its
tests next to conftest.py (which re-points them) and runs the network test
classes with pytest, once per serializer.

  run.py --target pyrolab-host --host-binary B --plugin-dir D --check
      runs against pyrolab-host with every serializer (or --serializer S)
      and compares with expected.txt: exit 1 if a test fails that is not
      listed there for that serializer, or a listed one now passes
  run.py --table --host-binary B --plugin-dir D
      runs both targets with every serializer and prints the Markdown
      table of docs/conformance.md

Needs Python with Pyro5 5.17, msgpack and pytest (tests/python/requirements.txt).
"""

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

PYRO5_VERSION = "5.17"
SDIST = "pyro5-%s.tar.gz" % PYRO5_VERSION
SDIST_SHA256 = "cfac69638d80943aff9cc5f1466755dd0fef8aed0bb4bda41b5eb045818ce6fc"

# The network test classes: those that start a daemon and talk to it.
SELECTED = [
    "test_server.py::TestServerBrokenHandshake",
    "test_server.py::TestServerOnce",
    "test_server.py::TestServerThreadNoTimeout",
    "test_server.py::TestServerMultiplexNoTimeout",
    "test_server_timeout.py",
    "test_echoserver.py::TestEchoserver",
    "test_naming.py::TestOfflineNameServer",
    "test_naming.py::TestOfflineNameServerTestsSqlStorage",
]
# The name server's network tests: they bind it to the machine's own
# non-loopback address and find it by UDP broadcast, so they run inside a
# network namespace of their own (test_host_namespace).
NAMESPACED = [
    "test_naming.py::TestBCSetup",
    "test_naming.py::TestNameServer",
    "test_naming.py::TestNameServer0000",
]
# The namespace's one address (veth0; its peer veth1 has none).
NAMESPACE_ADDRESS = "10.213.7.1/24"
SERIALIZERS = ["serpent", "json", "msgpack"]
TARGETS = ["pyrolab-host", "pyro5"]
PYTEST_TIMEOUT = 900


def fetch_sdist(cache):
    """The Pyro5 sdist in `cache`, downloaded with pip if not there yet."""
    path = os.path.join(cache, SDIST)
    if not os.path.isfile(path) or sha256(path) != SDIST_SHA256:
        os.makedirs(cache, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--no-binary", ":all:", "Pyro5==%s" % PYRO5_VERSION, "-d", cache],
            check=True, timeout=600)
    digest = sha256(path)
    if digest != SDIST_SHA256:
        sys.exit("%s has SHA-256 %s, not the pinned %s" % (path, digest, SDIST_SHA256))
    return path


def sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def prepare_tests(sdist, workdir):
    """Pyro5's tests/ unpacked into `workdir`, with the runner's files beside them."""
    prefix = "pyro5-%s/tests/" % PYRO5_VERSION
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                name = member.name[len(prefix):]
                if "/" in name:
                    continue
                with archive.extractfile(member) as source, open(os.path.join(workdir, name), "wb") as target:
                    shutil.copyfileobj(source, target)
    for name in ["conftest.py", "stock_server.py"]:
        shutil.copy(os.path.join(HERE, name), workdir)


@contextlib.contextmanager
def test_host_namespace():
    """A network namespace that is a test host of its own: loopback and a
    veth pair, one end with an address and the default route, so that
    broadcasts go out there and come back in, and nothing leaves it.
    Deleted afterwards. Needs root and iproute2 (`ip`)."""
    name = "pyrolab-conformance-%d" % os.getpid()
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "-n", name, "link", "set", "lo", "up"],
        ["ip", "-n", name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"],
        ["ip", "-n", name, "addr", "add", NAMESPACE_ADDRESS, "dev", "veth0"],
        ["ip", "-n", name, "link", "set", "veth0", "up"],
        ["ip", "-n", name, "link", "set", "veth1", "up"],
        ["ip", "-n", name, "route", "add", "default", "dev", "veth0"],
    ]
    try:
        for step in steps:
            done = subprocess.run(step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
            if done.returncode != 0:
                sys.exit("cannot make the test host's network namespace (`%s`: %s); the name server's "
                         "network tests need root and iproute2" % (" ".join(step), done.stdout.strip()))
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "del", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)


def run_tests(workdir, target, serializer, args):
    """{test id: (outcome, message)} of the selected tests, the name
    server's network tests in a namespace of their own."""
    results = run_pytest(workdir, target, serializer, args, SELECTED, [], "host")
    with test_host_namespace() as inside:
        results.update(run_pytest(workdir, target, serializer, args, NAMESPACED, inside, "namespace"))
    return results


def run_pytest(workdir, target, serializer, args, tests, prefix, part):
    """{test id: (outcome, message)} of one pytest run of `tests`,
    its command after `prefix`."""
    report = os.path.join(workdir, "report-%s-%s-%s.xml" % (target, serializer, part))
    env = dict(os.environ, CONFORMANCE_TARGET=target, CONFORMANCE_SERIALIZER=serializer,
               PYTHONDONTWRITEBYTECODE="1")
    if target == "pyrolab-host":
        env["CONFORMANCE_HOST_BINARY"] = os.path.abspath(args.host_binary)
        env["CONFORMANCE_PLUGIN_DIR"] = os.path.abspath(args.plugin_dir)
    command = prefix + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rN",
                        "-o", "junit_family=xunit2", "--junitxml", report] + tests
    completed = subprocess.run(command, cwd=workdir, env=env, timeout=PYTEST_TIMEOUT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not os.path.isfile(report):
        sys.exit("pytest wrote no report (exit %d):\n%s" % (completed.returncode, completed.stdout))
    return read_report(report)


def read_report(path):
    results = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        module, _, cls = case.get("classname").partition(".")
        test = "%s.py::%s::%s" % (module, cls, case.get("name"))
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message") or ""
                break
            if child.tag == "skipped":
                outcome, message = "skipped", child.get("message") or ""
        results[test] = (outcome, message.splitlines()[0] if message else "")
    return results


def read_expected(path):
    """{test id: (serializers, reason)} from expected.txt."""
    expected = {}
    with open(path) as file:
        for number, line in enumerate(file, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = [field.strip() for field in line.split("|")]
            if len(fields) != 3:
                sys.exit("%s:%d: expected 'serializers | test | reason'" % (path, number))
            serializers, test, reason = fields
            chosen = SERIALIZERS if serializers == "*" else serializers.split(",")
            unknown = set(chosen) - set(SERIALIZERS)
            if unknown:
                sys.exit("%s:%d: unknown serializer %s" % (path, number, ", ".join(sorted(unknown))))
            expected[test] = (chosen, reason)
    return expected


def check(results, serializer, expected):
    """Lines saying where `results` differ from what expected.txt says."""
    problems = []
    for test, (outcome, message) in sorted(results.items()):
        listed = test in expected and serializer in expected[test][0]
        if outcome == "failed" and not listed:
            problems.append("FAILED (not in expected.txt) %s: %s" % (test, message))
        elif outcome == "passed" and listed:
            problems.append("PASSES (listed in expected.txt, take it out) %s" % test)
    for test, (serializers, _) in sorted(expected.items()):
        if serializer in serializers and test not in results:
            problems.append("NOT RUN (listed in expected.txt) %s" % test)
    return problems


def summary(results):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome, _ in results.values():
        counts[outcome] += 1
    return counts


def table(all_results, expected):
    """The Markdown table of docs/conformance.md."""
    columns = [(target, serializer) for target in TARGETS for serializer in SERIALIZERS]
    tests = sorted({test for results in all_results.values() for test in results})
    mark = {"passed": "pass", "failed": "**fail**", "skipped": "n/a"}
    lines = ["| test | " + " | ".join("%s %s" % column for column in columns) + " | why (pyrolab-host) |",
             "| --- |" + " --- |" * (len(columns) + 1)]
    for test in tests:
        cells = [mark[all_results[column].get(test, ("skipped", ""))[0]] for column in columns]
        reason = expected.get(test, (None, ""))[1]
        skipped = next((all_results[c][test][1] for c in columns
                        if all_results[c].get(test, ("", ""))[0] == "skipped"), "")
        lines.append("| `%s` | %s | %s |" % (test, " | ".join(cells), reason or skipped))
    totals = []
    for column in columns:
        counts = summary(all_results[column])
        totals.append("%d / %d" % (counts["passed"], counts["passed"] + counts["failed"]))
    lines.append("| **passed / run** | " + " | ".join(totals) + " | |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=TARGETS, default="pyrolab-host")
    parser.add_argument("--serializer", choices=SERIALIZERS, action="append",
                        help="run with this serializer (repeatable; default: all)")
    parser.add_argument("--host-binary", default=os.path.join(REPO, "target", "debug", "pyrolab-host"))
    parser.add_argument("--plugin-dir", default=os.path.join(REPO, "target", "debug"),
                        help="the directory holding libpyro5_test_objects")
    parser.add_argument("--cache", default=os.path.join(REPO, "target", "conformance"),
                        help="where the Pyro5 sdist is kept")
    parser.add_argument("--check", action="store_true", help="compare with expected.txt")
    parser.add_argument("--table", action="store_true", help="run both targets, print the table")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    sdist = fetch_sdist(args.cache)
    expected = read_expected(os.path.join(HERE, "expected.txt"))
    serializers = args.serializer or SERIALIZERS
    targets = TARGETS if args.table else [args.target]
    all_results = {}
    problems = []
    for target in targets:
        for serializer in serializers:
            with tempfile.TemporaryDirectory(prefix="pyro5-conformance-") as workdir:
                prepare_tests(sdist, workdir)
                results = run_tests(workdir, target, serializer, args)
            all_results[(target, serializer)] = results
            counts = summary(results)
            print("%s, %s: %d passed, %d failed, %d not re-pointable"
                  % (target, serializer, counts["passed"], counts["failed"], counts["skipped"]), flush=True)
            if args.check and target == "pyrolab-host":
                for problem in check(results, serializer, expected):
                    problems.append("%s: %s" % (serializer, problem))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"%s %s" % key: value for key, value in all_results.items()}, file, indent=1)
    if args.table:
        print(table(all_results, expected))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
