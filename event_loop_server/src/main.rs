//! `event_loop_server`: a thin shell over [`event_loop_server::COMMAND`].
fn main() -> std::process::ExitCode {
    event_loop_server::COMMAND.main_with_args(std::env::args_os().skip(1))
}
