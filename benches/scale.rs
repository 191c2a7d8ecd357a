//! 10,000 stages, fully cached: how long a call takes to derive every key and answer.
//!
//! A chain (`link(i)` reads `link(i - 1)`) and a wide fan-in (`fan` reads `leaf(0..n)`).
//! An attribute binds a fixed set of ancestors, so these stages implement the trait that
//! `#[stage]` generates, by hand: the run context does the same work for them.
//!
//! `cargo bench --bench scale`

#![allow(
    clippy::semicolon_if_nothing_returned,
    reason = "rustfmt makes long benchmark closures blocks"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use stage::__private::{Bincode, BoxError, Digest, Inputs, Params, Plan, Stage, StageInfo};

const N: u32 = 10_000;

struct Link;

impl Stage for Link {
    type Output = u64;
    type Value = u64;
    type Args = (u32,);
    type Codec = Bincode;
    const INFO: &'static StageInfo = &StageInfo {
        code_hash: Digest([1; 32]),
        ..LINK
    };

    fn params(args: &(u32,), cx: &mut Params<'_>) -> Result<(), stage::Error> {
        cx.param("i", &args.0)
    }

    fn inputs(args: &(u32,), cx: &mut Plan<'_>) -> Result<(), stage::Error> {
        if args.0 > 0 {
            cx.ancestor::<Link>("prev", (args.0 - 1,))?;
        }
        Ok(())
    }

    fn compute(args: (u32,), inputs: &Inputs<'_>) -> Result<u64, BoxError> {
        let prev = if args.0 > 0 {
            *inputs.get::<u64>(0)?
        } else {
            0
        };
        Ok(prev + u64::from(args.0))
    }
}

struct Leaf;

impl Stage for Leaf {
    type Output = u64;
    type Value = u64;
    type Args = (u32,);
    type Codec = Bincode;
    const INFO: &'static StageInfo = &StageInfo {
        code_hash: Digest([2; 32]),
        ..LEAF
    };

    fn params(args: &(u32,), cx: &mut Params<'_>) -> Result<(), stage::Error> {
        cx.param("i", &args.0)
    }

    fn inputs(_: &(u32,), _: &mut Plan<'_>) -> Result<(), stage::Error> {
        Ok(())
    }

    fn compute(args: (u32,), _: &Inputs<'_>) -> Result<u64, BoxError> {
        Ok(u64::from(args.0))
    }
}

struct Fan;

impl Stage for Fan {
    type Output = u64;
    type Value = u64;
    type Args = (u32,);
    type Codec = Bincode;
    const INFO: &'static StageInfo = &StageInfo {
        code_hash: Digest([3; 32]),
        ..FAN
    };

    fn params(args: &(u32,), cx: &mut Params<'_>) -> Result<(), stage::Error> {
        cx.param("n", &args.0)
    }

    fn inputs(args: &(u32,), cx: &mut Plan<'_>) -> Result<(), stage::Error> {
        for i in 0..args.0 {
            cx.ancestor::<Leaf>("leaf", (i,))?;
        }
        Ok(())
    }

    fn compute(args: (u32,), inputs: &Inputs<'_>) -> Result<u64, BoxError> {
        (0..args.0 as usize)
            .map(|i| inputs.get::<u64>(i).copied())
            .sum()
    }
}

const LINK: StageInfo = StageInfo {
    name: "link",
    display: "link",
    ..BASE
};
const LEAF: StageInfo = StageInfo {
    name: "leaf",
    display: "leaf",
    ..BASE
};
const FAN: StageInfo = StageInfo {
    name: "fan",
    display: "fan",
    params: &["n"],
    ..BASE
};
const BASE: StageInfo = StageInfo {
    name: "",
    module_path: module_path!(),
    display: "",
    code_hash: Digest([0; 32]),
    version: None,
    uses: &[],
    ancestors: &[],
    raw: &[],
    params: &["i"],
    output: "u64",
    cache: "bincode",
    file: file!(),
    line: 0,
};

fn scale(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = stage::Config::from_env().dir(dir.path());
    let chain_sum = u64::from(N - 1) * u64::from(N) / 2;
    assert_eq!(
        config
            .scope(|| stage::__private::call::<Link>((N - 1,)))
            .unwrap(),
        chain_sum
    );
    assert_eq!(
        config
            .scope(|| stage::__private::call::<Fan>((N,)))
            .unwrap(),
        chain_sum
    );

    report_memory("after the cold calls");
    for round in 1..=3 {
        for _ in 0..100 {
            config
                .scope(|| stage::__private::call::<Link>((N - 1,)))
                .unwrap();
            config
                .scope(|| stage::__private::call::<Fan>((N,)))
                .unwrap();
        }
        report_memory(&format!("after {} warm calls of each", round * 100));
    }

    let chain_keys = || config.scope(|| stage::inspect::key::<Link>((N - 1,)));
    let chain_call = || config.scope(|| stage::__private::call::<Link>((N - 1,)));
    let fan_keys = || config.scope(|| stage::inspect::key::<Fan>((N,)));
    let fan_call = || config.scope(|| stage::__private::call::<Fan>((N,)));
    let mut group = c.benchmark_group("10k-cached-stages");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("chain-keys", |b| {
        b.iter(|| black_box(chain_keys().unwrap()))
    });
    group.bench_function("chain-call", |b| {
        b.iter(|| black_box(chain_call().unwrap()))
    });
    group.bench_function("fan-in-keys", |b| b.iter(|| black_box(fan_keys().unwrap())));
    group.bench_function("fan-in-call", |b| b.iter(|| black_box(fan_call().unwrap())));
    group.finish();
}

/// Prints the process's resident memory and its peak (Linux only): memory that grows from
/// one call to the next would be a leak.
fn report_memory(when: &str) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("?", str::trim)
            .to_owned()
    };
    println!(
        "memory {when}: resident {}, peak {}",
        field("VmRSS:"),
        field("VmHWM:")
    );
}

criterion_group!(benches, scale);
criterion_main!(benches);
