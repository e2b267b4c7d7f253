//! Where a name server keeps its registrations: in memory, in an embedded
//! key-value file (`dbm`), in SQLite (`sql`), or in a PostgreSQL database
//! several name servers share (`postgresql`, in `postgresql.rs`).
//!
//! The name server holds every entry in memory and writes each change
//! through to the store before it answers, so lookups never touch the disk
//! and a registration that was acknowledged survives a crash. Both file
//! stores commit each change as one transaction: a crash mid-write leaves
//! the previous state, never a torn one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
    pub(super) fn new(message: String) -> StoreError {
        StoreError(message)
    }

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
    /// For a store other name servers write too: what changed since the
    /// last call (or since [`Store::load`]). `None` for a store this name
    /// server alone writes, whose copy in memory is always current.
    fn changes(&mut self) -> Result<Option<Changes>, StoreError> {
        Ok(None)
    }
    /// Whether other name servers share this store.
    fn shared(&self) -> bool {
        false
    }
    /// Whether this name server is the one to run autoclean now: always
    /// for a store of its own; for a shared one, the one name server of the
    /// lab holding its lease.
    fn leads_autoclean(&mut self) -> bool {
        true
    }
}

/// What changed in a shared store.
pub enum Changes {
    /// Names registered (with their entry) or removed (`None`), oldest
    /// first.
    Since(Vec<(String, Option<Entry>)>),
    /// The whole registry, read again (after a lost connection).
    Whole(Vec<(String, Entry)>),
}

pub use super::postgresql::{postgres_config, redacted as redacted_url};

