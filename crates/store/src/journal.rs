//! A write-ahead journal in front of an Edge collection: what makes an
//! upsert durable (access records on the GetContext path, events on the
//! Ingest path) without a shard flush.
//!
//! Qdrant Edge 0.7 has one way to make a write durable, `EdgeShard::flush`,
//! and it syncs every file of the shard: about 25 `msync` and 5 `fsync`
//! calls, ~4 ms for the access log (measured with `strace`), 14 ms for the
//! event shard of a 100k-event store. That was a third of a GetContext and
//! two thirds of a one-event Ingest.
//!
//! Instead, a batch of points is appended to this file, then applied to the
//! collection without a flush, and the call returns once the file is synced
//! (`fdatasync`; writers that arrive while one sync runs share the next: group
//! commit). Every few MiB a checkpoint flushes the collection and empties the
//! journal. On open, whatever the journal still holds is applied again
//! (upserts by id, in the order written) and checkpointed.
//!
//! Ordering is what makes this safe:
//! - a batch is written here and applied to the collection under the file's
//!   lock (write first, so a failed write leaves the collection untouched),
//!   and the checkpoint holds the same lock from before the collection
//!   flush until after truncation, so every batch in the file when the
//!   checkpoint starts is in the flushed collection, and none can be
//!   written in between;
//! - applying and writing happen under the file's lock, in one blocking
//!   task, so the file holds the batches in the order the collection
//!   applied them, and a replay ends in the same state;
//! - a delete runs after a checkpoint with writes held off (`gate`,
//!   [`Journal::exclusive`]): the journal then holds nothing the delete
//!   removes, and no replay can bring a deleted point back.
//!
//! Frame: `len: u32 LE | crc32(body): u32 LE | body` where body is the JSON
//! array `[{"id": uuid, "payload": {...}, "dense": base64 f32 LE}]` (`dense`
//! only for events; the BM25 vector is made again from the text). Reading
//! stops at the first frame that is short or fails its checksum: only an
//! unsynced tail can be torn, and no call was answered for a batch in it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use std::future::Future;

use base64::Engine as _;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::StoreError;

/// Checkpoint once the journal holds this many bytes (~10,000 access
/// records or ~1,300 events; replaying that many at start-up takes well
/// under a second).
pub(super) const CHECKPOINT_BYTES: u64 = 4 << 20;

/// No frame is larger (an access record lists at most a few hundred ids).
const MAX_FRAME: usize = 64 << 20;

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Backend { operation: "blocking task", message: e.to_string() }
}

fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Backend { operation, message: e.to_string() }
}

/// One journalled point: its id, payload and, for events, dense vector.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub id: Uuid,
    pub payload: Map<String, Value>,
    pub dense: Option<Vec<f32>>,
}

#[derive(serde::Serialize)]
struct EntryRef<'a> {
    id: &'a Uuid,
    payload: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dense: Option<String>,
}

#[derive(serde::Deserialize)]
struct EntryOwned {
    id: Uuid,
    payload: Map<String, Value>,
    #[serde(default)]
    dense: Option<String>,
}

