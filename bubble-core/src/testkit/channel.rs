//! Conformance checks for [`ChannelLog`].

use std::collections::HashSet;
use std::sync::Arc;

use super::checks;
use super::fixtures::{OLD, channel_message};
use crate::ports::{ChannelAppend, ChannelLog};
use crate::types::*;

/// Runs every channel-log check against `log`.
pub async fn channel_log(log: Arc<dyn ChannelLog>) {
    super::run_checks("ChannelLog", log, CHECKS).await;
}

const CHECKS: &[super::Check<dyn ChannelLog>] = checks![dyn ChannelLog;
    appends_get_increasing_seqs_with_prev_seq,
    seqs_strictly_increase_under_concurrent_appends,
    range_pages_are_gap_free,
    history_pages_the_log_newest_first_without_gaps,
    a_client_msg_id_is_accepted_once_per_group,
    get_finds_a_message_by_id,
    an_edit_changes_the_message_in_place,
    count_messages_after_counts_only_messages,
    read_seq_only_moves_forward,
    prune_sent_forgets_old_client_msg_ids_oldest_first,
    channels_are_isolated_between_apps_and_groups,
    expire_deletes_old_entries_of_every_group_and_keeps_the_seqs,
    expire_takes_the_oldest_entries_first_in_bounded_batches,
];

/// A message to `group` the server took at `at`.
fn sent_at(group: &str, text: &str, at: i64) -> ChannelEntry {
    let mut e = channel_message(group, "a", text, "");
    e.server_time = at;
    e.create_time = at;
    e
}

async fn expire_deletes_old_entries_of_every_group_and_keeps_the_seqs(
    s: Arc<dyn ChannelLog>,
    app: AppId,
) {
    if super::unsupported("ChannelLog", "expire", &s.expire(&app, OLD + 100, 10).await) {
        return;
    }
    let other = super::fresh_app();
    let (g1, g2) = (GroupId::new("sg-x1"), GroupId::new("sg-x2"));
    let mut old_ids = HashSet::new();
    for (i, group) in ["sg-x1", "sg-x2", "sg-x1"].into_iter().enumerate() {
        let e = sent_at(group, "old", OLD + i as i64);
        old_ids.insert(e.server_msg_id);
        seq_of(s.append(&app, &e).await.unwrap());
        seq_of(s.append(&other, &e).await.unwrap());
    }
    let new = channel_message("sg-x1", "a", "new", "");
    seq_of(s.append(&app, &new).await.unwrap());

    let mut expired = HashSet::new();
    loop {
        let batch = s.expire(&app, OLD + 100, 10).await.unwrap();
        expired.extend(batch.messages);
        if !batch.more {
            break;
        }
    }
    assert_eq!(expired, old_ids, "each old entry, once, and only those");
    let page = s.range(&app, &g1, 0, 10).await.unwrap();
    let held: Vec<(u64, MsgId)> = page
        .entries
        .iter()
        .map(|e| (e.seq, e.server_msg_id))
        .collect();
    assert_eq!(
        held,
        [(3, new.server_msg_id)],
        "only the new entry of sg-x1"
    );
    assert!(s.range(&app, &g2, 0, 10).await.unwrap().entries.is_empty());
    assert_eq!(s.last_seq(&app, &g2).await.unwrap(), 1, "sg-x2's seq stays");
    assert_eq!(s.count_messages_after(&app, &g1, 0).await.unwrap(), 1);
    let first_old = old_ids.iter().next().unwrap();
    assert_eq!(s.get(&app, &g1, first_old).await.unwrap(), None);
    assert_eq!(
        seq_of(
            s.append(&app, &channel_message("sg-x2", "a", "again", ""))
                .await
                .unwrap()
        ),
        (2, 1),
        "the next seq follows the expired ones"
    );
    assert_eq!(
        s.range(&other, &g1, 0, 10).await.unwrap().entries.len(),
        2,
        "another app's log is untouched"
    );
}

