//! Evidence in object storage, read by byte ranges through the
//! [`object_store`] crate: `s3://bucket/key` (AWS S3 and S3-compatible
//! stores: MinIO, SeaweedFS, Ceph RGW), `gs://bucket/key` (Google Cloud
//! Storage) and `az://container/key` (Azure Blob Storage).
//!
//! [`install`] builds an [`ObjectBackend`] from a node's settings and
//! installs it into `trawl-evidence`, whose raw, split and EWF readers then
//! open objects as they open files: an EWF chunk read becomes a range read
//! of its segment object, a shard read one range read (cut into parallel
//! parts when large).
//!
//! **Credentials** come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! …, as the `object_store` builders read them) or from the node's
//! configuration file (`[object_store]`, the same keys in lower case), the
//! file winning. They are kept in memory only: [`Settings`]' `Debug` masks
//! every value, errors name the object and the store's answer, never a
//! key, and locators never carry credentials.
//!
//! **Evidence does not change under a job**: each object's ETag is taken
//! when it is opened and every read is conditional on it (`If-Match`), so an
//! object replaced while a job reads it is an error naming it, not a mix of
//! two images.

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, RetryConfig};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use trawl_evidence::{EvidenceError, Locator, RemoteBackend, RemoteObject};

/// Reads at least this long go straight to the store; shorter ones (EWF
/// section descriptors and tables, format probes) are served from cached
/// blocks of [`BLOCK`] bytes.
const DIRECT: usize = 256 << 10;
/// Cache block size for short reads.
const BLOCK: u64 = 1 << 20;
/// Blocks kept per object.
const CACHED_BLOCKS: usize = 8;
/// Large reads are cut into parts of this size, fetched concurrently.
const PART: u64 = 8 << 20;
/// Parts of one read in flight at once.
const PARTS_IN_FLIGHT: usize = 8;

/// A node's object-store settings: `object_store` configuration keys
/// (`aws_endpoint`, `aws_region`, `aws_access_key_id`,
/// `aws_secret_access_key`, `aws_allow_http`, `google_service_account`,
/// `azure_storage_account_name`, …) and their values, on top of the
/// environment.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct Settings(pub BTreeMap<String, String>);

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys only: values may be secrets.
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "***")))
            .finish()
    }
}

/// A store client's key: (scheme, bucket).
type StoreKey = (&'static str, String);

/// Reads objects for `trawl-evidence`; one per process.
pub struct ObjectBackend {
    /// The I/O runtime, `None` only while being dropped (see the `Drop`
    /// impl); work goes through `handle`.
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    settings: Settings,
    stores: Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>>,
}

/// A backend replaced (a second `install`) may be dropped on an async
/// thread, where dropping a runtime the blocking way panics: its I/O
/// threads are told to stop and not waited for.
impl Drop for ObjectBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBackend")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Builds the backend from `settings` and installs it for this process's
/// evidence readers; returns it (for uploads).
///
/// # Errors
/// The I/O runtime cannot start.
pub fn install(settings: Settings) -> std::io::Result<Arc<ObjectBackend>> {
    let b = Arc::new(ObjectBackend::new(settings)?);
    trawl_evidence::set_remote_backend(b.clone());
    if let Ok(mut i) = INSTALLED.lock() {
        *i = Some(b.clone());
    }
    Ok(b)
}

static INSTALLED: std::sync::Mutex<Option<Arc<ObjectBackend>>> = std::sync::Mutex::new(None);

/// The backend [`install`] installed in this process, if any.
pub fn installed() -> Option<Arc<ObjectBackend>> {
    INSTALLED.lock().ok().and_then(|i| i.clone())
}

fn remote_err(path: &str, what: impl Into<String>) -> EvidenceError {
    EvidenceError::Remote {
        path: PathBuf::from(path),
        what: what.into(),
    }
}

/// Maps a store error to the evidence error naming its cause (never the
/// credentials: `object_store` errors carry the request's URL and the
/// store's answer only).
fn map_err(path: &str, e: object_store::Error) -> EvidenceError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => EvidenceError::NotFound {
            path: PathBuf::from(path),
        },
        E::PermissionDenied { source, .. } | E::Unauthenticated { source, .. } => remote_err(
            path,
            format!("access refused by the store (check the node's credentials): {source}"),
        ),
        E::Precondition { .. } => remote_err(
            path,
            "the object changed since it was opened (its ETag no longer matches): evidence must not change under a job",
        ),
        e => remote_err(path, e.to_string()),
    }
}

impl ObjectBackend {
    /// A backend with its own I/O threads.
    ///
    /// # Errors
    /// The runtime cannot start.
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        for k in settings.0.keys() {
            if !known_key(k) {
                tracing::warn!(key = %k, "object-store setting not recognised; ignored");
            }
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trawl-objstore")
            .enable_all()
            .build()?;
        Ok(Self {
            handle: rt.handle().clone(),
            rt: Some(rt),
            settings,
            stores: Mutex::new(HashMap::new()),
        })
    }

