//! "search query": latency of one search over an index of 50,000 chat
//! messages (50 owners with 1,000 each), on disk, through the async port
//! (so the `spawn_blocking` hop is included).
//!
//! "index new messages": one `index` call of 100 new messages (dated after
//! everything committed, as a live server's are) into an index of 50,000
//! committed in 25 flushes, i.e. many segments; every tenth call is
//! followed by a flush, which is not timed; and 1,000 new messages
//! indexed and committed (`flush`: the segment's term dictionaries built,
//! its files written and synced).
//!
//! `cargo bench -p bubble-search-tantivy --bench search`

use std::time::{Duration, Instant};

use bubble_core::AdapterConfig;
use bubble_core::ports::{SearchDoc, SearchIndex, SearchQuery};
use bubble_core::{AppId, Conversation, MsgId, UserId};
use bubble_search_tantivy::{TantivyConfig, TantivySearch};
use criterion::{Criterion, criterion_group, criterion_main};

const OWNERS: usize = 50;
const PER_OWNER: usize = 1_000;

const WORDS: &[&str] = &[
    "大家好",
    "今天",
    "明天下午",
    "开会",
    "会议室",
    "项目进度",
    "报告",
    "周末",
    "爬山",
    "吃饭",
    "火锅",
    "天气很好",
    "下雨了",
    "快递",
    "地铁",
    "上班",
    "加班",
    "老板",
    "客户",
    "合同",
    "发票",
    "报销",
    "出差",
    "机票",
    "酒店",
    "北京",
    "上海",
    "深圳",
    "生日快乐",
    "哈哈哈",
    "没问题",
    "好的",
    "收到",
    "谢谢",
    "辛苦了",
    "晚安",
    "早上好",
    "电脑坏了",
    "手机",
    "密码",
    "meeting",
    "report",
    "deadline",
    "lunch",
    "coffee",
    "review",
    "deploy",
    "release",
    "bug",
    "ticket",
    "invoice",
    "budget",
    "weekend",
    "hiking",
    "thanks",
    "ok",
    "tomorrow",
    "today",
];

/// A small deterministic generator (no dependency, same index every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn docs() -> Vec<SearchDoc> {
    let app = AppId::new("bench");
    let mut rng = Lcg(42);
    let mut out = Vec::with_capacity(OWNERS * PER_OWNER);
    for o in 0..OWNERS {
        let owner = UserId::new(format!("user{o}"));
        for i in 0..PER_OWNER {
            let peer = UserId::new(format!("user{}", rng.next(OWNERS)));
            let n = 3 + rng.next(6);
            let text: Vec<&str> = (0..n).map(|_| WORDS[rng.next(WORDS.len())]).collect();
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(o as u64).to_be_bytes());
            id[8..].copy_from_slice(&(i as u64).to_be_bytes());
            out.push(SearchDoc {
                app: app.clone(),
                owners: vec![owner.clone()],
                viewer: owner.clone(),
                server_msg_id: MsgId(id),
                conversation: Conversation::direct(&peer),
                sender: peer,
                server_time: 1_700_000_000_000 + (i as i64) * 60_000,
                text: text.join(if rng.next(2) == 0 { "，" } else { " " }),
            });
        }
    }
    out
}

fn query(words: &str) -> SearchQuery {
    SearchQuery {
        app: AppId::new("bench"),
        owner: UserId::new("user7"),
        words: words.to_owned(),
        conversation: None,
        from_time: None,
        to_time: None,
        offset: 0,
        limit: 20,
    }
}

/// A runtime and an empty index on disk in a directory of its own.
fn on_disk() -> (tokio::runtime::Runtime, tempfile::TempDir, TantivySearch) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let index = rt
        .block_on(TantivyConfig::new(dir.path()).connect())
        .unwrap();
    (rt, dir, index)
}

fn bench(c: &mut Criterion) {
    let (rt, dir, index) = on_disk();
    let docs = docs();
    let started = Instant::now();
    rt.block_on(async {
        for batch in docs.chunks(500) {
            index.index(batch).await.unwrap();
        }
        index.flush().await.unwrap();
    });
    let bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "indexed {} messages in {:.2?} (500 per index call, one flush); {:.1} MB on disk",
        docs.len(),
        started.elapsed(),
        bytes as f64 / 1e6
    );

    let mut g = c.benchmark_group("search query");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let cases: Vec<(&str, SearchQuery)> = vec![
        ("chinese word", query("会议")),
        ("chinese phrase", query("明天下午")),
        ("single character", query("好")),
        ("english prefix", query("meet")),
        ("two words", query("报告 deadline")),
        ("word in one conversation and a time range", {
            let mut q = query("好");
            q.conversation = Some(Conversation::direct(&UserId::new("user3")));
            q.from_time = Some(1_700_000_000_000);
            q.to_time = Some(1_700_000_000_000 + 500 * 60_000);
            q
        }),
        ("page 11 (offset 200)", {
            let mut q = query("好");
            q.offset = 200;
            q
        }),
    ];
    for (name, q) in &cases {
        let total = rt.block_on(index.search(q)).unwrap().total;
        eprintln!("{name}: {total} matches for user7");
        g.bench_function(*name, |b| b.iter(|| rt.block_on(index.search(q)).unwrap()));
    }
    g.finish();
}

/// `n` new messages after `docs` (same owners and words, later ids and
/// times), the `round`th such batch.
fn newer(docs: &[SearchDoc], round: u64, n: usize) -> Vec<SearchDoc> {
    let base = 1_800_000_000_000 + round as i64 * n as i64;
    docs.iter()
        .take(n)
        .enumerate()
        .map(|(i, d)| {
            let mut d = d.clone();
            let mut id = [0xffu8; 16];
            id[8..].copy_from_slice(&(round * n as u64 + i as u64).to_be_bytes());
            d.server_msg_id = MsgId(id);
            d.server_time = base + i as i64;
            d
        })
        .collect()
}

fn bench_index(c: &mut Criterion) {
    let (rt, _dir, index) = on_disk();
    let docs = docs();
    rt.block_on(async {
        for batch in docs.chunks(2_000) {
            index.index(batch).await.unwrap();
            index.flush().await.unwrap();
        }
    });
    let mut g = c.benchmark_group("index new messages");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    let mut round = 0u64;
    g.bench_function("100 per call, 50,000 committed", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let batch = newer(&docs, round, 100);
                let started = Instant::now();
                rt.block_on(index.index(&batch)).unwrap();
                spent += started.elapsed();
                if round.is_multiple_of(10) {
                    rt.block_on(index.flush()).unwrap();
                }
            }
            spent
        })
    });
    g.bench_function("1,000 indexed and committed", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                round += 1;
                let batch = newer(&docs, round, 1_000);
                rt.block_on(async {
                    index.index(&batch).await.unwrap();
                    index.flush().await.unwrap();
                });
            }
            started.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_index);
criterion_main!(benches);
