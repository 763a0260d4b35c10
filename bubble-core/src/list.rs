//! What a batch of appends does to one conversation-list row, for stores
//! that write each row once per batch rather than once per entry.

use crate::types::{InboxEntry, MsgId, activity_key};

/// The messages and notices of one conversation row in a batch of appends,
/// gathered by the rules of
/// [`InboxStore::conversations`](crate::ports::InboxStore::conversations):
/// the newest takes the activity and is shown last; the received ones add
/// to the unread count; the newest received one, and the newest that
/// mentions the owner, are kept. A store upserts the row once with these
/// (before any entry of another kind for the row, which must see it as
/// these left it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRowChange {
    /// [`activity_key`] of the newest.
    pub activity: u64,
    /// The owner's version of the newest, shown last.
    pub version: u64,
    /// The newest's message id.
    pub msg: MsgId,
    /// How many were received (each one unread).
    pub unread: u64,
    /// The first received version (0: none received).
    pub first_received: u64,
    /// The newest received version (0: none received).
    pub last_received: u64,
    /// The newest received version that mentions the owner (0: none).
    pub mention: u64,
}

impl ListRowChange {
    /// The change of the row's first message or notice `e` (at `version`).
    pub fn new(e: &InboxEntry, version: u64) -> ListRowChange {
        let mut change = ListRowChange {
            activity: 0,
            version: 0,
            msg: e.server_msg_id,
            unread: 0,
            first_received: 0,
            last_received: 0,
            mention: 0,
        };
        change.add(e, version);
        change
    }

    /// Adds the row's next message or notice `e` (at `version`, above every
    /// version added before).
    pub fn add(&mut self, e: &InboxEntry, version: u64) {
        self.activity = activity_key(e.server_time, version);
        self.version = version;
        self.msg = e.server_msg_id;
        if e.starts_unread() {
            self.unread += 1;
            if self.first_received == 0 {
                self.first_received = version;
            }
            self.last_received = version;
            if e.meta.mentions(&e.owner) {
                self.mention = version;
            }
        }
    }

    /// A version no unread entry of this change is below: the first
    /// received, or, with none received, the newest. A row that had nothing
    /// unread takes it as its unread floor; one that had, keeps its own.
    pub fn unread_floor(&self) -> u64 {
        match self.first_received {
            0 => self.version,
            first => first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{direct_message, group_delivery};
    use crate::types::EntryMeta;

    #[test]
    fn the_newest_is_shown_and_each_received_one_counts() {
        let (out, inb) = direct_message("ann", "bo", "hi");
        let mut change = ListRowChange::new(&inb, 3);
        assert_eq!(
            (change.unread, change.first_received, change.last_received),
            (1, 3, 3)
        );
        change.add(&out, 4);
        change.add(&inb, 5);
        assert_eq!(change.version, 5);
        assert_eq!(change.activity, activity_key(inb.server_time, 5));
        assert_eq!(
            (change.unread, change.first_received, change.last_received),
            (2, 3, 5)
        );
        assert_eq!(change.unread_floor(), 3);
        assert_eq!(change.mention, 0);
    }

    #[test]
    fn with_nothing_received_the_floor_is_the_newest() {
        let (out, _) = direct_message("ann", "bo", "hi");
        let mut change = ListRowChange::new(&out, 7);
        change.add(&out, 8);
        assert_eq!((change.unread, change.last_received), (0, 0));
        assert_eq!(change.unread_floor(), 8);
    }

    #[test]
    fn the_newest_received_mention_is_kept() {
        let mut d = group_delivery("g", "ann", &["ann", "bo"], "hey @bo");
        let mut fields = EntryMeta::none().decode();
        fields.mentions.push("bo".to_owned());
        d.entries[1].meta = EntryMeta::of(&fields);
        let mut change = ListRowChange::new(&d.entries[1], 2);
        change.add(&d.entries[0], 3);
        assert_eq!(change.mention, 2, "received by bo, mentioning bo");
    }
}
