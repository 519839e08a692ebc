//! `kubectl access`: the kubectl plugin of foureyes (see `foureyes::plugin`).
//! Installed on the PATH as `kubectl-access`, kubectl runs it as `kubectl access`.

use std::process::ExitCode;

use clap::Parser;
use foureyes::plugin::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(foureyes::plugin::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
