//! Conformance checks for [`InboxStore`].

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::checks;
use super::fixtures::*;
use crate::ports::*;
use crate::types::*;

/// Runs every inbox check against `store`.
pub async fn inbox(store: Arc<dyn InboxStore>) {
    super::run_checks("InboxStore", store.clone(), CHECKS).await;
    super::run_checks("InboxStore", store.clone(), super::inbox_extras::CHECKS).await;
    super::run_checks("InboxStore", store, super::retention::CHECKS).await;
}

const CHECKS: &[super::Check<dyn InboxStore>] = checks![dyn InboxStore;
    append_writes_one_entry_per_owner_with_its_own_version,
    every_field_survives_a_round_trip,
    versions_strictly_increase_under_concurrent_appends,
    prev_version_chains_each_owner_without_holes,
    pull_pages_are_gap_free_and_duplicate_free,
    pull_after_the_newest_version_is_empty,
    last_version_is_the_newest_entry,
    a_client_msg_id_is_accepted_once,
    concurrent_retries_of_one_client_msg_id_write_once,
    dedup_is_per_sender,
    get_finds_a_message_by_id_for_its_owner_only,
    unread_counts_are_exact_per_conversation,
    mark_read_counts_and_names_the_last_read_message,
    mark_message_read_stops_one_message_counting,
    outbox_holds_indexed_deliveries_until_completed,
    prune_sent_forgets_old_client_msg_ids_oldest_first,
    apps_are_isolated,
    scan_lists_each_message_once_with_its_remaining_owners,
    scan_pages_by_message_id_without_gaps_or_repeats,
    a_scan_page_reads_on_past_messages_nobody_holds_any_more,
    history_pages_one_conversation_newest_first_without_gaps,
    history_holds_every_kind_of_entry_both_directions_and_only_the_owners_view,
    history_of_an_empty_or_unknown_conversation_is_empty,
    conversations_are_listed_newest_activity_first_with_their_last_message,
    conversation_list_pages_without_gaps_or_repeats,
    conversation_unread_counts_follow_appends_and_marks,
    conversation_read_positions_follow_cursors_and_receipts,
    a_recall_or_delete_of_the_last_message_becomes_the_last_entry,
];

/// Every message `scan_messages` lists for `app`, page by page.
async fn scan_all(s: &Arc<dyn InboxStore>, app: &AppId, page: usize) -> Vec<StoredMessage> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let found = s.scan_messages(app, after, page).await.unwrap();
        assert!(found.len() <= page, "at most `limit` messages per page");
        let Some(last) = found.last() else { break };
        after = Some(last.entry.server_msg_id);
        all.extend(found);
    }
    all
}

/// A server-made entry of `kind` about message `id` for `owners`.
fn about(kind: EntryKind, id: MsgId, by: &str, owners: &[&str]) -> Delivery {
    let (out, _) = direct_message(by, by, "");
    Delivery {
        sender: UserId::new(by),
        client_msg_id: String::new(),
        entries: owners
            .iter()
            .map(|o| InboxEntry {
                owner: UserId::new(*o),
                kind,
                server_msg_id: id,
                content: Content::text(""),
                ..out.clone()
            })
            .collect(),
        index: true,
        receipt_entry: None,
    }
}

async fn scan_lists_each_message_once_with_its_remaining_owners(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    if super::unsupported(
        "InboxStore",
        "scan_messages",
        &s.scan_messages(&app, None, 10).await,
    ) {
        return;
    }
    let direct = direct_delivery("alice", "bob", "hello bob", "");
    let group = group_delivery("g", "alice", &["alice", "bob", "carol"], "hello all");
    let recalled = group_delivery("g", "alice", &["alice", "bob", "carol"], "oops");
    let deleted = group_delivery("g", "bob", &["alice", "bob", "carol"], "bob regrets");
    for d in [&direct, &group, &recalled, &deleted] {
        s.append(&app, d).await.unwrap();
    }
    let id = |d: &Delivery| d.entries[0].server_msg_id;
    s.append(
        &app,
        &about(EntryKind::Recall, id(&recalled), "alice", &["alice", "bob"]),
    )
    .await
    .unwrap();
    s.append(
        &app,
        &about(EntryKind::Delete, id(&deleted), "bob", &["bob"]),
    )
    .await
    .unwrap();
    // A read receipt is not a message.
    s.append(
        &app,
        &about(EntryKind::ReadReceipt, id(&direct), "bob", &["alice"]),
    )
    .await
    .unwrap();

    let all = scan_all(&s, &app, 100).await;
    let owners = |d: &Delivery| -> Option<Vec<String>> {
        all.iter()
            .find(|m| m.entry.server_msg_id == id(d))
            .map(|m| {
                let mut o: Vec<String> = m.owners.iter().map(|o| o.to_string()).collect();
                o.sort();
                o
            })
    };
    assert_eq!(all.len(), 3, "each message once, the recalled one left out");
    assert_eq!(owners(&direct).unwrap(), ["alice", "bob"]);
    assert_eq!(owners(&group).unwrap(), ["alice", "bob", "carol"]);
    assert_eq!(
        owners(&deleted).unwrap(),
        ["alice", "carol"],
        "bob deleted it for himself"
    );
    assert_eq!(
        owners(&recalled),
        None,
        "a recall removes it for everyone, also for an owner it never reached"
    );
    for m in &all {
        assert!(m.owners.contains(&m.entry.owner), "the entry is an owner's");
        assert!(matches!(
            m.entry.kind,
            EntryKind::Message | EntryKind::SystemNotice
        ));
    }
    let d = all
        .iter()
        .find(|m| m.entry.server_msg_id == id(&direct))
        .unwrap();
    assert_eq!(
        d.entry.content,
        Content::text("hello bob"),
        "the body comes back"
    );
    assert_eq!(d.entry.sender.as_str(), "alice");
    assert_eq!(d.entry.server_time, direct.entries[0].server_time);
    assert_eq!(
        d.entry.conversation_for(&UserId::new("bob")),
        Conversation::direct(&UserId::new("alice")),
        "the entry's owner and conversation name both parties"
    );
    let other = super::fresh_app();
    assert!(
        s.scan_messages(&other, None, 100).await.unwrap().is_empty(),
        "per app"
    );
}

