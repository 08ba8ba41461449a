"""The suites' helpers, in layers: a module imports only from the layers below it.

1. ``settings`` (the environment's knobs), ``strategies`` (the strategy table),
   ``children`` (child processes that die with their parent), ``instructions`` (callgrind's
   counts of rows, in one valgrind process; its C helper ``callgrind_client.c``, the process
   under valgrind ``callgrind_child``), ``allocations`` (tracemalloc's peaks of rows, in one
   native process): standard library only.
2. ``items``: the seeded item generator, item ids and digests.
3. ``formats`` (serialisation, writers) and ``loaders`` (work units, decoders).
4. ``sources``: the table of on-disk sources (path, writer, units, files).
5. ``datacache``: the verified dataset cache; ``validity``: documents known valid.
6. ``checks``: the item check every run passes; ``readback``: checks of what a writer wrote;
   ``largefiles``: the few-large-files source, made from a dataset.
7. ``subject``: stac-manager's API across its history; ``runners``: the harness designs.
8. ``scenario``: the base of every benchmark class and the shared measurements; ``counts``:
   ``track_instructions`` and ``track_alloc_mb`` of the history classes, once per commit.
9. ``api_paging``, ``api_aiohttp``, ``api_clients``, ``api_server`` (+ the ``api_proxy``
   script): the STAC API suite's clients and loopback server.
"""
