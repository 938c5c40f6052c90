"""Knowledge retrieval latency and memory at 10,000 and 100,000 passages.

Each size runs in its own interpreter (memory is that process's, nothing is shared):
synthetic passages of about 60 words drawn from a Zipf-distributed vocabulary of 30,000
words, under a section path, with random unit vectors of EMBEDDING_DIMENSIONS (768)
standing in for Gemini's (search cost does not depend on their values). The index is the
product's own `PassageIndex` (BM25 by bm25s + the numpy matrix, fused by reciprocal rank);
each of 300 questions of 3 to 8 words is searched for its top 5, hybrid and BM25 alone.
The question's own embedding call is a network round trip to Gemini and is not included.

Memory: VmRSS of the process after the index is built, minus before the passages were
made (the passages' text, the BM25 index and the matrix). Target: hybrid p95 < 50 ms at
10,000 passages.

    python -m bench.kb_retrieval                # both sizes
    python -m bench.kb_retrieval --sizes 10000  # one
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time

import numpy as np

from bench.harness import REPO_ROOT, table

TARGET_P95_MS = 50.0
TARGET_SIZE = 10_000
VOCABULARY = 30_000
DIMENSIONS = 768
QUESTIONS = 300


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(size: int, seed: int = 7) -> dict[str, float]:
    """Build a `size`-passage index in this process and time searches over it."""
    from pipelines.knowledge.embeddings import normalised
    from pipelines.knowledge.retrieval import PassageIndex, RetrievedPassage

    gc.collect()
    before = rss_mb()
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(VOCABULARY)])
    ranks = np.minimum(rng.zipf(1.3, size=(size, 60)), VOCABULARY) - 1
    passages = [
        RetrievedPassage(
            "document", f"manual-{i // 40}.pdf", " ".join(words[row]), (f"Section {i % 40}",)
        )
        for i, row in enumerate(ranks)
    ]
    vectors = normalised(rng.standard_normal((size, DIMENSIONS), dtype=np.float32))
    started = time.perf_counter()
    index = PassageIndex(passages, vectors)
    build_s = time.perf_counter() - started
    gc.collect()
    memory = rss_mb() - before

    questions = [
        " ".join(words[np.minimum(rng.zipf(1.5, size=rng.integers(3, 9)), VOCABULARY) - 1])
        for _ in range(QUESTIONS)
    ]
    query_vectors = normalised(rng.standard_normal((QUESTIONS, DIMENSIONS), dtype=np.float32))
    index.search(questions[0], 5, query_vectors[0])  # warm-up
    timings: dict[str, list[float]] = {"hybrid": [], "bm25": []}
    for question, vector in zip(questions, query_vectors, strict=True):
        for method, qv in (("hybrid", vector), ("bm25", None)):
            started = time.perf_counter()
            index.search(question, 5, qv)
            timings[method].append((time.perf_counter() - started) * 1000)
    result = {"size": size, "build_s": build_s, "memory_mb": memory}
    for method, values in timings.items():
        result[f"{method}_p50"] = float(np.percentile(values, 50))
        result[f"{method}_p95"] = float(np.percentile(values, 95))
    return result


def main(sizes: list[int]) -> int:
    results = []
    for size in sizes:
        done = subprocess.run(
            [sys.executable, "-m", "bench.kb_retrieval", "--one", str(size)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = [
        [
            f"{int(r['size']):,}",
            f"{r['hybrid_p50']:.1f}",
            f"{r['hybrid_p95']:.1f}",
            f"{r['bm25_p50']:.1f}",
            f"{r['bm25_p95']:.1f}",
            f"{r['build_s']:.1f}",
            f"{r['memory_mb']:.0f}",
        ]
        for r in results
    ]
    headers = ["passages", "hybrid p50 ms", "hybrid p95 ms", "bm25 p50 ms", "bm25 p95 ms"]
    print(table([*headers, "build s", "memory MB"], rows))
    missed = [r for r in results if r["size"] == TARGET_SIZE and r["hybrid_p95"] >= TARGET_P95_MS]
    if missed:
        print(f"MISSED: hybrid p95 >= {TARGET_P95_MS:.0f} ms at {TARGET_SIZE:,} passages")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        sys.exit(0)
    sys.exit(main(args.sizes))
