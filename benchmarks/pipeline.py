"""End to end: Ingest -> Update -> Output with stac-manager's real modules, and where the time goes.

Strategies:

``module``
    stac-manager end to end, as ``StacManager._execute_pipeline`` streams it:
    ``IngestModule.fetch`` (directory source) -> ``UpdateModule.modify`` ->
    ``OutputModule(format=json).bundle`` -> ``finalize``.  Above concurrency 1 the
    ingest config gets Phase 2 ``concurrency`` (n/a where the commit lacks it).
``concurrent_ingest``
    Item files read by a harness thread pool of ``concurrency`` threads in
    batches of ``BATCH`` items, then stac-manager's UpdateModule and OutputModule
    item by item (sequential output, as today).
``concurrent_ingest_batched_output``
    As ``concurrent_ingest``, but each batch is written by the same thread pool in
    OutputModule's on-disk format (relative links, indented JSON per item).

``loop`` (``Control``)
    the same work with no stac-manager at all: item files read in a loop, ``UPDATES``
    applied by the harness, written in OutputModule's format.  The suite's noise floor.

``PipelineModule`` (``module``) is in the history profile, ``Pipeline`` (the hybrid
variants) in the full profile, ``Control`` in both.

``checkpoint=True`` gives the context a CheckpointManager (n/a where the commit
has none with ``mark_completed``), skips items it reports completed and marks
each item completed once output has it, as CheckpointManager documents.
stac-manager's own StacManager builds one but never marks an item (no commit
calls ``mark_completed``), so ``checkpoint=False`` is today's behaviour.

Stage shares of ``PipelineModule`` (``track_share_*``, percent of the pipeline's wall time, check
excluded) are timed around each stage's calls within one run.
"""

import asyncio
import time

from .lib import checks, counts, datacache, formats, loaders, readback, sources, strategies
from .lib.checks import ResultMismatch
from .lib.itemgen import item_id, make_item
from .lib.readback import SURVIVE
from .lib.runners import Runner, flatten
from .lib.scenario import Scenario, WriteThroughput, measured_where, preload
from .lib.settings import CONCURRENCY, CONDITION_LEVELS, N_ITEMS, PROBE_ITEMS
from .lib.strategies import HARNESS, HYBRID, SUBJECT
from .lib.subject import (
    checkpoint_manager,
    import_subject,
    ingest_config,
    ingest_module,
    make_context,
    probe,
    probe_ingest,
)

#: Items per ingest/output batch of the concurrent variants (OutputModule's default buffer_size).
BATCH = 1000
#: A realistic metadata update: two fields set by dotted path (plus UpdateModule's own
#: ``properties.updated`` timestamp where the commit stamps it).
UPDATES = {"properties.constellation": "sentinel-2", "properties.processing:level": "L2A"}
#: Properties the transform may legitimately rewrite.
LOOSE_PROPS = ("updated",)
STAGES = ("ingest", "transform", "output", "checkpoint")


def expected_item(i):
    """Item ``i`` as it must land on disk: the generated item with ``UPDATES`` applied."""
    item = make_item(i)
    for path, value in UPDATES.items():
        _, key = path.split(".", 1)
        item["properties"][key] = value
    return item


def _modules():
    """(UpdateModule, OutputModule) classes of this commit, or n/a."""
    update = getattr(import_subject("stac_manager.modules.update"), "UpdateModule", None)
    output = getattr(import_subject("stac_manager.modules.output"), "OutputModule", None)
    if update is None or output is None:
        raise NotImplementedError("this commit lacks UpdateModule or OutputModule")
    return update, output


