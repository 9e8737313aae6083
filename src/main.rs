//! `cargo run --release`: see `compare.rs`.
fn main() -> std::process::ExitCode {
    parallel_vs_async::compare::main()
}
