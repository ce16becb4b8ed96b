//! First start: settings with a generated API key, shown in the log so the user can use it.

use changewatch_core::model::Settings;
use changewatch_store::{Expect, Key, StoreError, WatchStore};
use tracing::info;

/// Makes sure the tenant has settings; `API_ACCESS_TOKEN` (`token_override`) replaces the stored
/// key. Returns the key in force.
pub async fn ensure_settings(
    store: &dyn WatchStore,
    tenant: &str,
    token_override: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let key = Key::settings(tenant);
    loop {
        let current = store.get(&key).await?;
        let (mut settings, expect) = match &current {
            Some(item) => (
                serde_json::from_value::<Settings>(item.doc.clone())
                    .map_err(|e| StoreError::Corrupt(format!("settings: {e}")))?,
                Expect::Version(item.version),
            ),
            None => (Settings::new_with_tokens(), Expect::Absent),
        };
        let wanted = token_override
            .map(str::to_string)
            .or_else(|| settings.application.api_access_token.clone());
        if current.is_some() && wanted == settings.application.api_access_token {
            return Ok(wanted);
        }
        settings.application.api_access_token = wanted.clone();
        let doc =
            serde_json::to_value(&settings).map_err(|e| StoreError::Backend(e.to_string()))?;
        match store.put(&key, doc, None, expect).await {
            Ok(_) => {
                if current.is_none() {
                    info!(
                        "first start: generated settings and an API key (see GET /api/v1 with x-api-key)"
                    );
                }
                return Ok(wanted);
            }
            // Another process wrote first (AWS mode): read again.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
}
