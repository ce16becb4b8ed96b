//! First start: settings with a generated API key, shown in the log so the user can use it.

use changewatch_engine::checker::update_settings;
use changewatch_store::{StoreError, WatchStore};
use tracing::info;

/// Makes sure the tenant has settings; `API_ACCESS_TOKEN` (`token_override`) replaces the stored
/// key. Returns the key in force.
pub async fn ensure_settings(
    store: &dyn WatchStore,
    tenant: &str,
    token_override: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let mut first_start = false;
    let key = update_settings(store, tenant, |settings, existed| {
        first_start = !existed;
        let wanted = token_override
            .map(str::to_string)
            .or_else(|| settings.application.api_access_token.clone());
        let write = !existed || wanted != settings.application.api_access_token;
        settings.application.api_access_token = wanted.clone();
        Ok::<_, StoreError>((wanted, write))
    })
    .await?;
    if first_start {
        info!("first start: generated settings and an API key");
    }
    Ok(key)
}
