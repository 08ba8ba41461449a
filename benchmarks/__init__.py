"""asv benchmarks for stac-manager: the four suites on top, their helpers in ``lib``.

``file_ingest``, ``api_ingest``, ``output`` and ``pipeline`` are the suites: each class is a
scenario, each parameter row one benchmark.  ``lib`` holds what they share, in layers that
import only downward (see ``lib/__init__.py``).  Nothing happens when this package is imported.
"""
