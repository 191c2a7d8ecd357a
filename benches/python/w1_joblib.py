"""W1 with joblib.Memory: load and clean cached (keyed by the CSV path), summary not cached.

Usage: python w1_joblib.py W1_CSV CACHE_DIR
"""
import sys

import pandas as pd
from joblib import Memory

CSV, CACHE = sys.argv[1], sys.argv[2]
memory = Memory(CACHE, verbose=0)


@memory.cache
def load(path):
    return pd.read_csv(path)


@memory.cache
def clean(path):
    df = load(path)
    df = df[df["flag"]].copy()
    df["z"] = df["x"] * df["y"]
    return df


def summary(path):
    df = clean(path)
    return len(df), df.groupby("category")["z"].sum()


rows, sums = summary(CSV)
print(f"{rows} rows, {len(sums)} categories")
