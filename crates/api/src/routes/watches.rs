//! /api/v1/watch and /api/v1/watch/{uuid}: list, create, read (with the recheck / pause / mute
//! operations), update, delete.

use std::collections::{BTreeMap, HashMap};

use crate::validate;
use crate::validate::ApiContext;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use changewatch_core::model::{
    Tag, Watch, assigned_tags, has_template_markup, no_render, tags_for_watch,
};
use changewatch_engine::docs;
use changewatch_engine::scheduler::request_recheck;
use changewatch_store::{Expect, Item, Key, Kind, StoreError};
use futures::TryStreamExt;
use serde_json::json;

use crate::apprise::is_valid_apprise_url;
use crate::bulk::{Target, recheck_all};
use crate::error::{ApiError, json_bytes_response, json_response, json_string, no_content};
use crate::extract::{JsonBody, WatchUuid, query_switch, truthy};
use crate::state::AppState;
use crate::stored::{
    count_watches, edit_watch, history_info, insert_watch, load, not_found, rendered_links,
};
use crate::validate::proxy_names;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/watch", get(list).post(create))
        .route("/api/v1/watch/{uuid}", get(read).put(update).delete(remove))
}

fn ok() -> Response {
    json_string(StatusCode::OK, "OK")
}

/// Which watches the listing shows, and their tags: the query's filters, owned, so that a
/// streamed body can carry them.
struct Listing {
    tags: BTreeMap<String, Tag>,
    /// The uuid of the tag named by `?tag=` (a name no uuid has when there is no such tag).
    tag_filter: Option<String>,
    with_errors: bool,
}

impl Listing {
    /// Whether a watch is in the listed set: the tag (by title, url_match_pattern included)
    /// and `with_errors` filters.
    fn listed(&self, watch: &Watch) -> bool {
        if self.with_errors && !watch.last_error.is_set() {
            return false;
        }
        self.tag_filter.as_deref().is_none_or(|t| {
            tags_for_watch(watch, &self.tags)
                .iter()
                .any(|(u, _)| *u == t)
        })
    }

    fn tag_uuids(&self, watch: &Watch) -> Vec<String> {
        tags_for_watch(watch, &self.tags)
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect()
    }

    fn filtered(&self) -> bool {
        self.tag_filter.is_some() || self.with_errors
    }

    /// A listed watch's entry, or `None` for one the filters leave out. Templated links are
    /// rendered in the sandbox.
    async fn entry(
        &self,
        state: &AppState,
        item: &Item,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let watch: Watch = docs::decode(item)?;
        if !self.listed(&watch) {
            return Ok(None);
        }
        let tag_uuids = self.tag_uuids(&watch);
        let history = history_info(item);
        if has_template_markup(&watch.url) || has_template_markup(&watch.link_to_open) {
            let links = rendered_links(state, &watch).await;
            return Ok(Some(
                watch.api_list_entry(&history, &tag_uuids, &|t| links.render(t)),
            ));
        }
        Ok(Some(watch.api_list_entry(&history, &tag_uuids, &no_render)))
    }
}

/// Watches per page of a streamed listing.
const LIST_PAGE: usize = 256;

async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let tags = state.tags().await?;
    let tag_filter = q.get("tag").map(|name| {
        tags.iter()
            .find(|(_, t)| t.title().eq_ignore_ascii_case(name.trim()))
            .map_or("\u{0}no such tag", |(uuid, _)| uuid.as_str())
            .to_owned()
    });
    let listing = Listing {
        tags,
        tag_filter,
        with_errors: truthy(q.get("with_errors")),
    };
    if truthy(q.get("recheck_all")) {
        // Upstream rechecks the set it would have listed (never a paused watch).
        let now = state.now();
        let mut targets = Vec::new();
        state
            .store
            .list_each(&state.tenant, Kind::Watch, &mut |item| {
                if listing.filtered() && !listing.listed(&docs::decode::<Watch>(&item)?) {
                    return Ok(());
                }
                targets.extend(Target::of(&item, now)?);
                Ok(())
            })
            .await?;
        // In id order, as the listing always queued them.
        targets.sort_by(Target::cmp_id);
        return recheck_all(&state, targets, true).await;
    }
    let first = state
        .store
        .list_page(&state.tenant, Kind::Watch, None, LIST_PAGE)
        .await?;
    match first {
        Some(first) => Ok(streamed_listing(state, listing, first)),
        None => buffered_listing(&state, &listing).await,
    }
}

