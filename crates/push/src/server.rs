//! Socket handlers and the feed → event tasks.
//!
//! Every socket joins its tenant's room; every event goes to that room only. `queue_size` is,
//! by default, the tenant's count of watches marked queued, kept from the feed like the other
//! counters: exact, per tenant and without polling a queue. AWS mode polls the SQS queues' depth
//! instead while clients are connected ([`QueueSize::Polled`], see [`crate::queue`]).
//!
//! A socket's credentials (session cookie, API key) are kept from its handshake and judged
//! again whenever the feed shows the tenant's password, API key or session keys changing (a
//! password change, a regenerated key, a logout), and every [`REVALIDATE_EVERY`] for sessions
//! that expire: a socket they no longer admit is disconnected. The settings write reaches the
//! push layer through the same feed in both modes (the DynamoDB stream in AWS mode), so an API
//! process elsewhere needs no channel to the push service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use changewatch_api::auth::key_matches;
use changewatch_api::bulk::{checkbox_operation, watch_operation};
use changewatch_api::live::{decode_watch_doc, event_timestamp, sanitize_status, watch_row};
use changewatch_api::session;
use changewatch_api::{Access, AppState};
use changewatch_core::model::Settings;
use changewatch_store::{ChangeEvent, ChangeFeed, Item, Key, Kind};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Sid;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::live::{Flags, Tenant};
use crate::origin::OriginPolicy;
use crate::queue::{Poller, QueueSize};

/// How often open sockets' credentials are judged again without a settings change: what
/// bounds how long a socket outlives its session's expiry (or a missed feed record).
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(60);

/// Shared by every handler (socketioxide state).
#[derive(Clone)]
struct Ctx {
    state: AppState,
    tenants: Arc<Mutex<HashMap<String, Tenant>>>,
    /// Set when `queue_size` is polled from the queues rather than counted from the feed.
    poller: Option<Arc<Poller>>,
    /// What each connected socket proved at its handshake.
    creds: Arc<Mutex<HashMap<Sid, Cred>>>,
    /// Per watch whose latest feed record started a lease-expiry timer, that record's sequence
    /// number and the timer: a newer record stops the timer at once (a check's own commit
    /// usually follows its start within milliseconds, and a timer would otherwise sleep out
    /// the whole lease). Only watches being checked have an entry.
    latest: Arc<Mutex<HashMap<Key, (u64, tokio::task::AbortHandle)>>>,
    seq: Arc<std::sync::atomic::AtomicU64>,
}

