//! `thread_pool_server`: a thin shell over [`thread_pool_server::COMMAND`].
fn main() -> std::process::ExitCode {
    thread_pool_server::COMMAND.main_with_args(std::env::args_os().skip(1))
}