async fn expire_takes_the_oldest_entries_first_in_bounded_batches(
    s: Arc<dyn ChannelLog>,
    app: AppId,
) {
    if super::unsupported("ChannelLog", "expire", &s.expire(&app, OLD + 100, 10).await) {
        return;
    }
    let mut sent = Vec::new();
    for i in 0..5 {
        // Alternating groups: the oldest are taken across them.
        let group = if i % 2 == 0 { "sg-y1" } else { "sg-y2" };
        let e = sent_at(group, &format!("m{i}"), OLD + i);
        sent.push(e.server_msg_id);
        seq_of(s.append(&app, &e).await.unwrap());
    }
    let mut taken = Vec::new();
    for _ in 0..10 {
        let batch = s.expire(&app, OLD + 100, 2).await.unwrap();
        assert!(batch.messages.len() <= 2, "at most `limit`: {batch:?}");
        let mut got = batch.messages.clone();
        got.sort();
        let mut want = sent[taken.len()..taken.len() + got.len()].to_vec();
        want.sort();
        assert_eq!(got, want, "oldest first");
        taken.extend(batch.messages);
        if !batch.more {
            break;
        }
    }
    assert_eq!(taken.len(), 5, "every old entry, once");
}

async fn an_edit_changes_the_message_in_place(s: Arc<dyn ChannelLog>, app: AppId) {
    let g = GroupId::new("sg");
    let original = channel_message("sg", "a", "helo", "");
    s.append(&app, &original).await.unwrap();
    s.append(&app, &channel_message("sg", "b", "other", ""))
        .await
        .unwrap();
    let meta = EntryMeta::of(&bubble_proto::pb::EntryMeta {
        edited_at: 1_800_000_000_000,
        ..Default::default()
    });
    let edit = ChannelEntry {
        kind: EntryKind::Edit,
        content: Content::text("hello"),
        meta: meta.clone(),
        client_msg_id: String::new(),
        ..original.clone()
    };
    s.append(&app, &edit).await.unwrap();
    let got = s
        .get(&app, &g, &original.server_msg_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.kind, got.content.as_text(), &got.meta),
        (EntryKind::Message, Some("hello"), &meta),
        "get shows the edited message"
    );
    let page = s.range(&app, &g, 0, 10).await.unwrap();
    let texts: Vec<_> = page
        .entries
        .iter()
        .map(|e| (e.kind, e.content.as_text().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        texts,
        [
            (EntryKind::Message, "hello".to_owned()),
            (EntryKind::Message, "other".to_owned()),
            (EntryKind::Edit, "hello".to_owned()),
        ]
    );
    let history = s.range_before(&app, &g, 0, 10).await.unwrap();
    assert_eq!(history.entries[2].meta, meta, "history keeps the edit time");
}

fn seq_of(a: ChannelAppend) -> (u64, u64) {
    match a {
        ChannelAppend::Appended { seq, prev_seq } => (seq, prev_seq),
        ChannelAppend::Duplicate(r) => panic!("expected an append, got a duplicate of {r:?}"),
    }
}

async fn appends_get_increasing_seqs_with_prev_seq(s: Arc<dyn ChannelLog>, app: AppId) {
    let g = GroupId::new("sg");
    let (s1, p1) = seq_of(
        s.append(&app, &channel_message("sg", "a", "one", ""))
            .await
            .unwrap(),
    );
    let (s2, p2) = seq_of(
        s.append(&app, &channel_message("sg", "a", "two", ""))
            .await
            .unwrap(),
    );
    assert_eq!(p1, 0);
    assert_eq!(p2, s1);
    assert!(s2 > s1);
    assert_eq!(s.last_seq(&app, &g).await.unwrap(), s2);
    let page = s.range(&app, &g, 0, 10).await.unwrap();
    let want = channel_message("sg", "a", "one", "");
    let got = &page.entries[0];
    assert_eq!(
        (
            got.seq,
            got.kind,
            &got.sender,
            &got.sender_device,
            got.client_seq,
            &got.content
        ),
        (
            s1,
            want.kind,
            &want.sender,
            &want.sender_device,
            want.client_seq,
            &want.content
        ),
        "fields survive"
    );
}

