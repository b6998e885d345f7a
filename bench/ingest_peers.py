#!/usr/bin/python3
"""The peers of digits-ingest, timed in-process: numpy.loadtxt and pandas.read_csv on a Kaggle CSV.

usage: ingest_peers.py numpy|pandas CSV [--check DATASET.npy]

Prints one line "seconds=<s> rows=<n> cols=<m>": the time of the parsing call alone (interpreter start-up and
imports excluded, so the peers are timed generously; digits-ingest is timed as a whole process, writing its output).
--check compares the parsed values with a dataset written by digits-ingest (after the timing) and fails on a
difference. Run with /usr/bin/python3 (the Debian numpy/pandas).
"""
import argparse
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peer", choices=["numpy", "pandas"])
    ap.add_argument("csv")
    ap.add_argument("--check", metavar="DATASET.npy")
    a = ap.parse_args()
    if a.peer == "numpy":
        t = time.perf_counter()
        x = np.loadtxt(a.csv, delimiter=",", skiprows=1, dtype=np.uint8)
        dt = time.perf_counter() - t
    else:
        import pandas as pd

        t = time.perf_counter()
        x = pd.read_csv(a.csv)
        dt = time.perf_counter() - t
        x = x.to_numpy()
    print("seconds=%.4f rows=%d cols=%d" % (dt, x.shape[0], x.shape[1]))
    if a.check:
        d = np.load(a.check, mmap_mode="r")
        if "label" in d.dtype.names:
            ours = np.concatenate([d["label"][:, None], d["image"].reshape(len(d), -1)], axis=1)
        else:
            ours = d["image"].reshape(len(d), -1)
        if ours.shape != x.shape or not np.array_equal(ours, x):
            print("check: %s differs from %s.%s" % (a.check, a.peer, "loadtxt" if a.peer == "numpy" else "read_csv"))
            sys.exit(1)
        print("check: identical values")


if __name__ == "__main__":
    main()
