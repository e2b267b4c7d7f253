//! Where a name server keeps its registrations: in memory, in an embedded
//! key-value file (`dbm`), or in SQLite (`sql`).
//!
//! The name server holds every entry in memory and writes each change
//! through to the store before it answers, so lookups never touch the disk
//! and a registration that was acknowledged survives a crash. Both file
//! stores commit each change as one transaction: a crash mid-write leaves
//! the previous state, never a torn one.

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::schema::{NameServerConfig, Storage};
use crate::data_dir::DataDir;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// One registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The URI, as registered (`PYRO:...`, or `PYRONAME:`/`PYROMETA:`).
    pub uri: String,
    /// Metadata tags.
    pub metadata: BTreeSet<String>,
}

/// A storage failure (the disk, a corrupt file, ...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(String);

impl StoreError {
    fn from(context: &str, err: impl std::fmt::Display) -> StoreError {
        StoreError(format!("{context}: {err}"))
    }
}

/// A place to keep registrations.
pub trait Store: Send {
    /// Every stored registration.
    fn load(&mut self) -> Result<Vec<(String, Entry)>, StoreError>;
    /// Adds or replaces a registration.
    fn put(&mut self, name: &str, entry: &Entry) -> Result<(), StoreError>;
    /// Removes registrations (names that are not there are ignored).
    fn delete(&mut self, names: &[String]) -> Result<(), StoreError>;
}

/// Opens the store name server `name`'s configuration asks for: nothing
/// for `memory`; for `dbm` and `sql`, its `storage_file`, else a file in
/// the data directory's `nameservers/` (the folder is created).
pub fn open(
    name: &str,
    config: &NameServerConfig,
    data_dir: Option<&DataDir>,
) -> Result<Box<dyn Store>, StoreError> {
    if config.storage == Storage::Memory {
        return Ok(Box::new(MemoryStore));
    }
    let path = match (&config.storage_file, data_dir) {
        (Some(file), _) => file.clone(),
        (None, Some(data_dir)) => config
            .storage_path(name, data_dir)
            .expect("file storage has a path"),
        (None, None) => {
            return Err(StoreError(format!(
                "name server {name}: {} storage needs storage_file, --data-dir or PYROLAB_HOME",
                config.storage.as_str()
            )));
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| StoreError::from(&format!("cannot create {}", parent.display()), err))?;
    }
    let store: Box<dyn Store> = match config.storage {
        Storage::Sql => Box::new(SqlStore::open(&path)?),
        Storage::Dbm => Box::new(DbmStore::open(&path)?),
        Storage::Memory => unreachable!("handled above"),
    };
    tracing::info!(
        "name server {name}: registrations kept in {}",
        path.display()
    );
    Ok(store)
}

/// Keeps nothing: registrations are lost when the name server stops.
pub struct MemoryStore;

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Vec<(String, Entry)>, StoreError> {
        Ok(Vec::new())
    }

    fn put(&mut self, _: &str, _: &Entry) -> Result<(), StoreError> {
        Ok(())
    }

    fn delete(&mut self, _: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// SQLite, with Pyro5's own schema (`pyro_names`, `pyro_metadata`), so a
/// database file works with either name server.
pub struct SqlStore {
    db: rusqlite::Connection,
}

impl SqlStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> Result<SqlStore, StoreError> {
        let context = format!("sqlite database {}", path.display());
        let db = rusqlite::Connection::open(path).map_err(|e| StoreError::from(&context, e))?;
        db.execute_batch(
            "PRAGMA foreign_keys=ON;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS pyro_names (
                 id integer PRIMARY KEY,
                 name nvarchar NOT NULL UNIQUE,
                 uri nvarchar NOT NULL);
             CREATE TABLE IF NOT EXISTS pyro_metadata (
                 object integer NOT NULL,
                 metadata nvarchar NOT NULL,
                 FOREIGN KEY(object) REFERENCES pyro_names(id));",
        )
        .map_err(|e| StoreError::from(&context, e))?;
        Ok(SqlStore { db })
    }

    fn delete_in(tx: &rusqlite::Transaction<'_>, name: &str) -> rusqlite::Result<()> {
        tx.execute(
            "DELETE FROM pyro_metadata WHERE object IN (SELECT id FROM pyro_names WHERE name=?1)",
            [name],
        )?;
        tx.execute("DELETE FROM pyro_names WHERE name=?1", [name])?;
        Ok(())
    }
}

impl Store for SqlStore {
    fn load(&mut self) -> Result<Vec<(String, Entry)>, StoreError> {
        let read = || -> rusqlite::Result<Vec<(String, Entry)>> {
            let mut names = self.db.prepare("SELECT id, name, uri FROM pyro_names")?;
            let mut tags = self
                .db
                .prepare("SELECT metadata FROM pyro_metadata WHERE object=?1")?;
            let rows: Vec<(i64, String, String)> = names
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(id, name, uri)| {
                    let metadata = tags
                        .query_map([id], |row| row.get(0))?
                        .collect::<Result<_, _>>()?;
                    Ok((name, Entry { uri, metadata }))
                })
                .collect()
        };
        read().map_err(|e| StoreError::from("reading the sqlite database", e))
    }

    fn put(&mut self, name: &str, entry: &Entry) -> Result<(), StoreError> {
        let write = |db: &mut rusqlite::Connection| -> rusqlite::Result<()> {
            let tx = db.transaction()?;
            SqlStore::delete_in(&tx, name)?;
            tx.execute(
                "INSERT INTO pyro_names(name, uri) VALUES(?1, ?2)",
                [name, &entry.uri],
            )?;
            let id = tx.last_insert_rowid();
            for tag in &entry.metadata {
                tx.execute(
                    "INSERT INTO pyro_metadata(object, metadata) VALUES(?1, ?2)",
                    rusqlite::params![id, tag],
                )?;
            }
            tx.commit()
        };
        write(&mut self.db).map_err(|e| StoreError::from("writing the sqlite database", e))
    }

    fn delete(&mut self, names: &[String]) -> Result<(), StoreError> {
        let write = |db: &mut rusqlite::Connection| -> rusqlite::Result<()> {
            let tx = db.transaction()?;
            for name in names {
                SqlStore::delete_in(&tx, name)?;
            }
            tx.commit()
        };
        write(&mut self.db).map_err(|e| StoreError::from("writing the sqlite database", e))
    }
}

