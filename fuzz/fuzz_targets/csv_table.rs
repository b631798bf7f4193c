//! Any bytes as a CSV upload: `RawTable::from_csv` returns a table or an error, never panics,
//! and a table it returns is well formed; read in blocks side by side (`from_csv_in_blocks`,
//! the path of large files), the same bytes give the same table or the same error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logitflow_core::table::{ColumnKind, CsvOptions, RawTable};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a column selection, so the label and feature lookups are fuzzed too.
    let (selection, csv) = match data.split_first() {
        Some((0, rest)) => (CsvOptions { label: Some("y".into()), ..CsvOptions::default() }, rest),
        Some((1, rest)) => (CsvOptions { features: Some(vec!["a".into(), "b".into()]), ..CsvOptions::default() }, rest),
        Some((2, rest)) => (CsvOptions { categorical: vec!["a".into()], positive: Some("yes".into()), ..CsvOptions::default() }, rest),
        Some((3, rest)) => (CsvOptions { delimiter: Some(";".into()), na_values: Some(vec!["-".into()]), ..CsvOptions::default() }, rest),
        _ => (CsvOptions::default(), data),
    };
    let read = RawTable::from_csv(csv, &selection);
    // About five blocks, on two threads, so the block boundaries fall all over the input.
    let in_blocks = RawTable::from_csv_in_blocks(csv, &selection, 2, 1 + csv.len() / 5);
    match (&read, &in_blocks) {
        (Ok(a), Ok(b)) => {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!((bits(&a.x), bits(&a.y), &a.lines, &a.kinds, &a.notes), (bits(&b.x), bits(&b.y), &b.lines, &b.kinds, &b.notes));
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("from the start: {:?}; in blocks: {:?}", read.as_ref().map(RawTable::rows), in_blocks.as_ref().map(RawTable::rows)),
    }
    let Ok(table) = read else { return };
    assert!(table.width() > 0, "a table has at least one feature");
    assert_eq!(table.x.len(), table.rows() * table.width(), "x is rows × features");
    assert_eq!(table.lines.len(), table.rows(), "one line number per row");
    assert!(table.lines.windows(2).all(|w| w[0] < w[1]), "line numbers increase: {:?}", table.lines);
    assert!(table.lines.first().is_some_and(|&l| l >= 2), "data starts after the header line");
    assert!(table.y.iter().all(|&y| y == 0.0 || y == 1.0 || y.is_nan()), "labels are 0, 1 or missing");
    assert!(table.x.iter().all(|v| v.is_finite() || v.is_nan()), "cells are finite or missing");
    assert_eq!(table.kinds.len(), table.width(), "one kind per feature");
    for (j, kind) in table.kinds.iter().enumerate() {
        if let ColumnKind::Categorical { levels } = kind {
            let codes = table.x.iter().skip(j).step_by(table.width()).filter(|v| !v.is_nan());
            assert!(codes.clone().all(|&c| c.fract() == 0.0 && (c as usize) < levels.len()), "codes index the levels");
        }
    }
});
