"""A real STAC API on loopback: ``rustac serve`` behind the latency/fault proxy (``api_proxy``).

``StacApi`` starts two processes, both bound to 127.0.0.1 only:

* ``rustac serve`` (the STAC API server shipped in the ``rustac`` wheel, in-memory
  backend) loaded with a collection and its items.  It is started with
  ``--addr <proxy url>``, so every link it writes (``next``, ``self``, ...)
  already points at the proxy: clients never leave the proxy.
* the proxy (``api_proxy.py`` run as a script), which adds latency, injects faults
  and replays cached responses; ``cache=False`` sends every request to rustac.

The proxy is reconfigured at run time (``configure``) and reports what it did
(``stats``, ``timeline``); its control paths never get latency or faults.  Both
children die with the process that started them (PR_SET_PDEATHSIG), and ``stop()``
(idempotent, also at interpreter exit and by finalizer) ends them.
"""

import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import weakref
from pathlib import Path

from .children import die_with_parent, kill_group

HOST = "127.0.0.1"
CONTROL = "/__proxy__"
PROXY_SCRIPT = Path(__file__).resolve().with_name("api_proxy.py")
#: Attempts to find two free ports and start both processes on them.
START_ATTEMPTS = 5

DEFAULT_PROXY = {
    "latency_ms": 0.0,   # mean added latency per request
    "jitter": 0.2,       # latency is uniform in [1 - jitter, 1 + jitter] x latency_ms
    "fault": None,       # None, "429", "500" or "drop"
    "fault_rate": 0.0,   # probability that a (matching) request gets the fault
    "fault_match": None,  # a regex: only requests whose "path?query body" it matches
    "fault_limit": None,  # at most this many faults in all (None: no limit)
    "retry_after": 1,    # the Retry-After header of a 429, whole seconds
    "seed": 20260124,
    "cache": True,
}


def rustac_executable():
    """The ``rustac`` CLI of this interpreter's environment (the wheel installs it there)."""
    candidate = Path(sys.executable).parent / "rustac"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("rustac")
    if found is None:
        raise NotImplementedError("no rustac executable: install the rustac wheel")
    return found


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _stop_all(procs, tmpdir):
    for proc in procs:
        kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
    procs.clear()
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)


