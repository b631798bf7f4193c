//! Any bytes as a CSV upload: `RawTable::from_csv` returns a table or an error, never panics,
//! and a table it returns is well formed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logitflow_core::table::{ColumnSelection, RawTable};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a column selection, so the label and feature lookups are fuzzed too.
    let (selection, csv) = match data.split_first() {
        Some((0, rest)) => (ColumnSelection { label: Some("y".into()), features: None }, rest),
        Some((1, rest)) => (ColumnSelection { label: None, features: Some(vec!["a".into(), "b".into()]) }, rest),
        _ => (ColumnSelection::default(), data),
    };
    let Ok(table) = RawTable::from_csv(csv, &selection) else { return };
    assert!(table.width() > 0, "a table has at least one feature");
    assert_eq!(table.x.len(), table.rows() * table.width(), "x is rows × features");
    assert_eq!(table.lines.len(), table.rows(), "one line number per row");
    assert!(table.lines.windows(2).all(|w| w[0] < w[1]), "line numbers increase: {:?}", table.lines);
    assert!(table.lines.first().is_some_and(|&l| l >= 2), "data starts after the header line");
    assert!(table.y.iter().all(|&y| y == 0.0 || y == 1.0 || y.is_nan()), "labels are 0, 1 or missing");
    assert!(table.x.iter().all(|v| v.is_finite() || v.is_nan()), "cells are finite or missing");
});
