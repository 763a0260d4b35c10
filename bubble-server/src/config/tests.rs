use std::path::PathBuf;

use serde_json::{Value, json};

use super::layers::{Shape, load};
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn no_config_at_all_is_the_embedded_default() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.store.kind, StoreKind::Sqlite);
    assert_eq!(c.search.kind, SearchKind::Tantivy);
    assert_eq!(c.data_dir, PathBuf::from("./bubble-data"));
    assert_eq!(c.sqlite().path, PathBuf::from("./bubble-data/bubble.db"));
    assert_eq!(c.tantivy().path, PathBuf::from("./bubble-data/search"));
}

#[test]
fn an_unknown_key_is_named() {
    let err = Config::from_toml("[gate]\ntcpp = \"1.2.3.4:5\"\n").unwrap_err();
    assert_eq!(err.key, "gate.tcpp", "{err}");
}

#[test]
fn a_key_that_moved_into_a_backends_section_says_where_to() {
    let err = Config::from_toml("[store]\nurl = \"mysql://db/x\"\n").unwrap_err();
    assert_eq!(err.key, "store.url");
    assert!(err.problem.contains("store.mysql.url"), "{err}");
}

#[test]
fn a_bad_value_names_its_key() {
    let c = Config::from_toml("[gate]\ntcp = \"not-an-address\"\n").unwrap();
    assert_eq!(c.validate().unwrap_err().key, "gate.tcp");
    let err = Config::from_toml("[store]\nkind = \"oracle\"\n").unwrap_err();
    assert_eq!(err.key, "store.kind");
    assert!(
        err.problem.contains("sqlite"),
        "lists what is allowed: {err}"
    );
}

#[test]
fn the_breaker_and_the_request_deadline_are_checked_together_and_name_the_bad_key() {
    let c = Config::from_toml("[engine]\nrequest_timeout_ms = 0\n").unwrap();
    assert_eq!(c.validate().unwrap_err().key, "engine.request_timeout_ms");
    let c = Config::from_toml("[breaker]\nfailures = 0\n").unwrap();
    assert_eq!(c.validate().unwrap_err().key, "breaker.failures");
    let c = Config::from_toml("[engine]\nrequest_timeout_ms = 400\n").unwrap();
    let err = c.validate().unwrap_err();
    assert_eq!(err.key, "breaker.abandoned_call_ms", "{err}");
    assert!(err.problem.contains("engine.request_timeout_ms"), "{err}");
    let c = Config::from_env(env(&[
        ("BUBBLE_ENGINE_REQUEST_TIMEOUT_MS", "2000"),
        ("BUBBLE_BREAKER_COOL_DOWN_MS", "250"),
    ]))
    .unwrap();
    c.validate().unwrap();
    assert_eq!(
        c.breaker.breaker_config().cool_down,
        Duration::from_millis(250)
    );
    assert_eq!(
        c.engine.engine_config("n", 8).request_timeout,
        Duration::from_secs(2)
    );
}

#[test]
fn the_dedup_window_and_the_cluster_ticket_secret_name_the_bad_key() {
    let c = Config::from_toml("[engine]\ndedup_window_secs = 60\n").unwrap();
    let err = c.validate().unwrap_err();
    assert_eq!(err.key, "engine.dedup_window_secs", "{err}");
    assert!(err.problem.contains("engine.dedup_ttl_secs"), "{err}");
    let c = Config::from_env(env(&[("BUBBLE_CLUSTER_TICKET_SECRET", "short")])).unwrap();
    let err = c.validate().unwrap_err();
    assert_eq!(err.key, "cluster.ticket_secret", "{err}");
    assert!(err.problem.contains("at least 32"), "{err}");
    let c = Config::from_env(env(&[("BUBBLE_CLUSTER_RPC_SECRET", "short")])).unwrap();
    let err = c.validate().unwrap_err();
    assert_eq!(err.key, "cluster.rpc_secret", "{err}");
    assert!(err.problem.contains("at least 32"), "{err}");
    let c = Config::from_env(env(&[(
        "BUBBLE_CLUSTER_TICKET_SECRET",
        "0123456789abcdef0123456789abcdef",
    )]))
    .unwrap();
    c.validate().unwrap();
}

#[test]
fn a_mistyped_value_is_named_with_where_it_came_from() {
    let err = Config::from_toml("[gate]\nmax_connections = \"lots\"\n").unwrap_err();
    assert_eq!(err.key, "gate.max_connections", "{err}");
    let err =
        Config::from_toml_and_env("", env(&[("BUBBLE_GATE_PUSH_QUEUE", "many")])).unwrap_err();
    assert_eq!(err.key, "gate.push_queue");
    assert!(err.problem.contains("BUBBLE_GATE_PUSH_QUEUE"), "{err}");
}

