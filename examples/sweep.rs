//! Choosing the best of a few configurations by a score.
//!
//! A noisy signal with a few spikes: `detect` flags the points that stand out from a moving
//! average, given a `window` and a `threshold`; `score` rates a configuration against the
//! known spikes (F1); `best` sweeps a grid of configurations and keeps the best one. Each
//! point of the grid is an ordinary call of `score`, cached under the key a direct call has:
//! widen the grid and only the new points are computed.
//!
//! ```sh
//! cargo run --example sweep
//! ```

use serde::{Deserialize, Serialize};
use stage::stage;

/// A signal and the positions of its true spikes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signal {
    /// The samples.
    pub values: Vec<f64>,
    /// Where the true spikes are.
    pub spikes: Vec<usize>,
}

/// 2,000 points of a slow wave with deterministic noise, and a spike every 97 points.
#[stage(cache = bincode)]
pub fn signal() -> Signal {
    let mut state = 0x2545_f491_u64;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        f64::from(u32::try_from(state % 1000).unwrap_or(0)) / 1000.0 - 0.5
    };
    let spikes: Vec<usize> = (50..2000).step_by(97).collect();
    let values = (0..2000)
        .map(|i| {
            let wave = (f64::from(u32::try_from(i).unwrap_or(0)) / 150.0).sin() * 3.0;
            let spike = if spikes.contains(&i) { 4.0 } else { 0.0 };
            wave + noise() + spike
        })
        .collect();
    Signal { values, spikes }
}

/// The points further than `threshold` (in tenths) from the mean of the `window` points
/// around them.
#[stage(s = signal, cache = bincode)]
pub fn detect(s: &Signal, window: usize, threshold: u32) -> Vec<usize> {
    let half = window / 2;
    let limit = f64::from(threshold) / 10.0;
    (0..s.values.len())
        .filter(|&i| {
            let around = &s.values[i.saturating_sub(half)..(i + half + 1).min(s.values.len())];
            #[allow(clippy::cast_precision_loss, reason = "a window of a few points")]
            let mean = around.iter().sum::<f64>() / around.len() as f64;
            (s.values[i] - mean).abs() > limit
        })
        .collect()
}

/// F1 of a configuration against the true spikes, in thousandths.
#[stage(s = signal, found = detect(window, threshold), cache = bincode)]
pub fn score(s: &Signal, found: &Vec<usize>, window: usize, threshold: u32) -> u32 {
    let hits = found.iter().filter(|i| s.spikes.contains(i)).count();
    if hits == 0 {
        return 0;
    }
    #[allow(clippy::cast_precision_loss, reason = "counts of a few thousand")]
    let (precision, recall) = (
        hits as f64 / found.len() as f64,
        hits as f64 / s.spikes.len() as f64,
    );
    let f1 = 2.0 * precision * recall / (precision + recall);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0..=1000"
    )]
    let thousandths = (f1 * 1000.0).round() as u32;
    thousandths
}

/// The best configuration of a grid: windows of 5, 11 and 21 points, thresholds given.
#[stage(scores = sweep(score, window = [5, 11, 21], threshold = thresholds), cache = bincode)]
pub fn best(scores: &Vec<((usize, u32), u32)>, thresholds: Vec<u32>) -> ((usize, u32), u32) {
    let _ = thresholds;
    scores
        .iter()
        .copied()
        .max_by_key(|&((window, threshold), f1)| (f1, std::cmp::Reverse((window, threshold))))
        .unwrap_or_default()
}

#[allow(
    dead_code,
    reason = "also compiled into tests/examples.rs, which has its own main"
)]
fn main() -> Result<(), stage::Error> {
    for thresholds in [vec![10, 20], vec![10, 20, 30]] {
        let (result, log) = stage::observe(|| best(thresholds.clone()));
        let ((window, threshold), f1) = result?;
        println!("thresholds {thresholds:?}:");
        print!("{log}");
        println!(
            "best: window {window}, threshold {:.1}, F1 {:.3}\n",
            f64::from(threshold) / 10.0,
            f64::from(f1) / 1000.0
        );
    }
    Ok(())
}
