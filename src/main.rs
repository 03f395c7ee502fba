//! The `clipfeed` binary: parses the command line, runs it, maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match clipfeed::run(clipfeed::Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("clipfeed: {err:#}");
            ExitCode::from(2)
        }
    }
}
