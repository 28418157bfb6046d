//! The offline vector mode: every golden vector checked, and a check that can
//! fail does fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use distsoc_conformance::suite::model::{CaseResult, Kind, Level, Role, Verdict};
use distsoc_conformance::suite::offline::{check_all, OfflineError, AREA};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Record count of every vector file, read directly from the JSON.
fn record_counts(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        counts.insert(name, v["records"].as_array().unwrap().len());
    }
    counts
}

fn area_of(file: &str) -> String {
    file.trim_end_matches(".json")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn describe(r: &CaseResult) -> String {
    format!(
        "{} [{}] {}\n    expected: {}\n    actual:   {}",
        r.case.id,
        r.verdict.as_str(),
        r.case.title,
        r.expected,
        r.actual
    )
}

#[test]
fn every_golden_vector_passes() {
    let dir = vectors_dir();
    let counts = record_counts(&dir);
    assert_eq!(counts.len(), 10, "{counts:?}");
    let total: usize = counts.values().sum();
    assert_eq!(total, 530, "{counts:?}");

    let results = check_all(&dir).unwrap();
    assert_eq!(results.len(), total);

    let failures: Vec<String> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(describe)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {total} records did not pass:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // One result per record of each file, ids `VEC-<FILEAREA>-<index>`.
    for (file, n) in &counts {
        let prefix = format!("{AREA}-{}-", area_of(file));
        let ids: Vec<&str> = results
            .iter()
            .filter(|r| r.case.id.starts_with(&prefix))
            .map(|r| r.case.id.as_str())
            .collect();
        let want: Vec<String> = (0..*n).map(|i| format!("{prefix}{i:03}")).collect();
        assert_eq!(ids, want, "{file}");
    }
    let unique: BTreeSet<&str> = results.iter().map(|r| r.case.id.as_str()).collect();
    assert_eq!(unique.len(), results.len());

    for r in &results {
        assert_eq!(r.case.area, AREA);
        assert_eq!(r.case.kind, Kind::Vector);
        assert_eq!(r.case.role, Role::Any);
        assert_eq!(r.case.level, Level::Must);
        assert_eq!(r.case.capability, None);
        assert!(!r.case.title.is_empty() && !r.case.requirement.is_empty());
        assert!(r.case.spec_ref.contains("README.md") || r.case.spec_ref.contains(".capnp"));
        assert_eq!(r.iteration, 0);
        assert_eq!(r.expected_failure, None);
        assert_eq!(r.expected, r.actual, "{}", r.case.id);
    }

    // Titles and requirements name the record.
    let frames: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("frames.json")).unwrap()).unwrap();
    let record = &frames["records"][12];
    let case = results
        .iter()
        .find(|r| r.case.id == "VEC-FRAMES-012")
        .unwrap();
    let id = record["id"].as_str().unwrap();
    assert!(
        case.case.title.starts_with(&format!("frames.json {id}:")),
        "{}",
        case.case.title
    );
    assert!(case
        .case
        .requirement
        .starts_with(record["comment"].as_str().unwrap()));
    assert!(results
        .iter()
        .any(|r| r.case.id == "VEC-CHACHA20POLY1305-000"));
}

/// Copies the vectors into a temporary directory, where tests may alter them.
fn copy_vectors() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    tmp
}

