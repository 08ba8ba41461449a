#!/usr/bin/env python
"""PRD-style Markdown reports and a pre-merge regression gate from asv results.

    python tools/report.py [report] [--results DIR | --config asv.conf.json]
                           [--commit C] [--machine M] [--env E]
                           [--output FILE.md] [--json FILE.json]
    python tools/report.py compare BASE HEAD [--factor 1.1] [--only-changed]
    python tools/report.py history BENCH_OR_SCENARIO [--where k=v] [--branch B]

Exit codes: 0 = fine, 1 = the gate found regressions, 2 = bad input or usage.
The code lives in the package ``tools/reporting`` (see its ``__init__``).
"""

import os
import sys

_TOOLS = os.path.dirname(os.path.abspath(__file__))
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)

from reporting.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
