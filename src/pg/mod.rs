//! Connections to PostgreSQL, for the store (`--store postgres://…`) and
//! for `TYPE POSTGRES` interfaces alike: the URL as libpq reads it (a
//! `postgres://` or `postgresql://` URL, `?host=/run/postgresql` for a
//! unix socket), the password from the URL, `PGPASSWORD` or the password
//! file (`PGPASSFILE`, else `~/.pgpass`), `sslmode` `disable`, `prefer`
//! (the default) or `require`, and a connect timeout (10 s unless the URL's
//! `connect_timeout` says otherwise), so that an unreachable host is an
//! error in seconds rather than a hang. No password is ever printed: every
//! message names the server by [`Target::shown`].

mod pgpass;
mod tls;

use postgres::config::{Host, SslMode};
use std::time::Duration;
use thiserror::Error;

/// How long a connection may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Error)]
pub enum PgError {
    #[error(
        "{shown} is not a PostgreSQL URL ({reason}); write it as \
         postgres://user[:password]@host[:port]/database[?sslmode=require]"
    )]
    BadUrl { shown: String, reason: String },
    /// No connection now: the server did not answer, or answered that
    /// it cannot take one yet (it starts, it is full). Waiting may mend it.
    #[error("cannot connect to {shown}: {reason}")]
    Connect { shown: String, reason: String },
    /// The server answered that no database has the URL's name (never
    /// made, or dropped or renamed since): waiting does not mend it. A
    /// user refused is not this: the login service behind it (LDAP, PAM)
    /// may be down for a moment, or a role re-created.
    #[error("cannot connect to {shown}: {reason}")]
    NoDatabase { shown: String, reason: String },
}

impl PgError {
    /// The error of a connection made again to a database that was there
    /// (a store this process had open): it went away meanwhile, and an
    /// empty one made in its place (`createdb`) would not be the store.
    pub fn again(self, target: &Target) -> PgError {
        match self {
            PgError::NoDatabase { shown, .. } => PgError::NoDatabase {
                shown,
                reason: format!(
                    "database \"{}\" does not exist any more: it was dropped or renamed while \
                     this process used it; restore it, or give batchsh another store with --store",
                    target.database()
                ),
            },
            other => other,
        }
    }
}

/// A PostgreSQL server and database, as a URL named it.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Whether `text` is a PostgreSQL URL rather than a file name.
pub fn is_url(text: &str) -> bool {
    let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `url` with its password, if any, written `***`.
pub fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let user_info = &authority[..at];
    match user_info.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..start],
            &user_info[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

impl Target {
    /// Reads `url`, filling in the password from `PGPASSWORD` or the
    /// password file when the URL has none.
    pub fn parse(url: &str) -> Result<Target, PgError> {
        let shown = redact(url);
        let bad = |reason: String| PgError::BadUrl {
            shown: shown.clone(),
            reason,
        };
        if !is_url(url) {
            return Err(bad("it does not start with postgres://".into()));
        }
        let mut config: postgres::Config = url.parse().map_err(|e| bad(clean(&e)))?;
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if config.get_dbname().is_none() {
            return Err(bad(
                "it names no database: end it with /database, as in postgres://user@host/batchsh"
                    .into(),
            ));
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .ok()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if config.get_password().is_none() {
            if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
                config.password(p);
            } else if let Some(p) = pgpass::lookup(&config) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("batchsh");
        Ok(Target { config, shown })
    }

    /// The URL as messages show it: the password written `***`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The server's address, for messages: `host:port` or the socket folder.
    pub fn server(&self) -> String {
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => format!("{h}:{port}"),
            Some(Host::Unix(p)) => format!("the socket in {} (port {port})", p.display()),
            None => format!("localhost:{port}"),
        }
    }

    /// A new connection, TLS as `sslmode` asks.
    pub fn connect(&self) -> Result<postgres::Client, PgError> {
        let result = match self.config.get_ssl_mode() {
            SslMode::Disable => self.config.connect(postgres::NoTls),
            _ => self.config.connect(tls::connector()),
        };
        result.map_err(|e| {
            let (shown, reason) = (self.shown.clone(), connect_reason(&e, self));
            if no_database(&e) {
                PgError::NoDatabase { shown, reason }
            } else {
                PgError::Connect { shown, reason }
            }
        })
    }
}

/// For [`crate::knobs::store_server`]: the URL of the database on the
/// server `admin` names that holds the store of `home`, created if missing.
pub fn database_for(admin: &str, home: &std::path::Path) -> Result<String, PgError> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::path::absolute(home)
        .unwrap_or_else(|_| home.to_path_buf())
        .hash(&mut h);
    let name = format!("bsh_home_{:016x}", h.finish());
    let target = Target::parse(admin)?;
    let mut client = target.connect()?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .map_err(|e| PgError::Connect {
            shown: target.shown.clone(),
            reason: db_message(&e),
        })?
        .is_some();
    if !exists {
        match client.batch_execute(&format!("CREATE DATABASE {name}")) {
            Ok(()) => {}
            // Another process of the test made it first.
            Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => {
                return Err(PgError::Connect {
                    shown: target.shown.clone(),
                    reason: db_message(&e),
                });
            }
        }
    }
    Ok(with_database(admin, &name))
}

