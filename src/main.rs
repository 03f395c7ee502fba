//! The `clipfeed` binary: parses the command line, runs it, maps errors to exit codes (78 for a
//! configuration error, 2 for any other; see `clipfeed --help`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match clipfeed::run(clipfeed::Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            clipfeed::log_fatal(&err);
            ExitCode::from(clipfeed::exit_status(&err))
        }
    }
}