async fn seqs_strictly_increase_under_concurrent_appends(s: Arc<dyn ChannelLog>, app: AppId) {
    let mut handles = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let e = channel_message("busy", &format!("u{t}"), &format!("{i}"), "");
                seqs.push(seq_of(s.append(&app, &e).await.unwrap()));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let distinct: HashSet<u64> = all.iter().map(|(s, _)| *s).collect();
    assert_eq!(distinct.len(), 160, "no seq given twice");
    all.sort();
    for w in all.windows(2) {
        assert_eq!(w[1].1, w[0].0, "prev_seq names the previous entry");
    }
}

async fn range_pages_are_gap_free(s: Arc<dyn ChannelLog>, app: AppId) {
    for i in 0..23 {
        s.append(&app, &channel_message("pg", "a", &format!("{i}"), ""))
            .await
            .unwrap();
    }
    let g = GroupId::new("pg");
    let mut after = 0;
    let mut texts = Vec::new();
    loop {
        let page = s.range(&app, &g, after, 5).await.unwrap();
        texts.extend(
            page.entries
                .iter()
                .map(|e| e.content.as_text().unwrap().to_owned()),
        );
        if !page.has_more {
            break;
        }
        after = page.entries.last().unwrap().seq;
    }
    assert_eq!(texts, (0..23).map(|i| i.to_string()).collect::<Vec<_>>());
}

