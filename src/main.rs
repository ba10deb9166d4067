//! The `batchsh` binary: arguments in, exit code out. Everything else is in
//! the library.

use clap::Parser;

fn main() {
    let cli = batchsh::cli::Cli::parse();
    std::process::exit(batchsh::run(cli));
}
