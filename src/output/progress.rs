//! What a synchronous batch shows while it runs, on stderr: the progress
//! bar, built in one place and drawn only when the caller says so (stderr
//! is a terminal, progress is on, not --quiet), and the run's warnings.
//! [`Terminal`] is the command line's sink of the run's events.

use crate::batch::{Counters, Event, Events};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar {
    bar: Option<ProgressBar>,
    estimated: Option<i64>,
}

impl Bar {
    pub fn new(show: bool, estimated: Option<i64>) -> Bar {
        let bar = show.then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(spinner_style());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Bar { bar, estimated }
    }

    /// Redraws from the counters. While ids are still coming the total is
    /// not known: a spinner with a running count (or the estimate).
    pub fn update(&self, c: &Counters, generating: bool) {
        let Some(b) = &self.bar else { return };
        let done = (c.completed + c.failed + c.cancelled).max(0) as u64;
        let total = match (generating, self.estimated) {
            (false, _) => Some(c.total),
            (true, Some(e)) => Some(e.max(c.total)),
            (true, None) => None,
        };
        match total {
            Some(t) => {
                if b.length().is_none() {
                    b.set_style(bar_style());
                }
                b.set_length(t.max(0) as u64);
            }
            None => b.set_message(format!("generating ids: {} so far", c.total)),
        }
        b.set_position(done);
        if total.is_some() {
            b.set_message(format!("{} failed", c.failed));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{bar:40.cyan/blue} {pos}/{len} entities  {rate}  ETA {eta}  {msg}",
    )
    .map(|s| {
        s.with_key(
            "rate",
            |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", st.per_sec());
            },
        )
    })
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {pos} done  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The command line's sink of a run's events: the bar, and the warnings
/// on stderr (even with --quiet: they say something went wrong).
pub struct Terminal {
    show: bool,
    estimated: Option<i64>,
    /// Drawn from the run's first progress on, not before: a statement
    /// refused before its batch runs shows no bar.
    bar: std::cell::OnceCell<Bar>,
}

impl Terminal {
    /// `show`: draw the bar; `estimated`: ESTIMATED_ENTITIES_COUNT.
    pub fn new(show: bool, estimated: Option<i64>) -> Terminal {
        Terminal {
            show,
            estimated,
            bar: std::cell::OnceCell::new(),
        }
    }

    fn bar(&self) -> &Bar {
        self.bar.get_or_init(|| Bar::new(self.show, self.estimated))
    }
}

impl Events for Terminal {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Progress {
                counters,
                generating,
            } => self.bar().update(counters, generating),
            Event::ProgressDone => {
                if let Some(bar) = self.bar.get() {
                    bar.finish();
                }
            }
            Event::StoreLocked { bid, path, waited } => eprintln!(
                "warning: the store {} is locked by another process (waited {} s so far); \
                 batch {bid} keeps what it has done and waits for it. End the process that \
                 holds it (a sqlite3 shell, a backup, a VACUUM), or stop this run (Ctrl-C, \
                 SIGTERM) and finish it later with BATCH_RETRY '{bid}'",
                path.display(),
                waited.as_secs()
            ),
            Event::StoreFree { bid, waited } => eprintln!(
                "batchsh: the store is free again after {} s; batch {bid} goes on",
                waited.as_secs()
            ),
            Event::HookFailed { bid, status, why } => {
                eprintln!("warning: ON_DONE of batch {bid} {why}; the batch is {status}")
            }
            Event::NotMarkedFailed { bid } => eprintln!(
                "batchsh: batch {bid} could not be marked FAILED (the store cannot be \
                 written); it stays as its last commit left it, as after a crash"
            ),
        }
    }
}
