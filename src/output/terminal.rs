//! What the terminal on stdout measures: its width fits tables to it, its
//! height decides whether a table goes through the pager.

use std::io::IsTerminal;

/// `(columns, rows)` of the terminal on stdout; `None` when stdout is not
/// a terminal or the terminal does not say (a new pseudo-terminal is 0 by 0).
pub fn stdout_size() -> Option<(u16, u16)> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(&out).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}