/// Name to `{"uri": ..., "metadata": [...]}` as JSON.
const NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("pyro_names");

/// An embedded key-value file (redb: copy-on-write B-trees, every commit
/// durable and atomic). It plays the part of PyroLab's `dbm` storage, but
/// keeps metadata too.
pub struct DbmStore {
    db: redb::Database,
}

impl DbmStore {
    /// Opens (or creates) the file.
    pub fn open(path: &Path) -> Result<DbmStore, StoreError> {
        let context = format!("key-value file {}", path.display());
        let db = redb::Database::create(path).map_err(|e| StoreError::from(&context, e))?;
        // Create the table, so reading an empty store finds it.
        let tx = db
            .begin_write()
            .map_err(|e| StoreError::from(&context, e))?;
        tx.open_table(NAMES)
            .map_err(|e| StoreError::from(&context, e))?;
        tx.commit().map_err(|e| StoreError::from(&context, e))?;
        Ok(DbmStore { db })
    }

    fn write(
        &self,
        change: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let fail = |e: &dyn std::fmt::Display| StoreError::from("writing the key-value file", e);
        let tx = self.db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut table = tx.open_table(NAMES).map_err(|e| fail(&e))?;
            change(&mut table).map_err(|e| fail(&e))?;
        }
        tx.commit().map_err(|e| fail(&e))
    }
}

impl Store for DbmStore {
    fn load(&mut self) -> Result<Vec<(String, Entry)>, StoreError> {
        let fail = |e: &dyn std::fmt::Display| StoreError::from("reading the key-value file", e);
        let tx = self.db.begin_read().map_err(|e| fail(&e))?;
        let table = tx.open_table(NAMES).map_err(|e| fail(&e))?;
        let mut entries = Vec::new();
        for item in table.iter().map_err(|e| fail(&e))? {
            let (name, record) = item.map_err(|e| fail(&e))?;
            let entry = decode_record(record.value())
                .map_err(|e| fail(&format!("entry {:?}: {e}", name.value())))?;
            entries.push((name.value().to_owned(), entry));
        }
        Ok(entries)
    }

    fn put(&mut self, name: &str, entry: &Entry) -> Result<(), StoreError> {
        let record = encode_record(entry);
        self.write(|table| table.insert(name, record.as_slice()).map(drop))
    }

    fn delete(&mut self, names: &[String]) -> Result<(), StoreError> {
        self.write(|table| {
            for name in names {
                table.remove(name.as_str())?;
            }
            Ok(())
        })
    }
}

fn encode_record(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "uri": entry.uri,
        "metadata": entry.metadata,
    }))
    .expect("strings always encode")
}

fn decode_record(bytes: &[u8]) -> Result<Entry, String> {
    let record: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let uri = record["uri"].as_str().ok_or("no uri")?.to_owned();
    let metadata = record["metadata"]
        .as_array()
        .ok_or("no metadata")?
        .iter()
        .map(|tag| {
            tag.as_str()
                .map(str::to_owned)
                .ok_or("a tag is not a string")
        })
        .collect::<Result<_, _>>()?;
    Ok(Entry { uri, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uri: &str, tags: &[&str]) -> Entry {
        Entry {
            uri: uri.to_owned(),
            metadata: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn round_trip(open: impl Fn() -> Box<dyn Store>) {
        let mut store = open();
        store.put("a", &entry("PYRO:a@h:1", &["x", "y"])).unwrap();
        store.put("b", &entry("PYRO:b@h:1", &[])).unwrap();
        store.put("a", &entry("PYRO:a@h:2", &["z"])).unwrap();
        store.put("c", &entry("PYRO:c@h:1", &[])).unwrap();
        store
            .delete(&["c".to_owned(), "missing".to_owned()])
            .unwrap();
        drop(store);
        let mut loaded = open().load().unwrap();
        loaded.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            loaded,
            vec![
                ("a".to_owned(), entry("PYRO:a@h:2", &["z"])),
                ("b".to_owned(), entry("PYRO:b@h:1", &[])),
            ]
        );
    }

    #[test]
    fn sql_keeps_names_uris_and_metadata_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.sqlite");
        round_trip(|| Box::new(SqlStore::open(&path).unwrap()));
    }

    #[test]
    fn dbm_keeps_names_uris_and_metadata_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.dbm");
        round_trip(|| Box::new(DbmStore::open(&path).unwrap()));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "not a database, just some text that is long enough").unwrap();
        assert!(DbmStore::open(&path).is_err());
        assert!(SqlStore::open(&path).is_err());
    }
}
