"""PNG charts of tools/report.py: written beside the Markdown, linked with relative paths, valid
PNGs, one line per strategy (ceilings as horizontal limits), and history over the commits."""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
from test_report import assert_one_line_error, run_cli  # noqa: E402

from tools.reporting import analyse, charts, errors, results

PRD = HERE / "report_fixtures" / "prd"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def rep():
    return analyse.build_report(results.ResultsDB(str(PRD)))


def scenario(rep, title):
    return next(s for s in rep["scenarios"] if s["title"] == title)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def check_png(path: Path):
    import matplotlib.image

    width, height = png_size(path)
    assert width > 300 and height > 200
    assert matplotlib.image.imread(str(path)).shape[:2] == (height, width)  # decodes whole


def links(md: str, base: Path) -> list:
    found = [base / m for m in LINK.findall(md)]
    assert found and all(not Path(m).is_absolute() for m in LINK.findall(md))
    return found


def test_speedup_figure_has_one_line_per_strategy_and_ceilings_as_limits(rep):
    s = scenario(rep, "file_ingest.Directory — n_items=1000")
    fig = charts.speedup_figure(s)
    try:
        (ax,) = fig.axes
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        limits = {k for k in lines if k.endswith(charts.LIMIT_SUFFIX)}
        strategies = {r["strategy"] for r in s["rows"] if r["speedup"] is not None and not r["is_ceiling"]}
        assert set(lines) - limits == strategies == {"module", "module_queue", "loop", "semaphore", "queue",
                                                     "threads", "processes"}
        assert limits == {"ceiling_read (limit)", "ceiling_parse (limit)"}
        assert len(ax.get_legend().get_texts()) == len(lines)
        # the data drawn is the table's: concurrency -> speedup, processes n/a at 10
        by_conc = {r["concurrency"]: r["speedup"] for r in s["rows"] if r["strategy"] == "processes"
                   and r["speedup"] is not None}
        x, y = lines["processes"].get_data()
        assert dict(zip(x, y, strict=False)) == pytest.approx(by_conc) and sorted(x) == [1, 5]
        ceiling = max(r["speedup"] for r in s["rows"] if r["strategy"] == "ceiling_read" and r["speedup"])
        assert list(lines["ceiling_read (limit)"].get_ydata()) == pytest.approx([ceiling, ceiling])  # horizontal
    finally:
        charts.pyplot().close(fig)


def test_report_output_writes_charts_beside_the_markdown(tmp_path, rep):
    out = tmp_path / "doc" / "report.md"
    out.parent.mkdir()
    proc = run_cli("report", "--results", PRD, "--output", out)
    assert proc.returncode == 0, proc.stderr
    md = out.read_text()
    pictures = links(md, out.parent)
    expected = [s for s in rep["scenarios"] if charts.chartable(s)]
    assert len(pictures) == len(expected) == len(list((tmp_path / "doc" / "report_charts").glob("*.png")))
    for path in pictures:
        assert path.parent == out.parent / "report_charts"
        check_png(path)
    # each picture right after its scenario's table, before the next scenario
    for s in expected:
        block = md.split(f"### {s['title']}\n", 1)[1].split("\n### ", 1)[0]
        assert f"]({charts.link(str(out.parent / 'report_charts'), str(out.parent))}/speedup-" in block
    assert "_charts" not in md.split("### Findings")[1].split("\n### api_ingest")[0]  # none in the Findings


def test_charts_dir_and_no_charts(tmp_path):
    proc = run_cli("report", "--results", PRD, "--charts", "pics", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pictures = links(proc.stdout, tmp_path)  # stdout: relative to the working directory
    assert all(p.parent == tmp_path / "pics" and p.is_file() for p in pictures)
    out = tmp_path / "plain.md"
    assert run_cli("report", "--results", PRD, "--output", out, "--no-charts").returncode == 0
    assert not (tmp_path / "plain_charts").exists() and "![" not in out.read_text()
    assert "![" not in run_cli("report", "--results", PRD).stdout  # stdout without --charts: none
    assert_one_line_error(run_cli("report", "--results", PRD, "--charts", "x", "--no-charts"), "not allowed")


def test_history_charts_over_the_commits(tmp_path):
    out = tmp_path / "h.md"
    assert run_cli("history", "file_ingest.DirectoryModule.track_throughput", "--results", PRD,
                   "-o", out).returncode == 0
    (picture,) = links(out.read_text(), tmp_path)
    check_png(picture)
    steps = tmp_path / "steps.md"
    proc = run_cli("history", "--steps", "--results", PRD, "-o", steps)
    assert proc.returncode == 0, proc.stderr
    md = steps.read_text()
    pictures = links(md, tmp_path)
    assert sorted(p.name for p in pictures) == [f"steps-{s}.png" for s in
                                                ("api_ingest", "file_ingest", "output", "pipeline")]
    for p in pictures:
        check_png(p)
    assert "steps-file_ingest.png" in md.split("### file_ingest")[1].split("\n### ")[0]


def test_history_figure_draws_one_line_per_series_with_gaps():
    fig = charts.history_figure("t", ["a", "b", "c"], {"s1": [1.0, None, 3.0], "Control": [2.0, 2.0, 2.0]},
                                "items/s", dashed={"Control"}, marks=[2])
    try:
        lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")}
        assert set(lines) == {"s1", "Control"} and lines["Control"].get_linestyle() == "--"
        assert str(lines["s1"].get_ydata()[1]) == "nan"
    finally:
        charts.pyplot().close(fig)


def test_without_matplotlib_charts_are_one_line_errors(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(errors.ReportError, match="charts need matplotlib"):
        charts.pyplot()


def test_unwritable_chart_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(run_cli("report", "--results", PRD, "--charts", blocker / "sub"), "cannot write chart")
