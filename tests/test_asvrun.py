"""tools.asvrun: asv's output goes to a log, and a line per step to stderr."""

import io
import sys

from tools.asvrun import Asv, Progress

ASV_LINES = """\
· Creating environments
· Discovering benchmarks
·· Uninstalling from virtualenv-py3.12-numpy1.26.4
·· Building 66ef22a0 <dev> for virtualenv-py3.12-numpy1.26.4
· Running 12 total benchmarks (2 commits * 1 environments * 6 benchmarks)
[ 0.00%] · For stac-manager commit 2174abff <main> (round 1/2):
[ 0.00%] ·· Building for virtualenv-py3.12-numpy1.26.4..
[ 0.00%] ·· Benchmarking virtualenv-py3.12-numpy1.26.4
[ 4.17%] ··· file_ingest.Control.time_run                                     ok
[ 8.33%] ··· file_ingest.DirectoryModule.time_run                             ok
[50.00%] · For stac-manager commit 66ef22a0 <dev> (round 2/2):
[75.00%] ··· file_ingest.DirectoryModule.time_run                             ok
[100.00%] ··· output.ModuleJson.time_run                                      ok
"""


def test_progress_says_each_commit_round_build_and_the_share_done():
    now = [0.0]
    out = io.StringIO()
    progress = Progress("premerge.py", out=out, clock=lambda: now[0])
    for line in ASV_LINES.splitlines():
        now[0] += 10.0
        progress.feed(line)
    assert out.getvalue().splitlines() == [
        "premerge.py: building stac-manager 66ef22a0 (virtualenv-py3.12-numpy1.26.4)",
        "premerge.py: commit 2174abff, round 1 of 2",
        "premerge.py: building stac-manager (virtualenv-py3.12-numpy1.26.4)",
        "premerge.py: 4 % of the benchmarks done after 1.5 min, about 34.5 min left",
        "premerge.py: commit 66ef22a0, round 2 of 2",
        "premerge.py: 75 % of the benchmarks done after 2.0 min, about 40 s left",
        "premerge.py: 100 % of the benchmarks done after 2.2 min",
    ]


def test_asv_output_goes_to_the_log_and_progress_to_stderr(tmp_path, capsys):
    script = "import sys; sys.stdout.write(sys.argv[1])"
    runner = Asv(tmp_path / "asv.conf.json", tmp_path, verbose=False, prog="bench.py")
    code, lines = runner.stream([sys.executable, "-c", script, ASV_LINES])
    err = capsys.readouterr().err.splitlines()
    assert code == 0 and lines == ASV_LINES.splitlines()
    assert ASV_LINES in runner.log.read_text()
    assert err[1] == "bench.py: commit 2174abff, round 1 of 2" and len(err) == 6, err
    verbose = Asv(tmp_path / "asv.conf.json", tmp_path, verbose=True, prog="bench.py")
    verbose.stream([sys.executable, "-c", script, ASV_LINES])
    assert capsys.readouterr().err == ASV_LINES  # -v: asv's own output, as it is
