"""PRD-style Markdown reports and a pre-merge regression gate from asv results.

Modules, one job each:

``config``   where the results are (asv.conf.json, read by asv)
``results``  read asv's results directory: results files (schema v2), benchmarks.json, commits
``values``   what a benchmark name, a parameter and a value mean, and how they print
``analyse``  one commit's scenarios: strategy kinds, grouping, baseline, speedups, ceiling, best
             row, verdict, recommended workers
``columns``  the cells of a scenario table (time / throughput / memory columns, extras)
``gate``     compare two results files: regressions, failures, control drift
``history``  one benchmark or scenario over the commits
``render``   Markdown and JSON
``cli``      the command line (``tools/report.py`` calls ``cli.main``)
"""
