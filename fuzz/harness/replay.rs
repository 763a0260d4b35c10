//! Runs a fuzz target's harness outside cargo-fuzz, in the ordinary
//! `cargo test` of the crate that owns the code: every input kept under
//! `fuzz/regressions/<target>/` (each once crashed the target), and the
//! target's seeds (so a seed that stops passing fails the test run).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn run_one(target: &str, name: &str, input: &[u8], run: fn(&[u8])) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(input))) {
        eprintln!("{target}: input {name} fails (replay with `cargo fuzz run {target} <file>`)");
        resume_unwind(panic);
    }
}

/// Every file in `fuzz/regressions/<target>/` through `run`; how many.
pub fn regressions(target: &str, run: fn(&[u8])) -> usize {
    let dir = fuzz_dir().join("regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable entry").path())
        .collect();
    files.sort();
    for file in &files {
        let input = std::fs::read(file).expect("a readable regression input");
        run_one(target, &file.display().to_string(), &input, run);
    }
    files.len()
}

/// Every seed through `run`.
pub fn seeds(target: &str, run: fn(&[u8]), seeds: Vec<Vec<u8>>) {
    assert!(!seeds.is_empty(), "{target} has no seeds");
    for (i, seed) in seeds.iter().enumerate() {
        run_one(target, &format!("seed-{i}"), seed, run);
    }
}