/// The listing from a store that reads in id order by pages (SQLite): the body goes out a
/// page of entries at a time, in key order as it is read (one body for 50,000 watches was
/// 21.5 MB of the heap). The first page was read before answering, so a store that fails
/// at once is still a 500; one that fails later ends the body short, which no JSON reader
/// takes for a listing.
fn streamed_listing(state: AppState, listing: Listing, first: Vec<Item>) -> Response {
    struct Walk {
        state: AppState,
        listing: Listing,
        items: Vec<Item>,
        opened: bool,
        members: usize,
    }
    let walk = Walk {
        state,
        listing,
        items: first,
        opened: false,
        members: 0,
    };
    let pages = futures::stream::try_unfold(Some(walk), |walk| async move {
        let Some(mut walk) = walk else {
            return Ok(None);
        };
        let full = walk.items.len() == LIST_PAGE;
        let after = walk.items.last().map(|item| item.key.id.clone());
        let mut chunk = Vec::new();
        if !walk.opened {
            chunk.push(b'{');
            walk.opened = true;
        }
        for item in std::mem::take(&mut walk.items) {
            let Some(entry) = walk.listing.entry(&walk.state, &item).await? else {
                continue;
            };
            if walk.members > 0 {
                chunk.push(b',');
            }
            serde_json::to_writer(&mut chunk, &item.key.id)
                .and_then(|()| {
                    chunk.push(b':');
                    serde_json::to_writer(&mut chunk, &entry)
                })
                .map_err(|e| StoreError::Corrupt(format!("watch {}: {e}", item.key.id)))?;
            walk.members += 1;
        }
        if !full {
            chunk.extend_from_slice(b"}\n");
            return Ok(Some((Bytes::from(chunk), None)));
        }
        let next = walk
            .state
            .store
            .list_page(&walk.state.tenant, Kind::Watch, after.as_deref(), LIST_PAGE)
            .await?
            .ok_or_else(|| StoreError::backend("the store stopped reading by pages"))?;
        walk.items = next;
        Ok(Some((Bytes::from(chunk), Some(walk))))
    })
    .map_err(|e: StoreError| {
        tracing::error!(error = %e, "the watch listing ended early");
        std::io::Error::other(e)
    });
    let mut response = Response::new(Body::from_stream(pages));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The listing from a store that walks in its own order (DynamoDB's shards): one body,
/// written as the store walks and put in key order at the end.
async fn buffered_listing(state: &AppState, listing: &Listing) -> Result<Response, ApiError> {
    // One watch at a time, each entry written into the body as soon as it is made: the
    // listing holds its body once, never every document (a tree per entry was 3-4 times its
    // size: ~15 MB more at 5,000 watches) nor every entry's JSON beside the body.
    let mut out = SortedObject::new();
    // Watches whose `link` needs a template rendered (in the sandbox, which this walk cannot
    // wait for): their entries are made after it.
    let mut templated = Vec::new();
    state
        .store
        .list_each(&state.tenant, Kind::Watch, &mut |item| {
            let watch: Watch = docs::decode(&item)?;
            if !listing.listed(&watch) {
                return Ok(());
            }
            if has_template_markup(&watch.url) || has_template_markup(&watch.link_to_open) {
                templated.push(item);
                return Ok(());
            }
            let tag_uuids = listing.tag_uuids(&watch);
            let entry = watch.api_list_entry(&history_info(&item), &tag_uuids, &no_render);
            out.push(&item.key.id, &entry)
                .map_err(|e| StoreError::Corrupt(format!("watch {}: {e}", item.key.id)))
        })
        .await?;
    for item in templated {
        if let Some(entry) = listing.entry(state, &item).await? {
            out.push(&item.key.id, &entry)
                .map_err(|e| StoreError::Corrupt(format!("watch {}: {e}", item.key.id)))?;
        }
    }
    Ok(json_bytes_response(StatusCode::OK, out.finish()))
}

/// A JSON object written member by member into one buffer, its keys in byte order at the
/// end, as a `BTreeMap`'s would be (the listing's keys always came by uuid). A store that
/// walks in key order (SQLite) leaves nothing to sort; otherwise (DynamoDB's shards, the
/// templated entries made last) `finish` copies the members once, in order.
struct SortedObject {
    body: Vec<u8>,
    /// Each member's (start, end of its quoted key, end) in `body`.
    members: Vec<(usize, usize, usize)>,
    in_order: bool,
}

impl SortedObject {
    fn new() -> Self {
        SortedObject {
            body: vec![b'{'],
            members: Vec::new(),
            in_order: true,
        }
    }

    fn key<'a>(&'a self, &(start, key_end, _): &(usize, usize, usize)) -> &'a [u8] {
        &self.body[start..key_end]
    }

    /// Appends `"key":value`; on an error the body is as it was.
    fn push(&mut self, key: &str, value: &impl serde::Serialize) -> serde_json::Result<()> {
        let mark = self.body.len();
        if !self.members.is_empty() {
            self.body.push(b',');
        }
        let start = self.body.len();
        let written = serde_json::to_writer(&mut self.body, key).and_then(|()| {
            let key_end = self.body.len();
            self.body.push(b':');
            serde_json::to_writer(&mut self.body, value).map(|()| key_end)
        });
        let key_end = match written {
            Ok(key_end) => key_end,
            Err(e) => {
                self.body.truncate(mark);
                return Err(e);
            }
        };
        let member = (start, key_end, self.body.len());
        if let Some(last) = self.members.last() {
            self.in_order &= self.key(last) < &self.body[start..key_end];
        }
        self.members.push(member);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        if self.in_order {
            self.body.push(b'}');
            return self.body;
        }
        let mut members = std::mem::take(&mut self.members);
        members.sort_by(|a, b| self.key(a).cmp(self.key(b)));
        let mut body = Vec::with_capacity(self.body.len() + 1);
        body.push(b'{');
        for (i, &(start, _, end)) in members.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&self.body[start..end]);
        }
        body.push(b'}');
        body
    }
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
    // The context holds a non-Send validator reference: keep it out of the awaits below.
    let created = {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        validate::create_watch_from_json(body.clone(), &ctx)?
    };
    validate::check_notification_templates(&state.sandbox, &body).await?;
    // The tenant's watches are read only to enforce a limit (in AWS mode a listing is billed
    // for every watch): creating the thousandth watch costs what creating the first does.
    if let Some(limit) = state.config.page_watch_limit {
        let existing = count_watches(&state).await?;
        if existing >= limit {
            return Err(ApiError::text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Watch limit reached ({existing}/{limit} watches). Cannot add more watches."
                ),
            ));
        }
    }
    let uuid = insert_watch(&state, &settings, created).await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "uuid": uuid })))
}

