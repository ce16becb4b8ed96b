//! Operations on one or many watches, with upstream's messages: the dashboard's row actions
//! (`watch_operation`) and checkbox bulk bar (`checkbox-operation`), and the REST API's
//! "recheck all" of the watch list and of a tag. The socket layer and the REST fallback
//! (`POST /ui/checkbox-operations`) both call these, so an operation behaves the same whether or
//! not a socket is up.

use axum::http::StatusCode;
use axum::response::Response;
use changewatch_core::model::{TextOrFalse, Watch};
use changewatch_engine::scheduler::{request_recheck, request_rechecks};
use changewatch_store::{Expect, Item, Key, StoreError, uuid_bytes};
use serde_json::json;

use crate::error::{ApiError, json_response};
use crate::routes::history::clear_history;
use crate::state::AppState;
use crate::stored::{Loaded, edit_watch, load, resolve_tag_names};
use crate::validate::proxy_names;

/// Upstream answers bulk rechecks of this many watches or more with 202 and queues them in the
/// background.
pub const BACKGROUND_THRESHOLD: usize = 20;

/// Store or queue calls a background operation keeps in flight.
pub const BACKGROUND_CONCURRENCY: usize = 16;

/// Watches a background recheck marks and queues per store call.
const RECHECK_BATCH: usize = 256;

/// Runs `work` after the reply where the process keeps running (a spawned task), or before it
/// where it does not ([`crate::ApiConfig::work_after_reply`]: Lambda).
pub async fn in_background(
    state: &AppState,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if state.config.work_after_reply {
        tokio::spawn(work);
    } else {
        work.await;
    }
}

/// A watch `recheck_all` queues: its id and whether it is queued or running already. An id in
/// the API's form is kept as its uuid's 16 bytes, and no tenant name (the listing's tenant is
/// every target's): 24 bytes a watch where an id `String` and its flag took ~80, since the
/// list holds every watch of a recheck of all (at 50,000 watches its strings were the largest
/// part of the heap that grew with the watch count, heaptrack, bench/README.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Uuid([u8; 16], bool),
    Other(Box<str>, bool),
}

impl Target {
    /// The target of a watch a listing walks past, `None` when it is paused. Taken from each
    /// item as it goes by, so a recheck of every watch never holds every document.
    pub fn of(item: &Item, now: i64) -> Result<Option<Target>, StoreError> {
        let watch: Watch = changewatch_engine::docs::decode(item)?;
        if watch.paused {
            return Ok(None);
        }
        let busy = item
            .schedule
            .as_ref()
            .is_some_and(|s| s.queued_at.is_some() || s.leased(now));
        Ok(Some(Target::new(&item.key.id, busy)))
    }

    fn new(id: &str, busy: bool) -> Target {
        match uuid_bytes(id) {
            Some(bytes) => Target::Uuid(bytes, busy),
            None => Target::Other(id.into(), busy),
        }
    }

    fn busy(&self) -> bool {
        match self {
            Target::Uuid(_, busy) | Target::Other(_, busy) => *busy,
        }
    }

    /// Calls `f` with the id's text (a uuid's written into a buffer on the stack).
    fn with_id<T>(&self, f: impl FnOnce(&str) -> T) -> T {
        match self {
            Target::Uuid(bytes, _) => {
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                f(uuid::Uuid::from_bytes(*bytes)
                    .hyphenated()
                    .encode_lower(&mut buf))
            }
            Target::Other(id, _) => f(id),
        }
    }

    /// Id order, the order of their strings (a uuid's bytes sort as its text does).
    pub fn cmp_id(&self, other: &Target) -> std::cmp::Ordering {
        match (self, other) {
            (Target::Uuid(a, _), Target::Uuid(b, _)) => a.cmp(b),
            _ => self.with_id(|a| other.with_id(|b| a.cmp(b))),
        }
    }
}

/// Queues a manual recheck of every watch in `targets` ([`Target::of`]): at once for
/// fewer than [`BACKGROUND_THRESHOLD`], else in the background with a 202. `report_busy` adds
/// upstream's "(N already queued or running)" note, which only the watch list's `recheck_all`
/// has; a tag's recheck reports every watch as queued.
pub async fn recheck_all(
    state: &AppState,
    targets: Vec<Target>,
    report_busy: bool,
) -> Result<Response, ApiError> {
    let busy = if report_busy {
        targets.iter().filter(|t| t.busy()).count()
    } else {
        0
    };
    let n = targets.len();
    if n >= BACKGROUND_THRESHOLD {
        let st = state.clone();
        in_background(state, async move {
            // In batches: each is one store call, and a failed one leaves the others queued.
            for batch in targets.chunks(RECHECK_BATCH) {
                let keys = target_keys(&st, batch);
                if let Err(e) =
                    request_rechecks(st.store.as_ref(), st.queue.as_ref(), &keys, st.now()).await
                {
                    tracing::warn!(watches = keys.len(), error = %e, "background recheck failed");
                }
            }
        })
        .await;
        return Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"status": format!("OK, queueing {n} watches in background")}),
        ));
    }
    let keys = target_keys(state, &targets);
    request_rechecks(
        state.store.as_ref(),
        state.queue.as_ref(),
        &keys,
        state.now(),
    )
    .await?;
    let mut status = format!("OK, queued {} watches for rechecking", n - busy);
    if busy > 0 {
        status.push_str(&format!(" ({busy} already queued or running)"));
    }
    Ok(json_response(StatusCode::OK, &json!({ "status": status })))
}

