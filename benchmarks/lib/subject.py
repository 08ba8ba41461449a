"""stac-manager's API across its history: the shims every suite reaches it through.

A commit that lacks what a benchmark needs makes these raise ``NotImplementedError``, which asv
records as n/a in ``setup``; a commit that runs but returns the wrong items fails (the checks).
``preload`` imports stac-manager once per commit in asv's forkserver (see ``preloading``).
Standard library only: stac-manager is imported by name, never at this module's import.
"""

import asyncio
import dataclasses
import importlib
import inspect
import logging
import os
import sys

from .settings import preload_enabled


def import_subject(name):
    """Import ``name`` from stac-manager, or skip (n/a) if this commit lacks it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NotImplementedError(f"this stac-manager commit has no {name}: {exc}") from exc


def _first_module(*names):
    errors = []
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise NotImplementedError("this stac-manager commit has none of " + "; ".join(errors))


def workflow_context_class():
    """``WorkflowContext``: ``stac_manager.context`` until 06eac49, then ``stac_manager.core.context``."""
    return _first_module("stac_manager.core.context", "stac_manager.context").WorkflowContext


def failure_collector():
    """A fresh ``FailureCollector`` from wherever this commit keeps it, or None."""
    try:
        mod = _first_module("stac_manager.core.failures", "stac_manager.failures")
    except NotImplementedError:
        return None
    return mod.FailureCollector()


def checkpoint_manager(root, workflow_id="bench", collection_id="bench-collection"):
    """A ``CheckpointManager`` rooted in ``root`` (its constructor changed at 5e36482)."""
    cls = _first_module("stac_manager.core.checkpoints").CheckpointManager
    accepted = inspect.signature(cls).parameters
    if "checkpoint_root" in accepted:  # 5e36482 and later
        return cls(workflow_id=workflow_id, collection_id=collection_id, checkpoint_root=root)
    if "directory" in accepted:  # e777dad .. 5e36482
        return cls(directory=root, workflow_id=workflow_id)
    raise NotImplementedError(f"unknown CheckpointManager signature {list(accepted)}")


def make_context(checkpoints=None, data=None, workflow_id="bench"):
    """Build a ``WorkflowContext`` field by field (there is no ``create()`` in any commit)."""
    cls = workflow_context_class()
    values = {
        "workflow_id": workflow_id,
        "config": {},
        "logger": logging.getLogger("stac_manager_benchmarks"),
        "failure_collector": failure_collector(),
        "checkpoints": checkpoints,
        "data": dict(data or {}),
    }
    if not dataclasses.is_dataclass(cls):
        raise NotImplementedError(f"WorkflowContext is not a dataclass here: {cls!r}")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    unknown = [f.name for f in fields if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if unknown:
        raise NotImplementedError(f"WorkflowContext needs unknown fields {unknown}")
    return cls(**{f.name: values[f.name] for f in fields if f.name in values})


def config_fields(config_cls):
    """The field names a pydantic config class declares (v2 or v1)."""
    fields = getattr(config_cls, "model_fields", None) or getattr(config_cls, "__fields__", {})
    return set(fields)


def ingest_module():
    """``IngestModule`` with the ``mode``/``source`` + ``fetch(context)`` API (fb2117d and later)."""
    mod = import_subject("stac_manager.modules.ingest")
    cls = getattr(mod, "IngestModule", None)
    config_cls = getattr(mod, "IngestConfig", None)
    if config_cls is None:
        config_cls = getattr(import_subject("stac_manager.modules.config"), "IngestConfig", None)
    if cls is None or config_cls is None or not {"mode", "source"} <= config_fields(config_cls):
        raise NotImplementedError("IngestModule predates the mode/source API (fb2117d)")
    return cls, config_fields(config_cls)


def ingest_config(base, strategy, concurrency):
    """``base`` plus the Phase 2 ``concurrency``/``worker_strategy`` keys this commit accepts.

    stac-manager's pydantic configs silently ignore unknown keys, so support is
    read off the declared fields, never inferred from a call that did not fail.
    """
    _, fields = ingest_module()
    config = dict(base)
    worker = "queue" if strategy == "module_queue" else "semaphore"
    if "concurrency" in fields:
        config["concurrency"] = concurrency
    elif concurrency != 1:
        raise NotImplementedError("this commit's ingest config has no `concurrency` (Phase 2)")
    if "worker_strategy" in fields:
        config["worker_strategy"] = worker
    elif strategy == "module_queue":
        raise NotImplementedError("this commit's ingest config has no `worker_strategy` (Phase 2)")
    return config


def ingest_each(config, consume, context=None):
    """Run ``IngestModule(config).fetch(context)`` to the end, calling ``consume(item)`` per item."""
    cls, _ = ingest_module()
    context = make_context() if context is None else context

    async def drain():
        async for item in cls(config).fetch(context):
            consume(item)

    asyncio.run(drain())


def ingest_items(config, context=None):
    """Run ``IngestModule(config).fetch(context)`` to the end; return the items (a list)."""
    items = []
    ingest_each(config, items.append, context)
    return items


def collected_failures(collector):
    """How many failures a stac-manager ``FailureCollector`` holds (``get_all()``)."""
    get_all = getattr(collector, "get_all", None)
    if get_all is None:
        raise NotImplementedError(f"{type(collector).__name__} has no get_all()")
    return len(get_all())


def probe(call, what):
    """Run ``call()``; any error but a failed check means this commit cannot do ``what``: n/a.

    A ``NotImplementedError`` passes through (already n/a); an ``AssertionError`` (a check of
    the harness, e.g. ``ResultMismatch``) passes through too: a commit that runs but returns
    the wrong items must fail, not be skipped.
    """
    try:
        return call()
    except (NotImplementedError, AssertionError):
        raise
    except Exception as exc:
        raise NotImplementedError(f"this commit cannot {what}: {type(exc).__name__}: {exc}") from exc


def probe_ingest(config, what):
    """Skip (n/a) unless this commit's ingest accepts ``config`` without raising."""
    probe(lambda: ingest_each(config, lambda item: None), f"ingest {what}")


