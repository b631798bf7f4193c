//! The store's own tests: artifacts, datasets and splits written and read back.

use crate::datasets::{line_runs, lines_from_runs, stored_kinds};
use crate::digest::Hasher;
use crate::npy::{Npy, PICK_CHUNK_BYTES, keep_rows};
use crate::splits::{packed_rows, unpacked_rows};
use crate::store::json_bytes;
use crate::*;
use logitflow_core::clean::{Dataset, Split};
use logitflow_core::sha256_hex;
use logitflow_core::table::CsvOptions;
use logitflow_core::table::{ColumnKind, RawTable};
use ndarray_npy::WriteNpyExt;
use std::fs;

fn table() -> RawTable {
    RawTable::from_csv("score,admitted\n80,1\n20,0\n,1\n".as_bytes(), &CsvOptions::default())
        .expect("valid")
}

#[test]
fn same_content_same_id_and_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    let a = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
    let b = store.put_table(&table(), "test", serde_json::json!({"other": 1})).expect("stores");
    assert_eq!(a, b);
    let back = store.load_table(&a).expect("loads");
    assert_eq!(back.lines, vec![2, 3, 4]);
    assert!(back.x[2].is_nan());
    assert_eq!(store.manifest(&a).expect("manifest").kind, Kind::Dataset);
    assert!(
        fs::read_dir(dir.path().join("tmp")).expect("tmp").next().is_none(),
        "nothing left staged"
    );
}

/// Writers of the same content at once (two sweep members freezing the same step): once
/// one has stored it, readers always find it whole. A later writer used to take the first
/// one's copy for damaged and move it aside, and in that moment it was not there.
#[test]
fn writers_of_the_same_content_at_once_never_hide_it_from_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    for round in 0..20 {
        let bytes = format!("round {round}\n").repeat(20_000).into_bytes();
        let start = std::sync::Barrier::new(4);
        let stored = std::sync::OnceLock::new();
        let writing = std::sync::atomic::AtomicUsize::new(3);
        let missing = std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    start.wait();
                    let put = store.put(
                        Kind::Report,
                        "test",
                        vec![],
                        serde_json::json!({}),
                        vec![("r.txt", bytes.clone())],
                    );
                    if let Ok(id) = &put {
                        let _ = stored.set(id.clone());
                    }
                    // Counted down before any failure is reported, so the reader stops.
                    writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    put.expect("stores");
                });
            }
            let reader = scope.spawn(|| {
                start.wait();
                let mut missing = 0;
                while writing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    if let Some(id) = stored.get()
                        && let Err(e) = store.verify(id)
                    {
                        if missing == 0 {
                            eprintln!("round {round}: {e}");
                        }
                        missing += 1;
                    }
                }
                missing
            });
            reader.join().expect("reader")
        });
        assert_eq!(
            missing, 0,
            "round {round}: an artifact already stored was not found whole {missing} times"
        );
    }
}

