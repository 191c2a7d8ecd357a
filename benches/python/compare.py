"""Times W1 as whole processes, cold (empty cache) and warm (all cached): `#[stage]`, the
same pipeline by hand in Rust, LWDP 0.0.5 and joblib.Memory. Prints medians and ratios.

    cargo build --release --example w1
    python -m pip install -r benches/python/requirements.txt
    python benches/python/compare.py [--runs 5]
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
    if tool in ("stage", "hand"):
        return [str(W1), tool, str(CSV), str(cache)], {}
    if tool == "lwdp":
        (cache / ".lwdp_cache").mkdir(exist_ok=True)  # LWDP creates only the leaf folder
        return [sys.executable, str(HERE / "w1_lwdp.py"), str(CSV)], {"HOME": str(cache)}
    return [sys.executable, str(HERE / "w1_joblib.py"), str(CSV), str(cache)], {}


def timed(tool, cache):
    argv, env = command(tool, cache)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    return time.perf_counter() - started


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
    return statistics.median(cold), statistics.median(warm)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tools", default="stage,hand,lwdp,joblib")
    args = parser.parse_args()
    if not W1.exists():
        sys.exit("build it first: cargo build --release --example w1")
    subprocess.run([str(W1), "generate", str(CSV)], check=True)
    results = {tool: measure(tool, args.runs) for tool in args.tools.split(",")}
    base_cold, base_warm = results.get("stage", (None, None))
    print(f"{'tool':<8} {'cold s':>8} {'warm s':>8} {'cold / stage':>13} {'warm / stage':>13}")
    for tool, (cold, warm) in results.items():
        ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
        print(f"{tool:<8} {cold:8.3f} {warm:8.3f} {ratio(cold, base_cold):>13} {ratio(warm, base_warm):>13}")


if __name__ == "__main__":
    main()