    fn block<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        wait_on(&self.handle, fut)
    }

    /// The store of `loc`'s bucket, built once.
    ///
    /// # Errors
    /// The settings do not make a store (naming the problem).
    pub fn store(&self, loc: &Locator) -> Result<Arc<dyn ObjectStore>, EvidenceError> {
        let key = (loc.scheme, loc.bucket.clone());
        if let Some(s) = self.stores.lock().get(&key) {
            return Ok(s.clone());
        }
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        };
        let opts = |prefix: &str| {
            self.settings
                .0
                .iter()
                .filter(move |(k, _)| k.to_ascii_lowercase().starts_with(prefix))
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect::<Vec<_>>()
        };
        let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match loc.scheme {
            "s3" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&loc.bucket)
                    .with_retry(retry);
                for (k, v) in opts("aws_") {
                    if let Ok(k) = k.parse() {
                        b = b.with_config(k, v);
                    }
                }
                b.build().map(|s| Arc::new(s) as _)
            }
            "gs" => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&loc.bucket)
                    .with_retry(retry);
                for (k, v) in opts("google_") {
                    if let Ok(k) = k.parse() {
                        b = b.with_config(k, v);
                    }
                }
                b.build().map(|s| Arc::new(s) as _)
            }
            "az" => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&loc.bucket)
                    .with_retry(retry);
                for (k, v) in opts("azure_") {
                    if let Ok(k) = k.parse() {
                        b = b.with_config(k, v);
                    }
                }
                b.build().map(|s| Arc::new(s) as _)
            }
            other => {
                return Err(remote_err(
                    &loc.to_string(),
                    format!("scheme {other}:// is not read"),
                ));
            }
        };
        let store = built.map_err(|e| {
            remote_err(
                &loc.to_string(),
                format!("the object-store settings do not make a client: {e}"),
            )
        })?;
        self.stores.lock().insert(key, store.clone());
        Ok(store)
    }

    /// Uploads the local file `from` to `to` (`s3://bucket/key`), streamed
    /// in parts; returns its size.
    ///
    /// # Errors
    /// Unreadable file, refused upload.
    pub fn upload_file(&self, from: &Path, to: &str) -> Result<u64, EvidenceError> {
        let loc = Locator::parse(Path::new(to), false)?;
        let store = self.store(&loc)?;
        let key = obj_path(&loc)?;
        let from = from.to_path_buf();
        let to_s = to.to_string();
        self.block(async move {
            use tokio::io::AsyncWriteExt;
            let mut file = tokio::fs::File::open(&from)
                .await
                .map_err(|e| EvidenceError::from_open(&from, e))?;
            let mut w = object_store::buffered::BufWriter::new(store, key);
            let n = tokio::io::copy(&mut file, &mut w)
                .await
                .map_err(|e| remote_err(&to_s, format!("upload failed: {e}")))?;
            w.shutdown()
                .await
                .map_err(|e| remote_err(&to_s, format!("upload failed: {e}")))?;
            Ok(n)
        })
        .ok_or_else(|| remote_err(to, "the object-store runtime stopped"))?
    }
}

/// Runs `fut` on the backend's runtime `rt` and waits for it from any
/// thread (rayon workers, blocking tasks, or an async task of another
/// runtime): `None` when the runtime has stopped.
fn wait_on<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().ok()
}

fn known_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    (k.starts_with("aws_") && k.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok())
        || (k.starts_with("google_") && k.parse::<object_store::gcp::GoogleConfigKey>().is_ok())
        || (k.starts_with("azure_") && k.parse::<object_store::azure::AzureConfigKey>().is_ok())
}

fn obj_path(loc: &Locator) -> Result<ObjPath, EvidenceError> {
    ObjPath::parse(&loc.key)
        .map_err(|e| remote_err(&loc.to_string(), format!("not a valid object key: {e}")))
}

impl RemoteBackend for ObjectBackend {
    fn open(&self, locator: &str) -> Result<Arc<dyn RemoteObject>, EvidenceError> {
        let loc = Locator::parse(Path::new(locator), false)?;
        let store = self.store(&loc)?;
        let key = obj_path(&loc)?;
        let (s, k) = (store.clone(), key.clone());
        let meta = self
            .block(async move { s.head(&k).await })
            .ok_or_else(|| remote_err(locator, "the object-store runtime stopped"))?
            .map_err(|e| map_err(locator, e))?;
        tracing::debug!(object = %locator, size = meta.size, "object opened");
        Ok(Arc::new(Object {
            name: locator.to_string(),
            store,
            key,
            size: meta.size,
            etag: meta.e_tag,
            rt: self.handle.clone(),
            cache: Mutex::new(Vec::new()),
        }))
    }

