//! `SET` and `SHOW SETTINGS`: the session's own settings.

use super::Session;
use crate::ast::{Setting, Statement, Stmt, on_off};
use crate::output::{Cell, KeyValues, Output};

impl Session {
    /// Runs `SET` or `SHOW SETTINGS`.
    pub(super) fn settings(&mut self, stmt: &Stmt) -> Option<Output> {
        use Statement as S;
        match &stmt.kind {
            S::Set { setting } => {
                match setting {
                    Setting::Format(f) => self.settings.format = *f,
                    Setting::Progress(p) => self.settings.progress = *p,
                    Setting::Expanded(e) => self.settings.expanded = *e,
                    Setting::Timing(t) => self.settings.timing = *t,
                    Setting::Pager(p) => self.settings.pager = *p,
                }
                None
            }
            S::ShowSettings => {
                let mut kv = KeyValues::default();
                kv.rows.push((
                    "format".into(),
                    Cell::Text(self.settings.format.name().into()),
                ));
                kv.rows.push((
                    "progress".into(),
                    Cell::Text(on_off(self.settings.progress).into()),
                ));
                // Whether a bar shows at all: only on a terminal, and not
                // with --quiet or --no-progress, whatever the setting.
                kv.rows.push((
                    "progress_shown".into(),
                    Cell::Bool(self.progress_allowed && self.settings.progress),
                ));
                kv.push("expanded", self.settings.expanded.name());
                kv.push("timing", on_off(self.settings.timing));
                kv.push("pager", on_off(self.settings.pager));
                kv.rows.push((
                    "store".into(),
                    Cell::Text(crate::store::shown(&self.store_path)),
                ));
                Some(Output::KeyValues(kv))
            }
            _ => unreachable!("settings() takes SET and SHOW SETTINGS"),
        }
    }
}