impl Ctx {
    fn creds(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Cred>> {
        self.creds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u64, tokio::task::AbortHandle)>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a new feed record for `key`, which ends any lease timer an older record of it
    /// started; returns its sequence number.
    fn saw(&self, key: &Key) -> u64 {
        if let Some((_, timer)) = self.latest().remove(key) {
            timer.abort();
        }
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a socket proved at its handshake, kept to judge it again when the settings change.
#[derive(Clone, Debug, Default)]
struct Cred {
    cookie: Option<String>,
    keys: Vec<String>,
}

impl Cred {
    fn of(headers: &HeaderMap, auth: Option<&Value>) -> Cred {
        let header_key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let auth_key = auth
            .and_then(|a| a.get("api_key"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Cred {
            cookie: session::cookie_value(headers),
            keys: header_key.into_iter().chain(auth_key).collect(),
        }
    }

    /// Open without a dashboard password, as upstream's dashboard; with one, a valid session
    /// or the API key.
    /// `password`: the hash in force under `settings` (`SALTED_PASS` or the stored one).
    fn admits(&self, access: Access, settings: &Settings, now: i64) -> bool {
        let keys = settings.application.session_keys.as_ref();
        let session = match access {
            Access::Open => return true,
            Access::KeyOnly => false,
            Access::Password(hash) => self
                .cookie
                .as_deref()
                .is_some_and(|c| session::valid(keys, hash, c, now)),
        };
        session || self.keys.iter().any(|k| key_matches(Some(k), settings))
    }
}

/// The initial read buffer of each WebSocket connection (see [`Push::start`]).
const WS_READ_BUFFER: usize = 1024;

/// How the push layer is set up beyond its state and feed.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    pub queue_size: QueueSize,
    /// Origins whose pages may open the socket besides the server's own
    /// (`CW_ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
}

/// The socket layer with its origin check in front; add it to a router with
/// [`SocketLayer::wrap`] (or serve [`crate::web::app`]).
#[derive(Clone)]
pub struct SocketLayer {
    socket: SocketIoLayer,
    origins: Arc<OriginPolicy>,
}

impl std::fmt::Debug for SocketLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketLayer")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl SocketLayer {
    /// `router` with Socket.IO at `/socket.io`; a handshake from a page of a foreign origin is
    /// answered 403 before the engine opens a session. Every Socket.IO request (polling and the
    /// WebSocket upgrade) passes here, so the connect handler need not check again.
    pub fn wrap(self, router: Router) -> Router {
        router
            .layer(self.socket)
            .layer(axum::middleware::from_fn_with_state(
                self.origins,
                origin_guard,
            ))
    }
}

async fn origin_guard(
    axum::extract::State(policy): axum::extract::State<Arc<OriginPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/socket.io") {
        return next.run(req).await;
    }
    if let Err(e) = policy.check(req.headers(), req.uri()) {
        info!(error = %e, "socket handshake refused");
        return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
    }
    next.run(detach_head(req)).await
}

/// The engine keeps each session's request head for as long as the socket is connected (the
/// connect handler reads its cookie and key). hyper parses the URI and the header values as
/// slices of the connection's read buffer, so a kept head keeps that whole buffer (8–16 KB)
/// alive: half of what an idle connection cost (heaptrack, 500 clients). A copy of the head
/// is a few hundred bytes and lets the buffer go.
fn detach_head(req: Request) -> Request {
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = axum::http::Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    // The router put a clone of the URI (the same slice) in the extensions.
    if let Some(original) = parts.extensions.get_mut::<axum::extract::OriginalUri>()
        && let Ok(uri) = axum::http::Uri::try_from(original.0.to_string())
    {
        original.0 = uri;
    }
    for value in parts.headers.values_mut() {
        // A value that was valid is valid again; on the impossible error the shared one stays.
        if let Ok(copy) = HeaderValue::from_bytes(value.as_bytes()) {
            let sensitive = value.is_sensitive();
            *value = copy;
            value.set_sensitive(sensitive);
        }
    }
    Request::from_parts(parts, body)
}

/// The running push layer. Dropping it leaves the tasks running; call [`Push::close`].
#[derive(Debug)]
pub struct Push {
    io: SocketIo,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Push {
    /// Builds the Socket.IO layer (serve it at `/socket.io` by adding it to the router) and
    /// starts the task that turns `feed` records into events. With [`QueueSize::Polled`], a
    /// second task reads the probe while sockets are connected and sends the depth to the
    /// tenant's room when it changes; with [`QueueSize::Marks`], `queue_size` counts the
    /// watches marked queued in the feed.
    pub fn start(
        state: AppState,
        feed: &dyn ChangeFeed,
        options: PushOptions,
    ) -> (SocketLayer, Push) {
        let poller = match options.queue_size {
            QueueSize::Marks => None,
            QueueSize::Polled { probe, every } => Some(Poller::new(probe, every)),
        };
        let origins = Arc::new(OriginPolicy::new(&options.allowed_origins));
        let ctx = Ctx {
            state,
            tenants: Arc::new(Mutex::new(HashMap::new())),
            poller: poller.clone(),
            creds: Arc::new(Mutex::new(HashMap::new())),
            latest: Arc::new(Mutex::new(HashMap::new())),
            seq: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        let (layer, io) = SocketIo::builder()
            .with_state(ctx.clone())
            // What a connection holds while idle is allocated per socket; the engine's 4 KB
            // default was a fifth of that. Clients send a few hundred bytes at most (the
            // bulk operation's uuid list aside), and a larger frame gets a buffer of its
            // size when it arrives, so 1 KB costs a large message nothing but a read call.
            .ws_read_buffer_size(WS_READ_BUFFER)
            .build_layer();
        io.ns("/", on_connect.with(authorize));
        let rx = feed.subscribe();
        let mut tasks = Vec::new();
        if let Some(poller) = poller {
            tasks.push(tokio::spawn(run_queue_poll(
                io.clone(),
                ctx.state.tenant.clone(),
                poller,
            )));
        }
        tasks.push(tokio::spawn(run_revalidation(io.clone(), ctx.clone())));
        tasks.push(tokio::spawn(run_feed(io.clone(), ctx, rx)));
        (
            SocketLayer {
                socket: layer,
                origins,
            },
            Push { io, tasks },
        )
    }

    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// Disconnects every socket (so a graceful HTTP shutdown is not held open by websockets)
    /// and stops the tasks.
    pub async fn close(self) {
        // The tasks first: none of them emits into a namespace that is being torn down.
        for t in self.tasks {
            t.abort();
        }
        self.io.close().await;
    }
}

/// Handshake auth, as upstream's dashboard (the page's origin was checked in front of the
/// socket layer, see [`SocketLayer`]): open without a dashboard password; with one, the
/// dashboard's session cookie or the API key (`x-api-key` header or `auth: {"api_key": …}`).
async fn authorize(
    s: SocketRef,
    TryData(auth): TryData<Value>,
    State(ctx): State<Ctx>,
) -> Result<(), Refused> {
    let parts = s.req_parts();
    let settings = ctx
        .state
        .settings()
        .await
        .map_err(|_| Refused("Settings unavailable"))?;
    let access = ctx.state.access(&settings);
    if Cred::of(&parts.headers, auth.ok().as_ref()).admits(access, &settings, ctx.state.now()) {
        Ok(())
    } else {
        info!(sid = %s.id, "socket handshake refused: not logged in");
        Err(Refused(
            "Unauthorized: log in to the dashboard or give the API key",
        ))
    }
}

async fn on_connect(s: SocketRef, TryData(auth): TryData<Value>, State(ctx): State<Ctx>) {
    // Handlers first, before any await: the client has its CONNECT answer already and may send
    // an event at once; one arriving before its handler exists would be dropped unanswered.
    s.on("watch_operation", on_watch_operation);
    s.on("checkbox-operation", on_checkbox_operation);
    let cred = Cred::of(&s.req_parts().headers, auth.ok().as_ref());
    ctx.creds().insert(s.id, cred);
    s.on_disconnect(forget_socket);
    s.join(ctx.state.tenant.clone());
    let ts = event_timestamp();
    let (marked, checking) = match ensure_tenant(&ctx, &ctx.state.tenant).await {
        Some(()) => {
            with_tenant(&ctx, &ctx.state.tenant, |t| (t.queued(), t.checking())).unwrap_or((0, 0))
        }
        None => (0, 0),
    };
    // Polled: the depth last read, or (nobody was connected) none yet, and then the poller
    // reads it at once and sends it to the room this socket has joined.
    let q = match &ctx.poller {
        None => Some(marked),
        Some(poller) => poller.connected(),
    };
    if let Some(q) = q {
        emit_to(
            &s,
            "queue_size",
            &json!({"q_length": q, "event_timestamp": ts}),
        );
    }
    emit_to(
        &s,
        "checking_now",
        &json!({"count": checking, "event_timestamp": ts}),
    );
    debug!(sid = %s.id, "socket connected");
}

async fn forget_socket(s: SocketRef, State(ctx): State<Ctx>) {
    ctx.creds().remove(&s.id);
}

fn emit_to(s: &SocketRef, event: &str, data: &Value) {
    if let Err(e) = s.emit(event, data) {
        debug!(sid = %s.id, event, error = %e, "emit failed");
    }
}

fn field<'a>(data: &'a Result<Value, impl Sized>, name: &str) -> Option<&'a str> {
    data.as_ref().ok()?.get(name)?.as_str()
}

async fn on_watch_operation(s: SocketRef, TryData(data): TryData<Value>, State(ctx): State<Ctx>) {
    let reply = match watch_operation(&ctx.state, field(&data, "op"), field(&data, "uuid")).await {
        Ok(done) => json!({"success": true, "operation": done.operation, "uuid": done.uuid}),
        Err(error) => json!({"success": false, "error": error}),
    };
    emit_to(&s, "operation_result", &reply);
}

async fn on_checkbox_operation(
    s: SocketRef,
    TryData(data): TryData<Value>,
    State(ctx): State<Ctx>,
) {
    let op = field(&data, "op").unwrap_or("").to_string();
    let uuids: Vec<String> = data
        .as_ref()
        .ok()
        .and_then(|d| d.get("uuids"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let extra = field(&data, "extra_data").map(str::to_string);
    let toast = match checkbox_operation(&ctx.state, &op, &uuids, extra.as_deref()).await {
        Ok(out) => json!({"message": out.message, "type": out.kind}),
        Err(e) => {
            warn!(op, error = %e, "checkbox operation failed");
            json!({"message": e.to_string(), "type": "error"})
        }
    };
    emit_to(&s, "toast", &toast);
}

fn with_tenant<T>(ctx: &Ctx, tenant: &str, f: impl FnOnce(&mut Tenant) -> T) -> Option<T> {
    let mut map = ctx.tenants.lock().unwrap_or_else(PoisonError::into_inner);
    map.get_mut(tenant).map(f)
}

/// Loads a tenant's flags with one store scan the first time it is needed.
async fn ensure_tenant(ctx: &Ctx, tenant: &str) -> Option<()> {
    let known = ctx
        .tenants
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(tenant);
    if known {
        return Some(());
    }
    let now = ctx.state.now();
    let mut loaded = Tenant::default();
    let walk = ctx
        .state
        .store
        .list_each(tenant, Kind::Watch, &mut |item| {
            if let Some(flags) = Flags::of(&item, now) {
                loaded.set(&item.key.id, flags);
            }
            Ok(())
        })
        .await;
    if let Err(e) = walk {
        warn!(tenant, error = %e, "cannot load watches for the live counters");
        return None;
    }
    ctx.tenants
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(tenant.to_string())
        .or_insert(loaded);
    Some(())
}

async fn run_feed(io: SocketIo, ctx: Ctx, mut rx: tokio::sync::broadcast::Receiver<ChangeEvent>) {
    loop {
        match rx.recv().await {
            Ok(ev) => on_change(&io, &ctx, ev).await,
            Err(RecvError::Lagged(n)) => {
                // Missed records: rebuild the counters from the store. Rows missed here are
                // corrected by the next event for them or by a client's REST reload; a missed
                // settings change is caught by judging every socket again now.
                warn!(
                    missed = n,
                    "push layer lagged behind the change feed; resyncing"
                );
                revalidate_from_store(&io, &ctx, "feed lagged").await;
                let tenants: Vec<String> = {
                    let mut map = ctx.tenants.lock().unwrap_or_else(PoisonError::into_inner);
                    map.drain().map(|(k, _)| k).collect()
                };
                for t in tenants {
                    if ensure_tenant(&ctx, &t).await.is_some() {
                        emit_counters(&io, &ctx, &t).await;
                    }
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// The tenant's room on the default namespace; `None` once the server is closing (the
/// namespace is gone, and `SocketIo::to` would panic): whatever wanted to emit then has no
/// listener left. Timers and the feed can outlive `close` by a moment.
fn tenant_room(io: &SocketIo, tenant: &str) -> Option<socketioxide::operators::BroadcastOperators> {
    io.of("/").map(|ns| ns.to(tenant.to_string()))
}

/// The sockets in the tenant's room (every socket of the tenant joins it).
fn listeners(io: &SocketIo, tenant: &str) -> usize {
    io.of("/")
        .map_or(0, |ns| ns.within(tenant.to_string()).sockets().len())
}

/// [`QueueSize::Polled`]: the poll loop, counting the sockets in the tenant's room (every
/// socket joins it) as the listeners.
async fn run_queue_poll(io: SocketIo, tenant: String, poller: Arc<Poller>) {
    let listeners = {
        let (io, tenant) = (io.clone(), tenant.clone());
        move || listeners(&io, &tenant)
    };
    let emit = move |depth: usize| {
        let room = tenant_room(&io, &tenant);
        async move {
            let Some(room) = room else { return };
            let data = json!({"q_length": depth, "event_timestamp": event_timestamp()});
            if let Err(e) = room.emit("queue_size", &data).await {
                debug!(error = %e, "emit queue_size failed");
            }
        }
    };
    poller.run(listeners, emit).await;
}

async fn emit_counters(io: &SocketIo, ctx: &Ctx, tenant: &str) {
    let Some((stats, checking)) = with_tenant(ctx, tenant, |t| (t.stats(), t.checking())) else {
        return;
    };
    let Some(room) = tenant_room(io, tenant) else {
        return;
    };
    let ts = event_timestamp();
    if let Err(e) = room
        .clone()
        .emit("general_stats_update", &stats.to_json())
        .await
    {
        debug!(error = %e, "emit general_stats_update failed");
    }
    if let Err(e) = room
        .emit(
            "checking_now",
            &json!({"count": checking, "event_timestamp": ts}),
        )
        .await
    {
        debug!(error = %e, "emit checking_now failed");
    }
}

/// Whether a settings record touched what sockets are admitted by (a record without its old
/// image counts as a change: judging again is cheap, missing one is not).
fn credentials_changed(ev: &ChangeEvent) -> bool {
    ev.old.is_none() || auth_fields(ev.old.as_ref()) != auth_fields(ev.new.as_ref())
}

/// The settings a record leaves behind: defaults when deleted, `None` when undecodable.
fn settings_after(ev: &ChangeEvent) -> Option<Settings> {
    match &ev.new {
        Some(item) => item.doc.decode::<Settings>().ok(),
        None => Some(Settings::default()),
    }
}

/// The settings fields a socket's admission depends on.
fn auth_fields(item: Option<&Item>) -> [Option<&Value>; 3] {
    [
        "/application/password",
        "/application/api_access_token",
        "/application/session_keys",
    ]
    .map(|p| item.and_then(|i| i.doc.value().ok()?.pointer(p)))
}

/// Disconnects the sockets whose handshake credentials `settings` no longer admit.
fn revalidate(io: &SocketIo, ctx: &Ctx, settings: &Settings, reason: &str) {
    let now = ctx.state.now();
    let refused: Vec<Sid> = ctx
        .creds()
        .iter()
        .filter(|(_, c)| !c.admits(ctx.state.access(settings), settings, now))
        .map(|(sid, _)| *sid)
        .collect();
    if refused.is_empty() {
        return;
    }
    let ns = io.of("/");
    for sid in &refused {
        ctx.creds().remove(sid);
        if let Some(s) = ns.as_ref().and_then(|ns| ns.get_socket(*sid))
            && let Err(e) = s.disconnect()
        {
            debug!(%sid, error = %e, "disconnect failed");
        }
    }
    info!(
        count = refused.len(),
        reason, "sockets disconnected: their credentials no longer hold"
    );
}

async fn revalidate_from_store(io: &SocketIo, ctx: &Ctx, reason: &str) {
    if ctx.creds().is_empty() {
        return;
    }
    match ctx.state.settings().await {
        Ok(settings) => revalidate(io, ctx, &settings, reason),
        Err(e) => warn!(error = %e, "cannot read settings to check open sockets"),
    }
}

/// Every [`REVALIDATE_EVERY`]: sessions expire without any write to tell.
async fn run_revalidation(io: SocketIo, ctx: Ctx) {
    let mut every = tokio::time::interval(REVALIDATE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        revalidate_from_store(&io, &ctx, "periodic check").await;
    }
}

/// A settings write of this push layer's tenant that touched what sockets are admitted by:
/// judge every socket again under the new settings.
async fn on_settings_change(io: &SocketIo, ctx: &Ctx, ev: &ChangeEvent) {
    if ev.key.tenant != ctx.state.tenant || !credentials_changed(ev) {
        return;
    }
    match settings_after(ev) {
        Some(settings) => revalidate(io, ctx, &settings, "credentials changed"),
        None => revalidate_from_store(io, ctx, "credentials changed").await,
    }
}

/// One committed write → the events upstream sends for it.
async fn on_change(io: &SocketIo, ctx: &Ctx, ev: ChangeEvent) {
    if ev.key.kind == Kind::Settings {
        on_settings_change(io, ctx, &ev).await;
        return;
    }
    if ev.key.kind != Kind::Watch {
        return;
    }
    let tenant = ev.key.tenant.as_str();
    let uuid = ev.key.id.as_str();
    let span = tracing::debug_span!("push", watch_id = %uuid);
    let _guard = span.enter();
    if ensure_tenant(ctx, tenant).await.is_none() {
        return;
    }
    let now = ctx.state.now();
    let Some(room) = tenant_room(io, tenant) else {
        return;
    };
    // With nobody connected only the counters' flags (and lease timers) are kept current: a
    // socket that connects later gets the rows over REST and the counters at its connect.
    let listening = listeners(io, tenant) > 0;
    let queued_before = if listening {
        with_tenant(ctx, tenant, |t| t.queued()).unwrap_or(0)
    } else {
        0
    };
    let seq = ctx.saw(&ev.key);
    match &ev.new {
        None => {
            ctx.latest().remove(&ev.key);
            with_tenant(ctx, tenant, |t| t.remove(uuid));
            let data = json!({"uuid": uuid, "event_timestamp": event_timestamp()});
            if listening && let Err(e) = room.clone().emit("watch_deleted", &data).await {
                debug!(error = %e, "emit watch_deleted failed");
            }
        }
        Some(item) => {
            // A schedule-only write (queue mark, lease) keeps the document's version: with no
            // row to send, the flags it can change come from the schedule, no decode needed.
            let same_doc = ev.old.as_ref().is_some_and(|o| o.version == item.version);
            let known = if !listening && same_doc {
                with_tenant(ctx, tenant, |t| t.get(uuid)).flatten()
            } else {
                None
            };
            let (flags, watch) = match known {
                Some(prev) => (prev.with_schedule(item, now), None),
                // No row to send: the flags' own fields are all that is decoded.
                None if !listening => match Flags::of(item, now) {
                    Some(flags) => (flags, None),
                    None => return,
                },
                None => {
                    let Some(watch) = decode_watch_doc(item) else {
                        return;
                    };
                    (Flags::of_watch(item, &watch, now), Some(watch))
                }
            };
            with_tenant(ctx, tenant, |t| t.set(uuid, flags));
            if listening
                && let Some(watch) = &watch
                && let Err(e) = room
                    .clone()
                    .emit(
                        "watch_update",
                        &json!({ "watch": watch_row(item, watch, now) }),
                    )
                    .await
            {
                debug!(error = %e, "emit watch_update failed");
            }
            // A notification was put on the queue: the check that queued it bumped the count
            // in its commit, so the stream record (old and new image) tells.
            let alerts = |i: &changewatch_store::Item| {
                i.doc
                    .value()
                    .ok()
                    .and_then(|d| d.get("notification_alert_count"))
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0)
            };
            if listening && ev.old.as_ref().is_some_and(|o| alerts(item) > alerts(o)) {
                let data = json!({"watch_uuid": uuid, "event_timestamp": event_timestamp()});
                if let Err(e) = room.clone().emit("notification_event", &data).await {
                    debug!(error = %e, "emit notification_event failed");
                }
            }
            let was_checking = ev
                .old
                .as_ref()
                .and_then(|o| o.schedule.as_ref())
                .is_some_and(|s| s.leased(now));
            // A checker that dies (a killed Lambda) writes nothing when its lease runs out, so
            // no record would ever clear the row's "checking": a timer does, unless a newer
            // record for the watch arrives first.
            if flags.checking
                && let Some(until) = item.schedule.as_ref().and_then(|s| s.lease_until)
            {
                // The timer holds the key, not the item: a burst of checks would otherwise
                // keep every watch's document in memory for a whole lease.
                let timer = tokio::spawn(expire_lease(
                    io.clone(),
                    ctx.clone(),
                    ev.key.clone(),
                    seq,
                    until,
                ));
                ctx.latest()
                    .insert(ev.key.clone(), (seq, timer.abort_handle()));
            }
            if listening && flags.checking && !was_checking {
                let data = json!({
                    "uuid": uuid,
                    "status": sanitize_status("Fetching..."),
                    "event_timestamp": event_timestamp(),
                });
                if let Err(e) = room.clone().emit("watch_small_status_comment", &data).await {
                    debug!(error = %e, "emit watch_small_status_comment failed");
                }
            }
        }
    }
    if !listening {
        return;
    }
    emit_counters(io, ctx, tenant).await;
    let queued_after = with_tenant(ctx, tenant, |t| t.queued()).unwrap_or(0);
    if queued_after != queued_before && ctx.poller.is_none() {
        let data = json!({"q_length": queued_after, "event_timestamp": event_timestamp()});
        if let Err(e) = room.emit("queue_size", &data).await {
            debug!(error = %e, "emit queue_size failed");
        }
    }
}

/// At the end of a lease that no feed record ended, sends the row again as it is now (no
/// longer checking) and the counters with it.
async fn expire_lease(io: SocketIo, ctx: Ctx, key: Key, seq: u64, until: i64) {
    let wait = (until - ctx.state.now()).max(0).unsigned_abs() + 1;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    {
        let mut latest = ctx.latest();
        if latest.get(&key).map(|(s, _)| *s) != Some(seq) {
            return;
        }
        latest.remove(&key);
    }
    // No record since the one that started the timer: the watch is as that record left it
    // (or newer, if the stream lags behind the store), read once now that it is needed.
    let item = match ctx.state.store.get(&key).await {
        Ok(Some(item)) => item,
        Ok(None) => return,
        Err(e) => {
            debug!(watch_id = %key.id, error = %e, "lease expiry: the watch could not be read");
            return;
        }
    };
    let key = &item.key;
    let now = ctx.state.now();
    let Some(watch) = decode_watch_doc(&item) else {
        return;
    };
    let flags = Flags::of_watch(&item, &watch, now);
    if flags.checking {
        return;
    }
    let tenant = key.tenant.as_str();
    with_tenant(&ctx, tenant, |t| t.set(&key.id, flags));
    debug!(watch_id = %key.id, "lease ran out without a write; row no longer checking");
    let status = watch_row(&item, &watch, now);
    let Some(room) = tenant_room(&io, tenant) else {
        return;
    };
    if let Err(e) = room.emit("watch_update", &json!({ "watch": status })).await {
        debug!(error = %e, "emit watch_update failed");
    }
    emit_counters(&io, &ctx, tenant).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use changewatch_core::model::TextOrFalse;
    use changewatch_store::Key;

    /// What hyper hands over: the URI and header values as slices of one read buffer. After
    /// the copy nothing points into that buffer, and the head reads the same.
    #[test]
    fn a_detached_head_shares_nothing_with_the_read_buffer() {
        use axum::body::{Body, Bytes};
        let buffer = Bytes::from(
            b"/socket.io/?EIO=4&transport=websocketsession=abc; theme=darkkey-123".to_vec(),
        );
        let inside = |p: *const u8| buffer.as_ptr_range().contains(&p);
        let uri = axum::http::Uri::from_maybe_shared(buffer.slice(0..37)).unwrap();
        let cookie = HeaderValue::from_maybe_shared(buffer.slice(37..60)).unwrap();
        let mut key = HeaderValue::from_maybe_shared(buffer.slice(60..67)).unwrap();
        key.set_sensitive(true);
        let mut req = Request::builder()
            .uri(uri.clone())
            .header("cookie", cookie.clone())
            .header("x-api-key", key.clone())
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::OriginalUri(uri.clone()));
        assert!(inside(req.headers()["cookie"].as_bytes().as_ptr()));
        assert!(inside(req.uri().path().as_ptr()));

        let req = detach_head(req);
        assert_eq!(req.uri(), &uri);
        assert_eq!(req.headers()["cookie"], cookie);
        assert_eq!(req.headers()["x-api-key"], key);
        assert!(req.headers()["x-api-key"].is_sensitive());
        let original = &req
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .unwrap()
            .0;
        assert_eq!(original, &uri);
        for value in req.headers().values() {
            assert!(!inside(value.as_bytes().as_ptr()));
        }
        assert!(!inside(req.uri().path().as_ptr()));
        assert!(!inside(original.path().as_ptr()));
    }

    /// A lease timer or the feed that emits after `close` finds no room instead of panicking
    /// in socketioxide (`SocketIo::to` on a removed namespace), which the API fuzz run caught
    /// at shutdown.
    #[tokio::test]
    async fn emitting_after_close_is_a_no_op() {
        let (_layer, io) = SocketIo::new_layer();
        io.ns("/", async |_: SocketRef| {});
        assert!(tenant_room(&io, "t").is_some());
        io.close().await;
        assert!(tenant_room(&io, "t").is_none());
    }

    /// A check's start arms a timer for its lease and the check's next record (its commit)
    /// stops it at once, so a burst of checks leaves no sleeping timers holding memory; a
    /// lease that runs out with no record after it is read back from the store, and the row
    /// no longer counts as checking.
    #[tokio::test]
    async fn lease_timers_stop_at_the_next_record_or_read_the_store_when_the_lease_ends() {
        use changewatch_store::sqlite::SqliteStore;
        use changewatch_store::{DEFAULT_TENANT, Expect, Schedule, WatchStore};

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
        let config = changewatch_api::ApiConfig::from_config(&changewatch_core::Config::default());
        let state = AppState::new(
            store.clone(),
            Arc::new(store.job_queue()),
            config,
            changewatch_sandbox::Sandbox::in_process(),
        );
        let ctx = Ctx {
            state,
            tenants: Arc::new(Mutex::new(HashMap::new())),
            poller: None,
            creds: Arc::new(Mutex::new(HashMap::new())),
            latest: Arc::new(Mutex::new(HashMap::new())),
            seq: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        let (_layer, io) = SocketIo::builder().with_state(ctx.clone()).build_layer();
        io.ns("/", async |_: SocketRef| {});
        let key = Key::watch(DEFAULT_TENANT, "w");
        let leased = |until: i64| Schedule {
            lease_owner: Some("checker".into()),
            lease_until: Some(until),
            ..Schedule::default()
        };
        let doc = json!({"url": "http://127.0.0.1/", "uuid": "w"});
        let now = ctx.state.now();
        store
            .put(&key, doc.clone(), Some(leased(now + 60)), Expect::Absent)
            .await
            .unwrap();
        let record = |item: Item| ChangeEvent {
            key: key.clone(),
            old: None,
            new: Some(item),
        };
        let checking = || with_tenant(&ctx, DEFAULT_TENANT, |t| t.checking());

        let started = store.get(&key).await.unwrap().unwrap();
        on_change(&io, &ctx, record(started)).await;
        assert_eq!(checking(), Some(1));
        let timer = ctx.latest().get(&key).map(|(_, t)| t.clone()).unwrap();
        store
            .put(&key, doc.clone(), Some(Schedule::default()), Expect::Any)
            .await
            .unwrap();
        let committed = store.get(&key).await.unwrap().unwrap();
        on_change(&io, &ctx, record(committed)).await;
        assert!(ctx.latest().is_empty(), "the commit ended the timer");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(timer.is_finished(), "and stopped its task");
        assert_eq!(checking(), Some(0));

        // A checker that dies writes nothing more: the lease runs out by itself.
        store
            .put(&key, doc, Some(leased(ctx.state.now() + 1)), Expect::Any)
            .await
            .unwrap();
        let dying = store.get(&key).await.unwrap().unwrap();
        on_change(&io, &ctx, record(dying)).await;
        assert_eq!(checking(), Some(1));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(ctx.latest().is_empty());
        assert_eq!(
            checking(),
            Some(0),
            "the row stopped checking when the lease ended"
        );
    }

    fn item(settings: &Settings) -> Item {
        Item {
            key: Key::settings("t"),
            version: 1,
            doc: serde_json::to_value(settings).unwrap().into(),
            schedule: None,
            history: Default::default(),
        }
    }

    fn record(old: Option<&Settings>, new: Option<&Settings>) -> ChangeEvent {
        ChangeEvent {
            key: Key::settings("t"),
            old: old.map(item),
            new: new.map(item),
        }
    }

    /// The decision the push layer takes from a feed record alone, as in AWS mode, where the
    /// write happened in another process and arrives as a stream record (old and new image).
    #[test]
    fn credential_changes_are_read_from_the_record() {
        let mut before = Settings::default();
        before.application.api_access_token = Some("k1".into());
        let mut other = before.clone();
        other.application.notification_urls = vec!["json://example.com".into()];
        assert!(!credentials_changed(&record(Some(&before), Some(&other))));
        let mut key = before.clone();
        key.application.api_access_token = Some("k2".into());
        let mut pw = before.clone();
        pw.application.password = TextOrFalse::Text(session::hash_password("x"));
        let mut keys = before.clone();
        keys.application.session_keys = Some(session::new_keys());
        for after in [&key, &pw, &keys] {
            assert!(credentials_changed(&record(Some(&before), Some(after))));
        }
        assert!(
            credentials_changed(&record(None, Some(&before))),
            "no old image"
        );
        assert_eq!(
            settings_after(&record(Some(&before), Some(&key)))
                .unwrap()
                .application
                .api_access_token
                .as_deref(),
            Some("k2")
        );
    }

    #[test]
    fn sockets_are_judged_by_the_settings_in_force() {
        let hash = session::hash_password("pw");
        let mut s = Settings::default();
        s.application.api_access_token = Some("key-1".into());
        let mut keys = session::new_keys();
        let cookie = session::issue(&keys, &hash, 1000, false).unwrap().value;
        s.application.session_keys = Some(keys.clone());
        let by_cookie = Cred {
            cookie: Some(cookie.clone()),
            keys: vec![],
        };
        let by_key = Cred {
            cookie: None,
            keys: vec!["key-1".into()],
        };
        let anonymous = Cred::default();

        assert!(
            anonymous.admits(Access::Open, &s, 1000),
            "no password, loopback or trusted: open"
        );
        assert!(
            !anonymous.admits(Access::KeyOnly, &s, 1000),
            "no password, network-facing: closed"
        );
        assert!(by_key.admits(Access::KeyOnly, &s, 1000));
        assert!(!anonymous.admits(Access::Password(&hash), &s, 1000));
        assert!(by_cookie.admits(Access::Password(&hash), &s, 1000));
        assert!(by_key.admits(Access::Password(&hash), &s, 1000));
        assert!(
            !by_cookie.admits(Access::Password(&hash), &s, 1001 + session::SESSION_SECS),
            "expired"
        );
        let new_hash = session::hash_password("pw2");
        assert!(
            !by_cookie.admits(Access::Password(&new_hash), &s, 1000),
            "new password"
        );
        let (id, exp) = session::parse(&cookie).unwrap();
        session::revoke(&mut keys, id, exp, 1000);
        s.application.session_keys = Some(keys);
        assert!(
            !by_cookie.admits(Access::Password(&hash), &s, 1000),
            "logged out"
        );
        s.application.api_access_token = Some("key-2".into());
        assert!(
            !by_key.admits(Access::Password(&hash), &s, 1000),
            "key regenerated"
        );
    }
}