/// A large file the store wrote is read on its seal's word while it is unchanged. Any write
/// to it voids the seal: a byte changed in place, the size kept, is refused by the hash as
/// before, and the file written back as it was is hashed and read again.
#[test]
fn a_sealed_file_is_taken_on_its_word_only_while_unchanged() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    let table = numbered_table(20_000, 10);
    let id = store.put_table(&table, "test", serde_json::json!({})).expect("stores");
    let seals = dir.path().join("seals").join("artifacts").join(&id);
    assert!(seals.join("x.npy.json").is_file(), "the 1.6 MB x.npy is sealed");
    assert!(!seals.join("y.npy.json").exists(), "a small file is hashed, never sealed");
    let sealed = |store: &Store| is_sealed(store, &id, "x.npy");
    assert!(sealed_once_read(&store, &id, "x.npy"), "read on its seal's word");
    assert_eq!(store.load_table(&id).expect("loads").x, table.x);
    store.verify(&id).expect("whole");

    let path = dir.path().join("artifacts").join(&id).join("x.npy");
    let file = fs::OpenOptions::new().write(true).open(&path).expect("opens for writing");
    let at = fs::metadata(&path).expect("stat").len() - 8;
    let mut byte = [0u8];
    fs::File::open(&path).expect("opens").read_exact_at(&mut byte, at).expect("reads");
    file.write_all_at(&[byte[0] ^ 1], at).expect("writes");
    assert!(!sealed(&store), "a write voids the seal");
    assert!(matches!(store.load_table(&id), Err(StoreError::Corrupt { .. })));
    assert!(store.verify(&id).is_err());
    file.write_all_at(&byte, at).expect("writes back");
    assert!(!sealed(&store));
    assert_eq!(store.load_table(&id).expect("hashed and loaded").x, table.x);

    // Hashed whole and matched, it is sealed again.
    assert!(sealed_once_read(&store, &id, "x.npy"));

    // Written while it is read on its seal's word: refused once read.
    let again = store
        .put_table(&numbered_table(20_001, 10), "test", serde_json::json!({}))
        .expect("stores");
    assert!(sealed_once_read(&store, &again, "x.npy"));
    let (entry, mut reading) = store.open_hashing(&again, Kind::Dataset, "x.npy").expect("opens");
    assert!(matches!(reading.digest.hasher, Hasher::Sealed(_)));
    std::io::copy(&mut reading, &mut std::io::sink()).expect("reads");
    let path = dir.path().join("artifacts").join(&again).join("x.npy");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("opens")
        .write_all_at(b"\x93NUMPY", 0)
        .expect("writes the same bytes");
    assert!(!reading.digest.matches(&entry), "changed since it was sealed");
}

fn is_sealed(store: &Store, id: &str, name: &str) -> bool {
    let (_, file) = store.open_hashing(id, Kind::Dataset, name).expect("opens");
    matches!(file.digest.hasher, Hasher::Sealed(_))
}

/// Whether the file is read on a seal's word, after as many whole readings as it takes: a
/// seal made in the clock tick of the file's last change is not trusted, and each reading
/// that hashes the file seals it anew, until a seal is newer than the change.
fn sealed_once_read(store: &Store, id: &str, name: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !is_sealed(store, id, name) {
        if std::time::Instant::now() > deadline || store.verify(id).is_err() {
            return false;
        }
    }
    true
}

/// A seal vouches only for the digest it names and the file state it was made for.
#[test]
fn a_seal_for_another_digest_or_file_is_not_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    let table = numbered_table(20_000, 10);
    let id = store.put_table(&table, "test", serde_json::json!({})).expect("stores");
    let seal = dir.path().join("seals").join("artifacts").join(&id).join("x.npy.json");
    assert!(sealed_once_read(&store, &id, "x.npy"));
    let original = fs::read_to_string(&seal).expect("sealed");
    let sealed = || is_sealed(&store, &id, "x.npy");
    let value: serde_json::Value = serde_json::from_str(&original).expect("parses");
    let blake3 = value["blake3"].as_str().expect("names a digest").to_string();
    let elsewhere = dir.path().join("tmp").join("seal");
    for forged in [
        original.replace(&blake3, &"0".repeat(64)),
        original.replace("\"inode\":", "\"inode\":1"),
        "{".into(),
        "x".repeat(5000),
    ] {
        // Written elsewhere and moved in, so the seal file is newer than the file it seals.
        fs::write(&elsewhere, &forged).expect("writes");
        fs::rename(&elsewhere, &seal).expect("moves");
        assert!(!sealed(), "{forged:.80}");
        assert_eq!(store.load_table(&id).expect("hashed and loaded").x, table.x);
        // (Loaded, it is sealed again as it is: the next forgery replaces that seal.)
    }
    fs::write(&elsewhere, &original).expect("writes");
    fs::rename(&elsewhere, &seal).expect("moves");
    assert!(sealed(), "the seal as written");
}

