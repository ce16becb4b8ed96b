//! Stored watches and tags as the handlers use them: read and decode, create (watches due at
//! once, tags by legacy name), and edit with the conflict-safe loop. Shared by the routes, the
//! import, the bulk operations and the live rows, so none of them reaches into another's
//! module for it.

use std::collections::HashMap;

use axum::http::StatusCode;
use changewatch_core::model::{self, HistoryInfo, Tag, Watch, has_template_markup};
use changewatch_engine::docs::{self, Step};
use changewatch_engine::timing::next_due;
use changewatch_sandbox::RenderJob;
use changewatch_store::{Expect, Item, Key, Schedule};

use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// Upstream's 404 for a watch uuid that names nothing.
pub fn not_found(uuid: &str) -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        format!("No watch exists with the UUID of {uuid}"),
    )
}

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
/// How many watches the tenant has: read only to enforce `PAGE_WATCH_LIMIT` (in AWS mode a
/// listing is billed for every watch, so callers ask only when a limit is set).
pub async fn count_watches(state: &AppState) -> Result<usize, ApiError> {
    let mut n = 0;
    state
        .store
        .list_each(&state.tenant, changewatch_store::Kind::Watch, &mut |_| {
            n += 1;
            Ok(())
        })
        .await?;
    Ok(n)
}

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

/// Stores a validated new watch (tags resolved, due now) and returns its uuid. Shared by
/// POST /watch and POST /import so that both create watches the same way.
pub async fn insert_watch(
    state: &AppState,
    settings: &model::Settings,
    created: validate::WatchCreate,
) -> Result<String, ApiError> {
    let mut watch = created.watch;
    let uuid = uuid::Uuid::new_v4().to_string();
    watch.uuid = uuid.clone();
    watch.date_created = Some(state.now());
    for tag_uuid in resolve_tag_names(state, &created.tag_names).await? {
        if !watch.tags.contains(&tag_uuid) {
            watch.tags.push(tag_uuid);
        }
    }
    let next = next_due(
        &watch,
        settings,
        0,
        state.now(),
        state.config.minimum_recheck_secs,
    );
    let doc = serde_json::to_value(&watch)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    state
        .store
        .put(
            &Key::watch(&state.tenant, &uuid),
            doc,
            Some(Schedule {
                next_check_at: next,
                ..Schedule::default()
            }),
            Expect::Absent,
        )
        .await?;
    Ok(uuid)
}

/// Legacy `tag` names: an existing tag with that title (case-insensitive), an existing tag's
/// uuid, or a new tag. Unknown uuid-looking names are ignored, as upstream does.
pub async fn resolve_tag_names(
    state: &AppState,
    names: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut tags = state.tags().await?;
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if tags.contains_key(name) {
            out.push(name.to_string());
            continue;
        }
        if crate::extract::is_canonical_uuid(name) {
            continue;
        }
        if let Some((uuid, _)) = tags
            .iter()
            .find(|(_, t)| t.title().eq_ignore_ascii_case(name))
        {
            out.push(uuid.clone());
            continue;
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut tag = Tag::new(name);
        tag.base.uuid = uuid.clone();
        tag.base.date_created = Some(state.now());
        let doc = serde_json::to_value(&tag)
            .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        state
            .store
            .put(&Key::tag(&state.tenant, &uuid), doc, None, Expect::Absent)
            .await?;
        tags.insert(uuid.clone(), tag);
        out.push(uuid);
    }
    Ok(out)
}

/// Upstream's 404 for a tag uuid that names nothing.
pub fn tag_not_found(uuid: &str) -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        format!("No tag exists with the UUID of {uuid}"),
    )
}

pub async fn load_tag(state: &AppState, uuid: &str) -> Result<Option<(Item, Tag)>, ApiError> {
    let Some(item) = state.store.get(&Key::tag(&state.tenant, uuid)).await? else {
        return Ok(None);
    };
    let tag = docs::decode(&item)?;
    Ok(Some((item, tag)))
}

/// [`edit_watch`] for tags: `edit` is re-applied to a fresh copy when another write (a second
/// client, the dashboard) committed the tag in between. `Ok(None)` when the tag does not exist.
pub async fn edit_tag<T>(
    state: &AppState,
    uuid: &str,
    mut edit: impl FnMut(&mut Tag) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    let key = Key::tag(&state.tenant, uuid);
    docs::read_modify_write(state.store.as_ref(), &key, |current| {
        let Some(item) = current else {
            return Ok(Step::Done(None));
        };
        let mut tag: Tag = docs::decode(item)?;
        let out = edit(&mut tag)?;
        Ok(Step::Write {
            doc: docs::encode(&tag)?,
            schedule: None,
            out: Some(out),
        })
    })
    .await
}

/// The rendered forms of a watch's templated `url` and `link_to_open`, for its `link` as
/// upstream shows it (a URL with `{% now %}` shows today's address). Each renders in the
/// sandbox on its own, so one broken template (shown as `""`, as upstream) spoils no other.
pub async fn rendered_links(state: &AppState, watch: &Watch) -> Links {
    rendered_templates(state, &[&watch.url, &watch.link_to_open]).await
}

/// [`rendered_links`] for URLs without their watch (the list renders only templated `url`s).
pub async fn rendered_templates(state: &AppState, templates: &[&str]) -> Links {
    let mut links = Links::default();
    for &template in templates {
        if !has_template_markup(template) || links.0.contains_key(template) {
            continue;
        }
        let job = RenderJob::Request {
            templates: vec![("url".into(), template.to_string())],
        };
        let rendered = match state.sandbox.render(job).await {
            Ok(r) => r.texts.into_iter().next().ok_or_else(String::new),
            Err(e) => Err(e.to_string()),
        };
        links.0.insert(template.to_string(), rendered);
    }
    links
}

/// What [`rendered_links`] found; [`Links::render`] is the model's `Render` over them.
#[derive(Debug, Default)]
pub struct Links(HashMap<String, Result<String, String>>);

impl Links {
    pub fn render(&self, template: &str) -> Result<String, String> {
        self.0
            .get(template)
            .cloned()
            .unwrap_or_else(|| Ok(template.to_string()))
    }
}
