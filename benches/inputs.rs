//! Raw inputs: rechecking an unchanged 1 GB file (a `stat` against the stat index) and
//! hashing a changed one, beside blake3's own multi-threaded hash of the same file.
//!
//! `cargo bench --bench inputs` (writes a 1 GiB file under `target/inputs/` once).

#![allow(
    clippy::semicolon_if_nothing_returned,
    reason = "rustfmt makes long benchmark closures blocks"
)]

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use stage::inspect::StatIndex;

const SIZE: usize = 1 << 30;

fn input() -> PathBuf {
    let path = Path::new("target/inputs/one-gib.bin").to_path_buf();
    if path.metadata().map_or(0, |m| m.len()) != SIZE as u64 {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut out = BufWriter::with_capacity(1 << 22, File::create(&path).unwrap());
        let mut block = vec![0u8; 1 << 20];
        #[allow(clippy::cast_possible_truncation, reason = "masked to a byte")]
        for i in 0..SIZE / block.len() {
            for (j, b) in block.iter_mut().enumerate() {
                *b = ((i.wrapping_mul(31) ^ j.wrapping_mul(7)) & 0xff) as u8;
            }
            out.write_all(&block).unwrap();
        }
        out.flush().unwrap();
    }
    // Older than the racy window, so that an index entry for it is trusted.
    let old = SystemTime::now() - Duration::from_secs(60);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    path
}

fn inputs(c: &mut Criterion) {
    let path = input();
    let dir = tempfile::tempdir().unwrap();
    let index = StatIndex::open(dir.path().join("stat-index"));
    let expected = index.hash(&path).unwrap();
    assert_eq!(
        expected,
        blake3::Hasher::new()
            .update_mmap_rayon(&path)
            .unwrap()
            .finalize()
    );

    let mut group = c.benchmark_group("1gib-input");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("recheck-unchanged", |b| {
        b.iter(|| black_box(index.hash(&path).unwrap()))
    });
    group.bench_function("blake3-mmap-rayon", |b| {
        b.iter(|| {
            black_box(
                blake3::Hasher::new()
                    .update_mmap_rayon(&path)
                    .unwrap()
                    .finalize(),
            )
        })
    });
    let file = File::options().write(true).open(&path).unwrap();
    let mut tick = 0u64;
    group.bench_function("hash-changed", |b| {
        b.iter(|| {
            // A new mtime each time: the index cannot trust its entry, so the content is hashed.
            tick += 1;
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + tick))
                .unwrap();
            black_box(index.hash(&path).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, inputs);
criterion_main!(benches);
