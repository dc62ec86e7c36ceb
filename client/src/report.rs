//! What the client tells its user: a progress bar on a terminal, and a
//! summary at the end whose exit code a script can rely on.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Exit codes.
pub(crate) mod exit {
    /// Every sale was stored (or was already stored).
    pub(crate) const OK: u8 = 0;
    /// Some sales were refused; the others were stored.
    pub(crate) const REFUSED: u8 = 1;
    /// Bad arguments or an unreadable input.
    pub(crate) const USAGE: u8 = 2;
    /// The server could not be reached or failed; some sales may not be
    /// stored.
    pub(crate) const SERVER: u8 = 3;
}

/// Most refusals printed one by one; the count covers them all.
const PRINTED_REFUSALS: usize = 50;

/// Counts of a run.
#[derive(Default)]
pub(crate) struct Summary {
    pub(crate) sent: u64,
    pub(crate) stored: u64,
    pub(crate) duplicates: u64,
    pub(crate) refused: u64,
    /// Sales not sent, or sent without an answer saying they were stored.
    pub(crate) unsent: u64,
    pub(crate) refusals: Vec<String>,
    pub(crate) unreadable: Vec<String>,
    pub(crate) skipped: Vec<String>,
    pub(crate) server_error: Option<String>,
    /// The run gave up on the server before the end of its input.
    pub(crate) stopped_reading: bool,
}

impl Summary {
    pub(crate) fn refuse(&mut self, place: &str, reason: &str) {
        self.refused += 1;
        if self.refusals.len() < PRINTED_REFUSALS {
            self.refusals.push(format!("{place}: {reason}"));
        }
    }

    /// Prints the summary and gives the exit code.
    pub(crate) fn finish(&self) -> u8 {
        for refusal in &self.refusals {
            eprintln!("refused {refusal}");
        }
        if self.refused as usize > self.refusals.len() {
            eprintln!(
                "… and {} more refused",
                self.refused as usize - self.refusals.len()
            );
        }
        for skipped in &self.skipped {
            eprintln!("note: {skipped}");
        }
        for unreadable in &self.unreadable {
            eprintln!("error: cannot read {unreadable}");
        }
        if let Some(error) = &self.server_error {
            eprintln!("error: {error}");
        }
        let mut line = format!(
            "sent {}: {} stored, {} duplicates, {} refused",
            self.sent, self.stored, self.duplicates, self.refused
        );
        if self.unsent > 0 {
            line.push_str(&format!(", {} not confirmed stored", self.unsent));
        }
        if self.stopped_reading {
            line.push_str("; the rest of the input was not read");
        }
        eprintln!("{line}");

        if self.server_error.is_some() {
            exit::SERVER
        } else if !self.unreadable.is_empty() {
            exit::USAGE
        } else if self.refused > 0 {
            exit::REFUSED
        } else {
            exit::OK
        }
    }
}

/// A progress bar over bytes read, shown only on a terminal.
pub(crate) struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub(crate) fn start(
        total_bytes: Option<u64>,
        bytes_read: Arc<AtomicU64>,
        enabled: bool,
    ) -> Progress {
        let visible = enabled && std::io::stderr().is_terminal();
        let bar = match total_bytes {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {bytes} read {binary_bytes_per_sec} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });

        let ticking = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                ticking.set_position(bytes_read.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress { bar, ticker }
    }

    pub(crate) fn message(&self, sent: u64, stored: u64) {
        self.bar
            .set_message(format!("{sent} sent, {stored} stored"));
    }

    pub(crate) fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