async fn read(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(loaded) = load(&state, &uuid).await? else {
        return Err(not_found(&uuid));
    };
    // Upstream acts on the first of recheck > paused > muted; all are checked first, so a bad
    // value is refused rather than ignored.
    let paused = query_switch(&q, "paused", "paused", "unpaused")?;
    let muted = query_switch(&q, "muted", "muted", "unmuted")?;
    if truthy(q.get("recheck")) {
        request_recheck(
            state.store.as_ref(),
            state.queue.as_ref(),
            &loaded.item.key,
            state.now(),
        )
        .await?;
        return Ok(ok());
    }
    if let Some(paused) = paused {
        edit_watch(&state, &uuid, true, |w, _| {
            w.paused = paused;
            Ok(())
        })
        .await?
        .ok_or_else(|| not_found(&uuid))?;
        if paused {
            state.unqueue(std::slice::from_ref(&uuid)).await?;
        }
        return Ok(ok());
    }
    if let Some(muted) = muted {
        edit_watch(&state, &uuid, false, |w, _| {
            w.notification_muted = muted;
            Ok(())
        })
        .await?
        .ok_or_else(|| not_found(&uuid))?;
        return Ok(ok());
    }
    let history = history_info(&loaded.item);
    let tags = state.tags().await?;
    let assigned: Vec<(&str, &Tag)> = assigned_tags(&loaded.watch, &tags);
    let links = rendered_links(&state, &loaded.watch).await;
    Ok(json_response(
        StatusCode::OK,
        &loaded
            .watch
            .api_view(&history, &assigned, &|t| links.render(t)),
    ))
}