def http_json(method, url, body=None, timeout=10.0):
    """One JSON request with urllib (no retries); the decoded response."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _readline(stream, timeout):
    result = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].decode() if result else ""


def _drain(proc):
    kill_group(proc, grace=0.5)
    with contextlib.suppress(Exception):
        return proc.log.read_text(errors="replace")[-2000:]
    return ""


class StacApi:
    """``rustac serve`` behind the fault-injecting proxy; a context manager.

    ``items_path``: a JSON FeatureCollection (the ``feature_collection`` source);
    ``collection``: the collection, a dict or the path of its JSON file.  ``url`` is
    the proxy's address: give it to clients.  Start it from the thread that outlives it
    (PR_SET_PDEATHSIG follows the starting thread).
    """

    def __init__(self, items_path, collection, startup_timeout=60.0, **proxy):
        _check_options(proxy)
        self.items_path = str(items_path)
        self.collection = collection
        self.startup_timeout = startup_timeout
        self.proxy_config = {**DEFAULT_PROXY, **proxy}
        self.url = self.upstream = None
        self.proxy_port = self.upstream_port = None
        self._procs = []
        self._tmpdir = None
        self._finalizer = None

    # lifecycle
    def start(self):
        if self._procs:
            return self
        self._tmpdir = tempfile.mkdtemp(prefix="stacapi-")
        self._finalizer = weakref.finalize(self, _stop_all, self._procs, self._tmpdir)
        atexit.register(self.stop)
        try:
            collection_file = self._collection_file()
            logs = ""
            for _ in range(START_ATTEMPTS):  # another process may take a port first: try new ones
                if self._start_on_new_ports(collection_file):
                    return self
                logs = "\n".join(f"{p.log.name}: {_drain(p)}" for p in self._procs)
                _stop_all(self._procs, None)
            raise RuntimeError(f"rustac serve + proxy did not start ({START_ATTEMPTS} attempts); "
                               f"last logs:\n{logs}")
        except BaseException:
            self.stop()
            raise

    def _collection_file(self):
        if isinstance(self.collection, dict):
            path = Path(self._tmpdir) / "collection.json"
            path.write_text(json.dumps(self.collection), encoding="utf-8")
            return path
        path = Path(self.collection)
        self.collection = json.loads(path.read_text(encoding="utf-8"))
        return path

    def _start_on_new_ports(self, collection_file):
        self.upstream_port, self.proxy_port = free_port(), free_port()
        self.url = f"http://{HOST}:{self.proxy_port}"
        self.upstream = f"http://{HOST}:{self.upstream_port}"
        # Both start at once (each takes ~0.3 s to start).
        proxy = self._spawn_proxy()
        rustac = self._spawn("rustac", [
            rustac_executable(), "serve", "--addr", self.url, "--bind",
            f"{HOST}:{self.upstream_port}", "--use-duckdb", "false",
            str(collection_file), self.items_path])
        return self._proxy_ready(proxy) and self._rustac_ready(rustac)

    def _spawn(self, name, argv, **kw):
        # Logs go to files: a pipe nobody reads would block the child once full.
        log = Path(self._tmpdir) / f"{name}.log"
        parent = os.getpid()
        with open(log, "ab") as err:
            kw.setdefault("stdout", err)
            proc = subprocess.Popen(argv, start_new_session=True, stderr=err,
                                    preexec_fn=lambda: die_with_parent(parent), **kw)
        proc.log = log
        self._procs.append(proc)
        return proc

    def _spawn_proxy(self):
        config = {**self.proxy_config, "upstream": self.upstream, "port": self.proxy_port,
                  "host": HOST, "control": CONTROL}
        return self._spawn("proxy", [sys.executable, str(PROXY_SCRIPT), json.dumps(config)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _proxy_ready(self, proc):
        line = _readline(proc.stdout, self.startup_timeout)
        if line.strip() == str(self.proxy_port):
            return True
        try:
            proc.wait(5)  # it exits when its port was taken meanwhile: try again
            return False
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"proxy did not start: {line!r} {_drain(proc)}") from None

    def _rustac_ready(self, proc):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = _drain(proc)
                if "in use" in log.lower():  # its port was taken meanwhile: try again
                    return False
                raise RuntimeError(f"rustac serve exited ({proc.returncode}): {log}")
            if port_open(self.upstream_port):
                try:
                    http_json("GET", f"{self.upstream}/collections/{self.collection['id']}", timeout=2)
                    return True
                except (OSError, ValueError):
                    pass
            time.sleep(0.01)
        raise RuntimeError(f"rustac serve not ready after {self.startup_timeout} s: {_drain(proc)}")

    def stop(self):
        if self._finalizer is not None:
            self._finalizer()  # runs _stop_all once
            self._finalizer = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def pids(self):
        return [p.pid for p in self._procs]

    @property
    def ports(self):
        return [p for p in (self.proxy_port, self.upstream_port) if p]

    @property
    def rustac_pid(self):
        """The pid of ``rustac serve`` (the upstream), or None when stopped."""
        return self._procs[1].pid if len(self._procs) > 1 else None

    # proxy control
    def configure(self, **changes):
        """Change latency/faults/cache at run time (``reset_stats=True`` zeroes counters and timeline)."""
        reset = changes.pop("reset_stats", False)
        _check_options(changes)
        self.proxy_config.update(changes)
        return http_json("POST", f"{self.url}{CONTROL}/config", {**changes, "reset_stats": reset})

    def stats(self):
        return http_json("GET", f"{self.url}{CONTROL}/stats")

    def timeline(self):
        """One record per request since the last reset: method, path, start, end, delay, status."""
        return http_json("GET", f"{self.url}{CONTROL}/timeline")

    def clear_cache(self, match=None):
        """Forget cached responses: all, or those whose "path?query body" matches the regex ``match``."""
        return http_json("POST", f"{self.url}{CONTROL}/cache/clear", {"match": match})


def _check_options(options):
    unknown = set(options) - set(DEFAULT_PROXY)
    if unknown:
        raise TypeError(f"unknown proxy options {sorted(unknown)}")
