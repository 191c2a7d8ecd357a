//! The progress display: stages done out of those the call needs, the one running, the
//! time elapsed. Shown only on a terminal, and only when the configuration allows it.

use std::time::Duration;

use crate::config::Config;

/// The progress display of one call.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub(crate) fn new(config: &Config) -> Progress {
        use std::io::IsTerminal;
        let show = config.shows_progress() && std::io::stderr().is_terminal();
        Progress(show.then(|| {
            let bar = indicatif::ProgressBar::hidden();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos}/{len} stages · {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        }))
    }

    pub(crate) fn start(&self, needed: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(needed as u64);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    pub(crate) fn running(&self, name: &str, what: &str) {
        if let Some(bar) = &self.0 {
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.inc_length(1);
            }
            bar.set_message(format!("{what} {name}"));
        }
    }

    /// The call needs `n` more steps (items of a per-item stage).
    pub(crate) fn add(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.inc_length(n as u64);
        }
    }

    pub(crate) fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
