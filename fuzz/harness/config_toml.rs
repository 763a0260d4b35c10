//! Harness of the `config_toml` fuzz target: arbitrary bytes as
//! `bubble.toml` (and, after a NUL byte, `BUBBLE_*` variables, one
//! `NAME=value` a line), through the server's figment layering and then
//! validation, as `Config::load` runs them.
//!
//! Neither may panic, and every refusal must name what to fix: the file
//! (`--config`) or a key; a refusal of validation names a key of the
//! configuration.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/config_toml.rs` and the
//! replay of `fuzz/regressions/config_toml/` in bubble-server's tests.

use bubble_server::config::{Config, ConfigError, config_keys};

/// Runs one input; panics on a violation of the config's contract.
pub fn run(data: &[u8]) {
    let (file, vars) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // `Config::load` reads the file as UTF-8 and refuses it, naming the file, if it is not.
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    let vars: Vec<(String, String)> = String::from_utf8_lossy(vars)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let config = match Config::from_toml_and_env(text, vars) {
        Ok(config) => config,
        Err(e) => return assert_names_something(&e),
    };
    if let Err(e) = config.validate() {
        assert_names_something(&e);
        let keys = config_keys();
        assert!(
            keys.iter()
                .any(|k| k.key == e.key || k.key.starts_with(&format!("{}.", e.key))),
            "validation refused a value under `{}`, which is no config key: {e}",
            e.key
        );
    }
}

fn assert_names_something(e: &ConfigError) {
    assert!(
        !e.key.is_empty() && e.key != "<config>",
        "a config error that names neither the file nor a key: {e}"
    );
    assert!(
        !e.problem.is_empty(),
        "a config error that says nothing: {e}"
    );
}

/// The configuration documented in `docs/configuration.md`'s examples:
/// the embedded default, a scale-out node, and variables over a file.
pub fn seeds() -> Vec<Vec<u8>> {
    let embedded = r#"
data_dir = "./bubble-data"
node_id = "node-1"
dev_app = "demo"

[gate]
tcp = "0.0.0.0:7700"
ws = "0.0.0.0:7701"
max_frame_bytes = 1048576
max_connections = 100000

[http]
addr = "127.0.0.1:7780"

[store]
kind = "sqlite"

[store.sqlite]
path = "./bubble-data/bubble.db"

[search]
kind = "tantivy"
"#;
    let scale_out = r#"
node_id = "node-2"

[cluster]
rpc = "10.0.0.2:7790"

[store]
kind = "mysql"
[store.mysql]
url = "mysql://bubble:secret@db:3306/bubble"

[cache]
kind = "redis"
[cache.redis]
url = "redis://cache:6379"

[presence]
kind = "redis"
[presence.redis]
url = "redis://cache:6379"

[search]
kind = "elasticsearch"
[search.elasticsearch]
urls = ["http://es:9200"]

[discovery]
kind = "etcd"
[discovery.etcd]
endpoints = ["http://etcd:2379"]
"#;
    let mut with_vars = b"[gate]\ntcp = \"127.0.0.1:7700\"\n".to_vec();
    with_vars.push(0);
    with_vars.extend_from_slice(b"BUBBLE_GATE_MAX_IN_FLIGHT=64\nBUBBLE_SEARCH_KIND=off\n");
    vec![
        embedded.as_bytes().to_vec(),
        scale_out.as_bytes().to_vec(),
        with_vars,
    ]
}
