//! The part of `/stats.json` both servers write alike: the `STATS` totals
//! under the same names, the model and the uptime. Each server adds its
//! flags and what only its model has (pool workers, loops).

use std::time::Duration;

use super::Json;
use crate::stats::{Counter, Counters, Lateness};

/// Writes `model`, `uptime_s` and the `STATS` totals, summed over every set
/// of counters given (one per loop on the event loop server).
pub fn common_fields<'a>(
    json: &mut Json,
    model: &str,
    uptime: Duration,
    counters: impl Iterator<Item = &'a Counters> + Clone,
    lateness: impl Iterator<Item = &'a Lateness> + Clone,
) {
    let sum =
        |pick: fn(&Counters) -> &Counter| -> u64 { counters.clone().map(|c| pick(c).get()).sum() };
    let late = |quantile| Lateness::quantile_micros(lateness.clone(), quantile).unwrap_or(0);
    json.string("model", model)
        .fraction("uptime_s", uptime.as_secs_f64())
        .number("connections", sum(|c| &c.open_connections))
        .number("requests", sum(|c| &c.requests_answered))
        .number("busy_rejections", sum(|c| &c.busy_rejections))
        .number("idle_closes", sum(|c| &c.idle_closes))
        .number("error_closes", sum(|c| &c.error_closes))
        .number("panics", sum(|c| &c.panics))
        .number("timer_late_p50_us", late(0.5))
        .number("timer_late_p99_us", late(0.99));
}

/// The flags every server takes, as `/stats.json`'s `flags` object opens.
pub fn common_flags(json: &mut Json, common: &crate::cli::CommonConfig) {
    json.string("addr", &common.addr.to_string())
        .number("idle_timeout_secs", common.idle_timeout.as_secs())
        .number("write_timeout_secs", common.write_timeout.as_secs())
        .number("db_delay_ms", common.default_db_delay.as_millis() as u64);
}
