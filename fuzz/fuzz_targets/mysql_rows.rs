//! `mysql_rows`: see `fuzz/harness/mysql_rows.rs` for what it feeds and what it checks.
#![no_main]

#[path = "../harness/mysql_rows.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(
    init: {
        // `BUBBLE_FUZZ_SEEDS=<dir> mysql_rows -runs=0` writes the seeds and exits
        // (scripts/fuzz.sh starts from them).
        if let Some(dir) = std::env::var_os("BUBBLE_FUZZ_SEEDS") {
            let dir = std::path::Path::new(&dir).join("mysql_rows");
            std::fs::create_dir_all(&dir).expect("the seed directory is writable");
            for (i, seed) in harness::seeds().iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).expect("the seed is written");
            }
            std::process::exit(0);
        }
    },
    |data: &[u8]| harness::run(data)
);
