//! The command line (SPEC §1), as clap definitions. Raw flags only: `lib.rs`
//! turns them into work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "batchsh",
    version,
    about = "A command-language shell for entity batches",
    long_about = "A command-language shell for entity batches.\n\n\
        batchsh takes entity ids from a data source, runs one command per entity on a \
        worker pool, and records every entity's outcome in a local SQLite store.\n\n\
        With no FILE and no -c, batchsh opens the interactive REPL when stdin is a \
        terminal, and reads statements from stdin otherwise.",
    after_help = "Exit codes: 0 success; 1 a statement failed; 2 usage error; \
        3 a batch ended with failed entities or CANCELLED; 4 BATCH_WAIT timed out; \
        130 interrupted (Ctrl-C); 143 stopped by SIGTERM."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    /// Run these statements, print results, exit
    ///
    /// The text may start with `-` (a `-- comment`, say): it is taken as
    /// the statements, not as a flag.
    #[arg(
        short = 'c',
        value_name = "STATEMENTS",
        conflicts_with = "file",
        allow_hyphen_values = true
    )]
    pub command: Option<String>,

    /// Run a script file (`-` reads statements from stdin)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(subcommand)]
    pub sub: Option<Sub>,
}

impl Cli {
    /// The process's arguments, parsed. A usage error exits 2 with clap's
    /// text on stderr, and, when the arguments ask for `--format json`
    /// (or `BATCHSH_FORMAT` does), also as one JSON object on the next
    /// line, as every error is (SPEC §10): clap failed, so the format is
    /// read from the raw arguments.
    pub fn parse_or_exit() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        match Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            // `--help` and `--version` are not errors (stdout, exit 0).
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => {
                // clap's text as clap prints it (coloured on a terminal).
                let _ = e.print();
                let text = e.render().to_string();
                let env = std::env::var_os("BATCHSH_FORMAT");
                if asks_for_json(&args[1..], env.as_deref()) {
                    let first = text.lines().next().unwrap_or_default();
                    let message = first.strip_prefix("error: ").unwrap_or(first);
                    eprintln!("{}", serde_json::json!({ "error": message, "bid": null }));
                }
                std::process::exit(e.exit_code())
            }
        }
    }
}

/// Whether raw arguments that clap refused ask for `--format json`
/// (`--format json`, `--format=json`, any case; the last one counts), or,
/// without the flag, `BATCHSH_FORMAT` does. The value of `-c` is
/// statements, and nothing after `--` is a flag.
fn asks_for_json(args: &[std::ffi::OsString], env: Option<&std::ffi::OsStr>) -> bool {
    let mut format = env.and_then(|v| v.to_str());
    let mut args = args.iter().map(|a| a.to_str().unwrap_or_default());
    while let Some(a) = args.next() {
        match a {
            "--" => break,
            "-c" => {
                args.next();
            }
            "--format" => format = args.next(),
            _ => {
                if let Some(v) = a.strip_prefix("--format=") {
                    format = Some(v);
                }
            }
        }
    }
    format.is_some_and(|f| f.eq_ignore_ascii_case("json"))
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Where the store, LU data, outputs and REPL history live
    /// [default: $XDG_DATA_HOME/batchsh, else ~/.local/share/batchsh]
    #[arg(long, env = "BATCHSH_HOME", value_name = "DIR", global = true)]
    pub home: Option<PathBuf>,

    /// The store: an SQLite file, or a PostgreSQL database shared by
    /// several hosts (postgres://user@host/db) [default: <home>/store.db]
    #[arg(long, env = "BATCHSH_STORE", value_name = "FILE|URL", global = true)]
    pub store: Option<PathBuf>,

    /// How results print
    #[arg(
        long,
        env = "BATCHSH_FORMAT",
        value_enum,
        ignore_case = true,
        default_value_t = Format::Table,
        global = true
    )]
    pub format: Format,

    /// Print nothing but errors and the data asked for
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// No progress bars (they are off anyway when stderr is not a terminal)
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// This process's node id [default: host name]
    #[arg(long, env = "BATCHSH_NODE", value_name = "NAME", global = true)]
    pub node: Option<String>,

    /// This process's data center
    #[arg(
        long,
        env = "BATCHSH_DC",
        value_name = "NAME",
        default_value = "LOCAL_DC",
        global = true
    )]
    pub dc: String,

    /// Run the remaining statements after one fails
    #[arg(long, global = true)]
    pub keep_going: bool,

    /// Print each statement of a script before its result (as psql -e)
    #[arg(short, long, global = true)]
    pub echo: bool,

    /// Print each table row as a block of `column | value` lines (as
    /// psql -x); the default prints a row so when the table is wider than
    /// the terminal (SET EXPANDED changes it)
    #[arg(short = 'x', long, global = true)]
    pub expanded: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl Sub {
    /// The subcommand as it is typed.
    pub fn name(&self) -> &'static str {
        match self {
            Sub::Parse { .. } => "parse",
            Sub::Worker { .. } => "worker",
            Sub::Tick => "tick",
            Sub::Completions { .. } => "completions",
            Sub::Man => "man",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Print the parsed statements as JSON (or the error); runs nothing
    ///
    /// INPUT is statement text, a file of statements, or `-` for stdin. An
    /// argument that names an existing file is read as a file.
    Parse {
        #[arg(value_name = "INPUT", allow_hyphen_values = true)]
        input: String,
    },
    /// Execute async batches and due jobs
    Worker {
        /// Worker threads on this node [default: number of cores]
        #[arg(long, value_name = "K")]
        workers: Option<usize>,
        /// Exit when no work is left
        #[arg(long)]
        until_idle: bool,
    },
    /// Run the jobs that are due now, then exit (for cron)
    ///
    /// For a crontab line such as `* * * * * batchsh tick`, where no worker
    /// runs. It prints nothing when every run it fired went well; a failed
    /// run is one line on stderr and exit code 1.
    Tick,
    /// Print a shell completion script on stdout
    ///
    /// For example: `batchsh completions bash > ~/.local/share/bash-completion/completions/batchsh`.
    Completions {
        /// The shell to complete in
        #[arg(value_name = "SHELL", value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) on stdout
    ///
    /// For example: `batchsh man > ~/.local/share/man/man1/batchsh.1`.
    Man,
}

/// The shells `batchsh completions` writes for. A closed list, so that an
/// unknown one (`tcsh`) is a usage error that names the valid ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `batchsh completions SHELL`: the completion script for the command line
/// as clap knows it (subcommands and flags; statements are completed by the
/// REPL).
pub fn completions(shell: Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let name = cmd.get_name().to_string();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// `batchsh man`: the man page, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}