async fn scan_pages_by_message_id_without_gaps_or_repeats(s: Arc<dyn InboxStore>, app: AppId) {
    if super::unsupported(
        "InboxStore",
        "scan_messages",
        &s.scan_messages(&app, None, 10).await,
    ) {
        return;
    }
    let mut want = Vec::new();
    for i in 0..7 {
        let d = group_delivery("g", "alice", &["alice", "bob"], &format!("n{i}"));
        want.push(d.entries[0].server_msg_id);
        s.append(&app, &d).await.unwrap();
    }
    want.sort();
    let got: Vec<MsgId> = scan_all(&s, &app, 3)
        .await
        .iter()
        .map(|m| m.entry.server_msg_id)
        .collect();
    assert_eq!(got, want, "in id order, every message once across pages");
    let after = s.scan_messages(&app, Some(want[4]), 10).await.unwrap();
    assert_eq!(after.len(), 2, "only ids after the one given");
}

fn appended(outcome: AppendOutcome) -> Vec<Appended> {
    match outcome {
        AppendOutcome::Appended(a) => a,
        AppendOutcome::Duplicate(r) => panic!("expected a fresh append, got a duplicate of {r:?}"),
    }
}

async fn append_writes_one_entry_per_owner_with_its_own_version(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    // Give bob some history first so the two owners' versions differ.
    appended(
        s.append(&app, &direct_delivery("carol", "bob", "earlier", ""))
            .await
            .unwrap(),
    );
    let d = direct_delivery("alice", "bob", "hello", "");
    let a = appended(s.append(&app, &d).await.unwrap());
    assert_eq!(a.len(), 2, "one Appended per entry");
    assert_eq!(a[0].prev_version, 0, "alice had nothing before");
    assert!(a[1].prev_version >= 1, "bob had one entry before");
    assert!(a[1].version > a[1].prev_version);
    let alice = s.pull(&app, &UserId::new("alice"), 0, 10).await.unwrap();
    let bob = s.pull(&app, &UserId::new("bob"), 0, 10).await.unwrap();
    assert_eq!(alice.entries.len(), 1);
    assert_eq!(bob.entries.len(), 2);
    assert_eq!(alice.entries[0].direction, Direction::Out);
    assert_eq!(bob.entries[1].direction, Direction::In);
    assert_eq!(alice.entries[0].version, a[0].version);
    assert_eq!(bob.entries[1].version, a[1].version);
    assert_eq!(alice.entries[0].server_msg_id, bob.entries[1].server_msg_id);
}

async fn every_field_survives_a_round_trip(s: Arc<dyn InboxStore>, app: AppId) {
    let mut d = direct_delivery("alice", "bob", "", "cm-1");
    let media = bubble_proto::pb::MediaRef {
        url: "https://cdn.example/cat.jpg".into(),
        size: 12345,
        mime: "image/jpeg".into(),
        sha256: "ab".repeat(32),
        width: 640,
        height: 480,
        duration_ms: 0,
        name: "cat.jpg".into(),
        thumbnail_url: String::new(),
    };
    for e in &mut d.entries {
        e.content = Content::media(&media);
        e.client_seq = 42;
        e.create_time = 1_700_000_000_123;
        e.server_time = 1_700_000_000_456;
        e.read_up_to = 9;
        e.sender_device = DeviceId::new("laptop-7");
    }
    // A receipt-like entry with binary, non-UTF-8 content bytes.
    let mut odd = d.entries[1].clone();
    odd.kind = EntryKind::ReadCursor;
    odd.content = Content {
        kind: ContentType::Custom,
        body: Bytes::from_static(&[0, 159, 146, 150, 255]),
    };
    d.entries.push(InboxEntry {
        owner: UserId::new("bob"),
        ..odd
    });
    let a = appended(s.append(&app, &d).await.unwrap());
    let bob = s.pull(&app, &UserId::new("bob"), 0, 10).await.unwrap();
    assert_eq!(bob.entries.len(), 2);
    let mut want = d.entries[1].clone();
    want.version = a[1].version;
    assert_eq!(
        bob.entries[0], want,
        "a received entry comes back field for field"
    );
    let mut want = d.entries[2].clone();
    want.version = a[2].version;
    assert_eq!(
        bob.entries[1], want,
        "binary content and every kind survive"
    );
    let alice = s.pull(&app, &UserId::new("alice"), 0, 10).await.unwrap();
    let mut want = d.entries[0].clone();
    want.version = a[0].version;
    assert_eq!(
        alice.entries[0], want,
        "a sent entry comes back field for field"
    );
}