/// Opens the store name server `name`'s configuration asks for: nothing
/// for `memory`; for `dbm` and `sql`, its `storage_file`, else a file in
/// the data directory's `nameservers/` (the folder is created).
pub fn open(
    name: &str,
    config: &NameServerConfig,
    data_dir: Option<&DataDir>,
) -> Result<Box<dyn Store>, StoreError> {
    match config.storage {
        Storage::Memory => return Ok(Box::new(MemoryStore)),
        Storage::Postgresql => {
            let url = config.storage_url.as_deref().ok_or_else(|| {
                StoreError(format!(
                    "name server {name}: postgresql storage needs storage_url"
                ))
            })?;
            let store = super::postgresql::PostgresStore::open(url)?;
            tracing::info!(
                "name server {name}: registrations kept in {} (shared)",
                store.shown()
            );
            return Ok(Box::new(store));
        }
        Storage::Dbm | Storage::Sql => {}
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
        crate::data_dir::create_private_dir(parent)
            .map_err(|err| StoreError::from(&format!("cannot create {}", parent.display()), err))?;
    }
    let store: Box<dyn Store> = match config.storage {
        Storage::Sql => Box::new(SqlStore::open(&path)?),
        Storage::Dbm => Box::new(DbmStore::open(&path)?),
        Storage::Memory | Storage::Postgresql => unreachable!("handled above"),
    };
    // The registrations are the lab's, not every local user's (SQLite
    // gives its journal files the database's permissions).
    crate::data_dir::make_private(&path)
        .map_err(|err| StoreError::from(&format!("cannot restrict {}", path.display()), err))?;
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
///
/// On top of Pyro5's schema it keeps one index, on `pyro_metadata(object)`:
/// without it, reading a name's tags, deleting them, and (with
/// `foreign_keys=ON`) deleting a name each scan every tag in the file.
/// Pyro5 5.17 neither creates nor needs it; SQLite keeps it up to date for
/// Pyro5's writes too, so the file stays both name servers'.
pub struct SqlStore {
    db: rusqlite::Connection,
}

/// Pyro5 5.17's tables (`SqlStorage._create_schema`, column for column) and
/// our index. Each statement is a no-op on a file that already has it, so
/// opening a file Pyro5 made adds the index and changes nothing else.
///
/// The journal stays SQLite's default rollback journal, the mode Pyro5
/// uses: WAL would commit with one fsync where it needs several, but the
/// mode is stored in the file, so Pyro5 would then run in it too, and a
/// WAL database needs its `-wal` and `-shm` companions beside it (a copy
/// of the `.sqlite` alone can miss acknowledged registrations) and does
/// not work on network file systems. `synchronous=FULL` makes every commit
/// durable before the name server answers.
const SQL_SCHEMA: &str = "
    PRAGMA foreign_keys=ON;
    PRAGMA synchronous=FULL;
    CREATE TABLE IF NOT EXISTS pyro_names (
        id integer PRIMARY KEY,
        name nvarchar NOT NULL UNIQUE,
        uri nvarchar NOT NULL);
    CREATE TABLE IF NOT EXISTS pyro_metadata (
        object integer NOT NULL,
        metadata nvarchar NOT NULL,
        FOREIGN KEY(object) REFERENCES pyro_names(id));
    CREATE INDEX IF NOT EXISTS pyro_metadata_object ON pyro_metadata(object);";

/// Every name with its tags, one row per tag (one row with a NULL tag for a
/// name without tags); a name's rows come together, in row-id order.
const SQL_LOAD: &str = "
    SELECT n.id, n.name, n.uri, m.metadata
    FROM pyro_names AS n LEFT JOIN pyro_metadata AS m ON m.object = n.id
    ORDER BY n.id";

impl SqlStore {
    /// Opens (or creates) the database file, adding the index if it lacks
    /// it.
    pub fn open(path: &Path) -> Result<SqlStore, StoreError> {
        let context = format!("sqlite database {}", path.display());
        let db = rusqlite::Connection::open(path).map_err(|e| StoreError::from(&context, e))?;
        db.execute_batch(SQL_SCHEMA)
            .map_err(|e| StoreError::from(&context, e))?;
        Ok(SqlStore { db })
    }

    /// `name`'s row id and URI, if it is stored.
    fn find(db: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<(i64, String)>> {
        use rusqlite::OptionalExtension as _;
        db.prepare_cached("SELECT id, uri FROM pyro_names WHERE name=?1")?
            .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
    }

    fn stored_tags(db: &rusqlite::Connection, id: i64) -> rusqlite::Result<BTreeSet<String>> {
        db.prepare_cached("SELECT metadata FROM pyro_metadata WHERE object=?1")?
            .query_map([id], |row| row.get(0))?
            .collect()
    }

    fn insert_tags<'a>(
        db: &rusqlite::Connection,
        id: i64,
        tags: impl IntoIterator<Item = &'a String>,
    ) -> rusqlite::Result<()> {
        let mut insert =
            db.prepare_cached("INSERT INTO pyro_metadata(object, metadata) VALUES(?1, ?2)")?;
        for tag in tags {
            insert.execute(rusqlite::params![id, tag])?;
        }
        Ok(())
    }

    /// Writes only what differs from what is stored: a name registered
    /// again with the same URI and tags (a daemon restarting) writes
    /// nothing, and a changed entry keeps its row id.
    fn update(
        db: &rusqlite::Connection,
        id: i64,
        stored_uri: &str,
        entry: &Entry,
    ) -> rusqlite::Result<()> {
        if stored_uri != entry.uri {
            db.prepare_cached("UPDATE pyro_names SET uri=?2 WHERE id=?1")?
                .execute(rusqlite::params![id, entry.uri])?;
        }
        let stored = SqlStore::stored_tags(db, id)?;
        let mut delete =
            db.prepare_cached("DELETE FROM pyro_metadata WHERE object=?1 AND metadata=?2")?;
        for removed in stored.difference(&entry.metadata) {
            delete.execute(rusqlite::params![id, removed])?;
        }
        SqlStore::insert_tags(db, id, entry.metadata.difference(&stored))
    }

    fn insert(db: &rusqlite::Connection, name: &str, entry: &Entry) -> rusqlite::Result<()> {
        db.prepare_cached("INSERT INTO pyro_names(name, uri) VALUES(?1, ?2)")?
            .execute([name, &entry.uri])?;
        SqlStore::insert_tags(db, db.last_insert_rowid(), &entry.metadata)
    }

    /// Deletes `name`'s tags, then the name (the foreign key forbids the
    /// other order); both find their rows through an index.
    fn remove(db: &rusqlite::Connection, name: &str) -> rusqlite::Result<()> {
        let Some((id, _)) = SqlStore::find(db, name)? else {
            return Ok(());
        };
        db.prepare_cached("DELETE FROM pyro_metadata WHERE object=?1")?
            .execute([id])?;
        db.prepare_cached("DELETE FROM pyro_names WHERE id=?1")?
            .execute([id])?;
        Ok(())
    }

    /// Runs `change` as one transaction.
    fn write(
        &mut self,
        change: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let write = |db: &mut rusqlite::Connection| {
            let tx = db.transaction()?;
            change(&tx)?;
            tx.commit()
        };
        write(&mut self.db).map_err(|e| StoreError::from("writing the sqlite database", e))
    }
}

impl Store for SqlStore {
    /// One pass over one query (the tags found through the index), so
    /// start-up time grows with the file, not with its square.
    fn load(&mut self) -> Result<Vec<(String, Entry)>, StoreError> {
        let read = || -> rusqlite::Result<Vec<(String, Entry)>> {
            let mut query = self.db.prepare(SQL_LOAD)?;
            let mut rows = query.query([])?;
            let mut entries: Vec<(String, Entry)> = Vec::new();
            let mut last_id = None;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if last_id != Some(id) {
                    last_id = Some(id);
                    let entry = Entry {
                        uri: row.get(2)?,
                        metadata: BTreeSet::new(),
                    };
                    entries.push((row.get(1)?, entry));
                }
                if let Some(tag) = row.get::<_, Option<String>>(3)? {
                    let (_, entry) = entries.last_mut().expect("pushed above");
                    entry.metadata.insert(tag);
                }
            }
            Ok(entries)
        };
        read().map_err(|e| StoreError::from("reading the sqlite database", e))
    }

    fn put(&mut self, name: &str, entry: &Entry) -> Result<(), StoreError> {
        self.write(|db| match SqlStore::find(db, name)? {
            Some((id, uri)) => SqlStore::update(db, id, &uri, entry),
            None => SqlStore::insert(db, name, entry),
        })
    }

    fn delete(&mut self, names: &[String]) -> Result<(), StoreError> {
        self.write(|db| names.iter().try_for_each(|name| SqlStore::remove(db, name)))
    }
}