/// The keys of `recheck_all`'s targets, made when they are queued: the list holds ids only.
fn target_keys(state: &AppState, targets: &[Target]) -> Vec<Key> {
    targets
        .iter()
        .map(|t| t.with_id(|id| Key::watch(&state.tenant, id)))
        .collect()
}

/// Applies an infallible `edit` with [`edit_watch`]'s conflict retries. `Ok(false)` when the
/// watch does not exist.
pub async fn update_watch(
    state: &AppState,
    uuid: &str,
    reschedule: bool,
    mut edit: impl FnMut(&mut Watch, &Loaded),
) -> Result<bool, ApiError> {
    let done = edit_watch(state, uuid, reschedule, |w, l| {
        edit(w, l);
        Ok(())
    })
    .await?;
    Ok(done.is_some())
}

/// A `watch_operation` that succeeded: upstream's `operation_result` echoes these.
#[derive(Debug, PartialEq, Eq)]
pub struct Done {
    pub operation: String,
    pub uuid: String,
}

/// `watch_operation {op, uuid}`: pause and mute toggle, recheck queues a manual check.
/// The error strings are upstream's.
pub async fn watch_operation(
    state: &AppState,
    op: Option<&str>,
    uuid: Option<&str>,
) -> Result<Done, String> {
    let (Some(op), Some(uuid)) = (op.filter(|s| !s.is_empty()), uuid.filter(|s| !s.is_empty()))
    else {
        return Err("Missing operation or UUID".into());
    };
    let found = match op {
        "pause" => {
            let mut now_paused = false;
            let found = update_watch(state, uuid, true, |w, _| {
                w.paused = !w.paused;
                now_paused = w.paused;
            })
            .await
            .map_err(|e| e.to_string())?;
            if found && now_paused {
                state
                    .unqueue(&[uuid.to_string()])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            found
        }
        "mute" => update_watch(state, uuid, false, |w, _| {
            w.notification_muted = !w.notification_muted;
        })
        .await
        .map_err(|e| e.to_string())?,
        "recheck" => {
            let key = Key::watch(&state.tenant, uuid);
            if state
                .store
                .get(&key)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err("Watch not found".into());
            }
            request_recheck(
                state.store.as_ref(),
                state.queue.as_ref(),
                &key,
                state.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            true
        }
        other => {
            if load(state, uuid)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err("Watch not found".into());
            }
            return Err(format!("Unknown operation: {other}"));
        }
    };
    if !found {
        return Err("Watch not found".into());
    }
    Ok(Done {
        operation: op.to_string(),
        uuid: uuid.to_string(),
    })
}

/// What a bulk operation reports back (upstream's `toast`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub message: String,
    /// `success` or `error`.
    pub kind: &'static str,
}

impl Outcome {
    fn ok(message: String) -> Self {
        Outcome {
            message,
            kind: "success",
        }
    }

    fn error(message: &str) -> Self {
        Outcome {
            message: message.to_string(),
            kind: "error",
        }
    }
}

