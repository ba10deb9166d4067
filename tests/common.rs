//! A small builder that runs the real `batchsh` binary in a temporary
//! `BATCHSH_HOME`, with no inherited batchsh environment, and checks what
//! it prints against the expectations set on it, all of them at once.

use batchsh::ast::{Statement, Stmt};
use batchsh::syntax::grammar::{Item, sections};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Test {
    args: Vec<String>,
    stdin: Option<String>,
    home: tempfile::TempDir,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    timeout: Option<Duration>,
    expect: Expect,
}

/// What a run must show; what is not set is not checked.
#[derive(Default)]
struct Expect {
    status: Option<i32>,
    stdout: Option<String>,
    stderr: Option<String>,
    stdout_json: Option<serde_json::Value>,
    /// `(stream, how, text)`, as in `(Stderr, Contains, "error: ")`.
    texts: Vec<(Stream, Text, String)>,
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

#[derive(Clone, Copy)]
enum Text {
    Contains,
    Lacks,
    StartsWith,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run's BATCHSH_HOME, kept until the output is dropped.
    pub home: tempfile::TempDir,
}

impl Test {
    pub fn new() -> Test {
        Test {
            args: Vec::new(),
            stdin: None,
            home: tempfile::tempdir().expect("temporary BATCHSH_HOME"),
            cwd: None,
            env: Vec::new(),
            timeout: None,
            expect: Expect::default(),
        }
    }

    /// An environment variable for batchsh.
    #[must_use]
    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    #[must_use]
    pub fn arg(mut self, a: impl Into<String>) -> Test {
        self.args.push(a.into());
        self
    }

    #[must_use]
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Test {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    #[must_use]
    pub fn stdin(mut self, s: impl Into<String>) -> Test {
        self.stdin = Some(s.into());
        self
    }

    /// The working directory batchsh runs in (relative PATHs resolve here).
    #[must_use]
    pub fn current_dir(mut self, d: &Path) -> Test {
        self.cwd = Some(d.to_path_buf());
        self
    }

    /// Kills batchsh and fails the test if it runs longer than `d`: for
    /// tests of things that used to hang, so that a regression fails
    /// instead of stalling the whole run.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Test {
        self.timeout = Some(d);
        self
    }

    /// The exit code batchsh must end with.
    #[must_use]
    pub fn status(mut self, code: i32) -> Test {
        self.expect.status = Some(code);
        self
    }

    /// All that batchsh must print on stdout.
    #[must_use]
    pub fn stdout(mut self, s: impl AsRef<str>) -> Test {
        self.expect.stdout = Some(s.as_ref().to_string());
        self
    }

    /// All that batchsh must print on stderr.
    #[must_use]
    pub fn stderr(mut self, s: impl AsRef<str>) -> Test {
        self.expect.stderr = Some(s.as_ref().to_string());
        self
    }

    /// The JSON stdout must hold, compared as JSON (one document).
    #[must_use]
    pub fn stdout_json(mut self, v: serde_json::Value) -> Test {
        self.expect.stdout_json = Some(v);
        self
    }

    #[must_use]
    pub fn stdout_contains(self, s: impl AsRef<str>) -> Test {
        self.text(Stream::Stdout, Text::Contains, s)
    }

    #[must_use]
    pub fn stdout_lacks(self, s: impl AsRef<str>) -> Test {
        self.text(Stream::Stdout, Text::Lacks, s)
    }

    #[must_use]
    pub fn stderr_contains(self, s: impl AsRef<str>) -> Test {
        self.text(Stream::Stderr, Text::Contains, s)
    }

    #[must_use]
    pub fn stderr_lacks(self, s: impl AsRef<str>) -> Test {
        self.text(Stream::Stderr, Text::Lacks, s)
    }

    /// How stderr must begin: the first line of an error, usually.
    #[must_use]
    pub fn stderr_starts_with(self, s: impl AsRef<str>) -> Test {
        self.text(Stream::Stderr, Text::StartsWith, s)
    }

    fn text(mut self, stream: Stream, how: Text, s: impl AsRef<str>) -> Test {
        self.expect
            .texts
            .push((stream, how, s.as_ref().to_string()));
        self
    }

