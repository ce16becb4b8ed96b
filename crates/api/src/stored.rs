//! The stored watch as the handlers use it: read and decode it, and edit it with the
//! conflict-safe loop. Shared by the routes, the bulk operations and the live rows, so none of
//! them reaches into another's module for it.

use changewatch_core::model::{HistoryInfo, Watch};
use changewatch_engine::docs::{self, Step};
use changewatch_engine::timing::next_due;
use changewatch_store::{Item, Key};

use crate::error::ApiError;
use crate::state::AppState;

/// A watch document decoded, with its item (version, schedule).
#[derive(Debug)]
pub struct Loaded {
    pub item: Item,
    pub watch: Watch,
}

pub fn decode_watch(item: &Item) -> Result<Watch, ApiError> {
    Ok(docs::decode(item)?)
}

pub async fn load(state: &AppState, uuid: &str) -> Result<Option<Loaded>, ApiError> {
    let Some(item) = state.store.get(&Key::watch(&state.tenant, uuid)).await? else {
        return Ok(None);
    };
    let watch = decode_watch(&item)?;
    Ok(Some(Loaded { item, watch }))
}

/// Read from the item itself, never from a second query, so that the counts match the document.
pub fn history_info(item: &Item) -> HistoryInfo {
    HistoryInfo::new(item.history.count, item.history.newest)
}

/// Applies `edit` to the current watch and writes it back, recomputing its due time when
/// `reschedule` is set (interval, pause or schedule edits; otherwise the schedule is left as
/// it is). A check committing the same watch in between is the normal case, not the client's
/// problem: the edit is re-applied to the fresh copy ([`docs::read_modify_write`]). `Ok(None)`
/// when the watch does not exist; `edit`'s error is returned as is (nothing saved).
pub async fn edit_watch<T>(
    state: &AppState,
    uuid: &str,
    reschedule: bool,
    mut edit: impl FnMut(&mut Watch, &Loaded) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    let settings = match reschedule {
        true => Some(state.settings().await?),
        false => None,
    };
    let now = state.now();
    let key = Key::watch(&state.tenant, uuid);
    docs::read_modify_write(state.store.as_ref(), &key, |current| {
        let Some(item) = current else {
            return Ok(Step::Done(None));
        };
        let loaded = Loaded {
            item: item.clone(),
            watch: decode_watch(item)?,
        };
        let mut watch = loaded.watch.clone();
        let out = edit(&mut watch, &loaded)?;
        let schedule = settings.as_ref().map(|settings| {
            let mut s = item.schedule.clone().unwrap_or_default();
            s.next_check_at = next_due(
                &watch,
                settings,
                watch.last_checked,
                now,
                state.config.minimum_recheck_secs,
            );
            s
        });
        Ok(Step::Write {
            doc: docs::encode(&watch)?,
            schedule,
            out: Some(out),
        })
    })
    .await
}
