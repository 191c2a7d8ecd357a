//! The pipeline as data: writes its graph as Graphviz DOT and Mermaid, and prints what a
//! call would compute (and why) before a run, after it, and after a parameter changes.
//!
//! ```sh
//! cargo run --example dag
//! dot -Tsvg target/dag/pipeline.dot > pipeline.svg   # with Graphviz installed
//! ```

use stage::stage;

/// Sensor readings for `days` days (a made-up but deterministic signal).
#[stage(cache = bincode)]
fn readings(days: u32) -> Vec<f64> {
    (0..days * 24)
        .map(|h| 20.0 + 5.0 * (f64::from(h) / 7.0).sin() + f64::from(h % 5))
        .collect()
}

/// A moving average over `window` readings.
#[stage(r = readings(days), cache = bincode)]
fn smoothed(r: &[f64], days: u32, window: usize) -> Vec<f64> {
    #[allow(clippy::cast_precision_loss, reason = "a window is small")]
    r.windows(window)
        .map(|w| w.iter().sum::<f64>() / w.len() as f64)
        .collect()
}

/// The hours where a reading is higher than both neighbours.
#[stage(r = readings(days), cache = bincode)]
fn peaks(r: &[f64], days: u32) -> Vec<usize> {
    (1..r.len().saturating_sub(1))
        .filter(|&i| r[i] > r[i - 1] && r[i] > r[i + 1])
        .collect()
}

/// A line of text about both.
#[stage(s = smoothed(days, window), p = peaks(days))]
fn report(s: &[f64], p: &[usize], days: u32, window: usize) -> String {
    let max = s.iter().copied().fold(f64::MIN, f64::max);
    format!(
        "{days} days, smoothed over {window}: max {max:.2}, {} peaks",
        p.len()
    )
}

fn status(days: u32, window: usize) -> Result<(), stage::Error> {
    let would_run = stage::explain::<report>((days, window))?;
    if would_run.is_empty() {
        println!("  nothing to compute");
    }
    for (name, reason) in would_run {
        println!("  would compute {name:<9} ({reason})");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    println!("before the run, report(30, 3):");
    status(30, 3)?;
    println!("{}", report(30, 3)?);
    println!("after the run, report(30, 3):");
    status(30, 3)?;
    println!("after an edit of the parameter window = 3 -> 5, report(30, 5):");
    status(30, 5)?;

    // The graph of the edited call: each stage coloured by its state.
    let graph = stage::graph::<report>((30, 5))?;
    std::fs::create_dir_all("target/dag")?;
    std::fs::write("target/dag/pipeline.dot", graph.to_dot())?;
    std::fs::write("target/dag/pipeline.mmd", graph.to_mermaid())?;
    std::fs::write("target/dag/pipeline.json", graph.to_json())?;
    println!(
        "wrote target/dag/pipeline.{{dot,mmd,json}} ({} stages)",
        graph.nodes.len()
    );
    Ok(())
}
