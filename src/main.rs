//! The `batchsh` binary: arguments in, exit code out. Everything else is in
//! the library.

use clap::Parser;

fn main() {
    let cli = batchsh::cli::Cli::parse();
    let code = batchsh::run(cli);
    batchsh::terminate::exit(code);
}