async fn versions_strictly_increase_under_concurrent_appends(s: Arc<dyn InboxStore>, app: AppId) {
    let tasks = 8;
    let per_task = 25;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let s = s.clone();
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..per_task {
                let from = format!("sender{t}");
                let d = direct_delivery(&from, "hub", &format!("m{t}-{i}"), "");
                let a = appended(s.append(&app, &d).await.unwrap());
                versions.push(a[1]);
            }
            versions
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let distinct: HashSet<u64> = all.iter().map(|a| a.version).collect();
    assert_eq!(distinct.len(), tasks * per_task, "no version given twice");
    let mut after = 0;
    let mut pulled = Vec::new();
    loop {
        let page = s.pull(&app, &UserId::new("hub"), after, 37).await.unwrap();
        pulled.extend(page.entries.iter().map(|e| e.version));
        match page.entries.last() {
            Some(e) if page.has_more => after = e.version,
            _ => break,
        }
    }
    assert_eq!(
        pulled.len(),
        tasks * per_task,
        "every append is pulled once"
    );
    assert!(
        pulled.windows(2).all(|w| w[0] < w[1]),
        "pull returns strictly increasing versions"
    );
}

async fn prev_version_chains_each_owner_without_holes(s: Arc<dyn InboxStore>, app: AppId) {
    let mut handles = Vec::new();
    for t in 0..4 {
        let s = s.clone();
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..20 {
                let d = direct_delivery(&format!("s{t}"), "dora", &format!("{i}"), "");
                out.push(appended(s.append(&app, &d).await.unwrap())[1]);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_by_key(|a| a.version);
    assert_eq!(all[0].prev_version, 0, "the first entry has no predecessor");
    for w in all.windows(2) {
        assert_eq!(
            w[1].prev_version, w[0].version,
            "prev_version must name the owner's previous entry, or devices see false gaps"
        );
    }
}

async fn pull_pages_are_gap_free_and_duplicate_free(s: Arc<dyn InboxStore>, app: AppId) {
    for i in 0..25 {
        s.append(&app, &direct_delivery("a", "b", &format!("n{i}"), ""))
            .await
            .unwrap();
    }
    let b = UserId::new("b");
    let mut after = 0;
    let mut texts = Vec::new();
    let mut pages = 0;
    loop {
        let page = s.pull(&app, &b, after, 7).await.unwrap();
        pages += 1;
        assert!(page.entries.len() <= 7, "a page holds at most the limit");
        texts.extend(
            page.entries
                .iter()
                .map(|e| e.content.as_text().unwrap().to_owned()),
        );
        if !page.has_more {
            break;
        }
        after = page.entries.last().unwrap().version;
    }
    assert_eq!(pages, 4, "25 entries in pages of 7 take 4 pages");
    let want: Vec<String> = (0..25).map(|i| format!("n{i}")).collect();
    assert_eq!(texts, want, "pages hold every entry once, in order");
    let exact = s.pull(&app, &b, 0, 25).await.unwrap();
    assert!(
        !exact.has_more,
        "has_more is false when the page ends at the newest entry"
    );
}

/// Every text of a history page, newest first.
fn texts(page: &InboxPage) -> Vec<String> {
    page.entries
        .iter()
        .map(|e| e.content.as_text().unwrap_or_default().to_owned())
        .collect()
}

async fn history_pages_one_conversation_newest_first_without_gaps(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    // Two conversations of bob's interleaved: carol's must never show in alice's.
    for i in 0..23 {
        s.append(&app, &direct_delivery("alice", "bob", &format!("a{i}"), ""))
            .await
            .unwrap();
        if i % 3 == 0 {
            s.append(&app, &direct_delivery("carol", "bob", &format!("c{i}"), ""))
                .await
                .unwrap();
        }
    }
    let bob = UserId::new("bob");
    let with_alice = Conversation::direct(&UserId::new("alice"));
    let (mut before, mut seen, mut pages) = (0, Vec::new(), 0);
    loop {
        let page = s
            .history(&app, &bob, &with_alice, before, 10)
            .await
            .unwrap();
        pages += 1;
        assert!(page.entries.len() <= 10, "a page holds at most the limit");
        assert!(
            page.entries.windows(2).all(|w| w[0].version > w[1].version),
            "newest first, each version once"
        );
        assert!(
            page.entries
                .iter()
                .all(|e| before == 0 || e.version < before),
            "only entries older than `before`"
        );
        seen.extend(texts(&page));
        if !page.has_more {
            break;
        }
        before = page.entries.last().unwrap().version;
    }
    assert_eq!(pages, 3, "23 entries in pages of 10 take 3 pages");
    let want: Vec<String> = (0..23).rev().map(|i| format!("a{i}")).collect();
    assert_eq!(
        seen, want,
        "every entry of the conversation once, newest first"
    );
    let exact = s.history(&app, &bob, &with_alice, 0, 23).await.unwrap();
    assert!(
        !exact.has_more,
        "has_more is false when the page ends at the oldest entry"
    );
    let newest = s.history(&app, &bob, &with_alice, 0, 1).await.unwrap();
    assert_eq!(texts(&newest), ["a22"], "before 0 starts at the newest");
    assert!(newest.has_more);
}

async fn history_holds_every_kind_of_entry_both_directions_and_only_the_owners_view(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let sent = direct_delivery("alice", "bob", "hi bob", "");
    let id = sent.entries[0].server_msg_id;
    s.append(&app, &sent).await.unwrap();
    s.append(&app, &direct_delivery("bob", "alice", "hi alice", ""))
        .await
        .unwrap();
    // alice's recall, in each party's view of the conversation.
    let mut recall = about(EntryKind::Recall, id, "alice", &["alice", "bob"]);
    recall.entries[0].conversation = Conversation::direct(&UserId::new("bob"));
    recall.entries[1].direction = Direction::In;
    s.append(&app, &recall).await.unwrap();
    s.append(
        &app,
        &group_delivery("g1", "carol", &["alice", "bob", "carol"], "group talk"),
    )
    .await
    .unwrap();
    let alice = UserId::new("alice");
    let page = s
        .history(
            &app,
            &alice,
            &Conversation::direct(&UserId::new("bob")),
            0,
            10,
        )
        .await
        .unwrap();
    let kinds: Vec<(EntryKind, Direction)> =
        page.entries.iter().map(|e| (e.kind, e.direction)).collect();
    assert_eq!(
        kinds,
        [
            (EntryKind::Recall, Direction::Out),
            (EntryKind::Message, Direction::In),
            (EntryKind::Message, Direction::Out),
        ],
        "the recall, what bob sent and what alice sent, newest first"
    );
    assert!(
        page.entries.iter().all(|e| e.owner == alice),
        "only the asking owner's own entries"
    );
    assert_eq!(page.entries[2].server_msg_id, id);
    let group = s
        .history(
            &app,
            &alice,
            &Conversation::group(&GroupId::new("g1")),
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        texts(&group),
        ["group talk"],
        "a group's history is its own"
    );
}

async fn history_of_an_empty_or_unknown_conversation_is_empty(s: Arc<dyn InboxStore>, app: AppId) {
    s.append(&app, &direct_delivery("alice", "bob", "x", ""))
        .await
        .unwrap();
    for (owner, conversation) in [
        ("bob", Conversation::direct(&UserId::new("zed"))),
        ("nobody", Conversation::direct(&UserId::new("alice"))),
        ("bob", Conversation::group(&GroupId::new("alice"))),
    ] {
        let page = s
            .history(&app, &UserId::new(owner), &conversation, 0, 10)
            .await
            .unwrap();
        assert!(
            page.entries.is_empty() && !page.has_more,
            "{owner} {conversation:?}"
        );
    }
    let bob = UserId::new("bob");
    let one = s
        .history(
            &app,
            &bob,
            &Conversation::direct(&UserId::new("alice")),
            0,
            10,
        )
        .await
        .unwrap();
    let oldest = one.entries[0].version;
    let none = s
        .history(
            &app,
            &bob,
            &Conversation::direct(&UserId::new("alice")),
            oldest,
            10,
        )
        .await
        .unwrap();
    assert!(
        none.entries.is_empty() && !none.has_more,
        "nothing is older than the first entry"
    );
}

/// The conversations of `owner`'s list, newest first, one page of 100.
async fn list(s: &Arc<dyn InboxStore>, app: &AppId, owner: &str) -> Vec<ConversationSummary> {
    let page = s
        .conversations(app, &UserId::new(owner), 0, 100)
        .await
        .unwrap();
    assert!(!page.has_more);
    page.conversations
}

/// The conversation of one summary, and its last entry's text.
fn shown(c: &ConversationSummary) -> (Conversation, String) {
    (
        c.conversation.clone(),
        c.last.content.as_text().unwrap_or_default().to_owned(),
    )
}

async fn conversations_are_listed_newest_activity_first_with_their_last_message(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    assert!(
        list(&s, &app, "bob").await.is_empty(),
        "no entries, no rows"
    );
    s.append(&app, &direct_delivery("alice", "bob", "a1", ""))
        .await
        .unwrap();
    s.append(&app, &direct_delivery("carol", "bob", "c1", ""))
        .await
        .unwrap();
    s.append(&app, &direct_delivery("bob", "alice", "b1", ""))
        .await
        .unwrap();
    s.append(
        &app,
        &group_delivery("g1", "carol", &["bob", "carol"], "g1"),
    )
    .await
    .unwrap();
    let bob = list(&s, &app, "bob").await;
    let alice = Conversation::direct(&UserId::new("alice"));
    let carol = Conversation::direct(&UserId::new("carol"));
    let g1 = Conversation::group(&GroupId::new("g1"));
    assert_eq!(
        bob.iter().map(shown).collect::<Vec<_>>(),
        [
            (g1, "g1".to_owned()),
            (alice.clone(), "b1".to_owned()),
            (carol, "c1".to_owned()),
        ],
        "newest activity first; bob's own message is alice's conversation's last"
    );
    assert!(bob.windows(2).all(|w| w[0].activity > w[1].activity));
    let last = &bob[1].last;
    assert_eq!(
        (last.owner.as_str(), last.direction, last.kind),
        ("bob", Direction::Out, EntryKind::Message),
        "the last entry is the owner's own entry, as synced"
    );
    assert_eq!(
        bob[1].activity,
        activity_key(last.server_time, last.version),
        "the activity is the last message's time and version"
    );
    let alices = list(&s, &app, "alice").await;
    assert_eq!(
        alices.iter().map(shown).collect::<Vec<_>>(),
        [(Conversation::direct(&UserId::new("bob")), "b1".to_owned())],
        "each owner has their own list"
    );
}

async fn conversation_list_pages_without_gaps_or_repeats(s: Arc<dyn InboxStore>, app: AppId) {
    for i in 0..23 {
        s.append(
            &app,
            &direct_delivery(&format!("u{i:02}"), "bob", &format!("m{i:02}"), ""),
        )
        .await
        .unwrap();
    }
    // One conversation comes back to the top: it is listed once, first.
    s.append(&app, &direct_delivery("u05", "bob", "again", ""))
        .await
        .unwrap();
    let bob = UserId::new("bob");
    let (mut before, mut seen, mut pages) = (0, Vec::new(), 0);
    loop {
        let page = s.conversations(&app, &bob, before, 10).await.unwrap();
        pages += 1;
        assert!(page.conversations.len() <= 10);
        seen.extend(
            page.conversations
                .iter()
                .map(|c| c.conversation.id().to_owned()),
        );
        if !page.has_more {
            break;
        }
        before = page.conversations.last().unwrap().activity;
    }
    assert_eq!(pages, 3, "23 conversations in pages of 10 take 3 pages");
    let mut want = vec!["u05".to_owned()];
    want.extend(
        (0..23)
            .rev()
            .filter(|i| *i != 5)
            .map(|i| format!("u{i:02}")),
    );
    assert_eq!(seen, want, "every conversation once, newest activity first");
}

async fn conversation_unread_counts_follow_appends_and_marks(s: Arc<dyn InboxStore>, app: AppId) {
    let mut versions = Vec::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        let d = direct_delivery("alice", "bob", &format!("m{i}"), "");
        ids.push(d.entries[0].server_msg_id);
        versions.push(appended(s.append(&app, &d).await.unwrap())[1].version);
    }
    s.append(&app, &direct_delivery("bob", "alice", "mine", ""))
        .await
        .unwrap();
    let unread_of = |l: &[ConversationSummary]| l[0].unread;
    assert_eq!(
        unread_of(&list(&s, &app, "bob").await),
        4,
        "received messages count, the owner's own do not"
    );
    assert_eq!(
        unread_of(&list(&s, &app, "alice").await),
        1,
        "alice has bob's one message unread, not her own four"
    );
    let bob = UserId::new("bob");
    let alice = Conversation::direct(&UserId::new("alice"));
    s.mark_read(&app, &bob, &alice, versions[1]).await.unwrap();
    assert_eq!(unread_of(&list(&s, &app, "bob").await), 2);
    s.mark_read(&app, &bob, &alice, versions[1]).await.unwrap();
    assert_eq!(
        unread_of(&list(&s, &app, "bob").await),
        2,
        "marking again takes off nothing"
    );
    s.mark_message_read(&app, &bob, &ids[3]).await.unwrap();
    assert_eq!(unread_of(&list(&s, &app, "bob").await), 1);
    let counts = s.unread(&app, &bob).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].count, 1, "the list agrees with unread()");
}