async fn update(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let proxies = proxy_names(&settings);
    let browsers = settings.requests.extra_browser_backends();
    // With notification templates in the body: the write rules first (their messages are
    // upstream's), on a copy; then the templates in the sandbox; then the edit for real
    // (re-applied on a conflict), which alone is all a body without templates needs.
    if !validate::notification_templates(&body).is_empty() {
        let Some(loaded) = load(&state, &uuid).await? else {
            return Err(not_found(&uuid));
        };
        {
            let ctx = ApiContext {
                proxy_names: &proxies,
                extra_browsers: &browsers,
                notification_url_validator: Some(&is_valid_apprise_url),
            };
            validate::apply_watch_update(&mut loaded.watch.clone(), body.clone(), &ctx)?;
        }
        validate::check_notification_templates(&state.sandbox, &body).await?;
    }
    edit_watch(&state, &uuid, true, |w, _| {
        let ctx = ApiContext {
            proxy_names: &proxies,
            extra_browsers: &browsers,
            notification_url_validator: Some(&is_valid_apprise_url),
        };
        validate::apply_watch_update(w, body.clone(), &ctx).map_err(ApiError::from)
    })
    .await?
    .ok_or_else(|| not_found(&uuid))?;
    Ok(ok())
}

async fn remove(
    State(state): State<AppState>,
    WatchUuid(uuid): WatchUuid,
) -> Result<Response, ApiError> {
    let key = Key::watch(&state.tenant, &uuid);
    if !state.store.delete(&key, Expect::Any).await? {
        // Upstream answers 400 here, not 404; clients rely on it.
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("No watch exists with the UUID of {uuid}"),
        ));
    }
    state.unqueue(&[uuid]).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::SortedObject;

    fn object(members: &[(&str, serde_json::Value)]) -> serde_json::Value {
        let mut out = SortedObject::new();
        for (key, value) in members {
            out.push(key, value).unwrap();
        }
        let body = out.finish();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn members_in_key_order_pass_through_and_others_are_sorted() {
        let in_order = SortedObject::new();
        assert_eq!(in_order.finish(), b"{}");
        let mut walk = SortedObject::new();
        walk.push("a1", &1).unwrap();
        walk.push("b2", &serde_json::json!({"x": [1, 2]})).unwrap();
        assert!(walk.in_order);
        assert_eq!(walk.finish(), br#"{"a1":1,"b2":{"x":[1,2]}}"#);

        let mut shards = SortedObject::new();
        for key in ["c", "a", "ab", "b"] {
            shards.push(key, &key).unwrap();
        }
        assert!(!shards.in_order);
        assert_eq!(shards.finish(), br#"{"a":"a","ab":"ab","b":"b","c":"c"}"#);
        assert_eq!(
            object(&[("z", 1.into()), ("y", "é\"".into())]),
            serde_json::json!({"y": "é\"", "z": 1})
        );
    }

    #[test]
    fn a_member_that_cannot_be_written_leaves_the_body_as_it_was() {
        let mut out = SortedObject::new();
        out.push("a", &1).unwrap();
        // JSON object keys must be strings: a map keyed by pairs cannot be written.
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(out.push("b", &bad).is_err());
        out.push("c", &2).unwrap();
        assert_eq!(out.finish(), br#"{"a":1,"c":2}"#);
    }
}