#[test]
fn corrupt_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    let id = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
    let path = dir.path().join("artifacts").join(&id).join("y.npy");
    let mut bytes = fs::read(&path).expect("reads");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).expect("writes");
    assert!(matches!(store.load_table(&id), Err(StoreError::Corrupt { .. })));
    fs::write(&path, &bytes[..10]).expect("truncates");
    assert!(matches!(store.load_table(&id), Err(StoreError::Corrupt { .. })));
    assert!(matches!(store.load_table("nothex"), Err(StoreError::BadId(_))));
    assert!(matches!(store.load_table(&"0".repeat(64)), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.load_split_part(&id, SplitPart::Train),
        Err(StoreError::WrongKind { .. })
    ));
}

#[test]
fn staging_left_by_a_dead_writer_is_cleared_at_open_and_a_live_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = dir.path().join("tmp");
    let dead = tmp.join(format!("{}.999999999.1", "a".repeat(64)));
    let live = tmp.join(format!("{}.{}.1", "b".repeat(64), std::process::id()));
    for staging in [&dead, &live] {
        fs::create_dir_all(staging).expect("mkdir");
        fs::write(staging.join("x.npy"), vec![0u8; 4096]).expect("half-written file");
    }
    Store::open(dir.path()).expect("opens");
    assert!(!dead.exists(), "a dead writer's staging is removed");
    assert!(live.exists(), "a live writer's staging is left to it");
}

#[test]
fn a_damaged_artifact_is_not_reused_and_storing_it_again_heals_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    let id = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
    let key = step_key("ingest", &[], &serde_json::json!({}));
    let record = StepRecord {
        outputs: [("dataset".to_string(), id.clone())].into(),
        summary: serde_json::Value::Null,
    };
    store.step_record(&key, &record).expect("records");
    let artifact = dir.path().join("artifacts").join(&id);
    // A flipped byte in a data file: the cache does not reuse it; storing again replaces it.
    let mut bytes = fs::read(artifact.join("x.npy")).expect("reads");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(artifact.join("x.npy"), &bytes).expect("damages");
    assert_eq!(store.step_lookup(&key), None);
    assert_eq!(store.put_table(&table(), "test", serde_json::json!({})).expect("stores again"), id);
    assert_eq!(store.load_table(&id).expect("whole again").lines, vec![2, 3, 4]);
    assert_eq!(store.step_lookup(&key), Some(record));
    // The manifest deleted (this used to fail with "Directory not empty"): the same.
    fs::remove_file(artifact.join("manifest.json")).expect("removes");
    assert_eq!(store.put_table(&table(), "test", serde_json::json!({})).expect("stores again"), id);
    assert!(store.verify(&id).is_ok());
    assert!(
        fs::read_dir(dir.path().join("tmp")).expect("tmp").next().is_none(),
        "nothing left aside"
    );
}

#[test]
fn step_cache_needs_its_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    let id = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
    let key = step_key("ingest", &[], &serde_json::json!({"path": "x"}));
    assert_ne!(key, step_key("ingest", &[], &serde_json::json!({"path": "y"})));
    let record = StepRecord {
        outputs: [("dataset".to_string(), id.clone())].into(),
        summary: serde_json::Value::Null,
    };
    store.step_record(&key, &record).expect("records");
    assert_eq!(store.step_lookup(&key), Some(record));
    fs::remove_dir_all(dir.path().join("artifacts").join(&id)).expect("removes");
    assert_eq!(store.step_lookup(&key), None);
}

#[test]
fn npy_files_are_written_as_owned_arrays_write_them_and_read_back_in_place() {
    let (rows, d) = (1234, 3);
    let x: Vec<f64> = (0..rows * d).map(|i| i as f64 * 0.5 - 7.0).collect();
    let mut owned = Vec::new();
    ndarray::Array2::from_shape_vec((rows, d), x.clone())
        .expect("shape")
        .write_npy(&mut owned)
        .expect("npy");
    let mut streamed = Vec::new();
    Npy::matrix(&x, d).write_to(&mut streamed).expect("npy");
    assert_eq!(streamed, owned, "the same bytes, so the same artifact ids as before");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let table = RawTable {
        feature_names: vec!["a".into(), "b".into(), "c".into()],
        label_name: "y".into(),
        kinds: vec![ColumnKind::Numeric; 3],
        x: x.clone(),
        y: (0..rows).map(|i| (i % 2) as f64).collect(),
        lines: (2..rows as u64 + 2).collect(),
        ..RawTable::default()
    };
    let id = store.put_table(&table, "test", serde_json::json!({})).expect("put");
    let back = store.load_table(&id).expect("load");
    assert_eq!((back.x, back.y, back.lines), (table.x, table.y, table.lines));
}