async fn conversation_read_positions_follow_cursors_and_receipts(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let sent = direct_delivery("alice", "bob", "read me", "");
    let id = sent.entries[0].server_msg_id;
    let alice_version = appended(s.append(&app, &sent).await.unwrap())[0].version;
    let with = |l: Vec<ConversationSummary>| (l[0].read_up_to, l[0].peer_read_up_to);
    assert_eq!(with(list(&s, &app, "alice").await), (0, 0));
    // bob read it: a cursor for bob's devices, a receipt for alice naming
    // her version of the message.
    let mut cursor = about(EntryKind::ReadCursor, id, "alice", &["bob"]);
    cursor.entries[0].read_up_to = 7;
    s.append(&app, &cursor).await.unwrap();
    let mut receipt = about(EntryKind::ReadReceipt, id, "bob", &["alice"]);
    receipt.entries[0].read_up_to = alice_version;
    s.append(&app, &receipt).await.unwrap();
    assert_eq!(with(list(&s, &app, "bob").await), (7, 0));
    assert_eq!(with(list(&s, &app, "alice").await), (0, alice_version));
    // Positions only move forward.
    let mut older = about(EntryKind::ReadCursor, id, "alice", &["bob"]);
    older.entries[0].read_up_to = 3;
    s.append(&app, &older).await.unwrap();
    assert_eq!(with(list(&s, &app, "bob").await), (7, 0));
    // A receipt in a conversation without a row makes none.
    s.append(&app, &about(EntryKind::ReadReceipt, id, "zed", &["alice"]))
        .await
        .unwrap();
    assert_eq!(list(&s, &app, "alice").await.len(), 1);
}

