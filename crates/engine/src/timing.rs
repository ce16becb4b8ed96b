//! When a watch is due next, from its model and the tenant's settings. Used after every check
//! and whenever the API changes something that moves the schedule (create, edit, pause, clear
//! history).

use changewatch_core::model::{Settings, Watch};
use changewatch_core::schedule::{self, WeeklyWindow};
use chrono_tz::Tz;
use tracing::warn;

/// Upstream's global default interval, used if even the settings have none.
const FALLBACK_INTERVAL: u64 = 3 * 3600;

/// `next_check_at` for `watch` after a check that started at `last_checked` (0: never checked,
/// due now). `None`: paused, or a schedule window with no open day.
pub fn next_due(
    watch: &Watch,
    settings: &Settings,
    last_checked: i64,
    now: i64,
    minimum_recheck_secs: u64,
) -> Option<i64> {
    if watch.paused {
        return None;
    }
    let interval = watch
        .effective_check_interval(settings)
        .unwrap_or(FALLBACK_INTERVAL);
    let jitter = settings.requests.jitter_seconds.max(0) as u64;
    let sample = if jitter > 0 {
        schedule::random_jitter_sample()
    } else {
        0.0
    };
    let window = window_for(watch, settings);
    schedule::next_check_at(
        last_checked,
        interval,
        jitter,
        sample,
        window.as_ref(),
        now,
        minimum_recheck_secs,
    )
}

/// The weekly window in force, in the watch's zone, else the global default zone, else UTC.
/// A window that no longer parses (saved by an older version, say) is logged and ignored rather
/// than stopping the watch.
fn window_for(watch: &Watch, settings: &Settings) -> Option<WeeklyWindow> {
    let limit = watch.effective_time_schedule_limit(settings)?;
    if !limit.enabled {
        return None;
    }
    let default_tz = settings
        .application
        .scheduler_timezone_default
        .as_deref()
        .and_then(|t| schedule::validate_timezone(t).ok())
        .unwrap_or(Tz::UTC);
    let value = serde_json::to_value(limit).ok()?;
    match WeeklyWindow::parse(&value, default_tz) {
        Ok(w) => w,
        Err(e) => {
            warn!(watch_id = %watch.uuid, error = %e, "ignoring an unusable time_schedule_limit");
            None
        }
    }
}
