//! First-start settings: generated key, `API_ACCESS_TOKEN` override, timeout default.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use changewatch_api::bootstrap::ensure_settings;
use changewatch_engine::docs::load_settings;
use changewatch_store::sqlite::SqliteStore;

#[tokio::test]
async fn first_start_generates_a_key_and_later_starts_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let key = ensure_settings(&store, "t", None, Some(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.len(), 32, "hex of 16 random bytes, as upstream");
    assert_eq!(
        load_settings(&store, "t").await.unwrap().requests.timeout,
        7
    );
    // A later start keeps the key and does not reset a timeout the user may have changed.
    assert_eq!(
        ensure_settings(&store, "t", None, Some(9))
            .await
            .unwrap()
            .unwrap(),
        key
    );
    assert_eq!(
        load_settings(&store, "t").await.unwrap().requests.timeout,
        7
    );
    // API_ACCESS_TOKEN wins and is stored.
    assert_eq!(
        ensure_settings(&store, "t", Some("fixed"), None)
            .await
            .unwrap()
            .as_deref(),
        Some("fixed")
    );
    let s = load_settings(&store, "t").await.unwrap();
    assert_eq!(s.application.api_access_token.as_deref(), Some("fixed"));
}
