//! `SET` and `SHOW SETTINGS`: the session's own settings.

use super::Session;
use crate::ast::{Setting, Statement, Stmt};
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
                    Cell::Text(if self.settings.progress { "on" } else { "off" }.into()),
                ));
                // Whether a bar shows at all: only on a terminal, and not
                // with --quiet or --no-progress, whatever the setting.
                kv.rows.push((
                    "progress_shown".into(),
                    Cell::Bool(self.progress_allowed && self.settings.progress),
                ));
                kv.rows.push((
                    "store".into(),
                    Cell::Text(self.store_path.display().to_string()),
                ));
                Some(Output::KeyValues(kv))
            }
            _ => unreachable!("settings() takes SET and SHOW SETTINGS"),
        }
    }
}
