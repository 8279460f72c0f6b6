#!/usr/bin/env python3
"""Removes from a development corpus every entry that shares an exact text or
any run of 5 words with the frozen test corpus (the rule every development
corpus here went through; see README.md).

Reads the test corpus only to compare; prints counts, never test texts.

usage: decontaminate.py DEV_IN DEV_OUT [--test eval/injection/test.jsonl]
"""
import argparse
import hashlib
import json
import re
import sys


def words(text):
    return re.findall(r"\w+", text.lower())


def runs(text, n=5):
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dev_in")
    ap.add_argument("dev_out")
    ap.add_argument("--test", default="eval/injection/test.jsonl")
    a = ap.parse_args()
    test = [json.loads(l) for l in open(a.test, encoding="utf-8") if l.strip()]
    exact = {t["text"].strip().lower() for t in test}
    test_runs = set()
    for t in test:
        test_runs |= runs(t["text"])
    kept, by_exact, by_run = [], 0, 0
    for line in open(a.dev_in, encoding="utf-8"):
        if not line.strip():
            continue
        e = json.loads(line)
        if e["text"].strip().lower() in exact:
            by_exact += 1
            continue
        if runs(e["text"]) & test_runs:
            by_run += 1
            continue
        kept.append(line if line.endswith("\n") else line + "\n")
    with open(a.dev_out, "w", encoding="utf-8") as f:
        f.writelines(kept)
    sha = hashlib.sha256(open(a.dev_out, "rb").read()).hexdigest()
    print(f"kept {len(kept)}; removed {by_exact} exact, {by_run} sharing a 5-word run; sha256 {sha}", file=sys.stderr)


if __name__ == "__main__":
    main()
