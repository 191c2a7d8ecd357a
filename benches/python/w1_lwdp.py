"""W1 with LWDP 0.0.5: load (CSV, cached as parquet) -> clean (parquet) -> summary (not cached).

LWDP keeps its cache in ~/.lwdp_cache: point HOME at an empty folder for a cold run.
Usage: python w1_lwdp.py W1_CSV
"""
import logging
import sys

import pandas as pd
from lwdp.stage import stage  # 0.0.5 exports nothing from the package itself

logging.disable(logging.CRITICAL)
CSV = sys.argv[1]


@stage(raw=CSV, cache=True, cache_format="parquet")
def stg_load(**kwargs) -> pd.DataFrame:
    return pd.read_csv(kwargs["raw"])


@stage(trips=stg_load, cache=True, cache_format="parquet")
def stg_clean(**kwargs) -> pd.DataFrame:
    df = kwargs["trips"]
    df = df[df["flag"]].copy()
    df["z"] = df["x"] * df["y"]
    return df


@stage(rows=stg_clean)
def stg_summary(**kwargs):
    df = kwargs["rows"]
    return len(df), df.groupby("category")["z"].sum()


rows, sums = stg_summary()
print(f"{rows} rows, {len(sums)} categories")