#[test]
fn the_sqlite_section_tunes_the_embedded_store_and_names_a_bad_key() {
    let c = Config::from_toml(
        "data_dir = \"/srv/bubble\"\n[store.sqlite]\nmax_batch = 1024\nqueue_depth = 8192\nsynchronous = \"normal\"\n",
    )
    .unwrap();
    c.validate().unwrap();
    let s = c.sqlite();
    assert_eq!(s.path, PathBuf::from("/srv/bubble/bubble.db"));
    assert_eq!(s.max_batch, 1024);
    assert_eq!(s.synchronous, bubble_store_sqlite::Synchronous::Normal);

    let c = Config::from_toml("[store.sqlite]\npath = \"/tmp/x.db\"\n").unwrap();
    assert_eq!(c.sqlite().path, PathBuf::from("/tmp/x.db"));

    let c = Config::from_toml("[store.sqlite]\nmax_batch = 0\n").unwrap();
    let err = c.validate().unwrap_err();
    assert_eq!(err.key, "store.sqlite.max_batch");

    let err = Config::from_toml_and_env("", env(&[("BUBBLE_STORE_SQLITE_SYNCHRONOUS", "off")]))
        .unwrap_err();
    assert_eq!(err.key, "store.sqlite.synchronous");
}

#[test]
fn environment_variables_override_the_file_and_set_overrides_both() {
    let vars = env(&[
        ("BUBBLE_GATE_TCP", "127.0.0.1:2"),
        ("BUBBLE_STORE_KIND", "memory"),
        ("BUBBLE_GATE_MAX_IN_FLIGHT", "8"),
        ("BUBBLE_STORE_SQLITE_BUSY_TIMEOUT_MS", "250"),
        ("PATH", "/bin"),
        // Other tools' variables are theirs.
        ("BUBBLE_LOG", "debug"),
        ("BUBBLE_E2E_BACKENDS", "scale-out"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bubble.toml");
    std::fs::write(
        &file,
        "[gate]\ntcp = \"127.0.0.1:1\"\nws = \"127.0.0.1:3\"\n",
    )
    .unwrap();
    let c = load(Some(&file), vars.clone(), &[]).unwrap();
    assert_eq!(
        c.gate.tcp, "127.0.0.1:2",
        "the environment wins over the file"
    );
    assert_eq!(c.gate.ws, "127.0.0.1:3", "the file wins over the defaults");
    assert_eq!(c.store.kind, StoreKind::Memory);
    assert_eq!(c.gate.max_in_flight, 8);
    assert_eq!(c.store.sqlite.busy_timeout_ms, 250);
    let c = load(Some(&file), vars, &["gate.tcp=127.0.0.1:4".to_string()]).unwrap();
    assert_eq!(c.gate.tcp, "127.0.0.1:4", "--set wins over the environment");
}

#[test]
fn text_that_looks_like_a_number_stays_text() {
    let c = Config::from_toml_and_env(
        "",
        env(&[
            ("BUBBLE_NODE_ID", "7"),
            ("BUBBLE_HTTP_ADMIN_SECRET", "0123456789"),
        ]),
    )
    .unwrap();
    assert_eq!(c.node_id, "7");
    assert_eq!(c.http.admin_secret, "0123456789");
}

#[test]
fn a_misspelt_variable_under_a_section_is_refused_not_ignored() {
    let err = Config::from_toml_and_env("", env(&[("BUBBLE_GATE_MAX_INFLIGHT", "8")])).unwrap_err();
    assert_eq!(err.key, "gate");
    assert!(err.problem.contains("BUBBLE_GATE_MAX_INFLIGHT"), "{err}");
    let err = load(None, Vec::new(), &["gate.nope=1".to_string()]).unwrap_err();
    assert_eq!(err.key, "gate.nope");
}

#[test]
fn a_cluster_needs_shared_presence_and_discovery() {
    let c = Config::from_toml("[cluster]\nrpc = \"127.0.0.1:7790\"\n").unwrap();
    let err = c.validate().unwrap_err();
    assert!(
        err.key == "presence.kind" || err.key == "cluster.rpc",
        "{err}"
    );
}

#[test]
fn secrets_and_passwords_stay_out_of_debug_output() {
    let mut c = Config::default();
    c.http.admin_secret = "s3cr3t".into();
    c.cluster.ticket_secret = "t1ck3t-s3cr3t".into();
    c.cluster.rpc_secret = "rpc-s3cr3t".into();
    let shown = format!("{c:?}");
    for secret in ["s3cr3t", "t1ck3t-s3cr3t", "rpc-s3cr3t"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn the_web_chat_is_served_by_default_only_beside_the_development_app() {
    assert!(
        Config::default().serves_web_chat(),
        "dev_app \"demo\" runs by default"
    );
    let no_dev_app = Config::from_toml_and_env("", env(&[("BUBBLE_DEV_APP", "")])).unwrap();
    assert!(!no_dev_app.serves_web_chat());
    let on =
        Config::from_toml_and_env("dev_app = \"\"\n[http]\nweb_chat = \"on\"\n", env(&[])).unwrap();
    assert!(
        on.serves_web_chat(),
        "on serves it without a development app"
    );
    let off = Config::from_toml_and_env("", env(&[("BUBBLE_HTTP_WEB_CHAT", "off")])).unwrap();
    assert!(!off.serves_web_chat(), "off wins over the development app");
    let err = Config::from_toml_and_env("", env(&[("BUBBLE_HTTP_WEB_CHAT", "yes")])).unwrap_err();
    assert_eq!(err.key, "http.web_chat", "{err}");
    assert!(
        err.problem.contains("auto"),
        "the problem lists the words it takes: {err}"
    );
}

/// A value for `key` of `shape` that differs from `default`, valid for
/// the key's type (the few keys that take one of a set of words are named).
fn sample(key: &str, shape: Shape, default: &Value) -> Value {
    let word = |w: &str| json!(w);
    match key {
        "store.kind" => return word("memory"),
        "cache.kind" | "presence.kind" => return word("redis"),
        "search.kind" => return word("off"),
        "discovery.kind" => return word("etcd"),
        "store.sqlite.synchronous" => return word("normal"),
        "search.tantivy.tokenizer" => return word("jieba"),
        "http.web_chat" => return word("off"),
        "media.kind" => return word("s3"),
        _ => {}
    }
    match shape {
        Shape::Text => json!(format!("sample-{}", key.replace('.', "-"))),
        Shape::Number => json!(default.as_u64().unwrap_or(0) + 7),
        Shape::Flag => json!(!default.as_bool().unwrap_or(false)),
        Shape::List => json!(["sample-a", "sample-b"]),
    }
}

fn as_env_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A TOML file that sets only `key` to `value`.
fn toml_with(key: &str, value: &Value) -> String {
    let mut leaf: toml::Value = serde_json::from_value(value.clone()).unwrap();
    for part in key.rsplit('.') {
        let mut table = toml::Table::new();
        table.insert(part.to_owned(), leaf);
        leaf = toml::Value::Table(table);
    }
    toml::to_string(&leaf).unwrap()
}

#[test]
fn every_key_of_the_config_is_settable_from_the_file_and_through_the_environment() {
    let keys = config_keys();
    assert!(keys.len() > 40, "found only {} keys", keys.len());
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let pointer = |key: &str| format!("/{}", key.replace('.', "/"));
    let mut vars: Vec<&str> = keys.iter().map(|k| k.var.as_str()).collect();
    vars.sort();
    vars.dedup();
    assert_eq!(vars.len(), keys.len(), "two keys share a variable name");
    for k in &keys {
        assert_eq!(
            k.var,
            format!("BUBBLE_{}", k.key.replace('.', "_").to_uppercase())
        );
        let default = defaults
            .pointer(&pointer(&k.key))
            .cloned()
            .unwrap_or(Value::Null);
        let want = sample(&k.key, k.shape, &default);
        assert_ne!(
            want, default,
            "{}: the sample must differ from the default",
            k.key
        );
        let c = Config::from_toml_and_env("", vec![(k.var.clone(), as_env_text(&want))])
            .unwrap_or_else(|e| panic!("{} from {}: {e}", k.key, k.var));
        let got = serde_json::to_value(&c).unwrap();
        assert_eq!(
            got.pointer(&pointer(&k.key)),
            Some(&want),
            "{} set through {}",
            k.key,
            k.var
        );
        let file = toml_with(&k.key, &want);
        let c = Config::from_toml(&file).unwrap_or_else(|e| panic!("{} from {file:?}: {e}", k.key));
        let got = serde_json::to_value(&c).unwrap();
        assert_eq!(
            got.pointer(&pointer(&k.key)),
            Some(&want),
            "{} set in a file",
            k.key
        );
    }
}

#[test]
fn a_list_takes_commas_or_brackets() {
    for text in ["a:1,b:2", "[a:1, b:2]", "[\"a:1\", \"b:2\"]"] {
        let list = super::layers::config_keys()
            .into_iter()
            .find(|k| k.shape == Shape::List);
        let Some(list) = list else {
            return; // no list-valued key in this build
        };
        let c = Config::from_toml_and_env("", vec![(list.var.clone(), text.to_string())]).unwrap();
        let got = serde_json::to_value(&c).unwrap();
        let ptr = format!("/{}", list.key.replace('.', "/"));
        assert_eq!(got.pointer(&ptr), Some(&json!(["a:1", "b:2"])), "{text}");
    }
}

#[test]
fn the_configuration_reference_lists_every_key_and_its_variable() {
    let doc = include_str!("../../../docs/configuration.md");
    for k in config_keys() {
        assert!(
            doc.contains(&format!("`{}`", k.key)) && doc.contains(&format!("`{}`", k.var)),
            "docs/configuration.md does not list {} ({})",
            k.key,
            k.var
        );
    }
}

#[cfg(feature = "redis")]
#[test]
fn a_redis_sentinel_section_reaches_the_adapter_and_its_bad_keys_are_named() {
    let file = "[cache]\nkind = \"redis\"\n[cache.redis]\n\
                sentinels = [\"redis://10.0.0.1:26379\", \"redis://10.0.0.2:26379\"]\n\
                master_name = \"mymaster\"\nwait_replicas = 1\n";
    let c = Config::from_toml(file).unwrap();
    c.validate().unwrap();
    assert_eq!(c.cache.redis.sentinels.len(), 2);
    assert_eq!(c.cache.redis.master_name, "mymaster");
    assert_eq!(c.cache.redis.wait_replicas, 1);

    let c = Config::from_toml_and_env(
        "[presence]\nkind = \"redis\"\n",
        env(&[(
            "BUBBLE_PRESENCE_REDIS_SENTINELS",
            "redis://10.0.0.1:26379,redis://10.0.0.2:26379",
        )]),
    )
    .unwrap();
    assert_eq!(c.presence.redis.sentinels.len(), 2);
    let err = c.validate().unwrap_err();
    assert_eq!(err.key, "presence.redis.master_name", "{err}");
}

#[test]
fn a_router_entry_sends_an_apps_command_range_to_a_service() {
    let c = Config::from_toml(
        "[[router]]\napp = \"shop\"\ncommands = \"0x8000-0x80ff\"\naddress = \"http://127.0.0.1:50051\"\n\
         [[router]]\napp = \"*\"\ncommands = \"0x8100\"\naddress = \"http://orders:7000\"\n\
         timeout_ms = 500\nidempotent = true\n\
         [[router]]\napp = \"shop\"\ncommands = \"33280-33535\"\naddress = \"http://chat-bot:1\"\n",
    )
    .unwrap();
    c.validate().unwrap();
    let [shop, every_app, decimal] = &c.router[..] else {
        panic!("three entries: {:?}", c.router);
    };
    assert_eq!(shop.app_id(), Some(bubble_core::AppId::new("shop")));
    assert_eq!(shop.command_range().unwrap(), 0x8000..=0x80ff);
    assert_eq!(
        shop.timeout(),
        Duration::from_millis(3000),
        "the default deadline"
    );
    assert!(!shop.idempotent, "never sent twice unless marked");
    assert_eq!(every_app.app_id(), None);
    assert_eq!(every_app.command_range().unwrap(), 0x8100..=0x8100);
    assert_eq!(every_app.timeout_ms, 500);
    assert!(every_app.idempotent);
    assert_eq!(decimal.command_range().unwrap(), 0x8200..=0x82ff);
}

#[test]
fn router_entries_live_in_the_file_only_and_are_no_key_of_their_own() {
    assert!(config_keys().iter().all(|k| !k.key.starts_with("router")));
    let defaults = serde_json::to_value(Config::default()).unwrap();
    assert!(defaults.get("router").is_none(), "left out when empty");
}

#[test]
fn a_bad_router_entry_is_named_by_its_index_and_key() {
    let entry = |body: &str| {
        format!(
            "[[router]]\napp = \"shop\"\ncommands = \"0x8000\"\naddress = \"http://a:1\"\n\
             [[router]]\n{body}\n"
        )
    };
    let refused = |body: &str| {
        Config::from_toml(&entry(body))
            .unwrap()
            .validate()
            .unwrap_err()
    };
    let err = refused("app = \"shop\"\ncommands = \"0x10-0x20\"\naddress = \"http://a:2\"");
    assert_eq!(err.key, "router[1].commands", "{err}");
    assert!(
        err.problem
            .starts_with("0x10-0x20 is outside the business range 0x8000-0xffff"),
        "{err}"
    );
    for commands in ["0x8000-0x10000", "0x80ff-0x8000", "orders", "0x8000-"] {
        let err = refused(&format!(
            "app = \"shop\"\ncommands = \"{commands}\"\naddress = \"http://a:2\""
        ));
        assert_eq!(err.key, "router[1].commands", "{commands}: {err}");
    }
    let err = refused("app = \"shop\"\ncommands = \"0x8001\"\naddress = \"127.0.0.1:50051\"");
    assert_eq!(err.key, "router[1].address", "{err}");
    assert!(err.problem.contains("http://"), "{err}");
    let err =
        refused("app = \"shop\"\ncommands = \"0x8001\"\naddress = \"http://a:2\"\ntimeout_ms = 0");
    assert_eq!(err.key, "router[1].timeout_ms", "{err}");
    let err = refused("app = \"\"\ncommands = \"0x8001\"\naddress = \"http://a:2\"");
    assert_eq!(err.key, "router[1].app", "{err}");
    assert!(
        err.problem.contains("\"*\""),
        "says how to mean every app: {err}"
    );

    let err = Config::from_toml(&entry(
        "app = \"shop\"\ncommands = \"0x8001\"\naddress = \"http://a:2\"\nretries = 3",
    ))
    .unwrap_err();
    assert!(err.key.starts_with("router"), "{err}");
    assert_eq!(err.key, "router[1].retries", "{err}");
    assert!(err.problem.contains("retries"), "{err}");
    let err = Config::from_toml(&entry("app = \"shop\"\ncommands = \"0x8001\"")).unwrap_err();
    assert_eq!(err.key, "router[1]", "{err}");
    assert!(err.problem.contains("address"), "{err}");
}

#[test]
fn overlapping_ranges_of_one_app_are_refused_and_other_apps_may_share_them() {
    let two = |second_app: &str, second: &str| {
        Config::from_toml(&format!(
            "[[router]]\napp = \"shop\"\ncommands = \"0x8000-0x80ff\"\naddress = \"http://a:1\"\n\
             [[router]]\napp = \"{second_app}\"\ncommands = \"{second}\"\naddress = \"http://b:1\"\n"
        ))
        .unwrap()
        .validate()
    };
    let err = two("shop", "0x80f0-0x8100").unwrap_err();
    assert_eq!(err.key, "router[1].commands", "{err}");
    assert!(err.problem.contains("overlaps router[0].commands"), "{err}");
    two("shop", "0x8100-0x81ff").unwrap();
    two("game", "0x8000-0x80ff").unwrap();
    two("*", "0x8000-0x80ff").expect("an app's own entry wins over the one for every app");
}

#[test]
fn the_media_store_is_fs_by_default_and_a_bad_media_key_is_named() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.media.kind, bubble_media::MediaKind::Fs);
    c.validate().unwrap();
    let file = "[media]\nkind = \"s3\"\n[media.s3]\nbucket = \"bubble-media\"\n\
                access_key_id = \"AKIA\"\n";
    let err = Config::from_toml(file).unwrap().validate().unwrap_err();
    assert_eq!(err.key, "media.s3.secret_access_key", "{err}");
    let err = Config::from_toml_and_env("", env(&[("BUBBLE_MEDIA_UPLOAD_EXPIRES_SECS", "0")]))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "media.upload_expires_secs", "{err}");
    let err = Config::from_toml("[media]\nkind = \"ftp\"\n").unwrap_err();
    assert_eq!(err.key, "media.kind", "{err}");
    let err = Config::from_toml("[media.s3]\nbukket = \"x\"\n").unwrap_err();
    assert!(err.key.starts_with("media.s3"), "{err}");
}

#[test]
fn the_fs_media_store_needs_the_http_listener() {
    let err = Config::from_toml("[http]\naddr = \"\"\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "media.kind", "{err}");
    assert!(err.problem.contains("http.addr"), "{err}");
    Config::from_toml("[http]\naddr = \"\"\n[media]\nkind = \"off\"\n")
        .unwrap()
        .validate()
        .unwrap();
}

#[test]
fn the_s3_secret_access_key_stays_out_of_debug_output() {
    let mut c = Config::default();
    c.media.s3.secret_access_key = "s3-s3cr3t-access-key".into();
    assert!(!format!("{c:?}").contains("s3-s3cr3t-access-key"));
}