    fn exists(&self, locator: &str) -> Result<bool, EvidenceError> {
        match self.open(locator) {
            Ok(_) => Ok(true),
            Err(EvidenceError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// One object: size and ETag from its `HEAD`, read by conditional ranges.
struct Object {
    name: String,
    store: Arc<dyn ObjectStore>,
    key: ObjPath,
    size: u64,
    etag: Option<String>,
    rt: tokio::runtime::Handle,
    /// Recently read blocks (most recent last).
    cache: Mutex<Vec<(u64, Bytes)>>,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Object {
    /// Fetches `[start, end)` (inside the object) with one conditional GET
    /// per part, parts in flight together.
    fn fetch(&self, start: u64, end: u64) -> Result<Vec<Bytes>, EvidenceError> {
        use futures::StreamExt;
        let parts: Vec<(u64, u64)> = (start..end)
            .step_by(PART as usize)
            .map(|s| (s, (s + PART).min(end)))
            .collect();
        let store = self.store.clone();
        let key = self.key.clone();
        let etag = self.etag.clone();
        let got = wait_on(&self.rt, async move {
            futures::stream::iter(parts)
                .map(|(s, e)| {
                    let (store, key, etag) = (store.clone(), key.clone(), etag.clone());
                    async move {
                        let opts = GetOptions {
                            range: Some(GetRange::Bounded(s..e)),
                            if_match: etag,
                            ..GetOptions::default()
                        };
                        let r = store.get_opts(&key, opts).await?;
                        r.bytes().await
                    }
                })
                .buffered(PARTS_IN_FLIGHT)
                .collect::<Vec<_>>()
                .await
        })
        .ok_or_else(|| remote_err(&self.name, "the object-store runtime stopped"))?;
        let mut out = Vec::with_capacity(got.len());
        let mut at = start;
        for r in got {
            let b = r.map_err(|e| map_err(&self.name, e))?;
            at += b.len() as u64;
            out.push(b);
        }
        if at != end {
            return Err(EvidenceError::Truncated {
                path: PathBuf::from(&self.name),
                offset: at,
                what: format!(
                    "the store returned {} bytes for [{start}, {end}) of an object of {} bytes",
                    at - start,
                    self.size
                ),
            });
        }
        Ok(out)
    }

    fn block(&self, index: u64) -> Result<Bytes, EvidenceError> {
        {
            let mut c = self.cache.lock();
            if let Some(i) = c.iter().position(|(b, _)| *b == index) {
                let hit = c.remove(i);
                let bytes = hit.1.clone();
                c.push(hit);
                return Ok(bytes);
            }
        }
        let start = index * BLOCK;
        let end = (start + BLOCK).min(self.size);
        let bytes = self.fetch(start, end)?.concat();
        let bytes = Bytes::from(bytes);
        let mut c = self.cache.lock();
        if c.len() >= CACHED_BLOCKS {
            c.remove(0);
        }
        c.push((index, bytes.clone()));
        Ok(bytes)
    }
}

impl RemoteObject for Object {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.size - offset).unwrap_or(usize::MAX));
        let buf = &mut buf[..want];
        if want >= DIRECT {
            let mut at = 0;
            for b in self.fetch(offset, offset + want as u64)? {
                buf[at..at + b.len()].copy_from_slice(&b);
                at += b.len();
            }
            return Ok(want);
        }
        let mut done = 0;
        while done < want {
            let pos = offset + done as u64;
            let block = self.block(pos / BLOCK)?;
            let in_block = (pos % BLOCK) as usize;
            let n = (want - done).min(block.len().saturating_sub(in_block));
            if n == 0 {
                return Err(EvidenceError::Truncated {
                    path: PathBuf::from(&self.name),
                    offset: pos,
                    what: "the store returned a short block".into(),
                });
            }
            buf[done..done + n].copy_from_slice(&block[in_block..in_block + n]);
            done += n;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_show_their_values() {
        let mut m = BTreeMap::new();
        m.insert(
            "aws_secret_access_key".to_string(),
            "hunter2-secret".to_string(),
        );
        m.insert("aws_endpoint".to_string(), "http://127.0.0.1:1".to_string());
        let s = Settings(m);
        let shown = format!("{s:?}");
        assert!(
            shown.contains("aws_secret_access_key") && !shown.contains("hunter2"),
            "{shown}"
        );
        let b = ObjectBackend::new(s).unwrap();
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(known_key("aws_secret_access_key") && known_key("AWS_ENDPOINT"));
        assert!(!known_key("aws_nonsense") && !known_key("password"));
    }
}