#[test]
fn an_npy_file_that_is_whole_but_not_a_matrix_is_refused_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let columns = Columns {
        feature_names: vec!["a".into()],
        label_name: "y".into(),
        kinds: stored_kinds(&[ColumnKind::Numeric]),
        classes: None,
        missing: None,
        roles: Default::default(),
    };
    let columns = json_bytes(&columns).expect("json");
    let npy = |contents: &dyn Contents| {
        let mut out = Vec::new();
        contents.write_to(&mut out).expect("npy");
        out
    };
    for x in [b"not an npy file".to_vec(), npy(&Npy::vector(&[1.0f64, 2.0]))] {
        let files = vec![
            ("x.npy", x),
            ("y.npy", npy(&Npy::vector(&[1.0f64]))),
            ("lines.npy", npy(&Npy::vector(&[2u64]))),
            ("columns.json", columns.clone()),
        ];
        let id = store
            .put(Kind::Dataset, "test", Vec::new(), serde_json::json!({}), files)
            .expect("put");
        match store.load_table(&id) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("x.npy"), "{detail}")
            }
            other => panic!("refused as corrupt, not {other:?}"),
        }
    }
}

fn numbered_table(rows: usize, d: usize) -> RawTable {
    RawTable {
        feature_names: (0..d).map(|j| format!("x{j}")).collect(),
        label_name: "y".into(),
        kinds: vec![ColumnKind::Numeric; d],
        x: (0..rows * d).map(|i| i as f64 + 0.25).collect(),
        y: (0..rows).map(|i| (i % 3 == 0) as u8 as f64).collect(),
        lines: (2..rows as u64 + 2).collect(),
        ..RawTable::default()
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]
    /// A split stored as row numbers gives each part the rows of its dataset it names, in
    /// order, whatever the rows and wherever they fall against the chunks read.
    #[test]
    fn a_split_of_rows_reads_back_the_rows_it_names(
        rows in 1usize..3 * PICK_CHUNK_BYTES / 8,
        d in 1usize..4,
        seed in proptest::num::u64::ANY,
    ) {
        // About 30% of the rows, drawn from the seed (a vector of as many picks took
        // proptest longer to make than the test to run).
        let picks: Vec<bool> =
            (0..rows as u64).map(|i| (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % 10 < 3).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let table = numbered_table(rows, d);
        let id = store.put_table(&table, "test", serde_json::json!({})).expect("put");
        let train: Vec<u64> = (0..rows as u64).filter(|&i| picks[i as usize]).collect();
        let test: Vec<u64> = (0..rows as u64).filter(|&i| !picks[i as usize]).collect();
        let split = SplitRows { sources: SplitSources { train: id.clone(), test: id.clone() }, train: train.clone(), test };
        let columns = store.load_labels(&id).expect("labels").columns;
        let split_id = store.put_split_rows(&columns, &split, &SplitReport::default(), vec![id.clone()], serde_json::json!({})).expect("split");
        let part = store.load_split_part(&split_id, SplitPart::Train).expect("train part");
        let expected_x: Vec<f64> = train.iter().flat_map(|&i| table.x[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
        let expected_y: Vec<f64> = train.iter().map(|&i| table.y[i as usize]).collect();
        // Each row handed over with its own label.
        let with_labels = store
            .load_split_part_with(&split_id, SplitPart::Train, |row, label, x| {
                x.extend_from_slice(row);
                x.push(label);
            })
            .expect("train part, rows with labels");
        let expected_with_labels: Vec<f64> =
            train.iter().flat_map(|&i| [&table.x[i as usize * d..(i as usize + 1) * d], &[table.y[i as usize]][..]].concat()).collect();
        proptest::prop_assert_eq!(with_labels.x, expected_with_labels);
        let mut visited = Vec::new();
        store.visit_split_part(&split_id, SplitPart::Train, |row| visited.extend_from_slice(row)).expect("visits the train part");
        proptest::prop_assert_eq!(&visited, &expected_x, "the rows visited are the rows loaded");
        proptest::prop_assert_eq!((&part.x, &part.y, &part.feature_names), (&expected_x, &expected_y, &table.feature_names));
        let test_part = store.load_split_part(&split_id, SplitPart::Test).expect("test part");
        let expected_test_y: Vec<f64> = split.test.iter().map(|&i| table.y[i as usize]).collect();
        proptest::prop_assert_eq!(&test_part.y, &expected_test_y);
        // Each part taken out of the dataset's rows loaded whole is the part loaded.
        for (part, loaded) in [(SplitPart::Train, &part), (SplitPart::Test, &test_part)] {
            let whole = store.load_dataset_rows(&id).expect("the dataset's rows");
            proptest::prop_assert_eq!(&store.take_split_part(&split_id, part, whole).expect("taken"), loaded);
        }
    }

    /// A mask gives back the rows it was made of, and is made only when smaller than the
    /// rows' numbers.
    #[test]
    fn a_mask_holds_exactly_its_rows(rows in proptest::collection::btree_set(0u64..5000, 0..300)) {
        let rows: Vec<u64> = rows.into_iter().collect();
        match packed_rows(&rows) {
            Some(mask) => {
                proptest::prop_assert!(mask.len() < rows.len() * 8);
                proptest::prop_assert_eq!(unpacked_rows(&mask), rows);
            }
            None => proptest::prop_assert!(rows.last().is_none_or(|&last| last / 8 + 1 >= rows.len() as u64 * 8)),
        }
    }
}

/// A dense part is stored as a mask in numpy's `packbits` order, a sparse one as its row
/// numbers; both read back, and a mask naming a row its dataset lacks is refused.
#[test]
fn split_parts_are_masks_where_smaller_and_numbers_elsewhere() {
    assert_eq!(
        packed_rows(&[0, 9, 10]),
        Some(vec![0x80, 0x60]),
        "np.packbits([1,0,0,0,0,0,0,0, 0,1,1])"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let id = store.put_table(&numbered_table(1000, 2), "test", serde_json::json!({})).expect("put");
    let columns = store.load_labels(&id).expect("labels").columns;
    let split_of = |train: Vec<u64>, test: Vec<u64>| {
        let rows = SplitRows {
            sources: SplitSources { train: id.clone(), test: id.clone() },
            train,
            test,
        };
        store
            .put_split_rows(&columns, &rows, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split")
    };
    let split = split_of((0..1000).filter(|i| i % 5 != 0).collect(), vec![2, 998]);
    let files: Vec<String> = store.manifest(&split).expect("manifest").files.into_keys().collect();
    assert!(
        files.contains(&"train_mask.npy".to_string())
            && files.contains(&"test_rows.npy".to_string()),
        "{files:?}"
    );
    assert_eq!(store.load_split_part(&split, SplitPart::Train).expect("train").rows(), 800);
    assert_eq!(
        store.load_split_part(&split, SplitPart::Test).expect("test").x,
        vec![4.25, 5.25, 1996.25, 1997.25]
    );
    let beyond = split_of((0..=1000).collect(), vec![]);
    match store.load_split_part(&beyond, SplitPart::Train) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("row 1000 asked for, but it has 1000"), "{detail}")
        }
        other => panic!("refused, not {other:?}"),
    }
    match store.take_split_part(
        &beyond,
        SplitPart::Train,
        store.load_dataset_rows(&id).expect("rows"),
    ) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("row 1000 asked for, but it has 1000"), "{detail}")
        }
        other => panic!("taken out of the rows loaded whole, refused too, not {other:?}"),
    }
}

