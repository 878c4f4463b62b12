//! Many durable commits at once finish: `flush_async` runs sled's flush on
//! a runtime thread of its own. Through sled's own `flush_async` (which
//! runs on sled's small I/O pool, the pool that also writes the buffers the
//! flush waits for), eight concurrent job submissions hung the scheduler;
//! this test hung the same way with it.

use std::sync::Arc;
use std::time::Duration;
use trawl_store::Store;

const WRITERS: u64 = 32;
const ROUNDS: u64 = 40;

#[test]
fn concurrent_flushes_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // The writers run on a runtime of their own thread, so a hang fails
    // this test after the timeout instead of blocking the test binary.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async move {
            let store = Arc::new(Store::open(&path).unwrap());
            let mut set = tokio::task::JoinSet::new();
            for w in 0..WRITERS {
                let store = store.clone();
                set.spawn(async move {
                    let mut last = 0;
                    for _ in 0..ROUNDS {
                        last = store.next_id(&format!("writer-{w}")).unwrap();
                        store.flush_async().await.unwrap();
                    }
                    last
                });
            }
            let mut done = Vec::new();
            while let Some(r) = set.join_next().await {
                done.push(r.unwrap());
            }
            done
        });
        let _ = tx.send(out);
    });
    let done = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|e| {
        panic!("{WRITERS} writers flushing at once did not finish within 120 s ({e}): the flush is stuck")
    });
    assert_eq!(done.len() as u64, WRITERS);
    assert!(done.iter().all(|&last| last == ROUNDS), "{done:?}");
    // What was flushed is there after reopening.
    let store = Store::open(dir.path()).unwrap();
    for w in 0..WRITERS {
        assert_eq!(store.next_id(&format!("writer-{w}")).unwrap(), ROUNDS + 1);
    }
}