/// `checkbox-operation {op, uuids, extra_data}`. Unknown watches are skipped; the count in the
/// message is of the uuids given, as upstream counts.
pub async fn checkbox_operation(
    state: &AppState,
    op: &str,
    uuids: &[String],
    extra_data: Option<&str>,
) -> Result<Outcome, ApiError> {
    let n = uuids.len();
    let now = state.now();
    let set_all = |f: fn(&mut Watch), reschedule: bool| async move {
        for uuid in uuids {
            update_watch(state, uuid, reschedule, |w, _| f(w)).await?;
        }
        Ok::<(), ApiError>(())
    };
    let outcome = match op {
        "delete" => {
            for uuid in uuids {
                state
                    .store
                    .delete(&Key::watch(&state.tenant, uuid), Expect::Any)
                    .await?;
            }
            state.unqueue(uuids).await?;
            Outcome::ok(format!("{n} watches deleted"))
        }
        "pause" => {
            set_all(|w| w.paused = true, true).await?;
            state.unqueue(uuids).await?;
            Outcome::ok(format!("{n} watches paused"))
        }
        "unpause" => {
            set_all(|w| w.paused = false, true).await?;
            Outcome::ok(format!("{n} watches unpaused"))
        }
        "mark-viewed" => {
            for uuid in uuids {
                update_watch(state, uuid, false, |w, l| {
                    // A snapshot stamped ahead of the clock (two checks in one second) must
                    // still count as seen.
                    w.last_viewed = now.max(l.item.history.newest.unwrap_or(0));
                })
                .await?;
            }
            Outcome::ok(format!("{n} watches updated"))
        }
        "mark-unviewed" => {
            // Back to the second-newest snapshot: the row is unread again and its diff still
            // opens on the latest change. With fewer than two snapshots there is no change to
            // un-read, so those are skipped (and not counted).
            let mut updated = 0;
            for uuid in uuids {
                let history = state
                    .store
                    .snapshots(&Key::watch(&state.tenant, uuid))
                    .await?;
                if let [.., previous, _] = history.as_slice() {
                    let previous = *previous;
                    if update_watch(state, uuid, false, |w, _| w.last_viewed = previous).await? {
                        updated += 1;
                    }
                }
            }
            Outcome::ok(format!("{updated} watches updated"))
        }
        "mute" => {
            set_all(|w| w.notification_muted = true, false).await?;
            Outcome::ok(format!("{n} watches muted"))
        }
        "unmute" => {
            set_all(|w| w.notification_muted = false, false).await?;
            Outcome::ok(format!("{n} watches un-muted"))
        }
        "recheck" => {
            for uuid in uuids {
                let key = Key::watch(&state.tenant, uuid);
                // A watch that is gone is left out.
                request_recheck(state.store.as_ref(), state.queue.as_ref(), &key, now).await?;
            }
            Outcome::ok(format!("{n} watches queued for rechecking"))
        }
        "clear-errors" => {
            set_all(|w| w.last_error = TextOrFalse::False, false).await?;
            Outcome::ok(format!("{n} watches errors cleared"))
        }
        "clear-history" => {
            for uuid in uuids {
                clear_history(state, uuid).await?;
            }
            Outcome::ok(format!("{n} watches cleared/reset."))
        }
        "notification-default" => {
            set_all(
                |w| {
                    w.notification_title = None;
                    w.notification_body = None;
                    w.notification_urls.clear();
                    w.notification_format = "System default".into();
                },
                false,
            )
            .await?;
            Outcome::ok(format!(
                "{n} watches set to use default notification settings"
            ))
        }
        "set-fetch-backend" => {
            // Upstream's list: its fetchers (not the extra browsers) and `system`, which
            // defers to the global setting.
            match extra_data {
                Some(b @ ("html_requests" | "html_webdriver" | "system")) => {
                    for uuid in uuids {
                        update_watch(state, uuid, false, |w, _| w.fetch_backend = b.to_string())
                            .await?;
                    }
                    Outcome::ok(format!("Browser / fetch method updated on {n} watches"))
                }
                _ => Outcome::error("Invalid browser / fetch method selected"),
            }
        }
        "set-proxy" => {
            let proxy = extra_data.unwrap_or("");
            let settings = state.settings().await?;
            if proxy.is_empty() || proxy_names(&settings).iter().any(|k| k == proxy) {
                for uuid in uuids {
                    update_watch(state, uuid, false, |w, _| {
                        w.proxy = (!proxy.is_empty()).then(|| proxy.to_string());
                    })
                    .await?;
                }
                Outcome::ok(format!("Proxy updated on {n} watches"))
            } else {
                Outcome::error("Invalid proxy selected")
            }
        }
        "assign-tag" => {
            // A tag's uuid, or a title: an existing tag with that title, else a new one.
            let name = extra_data.map(str::trim).unwrap_or("");
            if !name.is_empty()
                && let Some(tag) = resolve_tag_names(state, &[name.to_string()])
                    .await?
                    .into_iter()
                    .next()
            {
                for uuid in uuids {
                    update_watch(state, uuid, false, |w, _| {
                        if !w.tags.contains(&tag) {
                            w.tags.push(tag.clone());
                        }
                    })
                    .await?;
                }
            }
            Outcome::ok(format!("{n} watches were tagged"))
        }
        other => Outcome::error(&format!("Unknown operation: {other}")),
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uuids and other ids sort together as their strings do, and each gives its id back.
    #[test]
    fn targets_keep_their_ids_and_sort_as_the_strings() {
        let ids = [
            "f0e1d2c3-b4a5-4697-8899-aabbccddeeff",
            "0b9e5cf1-3c4f-4d52-9a43-1f0a6e2b7c88",
            "0B9E5CF1-3C4F-4D52-9A43-1F0A6E2B7C88",
            "my-watch",
            "0b9e5cf1-3c4f-4d52-9a43-1f0a6e2b7c89",
            "1",
        ];
        // Busy: the ids that are not a uuid in the API's form.
        let mut targets: Vec<Target> = ids
            .iter()
            .map(|id| Target::new(id, uuid_bytes(id).is_none()))
            .collect();
        assert!(matches!(targets[0], Target::Uuid(..)));
        assert!(
            matches!(targets[2], Target::Other(..)),
            "not the API's form"
        );
        targets.sort_by(Target::cmp_id);
        let got: Vec<String> = targets.iter().map(|t| t.with_id(str::to_owned)).collect();
        let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(targets.iter().filter(|t| t.busy()).count(), 3);
        assert!(std::mem::size_of::<Target>() <= 24);
    }
}
