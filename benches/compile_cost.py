"""What `#[stage]` adds to `cargo build`: a crate of 100 annotated functions beside the same
100 functions without the attribute, each rebuilt from a touched source after its
dependencies are built. Prints the median build times and the cost per function.

    python benches/compile_cost.py [--functions 100] [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "target" / "compile-cost"

MANIFEST = """[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
stage = {{ path = "{root}", default-features = false }}
serde = {{ version = "1", features = ["derive"] }}

[workspace]
"""


def source(functions, annotated):
    lines = ["#![allow(dead_code, unused_imports)]", "use stage::stage;", ""]
    for i in range(functions):
        if annotated:
            binding = f"(prev = f{i - 1}(n), cache = bincode)" if i else "(cache = bincode)"
            lines.append(f"#[stage{binding}]")
        args = "prev: &Vec<u64>, n: u64" if i else "n: u64"
        body = f"prev.iter().map(|x| x + n + {i}).collect()" if i else "(0..n).collect()"
        lines.append(f"fn f{i}({args}) -> Vec<u64> {{ {body} }}")
    lines.append("fn main() {}")
    return "\n".join(lines) + "\n"


def build(crate):
    env = {**os.environ, "CARGO_TARGET_DIR": str(WORK / "target")}
    started = time.perf_counter()
    subprocess.run(["cargo", "build", "--quiet", "--manifest-path", str(crate / "Cargo.toml")], check=True, env=env)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = {}
    for name, annotated in (("plain", False), ("staged", True)):
        crate = WORK / name
        (crate / "src").mkdir(parents=True, exist_ok=True)
        (crate / "Cargo.toml").write_text(MANIFEST.format(name=f"cost-{name}", root=ROOT))
        lock = ROOT / "Cargo.lock"
        if lock.exists() and not (crate / "Cargo.lock").exists():
            (crate / "Cargo.lock").write_text(lock.read_text())
        main_rs = crate / "src" / "main.rs"
        main_rs.write_text(source(args.functions, annotated))
        build(crate)  # dependencies
        runs = []
        for _ in range(args.runs):
            main_rs.write_text(main_rs.read_text())  # touch: rebuild this crate only
            os.utime(main_rs)
            runs.append(build(crate))
        times[name] = statistics.median(runs)
    plain, staged = times["plain"], times["staged"]
    per_fn = (staged - plain) / args.functions * 1000
    print(f"{args.functions} plain functions:   {plain:.2f} s")
    print(f"{args.functions} #[stage] functions: {staged:.2f} s")
    print(f"#[stage] adds {per_fn:.1f} ms per function to a debug build")


if __name__ == "__main__":
    main()