/// Name to `{"uri": ..., "metadata": [...]}` as JSON.
const NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("pyro_names");

/// An embedded key-value file (redb: copy-on-write B-trees, every commit
/// durable and atomic). It plays the part of PyroLab's `dbm` storage, but
/// keeps metadata too.
///
/// After an I/O error (a full disk, say) redb refuses every later write
/// ("Previous I/O error occurred. Please close and re-open the database")
/// even once the cause is gone: after a failed write the file is closed,
/// and opened again for the next try (one more at once), so the name
/// server recovers as soon as the disk does, and a write that still fails
/// reports its own cause.
pub struct DbmStore {
    /// `None` after a failed write, until the next opens it again.
    db: Option<redb::Database>,
    path: PathBuf,
}

impl DbmStore {
    /// Opens (or creates) the file.
    pub fn open(path: &Path) -> Result<DbmStore, StoreError> {
        Ok(DbmStore {
            db: Some(Self::open_database(path)?),
            path: path.to_owned(),
        })
    }

    fn open_database(path: &Path) -> Result<redb::Database, StoreError> {
        let context = format!("key-value file {}", path.display());
        let db = redb::Database::create(path).map_err(|e| StoreError::from(&context, e))?;
        // Create the table, so reading an empty store finds it.
        let tx = db
            .begin_write()
            .map_err(|e| StoreError::from(&context, e))?;
        tx.open_table(NAMES)
            .map_err(|e| StoreError::from(&context, e))?;
        tx.commit().map_err(|e| StoreError::from(&context, e))?;
        Ok(db)
    }

    /// The open file, opening it again if a failed write closed it.
    fn database(&mut self) -> Result<&redb::Database, StoreError> {
        if self.db.is_none() {
            self.db = Some(Self::open_database(&self.path)?);
            tracing::info!("key-value file {} opened again", self.path.display());
        }
        Ok(self.db.as_ref().expect("just opened"))
    }

