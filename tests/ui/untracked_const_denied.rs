#![deny(deprecated)]

use stage::stage;

const BUCKETS: [u32; 2] = [10, 100];

#[stage]
fn summary() -> u32 {
    BUCKETS[0]
}

fn main() {}
