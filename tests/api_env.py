"""What the API tests share: the dataset size, the server and fetch helpers (fixtures: conftest)."""

import socket

import psutil

from benchmarks.lib import api_clients as clients
from benchmarks.lib import api_server, itemgen, sources

N = 60
LIMIT = 10  # 6 pages of 10 items
CLIENTS = sorted(clients.CLIENTS)
FAST_RETRY = clients.Retry(attempts=5, backoff=0.01, max_wait=2.0, timeout=10.0, deadline=60.0)


def new_api(root, **proxy):
    return api_server.StacApi(sources.source_path(root, "feature_collection"),
                               itemgen.make_collection(itemgen.make_items(N)), **proxy)


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