async fn a_recall_or_delete_of_the_last_message_becomes_the_last_entry(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    let first = direct_delivery("alice", "bob", "first", "");
    let first_id = first.entries[0].server_msg_id;
    s.append(&app, &first).await.unwrap();
    let second = direct_delivery("alice", "bob", "second", "");
    let second_id = second.entries[0].server_msg_id;
    s.append(&app, &second).await.unwrap();
    let before = list(&s, &app, "bob").await[0].clone();
    // A recall of an older message: bob's list still shows the newest.
    s.append(&app, &about(EntryKind::Recall, first_id, "alice", &["bob"]))
        .await
        .unwrap();
    let after_old = list(&s, &app, "bob").await;
    assert_eq!(after_old[0].last.server_msg_id, second_id);
    assert_eq!(after_old[0].last.kind, EntryKind::Message);
    // A recall of the newest: shown as recalled, in its place.
    s.append(
        &app,
        &about(EntryKind::Recall, second_id, "alice", &["bob"]),
    )
    .await
    .unwrap();
    let recalled = list(&s, &app, "bob").await;
    assert_eq!(
        (recalled[0].last.kind, recalled[0].last.server_msg_id),
        (EntryKind::Recall, second_id)
    );
    assert_eq!(
        recalled[0].activity, before.activity,
        "a recall does not move the conversation up"
    );
    // alice deletes her own copy of the newest: her list shows the delete.
    s.append(
        &app,
        &about(EntryKind::Delete, second_id, "bob", &["alice"]),
    )
    .await
    .unwrap();
    let alices = list(&s, &app, "alice").await;
    assert_eq!(alices[0].last.kind, EntryKind::Delete);
}

