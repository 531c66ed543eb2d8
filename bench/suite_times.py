"""The test suite's wall time by directory, from the JUnit XML a run wrote.

``make test`` writes ``build/junit.xml``; this sums each test's total (setup, call and
teardown) by the directory of its file and prints one JSON object, e.g.
``{"tests/runtime": 151.2, ..., "total": 312.5, "count": 960}``. Module fixtures' time
lands on the first test of the module, which is where a reader looks for it.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def by_directory(path: str) -> dict[str, float | int]:
    totals: dict[str, float] = defaultdict(float)
    count = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")  # tests.runtime.test_run(.Class)
        while parts and not parts[-1].startswith("test"):
            parts.pop()  # a test class's name
        directory = "/".join(parts[:-1]) or "."
        totals[directory] += float(case.get("time") or 0)
        count += 1
    out: dict[str, float | int] = {k: round(v, 1) for k, v in sorted(totals.items())}
    out["total"] = round(sum(totals.values()), 1)
    out["count"] = count
    return out


if __name__ == "__main__":
    print(json.dumps(by_directory(sys.argv[1] if len(sys.argv) > 1 else "build/junit.xml")))