async fn history_pages_the_log_newest_first_without_gaps(s: Arc<dyn ChannelLog>, app: AppId) {
    for i in 0..23 {
        s.append(&app, &channel_message("hg", "a", &format!("{i}"), ""))
            .await
            .unwrap();
        // Another group's entries never show in this one's history.
        s.append(&app, &channel_message("other", "a", "x", ""))
            .await
            .unwrap();
    }
    let g = GroupId::new("hg");
    let (mut before, mut texts, mut pages) = (0, Vec::new(), 0);
    loop {
        let page = s.range_before(&app, &g, before, 5).await.unwrap();
        pages += 1;
        assert!(page.entries.len() <= 5, "a page holds at most the limit");
        assert!(
            page.entries.windows(2).all(|w| w[0].seq > w[1].seq),
            "newest first"
        );
        texts.extend(
            page.entries
                .iter()
                .map(|e| e.content.as_text().unwrap().to_owned()),
        );
        if !page.has_more {
            break;
        }
        before = page.entries.last().unwrap().seq;
    }
    assert_eq!(pages, 5, "23 entries in pages of 5 take 5 pages");
    assert_eq!(
        texts,
        (0..23).rev().map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let empty = s
        .range_before(&app, &GroupId::new("nothing"), 0, 5)
        .await
        .unwrap();
    assert!(empty.entries.is_empty() && !empty.has_more);
}

async fn a_client_msg_id_is_accepted_once_per_group(s: Arc<dyn ChannelLog>, app: AppId) {
    let first = channel_message("dd", "a", "x", "cid");
    let (seq, _) = seq_of(s.append(&app, &first).await.unwrap());
    match s
        .append(&app, &channel_message("dd", "a", "x", "cid"))
        .await
        .unwrap()
    {
        ChannelAppend::Duplicate(r) => {
            assert_eq!(r.seq, seq);
            assert_eq!(r.server_msg_id, first.server_msg_id);
            assert!(r.duplicate);
        }
        other => panic!("a retry must not be appended again: {other:?}"),
    }
    seq_of(
        s.append(&app, &channel_message("dd", "b", "x", "cid"))
            .await
            .unwrap(),
    );
    seq_of(
        s.append(&app, &channel_message("other", "a", "x", "cid"))
            .await
            .unwrap(),
    );
    assert_eq!(
        s.range(&app, &GroupId::new("dd"), 0, 10)
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
}

async fn get_finds_a_message_by_id(s: Arc<dyn ChannelLog>, app: AppId) {
    let e = channel_message("gg", "a", "find", "");
    s.append(&app, &e).await.unwrap();
    let got = s
        .get(&app, &GroupId::new("gg"), &e.server_msg_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.content.as_text(), Some("find"));
    assert!(
        s.get(&app, &GroupId::new("other"), &e.server_msg_id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn count_messages_after_counts_only_messages(s: Arc<dyn ChannelLog>, app: AppId) {
    let g = GroupId::new("cnt");
    let (first, _) = seq_of(
        s.append(&app, &channel_message("cnt", "a", "1", ""))
            .await
            .unwrap(),
    );
    s.append(&app, &channel_message("cnt", "a", "2", ""))
        .await
        .unwrap();
    let mut recall = channel_message("cnt", "a", "", "");
    recall.kind = EntryKind::Recall;
    s.append(&app, &recall).await.unwrap();
    assert_eq!(s.count_messages_after(&app, &g, 0).await.unwrap(), 2);
    assert_eq!(s.count_messages_after(&app, &g, first).await.unwrap(), 1);
}

async fn read_seq_only_moves_forward(s: Arc<dyn ChannelLog>, app: AppId) {
    let g = GroupId::new("rs");
    let u = UserId::new("u");
    assert_eq!(s.read_seq(&app, &g, &u).await.unwrap(), 0);
    s.set_read_seq(&app, &g, &u, 5).await.unwrap();
    s.set_read_seq(&app, &g, &u, 3).await.unwrap();
    assert_eq!(s.read_seq(&app, &g, &u).await.unwrap(), 5);
    s.set_read_seq(&app, &g, &u, 9).await.unwrap();
    assert_eq!(s.read_seq(&app, &g, &u).await.unwrap(), 9);
    assert_eq!(s.read_seq(&app, &g, &UserId::new("v")).await.unwrap(), 0);
}

async fn channels_are_isolated_between_apps_and_groups(s: Arc<dyn ChannelLog>, app: AppId) {
    let other = super::fresh_app();
    s.append(&app, &channel_message("iso", "a", "x", ""))
        .await
        .unwrap();
    assert_eq!(s.last_seq(&other, &GroupId::new("iso")).await.unwrap(), 0);
    assert!(
        s.range(&other, &GroupId::new("iso"), 0, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    assert_eq!(s.last_seq(&app, &GroupId::new("iso2")).await.unwrap(), 0);
}

async fn prune_sent_forgets_old_client_msg_ids_oldest_first(s: Arc<dyn ChannelLog>, app: AppId) {
    let g = GroupId::new("sg-prune");
    for n in 0..3 {
        let mut e = channel_message("sg-prune", "a", "old", &format!("old-{n}"));
        e.server_time = OLD + n;
        e.create_time = OLD + n;
        seq_of(s.append(&app, &e).await.unwrap());
    }
    seq_of(
        s.append(&app, &channel_message("sg-prune", "a", "new", "new"))
            .await
            .unwrap(),
    );
    assert_eq!(
        s.prune_sent(OLD + 100, 2).await.unwrap(),
        2,
        "at most `limit` per call"
    );
    assert!(
        matches!(
            s.append(&app, &channel_message("sg-prune", "a", "old", "old-2"))
                .await
                .unwrap(),
            ChannelAppend::Duplicate(_)
        ),
        "the oldest go first"
    );
    while s.prune_sent(OLD + 100, 2).await.unwrap() == 2 {}
    assert!(
        matches!(
            s.append(&app, &channel_message("sg-prune", "a", "old", "old-0"))
                .await
                .unwrap(),
            ChannelAppend::Appended { .. }
        ),
        "a forgotten id is a new message"
    );
    assert!(
        matches!(
            s.append(&app, &channel_message("sg-prune", "a", "new", "new"))
                .await
                .unwrap(),
            ChannelAppend::Duplicate(_)
        ),
        "a kept id still deduplicates"
    );
    let page = s.range(&app, &g, 0, 100).await.unwrap();
    assert_eq!(page.entries.len(), 5, "pruning keeps the log entries");
}
