"""Run every benchmark in sequence, print every table, exit 1 if any target was missed.

Each benchmark runs in its own interpreter (`python -m bench.<name>`), so one cannot
leave an environment variable, a process-wide gate or a child process to the next.
`python -m bench.run_all faq_cost memory` runs only those. About fourteen minutes in all.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.harness import REPO_ROOT, table

BENCHMARKS = (
    "faq_latency",
    "orchestrator_latency",
    "quota_goodput",
    "fair_share",
    "faq_cost",
    "slack_ingress",
    "memory",
    "slack_wait",
    "cpu_floor",
    "kb_retrieval",
    "report_scale",
    "sla_check",
)


def run(name: str) -> tuple[int, float]:
    """Run one benchmark with its output going straight to ours; (exit code, seconds)."""
    print(f"\n=== bench.{name} ===", flush=True)
    started = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=REPO_ROOT)
    return code, time.perf_counter() - started


def main(names: list[str]) -> int:
    results = [(name, *run(name)) for name in names]
    print("\n=== summary ===")
    rows = [
        [name, f"{seconds:.0f}", "ok" if code == 0 else f"MISSED (exit {code})"]
        for name, code, seconds in results
    ]
    print(table(["benchmark", "seconds", "result"], rows))
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}"
    )
    names = parser.parse_args().names
    if unknown := sorted(set(names) - set(BENCHMARKS)):
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    sys.exit(main(names or list(BENCHMARKS)))
