"""API clients that give up: every request fails, the server dies after the first page, or it is gone.

One situation, one outcome: every client raises ``IncompleteFetch`` naming what is missing,
after a bounded number of requests (counted by the proxy or by a listener, never timed).
"""

import signal
import socket
import threading

import psutil
import pytest

from api_env import CLIENTS, LIMIT, fetch, new_api, workers
from benchmarks.lib import api_clients as clients

DEAD_RETRY = clients.Retry(attempts=3, backoff=0.0, timeout=10.0, deadline=60.0)


def first_request_bound(strategy, dropped=True):
    """Most requests a client may spend on a first request that always fails: ``attempts``, where
    aiohttp itself retries an idempotent request (aiohttp_split's GET of the collection) once more
    when the server drops the connection (RFC 9112 9.3.1.1)."""
    return DEAD_RETRY.attempts * (2 if dropped and strategy == "aiohttp_split" else 1)


def failed_pages_bound(strategy):
    """Most requests a client may spend once every request fails: ``attempts`` per page or window,
    and a pooled client stops after ``c`` failures in a row (``c - 1`` more may be in flight)."""
    return (2 * workers(strategy) - 1) * DEAD_RETRY.attempts


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["429", "500", "drop"])
@pytest.mark.parametrize("strategy", CLIENTS)
def test_every_client_gives_up_the_same_way_when_every_request_fails(clean, strategy, fault):
    clean.configure(fault=fault, fault_rate=1.0, retry_after=0)
    with pytest.raises(clients.IncompleteFetch) as info:
        fetch(clean, strategy, retry=DEAD_RETRY)
    assert info.value.missing and info.value.fetched == 0
    assert clean.stats()["requests"] <= first_request_bound(strategy, fault == "drop")


@pytest.fixture
def dying_api(api_dataset):
    """A server of its own, for a test to kill."""
    with new_api(api_dataset) as server:
        yield server


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", CLIENTS)
def test_every_client_stops_when_the_server_dies_after_the_first_page(dying_api, strategy):
    api = dying_api
    fetch(api, strategy)  # fills the proxy's cache
    api.clear_cache(match=r'"skip"')  # keep each search's first page (and the landing page, collection)
    rustac = psutil.Process(api.rustac_pid)
    rustac.send_signal(signal.SIGKILL)
    rustac.wait(10)
    api.configure(reset_stats=True)
    with pytest.raises(clients.IncompleteFetch) as info:
        fetch(api, strategy, retry=DEAD_RETRY)
    stats = api.stats()
    assert stats["status"].get("200", 0) >= 1  # the first page came (from the cache) ...
    assert 1 <= stats["status"].get("502", 0) <= failed_pages_bound(strategy)  # ... then a bounded few
    assert info.value.missing
    assert info.value.fetched >= (0 if strategy == "rustac" else LIMIT)  # rustac returns all or nothing


class DropServer:
    """127.0.0.1: accepts every connection and closes it at once, counting them (a server gone bad)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted, self.done = 0, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", CLIENTS)
def test_every_client_gives_up_on_a_server_that_is_gone(strategy):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(clients.IncompleteFetch):
        fetch(closed, strategy, retry=DEAD_RETRY)
    server = DropServer()
    try:
        with pytest.raises(clients.IncompleteFetch) as info:
            fetch(server.url, strategy, retry=DEAD_RETRY)
    finally:
        server.close()
    assert info.value.missing and info.value.fetched == 0
    assert 1 <= server.accepted <= first_request_bound(strategy)  # a connection per try of the first request
