//! What a restored document must be. The store restores documents as they are; a backup is a
//! file from outside the process, so each settings, tag and watch document must read as the
//! model this build uses before any of it is written, or the restore is refused naming the
//! line and the field (`changewatch restore` and `POST /api/v1/backup` both judge with it).

use changewatch_core::model::{Settings, Tag, Watch};
use changewatch_store::Kind;
use serde_json::Value;

/// `Err` names what does not read.
pub fn check_doc(kind: Kind, doc: &Value) -> Result<(), String> {
    if !doc.is_object() {
        return Err("not a JSON object".into());
    }
    let read = match kind {
        Kind::Watch => Watch::deserialize(doc).map(drop),
        Kind::Tag => Tag::deserialize(doc).map(drop),
        Kind::Settings => Settings::deserialize(doc).map(drop),
        Kind::Stats | Kind::NotificationLog => Ok(()),
    };
    read.map_err(|e| e.to_string())
}

use serde::Deserialize as _;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_that_do_not_read_are_named() {
        assert!(check_doc(Kind::Watch, &json!({"url": "https://example.com/"})).is_ok());
        assert!(check_doc(Kind::Watch, &json!([1])).is_err());
        let e = check_doc(Kind::Watch, &json!({"url": "https://x/", "paused": "yes"})).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        assert!(
            check_doc(
                Kind::Settings,
                &json!({"application": {"fetch_backend": 5}})
            )
            .is_err()
        );
        assert!(check_doc(Kind::Tag, &json!({"title": "news"})).is_ok());
    }
}