/// A part is taken out only of its own dataset's rows: given another's (here a dataset's,
/// then the part's own dataset's, which `put_split` stores it as), it is loaded from the
/// store.
#[test]
fn a_part_is_taken_out_of_its_own_datasets_rows_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let (ours, theirs) = (numbered_table(100, 2), numbered_table(300, 2));
    let id = store.put_table(&ours, "test", serde_json::json!({})).expect("put");
    let other = store.put_table(&theirs, "test", serde_json::json!({})).expect("put another");
    let columns = store.load_labels(&id).expect("labels").columns;
    let rows = SplitRows {
        sources: SplitSources { train: id.clone(), test: id.clone() },
        train: (0..80).collect(),
        test: (80..100).collect(),
    };
    let split = store
        .put_split_rows(&columns, &rows, &SplitReport::default(), vec![], serde_json::json!({}))
        .expect("split");
    let loaded = store.load_split_part(&split, SplitPart::Train).expect("loaded");
    assert_eq!(loaded.x[..4], [0.25, 1.25, 2.25, 3.25]);
    let their_rows = store.load_dataset_rows(&other).expect("their rows");
    assert_eq!(their_rows.id(), other);
    assert_eq!(
        store.take_split_part(&split, SplitPart::Train, their_rows).expect("loaded instead"),
        loaded
    );
    let copies = Split {
        train: Dataset {
            x: vec![1.0, 2.0],
            y: vec![1.0],
            feature_names: vec!["a".into(), "b".into()],
            ..Dataset::default()
        },
        test: Dataset::default(),
    };
    let copied = store
        .put_split(&copies, &SplitReport::default(), vec![], serde_json::json!({}))
        .expect("split of copies");
    let taken = store
        .take_split_part(&copied, SplitPart::Train, store.load_dataset_rows(&id).expect("rows"))
        .expect("loaded instead");
    assert_eq!((taken.x, taken.y), (vec![1.0, 2.0], vec![1.0]));
}

