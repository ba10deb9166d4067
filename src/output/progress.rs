//! What a synchronous batch shows while it runs, on stderr: the progress
//! bar, built in one place and drawn only when the caller says so (stderr
//! is a terminal, progress is on, not --quiet), and the run's warnings.
//! [`Terminal`] is the command line's sink of the run's events, and of
//! the entities' lines with `SHOW_OUTPUT=true` ([`Terminal::lines`]).

use crate::batch::{Counters, Event, Events, LineSink, Stream};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::sync::{Arc, OnceLock};

pub struct Bar {
    bar: Option<ProgressBar>,
    estimated: Option<i64>,
    glyphs: Glyphs,
    /// The style drawn now.
    drawn: std::cell::Cell<Drawn>,
}

/// Which of the bar's styles is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drawn {
    /// Ids still come, the total is not known.
    Spinner,
    Running,
    Paused,
}

impl Bar {
    pub fn new(show: bool, estimated: Option<i64>) -> Bar {
        let glyphs = Glyphs::of_locale();
        let bar = show.then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(spinner_style(glyphs));
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Bar {
            bar,
            estimated,
            glyphs,
            drawn: std::cell::Cell::new(Drawn::Spinner),
        }
    }

    /// Redraws from the counters. While ids are still coming the total is
    /// not known: a spinner with a running count (or the estimate). A
    /// paused batch says PAUSED, with no rate or ETA (nothing runs).
    pub fn update(&self, bid: &str, c: &Counters, generating: bool, paused: bool) {
        let Some(b) = &self.bar else { return };
        b.set_prefix(crate::batch::short_id(bid).to_string());
        let done = (c.completed + c.failed + c.cancelled).max(0) as u64;
        let total = match (generating, self.estimated) {
            (false, _) => Some(c.total),
            (true, Some(e)) => Some(e.max(c.total)),
            (true, None) => None,
        };
        let drawn = match (total, paused) {
            (None, _) => Drawn::Spinner,
            (Some(_), false) => Drawn::Running,
            (Some(_), true) => Drawn::Paused,
        };
        if drawn != self.drawn.replace(drawn) {
            b.set_style(match drawn {
                Drawn::Spinner => spinner_style(self.glyphs),
                Drawn::Running => bar_style(self.glyphs),
                Drawn::Paused => paused_style(self.glyphs),
            });
        }
        // The message first: setting the length or the position may draw,
        // and must not draw the bar with the spinner's message.
        b.set_message(match total {
            Some(_) => format!("{} failed", c.failed),
            None => format!("generating ids: {} so far", c.total),
        });
        if let Some(t) = total {
            b.set_length(t.max(0) as u64);
        }
        b.set_position(done);
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// A line of text redrawn in place on stderr, with a spinner and the time
/// spent: what `BATCH_WAIT NAME=...` is waiting for. Drawn only when
/// `show` (stderr is a terminal, progress is on, not --quiet).
pub struct Line(Option<ProgressBar>);

impl Line {
    pub fn new(show: bool) -> Line {
        Line(show.then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {elapsed_precise}  {wide_msg}")
                .map(|s| s.tick_chars(Glyphs::of_locale().spinner()))
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            b.set_style(style);
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        }))
    }

    /// Whether it is drawn.
    pub fn shown(&self) -> bool {
        self.0.is_some()
    }

    pub fn say(&self, text: &str) {
        if let Some(b) = &self.0 {
            b.set_message(text.to_string());
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// The characters the bar is drawn with: block glyphs where the locale
/// is UTF-8, plain ASCII where it is not (a terminal in the C locale
/// would show them as garbage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Glyphs {
    Unicode,
    Ascii,
}

impl Glyphs {
    /// From `LC_ALL`, else `LC_CTYPE`, else `LANG` (the first set, as
    /// the C library reads them).
    pub fn of_locale() -> Glyphs {
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Glyphs::of(locale.as_deref())
    }

    fn of(locale: Option<&str>) -> Glyphs {
        let utf8 = locale.is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        });
        if utf8 { Glyphs::Unicode } else { Glyphs::Ascii }
    }

    fn bar(self) -> &'static str {
        match self {
            Glyphs::Unicode => "█▉▊▋▌▍▎▏ ",
            Glyphs::Ascii => "#>-",
        }
    }

    fn spinner(self) -> &'static str {
        match self {
            Glyphs::Unicode => "⠁⠂⠄⡀⢀⠠⠐⠈ ",
            Glyphs::Ascii => "|/-\\ ",
        }
    }
}

