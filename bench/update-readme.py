#!/usr/bin/env python3
"""Puts the last `make bench` run's headline table into README.md (between the `make bench` markers).

    bench/update-readme.py [READMETABLE]      (default: bench/results/latest-readme.md, written by bench.py)

Also copies the full table (bench/results/latest.md) to bench/RESULTS.md. Changes nothing when a file is missing.
"""
import os
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BEGIN, END = "<!-- make bench: begin (bench/update-readme.py) -->", "<!-- make bench: end -->"


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BENCH, "results", "latest-readme.md")
    full = os.path.join(BENCH, "results", "latest.md")
    readme_path = os.path.join(ROOT, "README.md")
    for path in [source, full]:
        if not os.path.exists(path):
            print(f"update-readme: {path} is missing: run `make bench` first", file=sys.stderr)
            return 1
    with open(readme_path) as readme:
        text = readme.read()
    if BEGIN not in text or END not in text:
        print(f"update-readme: README.md has no {BEGIN} … {END} block", file=sys.stderr)
        return 1
    with open(source) as table:
        generated = table.read().strip()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(readme_path, "w") as readme:
        readme.write(head + BEGIN + "\n" + generated + "\n" + END + tail)
    with open(full) as table, open(os.path.join(BENCH, "RESULTS.md"), "w") as results:
        results.write("# Benchmark results\n\nThe last full run of `make bench` (as root), written by bench/update-readme.py. "
                      "What each row measures and against what: [README.md](README.md).\n\n" + table.read())
    print(f"update-readme: README.md and bench/RESULTS.md now hold {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