/// Rows kept in place are the rows asked for, in order, from wherever the values start.
#[test]
fn rows_kept_in_place_are_the_rows_asked_for() {
    let mut values: Vec<u32> = (0..23).collect();
    keep_rows(&mut values, 3, 2, &[0, 1, 2, 5, 7, 8, 9]);
    assert_eq!(values, [3, 4, 5, 6, 7, 8, 13, 14, 17, 18, 19, 20, 21, 22]);
    let mut none: Vec<u32> = (0..10).collect();
    keep_rows(&mut none, 0, 5, &[]);
    assert!(none.is_empty() && none.capacity() == 0, "nothing kept, nothing held");
}

/// The rows a split names are read only from a whole source: a damaged dataset, a row it
/// does not have, and a lying header are refused by name, and nothing is returned.
#[test]
fn a_split_of_rows_refuses_a_damaged_source_and_rows_it_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let id =
        store.put_table(&numbered_table(10_000, 3), "test", serde_json::json!({})).expect("put");
    let columns = store.load_labels(&id).expect("labels").columns;
    assert_eq!(columns.missing, Some(vec![0, 0, 0]), "the dataset counts its missing cells");
    let split_of = |train: Vec<u64>| {
        let rows = SplitRows {
            sources: SplitSources { train: id.clone(), test: id.clone() },
            train,
            test: vec![1],
        };
        store
            .put_split_rows(&columns, &rows, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split")
    };
    let beyond = split_of(vec![5, 10_000]);
    match store.load_split_part(&beyond, SplitPart::Train) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("row 10000 asked for, but it has 10000"), "{detail}")
        }
        other => panic!("refused, not {other:?}"),
    }
    match store.visit_split_part(&beyond, SplitPart::Train, |_| {}) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("row 10000 asked for, but it has 10000"), "{detail}")
        }
        other => panic!("visiting refused too, not {other:?}"),
    }
    let unordered = SplitRows {
        sources: SplitSources { train: id.clone(), test: id.clone() },
        train: vec![3, 2],
        test: vec![],
    };
    assert!(
        store
            .put_split_rows(
                &columns,
                &unordered,
                &SplitReport::default(),
                vec![],
                serde_json::json!({})
            )
            .is_err()
    );
    let good = split_of(vec![0, 9_999]);
    assert_eq!(
        store.load_split_part(&good, SplitPart::Train).expect("whole").x,
        vec![0.25, 1.25, 2.25, 29_997.25, 29_998.25, 29_999.25]
    );
    let path = dir.path().join("artifacts").join(&id).join("x.npy");
    let whole = fs::read(&path).expect("reads");
    let mut bytes = whole.clone();
    bytes[whole.len() / 2] ^= 1;
    fs::write(&path, &bytes).expect("damages");
    match store.load_split_part(&good, SplitPart::Train) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("x.npy does not match its hash"), "{detail}")
        }
        other => panic!("refused, not {other:?}"),
    }
    match store.visit_split_part(&good, SplitPart::Train, |_| {}) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("x.npy does not match its hash"), "{detail}")
        }
        other => panic!("visiting refused too, not {other:?}"),
    }
    assert!(store.verify(&good).is_err(), "a split is whole only with the rows it names");
    // A header that claims to be longer than the file: refused before it is read.
    let mut bytes = whole.clone();
    bytes[6] = 2;
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).expect("damages");
    match store.load_split_part(&good, SplitPart::Train) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(
                detail.contains("x.npy: its header says it is 4294967307 bytes long"),
                "{detail}"
            )
        }
        other => panic!("refused, not {other:?}"),
    }
    fs::write(&path, &whole).expect("mends");
    assert!(store.load_split_part(&good, SplitPart::Test).is_ok());
    assert!(store.verify(&good).is_ok());
}

