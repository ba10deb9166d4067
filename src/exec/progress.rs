//! The progress bar of a synchronous batch, built in one place. It is
//! drawn on stderr only when the caller says so (stderr is a terminal,
//! progress is on, not --quiet); otherwise every call is a no-op.

use crate::store::batches::Counters;
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
