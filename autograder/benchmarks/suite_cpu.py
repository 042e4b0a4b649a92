"""Where a kit-test run's CPU goes, test by test and process by process: what ``make test``'s time is made of.

    .venv/bin/python autograder/benchmarks/suite_cpu.py [--top 25] [--by-kind 5] [-- PYTEST ARGS ...]

As root, with Linux process accounting (``apt-get install acct``): runs pytest (by default ``make test``'s kit tests
on two xdist workers) with accounting on, so that every process that ends during the run leaves its CPU time, and
with two small helpers on ``PYTHONPATH`` (in a temporary folder):

- a ``sitecustomize`` that notes each Python process's pid, command line and the test it serves
  (``PYTEST_CURRENT_TEST``, which subprocesses inherit; sandboxed children get a clean environment and count for
  the process that started them);
- a plugin in the xdist workers that notes, for each test, the last pid the kernel gave out when it started (a
  process forked from the worker with a larger pid belongs to that test or a later one) and the worker's own CPU
  time while it ran. A long-lived process a worker starts (a zygote, a forkserver) counts, with every child it
  forks, for the test that started it; accounting stays on a few seconds after pytest's end, for those that end
  after the workers (a Python process's parent is the one it had at its start, which the ``sitecustomize`` notes:
  accounting notes the parent at the end, init's for an orphan).

It prints the run's wall time and CPU seconds: the workers' own (in-process tests), fresh interpreters (by command
line) and children forked without exec, then the CPU of each test file and of the costliest tests (their own and
their processes'). Comparing two commits: run it on each, alternating, on the same machine.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKE_TEST = ["-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadgroup", "autograder/kit_tests",
             *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("autograder/material/*/kit_tests"))]

LINGER = 5.0  # seconds

SITE = """
import json as _json, os as _os
try:
    with open("/proc/self/cmdline", "rb") as _f:
        _argv = [_a.decode(errors="replace") for _a in _f.read().split(b"\\0")[:6]]
    _line = _json.dumps({"pid": _os.getpid(), "ppid": _os.getppid(), "test": _os.environ.get("PYTEST_CURRENT_TEST", ""),
                         "argv": _argv})
    _fd = _os.open(__LOG__, _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o666)
    _os.write(_fd, (_line + "\\n").encode())
    _os.close(_fd)
except Exception:
    pass
"""
PLUGIN = """
import json, os, time

_started = {}