fn edit(dir: &Path, file: &str, f: impl FnOnce(&mut Value)) {
    let path = dir.join(file);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Flips the last hex digit of a hex string.
fn flip_last_digit(s: &str) -> String {
    let mut out = s.to_owned();
    let last = out.pop().unwrap();
    out.push(if last == '0' { '1' } else { '0' });
    out
}

#[test]
fn corrupted_vectors_fail_exactly_where_corrupted() {
    let tmp = copy_vectors();
    let dir = tmp.path();

    // A published BLAKE3 output.
    let mut original_hash = String::new();
    edit(dir, "blake3.json", |v| {
        let hash = &mut v["records"][3]["expected"]["hash"];
        original_hash = hash.as_str().unwrap().to_owned();
        *hash = Value::String(flip_last_digit(&original_hash));
    });
    // The error class of a frame.
    let mut frame_index = 0;
    edit(dir, "frames.json", |v| {
        let records = v["records"].as_array_mut().unwrap();
        frame_index = records
            .iter()
            .position(|r| r["expected"]["error"] == "tooLarge")
            .unwrap();
        records[frame_index]["expected"]["error"] = Value::String("malformed".into());
    });
    // Canonical bytes of a signed struct.
    edit(dir, "canonical.json", |v| {
        let canonical = &mut v["records"][0]["expected"]["canonical"];
        *canonical = Value::String(flip_last_digit(canonical.as_str().unwrap()));
    });
    // A signature verdict.
    edit(dir, "signatures.json", |v| {
        let records = v["records"].as_array_mut().unwrap();
        let i = records
            .iter()
            .position(|r| r["expected"]["error"] == "smallOrderKey")
            .unwrap();
        records[i]["expected"]["error"] = Value::String("nonCanonicalKey".into());
    });

    // A receive id of the rotation chain.
    let mut original_recv = String::new();
    edit(dir, "dm_rotation.json", |v| {
        let id = &mut v["records"][3]["expected"]["recv_id"];
        original_recv = id.as_str().unwrap().to_owned();
        *id = Value::String(flip_last_digit(&original_recv));
    });

    let results = check_all(dir).unwrap();
    assert_eq!(results.len(), 530);
    let failed: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    let ids: Vec<&str> = failed.iter().map(|r| r.case.id.as_str()).collect();
    let frame_id = format!("VEC-FRAMES-{frame_index:03}");
    assert_eq!(
        ids.len(),
        5,
        "{}",
        failed
            .iter()
            .map(|r| describe(r))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for r in &failed {
        assert_eq!(r.verdict, Verdict::Fail, "{}", describe(r));
        assert!(r.verdict.is_failure());
    }

    let blake = failed
        .iter()
        .find(|r| r.case.id == "VEC-BLAKE3-003")
        .unwrap();
    assert!(
        blake.expected.contains("expected.hash"),
        "{}",
        describe(blake)
    );
    assert!(
        blake.expected.contains(&flip_last_digit(&original_hash)),
        "{}",
        describe(blake)
    );
    assert!(blake.actual.contains(&original_hash), "{}", describe(blake));

    let frame = failed.iter().find(|r| r.case.id == frame_id).unwrap();
    assert!(
        frame.expected.contains("rejected with `malformed`"),
        "{}",
        describe(frame)
    );
    assert!(
        frame.actual.contains("rejected with `tooLarge`"),
        "{}",
        describe(frame)
    );

    let rotation = failed
        .iter()
        .find(|r| r.case.id == "VEC-DMROTATION-003")
        .unwrap();
    assert!(
        rotation.expected.contains("expected.recv_id") && rotation.actual.contains(&original_recv),
        "{}",
        describe(rotation)
    );

    let canonical = failed
        .iter()
        .find(|r| r.case.id == "VEC-CANONICAL-000")
        .unwrap();
    assert!(
        canonical.expected.contains("expected.canonical"),
        "{}",
        describe(canonical)
    );

    let sig = failed
        .iter()
        .find(|r| r.case.id.starts_with("VEC-SIGNATURES-"))
        .unwrap();
    assert!(
        sig.expected.contains("`nonCanonicalKey`"),
        "{}",
        describe(sig)
    );
    assert!(sig.actual.contains("`smallOrderKey`"), "{}", describe(sig));
}

#[test]
fn an_unusable_record_is_an_error_not_a_pass() {
    let tmp = copy_vectors();
    edit(tmp.path(), "chacha20poly1305.json", |v| {
        v["records"][0]["input"]["key"] = Value::String("zz".into());
    });
    let results = check_all(tmp.path()).unwrap();
    let bad: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].case.id, "VEC-CHACHA20POLY1305-000");
    assert_eq!(bad[0].verdict, Verdict::Error);
    assert!(bad[0].actual.contains("input.key"), "{}", describe(bad[0]));
}

#[test]
fn unreadable_or_unknown_inputs_are_typed_errors() {
    // No such directory.
    let missing = vectors_dir().join("no-such-dir");
    assert!(matches!(
        check_all(&missing),
        Err(OfflineError::ReadDir { .. })
    ));

    // No vector file.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        check_all(empty.path()),
        Err(OfflineError::NoVectorFiles { .. })
    ));

    // Bad JSON.
    let tmp = copy_vectors();
    std::fs::write(tmp.path().join("fof.json"), "{ not json").unwrap();
    assert!(matches!(
        check_all(tmp.path()),
        Err(OfflineError::Json { .. })
    ));

    // A file the suite has no checker for.
    let tmp = copy_vectors();
    std::fs::copy(
        vectors_dir().join("ids.json"),
        tmp.path().join("future.json"),
    )
    .unwrap();
    match check_all(tmp.path()) {
        Err(e @ OfflineError::UnknownFile { .. }) => assert!(e.to_string().contains("future.json")),
        other => panic!("{other:?}"),
    }

    // A record kind the suite does not know.
    let tmp = copy_vectors();
    edit(tmp.path(), "envelope.json", |v| {
        v["records"][1]["input"]["kind"] = Value::String("teleport".into());
    });
    match check_all(tmp.path()) {
        Err(OfflineError::UnknownRecordKind { file, kind, .. }) => {
            assert_eq!(file, "envelope.json");
            assert_eq!(kind, "teleport");
        }
        other => panic!("{other:?}"),
    }
    let tmp = copy_vectors();
    edit(tmp.path(), "canonical.json", |v| {
        v["records"][0]["input"]["type"] = Value::String("Spaceship".into());
    });
    assert!(matches!(
        check_all(tmp.path()),
        Err(OfflineError::UnknownRecordKind { .. })
    ));

    // A file whose `file` field does not match its name.
    let tmp = copy_vectors();
    edit(tmp.path(), "ids.json", |v| {
        v["file"] = Value::String("other.json".into())
    });
    assert!(matches!(
        check_all(tmp.path()),
        Err(OfflineError::Inconsistent { .. })
    ));
}
