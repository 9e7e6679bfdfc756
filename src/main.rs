//! The `c8dr` binary: one subcommand per file under src/cli/.
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
