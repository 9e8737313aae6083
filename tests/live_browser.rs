//! The live page in a real browser: headless Chromium loads `/live` from a
//! server under a known load, runs the page's script, and the test reads
//! the DOM it rendered: the requests counter rises between two loads, a
//! pool worker held in `DB` shows as asleep, a loop's waiting queries show
//! as pending timers.
//!
//! Chromium is found at build time (build.rs): without it these tests are
//! listed as ignored, with the reason, and `cargo test` still passes.
//! `.ci/run` installs it, so CI always runs them.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::live::wait_for;
use support::{start_with, Client, Model, Options, TestServer};

/// How long one browser run may take before the test fails.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

/// The DOM of `url` after its script has run for three seconds of the
/// browser's virtual time (long enough for several samples).
fn rendered(url: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "live-browser-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=3000", "--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("chromium's stdout");
    let reader = thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    let deadline = Instant::now() + BROWSER_LIMIT;
    while child.try_wait().expect("chromium's status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within {BROWSER_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().expect("the DOM")
}

/// The number after `label` in the rendered DOM (`requests answered: 12`).
fn figure(dom: &str, label: &str) -> u64 {
    let start = dom
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in the page:\n{dom}"))
        + label.len();
    let digits: String = dom[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?}"))
}

/// PINGs on one connection until stopped (60 s at most): requests rise.
fn pinging(server: &TestServer) -> (Arc<AtomicBool>, thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let mut client = server.connect();
    let load = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
            assert_eq!(client.request("PING"), "PONG");
            thread::sleep(Duration::from_millis(2));
        }
    });
    (stop, load)
}

fn check_page(model: Model, waiting: &str) {
    let options = Options {
        live: true,
        workers: Some(3),
        ..Options::default()
    };
    let server = start_with(model, &options);
    let (stop, load) = pinging(&server);
    // Three queries held for the whole test: one on the pool's second
    // worker (the first is pinging), three timers on a loop.
    let queries = if model == Model::ThreadPool { 1 } else { 3 };
    let mut held: Vec<Client> = (0..queries).map(|_| server.connect()).collect();
    for (i, client) in held.iter_mut().enumerate() {
        client.send(format!("DB {i} 10000\n"));
    }
    let stats_addr = server.stats_addr();
    wait_for(stats_addr, "the held queries", |stats| match model {
        Model::ThreadPool => stats["pool"]["counts"]["asleep_in_db"] == 1,
        _ => stats["db_waiting"] == 3,
    });
    let url = format!("http://{stats_addr}/live");
    let first = rendered(&url);
    let second = rendered(&url);
    stop.store(true, Ordering::Relaxed);
    load.join().expect("the PING load");
    let before = figure(&first, "requests answered: ");
    let after = figure(&second, "requests answered: ");
    assert!(
        after > before,
        "requests did not rise: {before} then {after}"
    );
    assert!(figure(&second, "requests/s: ") > 0, "{second}");
    assert_eq!(figure(&second, waiting), queries as u64, "{second}");
    drop(held); // the server's drain answers them at shutdown
}

#[test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs chromium on the PATH at build time (apt-get install -y chromium)"
)]
fn the_pool_page_shows_requests_rising_and_a_worker_asleep() {
    check_page(Model::ThreadPool, "asleep in DB: ");
}

#[test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs chromium on the PATH at build time (apt-get install -y chromium)"
)]
fn the_loop_page_shows_requests_rising_and_pending_timers() {
    check_page(Model::EventLoop, "pending timers: ");
}

#[test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs chromium on the PATH at build time (apt-get install -y chromium)"
)]
fn the_page_of_two_loops_shows_requests_rising_and_pending_timers() {
    check_page(Model::TwoEventLoops, "pending timers: ");
}
