//! Build-time facts the root package's tests depend on. One so far: is a
//! `chromium` on the PATH? tests/live_browser.rs needs a real browser, and
//! a test that cannot run should say so as "ignored", with its reason, not
//! pass silently or fail on a machine without one. libtest decides
//! `#[ignore]` at compile time, so the answer is a cfg, `has_chromium`.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_chromium)");
    println!("cargo::rerun-if-env-changed=PATH");
    let path = env::var_os("PATH").unwrap_or_default();
    let mut found = false;
    for dir in env::split_paths(&path).filter(|dir| dir.is_absolute()) {
        // Installing chromium changes its directory: look again then.
        if dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
        found |= Path::new(&dir).join("chromium").is_file();
    }
    if found {
        println!("cargo::rustc-cfg=has_chromium");
    }
}
