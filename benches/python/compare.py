"""Times W1 as whole processes, cold (empty cache) and warm (all cached): `#[stage]` with
parquet entries (`stage`) and Arrow IPC entries (`arrow`), the same pipeline by hand in
Rust (`hand`), LWDP 0.0.5 and joblib.Memory. Prints medians of wall time and peak memory.

    cargo build --release --example w1
    python benches/python/compare.py --tools hand,stage,arrow   # the standard library only
    python -m pip install -r benches/python/requirements.txt     # for lwdp and joblib
    python benches/python/compare.py [--runs 5]

`target/release/examples/w1 compare` runs the Rust modes alone, without Python.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
W1 = ROOT / "target" / "release" / "examples" / "w1"
CSV = ROOT / "target" / "w1" / "w1.csv"
HERE = Path(__file__).resolve().parent


def command(tool, cache):
    if tool in ("stage", "arrow", "hand"):
        return [str(W1), tool, str(CSV), str(cache)], {}
    if tool == "lwdp":
        (cache / ".lwdp_cache").mkdir(exist_ok=True)  # LWDP creates only the leaf folder
        return [sys.executable, str(HERE / "w1_lwdp.py"), str(CSV)], {"HOME": str(cache)}
    return [sys.executable, str(HERE / "w1_joblib.py"), str(CSV), str(cache)], {}


def timed(tool, cache):
    """Wall seconds and peak resident MiB of one run."""
    argv, env = command(tool, cache)
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{tool} failed ({status})")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def measure(tool, runs):
    cold, warm = [], []
    for _ in range(runs):
        cache = Path(tempfile.mkdtemp(prefix=f"w1-{tool}-"))
        try:
            cold.append(timed(tool, cache))
            time.sleep(2.5)  # let the CSV's index entry settle past the racy window once
            warm.extend(timed(tool, cache) for _ in range(3))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    median = lambda runs, i: statistics.median(r[i] for r in runs)
    return median(cold, 0), median(warm, 0), median(cold, 1), median(warm, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tools", default="hand,stage,arrow,lwdp,joblib")
    args = parser.parse_args()
    if not W1.exists():
        sys.exit("build it first: cargo build --release --example w1")
    subprocess.run([str(W1), "generate", str(CSV)], check=True)
    results = {tool: measure(tool, args.runs) for tool in args.tools.split(",")}
    base = results.get("hand")
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
    print(f"{'tool':<8} {'cold s':>8} {'warm s':>8} {'cold MiB':>9} {'warm MiB':>9}"
          f" {'cold/hand':>10} {'warm/hand':>10} {'warm MiB/hand':>14}")
    for tool, (cold, warm, cold_mib, warm_mib) in results.items():
        print(f"{tool:<8} {cold:8.3f} {warm:8.3f} {cold_mib:9.1f} {warm_mib:9.1f}"
              f" {ratio(cold, base and base[0]):>10} {ratio(warm, base and base[1]):>10}"
              f" {ratio(warm_mib, base and base[3]):>14}")


if __name__ == "__main__":
    main()