/// Artifacts written before BLAKE3 list SHA-256 digests: they still read, checked by them.
#[test]
fn an_artifact_listed_by_sha256_is_still_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let bytes = br#"{"a": 1}"#.to_vec();
    let id = "ab".repeat(32);
    let files = [(
        "r.json".to_string(),
        FileEntry { blake3: None, sha256: Some(sha256_hex(&bytes)), bytes: bytes.len() as u64 },
    )];
    let manifest = Manifest {
        id: id.clone(),
        kind: Kind::Report,
        producer: "test".into(),
        inputs: vec![],
        params: serde_json::json!({}),
        created_unix_ms: 0,
        files: files.into_iter().collect(),
    };
    let manifest = json_bytes(&manifest).expect("json");
    store
        .storage
        .commit(&id, &[("r.json", &bytes), ("manifest.json", &manifest)], &|| false)
        .expect("commits");
    assert_eq!(
        store.read_json::<serde_json::Value>(&id, Kind::Report, "r.json").expect("reads")["a"],
        1
    );
    fs::write(dir.path().join("artifacts").join(&id).join("r.json"), br#"{"a": 2}"#)
        .expect("damages");
    assert!(matches!(store.read(&id, Kind::Report, "r.json"), Err(StoreError::Corrupt { .. })));
}

/// Splits stored before their rows were numbers (the parts' rows copied into the split)
/// still read.
#[test]
fn a_split_stored_with_its_rows_copied_still_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let npy = |contents: &dyn Contents| {
        let mut out = Vec::new();
        contents.write_to(&mut out).expect("npy");
        out
    };
    let columns = Columns {
        feature_names: vec!["a".into(), "b".into()],
        label_name: "y".into(),
        kinds: vec![],
        classes: None,
        missing: None,
        roles: Default::default(),
    };
    let files = vec![
        ("train_x.npy", npy(&Npy::matrix(&[1.0f64, 2.0, 3.0, 4.0], 2))),
        ("train_y.npy", npy(&Npy::vector(&[0.0f64, 1.0]))),
        ("test_x.npy", npy(&Npy::matrix(&[5.0f64, 6.0], 2))),
        ("test_y.npy", npy(&Npy::vector(&[1.0f64]))),
        ("columns.json", json_bytes(&columns).expect("json")),
        ("report.json", json_bytes(&SplitReport::default()).expect("json")),
    ];
    let id =
        store.put(Kind::Split, "preprocess", vec![], serde_json::json!({}), files).expect("put");
    let train = store.load_split_part(&id, SplitPart::Train).expect("train");
    assert_eq!((train.x, train.y), (vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 1.0]));
    assert_eq!(store.load_split_part(&id, SplitPart::Test).expect("test").x, vec![5.0, 6.0]);
}