/// The bar while entities run: the bid's first 8 characters, done of the
/// total, percentage, elapsed time, rate and ETA. The bar takes what the
/// terminal's width leaves (`wide_bar`): a line wider than the terminal
/// wraps, and every redraw then leaves a line behind.
fn bar_style(g: Glyphs) -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} {wide_bar} {pos}/{len} {percent}%  {elapsed_precise}  {rate}  ETA {eta}  {msg}",
    )
    .map(|s| {
        s.with_key(
            "rate",
            |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", st.per_sec());
            },
        )
        .progress_chars(g.bar())
    })
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The bar of a paused batch: no rate, no ETA (nothing runs).
fn paused_style(g: Glyphs) -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} {wide_bar} {pos}/{len} {percent}%  {elapsed_precise}  PAUSED  {msg}",
    )
    .map(|s| s.progress_chars(g.bar()))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The spinner while ids still come; its message is cut to the
/// terminal's width (`wide_msg`), as the bar is.
fn spinner_style(g: Glyphs) -> ProgressStyle {
    ProgressStyle::with_template("{prefix} {spinner} {pos} done  {elapsed_precise}  {wide_msg}")
        .map(|s| s.tick_chars(g.spinner()))
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
    /// The drawn bar, for the worker threads that print lines above it.
    drawn: Arc<OnceLock<ProgressBar>>,
    /// Where the entities' stdout lines go ([`Terminal::lines`]).
    stdout_lines: LinesTo,
}

/// Where the entities' stdout lines go with `SHOW_OUTPUT=true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinesTo {
    /// stdout: the table format, where they come before the result row.
    Stdout,
    /// stderr: stdout holds one JSON (or CSV) document, kept parseable.
    Stderr,
}

impl Terminal {
    /// `show`: draw the bar; `estimated`: ESTIMATED_ENTITIES_COUNT.
    pub fn new(show: bool, estimated: Option<i64>) -> Terminal {
        Terminal {
            show,
            estimated,
            bar: std::cell::OnceCell::new(),
            drawn: Arc::new(OnceLock::new()),
            stdout_lines: LinesTo::Stdout,
        }
    }

    /// The same terminal, sending the entities' stdout lines to `to`.
    pub fn stdout_lines_to(self, to: LinesTo) -> Terminal {
        Terminal {
            stdout_lines: to,
            ..self
        }
    }

    fn bar(&self) -> &Bar {
        self.bar.get_or_init(|| {
            let bar = Bar::new(self.show, self.estimated);
            if let Some(b) = &bar.bar {
                let _ = self.drawn.set(b.clone());
            }
            bar
        })
    }
}

/// One line of an entity as `SHOW_OUTPUT` prints it: the entity id, a
/// tab, the line (as `parallel --tag`).
fn tagged(entity_id: &str, line: &str) -> String {
    format!("{entity_id}\t{line}\n")
}

impl Events for Terminal {
    /// Each line, tagged, above the bar (which is cleared while it
    /// prints, then drawn again): stdout lines on stdout (or on stderr,
    /// see [`LinesTo`]), stderr lines on stderr. Even with `--quiet`: the
    /// statement asked for them. A line that cannot be written (a closed
    /// pipe) is dropped; the batch goes on.
    fn lines(&self) -> Option<LineSink> {
        let drawn = Arc::clone(&self.drawn);
        let stdout_lines = self.stdout_lines;
        Some(LineSink(Arc::new(move |entity_id, stream, line| {
            let text = tagged(entity_id, line);
            let print = || {
                if stream == Stream::Stdout && stdout_lines == LinesTo::Stdout {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
                } else {
                    let _ = std::io::stderr().lock().write_all(text.as_bytes());
                }
            };
            match drawn.get() {
                Some(bar) => bar.suspend(print),
                None => print(),
            }
        })))
    }

    fn event(&self, e: Event<'_>) {
        match e {
            Event::Progress {
                bid,
                counters,
                generating,
                paused,
            } => self.bar().update(bid, counters, generating, paused),
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
            Event::StoreUnreachable { bid, why, waited } => eprintln!(
                "warning: the store cannot be reached (for {} s so far: {why}); batch {bid} \
                 keeps what it has done and tries again every few seconds. Stop this run \
                 (Ctrl-C, SIGTERM) to finish it later with BATCH_RETRY '{bid}'",
                waited.as_secs()
            ),
            Event::StoreBack { bid, waited } => eprintln!(
                "batchsh: the store answers again after {} s; batch {bid} goes on",
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

#[cfg(test)]
mod tests {
    use super::Glyphs;

    #[test]
    fn block_glyphs_only_in_a_utf8_locale() {
        for (locale, glyphs) in [
            (Some("en_US.UTF-8"), Glyphs::Unicode),
            (Some("C.utf8"), Glyphs::Unicode),
            (Some("C"), Glyphs::Ascii),
            (Some("POSIX"), Glyphs::Ascii),
            (Some("de_DE.ISO-8859-1"), Glyphs::Ascii),
            (None, Glyphs::Ascii),
        ] {
            assert_eq!(Glyphs::of(locale), glyphs, "{locale:?}");
        }
    }
}
