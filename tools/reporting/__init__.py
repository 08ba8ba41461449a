"""PRD-style Markdown reports and a pre-merge regression gate from asv results.

Modules, one job each, from the bottom up (a module imports only from those above it here):

``errors``        the one exception and the exit codes
``metrics``       what a benchmark name, a parameter and a value mean, and how they print
``rules``         what a strategy name is (the suite's strategy table), verdict bands, thresholds
``config``        where the results are (asv.conf.json, read by asv)
``commits``       what git says of a commit: a name's hash, its subject, a branch's commits
``results``       read asv's results directory: results files (schema v2), benchmarks.json, commits
``inputs``        the checks every command makes of its arguments before any work
``columns``       the cells of a scenario table (time / throughput / memory columns, extras)
``diskmem``       the output rows written to a tmpfs beside their on-disk twins: the disk's share
``scaling``       the scale selection: per-item time and memory against n_items, a verdict per row
``findings``      the PRD's questions answered from one commit's scenarios (Q1-Q4);
``findings_phase2``  Phase 2 concurrency, the Phase 1 method, fault runs
``analyse``       one commit's scenarios: grouping, baseline, speedups, ceiling, best row, verdict,
                  recommended workers, and the findings
``gate``          compare two results files: regressions, failures, control drift
``history``       one benchmark or scenario over the commits
``level_shifts``  per suite, stac-manager's throughput over the commits and its steps beyond the
                  noise floor of the suite's Control rows (``history --steps``)
``charts``        PNG charts beside the Markdown (matplotlib, Agg; imported only to draw)
``render``        Markdown and JSON
``cli``           the command line (``python -m tools.report`` calls ``cli.main``); ``cli.compare``
                  is the gate as a function (``tools.premerge`` calls it)
"""