#[test]
fn consecutive_lines_are_stored_as_runs_and_scattered_lines_one_per_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let rows = 1000;
    for (lines, file, bytes) in [
        // A file's rows with a header and no blank lines: one run, 16 bytes of values.
        ((2..rows as u64 + 2).collect::<Vec<u64>>(), "line_runs.npy", 16),
        // Every other line blank: a run per row would be larger than a line per row.
        ((0..rows as u64).map(|i| 2 + 2 * i).collect(), "lines.npy", 8 * rows as u64),
        // A blank line in the middle: two runs.
        (
            (0..rows as u64).map(|i| if i < 500 { 2 + i } else { 3 + i }).collect(),
            "line_runs.npy",
            32,
        ),
    ] {
        let table =
            RawTable { y: vec![1.0; rows], x: vec![0.5; rows], lines: lines.clone(), ..table() };
        let id = store.put_table(&table, "test", serde_json::json!({})).expect("put");
        let manifest = store.manifest(&id).expect("manifest");
        let names: Vec<&String> = manifest.files.keys().collect();
        assert_eq!(names, ["columns.json", file, "x.npy", "y.npy"], "{lines:?}");
        // The values after the .npy header (128 bytes as ndarray-npy writes them).
        assert_eq!(manifest.files[file].bytes, 128 + bytes, "{file}");
        assert_eq!(store.load_table(&id).expect("reads").lines, lines);
        assert_eq!(store.load_labels(&id).expect("labels").lines, lines);
    }
}

#[test]
fn line_runs_no_writer_makes_are_refused() {
    for (runs, rows) in [
        (vec![1, 5], 3),              // the first run is not at row 0
        (vec![0, 2, 0, 7], 3),        // a run of no rows
        (vec![0, 2, 2, 9, 1, 20], 3), // runs out of order
        (vec![0, 2, 5, 9], 3),        // a run past the rows
        (vec![0, u64::MAX - 1], 5),   // past the largest line number
        (vec![], 2),                  // no runs for two rows
    ] {
        assert!(lines_from_runs(&runs, rows).is_err(), "{runs:?} for {rows} rows");
    }
    assert_eq!(lines_from_runs(&[], 0), Ok(vec![]));
    assert_eq!(lines_from_runs(&[0, u64::MAX - 1], 2), Ok(vec![u64::MAX - 1, u64::MAX]));
}

proptest::proptest! {
    /// Numbers stored in JSON artifacts (a model's coefficients, a transform's offsets and
    /// scales) read back bit for bit. serde_json's default parsing of floats misses by an
    /// ulp about one value in ten (97,419 of 1,000,000 uniform ones, measured); the
    /// workspace enables its `float_roundtrip`, which reads them exactly.
    #[test]
    fn numbers_in_json_artifacts_read_back_bit_for_bit(
        values in proptest::collection::vec(
            proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO | proptest::num::f64::NEGATIVE,
            64..65,
        ),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let id = store.put_json(Kind::Report, "test", Vec::new(), serde_json::json!({}), "values.json", &values).expect("put");
        let back: Vec<f64> = store.read_json(&id, Kind::Report, "values.json").expect("read");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        proptest::prop_assert_eq!(bits(&back), bits(&values));
    }

    /// Any lines, in any order, come back from their runs as they were.
    #[test]
    fn lines_come_back_from_their_runs(
        steps in proptest::collection::vec((proptest::sample::select(vec![1u64, 1, 1, 0, 2, 7]), proptest::bool::weighted(0.05)), 0..200),
        start in proptest::sample::select(vec![0u64, 1, 2, u64::MAX - 300]),
    ) {
        let mut line = start;
        let lines: Vec<u64> = steps
            .iter()
            .map(|&(step, back)| {
                line = if back { line.saturating_sub(step * 3) } else { line.saturating_add(step) };
                line
            })
            .collect();
        let runs = line_runs(&lines);
        proptest::prop_assert_eq!(lines_from_runs(&runs, lines.len()), Ok(lines));
    }
}
