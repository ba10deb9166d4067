//! The `batchsh` binary: arguments in, exit code out. Everything else is in
//! the library.

fn main() {
    let cli = batchsh::cli::Cli::parse_or_exit();
    let code = batchsh::run(cli);
    batchsh::terminate::exit(code);
}