    /// Runs batchsh and checks every expectation, failing the test with all
    /// that differ (and all batchsh printed) at once. The output is
    /// returned for the checks that are the test's own.
    #[track_caller]
    pub fn run(mut self) -> Output {
        let expect = std::mem::take(&mut self.expect);
        let args = self.args.clone();
        let out = self.spawn();
        let failures = expect.failures(&out);
        if !failures.is_empty() {
            panic!(
                "batchsh {args:?}:\n{}\n--- exit code {} ---\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
                failures.join("\n"),
                out.code,
                out.stdout,
                out.stderr
            );
        }
        out
    }

    fn spawn(self) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchsh"));
        cmd.args(&self.args)
            .env("BATCHSH_HOME", self.home.path())
            .env_remove("BATCHSH_STORE")
            .env_remove("BATCHSH_FORMAT")
            .env_remove("BATCHSH_NODE")
            .env_remove("BATCHSH_DC")
            // The width and the pager come from the test, not from the
            // terminal the tests were started in.
            .env_remove("COLUMNS")
            .env_remove("PAGER")
            .env_remove("BATCHSH_PAGER")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("batchsh starts");
        {
            let mut sin = child.stdin.take().expect("stdin pipe");
            if let Some(s) = &self.stdin {
                // batchsh may end before it reads its input (a usage
                // error): what it prints then is the test's business.
                match sin.write_all(s.as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        panic!("write stdin: {e}")
                    }
                    _ => {}
                }
            }
            // Dropping closes stdin: batchsh sees end of input.
        }
        let out = match self.timeout {
            None => child.wait_with_output().expect("batchsh finishes"),
            Some(limit) => wait_within(child, limit, &self.args),
        };
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            home: self.home,
        }
    }
}

impl Expect {
    /// One line for each expectation `out` does not meet.
    fn failures(&self, out: &Output) -> Vec<String> {
        let mut failed = Vec::new();
        if let Some(want) = self.status
            && want != out.code
        {
            failed.push(format!("- exit code {}, not {want}", out.code));
        }
        for (stream, want, got) in [
            (Stream::Stdout, &self.stdout, &out.stdout),
            (Stream::Stderr, &self.stderr, &out.stderr),
        ] {
            if let Some(want) = want
                && want != got
            {
                failed.push(format!("- {stream} differs; it must be:\n{want}"));
            }
        }
        if let Some(want) = &self.stdout_json {
            match serde_json::from_str::<serde_json::Value>(&out.stdout) {
                Ok(got) if got == *want => {}
                Ok(got) => failed.push(format!("- stdout is JSON {got}, not {want}")),
                Err(e) => failed.push(format!("- stdout is not JSON ({e}); must be {want}")),
            }
        }
        for (stream, how, text) in &self.texts {
            let got = match stream {
                Stream::Stdout => &out.stdout,
                Stream::Stderr => &out.stderr,
            };
            let (ok, must) = match how {
                Text::Contains => (got.contains(text.as_str()), "contain"),
                Text::Lacks => (!got.contains(text.as_str()), "lack"),
                Text::StartsWith => (got.starts_with(text.as_str()), "start with"),
            };
            if !ok {
                failed.push(format!("- {stream} does not {must} {text:?}"));
            }
        }
        failed
    }
}

/// Waits for `child` as `wait_with_output` does, but kills it and fails the
/// test when it runs longer than `limit`. Its pipes are read on threads
/// meanwhile, so a child with much to say is not stalled on a full pipe.
fn wait_within(
    mut child: std::process::Child,
    limit: Duration,
    args: &[String],
) -> std::process::Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("batchsh is waited for") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "batchsh {args:?} still ran after {limit:?} and was killed; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `batchsh parse TEXT` and returns the parsed JSON array, failing the
/// test with batchsh's own diagnostic if the text does not parse.
pub fn parse_json(text: &str) -> serde_json::Value {
    let out = Test::new().arg("parse").arg(text).status(0).run();
    serde_json::from_str(&out.stdout).expect("batchsh parse prints JSON")
}