def _note(entry):
    fd = os.open(__LOG__, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    os.write(fd, (json.dumps(entry) + "\\n").encode())
    os.close(fd)


def pytest_runtest_logstart(nodeid, location):
    if os.environ.get("PYTEST_XDIST_WORKER") is None and "PYTEST_XDIST_TESTRUNUID" in os.environ:
        return
    with open("/proc/loadavg") as f:
        last_pid = int(f.read().split()[4])
    times = os.times()
    _started[nodeid] = times.user + times.system
    _note({"worker": os.getpid(), "test": nodeid, "last_pid": last_pid})


def pytest_runtest_logfinish(nodeid, location):
    if nodeid in _started:
        times = os.times()
        _note({"worker": os.getpid(), "test": nodeid, "own_cpu": times.user + times.system - _started.pop(nodeid),
               "at": time.time()})
"""


def accounting(path: Path | None) -> None:
    subprocess.run(["accton", str(path) if path else "off"], check=True, capture_output=True)


def records(path: Path) -> dict[int, dict]:
    """pid -> ``{comm, cpu, ppid, forked}`` of every process that ended while accounting was on (the last one with
    that pid)."""
    out = subprocess.run(["dump-acct", str(path)], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        f = [x.strip() for x in line.split("|")]
        found[int(f[9])] = {"comm": f[0], "cpu": (float(f[2]) + float(f[3])) / os.sysconf("SC_CLK_TCK"),
                            "ppid": int(f[10]), "forked": "F" in f[11]}
    return found


def short(nodeid: str) -> str:
    return nodeid.split("@")[0].replace("autograder/kit_tests/", "").replace("autograder/material/", "")


def analyse(procs: dict[int, dict], main_pid: int | None, starts: dict[int, dict], tests: dict[int, list],
            own: dict[str, float], top: int, wall: float, by_kind: int = 0) -> None:
    """Print the figures (see the module's docstring)."""
    workers = set(tests)

    def owner(pid: int) -> tuple[str, str]:
        """(test, kind) for a process: the nearest logged ancestor's test, or the test its worker ran when the
        worker's child on the way was made."""
        chain, seen = pid, 0
        while chain and seen < 64:
            logged = starts.get(chain)
            if logged and logged["test"]:
                return logged["test"].rsplit(" (", 1)[0], "subprocess"
            parent = procs.get(chain, {}).get("ppid") or 0
            if parent in workers:
                pids = [p for p, _t in tests[parent]]
                index = bisect.bisect_left(pids, chain) - 1  # the last test begun before it
                return (tests[parent][index][1] if index >= 0 else "(before the first test)"), "forked by a worker"
            chain, seen = parent, seen + 1
        return "(outside the tests)", "other"

    by_test, kinds = collections.Counter(own), collections.Counter()
    counts, kind_files = collections.Counter(), collections.defaultdict(collections.Counter)
    for pid, proc in procs.items():
        if pid == main_pid:
            kinds["pytest's main process"] += proc["cpu"]
            continue
        if pid in workers:
            kinds["the test processes' own work (in-process tests)"] += proc["cpu"]
            continue
        test, how = owner(pid)
        if how == "other":
            continue
        by_test[test] += proc["cpu"]
        if proc["forked"]:
            kind = f"forked without exec ({proc['comm']})"
        elif pid in starts:
            kind = "fresh Python: " + " ".join(" ".join(starts[pid]["argv"][1:4]).split())[:60]
        elif proc["comm"].startswith("python"):
            kind = "fresh Python with -I or a clean environment (zygotes, cold children)"
        else:
            kind = f"another program ({proc['comm'].split(':')[0]})"  # (a jail's init is kvkit:PID)
        kinds[kind] += proc["cpu"]
        counts[kind] += 1
        kind_files[kind][short(test).split("::")[0]] += proc["cpu"]
    total = sum(kinds.values())
    print(f"wall {wall:.0f} s, {total:.0f} CPU-s in the run's processes ({total / wall:.2f} cores busy on average)")
    print("\nby kind of process (CPU-s, processes):")
    for kind, cpu in kinds.most_common(top):
        print(f"{cpu:8.1f} {counts[kind] or '':>6} {kind}")
        if by_kind and kind in kind_files:
            print("".join(f"{'':16}{c:6.1f} {name}\n" for name, c in kind_files[kind].most_common(by_kind)), end="")
    files = collections.Counter()
    for test, cpu in by_test.items():
        files[short(test).split("::")[0]] += cpu
    print("\nby test file (CPU-s: the workers' own while its tests ran, and every process its tests started):")
    for name, cpu in files.most_common(top):
        print(f"{cpu:8.1f} {name}")
    print("\ncostliest tests (CPU-s):")
    for test, cpu in by_test.most_common(top):
        print(f"{cpu:8.1f} {short(test)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    parser.add_argument("--by-kind", type=int, default=0, metavar="N",
                        help="under each kind of process, the N test files whose processes of that kind cost most")
    parser.add_argument("pytest_args", nargs="*", help="pytest's arguments (default: make test's)")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("accton") or not shutil.which("dump-acct"):
        print("suite_cpu: needs root and Linux process accounting (apt-get install acct)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kvkit-suite-cpu-") as scratch:
        folder = Path(scratch)
        folder.chmod(0o755)
        starts_log, tests_log, pacct = folder / "starts.jsonl", folder / "tests.jsonl", folder / "pacct"
        (folder / "sitecustomize.py").write_text(SITE.replace("__LOG__", repr(str(starts_log))))
        (folder / "kvkit_suite_cpu_plugin.py").write_text(PLUGIN.replace("__LOG__", repr(str(tests_log))))
        starts_log.touch(mode=0o666)
        starts_log.chmod(0o666)  # Python processes of other users (the kit tests' unprivileged runs) log too
        pacct.touch()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [scratch, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "pytest", "-p", "kvkit_suite_cpu_plugin", *(args.pytest_args or MAKE_TEST)]
        accounting(pacct)
        started, began = time.perf_counter(), time.time()
        try:
            code = subprocess.run(command, cwd=ROOT, env=env).returncode
        finally:
            wall = time.perf_counter() - started
            time.sleep(LINGER)  # processes that end just after the workers (a forkserver) are accounted too
            accounting(None)
        starts = {}
        for line in starts_log.read_text().splitlines():
            entry = json.loads(line)
            starts[entry["pid"]] = entry
        tests, own, last = collections.defaultdict(list), collections.Counter(), {}
        for line in tests_log.read_text().splitlines() if tests_log.exists() else []:
            entry = json.loads(line)
            if "last_pid" in entry:
                tests[entry["worker"]].append((entry["last_pid"], entry["test"]))
            else:
                own[entry["test"]] += entry["own_cpu"]
                last[entry["worker"]] = max(last.get(entry["worker"], 0), entry["at"])
        procs, ours = records(pacct), set()
        for pid, proc in procs.items():  # accounting notes the parent at the end: an orphan's is init's
            if pid in starts and starts[pid].get("ppid"):
                proc["ppid"] = starts[pid]["ppid"]
        pytest_pid = next((p for p, s in starts.items() if s["argv"][1:3] == ["-m", "pytest"] and
                           "kvkit_suite_cpu_plugin" in s["argv"]), None)
        for pid in procs:  # the run's processes: descendants of its pytest
            chain, seen = pid, 0
            while chain and chain != pytest_pid and seen < 64:
                chain, seen = procs.get(chain, {}).get("ppid"), seen + 1
            if chain == pytest_pid:
                ours.add(pid)
        analyse({p: procs[p] for p in ours}, pytest_pid, starts, {w: sorted(t) for w, t in tests.items()}, own, args.top, wall,
                args.by_kind)
    if len(last) > 1:  # a worker that ends early leaves its core idle until the other ends
        print("\neach test process's last test ended after (s):",
              ", ".join(f"{at - began:.0f} ({pid})" for pid, at in sorted(last.items(), key=lambda item: item[1])))
    print(f"\npytest exited with {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
