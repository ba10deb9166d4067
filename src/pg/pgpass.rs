//! The password file, as libpq reads it: `PGPASSFILE`, else `~/.pgpass`;
//! lines `hostname:port:database:username:password`, `*` matching
//! anything, `\:` and `\\` escaping; the first line that matches wins; a
//! file that others can read is ignored (with a warning), as libpq does.

use postgres::config::Host;
use std::path::PathBuf;

/// The password for `config`'s first host, port, database and user.
pub fn lookup(config: &postgres::Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; it is ignored \
                 (chmod 0600 {} to use it)",
                path.display(),
                path.display()
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        // libpq matches a socket connection with "localhost".
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or_default(),
        config.get_user().unwrap_or_default(),
    ];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(fields)
        .find(|f| {
            f[..4]
                .iter()
                .zip(wanted)
                .all(|(pat, want)| pat == "*" || pat == want)
        })
        .map(|f| f[4].clone())
}

/// A line's five fields, unescaped; `None` for a line with fewer.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn a_line_has_five_fields_and_escapes() {
        assert_eq!(
            fields(r"db.example:5432:*:alice:pa\:ss\\w").unwrap(),
            vec!["db.example", "5432", "*", "alice", r"pa:ss\w"]
        );
        assert_eq!(fields("h:1:d:u:a:b").unwrap()[4], "a:b");
        assert!(fields("h:1:d").is_none());
    }
}
