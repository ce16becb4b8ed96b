//! What a check's result means for its watch, decided without any I/O: the status fields the
//! commit writes ([`StatusPatch`], typed so that every key is a `Watch` field), the snapshot it
//! adds, and the notification it causes. The checker does the fetching and the writing; this
//! module is the part worth testing case by case.

use changewatch_core::model::{Settings, TextOrFalse, Watch};
use changewatch_core::pipeline::ChangeStatus;
use changewatch_core::reuse::{Stamp, Validators};
use changewatch_core::{CheckError, CheckResult, FetchedPage};
use changewatch_store::NewSnapshot;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::checker::CheckReport;

/// The fields a check writes on its watch, and only those: whatever else the watch holds (the
/// user's settings, possibly edited while the check ran) is left as it is. `None` = not
/// written by this check.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusPatch {
    pub last_checked: i64,
    pub check_count: i64,
    /// Cleared by every check; the failing step's position when a browser step failed.
    pub browser_steps_last_error_step: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TextOrFalse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_filter_failures: Option<i64>,
    /// `Some(None)` writes `null`: the reply had no such header.
    #[serde(rename = "content-type", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_server_reply: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_alert_count: Option<i64>,
    /// `Some(None)` clears it: the last processing failed, so its reply proves nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_raw_checksum: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_validators: Option<Option<Validators>>,
    /// The restock processor's new state (price, stock, last price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<changewatch_core::model::Restock>,
}

/// A check that got as far as a reply.
#[derive(Clone, Debug)]
pub enum Checked {
    /// The reply was processed.
    Processed(CheckResult),
    /// The reply is the last processed one (the same checksum, or a `304` to its validators)
    /// under the same settings, so it is unchanged and was not processed again.
    Reused(FetchedPage),
}

impl StatusPatch {
    /// The top-level patch the store's `commit_check` applies.
    pub fn into_map(self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of plain fields always serializes to an object.
            _ => Map::new(),
        }
    }
}

/// Which notification a check will cause, decided before its commit so that the counters it
/// moves are written in the same commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    None,
    Change,
    FilterFailure,
    /// A browser step failed too often; its position as the user counts.
    StepFailure(usize),
}

/// What the checker knows besides the result.
#[derive(Debug)]
pub struct Context<'a> {
    pub watch: &'a Watch,
    pub settings: &'a Settings,
    /// Snapshots before this check.
    pub history_len: usize,
    /// The check's timestamp (already moved past the newest snapshot).
    pub started: i64,
    /// The watch filters its diff (added / removed / replaced only): keep the unfiltered text.
    pub diff_filtered: bool,
    /// Somewhere to send a notification (URLs after the cascade, watch and settings unmuted).
    pub can_notify: bool,
    /// The reply's stamp (what it was processed with, its checksum), which a processed check
    /// leaves on the watch; `None` when no reply came.
    pub stamp: Option<&'a Stamp>,
}

/// Everything the commit writes and reports, from one check's result.
#[derive(Debug)]
pub struct Decision {
    pub patch: StatusPatch,
    pub snapshot: Option<NewSnapshot>,
    pub text_before_filters: Option<String>,
    pub plan: Plan,
    pub report: CheckReport,
}