async fn pull_after_the_newest_version_is_empty(s: Arc<dyn InboxStore>, app: AppId) {
    let a = appended(
        s.append(&app, &direct_delivery("a", "b", "x", ""))
            .await
            .unwrap(),
    );
    let page = s
        .pull(&app, &UserId::new("b"), a[1].version, 10)
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    assert!(!page.has_more);
    let nobody = s.pull(&app, &UserId::new("nobody"), 0, 10).await.unwrap();
    assert!(
        nobody.entries.is_empty(),
        "an unknown owner has an empty inbox"
    );
}

async fn last_version_is_the_newest_entry(s: Arc<dyn InboxStore>, app: AppId) {
    assert_eq!(s.last_version(&app, &UserId::new("b")).await.unwrap(), 0);
    let mut last = 0;
    for _ in 0..3 {
        last = appended(
            s.append(&app, &direct_delivery("a", "b", "x", ""))
                .await
                .unwrap(),
        )[1]
        .version;
    }
    assert_eq!(s.last_version(&app, &UserId::new("b")).await.unwrap(), last);
}

async fn a_client_msg_id_is_accepted_once(s: Arc<dyn InboxStore>, app: AppId) {
    let first = s
        .append(&app, &direct_delivery("alice", "bob", "hi", "c-1"))
        .await
        .unwrap();
    let a = appended(first);
    let retry = direct_delivery("alice", "bob", "hi", "c-1");
    let original_id = s
        .pull(&app, &UserId::new("alice"), 0, 1)
        .await
        .unwrap()
        .entries[0]
        .server_msg_id;
    match s.append(&app, &retry).await.unwrap() {
        AppendOutcome::Duplicate(r) => {
            assert_eq!(r.server_msg_id, original_id, "the original id comes back");
            assert_eq!(
                r.version, a[0].version,
                "the sender's original version comes back"
            );
            assert!(r.duplicate);
        }
        other => panic!("a retry must not be written again, got {other:?}"),
    }
    let bob = s.pull(&app, &UserId::new("bob"), 0, 10).await.unwrap();
    assert_eq!(bob.entries.len(), 1, "the receiver got the message once");
    let found = s
        .find_sent(&app, &UserId::new("alice"), "c-1")
        .await
        .unwrap()
        .expect("find_sent knows an accepted message");
    assert_eq!(found.server_msg_id, original_id);
    assert!(
        s.find_sent(&app, &UserId::new("alice"), "c-2")
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent_retries_of_one_client_msg_id_write_once(s: Arc<dyn InboxStore>, app: AppId) {
    let mut handles = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            s.append(&app, &direct_delivery("alice", "bob", "race", "same-id"))
                .await
                .unwrap()
        }));
    }
    let mut fresh = 0;
    let mut ids = HashSet::new();
    for h in handles {
        match h.await.unwrap() {
            AppendOutcome::Appended(_) => fresh += 1,
            AppendOutcome::Duplicate(r) => {
                ids.insert(r.server_msg_id);
            }
        }
    }
    assert_eq!(fresh, 1, "exactly one of the racing appends writes");
    let bob = s.pull(&app, &UserId::new("bob"), 0, 100).await.unwrap();
    assert_eq!(bob.entries.len(), 1, "the receiver holds one copy");
    let winner = bob.entries[0].server_msg_id;
    assert!(
        ids.iter().all(|id| *id == winner),
        "every duplicate answer names the winner's message"
    );
}

