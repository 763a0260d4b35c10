//! Recall and delete.

use super::*;

#[tokio::test]
async fn recall_within_the_window_reaches_every_owner_and_clears_unread_and_search() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "wrong chat oops"))
        .await
        .unwrap();
    e.index_pending().await.unwrap();
    let q = HistoryQuery {
        words: "oops".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&bob, q.clone()).await.unwrap().total, 1);
    drain(&mut bob_q);
    let to = Conversation::direct(&bob.user);
    e.recall(&alice, &to, &sent.server_msg_id).await.unwrap();
    let bob_entries = all_entries(&e, &bob).await;
    let recall = bob_entries.last().unwrap();
    assert_eq!(recall.kind, EntryKind::Recall);
    assert_eq!(recall.server_msg_id, sent.server_msg_id);
    assert_eq!(
        all_entries(&e, &alice).await.last().unwrap().kind,
        EntryKind::Recall,
        "the sender's devices too"
    );
    assert!(
        e.unread(&bob).await.unwrap().is_empty(),
        "a recalled message stops counting"
    );
    assert!(
        drain(&mut bob_q).iter().any(
            |ev| matches!(ev, PushEvent::Entry { entry, .. } if entry.kind == EntryKind::Recall)
        )
    );
    e.index_pending().await.unwrap();
    assert_eq!(
        e.search(&bob, q.clone()).await.unwrap().total,
        0,
        "and leaves the search index"
    );
    assert_eq!(e.search(&alice, q).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_message_recalled_before_the_indexer_ran_is_never_found() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "regrettable words"))
        .await
        .unwrap();
    e.recall(
        &alice,
        &Conversation::direct(&bob.user),
        &sent.server_msg_id,
    )
    .await
    .unwrap();
    // Message and recall are drained from the outbox in one batch.
    e.index_pending().await.unwrap();
    let q = HistoryQuery {
        words: "regrettable".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(e.search(&bob, q.clone()).await.unwrap().total, 0);
    assert_eq!(e.search(&alice, q).await.unwrap().total, 0);
}

#[tokio::test]
async fn recall_after_the_window_is_refused() {
    let e = engine_with(|s| s.recall_window_ms = 0).await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let sent = e.send(&alice, to_user("bob", "m", "x")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let err = e
        .recall(
            &alice,
            &Conversation::direct(&UserId::new("bob")),
            &sent.server_msg_id,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[tokio::test]
async fn only_the_sender_may_recall() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e.send(&alice, to_user("bob", "m", "x")).await.unwrap();
    let err = e
        .recall(
            &bob,
            &Conversation::direct(&alice.user),
            &sent.server_msg_id,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn recall_in_a_super_group_appends_a_recall_entry() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let to = super_group_of(&e, &ann, "t", &[]).await;
    let sent = e.send(&ann, text_to(to.clone(), "k", "x")).await.unwrap();
    let r = e.recall(&ann, &to, &sent.server_msg_id).await.unwrap();
    assert_eq!(r.seq, 2);
    let (page, _) = e
        .pull_channel(&ann, &GroupId::new("t"), 1, 10)
        .await
        .unwrap();
    assert_eq!(page.entries[0].kind, EntryKind::Recall);
    assert_eq!(page.entries[0].server_msg_id, sent.server_msg_id);
}

#[tokio::test]
async fn delete_for_me_touches_only_my_own_inbox() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "m", "keep or not"))
        .await
        .unwrap();
    let receipt = e.delete_for_me(&bob, &sent.server_msg_id).await.unwrap();
    let bob_entries = all_entries(&e, &bob).await;
    assert_eq!(bob_entries.last().unwrap().kind, EntryKind::Delete);
    assert_eq!(bob_entries.last().unwrap().version, receipt.version);
    assert_eq!(
        receipt.prev_version,
        bob_entries[bob_entries.len() - 2].version,
        "the ack names the version before, so the deleting device needs no sync"
    );
    assert_eq!(
        all_entries(&e, &alice).await.len(),
        1,
        "alice's copy is untouched"
    );
    assert!(e.unread(&bob).await.unwrap().is_empty());
    let missing = e.delete_for_me(&bob, &MsgId([9; 16])).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_recall_after_the_group_became_a_super_group_reaches_every_inbox_copy() {
    let e = engine_with(|s| s.super_group_threshold = 3).await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    let g = group_of(&e, &ann, "grows", &["bo", "cy"]).await;
    let sent = e
        .send(&ann, to_group("grows", "before", "fanned out on write"))
        .await
        .unwrap();
    e.add_members(&ann.app, Some(&ann.user), &g.id, &[UserId::new("di")])
        .await
        .unwrap();
    assert_eq!(
        e.group(&ann.app, &g.id).await.unwrap().kind,
        GroupKind::Super
    );
    let r = e
        .recall(&ann, &Conversation::group(&g.id), &sent.server_msg_id)
        .await
        .unwrap();
    assert_eq!(r.seq, 0, "the recall went to the inboxes, not the log");
    assert!(r.version > sent.version, "the sender's own recall entry");
    let last = all_entries(&e, &bo).await.pop().unwrap();
    assert_eq!(last.kind, EntryKind::Recall);
    assert_eq!(last.server_msg_id, sent.server_msg_id);
    let (log, _) = e.pull_channel(&bo, &g.id, 0, 10).await.unwrap();
    assert!(log.entries.is_empty(), "nothing in the super group's log");
}

#[tokio::test]
async fn a_delete_answers_with_the_version_of_the_callers_delete_entry() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let sent = e
        .send(&alice, to_user("bob", "d-1", "delete me"))
        .await
        .unwrap();
    let version = e.delete_for_me(&bob, &sent.server_msg_id).await.unwrap();
    let last = all_entries(&e, &bob).await.pop().unwrap();
    assert_eq!(last.kind, EntryKind::Delete);
    assert_eq!(last.direction, Direction::In, "a received message's view");
    assert_eq!(version.version, last.version);
}