class _Pipeline(WriteThroughput, Scenario):
    """Ingest a directory, update two fields, write JSON per item: end-to-end variants."""

    version = "3"
    param_names = ["n_items", "strategy", "concurrency", "checkpoint"]
    #: Validate the written ``updated`` stamps through stand-ins.  Off where ``time_run`` is a
    #: history series that has always included their full validation (``PipelineModule``).
    stand_in = False

    def setup_cache(self):
        return {n: str(datacache.ensure_dataset(n)) for n in {*N_ITEMS, PROBE_ITEMS}}

    def setup(self, roots, n_items, strategy, concurrency, checkpoint):
        self.n, self.strategy, self.checkpoint = n_items, strategy, checkpoint
        self.kind = strategies.kind(strategy)
        strategies.check_workers(strategy, concurrency)
        self.label = f"pipeline/{strategy}/{concurrency}/checkpoint={checkpoint}"
        datacache.check_source(roots[n_items], "directory")  # damaged data is not a strategy's fault
        source = sources.source_path(roots[n_items], "directory")
        probe_dir = sources.source_path(roots[PROBE_ITEMS], "directory")
        if self.kind != HARNESS:
            self.update_cls, self.output_cls = _modules()
            self.ingest_cls, _ = ingest_module()
            self._probe_update()
        if self.kind == SUBJECT:
            def conf(path):
                return ingest_config({"mode": "file", "source": str(path)}, "module", concurrency)
            probe_ingest(conf(probe_dir), "a directory")
            inputs, probe_inputs = conf(source), conf(probe_dir)
        else:
            self.runner = Runner("threads" if self.kind == HYBRID else strategy, concurrency)
            inputs = sources.units("directory", source, n_items)
            probe_inputs = sources.units("directory", probe_dir, PROBE_ITEMS)
        for n in (n_items, PROBE_ITEMS):  # the checks' once-per-process work, outside the timed runs
            checks.prepare(n, expected_item, SURVIVE, LOOSE_PROPS)
        self.root = formats.make_root("Pipeline")
        try:
            if checkpoint:
                cp = checkpoint_manager(str(formats.fresh_dir(self.root)))
                if not all(hasattr(cp, m) for m in ("mark_completed", "is_completed", "flush")):
                    raise NotImplementedError("this commit's CheckpointManager has no mark_completed")
            # the whole pipeline on the probe dataset: a commit that cannot run it is n/a
            probe(lambda: self._run(PROBE_ITEMS, probe_inputs), "run the pipeline")
        except BaseException:
            self.teardown()
            raise
        self.last_wall, self.last_stages = None, dict.fromkeys(STAGES, 0.0)
        self.run = lambda: self._run(self.n, inputs)

    def _probe_update(self):
        item = make_item(0)
        try:
            out = self.update_cls({"updates": dict(UPDATES)}).modify(item, make_context())
        except Exception as exc:
            raise NotImplementedError(f"UpdateModule cannot apply {UPDATES}: {exc}") from exc
        props = (out or {}).get("properties", {})
        if any(props.get(path.split(".", 1)[1]) != value for path, value in UPDATES.items()):
            raise NotImplementedError("this commit's UpdateModule does not set dotted paths")

    # --- one run --------------------------------------------------------------------------

    def _run(self, n_items, inputs):
        """One complete, checked run over ``inputs`` (ingest config or item-file units)."""
        directory = formats.fresh_dir(self.root)
        try:
            out_dir = directory / "out"
            cp = checkpoint_manager(str(directory / "checkpoints")) if self.checkpoint else None
            context = make_context(checkpoints=cp)
            stages = dict.fromkeys(STAGES, 0.0)
            start = time.perf_counter()
            if self.kind == SUBJECT:
                asyncio.run(self._module(inputs, out_dir, context, cp, stages))
            elif self.kind == HYBRID:
                self._concurrent(inputs, out_dir, context, cp, stages)
            else:
                self._harness(inputs, out_dir, stages)
            self.last_wall = time.perf_counter() - start
            self.last_stages = stages
            readback.check_item_files(out_dir, n_items, self.label, expect=expected_item, keys=SURVIVE,
                               loose_props=LOOSE_PROPS, stand_in=self.stand_in)
            if cp is not None:
                done = sum(cp.is_completed(item_id(i)) for i in range(n_items))
                if done != n_items:
                    raise ResultMismatch(f"{self.label}: {done} of {n_items} items checkpointed")
        finally:
            formats.remove(directory)

    async def _module(self, ingest_conf, out_dir, context, cp, stages):
        """stac-manager's streaming pipeline: fetch -> modify -> bundle, then finalize."""
        clock = time.perf_counter
        ingest = self.ingest_cls(ingest_conf)
        update = self.update_cls({"updates": dict(UPDATES)})
        output = self.output_cls({"format": "json", "base_dir": str(out_dir)})
        stream = ingest.fetch(context).__aiter__()
        while True:
            t0 = clock()
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                stages["ingest"] += clock() - t0
                break
            t1 = clock()
            stages["ingest"] += t1 - t0
            if item is None:
                continue
            if cp is not None and cp.is_completed(item["id"]):
                stages["checkpoint"] += clock() - t1
                continue
            t1 = clock()
            item = update.modify(item, context)
            t2 = clock()
            stages["transform"] += t2 - t1
            if not item:
                continue
            await output.bundle(item, context)
            t3 = clock()
            stages["output"] += t3 - t2
            if cp is not None:
                cp.mark_completed(item["id"], str(_item_path(out_dir, item)))
                stages["checkpoint"] += clock() - t3
        t0 = clock()
        await output.finalize(context)
        t1 = clock()
        stages["output"] += t1 - t0
        if cp is not None:
            cp.flush()
            stages["checkpoint"] += clock() - t1

    def _concurrent(self, units, out_dir, context, cp, stages):
        clock = time.perf_counter
        update = self.update_cls({"updates": dict(UPDATES)})
        batched = self.strategy == "concurrent_ingest_batched_output"
        loop = asyncio.new_event_loop()
        try:
            output = None if batched else self.output_cls({"format": "json", "base_dir": str(out_dir)})
            for lo in range(0, len(units), BATCH):
                t0 = clock()
                items = flatten(self.runner.map(loaders.load, units[lo:lo + BATCH]))
                t1 = clock()
                stages["ingest"] += t1 - t0
                if cp is not None:
                    items = [item for item in items if not cp.is_completed(item["id"])]
                    stages["checkpoint"] += clock() - t1
                t2 = clock()
                items = [out for out in (update.modify(item, context) for item in items) if out]
                t3 = clock()
                stages["transform"] += t3 - t2
                if batched:
                    self._write_batch(out_dir, items)
                else:
                    loop.run_until_complete(_bundle_all(output, items, context))
                t4 = clock()
                stages["output"] += t4 - t3
                if cp is not None:
                    for item in items:
                        cp.mark_completed(item["id"], str(_item_path(out_dir, item)))
                    stages["checkpoint"] += clock() - t4
            t0 = clock()
            if output is not None:
                loop.run_until_complete(output.finalize(context))
            t1 = clock()
            stages["output"] += t1 - t0
            if cp is not None:
                cp.flush()
                stages["checkpoint"] += clock() - t1
        finally:
            loop.close()

    def _harness(self, units, out_dir, stages):
        """The control: the same three stages with no stac-manager (``cp`` is never set here)."""
        clock = time.perf_counter
        t0 = clock()
        items = flatten(self.runner.map(loaders.load, units))
        t1 = clock()
        for item in items:
            for path, value in UPDATES.items():
                item["properties"][path.split(".", 1)[1]] = value
        t2 = clock()
        self._write_batch(out_dir, items)
        stages["ingest"] += t1 - t0
        stages["transform"] += t2 - t1
        stages["output"] += clock() - t2

    def _write_batch(self, out_dir, items):
        """OutputModule's layout and format, written concurrently by the harness pool."""
        if not items:
            return
        items_dir = out_dir / str(items[0].get("collection", "default")) / "items"
        items_dir.mkdir(parents=True, exist_ok=True)
        units = [(str(items_dir), formats.relative_links(item), False) for item in items]
        self.runner.map(formats.write_item_file, units)


