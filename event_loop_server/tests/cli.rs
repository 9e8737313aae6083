//! The shared binary checks (`tests/support/cli_checks.rs` at the root),
//! run against this package's binary.

#[path = "../../tests/support/cli_checks.rs"]
mod cli_checks;

const BINARY: &str = env!("CARGO_BIN_EXE_event_loop_server");

#[test]
fn help_prints_usage_and_exits_0() {
    cli_checks::help_prints_usage_and_exits_0(BINARY);
}

#[test]
fn bad_flags_and_values_exit_2_with_one_line() {
    cli_checks::bad_flags_and_values_exit_2_with_one_line(BINARY, &["--max-connections", "lots"]);
    cli_checks::bad_flags_and_values_exit_2_with_one_line(BINARY, &["--style", "threads"]);
}

#[test]
fn an_address_in_use_exits_1_with_one_line() {
    cli_checks::an_address_in_use_exits_1_with_one_line(BINARY);
}

/// The checks that differ by how connections are written run in both
/// styles: `--style async` is the `async fn` server on the same loop.
const ASYNC: &[&str] = &["--style", "async"];

#[test]
fn sigterm_drains_every_request_in_flight() {
    cli_checks::sigterm_drains_every_request_in_flight(BINARY, 300, &[]);
}

#[test]
fn sigterm_drains_every_request_in_flight_async() {
    cli_checks::sigterm_drains_every_request_in_flight(BINARY, 300, ASYNC);
}

#[test]
fn out_of_descriptors_it_idles_and_recovers() {
    cli_checks::out_of_descriptors_it_idles_and_recovers(BINARY, &[]);
}

#[test]
fn out_of_descriptors_it_idles_and_recovers_async() {
    cli_checks::out_of_descriptors_it_idles_and_recovers(BINARY, ASYNC);
}

#[test]
fn a_client_that_never_reads_is_bounded_then_closed() {
    cli_checks::a_client_that_never_reads_is_bounded_then_closed(BINARY, &[]);
}

#[test]
fn a_client_that_never_reads_is_bounded_then_closed_async() {
    cli_checks::a_client_that_never_reads_is_bounded_then_closed(BINARY, ASYNC);
}

#[test]
fn thread_start_failure_exits_1_with_one_line() {
    cli_checks::thread_start_failure_exits_1_with_one_line(BINARY, &["--offload-workers", "1024"]);
}

#[test]
fn a_second_signal_exits_at_once() {
    cli_checks::a_second_signal_exits_at_once(BINARY);
}
