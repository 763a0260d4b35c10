//! Read state: cursors, receipts and unread counts.

use super::*;

#[tokio::test]
async fn mark_read_updates_unread_counts_and_sends_a_cursor_and_a_receipt() {
    let e = engine().await;
    let (alice, mut alice_q) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let (_bob_web, mut bob_web_q) = login(&e, "bob", "web").await;
    let mut last = None;
    for i in 0..3 {
        last = Some(
            e.send(&alice, to_user("bob", &format!("m{i}"), "x"))
                .await
                .unwrap(),
        );
    }
    let counts = e.unread(&bob).await.unwrap();
    assert_eq!(
        counts,
        vec![UnreadCount {
            conversation: Conversation::direct(&alice.user),
            count: 3,
            mentioned: false,
        }]
    );
    drain(&mut bob_web_q);
    let marked = e
        .mark_read(&bob, &Conversation::direct(&alice.user), 2)
        .await
        .unwrap();
    assert_eq!(marked, 2);
    assert_eq!(e.unread(&bob).await.unwrap()[0].count, 1);
    // Bob's other device learns the read position.
    let cursor = drain(&mut bob_web_q)
        .into_iter()
        .find_map(|ev| match ev {
            PushEvent::Entry { entry, .. } if entry.kind == EntryKind::ReadCursor => Some(entry),
            _ => None,
        })
        .expect("a read cursor reaches bob's other device");
    assert_eq!(cursor.read_up_to, 2);
    // Alice gets a receipt naming the newest message bob read.
    let receipt = drain(&mut alice_q)
        .into_iter()
        .find_map(|ev| match ev {
            PushEvent::Entry { entry, .. } if entry.kind == EntryKind::ReadReceipt => Some(entry),
            _ => None,
        })
        .expect("alice gets a read receipt");
    assert_eq!(receipt.conversation, Conversation::direct(&bob.user));
    assert_ne!(
        Some(receipt.server_msg_id),
        last.map(|r| r.server_msg_id),
        "only two of three were read"
    );
    e.mark_read(&bob, &Conversation::direct(&alice.user), u64::MAX)
        .await
        .unwrap();
    assert!(e.unread(&bob).await.unwrap().is_empty());
}

#[tokio::test]
async fn super_group_unread_counts_come_from_the_read_seq() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let (bo, _) = login(&e, "bo", "phone").await;
    let to = super_group_of(&e, &ann, "town", &["bo"]).await;
    for i in 0..5 {
        e.send(&ann, text_to(to.clone(), &format!("{i}"), "x"))
            .await
            .unwrap();
    }
    assert_eq!(
        e.unread(&bo).await.unwrap(),
        vec![UnreadCount {
            conversation: to.clone(),
            count: 5,
            mentioned: false,
        }]
    );
    assert_eq!(e.mark_read(&bo, &to, 3).await.unwrap(), 3);
    assert_eq!(e.unread(&bo).await.unwrap()[0].count, 2);
}