/// Every example statement of the project: the grammar file's examples,
/// the `examples/*.bsh` scripts, and the `bsh` code blocks of the README
/// and of every `docs/*.md` chapter, each with where it comes from.
pub fn all_examples() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let grammar = std::fs::read_to_string(root.join("grammar/batchsh.ebnf")).expect("grammar file");
    for (section, ex) in grammar_examples(&grammar) {
        out.push((format!("grammar, {section}"), ex));
    }
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bsh"))
        .collect();
    scripts.sort();
    for p in scripts {
        let text = std::fs::read_to_string(&p).expect("example script");
        out.push((p.display().to_string(), text));
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    for (k, block) in fenced_blocks(&readme, "bsh").into_iter().enumerate() {
        out.push((format!("README bsh block {}", k + 1), block));
    }
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    chapters.sort();
    for p in chapters {
        let text = std::fs::read_to_string(&p).expect("docs chapter");
        let name = p.strip_prefix(root).unwrap_or(&p).display().to_string();
        for (k, block) in fenced_blocks(&text, "bsh").into_iter().enumerate() {
            out.push((format!("{name} bsh block {}", k + 1), block));
        }
    }
    out
}

/// `(section name, example text)` for every `(* example: ... *)` of the
/// grammar file, the section being the nearest `(* statement: NAME *)` or
/// `(* section: NAME *)` above it. Read by the library's grammar reader,
/// the one `HELP` prints from.
pub fn grammar_examples(grammar: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in sections(grammar) {
        for item in &s.items {
            if let Item::Example(ex) = item {
                out.push((s.name.to_string(), ex.to_string()));
            }
        }
    }
    out
}

/// The statement names of the grammar's `(* statement: NAME *)` markers.
pub fn grammar_statements(grammar: &str) -> Vec<String> {
    sections(grammar)
        .into_iter()
        .filter(|s| s.is_statement)
        .map(|s| s.name.to_string())
        .collect()
}

/// The contents of the code blocks fenced with ```lang.
pub fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in markdown.lines() {
        let t = line.trim_start();
        match &mut cur {
            None => {
                if t.strip_prefix("```").is_some_and(|l| l.trim() == lang) {
                    cur = Some(String::new());
                }
            }
            Some(block) => {
                if t.starts_with("```") {
                    out.push(cur.take().unwrap_or_default());
                } else {
                    block.push_str(line);
                    block.push('\n');
                }
            }
        }
    }
    out
}

/// The canonical text of a script: each statement printed, joined by ";\n".
pub fn print(stmts: &[Stmt]) -> String {
    stmts
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(";\n")
}

/// Prints `stmts` and parses the text again: the statements must come back
/// (spans aside). The error says what differed.
pub fn round_trip(stmts: &[Stmt]) -> Result<(), String> {
    let text = print(stmts);
    let again = batchsh::syntax::parse(&text).map_err(|e| {
        format!(
            "canonical text does not parse:\n{text}\n{}",
            batchsh::diag::render(&text, &e)
        )
    })?;
    let want: Vec<&Statement> = stmts.iter().map(|s| &s.kind).collect();
    let got: Vec<&Statement> = again.iter().map(|s| &s.kind).collect();
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "canonical text parses to other statements:\n{text}\nwant {want:#?}\ngot {got:#?}"
        ))
    }
}

/// A FIFO (named pipe) at `path`: opening it for reading waits for a
/// writer, so a test that meets one runs batchsh with [`Test::timeout`].
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Defines the interface `crm` on [`customer_db`]'s `crm.db` (relative to
/// the working folder) and the LU `Customer` on it.
pub const CRM_CUSTOMER_LU: &str = "CREATE INTERFACE crm TYPE SQLITE PATH 'crm.db';
     CREATE LU Customer FROM crm ROOT ('select id from customer')
         TABLE customer ('select * from customer where id = ?')";

/// An SQLite file at `path` with a table `customer (id, name)` holding the
/// ids 1..=n, for tests that need a data source.
pub fn customer_db(path: &Path, n: i64) {
    let c = rusqlite::Connection::open(path).expect("SQLite source");
    c.execute_batch("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);")
        .expect("customer table");
    let tx = c.unchecked_transaction().expect("transaction");
    for k in 1..=n {
        tx.execute(
            "INSERT INTO customer VALUES (?1, ?2)",
            rusqlite::params![k, format!("c{k}")],
        )
        .expect("customer row");
    }
    tx.commit().expect("commit");
}

/// Asserts that a run against the store `url`, in the working folder
/// `dir`, created nothing there or in its home.
#[track_caller]
pub fn assert_created_nothing(url: &str, dir: &Path, out: &Output) {
    for (place, folder) in [("working folder", dir), ("home", out.home.path())] {
        let created: Vec<_> = std::fs::read_dir(folder).unwrap().collect();
        assert!(
            created.is_empty(),
            "{url}: created in the {place}: {created:?}"
        );
    }
}