/// Decides what a check's result does to its watch, as upstream's worker does: a baseline
/// snapshot on the first check, a snapshot and (from the second one on) a notification on a
/// change, the filter-failure counter and its alert, and the error texts.
pub fn decide(ctx: &Context<'_>, result: &Result<Checked, CheckError>) -> Decision {
    let watch = ctx.watch;
    let mut patch = StatusPatch {
        last_checked: ctx.started,
        check_count: watch.check_count + 1,
        browser_steps_last_error_step: None,
        ..StatusPatch::default()
    };
    let mut snapshot = None;
    let mut text_before_filters = None;
    let mut plan = Plan::None;
    let first = ctx.history_len == 0;
    let report = match result {
        Ok(Checked::Reused(page)) => {
            patch.fetch_time = Some(page.fetch_time);
            patch.last_error = Some(TextOrFalse::default());
            patch.consecutive_filter_failures = Some(0);
            patch.last_check_status = Some(page.status);
            if !page.not_modified() {
                // A 304 carries no content headers: the stored ones still describe the page.
                patch.content_type = Some(page.content_type.clone());
                patch.remote_server_reply = Some(page.server.clone());
            }
            // Newer validators for the same content (a 304 may carry a new ETag) replace the
            // old ones; a reply without any leaves them.
            if let Some(v) = Validators::of(page) {
                patch.last_validators = Some(Some(v));
            }
            CheckReport {
                status: Some(ChangeStatus::Unchanged),
                error: None,
                history_len: ctx.history_len,
                notify: false,
                reused: true,
            }
        }
        Ok(Checked::Processed(r)) => {
            let p = &r.processed;
            patch.fetch_time = Some(r.page.fetch_time);
            patch.last_error = Some(TextOrFalse::default());
            patch.consecutive_filter_failures = Some(0);
            patch.content_type = Some(r.page.content_type.clone());
            patch.remote_server_reply = Some(r.page.server.clone());
            patch.last_check_status = Some(r.page.status);
            patch.page_title = p.title.clone();
            patch.previous_md5 = p.md5_to_record().map(str::to_string);
            patch.restock = p.restock.clone();
            // A blocked check's verdict is not "unchanged": only a reply whose processing
            // recorded its result may stand in for the next one.
            let reusable = p.status != ChangeStatus::Blocked;
            patch.last_raw_checksum = Some(ctx.stamp.filter(|_| reusable).map(ToString::to_string));
            patch.last_validators = Some(reusable.then(|| Validators::of(&r.page)).flatten());
            if ctx.diff_filtered {
                text_before_filters = Some(p.text_before_filters.clone());
            }
            if p.status == ChangeStatus::Changed && !first && ctx.can_notify {
                // The first check stores a baseline and never notifies (upstream).
                plan = Plan::Change;
                patch.notification_alert_count = Some(watch.notification_alert_count + 1);
            }
            if p.status == ChangeStatus::Changed || first {
                snapshot = Some(NewSnapshot {
                    ts: ctx.started,
                    text: p.text.clone(),
                    html: Some(r.page.text.clone()),
                    screenshot: r.page.screenshot.clone(),
                });
            }
            CheckReport {
                status: Some(p.status),
                error: None,
                history_len: ctx.history_len,
                notify: false,
                reused: false,
            }
        }
        Err(e) => {
            let mut failures = watch.consecutive_filter_failures;
            let failed_step = match e {
                CheckError::Fetch(changewatch_core::fetch::FetchError::BrowserStep {
                    step,
                    ..
                }) => Some(*step),
                _ => None,
            };
            // Upstream counts a failed browser step only for watches that alert on it.
            let counted = e.is_filter_failure()
                || (failed_step.is_some() && watch.filter_failure_notification_send);
            if counted {
                failures += 1;
                let threshold = ctx
                    .settings
                    .application
                    .filter_failure_notification_threshold_attempts;
                if threshold > 0 && failures >= threshold {
                    // Upstream starts counting again after the alert, sent or not.
                    failures = 0;
                    if watch.filter_failure_notification_send && ctx.can_notify {
                        plan = failed_step.map_or(Plan::FilterFailure, Plan::StepFailure);
                    }
                }
            }
            patch.browser_steps_last_error_step = failed_step.and_then(|n| i64::try_from(n).ok());
            patch.last_error = Some(TextOrFalse::Text(e.last_error()));
            patch.consecutive_filter_failures = Some(failures);
            // A reply that failed to process must be processed again, even unchanged; a
            // failed fetch says nothing about the last processed reply.
            if !matches!(e, CheckError::Fetch(_)) {
                patch.last_raw_checksum = Some(None);
                patch.last_validators = Some(None);
            }
            if let CheckError::Fetch(changewatch_core::fetch::FetchError::Status { status }) = e {
                patch.last_check_status = Some(*status);
            }
            // Remembered so the next check knows the watch is a PDF (upstream saves the
            // content type only on success otherwise).
            if let CheckError::PdfNotAvailable { content_type } = e {
                patch.content_type = Some(content_type.clone());
            }
            CheckReport {
                status: None,
                error: Some(e.last_error()),
                history_len: ctx.history_len,
                notify: false,
                reused: false,
            }
        }
    };
    Decision {
        patch,
        snapshot,
        text_before_filters,
        plan,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changewatch_core::content::StreamType;
    use changewatch_core::fetch::{FetchError, FetchedPage};
    use changewatch_core::pipeline::Processed;

    fn page() -> FetchedPage {
        FetchedPage {
            final_url: "https://example.com/".into(),
            status: 200,
            content_type: Some("text/html".into()),
            server: None,
            headers: Vec::new(),
            raw: b"<p>hi</p>".to_vec(),
            text: "<p>hi</p>".into(),
            encoding: "utf-8",
            fetch_time: 0.25,
            screenshot: None,
            stock_scan: None,
        }
    }

    fn processed(status: ChangeStatus) -> Result<Checked, CheckError> {
        Ok(Checked::Processed(CheckResult {
            page: page(),
            processed: Processed {
                status,
                text: "hi".into(),
                md5: "49f68a5c8493ec2c0bf489821c21fc3b".into(),
                triggered_text: Vec::new(),
                text_before_filters: "hi".into(),
                title: Some("Hi".into()),
                stream_type: StreamType::Html,
                restock: None,
            },
        }))
    }

    static STAMP: std::sync::LazyLock<Stamp> = std::sync::LazyLock::new(|| {
        let fingerprint = changewatch_core::reuse::Fingerprint::of(
            &changewatch_core::ProcessorSettings::default(),
            &changewatch_core::FetchRequest::get("https://example.com/"),
        );
        Stamp::new(fingerprint, &page())
    });

    fn ctx<'a>(watch: &'a Watch, settings: &'a Settings, history_len: usize) -> Context<'a> {
        Context {
            watch,
            settings,
            history_len,
            started: 1_000,
            diff_filtered: false,
            can_notify: true,
            stamp: Some(&STAMP),
        }
    }

    #[test]
    fn every_patched_key_is_a_watch_field() {
        let full = StatusPatch {
            fetch_time: Some(1.0),
            last_error: Some(TextOrFalse::False),
            consecutive_filter_failures: Some(0),
            content_type: Some(None),
            remote_server_reply: Some(None),
            last_check_status: Some(200),
            page_title: Some("t".into()),
            previous_md5: Some("x".into()),
            notification_alert_count: Some(1),
            last_raw_checksum: Some(Some("0123456789abcdef:0123456789abcdef".into())),
            last_validators: Some(Some(Validators {
                etag: Some("\"e\"".into()),
                last_modified: None,
            })),
            restock: Some(changewatch_core::model::Restock {
                in_stock: Some(true),
                price: Some(10.0),
                currency: Some("EUR".into()),
                last_price: Some(12.5),
            }),
            ..StatusPatch::default()
        }
        .into_map();
        // Applied to a watch document, every value survives a round trip through `Watch`:
        // a misspelt key or a wrong type would be dropped or refused here.
        let mut doc = serde_json::to_value(Watch::default()).unwrap_or_default();
        if let Value::Object(obj) = &mut doc {
            obj.extend(full.clone());
        }
        let back: Watch = serde_json::from_value(doc).unwrap_or_default();
        let back = serde_json::to_value(back).unwrap_or_default();
        for (key, value) in &full {
            assert_eq!(back.get(key), Some(value), "{key} is not a watch field");
        }
        assert_eq!(full.len(), 15);
    }

    #[test]
    fn the_first_check_is_a_baseline_without_a_notification() {
        let (watch, settings) = (Watch::default(), Settings::default());
        let d = decide(
            &ctx(&watch, &settings, 0),
            &processed(ChangeStatus::Baseline),
        );
        assert_eq!(d.plan, Plan::None);
        assert_eq!(d.snapshot.as_ref().map(|s| s.ts), Some(1_000));
        assert_eq!(d.patch.check_count, 1);
        assert_eq!(d.patch.last_error, Some(TextOrFalse::False));
        assert_eq!(d.patch.notification_alert_count, None);
        let map = d.patch.into_map();
        assert_eq!(map["content-type"], "text/html");
        assert_eq!(map["remote_server_reply"], Value::Null);
        assert_eq!(map["previous_md5"], "49f68a5c8493ec2c0bf489821c21fc3b");
    }

    #[test]
    fn a_change_after_the_first_check_notifies_and_counts() {
        let watch = Watch {
            notification_alert_count: 4,
            ..Watch::default()
        };
        let settings = Settings::default();
        let d = decide(
            &ctx(&watch, &settings, 2),
            &processed(ChangeStatus::Changed),
        );
        assert_eq!(d.plan, Plan::Change);
        assert_eq!(d.patch.notification_alert_count, Some(5));
        assert!(d.snapshot.is_some());
        let mut quiet = ctx(&watch, &settings, 2);
        quiet.can_notify = false;
        let d = decide(&quiet, &processed(ChangeStatus::Changed));
        assert_eq!(
            (d.plan, d.patch.notification_alert_count),
            (Plan::None, None)
        );
        let d = decide(
            &ctx(&watch, &settings, 2),
            &processed(ChangeStatus::Unchanged),
        );
        assert!(d.snapshot.is_none());
        let d = decide(
            &ctx(&watch, &settings, 2),
            &processed(ChangeStatus::Blocked),
        );
        assert_eq!(
            d.patch.previous_md5, None,
            "a blocked check keeps the old checksum"
        );
    }

    #[test]
    fn missing_filters_count_up_to_the_alert_then_start_again() {
        let mut watch = Watch {
            filter_failure_notification_send: true,
            consecutive_filter_failures: 4,
            ..Watch::default()
        };
        let settings = Settings::default();
        let threshold = settings
            .application
            .filter_failure_notification_threshold_attempts;
        let missing = || {
            Err(CheckError::FilterNotFound {
                filters: vec!["#gone".into()],
            })
        };
        let d = decide(&ctx(&watch, &settings, 3), &missing());
        assert_eq!(d.patch.consecutive_filter_failures, Some(5));
        assert_eq!(d.plan, Plan::None);
        watch.consecutive_filter_failures = threshold - 1;
        let d = decide(&ctx(&watch, &settings, 3), &missing());
        assert_eq!(d.patch.consecutive_filter_failures, Some(0));
        assert_eq!(d.plan, Plan::FilterFailure);
        assert!(matches!(d.patch.last_error, Some(TextOrFalse::Text(_))));
        assert!(d.snapshot.is_none());
    }

    #[test]
    fn a_failed_step_is_recorded_and_counted_only_for_watches_that_alert() {
        let failed = || {
            Err(CheckError::Fetch(FetchError::BrowserStep {
                step: 3,
                reason: "gone".into(),
                not_found: true,
            }))
        };
        let settings = Settings::default();
        let threshold = settings
            .application
            .filter_failure_notification_threshold_attempts;
        let mut watch = Watch {
            filter_failure_notification_send: false,
            consecutive_filter_failures: 1,
            ..Watch::default()
        };
        let d = decide(&ctx(&watch, &settings, 1), &failed());
        assert_eq!(d.patch.browser_steps_last_error_step, Some(3));
        assert_eq!(d.patch.consecutive_filter_failures, Some(1));
        assert_eq!(d.plan, Plan::None);
        watch.filter_failure_notification_send = true;
        let d = decide(&ctx(&watch, &settings, 1), &failed());
        assert_eq!(d.patch.consecutive_filter_failures, Some(2));
        watch.consecutive_filter_failures = threshold - 1;
        let d = decide(&ctx(&watch, &settings, 1), &failed());
        assert_eq!(d.plan, Plan::StepFailure(3));
        assert_eq!(d.patch.consecutive_filter_failures, Some(0));
        // Any other outcome clears the step.
        let d = decide(
            &ctx(&watch, &settings, 1),
            &processed(ChangeStatus::Unchanged),
        );
        assert_eq!(d.patch.browser_steps_last_error_step, None);
    }

    #[test]
    fn an_http_error_records_its_status_and_keeps_the_filter_count() {
        let watch = Watch {
            consecutive_filter_failures: 2,
            ..Watch::default()
        };
        let settings = Settings::default();
        let d = decide(
            &ctx(&watch, &settings, 1),
            &Err(CheckError::Fetch(FetchError::Status { status: 404 })),
        );
        assert_eq!(d.patch.last_check_status, Some(404));
        assert_eq!(d.patch.consecutive_filter_failures, Some(2));
        assert_eq!(
            d.report.error.as_deref(),
            d.patch.last_error.as_ref().and_then(|e| match e {
                TextOrFalse::Text(t) => Some(t.as_str()),
                TextOrFalse::False => None,
            })
        );
    }

    #[test]
    fn a_processed_reply_leaves_its_stamp_and_a_failed_processing_clears_it() {
        let (watch, settings) = (Watch::default(), Settings::default());
        let mut with_etag = processed(ChangeStatus::Unchanged);
        if let Ok(Checked::Processed(r)) = &mut with_etag {
            r.page.headers.push(("ETag".into(), "\"v1\"".into()));
        }
        let d = decide(&ctx(&watch, &settings, 2), &with_etag);
        assert_eq!(d.patch.last_raw_checksum, Some(Some(STAMP.to_string())));
        assert_eq!(
            d.patch.last_validators,
            Some(Some(Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None
            }))
        );
        for cleared in [
            processed(ChangeStatus::Blocked),
            Err(CheckError::FilterNotFound {
                filters: vec!["#gone".into()],
            }),
        ] {
            let d = decide(&ctx(&watch, &settings, 2), &cleared);
            assert_eq!(d.patch.last_raw_checksum, Some(None));
            assert_eq!(d.patch.last_validators, Some(None));
        }
        let d = decide(
            &ctx(&watch, &settings, 2),
            &Err(CheckError::Fetch(FetchError::Status { status: 500 })),
        );
        assert_eq!(
            d.patch.last_raw_checksum, None,
            "a failed fetch proves nothing"
        );
        assert_eq!(d.patch.last_validators, None);
    }

    #[test]
    fn a_reused_reply_is_unchanged_and_keeps_what_processing_wrote() {
        let watch = Watch {
            page_title: Some("Old".into()),
            ..Watch::default()
        };
        let settings = Settings::default();
        let mut not_modified = page();
        not_modified.status = 304;
        not_modified.raw.clear();
        not_modified.content_type = None;
        let d = decide(
            &ctx(&watch, &settings, 2),
            &Ok(Checked::Reused(not_modified)),
        );
        assert_eq!(d.report.status, Some(ChangeStatus::Unchanged));
        assert!(d.snapshot.is_none() && d.text_before_filters.is_none());
        assert_eq!(d.plan, Plan::None);
        assert_eq!(d.patch.last_error, Some(TextOrFalse::False));
        assert_eq!(d.patch.last_check_status, Some(304));
        let map = d.patch.into_map();
        for kept in [
            "page_title",
            "previous_md5",
            "content-type",
            "last_raw_checksum",
            "last_validators",
        ] {
            assert!(!map.contains_key(kept), "{kept} is left as it was");
        }
        let d = decide(&ctx(&watch, &settings, 2), &Ok(Checked::Reused(page())));
        assert_eq!(d.patch.content_type, Some(Some("text/html".into())));
        assert_eq!(d.patch.last_raw_checksum, None);
    }
}