async fn dedup_is_per_sender(s: Arc<dyn InboxStore>, app: AppId) {
    appended(
        s.append(&app, &direct_delivery("alice", "bob", "1", "k"))
            .await
            .unwrap(),
    );
    appended(
        s.append(&app, &direct_delivery("carol", "bob", "2", "k"))
            .await
            .unwrap(),
    );
    assert_eq!(
        s.pull(&app, &UserId::new("bob"), 0, 10)
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
}

async fn get_finds_a_message_by_id_for_its_owner_only(s: Arc<dyn InboxStore>, app: AppId) {
    let d = direct_delivery("alice", "bob", "find me", "");
    let id = d.entries[0].server_msg_id;
    s.append(&app, &d).await.unwrap();
    let got = s
        .get(&app, &UserId::new("bob"), &id)
        .await
        .unwrap()
        .expect("bob has it");
    assert_eq!(got.content.as_text(), Some("find me"));
    assert_eq!(got.direction, Direction::In);
    assert!(
        s.get(&app, &UserId::new("carol"), &id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.get(&app, &UserId::new("bob"), &test_msg_id())
            .await
            .unwrap()
            .is_none()
    );
}

async fn unread_counts_are_exact_per_conversation(s: Arc<dyn InboxStore>, app: AppId) {
    for i in 0..3 {
        s.append(&app, &direct_delivery("alice", "bob", &format!("a{i}"), ""))
            .await
            .unwrap();
    }
    for i in 0..2 {
        s.append(&app, &direct_delivery("carol", "bob", &format!("c{i}"), ""))
            .await
            .unwrap();
    }
    s.append(
        &app,
        &group_delivery("g1", "alice", &["alice", "bob", "carol"], "hey all"),
    )
    .await
    .unwrap();
    // What bob sends never counts as unread for bob.
    s.append(&app, &direct_delivery("bob", "alice", "mine", ""))
        .await
        .unwrap();
    let mut counts = s.unread(&app, &UserId::new("bob")).await.unwrap();
    counts.sort_by(|a, b| a.conversation.cmp(&b.conversation));
    let want = vec![
        UnreadCount {
            conversation: Conversation::direct(&UserId::new("alice")),
            count: 3,
            mentioned: false,
        },
        UnreadCount {
            conversation: Conversation::direct(&UserId::new("carol")),
            count: 2,
            mentioned: false,
        },
        UnreadCount {
            conversation: Conversation::group(&GroupId::new("g1")),
            count: 1,
            mentioned: false,
        },
    ];
    assert_eq!(counts, want);
    let alice_counts = s.unread(&app, &UserId::new("alice")).await.unwrap();
    assert_eq!(
        alice_counts.len(),
        1,
        "alice has bob's message unread, not her own"
    );
    assert_eq!(alice_counts[0].count, 1);
}

async fn mark_read_counts_and_names_the_last_read_message(s: Arc<dyn InboxStore>, app: AppId) {
    let mut versions = Vec::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        let d = direct_delivery("alice", "bob", &format!("m{i}"), "");
        ids.push(d.entries[0].server_msg_id);
        versions.push(appended(s.append(&app, &d).await.unwrap())[1].version);
    }
    s.append(&app, &direct_delivery("carol", "bob", "other", ""))
        .await
        .unwrap();
    let with_alice = Conversation::direct(&UserId::new("alice"));
    let bob = UserId::new("bob");
    let r = s
        .mark_read(&app, &bob, &with_alice, versions[1])
        .await
        .unwrap();
    assert_eq!(r.marked, 2);
    let last = r.last_read.expect("a message was read");
    assert_eq!(
        last.server_msg_id, ids[1],
        "the newest message at or below the mark"
    );
    let again = s
        .mark_read(&app, &bob, &with_alice, versions[1])
        .await
        .unwrap();
    assert_eq!(again.marked, 0, "marking twice marks nothing new");
    assert_eq!(again.last_read.map(|e| e.server_msg_id), Some(ids[1]));
    let counts = s.unread(&app, &bob).await.unwrap();
    let alice_count = counts
        .iter()
        .find(|c| c.conversation == with_alice)
        .unwrap()
        .count;
    assert_eq!(alice_count, 2, "two of alice's four stay unread");
    let carol = Conversation::direct(&UserId::new("carol"));
    assert_eq!(
        counts
            .iter()
            .find(|c| c.conversation == carol)
            .unwrap()
            .count,
        1,
        "other conversations are untouched"
    );
    let all = s
        .mark_read(&app, &bob, &with_alice, u64::MAX)
        .await
        .unwrap();
    assert_eq!(all.marked, 2);
    assert!(
        s.unread(&app, &bob)
            .await
            .unwrap()
            .iter()
            .all(|c| c.conversation != with_alice)
    );
}

async fn mark_message_read_stops_one_message_counting(s: Arc<dyn InboxStore>, app: AppId) {
    let d = direct_delivery("alice", "bob", "recalled soon", "");
    let id = d.entries[0].server_msg_id;
    s.append(&app, &d).await.unwrap();
    s.append(&app, &direct_delivery("alice", "bob", "stays", ""))
        .await
        .unwrap();
    assert!(
        s.mark_message_read(&app, &UserId::new("bob"), &id)
            .await
            .unwrap()
    );
    assert!(
        !s.mark_message_read(&app, &UserId::new("bob"), &id)
            .await
            .unwrap(),
        "only once"
    );
    let counts = s.unread(&app, &UserId::new("bob")).await.unwrap();
    assert_eq!(counts[0].count, 1);
}

async fn outbox_holds_indexed_deliveries_until_completed(s: Arc<dyn InboxStore>, app: AppId) {
    let mut d = direct_delivery("alice", "bob", "index me", "");
    d.index = true;
    let id = d.entries[0].server_msg_id;
    s.append(&app, &d).await.unwrap();
    s.append(&app, &direct_delivery("alice", "bob", "not me", ""))
        .await
        .unwrap();
    let mine = |tasks: Vec<IndexTask>| -> Vec<IndexTask> {
        tasks.into_iter().filter(|t| t.app == app).collect()
    };
    let tasks = mine(s.pending_index(100_000).await.unwrap());
    assert!(
        !tasks.is_empty(),
        "the indexed delivery waits in the outbox"
    );
    assert!(tasks.iter().all(|t| t.entry.server_msg_id == id));
    assert!(
        tasks.iter().all(|t| t.owners.contains(&t.entry.owner)),
        "a task's entry is one of its owners'"
    );
    let owners: Vec<String> = tasks
        .iter()
        .flat_map(|t| t.owners.iter().map(|o| o.to_string()))
        .collect();
    let distinct: HashSet<String> = owners.iter().cloned().collect();
    assert_eq!(owners.len(), distinct.len(), "each owner once: {owners:?}");
    assert_eq!(
        distinct,
        HashSet::from(["alice".to_string(), "bob".to_string()]),
        "the tasks cover every owner of the indexed delivery, and only it"
    );
    let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
    s.complete_index(&ids).await.unwrap();
    assert!(
        mine(s.pending_index(100_000).await.unwrap()).is_empty(),
        "completed tasks are gone"
    );
}

async fn prune_sent_forgets_old_client_msg_ids_oldest_first(s: Arc<dyn InboxStore>, app: AppId) {
    let alice = UserId::new("alice");
    for n in 0..3 {
        let mut d = direct_delivery("alice", "bob", "old", &format!("old-{n}"));
        for e in &mut d.entries {
            e.server_time = OLD + n;
            e.create_time = OLD + n;
        }
        appended(s.append(&app, &d).await.unwrap());
    }
    appended(
        s.append(&app, &direct_delivery("alice", "bob", "new", "new"))
            .await
            .unwrap(),
    );
    assert_eq!(
        s.prune_sent(OLD + 100, 2).await.unwrap(),
        2,
        "at most `limit` per call"
    );
    assert!(
        s.find_sent(&app, &alice, "old-2").await.unwrap().is_some(),
        "the oldest go first"
    );
    while s.prune_sent(OLD + 100, 2).await.unwrap() == 2 {}
    for n in 0..3 {
        assert!(
            s.find_sent(&app, &alice, &format!("old-{n}"))
                .await
                .unwrap()
                .is_none(),
            "old-{n} was sent before the cut: forgotten"
        );
    }
    assert!(
        s.find_sent(&app, &alice, "new").await.unwrap().is_some(),
        "a recent id is kept"
    );
    assert!(
        matches!(
            s.append(&app, &direct_delivery("alice", "bob", "old", "old-0"))
                .await
                .unwrap(),
            AppendOutcome::Appended(_)
        ),
        "a forgotten id is a new message"
    );
    assert!(
        matches!(
            s.append(&app, &direct_delivery("alice", "bob", "new", "new"))
                .await
                .unwrap(),
            AppendOutcome::Duplicate(_)
        ),
        "a kept id still deduplicates"
    );
    let bob = s.pull(&app, &UserId::new("bob"), 0, 100).await.unwrap();
    assert_eq!(
        bob.entries.len(),
        5,
        "pruning keeps the messages themselves"
    );
}

async fn apps_are_isolated(s: Arc<dyn InboxStore>, app: AppId) {
    let other = super::fresh_app();
    s.append(&app, &direct_delivery("alice", "bob", "in app one", "dup"))
        .await
        .unwrap();
    let in_other = s.pull(&other, &UserId::new("bob"), 0, 10).await.unwrap();
    assert!(
        in_other.entries.is_empty(),
        "another app's inbox of the same user is empty"
    );
    assert_eq!(
        s.last_version(&other, &UserId::new("bob")).await.unwrap(),
        0
    );
    assert!(
        s.unread(&other, &UserId::new("bob"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.find_sent(&other, &UserId::new("alice"), "dup")
            .await
            .unwrap()
            .is_none()
    );
    // The same client id in another app is a different message.
    appended(
        s.append(
            &other,
            &direct_delivery("alice", "bob", "in app two", "dup"),
        )
        .await
        .unwrap(),
    );
    let one = s.pull(&app, &UserId::new("bob"), 0, 10).await.unwrap();
    assert_eq!(one.entries.len(), 1);
    assert_eq!(one.entries[0].content.as_text(), Some("in app one"));
}

async fn a_scan_page_reads_on_past_messages_nobody_holds_any_more(
    s: Arc<dyn InboxStore>,
    app: AppId,
) {
    if super::unsupported(
        "InboxStore",
        "scan_messages",
        &s.scan_messages(&app, None, 10).await,
    ) {
        return;
    }
    let mut sent: Vec<Delivery> = (0..4)
        .map(|i| direct_delivery("alice", "bob", &format!("m{i}"), ""))
        .collect();
    sent.sort_by_key(|d| d.entries[0].server_msg_id);
    for d in &sent {
        s.append(&app, d).await.unwrap();
    }
    // The three oldest are gone for everyone: recalled, or deleted by both.
    let id = |d: &Delivery| d.entries[0].server_msg_id;
    for d in &sent[..2] {
        s.append(
            &app,
            &about(EntryKind::Recall, id(d), "alice", &["alice", "bob"]),
        )
        .await
        .unwrap();
    }
    for owner in ["alice", "bob"] {
        s.append(
            &app,
            &about(EntryKind::Delete, id(&sent[2]), owner, &[owner]),
        )
        .await
        .unwrap();
    }
    let first = s.scan_messages(&app, None, 1).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|m| m.entry.server_msg_id)
            .collect::<Vec<_>>(),
        vec![id(&sent[3])],
        "a page of one lists the first message someone holds, not nothing (a caller stops at an empty page)"
    );
    assert!(
        s.scan_messages(&app, Some(id(&sent[3])), 1)
            .await
            .unwrap()
            .is_empty(),
        "and after it, the end"
    );
}