fn dense_to_base64(dense: &[f32]) -> String {
    let bytes: Vec<u8> = dense.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn dense_from_base64(text: &str) -> Option<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    bytes
        .len()
        .is_multiple_of(4)
        .then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// The bytes of one frame holding `points` (id, payload, dense vector).
pub(super) fn encode<'a, I>(points: I) -> Result<Vec<u8>, StoreError>
where
    I: IntoIterator<Item = (&'a Uuid, &'a Map<String, Value>, Option<&'a [f32]>)>,
{
    let entries: Vec<EntryRef<'_>> = points
        .into_iter()
        .map(|(id, payload, dense)| EntryRef { id, payload, dense: dense.map(dense_to_base64) })
        .collect();
    let body = serde_json::to_vec(&entries)
        .map_err(|e| StoreError::Backend { operation: "journal encode", message: e.to_string() })?;
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The entries of the longest valid prefix of `bytes`, and that prefix's
/// length.
fn decode_all(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        if len > MAX_FRAME || bytes.len() - at - 8 < len {
            break;
        }
        let body = &bytes[at + 8..at + 8 + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        let Ok(batch) = serde_json::from_slice::<Vec<EntryOwned>>(body) else {
            break;
        };
        let mut decoded = Vec::with_capacity(batch.len());
        for entry in batch {
            let dense = match entry.dense {
                Some(text) => match dense_from_base64(&text) {
                    Some(dense) => Some(dense),
                    None => return (entries, at),
                },
                None => None,
            };
            decoded.push(Entry { id: entry.id, payload: entry.payload, dense });
        }
        entries.extend(decoded);
        at += 8 + len;
    }
    (entries, at)
}

/// The file operations the journal needs: a seam, so tests can inject
/// short writes and failed syncs ([`Journal::open_with`]).
pub(crate) trait JournalIo: Send + Sync + 'static {
    /// Appends all of `bytes` at the end (the file is opened for append).
    fn append(&self, bytes: &[u8]) -> std::io::Result<()>;
    fn set_len(&self, len: u64) -> std::io::Result<()>;
    fn sync_data(&self) -> std::io::Result<()>;
    fn sync_all(&self) -> std::io::Result<()>;
}

impl JournalIo for File {
    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        (&*self).write_all(bytes)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&self) -> std::io::Result<()> {
        File::sync_all(self)
    }
}

struct Inner {
    path: PathBuf,
    io: Arc<dyn JournalIo>,
    /// The file's length: every frame before it was written whole. Held by
    /// every write and for a whole checkpoint (the file's lock).
    len: parking_lot::Mutex<u64>,
    /// Frames written so far (counts up).
    written: AtomicU64,
    /// Bytes written since the last checkpoint.
    pending: AtomicU64,
    /// Frames known to be durable; held while a sync or checkpoint runs.
    durable: tokio::sync::Mutex<u64>,
    /// Shared by writes, exclusive for deletes.
    gate: Arc<tokio::sync::RwLock<()>>,
    checkpointing: AtomicBool,
    /// Set when a failure left the file in a state we could not repair (a
    /// failed truncation, a failed sync): every later write is refused
    /// until a checkpoint succeeds or the store is reopened.
    poisoned: parking_lot::Mutex<Option<String>>,
}

#[derive(Clone)]
pub(super) struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.inner.path).finish()
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` and returns what it holds.
    /// A torn tail is cut off. Blocking.
    pub fn open(path: &Path) -> Result<(Self, Vec<Entry>), StoreError> {
        Self::open_with(path, |file| Arc::new(file))
    }

    /// As [`Journal::open`], with the file's operations wrapped by `io`
    /// (fault injection in tests).
    pub(crate) fn open_with(
        path: &Path,
        io_of: impl FnOnce(File) -> Arc<dyn JournalIo>,
    ) -> Result<(Self, Vec<Entry>), StoreError> {
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io("open journal"))?;
        // The file's directory entry must be durable before a synced frame
        // in it can count as durable.
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync journal directory"))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io("read journal"))?;
        let (entries, valid) = decode_all(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = entries.len(),
                dropped_bytes = bytes.len() - valid,
                "journal: cut a torn tail (writes that were never acknowledged)"
            );
            file.set_len(valid as u64).map_err(io("truncate journal"))?;
            file.sync_all().map_err(io("sync journal"))?;
        }
        let journal = Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                io: io_of(file),
                len: parking_lot::Mutex::new(valid as u64),
                written: AtomicU64::new(0),
                pending: AtomicU64::new(valid as u64),
                durable: tokio::sync::Mutex::new(0),
                gate: Arc::new(tokio::sync::RwLock::new(())),
                checkpointing: AtomicBool::new(false),
                poisoned: parking_lot::Mutex::new(None),
            }),
        };
        Ok((journal, entries))
    }

    /// Writes a batch: under the file's lock, `encode` makes its frame
    /// (see [`encode`]), the frame is appended, and `apply` applies the
    /// batch to the collection (without a flush); then returns once the
    /// frame is on disk. Returns the bytes pending since the last
    /// checkpoint. Blocking closures.
    ///
    /// Failures leave no partial frame in front of later frames: a failed or
    /// short write is cut off again, synced (the batch was not applied), and
    /// the call fails with nothing of the batch left. Where the outcome is
    /// unknown — the cut fails, the sync fails (the kernel may have dropped
    /// the written pages), or the apply fails (Qdrant may have applied part
    /// of the batch; its frame is kept so a replay completes it) — the call
    /// fails with `Unavailable` saying the batch may have been written, and
    /// the journal refuses every later write until a checkpoint (which makes
    /// what was applied durable by a shard flush) succeeds.
    pub async fn append<E, A>(&self, encode: E, apply: A) -> Result<u64, StoreError>
    where
        E: FnOnce() -> Result<Vec<u8>, StoreError> + Send + 'static,
        A: FnOnce() -> Result<(), StoreError> + Send + 'static,
    {
        let (mine, pending) = {
            // Owned by the blocking task: if the caller is cancelled while the
            // batch is being written, a delete still waits for the write to
            // end (and then removes what it wrote).
            let gate = Arc::clone(&self.inner.gate).read_owned().await;
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || {
                let _gate = gate;
                inner.write_frame(encode, apply)
            })
            .await
            .map_err(join_error)??
        };
        let mut durable = self.inner.durable.lock().await;
        if *durable >= mine {
            return Ok(pending);
        }
        if let Some(why) = self.inner.poisoned.lock().clone() {
            // A sync failed after this frame was written: a later sync's
            // success says nothing about it (Linux reports a writeback
            // error once).
            return Err(StoreError::Unavailable {
                operation: "write journal",
                message: format!("the batch may have been written; the journal failed: {why}"),
            });
        }
        // Every frame counted here has been written in full.
        let covered = self.inner.written.load(Ordering::SeqCst);
        let inner = Arc::clone(&self.inner);
        let synced = tokio::task::spawn_blocking(move || inner.io.sync_data()).await.map_err(join_error)?;
        if let Err(e) = synced {
            let message = format!("journal sync failed ({e}); the batch may have been written");
            self.inner.poison(&message);
            return Err(StoreError::Unavailable { operation: "write journal", message });
        }
        *durable = covered;
        Ok(pending)
    }

    /// Runs `flush`, which must make every record applied so far durable by
    /// other means, with writes held off, then empties the journal.
    pub async fn checkpoint<F>(&self, flush: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Result<(), StoreError> + Send + 'static,
    {
        let mut durable = self.inner.durable.lock().await;
        let inner = Arc::clone(&self.inner);
        let covered = tokio::task::spawn_blocking(move || inner.checkpoint(flush)).await.map_err(join_error)??;
        *durable = (*durable).max(covered);
        Ok(())
    }

    /// Checkpoints with `flush`, then runs `then` (a delete), with no batch
    /// applied or written in between.
    pub async fn exclusive<F, T, R>(&self, flush: F, then: T) -> Result<R, StoreError>
    where
        F: FnOnce() -> Result<(), StoreError> + Send + 'static,
        T: Future<Output = Result<R, StoreError>>,
    {
        let _gate = self.inner.gate.write().await;
        self.checkpoint(flush).await?;
        then.await
    }

    /// As [`Journal::checkpoint`], for blocking callers (open, close).
    pub fn checkpoint_blocking<F>(&self, flush: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Result<(), StoreError>,
    {
        self.inner.checkpoint(flush).map(|_| ())
    }

    /// Claims the right to run a background checkpoint; `false` when one
    /// already runs. Release it with [`Journal::checkpoint_done`].
    pub fn claim_checkpoint(&self) -> bool {
        self.inner.checkpointing.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    pub fn checkpoint_done(&self) {
        self.inner.checkpointing.store(false, Ordering::SeqCst);
    }

    /// Bytes written since the last checkpoint.
    #[cfg(test)]
    pub fn pending_bytes(&self) -> u64 {
        self.inner.pending.load(Ordering::SeqCst)
    }
}

impl Inner {
    fn poison(&self, why: &str) {
        tracing::error!(journal = %self.path.display(), why, "journal refuses writes until a checkpoint succeeds");
        *self.poisoned.lock() = Some(why.to_string());
    }

    /// The blocking part of [`Journal::append`]: returns the frame's number
    /// and the bytes pending.
    fn write_frame<E, A>(&self, encode: E, apply: A) -> Result<(u64, u64), StoreError>
    where
        E: FnOnce() -> Result<Vec<u8>, StoreError>,
        A: FnOnce() -> Result<(), StoreError>,
    {
        let mut len = self.len.lock();
        if let Some(why) = self.poisoned.lock().clone() {
            return Err(StoreError::Unavailable {
                operation: "write journal",
                message: format!("an earlier journal failure is not repaired yet: {why}"),
            });
        }
        let frame = encode()?;
        let before = *len;
        let cut = |what: &str, e: &dyn std::fmt::Display| -> StoreError {
            // The cut is synced, so a frame a concurrent group sync may have
            // made durable cannot be replayed after a crash.
            match self.io.set_len(before).and_then(|()| self.io.sync_data()) {
                Ok(()) => StoreError::Backend {
                    operation: "write journal",
                    message: format!("{what}: {e}; nothing was written"),
                },
                Err(cut) => {
                    let message = format!(
                        "{what}: {e}; cutting the partial frame failed ({cut}): the batch may have been written"
                    );
                    self.poison(&message);
                    StoreError::Unavailable { operation: "write journal", message }
                }
            }
        };
        if let Err(e) = self.io.append(&frame) {
            return Err(cut("journal write failed", &e));
        }
        if let Err(e) = apply() {
            // Qdrant may have applied part of the batch (it applies points
            // in chunks): keep the frame, so a replay completes it, and
            // refuse writes until a checkpoint makes the state whole.
            *len = before + frame.len() as u64;
            self.pending.fetch_add(frame.len() as u64, Ordering::SeqCst);
            let message = format!("applying the batch failed ({e}); the batch may have been written in part");
            self.poison(&message);
            return Err(StoreError::Unavailable { operation: "write journal", message });
        }
        *len = before + frame.len() as u64;
        let pending = self.pending.fetch_add(frame.len() as u64, Ordering::SeqCst) + frame.len() as u64;
        Ok((self.written.fetch_add(1, Ordering::SeqCst) + 1, pending))
    }

    /// Returns how many frames are durable afterwards.
    fn checkpoint<F>(&self, flush: F) -> Result<u64, StoreError>
    where
        F: FnOnce() -> Result<(), StoreError>,
    {
        let mut len = self.len.lock();
        let covered = self.written.load(Ordering::SeqCst);
        // Every frame in the file was applied when it was written, so after
        // this flush the collection holds all of them on disk.
        flush()?;
        self.io.set_len(0).map_err(io("truncate journal"))?;
        *len = 0;
        // Durably empty: a record erased after this point must not come
        // back from the journal after a crash.
        if let Err(e) = self.io.sync_all() {
            self.poison(&format!("syncing the emptied journal failed: {e}"));
            return Err(io("sync journal")(e));
        }
        self.pending.store(0, Ordering::SeqCst);
        if self.poisoned.lock().take().is_some() {
            tracing::info!(journal = %self.path.display(), "journal repaired by a checkpoint");
        }
        Ok(covered)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(n: u32) -> Entry {
        let payload = json!({"user_id": format!("u{n}"), "events": [n, n + 1]});
        // Every other entry carries a vector (with values JSON cannot hold).
        let dense = n.is_multiple_of(2).then(|| vec![n as f32 * 0.1, -0.0, f32::MIN_POSITIVE, 1e-30, f32::MAX]);
        Entry { id: Uuid::from_u128(n as u128 + 1), payload: payload.as_object().unwrap().clone(), dense }
    }

    fn frame(entries: &[Entry]) -> Vec<u8> {
        encode(entries.iter().map(|e| (&e.id, &e.payload, e.dense.as_deref()))).unwrap()
    }

    async fn append(journal: &Journal, entries: &[Entry]) -> u64 {
        let frame = frame(entries);
        journal.append(move || Ok(frame), || Ok(())).await.unwrap()
    }

    #[tokio::test]
    async fn reopening_returns_what_was_appended_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        let (journal, found) = Journal::open(&path).unwrap();
        assert!(found.is_empty());
        let entries: Vec<Entry> = (0..5).map(entry).collect();
        let mut last = 0;
        for e in entries.chunks(2) {
            last = append(&journal, e).await;
        }
        let full = std::fs::metadata(&path).unwrap().len();
        assert_eq!(last, full, "pending bytes are the file's length");
        drop(journal);

        // A crash in the middle of the next write: half a frame.
        let torn = frame(&[entry(9)]);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(file);
        let (journal, found) = Journal::open(&path).unwrap();
        assert_eq!(found, entries);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), full, "the torn tail is cut off");
        assert_eq!(journal.pending_bytes(), full);

        // A frame whose body was corrupted ends the valid prefix too.
        let mut bytes = std::fs::read(&path).unwrap();
        let second = frame(&entries[..2]).len();
        bytes[second + 10] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        drop(journal);
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found, entries[..2], "the first frame (two entries) stays");
    }

    #[tokio::test]
    async fn a_checkpoint_empties_the_journal_only_when_the_flush_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        let (journal, _) = Journal::open(&path).unwrap();
        for n in 0..3 {
            append(&journal, &[entry(n)]).await;
        }
        let failed =
            journal.checkpoint(|| Err(StoreError::Backend { operation: "flush", message: "disk full".into() })).await;
        assert!(failed.is_err());
        assert_eq!(Journal::open(&path).unwrap().1.len(), 3, "nothing is dropped when the flush fails");

        journal.checkpoint(|| Ok(())).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(journal.pending_bytes(), 0);
        // Appends after a checkpoint start the file afresh.
        append(&journal, &[entry(7)]).await;
        assert_eq!(Journal::open(&path).unwrap().1, vec![entry(7)]);
    }

    /// Batches are written in the order they were applied, whatever the
    /// interleaving of concurrent writers, so a replay ends in the state
    /// the collection was in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_land_whole_and_in_the_order_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        let (journal, _) = Journal::open(&path).unwrap();
        let applied = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let journal = journal.clone();
                let applied = Arc::clone(&applied);
                tokio::spawn(async move {
                    let apply = move || {
                        std::thread::yield_now();
                        applied.lock().push(entry(n).id);
                        Ok(())
                    };
                    journal.append(move || Ok(frame(&[entry(n)])), apply).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let (_, found) = Journal::open(&path).unwrap();
        assert_eq!(found.iter().map(|e| e.id).collect::<Vec<_>>(), *applied.lock());
        let mut sorted = found;
        sorted.sort_by_key(|e| e.id);
        assert_eq!(sorted, (0..200).map(entry).collect::<Vec<_>>());
    }

    /// A delete runs after a checkpoint, with the journal empty; a failed
    /// apply keeps its frame and poisons the journal until that checkpoint.
    #[tokio::test]
    async fn exclusive_runs_on_an_empty_journal_and_a_failed_apply_keeps_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activity.journal");
        let (journal, _) = Journal::open(&path).unwrap();
        append(&journal, &[entry(1), entry(2)]).await;
        let failed = journal
            .append(
                || Ok(frame(&[entry(3)])),
                || Err(StoreError::Backend { operation: "upsert", message: "no".into() }),
            )
            .await;
        // A failed apply may have applied part of the batch: the frame stays
        // (a replay completes it), the caller hears "may have been written",
        // and writes are refused until a checkpoint.
        assert!(matches!(&failed, Err(StoreError::Unavailable { .. })), "{failed:?}");
        assert_eq!(Journal::open(&path).unwrap().1, vec![entry(1), entry(2), entry(3)]);
        assert!(journal.append(|| Ok(frame(&[entry(4)])), || Ok(())).await.is_err(), "refused until a checkpoint");
        let path_inside = path.clone();
        let seen = journal
            .exclusive(|| Ok(()), async move { Ok(std::fs::metadata(&path_inside).unwrap().len()) })
            .await
            .unwrap();
        assert_eq!(seen, 0, "the delete saw an empty journal");
    }

    /// A journal file that fails on request: a short write (half the frame
    /// lands, then an error), a failed truncation, a failed sync.
    struct Faulty {
        file: File,
        short_write: AtomicBool,
        fail_set_len: AtomicBool,
        fail_sync: AtomicBool,
    }

    impl JournalIo for Faulty {
        fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
            if self.short_write.swap(false, Ordering::SeqCst) {
                (&self.file).write_all(&bytes[..bytes.len() / 2])?;
                return Err(std::io::Error::other("No space left on device (injected)"));
            }
            (&self.file).write_all(bytes)
        }

        fn set_len(&self, len: u64) -> std::io::Result<()> {
            if self.fail_set_len.swap(false, Ordering::SeqCst) {
                return Err(std::io::Error::other("I/O error (injected)"));
            }
            self.file.set_len(len)
        }

        fn sync_data(&self) -> std::io::Result<()> {
            if self.fail_sync.swap(false, Ordering::SeqCst) {
                return Err(std::io::Error::other("fsync: I/O error (injected)"));
            }
            self.file.sync_data()
        }

        fn sync_all(&self) -> std::io::Result<()> {
            self.file.sync_all()
        }
    }

    fn faulty(path: &Path) -> (Journal, Arc<Faulty>) {
        let mut slot = None;
        let (journal, _) = Journal::open_with(path, |file| {
            let f = Arc::new(Faulty {
                file,
                short_write: AtomicBool::new(false),
                fail_set_len: AtomicBool::new(false),
                fail_sync: AtomicBool::new(false),
            });
            slot = Some(Arc::clone(&f));
            f
        })
        .unwrap();
        (journal, slot.unwrap())
    }

    /// Appends one entry's frame, recording whether the batch was applied.
    async fn try_append(journal: &Journal, n: u32, applied: &Arc<AtomicBool>) -> Result<u64, StoreError> {
        let applied = Arc::clone(applied);
        let frame = frame(&[entry(n)]);
        journal
            .append(
                move || Ok(frame),
                move || {
                    applied.store(true, Ordering::SeqCst);
                    Ok(())
                },
            )
            .await
    }

    #[tokio::test]
    async fn a_short_write_is_cut_off_reported_and_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activity.journal");
        let (journal, faults) = faulty(&path);
        let applied = Arc::new(AtomicBool::new(false));
        try_append(&journal, 1, &applied).await.unwrap();
        faults.short_write.store(true, Ordering::SeqCst);
        applied.store(false, Ordering::SeqCst);
        let err = try_append(&journal, 2, &applied).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{err}");
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert!(!applied.load(Ordering::SeqCst), "a batch whose write failed is not applied");
        try_append(&journal, 3, &applied).await.unwrap();
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        let (found, valid) = decode_all(&bytes);
        assert_eq!(found, vec![entry(1), entry(3)], "no partial frame in front of a later acknowledged one");
        assert_eq!(valid, bytes.len(), "the file is whole frames only");
    }

    #[tokio::test]
    async fn an_unrepairable_write_or_a_failed_sync_refuses_writes_until_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        let (journal, faults) = faulty(&path);
        let applied = Arc::new(AtomicBool::new(false));
        // The write fails and so does cutting it off: the outcome is unknown.
        faults.short_write.store(true, Ordering::SeqCst);
        faults.fail_set_len.store(true, Ordering::SeqCst);
        let err = try_append(&journal, 1, &applied).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }) && err.to_string().contains("may have been written"));
        let refused = try_append(&journal, 2, &applied).await.unwrap_err();
        assert!(refused.to_string().contains("not repaired"), "{refused}");
        assert!(!applied.load(Ordering::SeqCst));
        journal.checkpoint(|| Ok(())).await.unwrap();
        try_append(&journal, 3, &applied).await.unwrap();
        assert_eq!(Journal::open(&path).unwrap().1, vec![entry(3)], "the checkpoint cleared the partial frame");

        // A failed sync: the frame was written and applied, durability is
        // unknown, so the caller hears "may have been written".
        faults.fail_sync.store(true, Ordering::SeqCst);
        let err = try_append(&journal, 4, &applied).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }) && err.to_string().contains("may have been written"));
        assert!(try_append(&journal, 5, &applied).await.is_err(), "refused until repaired");
        journal.checkpoint(|| Ok(())).await.unwrap();
        try_append(&journal, 6, &applied).await.unwrap();
        assert_eq!(Journal::open(&path).unwrap().1, vec![entry(6)]);
    }
}
