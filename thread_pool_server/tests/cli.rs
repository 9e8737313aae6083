//! The shared binary checks (`tests/support/cli_checks.rs` at the root),
//! run against this package's binary.

#[path = "../../tests/support/cli_checks.rs"]
mod cli_checks;

const BINARY: &str = env!("CARGO_BIN_EXE_thread_pool_server");

#[test]
fn help_prints_usage_and_exits_0() {
    cli_checks::help_prints_usage_and_exits_0(BINARY);
}

#[test]
fn bad_flags_and_values_exit_2_with_one_line() {
    cli_checks::bad_flags_and_values_exit_2_with_one_line(BINARY, &["--workers", "0"]);
}

#[test]
fn an_address_in_use_exits_1_with_one_line() {
    cli_checks::an_address_in_use_exits_1_with_one_line(BINARY);
}

#[test]
fn sigterm_drains_every_request_in_flight() {
    cli_checks::sigterm_drains_every_request_in_flight(BINARY, 10, &[]);
}

#[test]
fn out_of_descriptors_it_idles_and_recovers() {
    cli_checks::out_of_descriptors_it_idles_and_recovers(
        BINARY,
        &["--workers", "100", "--queue", "100"],
    );
}

#[test]
fn a_client_that_never_reads_is_bounded_then_closed() {
    cli_checks::a_client_that_never_reads_is_bounded_then_closed(BINARY, &["--workers", "4"]);
}

#[test]
fn thread_start_failure_exits_1_with_one_line() {
    cli_checks::thread_start_failure_exits_1_with_one_line(BINARY, &["--workers", "10000"]);
}

#[test]
fn a_second_signal_exits_at_once() {
    cli_checks::a_second_signal_exits_at_once(BINARY);
}
