"""PRD-style Markdown reports and a pre-merge regression gate from asv results.

Modules, one job each:

``config``   where the results are (asv.conf.json, read by asv)
``results``  read asv's results directory: results files (schema v2), benchmarks.json, commits
``values``   what a benchmark name, a parameter and a value mean, and how they print
``analyse``  one commit's scenarios: strategy kinds, grouping, baseline, speedups, ceiling, best
             row, verdict, recommended workers
``columns``  the cells of a scenario table (time / throughput / memory columns, extras)
``findings`` the PRD's questions answered from one commit's scenarios (Q1-Q4); ``findings_more``:
             Phase 2 concurrency, the Phase 1 method, fault runs
``gate``     compare two results files: regressions, failures, control drift
``history``  one benchmark or scenario over the commits
``steps``    per suite, stac-manager's throughput over the commits and its steps beyond the
             noise floor of the suite's Control rows (``history --steps``)
``charts``   PNG charts beside the Markdown (matplotlib, Agg; imported only to draw)
``render``   Markdown and JSON
``cli``      the command line (``tools/report.py`` calls ``cli.main``)
"""
