"""The output suite's in-memory rows: the same writes and checks as their disk twins, below a memory
filesystem (/dev/shm, a tmpfs), n/a with the reason where there is none."""

import os
import shutil
import tempfile

import pytest

from benchmarks import output
from benchmarks.lib import formats, itemgen, settings
from benchmarks.lib.checks import ResultMismatch

N = 60
MEMORY_ROWS = [("ModuleJsonMemory", ("module", 1, 1000)), ("ModuleParquetMemory", ("module", 1, 1000)),
               ("ItemFilesMemory", ("loop", 1, False)), ("ItemFilesMemory", ("ceiling_write", 1, True)),
               *[("SingleFileMemory", (fmt, 1, False)) for fmt in formats.SINGLE_FILE]]
needs_shm = pytest.mark.skipif(formats.filesystem_type("/dev/shm") not in formats.MEMORY_FILESYSTEMS,
                               reason="no tmpfs at /dev/shm on this machine")


@pytest.fixture
def standin_sm(standin_at, tmp_path, monkeypatch):
    """The stand-in's c4_phase2; the disk output below tmp, the memory output in a folder of /dev/shm
    of its own (removed afterwards), where /dev/shm is a tmpfs."""
    standin_at("c4_phase2")
    monkeypatch.setenv("STAC_BENCH_OUT_DIR", str(tmp_path / "out"))
    if formats.filesystem_type("/dev/shm") not in formats.MEMORY_FILESYSTEMS:
        yield
        return
    memory = tempfile.mkdtemp(prefix="test-output-memory-", dir="/dev/shm")
    monkeypatch.setenv("STAC_BENCH_MEMORY_DIR", memory)
    try:
        yield
    finally:
        shutil.rmtree(memory, ignore_errors=True)


def mounts(tmp_path, *lines):
    path = tmp_path / "mounts"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_the_filesystem_of_a_path_is_its_longest_mount_point(tmp_path):
    table = mounts(tmp_path, "/dev/vda / ext4 rw 0 0", "tmpfs /dev/shm tmpfs rw 0 0", "proc /proc proc rw 0 0",
                   "tmpfs /dev/shm/deep/x ramfs rw 0 0")
    assert formats.filesystem_type("/dev/shm", table) == "tmpfs"
    assert formats.filesystem_type("/dev/shm/a/b", table) == "tmpfs"
    assert formats.filesystem_type("/dev/shmx", table) == "ext4"  # a prefix of the name is not the mount
    assert formats.filesystem_type("/dev/shm/deep/x/y", table) == "ramfs"
    assert formats.filesystem_type("/x", str(tmp_path / "absent")) is None


@needs_shm
@pytest.mark.parametrize("name,params", MEMORY_ROWS)
def test_every_memory_row_writes_below_the_tmpfs_and_checks_it(standin_sm, name, params):
    bench, cache = getattr(output, name)(), {N: itemgen.make_items(N)}
    bench.setup(cache, N, *params)
    root = bench.root
    try:
        assert formats.filesystem_type(root) == "tmpfs" and str(root).startswith("/dev/shm/")
        assert bench.track_throughput(N, *params) > 0
        bench.run()  # the twin's whole check ran on what landed in memory
        assert list(root.iterdir()) == []  # each run's directory is removed
    finally:
        bench.teardown(cache, N, *params)
    assert not root.exists()
    assert list(settings.out_dir().iterdir()) == []  # nothing on the disk


@needs_shm
def test_a_memory_row_that_loses_an_item_fails(standin_sm, monkeypatch):
    """The disk twin's check: a writer that drops one file of 60 fails the run."""
    real = formats.write_item_file
    monkeypatch.setattr(formats, "write_item_file",
                        lambda unit: None if unit[1]["id"] == itemgen.item_id(33) else real(unit))
    bench, cache = output.ItemFilesMemory(), {N: itemgen.make_items(N)}
    bench.setup(cache, N, "loop", 1, False)
    try:
        with pytest.raises(ResultMismatch, match="bench-item-000033"):
            bench.run()
    finally:
        bench.teardown(cache, N, "loop", 1, False)


@pytest.mark.parametrize("where", ["disk", "missing"])
def test_without_a_memory_filesystem_the_rows_are_na_naming_why(standin_sm, monkeypatch, tmp_path, where):
    base = tmp_path / "not-memory" if where == "disk" else tmp_path / "absent"
    if where == "disk":
        base.mkdir()
    monkeypatch.setenv("STAC_BENCH_MEMORY_DIR", str(base))
    kind = formats.filesystem_type(base) if where == "disk" else None
    if kind in formats.MEMORY_FILESYSTEMS:
        pytest.skip(f"{tmp_path} is itself a {kind}")
    for name, params in MEMORY_ROWS[:3]:
        with pytest.raises(NotImplementedError, match=f"{base} is not a memory filesystem"):
            getattr(output, name)().setup({N: itemgen.make_items(N)}, N, *params)
    assert not os.listdir(settings.out_dir())


def test_the_disk_rows_keep_their_series():
    assert output.ModuleJson.params[3] == output.BUFFER_SIZES and output.ModuleJson.version == "3"
    assert output.ItemFiles.in_memory is False and output.ModuleJsonMemory.in_memory is True
    assert output.ModuleJsonMemory.profile is None and output.ModuleJsonMemory.version == "1"
