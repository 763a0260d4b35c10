//! The layers, lowest first: defaults, the TOML file, `BUBBLE_*`
//! environment variables, `--set key=value`. figment merges them and
//! extracts the [`Config`], naming the key and the layer of any bad value.
//!
//! The keys are those of the defaults, so the environment rule covers
//! every key there is, adapters' sections included: `BUBBLE_` + the dotted
//! key in capitals with `.` as `_`. A value is read as the type the key
//! has (text stays text even when it looks like a number: a node id `7`,
//! a secret of digits).

use std::path::Path;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{Config, ConfigError};

/// One key of the configuration, and the variable that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    /// Dotted, as in the file: `store.sqlite.max_batch`.
    pub key: String,
    /// Its environment variable: `BUBBLE_STORE_SQLITE_MAX_BATCH`.
    pub var: String,
    /// What kind of value it takes.
    pub shape: Shape,
}

/// What a key's value is, as read from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Text, taken as it is.
    Text,
    /// A number.
    Number,
    /// `true` or `false`.
    Flag,
    /// A list: `a,b` or `[a, b]`.
    List,
}

/// Every key of this build's configuration, in order.
pub fn config_keys() -> Vec<ConfigKey> {
    let defaults = Value::serialize(Config::default()).expect("the defaults serialize");
    let mut keys = Vec::new();
    if let Value::Dict(_, dict) = defaults {
        walk("", &dict, &mut keys);
    }
    keys
}

fn walk(prefix: &str, dict: &Dict, out: &mut Vec<ConfigKey>) {
    for (name, value) in dict {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let shape = match value {
            Value::Dict(_, inner) => {
                walk(&key, inner, out);
                continue;
            }
            Value::Array(..) => Shape::List,
            Value::Num(..) => Shape::Number,
            Value::Bool(..) => Shape::Flag,
            // Strings, characters, and options that are unset by default.
            _ => Shape::Text,
        };
        out.push(ConfigKey {
            var: format!("BUBBLE_{}", key.replace('.', "_").to_ascii_uppercase()),
            key,
            shape,
        });
    }
}

/// One layer: a name for errors ("environment variable `BUBBLE_GATE_TCP`")
/// and what it sets.
struct Layer {
    name: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

impl Layer {
    /// `key` set to `text`, read as `shape`.
    fn one(name: String, key: &str, shape: Shape, text: &str) -> Layer {
        let value = match figment::util::nest(key, read(shape, text)) {
            Value::Dict(_, dict) => dict,
            _ => unreachable!("a dotted key nests into a dictionary"),
        };
        Layer { name, dict: value }
    }
}

/// Reads a text as a value of `shape`. What does not read as that shape
/// stays text, so extraction names the key and says what was expected.
fn read(shape: Shape, text: &str) -> Value {
    let trimmed = text.trim();
    match shape {
        Shape::Text => Value::from(text.to_owned()),
        Shape::Number => {
            if let Ok(n) = trimmed.parse::<u64>() {
                Value::from(n)
            } else if let Ok(n) = trimmed.parse::<i64>() {
                Value::from(n)
            } else if let Ok(n) = trimmed.parse::<f64>() {
                Value::from(n)
            } else {
                Value::from(text.to_owned())
            }
        }
        Shape::Flag => match trimmed {
            "true" => Value::from(true),
            "false" => Value::from(false),
            _ => Value::from(text.to_owned()),
        },
        Shape::List => {
            let inner = trimmed
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(trimmed);
            let items: Vec<Value> = inner
                .split(',')
                .map(|item| item.trim().trim_matches('"'))
                .filter(|item| !item.is_empty())
                .map(|item| Value::from(item.to_owned()))
                .collect();
            Value::from(items)
        }
    }
}

/// Keys that moved when each backend got its own section, and where to.
const MOVED: &[(&str, &str)] = &[
    ("store.url", "store.mysql.url (or store.sqlite.path)"),
    ("cache.url", "cache.redis.url"),
    ("cache.prefix", "cache.redis.key_prefix"),
    ("presence.url", "presence.redis.url"),
    ("presence.prefix", "presence.redis.key_prefix"),
    (
        "search.url",
        "search.elasticsearch.urls (or search.tantivy.path)",
    ),
    ("discovery.endpoints", "discovery.etcd.endpoints"),
    ("discovery.prefix", "discovery.etcd.prefix"),
];

fn config_error(e: figment::Error) -> ConfigError {
    // An entry of a list of tables is named like `router[1].address`.
    let mut key = String::new();
    for part in &e.path {
        if part.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    let mut problem = e.kind.to_string();
    if let Some(source) = e.metadata.as_ref().map(|m| m.name.to_string()) {
        problem = format!("{problem} (in {source})");
    }
    if let Some((_, to)) = MOVED.iter().find(|(from, _)| *from == key) {
        problem = format!("{problem}; this key is now {to}");
    }
    ConfigError::new(if key.is_empty() { "<config>" } else { &key }, problem)
}

fn file_layer(name: String, text: &str) -> Result<Layer, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::new("--config", format!("{name}: {e}")))?;
    match Value::serialize(table) {
        Ok(Value::Dict(_, dict)) => Ok(Layer { name, dict }),
        _ => Err(ConfigError::new(
            "--config",
            format!("{name} is not a table of keys"),
        )),
    }
}

