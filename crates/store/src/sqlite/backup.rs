//! Embedded mode's consistent backup: a copy of the database as of one moment, exported
//! through the port like any store.
//!
//! The copy is `VACUUM INTO` on a connection of its own: one read transaction, so in WAL mode
//! it sees the file as of its start while `serve` (or another process) goes on writing, and
//! the store's own connection thread is never held up by it. SQLite's online backup API would
//! do the same step by step, but it starts over whenever another connection writes the source,
//! so under a busy checker it might never end.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};

use super::SqliteStore;
use crate::backup::{BackupError, Counts, Exporter, Manifest, export};
use crate::types::StoreError;

/// Copies the database at `db` to `dest` (which must not exist) as of one moment.
pub fn copy_consistent(db: &Path, dest: &Path) -> Result<(), StoreError> {
    if !db.exists() {
        return Err(StoreError::backend(format!(
            "there is no datastore at {}",
            db.display()
        )));
    }
    // Read-write without create: a read-only connection cannot open a WAL file whose shared
    // memory index it may need to rebuild. Nothing is written to the source.
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::backend_source)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(StoreError::backend_source)?;
    let dest = dest
        .to_str()
        .ok_or_else(|| StoreError::backend("the backup's temporary path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [dest])
        .map_err(StoreError::backend_source)?;
    Ok(())
}

/// The temporary copy, removed (with its WAL files) when dropped.
struct TempCopy(PathBuf);

impl Drop for TempCopy {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Backs up the SQLite datastore at `db` consistently: copied as of one moment next to it
/// (same file system, so room for the datastore means room for the copy), the copy exported,
/// then removed.
#[derive(Clone, Debug)]
pub struct SqliteExporter {
    db: PathBuf,
}

impl SqliteExporter {
    /// `db` is the database file (`<data dir>/changewatch.db`).
    pub fn new(db: &Path) -> Self {
        SqliteExporter {
            db: db.to_path_buf(),
        }
    }

    /// For a data directory.
    pub fn for_dir(dir: &Path) -> Self {
        Self::new(&dir.join("changewatch.db"))
    }
}

#[async_trait]
impl Exporter for SqliteExporter {
    async fn export(
        &self,
        tenant: &str,
        created: i64,
        out: &mut (dyn Write + Send),
    ) -> Result<Counts, BackupError> {
        let name = format!(
            ".backup-{}-{}.db",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let copy = TempCopy(self.db.with_file_name(name));
        let (db, dest) = (self.db.clone(), copy.0.clone());
        tokio::task::spawn_blocking(move || copy_consistent(&db, &dest))
            .await
            .map_err(|e| StoreError::backend(format!("the backup copy stopped: {e}")))??;
        let store = SqliteStore::open(&copy.0)?;
        let manifest = Manifest::new(tenant, "embedded", true, created);
        let counts = export(&store, tenant, manifest, out).await;
        drop(store);
        counts
    }
}