    fn write(
        &mut self,
        change: impl Fn(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let first = match self.attempt(&change) {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        tracing::warn!("{first}; opening {} again", self.path.display());
        self.attempt(&change).map_err(|again| {
            if again.0 == first.0 {
                first
            } else {
                StoreError(format!("{first}; then, opened again: {again}"))
            }
        })
    }

    /// One try at a write; after a failure the file is closed (it is
    /// locked while open), for the next try to open it again.
    fn attempt(
        &mut self,
        change: &impl Fn(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let result = self.database().and_then(|db| Self::write_to(db, change));
        if result.is_err() {
            self.db = None;
        }
        result
    }

    fn write_to(
        db: &redb::Database,
        change: &impl Fn(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let fail = |e: &dyn std::fmt::Display| StoreError::from("writing the key-value file", e);
        let tx = db.begin_write().map_err(|e| fail(&e))?;
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
        let tx = self.database()?.begin_read().map_err(|e| fail(&e))?;
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

    /// A file as Pyro5 5.17's `SqlStorage` creates it (no index), holding
    /// `names` as Pyro5 writes them: one `pyro_names` row each, one
    /// `pyro_metadata` row per tag.
    fn pyro5_file(path: &Path, names: &[(&str, &str, &[&str])]) {
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(
            "CREATE TABLE pyro_names (
                 id integer PRIMARY KEY,
                 name nvarchar NOT NULL UNIQUE,
                 uri nvarchar NOT NULL);
             CREATE TABLE pyro_metadata (
                 object integer NOT NULL,
                 metadata nvarchar NOT NULL,
                 FOREIGN KEY(object) REFERENCES pyro_names(id));",
        )
        .unwrap();
        for (name, uri, tags) in names {
            db.execute(
                "INSERT INTO pyro_names(name, uri) VALUES(?1, ?2)",
                [name, uri],
            )
            .unwrap();
            let id = db.last_insert_rowid();
            for tag in *tags {
                db.execute(
                    "INSERT INTO pyro_metadata(object, metadata) VALUES(?1, ?2)",
                    rusqlite::params![id, tag],
                )
                .unwrap();
            }
        }
    }

    /// `(row id, tag)` of `name`'s rows in the file, as another connection
    /// (Pyro5, say) sees them.
    fn tag_rows(path: &Path, name: &str) -> Vec<(i64, String)> {
        let db = rusqlite::Connection::open(path).unwrap();
        let mut query = db
            .prepare(
                "SELECT m.rowid, m.metadata FROM pyro_metadata AS m
                 JOIN pyro_names AS n ON n.id = m.object WHERE n.name=?1 ORDER BY m.metadata",
            )
            .unwrap();
        query
            .query_map([name], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn name_row(path: &Path, name: &str) -> (i64, String) {
        let db = rusqlite::Connection::open(path).unwrap();
        db.query_row(
            "SELECT id, uri FROM pyro_names WHERE name=?1",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn sql_registering_again_rewrites_only_the_changed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.sqlite");
        let mut store = SqlStore::open(&path).unwrap();
        store.put("a", &entry("PYRO:a@h:1", &["x", "y"])).unwrap();
        let (id, _) = name_row(&path, "a");
        let kept_x = tag_rows(&path, "a")[0].clone();

        store.put("a", &entry("PYRO:a@h:2", &["x", "z"])).unwrap();
        assert_eq!(name_row(&path, "a"), (id, "PYRO:a@h:2".to_owned()));
        let rows = tag_rows(&path, "a");
        assert_eq!(rows[0], kept_x, "the unchanged tag's row is left alone");
        let tags: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(tags, ["x", "z"]);

        store.put("a", &entry("PYRO:a@h:2", &[])).unwrap();
        assert!(tag_rows(&path, "a").is_empty());
        drop(store);
        assert_eq!(
            SqlStore::open(&path).unwrap().load().unwrap(),
            vec![("a".to_owned(), entry("PYRO:a@h:2", &[]))]
        );
    }

    #[test]
    fn sql_registering_an_unchanged_entry_again_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.sqlite");
        let mut store = SqlStore::open(&path).unwrap();
        store.put("a", &entry("PYRO:a@h:1", &["x"])).unwrap();
        // data_version changes when another connection commits a change.
        let observer = rusqlite::Connection::open(&path).unwrap();
        let version = || -> i64 {
            observer
                .query_row("PRAGMA data_version", [], |row| row.get(0))
                .unwrap()
        };
        let before = version();
        store.put("a", &entry("PYRO:a@h:1", &["x"])).unwrap();
        assert_eq!(version(), before);
        store.put("a", &entry("PYRO:a@h:1", &["y"])).unwrap();
        assert_ne!(version(), before);
    }

    #[test]
    fn sql_loads_a_pyro5_file_with_names_without_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pyro5.sqlite");
        pyro5_file(
            &path,
            &[
                ("bare", "PYRO:bare@h:1", &[]),
                ("tagged", "PYRO:tagged@h:1", &["t1", "t2"]),
                ("also.bare", "PYRO:also@h:1", &[]),
            ],
        );
        let mut loaded = SqlStore::open(&path).unwrap().load().unwrap();
        loaded.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            loaded,
            vec![
                ("also.bare".to_owned(), entry("PYRO:also@h:1", &[])),
                ("bare".to_owned(), entry("PYRO:bare@h:1", &[])),
                ("tagged".to_owned(), entry("PYRO:tagged@h:1", &["t1", "t2"])),
            ]
        );
    }

    #[test]
    fn sql_opening_a_pyro5_file_adds_the_index_the_queries_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pyro5.sqlite");
        pyro5_file(&path, &[("a", "PYRO:a@h:1", &["x"])]);
        let store = SqlStore::open(&path).unwrap();
        let indexed: String = store
            .db
            .query_row(
                "SELECT tbl_name FROM sqlite_master WHERE type='index' AND name='pyro_metadata_object'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexed, "pyro_metadata");
        // Without the index SQLite would scan pyro_metadata once per name.
        let plan: Vec<String> = store
            .db
            .prepare(&format!("EXPLAIN QUERY PLAN {SQL_LOAD}"))
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("pyro_metadata_object")),
            "{plan:?}"
        );
        drop(store);
        // Opening it again (the index is there now) changes nothing.
        assert_eq!(
            SqlStore::open(&path).unwrap().load().unwrap(),
            vec![("a".to_owned(), entry("PYRO:a@h:1", &["x"]))]
        );
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
