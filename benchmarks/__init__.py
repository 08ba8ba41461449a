"""asv benchmarks for stac-manager: the four suites on top, their helpers in ``lib``.

``file_ingest``, ``api_ingest``, ``output`` and ``pipeline`` are the suites: each class is a
scenario, each parameter row one benchmark.  ``scale`` runs their stac-manager rows at 1,000 to
100,000 items (``tools.bench scale``); ``large_files`` reads the PRD's few large Parquet files.  ``lib`` holds what they share, in layers that
import only downward (see ``lib/__init__.py``).  Nothing happens when this package is imported.
"""