/// `url` with its database (the path's last segment) replaced by `name`,
/// its server and query kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let start = base.find("://").map_or(0, |i| i + 3);
    let base = base[start..]
        .rfind('/')
        .map_or(base, |i| &base[..start + i]);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Whether the server refused the connection because no database has the
/// URL's name (3D000), which waiting does not mend.
fn no_database(e: &postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code() == "3D000")
}

/// What a failed connection means, in words that say what to do.
fn connect_reason(e: &postgres::Error, target: &Target) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return match code {
            "28P01" | "28000" => format!(
                "the server refused user {}: {} (give the password in the URL, in PGPASSWORD or in ~/.pgpass)",
                target.config.get_user().unwrap_or_default(),
                db.message()
            ),
            "3D000" => format!(
                "{} (create it with: createdb {})",
                db.message(),
                target.database()
            ),
            _ => format!("{} (SQLSTATE {code})", db.message()),
        };
    }
    let text = clean(e);
    if text.contains("timed out") || text.contains("timeout") {
        let t = target
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        return format!(
            "{} did not answer within {} s; check the host and port, and that the server listens there",
            target.server(),
            t.as_secs()
        );
    }
    if text.contains("refused") || text.contains("No such file") {
        return format!(
            "nothing listens at {} ({text}); check the host and port, and that the server runs",
            target.server()
        );
    }
    text
}

/// An error's text with its causes, on one line.
pub fn clean(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// A database error's words, with its SQLSTATE and where in the statement.
pub fn db_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            m
        }
        None => clean(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_its_server_and_query() {
        assert_eq!(
            with_database(
                "postgres://postgres@localhost:5432/postgres?host=/tmp/x",
                "t1"
            ),
            "postgres://postgres@localhost:5432/t1?host=/tmp/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db", "t2"),
            "postgres://u:p@h/t2"
        );
        assert_eq!(with_database("postgres://u@h", "t3"), "postgres://u@h/t3");
    }

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgresql://u:p%40ss@h:5433/db?sslmode=require"),
            "postgresql://u:***@h:5433/db?sslmode=require"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn urls_are_told_from_file_names() {
        assert!(is_url("postgres://h/db"));
        assert!(is_url("PostgreSQL://h/db"));
        assert!(!is_url("store.db"));
        assert!(!is_url("./postgres:x"));
    }

    #[test]
    fn a_url_without_a_database_is_refused() {
        let e = Target::parse("postgres://u@h").unwrap_err().to_string();
        assert!(e.contains("names no database"), "{e}");
        let e = Target::parse("postgres://u@h/db?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a PostgreSQL URL"), "{e}");
    }

    #[test]
    fn the_password_in_the_url_is_used_and_hidden() {
        let t = Target::parse("postgres://u:pw@h:6000/db").unwrap();
        assert_eq!(t.shown(), "postgres://u:***@h:6000/db");
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.database(), "db");
        assert_eq!(t.server(), "h:6000");
    }
}
