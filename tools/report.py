"""PRD-style Markdown reports and a pre-merge regression gate from asv results.

    python -m tools.report [report] [--results DIR | --config asv.conf.json]
                           [--commit C] [--machine M] [--env E]
                           [--output FILE.md] [--json FILE.json]
    python -m tools.report compare BASE HEAD [--factor 1.1] [--only-changed]
    python -m tools.report history BENCH_OR_SCENARIO [--where k=v] [--branch B]

Run from the project's root.  Exit codes: 0 = fine, 1 = the gate found regressions, 2 = bad
input or usage.  The code lives in the package ``tools/reporting`` (see its ``__init__``).
"""

import sys

from tools.reporting.cli import main

if __name__ == "__main__":
    sys.exit(main())
