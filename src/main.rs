//! The `c8dr` binary: one subcommand per file under src/cli/.
mod cli;

fn main() -> std::process::ExitCode {
    // One rustls CryptoProvider for the whole process (ring: tonic, kube and reqwest all use
    // it), installed before any TLS client is built: reqwest is built without a provider of
    // its own and panics when none is installed.
    c8dr::platform::k8s::forward::install_crypto_provider();
    cli::main()
}