/// The layers for the `BUBBLE_*` variables among `vars`. A variable under
/// a section of the configuration that names no key is refused (a typo
/// would otherwise be ignored); other `BUBBLE_*` variables belong to other
/// tools and are left alone.
fn env_layers(
    keys: &[ConfigKey],
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Layer>, ConfigError> {
    let sections: Vec<String> = keys
        .iter()
        .filter_map(|k| k.key.split_once('.').map(|(s, _)| s.to_ascii_uppercase()))
        .collect();
    let mut layers = Vec::new();
    for (var, text) in vars {
        let Some(rest) = var.strip_prefix("BUBBLE_") else {
            continue;
        };
        match keys.iter().find(|k| k.var == var) {
            Some(k) => layers.push(Layer::one(
                format!("environment variable `{var}`"),
                &k.key,
                k.shape,
                &text,
            )),
            None => {
                let section = rest.split('_').next().unwrap_or("");
                if sections.iter().any(|s| s == section) {
                    return Err(ConfigError::new(
                        &section.to_ascii_lowercase(),
                        format!(
                            "the environment variable {var} names no config key; the rule is BUBBLE_ + the dotted key in capitals with `.` as `_` (see docs/configuration.md)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(layers)
}

fn set_layers(keys: &[ConfigKey], sets: &[String]) -> Result<Vec<Layer>, ConfigError> {
    sets.iter()
        .map(|set| {
            let (key, text) = set
                .split_once('=')
                .ok_or_else(|| ConfigError::new("--set", format!("{set:?} is not KEY=VALUE")))?;
            let key = key.trim();
            let k = keys.iter().find(|k| k.key == key).ok_or_else(|| {
                ConfigError::new(key, format!("--set {set:?} names no config key"))
            })?;
            Ok(Layer::one(format!("--set {key}"), &k.key, k.shape, text))
        })
        .collect()
}

fn extract(layers: Vec<Layer>) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(figment::providers::Serialized::defaults(Config::default()));
    for layer in layers {
        figment = figment.merge(layer);
    }
    figment.extract().map_err(config_error)
}

/// The defaults, the file, the environment and the `--set`s, not yet validated.
pub(super) fn load(
    file: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
    sets: &[String],
) -> Result<Config, ConfigError> {
    let keys = config_keys();
    let mut layers = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
        })?;
        layers.push(file_layer(path.display().to_string(), &text)?);
    }
    layers.extend(env_layers(&keys, vars)?);
    layers.extend(set_layers(&keys, sets)?);
    extract(layers)
}

pub(super) fn from_toml(text: &str) -> Result<Config, ConfigError> {
    extract(vec![file_layer("the config file".into(), text)?])
}

pub(super) fn from_toml_and_env(
    text: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let keys = config_keys();
    let mut layers = vec![file_layer("the config file".into(), text)?];
    layers.extend(env_layers(&keys, vars)?);
    extract(layers)
}