class Pipeline(_Pipeline):
    """The hybrid variants: harness concurrency around stac-manager's modules (full profile).

    ``track_throughput`` and ``track_mem_mb`` (without checkpoints) only, checkpoints at
    ``CONDITION_LEVELS``; the written ``updated`` stamps are validated through stand-ins
    (``validity.stand_in``), so a run checks in 0.1 s what took 1.3 s.
    """

    params = [N_ITEMS, strategies.names("pipeline", HYBRID), CONCURRENCY, [False, True]]
    time_run = None
    track_mem_mb = measured_where(Scenario.track_mem_mb, params, _Pipeline.param_names,
                                  lambda checkpoint, **_: not checkpoint)
    stand_in = True

    def setup(self, roots, n_items, strategy, concurrency, checkpoint):
        if checkpoint and concurrency not in CONDITION_LEVELS:
            raise NotImplementedError(f"checkpoints are measured at {CONDITION_LEVELS} workers")
        super().setup(roots, n_items, strategy, concurrency, checkpoint)


class PipelineModule(_Pipeline, counts.Counted):
    """stac-manager end to end, as its StacManager streams it (history profile)."""

    profile = "history"
    history_params = {"checkpoint": False}  # today's behaviour; checkpoints in the full profile
    params = [N_ITEMS, strategies.names("pipeline", SUBJECT), CONCURRENCY, [False, True]]

    # --- stage shares: where stac-manager's own pipeline spends its time (the report's Q1).  Here
    # only: each is a process of its own, and a hybrid's shares would time the harness.

    def _share(self, stage):
        self.stand_in = True  # the check is outside the number: its stamps may as well be stood in
        self.run()
        return 100.0 * self.last_stages[stage] / self.last_wall

    def track_throughput(self, *args):
        """Items per second: n_items over the pipeline's wall time in one run (check excluded)."""
        self.stand_in = True  # as in _share
        return super().track_throughput(*args)

    track_throughput.unit = "items/s"

    def track_share_ingest(self, *args):
        """Share of the pipeline's wall time spent in ingest."""
        return self._share("ingest")

    track_share_ingest.unit = "%"

    def track_share_transform(self, *args):
        """Share of the pipeline's wall time spent in the update (transform) step."""
        return self._share("transform")

    track_share_transform.unit = "%"

    def track_share_output(self, *args):
        """Share of the pipeline's wall time spent in output (bundle, finalize)."""
        return self._share("output")

    track_share_output.unit = "%"

    def track_share_checkpoint(self, *args):
        """Share of the pipeline's wall time spent checkpointing (with checkpoints only)."""
        return self._share("checkpoint")

    track_share_checkpoint.unit = "%"
    track_share_checkpoint = measured_where(track_share_checkpoint, params, _Pipeline.param_names,
                                            lambda checkpoint, **_: checkpoint)


class Control(_Pipeline, counts.Counted):
    """The suite's noise floor: the same pipeline with no stac-manager, in every profile."""

    profile = "history"
    params = [N_ITEMS, ["loop"], [1], [False]]


async def _bundle_all(output, items, context):
    for item in items:
        await output.bundle(item, context)


def _item_path(out_dir, item):
    return out_dir / str(item.get("collection", "default")) / "items" / f"{item['id']}.json"


preload(expected_item, SURVIVE, LOOSE_PROPS)
