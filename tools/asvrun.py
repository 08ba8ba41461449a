"""asv run quietly: its whole output to a log file, one line per step on stderr.

``Asv`` runs asv (and pip) commands in a folder, writes everything they print to ``asv.log`` there
(and to stderr with ``verbose``), and prints a line per step on stderr as asv reaches it: each
commit (and round), each build, and the benchmarks done with an estimate of the time left.
``tools.bench`` and ``tools.premerge`` run asv through it.
"""

import os
import re
import shlex
import subprocess
import sys
import time


class RunError(Exception):
    """asv (or pip) failed; the message is one line naming the cause and the log."""


class Progress:
    """One line on ``out`` per step of an asv run, read off asv's own output lines."""

    PERCENT = re.compile(r"^\[\s*(\d+(?:\.\d+)?)%\]")
    COMMIT = re.compile(r"For \S+ commit (\S+?)(?: <[^>]*>)?(?: \(round (\d+)/(\d+)\))?:")
    BUILD = re.compile(r"Building (?:([0-9a-f]{8}) (?:<[^>]*> )?)?for (\S+)")
    #: Seconds between two "done" lines (a step of its own always prints).
    EVERY = 30.0

    def __init__(self, prog, out=None, clock=time.monotonic):
        self.prog, self.out, self.clock = prog, out, clock
        self.start, self.last, self.said = clock(), None, None

    def say(self, text):
        if text != self.said:
            print(f"{self.prog}: {text}", file=self.out or sys.stderr, flush=True)
            self.said = text

    def feed(self, line):
        commit, build, pct = self.COMMIT.search(line), self.BUILD.search(line), self.PERCENT.match(line)
        if commit:
            rounds = f", round {commit.group(2)} of {commit.group(3)}" if commit.group(2) else ""
            self.say(f"commit {commit.group(1)[:8]}{rounds}")
        elif build:
            at = f" {build.group(1)}" if build.group(1) else ""
            self.say(f"building stac-manager{at} ({build.group(2).rstrip('.')})")
        elif pct and float(pct.group(1)) > 0 and (self.last is None or self.clock() - self.last >= self.EVERY or float(pct.group(1)) >= 100):
            self.last = self.clock()
            self.say(self.done(float(pct.group(1))))

    def done(self, pct):
        elapsed = self.clock() - self.start
        left = elapsed * (100 - pct) / pct if pct > 0 else None
        eta = f", about {minutes(left)} left" if left is not None and pct < 100 else ""
        return f"{pct:.0f} % of the benchmarks done after {minutes(elapsed)}{eta}"


def minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Asv:
    """Commands in the scratch folder; output to ``<workdir>/asv.log`` (and stderr if verbose)."""

    COMMIT = re.compile(r"For \S+ commit ([0-9a-f]{8})")
    SKIPPED = re.compile(r"·\s+Skipping \S+\s*$")  # asv's runner.skip_benchmarks: the build failed

    def __init__(self, config, workdir, verbose, prog="asv", log=None):
        self.config, self.workdir, self.verbose = config, workdir, verbose
        self.log = log or workdir / "asv.log"
        self.log.write_text("")
        self.progress = Progress(prog)

    def stream(self, cmd):
        with open(self.log, "a") as log:
            log.write(f"\n$ {shlex.join(map(str, cmd))}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    cwd=self.workdir, errors="replace", env=dict(os.environ, PYTHONUNBUFFERED="1"))
            lines = []
            for line in proc.stdout:
                log.write(line)
                lines.append(line.rstrip("\n"))
                if self.verbose:
                    sys.stderr.write(line)
                else:
                    self.progress.feed(line)
            return proc.wait(), lines

    def run(self, args, commits, machine):
        """``asv run``; a clear error if it failed, built nothing, or could not build a commit."""
        code, lines = self.stream([sys.executable, "-m", "asv", "run", "--config", str(self.config),
                                   "--machine", machine, *args])
        if code not in (0, 2):  # 2: some benchmark failed, a finding the gate reports
            raise RunError(f"asv run failed (exit {code}): {last_message(lines)} (log: {self.log})")
        broken = self.unbuilt(lines)
        for sha in commits:
            if sha[:8] in broken:
                raise RunError(f"asv could not build stac-manager at {sha[:8]}: {broken[sha[:8]]} "
                                    f"(build log: {self.log})")
            if not list((self.workdir / "results" / machine).glob(f"{sha[:8]}-*.json")):
                raise RunError(f"asv wrote no results for {sha[:8]} (log: {self.log})")

    @classmethod
    def unbuilt(cls, lines):
        """{short hash: the build's last words} of the commits asv could not build."""
        current, broken, said = None, {}, "see the log"
        for line in lines:
            found = cls.COMMIT.search(line)
            current = found.group(1) if found else current
            if current and cls.SKIPPED.search(line):
                broken[current] = said
            elif line.strip():
                said = line.strip(" ·")[:200]
        return broken

    def pip(self, python, *args):
        code, lines = self.stream([str(python), "-m", "pip", "--disable-pip-version-check", *args])
        if code != 0:
            raise RunError(f"pip {args[0]} failed for the working tree: {last_message(lines)} "
                                f"(log: {self.log})")


def last_message(lines):
    """The last line of a command's output that says something (asv's dots stripped)."""
    for line in reversed(lines):
        text = line.strip(" ·\t")
        if text and not text.startswith("[") and "Traceback" not in text:
            return text[:300]
    return "no output"
