//! First start: settings with a generated API key, shown in the log so the user can use it, and
//! an RSS token (made at any start that finds none, as upstream).
//!
//! The key is logged once, when it is generated: logs are copied to places (journald,
//! CloudWatch, support tickets) that must not hold a working credential on every restart. A key
//! fixed by `API_ACCESS_TOKEN` is the operator's own and is never logged.

use changewatch_core::model::new_token_hex;
use changewatch_engine::docs::update_settings;
use changewatch_store::{StoreError, WatchStore};
use tracing::info;

/// Makes sure the tenant has settings; `API_ACCESS_TOKEN` (`token_override`) replaces the stored
/// key. `DEFAULT_SETTINGS_REQUESTS_TIMEOUT` (`default_timeout_secs`) is, as upstream, the
/// default of a new installation's request timeout, which the user may change later. Returns the
/// key in force.
pub async fn ensure_settings(
    store: &dyn WatchStore,
    tenant: &str,
    token_override: Option<&str>,
    default_timeout_secs: Option<u64>,
) -> Result<Option<String>, StoreError> {
    let mut first_start = false;
    let key = update_settings(store, tenant, |settings, existed| {
        first_start = !existed;
        let wanted = token_override
            .map(str::to_string)
            .or_else(|| settings.application.api_access_token.clone());
        let mut write = !existed || wanted != settings.application.api_access_token;
        // Upstream makes sure of an RSS token at every start (a backup or an older store may
        // have none): the feeds refuse everyone without one.
        if settings
            .application
            .rss_access_token
            .as_deref()
            .is_none_or(str::is_empty)
        {
            settings.application.rss_access_token = Some(new_token_hex());
            write = true;
        }
        if !existed && let Some(t) = default_timeout_secs {
            settings.requests.timeout = t.max(1) as i64;
        }
        settings.application.api_access_token = wanted.clone();
        Ok::<_, StoreError>((wanted, write))
    })
    .await?;
    match (&key, first_start && token_override.is_none()) {
        (Some(k), true) => info!(
            "first start: generated settings and an API key, shown only this once; API key (x-api-key header): {k}"
        ),
        _ if first_start => info!("first start: generated settings"),
        _ => {}
    }
    Ok(key)
}
