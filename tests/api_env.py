"""What the API tests share: a small dataset, a server fixture, and a fetch helper."""

import os
import socket

import psutil
import pytest

from benchmarks.lib import api_clients as clients
from benchmarks.lib import api_server, datacache, itemgen, sources

N = 60
LIMIT = 10  # 6 pages of 10 items
CLIENTS = sorted(clients.CLIENTS)
FAST_RETRY = clients.Retry(attempts=5, backoff=0.01, max_wait=2.0, timeout=10.0, deadline=60.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    if "STAC_BENCH_DATA_DIR" not in os.environ:
        os.environ["STAC_BENCH_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    return datacache.ensure_dataset(N)


def new_api(root, **proxy):
    return api_server.StacApi(sources.source_path(root, "feature_collection"),
                               itemgen.make_collection(itemgen.make_items(N)), **proxy)


@pytest.fixture(scope="module")
def api(root):
    with new_api(root) as server:
        yield server


@pytest.fixture
def clean(api):
    api.configure(latency_ms=0, jitter=0.2, fault=None, fault_rate=0.0, fault_match=None, fault_limit=None,
                  retry_after=0, cache=True, reset_stats=True)
    return api


def workers(strategy, pooled=3):
    """The worker count a test gives ``strategy``: ``pooled`` where its workers rule takes one."""
    return pooled if clients.takes_concurrency(strategy) else 1


def fetch(api, strategy, concurrency=None, retry=FAST_RETRY):
    """Every item with client ``strategy``, from a StacApi or a URL."""
    url = api if isinstance(api, str) else api.url
    return clients.fetch_all(strategy, url, itemgen.COLLECTION_ID, LIMIT, concurrency or workers(strategy), retry)


def children():
    return [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def port_closed(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0