def preload_subject():
    """Import stac-manager's modules once, when asv imports the suite.

    Under ``launch_method = forkserver`` every benchmark process is forked from the
    process that imported the suite, so the ~0.5 s import of stac-manager (pandas,
    pyarrow, pystac) is paid once per commit, not once per parameter combination.  A
    commit that lacks a module, or fails to import it, is simply not preloaded: the
    benchmarks that need it say n/a in their ``setup``.
    """
    for name in ("stac_manager.modules.ingest", "stac_manager.modules.output",
                 "stac_manager.modules.update", "stac_manager.core.context", "stac_manager.context",
                 "stac_manager.core.checkpoints", "stac_manager.core.failures"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - n/a is decided in setup, with the reason
            pass


def _pool_worker():
    """Whether this is a worker a ``processes`` pool spawned (its ``__main__`` is ``__mp_main__``).

    A spawned worker inherits asv's ``sys.argv`` and imports the suite while it unpickles its
    task, before ``multiprocessing.parent_process()`` is set: without this test each worker
    paid the whole preload again (about 12 s on 2 cores, five workers 37 s) and carried
    stac-manager's imports into the ``processes`` rows' memory.
    """
    return getattr(sys.modules.get("__main__"), "__name__", "__main__") == "__mp_main__"


def preloading():
    """Whether importing the suite should do the once-per-commit work now.

    Only in the processes asv times benchmarks in: its forkserver (``run_server``, which every
    benchmark process is forked from) or a spawned benchmark (``run``).  asv also imports the
    suite to discover it, to check it and once per ``setup_cache``: there the work would be
    paid again for nothing (about 5 s a time), and in a pool's spawned workers.
    ``STAC_BENCH_PRELOAD=0`` turns it off.
    """
    if not preload_enabled() or _pool_worker():
        return False
    argv = sys.argv
    return len(argv) > 1 and os.path.basename(argv[0]) == "benchmark.py" and argv[1] in ("run_server", "run")
