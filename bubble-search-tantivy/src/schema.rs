//! The index schema: one tantivy document per (app, message), its owners a
//! multi-valued raw field.

use bubble_core::ports::SearchDoc;
use bubble_core::{Conversation, ConversationKind, Error, MsgId, Result, UserId};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{TantivyDocument, Term};

use crate::error::missing_field;

/// Field names, in one place: they are the on-disk format. Changing a field
/// changes the schema, which [`crate::client`] detects on open as an index
/// to rebuild.
pub(crate) mod names {
    pub const KEY: &str = "key";
    pub const APP: &str = "app";
    pub const OWNERS: &str = "owners";
    pub const MSG_ID: &str = "msg_id";
    pub const VIEWER: &str = "viewer";
    pub const CONVERSATION: &str = "conversation";
    pub const CONVERSATION_OF: &str = "conversation_of";
    pub const SENDER: &str = "sender";
    pub const SERVER_TIME: &str = "server_time";
    pub const TEXT: &str = "text";
}

/// The schema's fields, resolved once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `len(app)|app|msgid-hex`: the unique key that makes re-indexing
    /// replace. The length prefix keeps it unambiguous whatever the app id.
    pub key: Field,
    /// Raw app id: every query must match it.
    pub app: Field,
    /// Raw owner ids, one value per owner: every query must match one.
    pub owners: Field,
    /// Message id, lowercase hex (stored only).
    pub msg_id: Field,
    /// Whose view `conversation` is (stored only): for 1:1 it names the
    /// other party.
    pub viewer: Field,
    /// `kind|id` of the conversation from the viewer's view (stored only).
    pub conversation: Field,
    /// The conversation filter's terms (raw, not stored): for 1:1 one per
    /// party, `1|len(party)|party|peer`, so each party's filter names its
    /// own view; for other kinds `kind|id`, the same for every owner.
    pub conversation_of: Field,
    /// Raw sender id.
    pub sender: Field,
    /// Server time in ms: indexed for range filters, fast for ordering ties.
    pub server_time: Field,
    /// The words, tokenized with the index's tokenizer.
    pub text: Field,
}

impl Fields {
    /// The schema for an index whose text uses `tokenizer`.
    pub fn schema(tokenizer: &str) -> Schema {
        let mut b = Schema::builder();
        b.add_text_field(names::KEY, STRING);
        b.add_text_field(names::APP, STRING | STORED);
        b.add_text_field(names::OWNERS, STRING | STORED);
        b.add_text_field(names::MSG_ID, STORED);
        b.add_text_field(names::VIEWER, STORED);
        b.add_text_field(names::CONVERSATION, STORED);
        b.add_text_field(names::CONVERSATION_OF, STRING);
        b.add_text_field(names::SENDER, STRING | STORED);
        b.add_i64_field(names::SERVER_TIME, INDEXED | FAST | STORED);
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        b.add_text_field(names::TEXT, text);
        b.build()
    }

    /// Resolves the fields of `schema`.
    pub fn of(schema: &Schema) -> Result<Fields> {
        let get = |name: &str| schema.get_field(name).map_err(|e| missing_field(name, e));
        Ok(Fields {
            key: get(names::KEY)?,
            app: get(names::APP)?,
            owners: get(names::OWNERS)?,
            msg_id: get(names::MSG_ID)?,
            viewer: get(names::VIEWER)?,
            conversation: get(names::CONVERSATION)?,
            conversation_of: get(names::CONVERSATION_OF)?,
            sender: get(names::SENDER)?,
            server_time: get(names::SERVER_TIME)?,
            text: get(names::TEXT)?,
        })
    }

    /// The term that identifies a message.
    pub fn key_term(&self, app: &str, id: &MsgId) -> Term {
        Term::from_field_text(self.key, &key(app, id))
    }

    /// The tantivy document for `doc`.
    pub fn document(&self, doc: &SearchDoc) -> TantivyDocument {
        let mut d = TantivyDocument::new();
        d.add_text(self.key, key(doc.app.as_str(), &doc.server_msg_id));
        d.add_text(self.app, doc.app.as_str());
        for owner in &doc.owners {
            d.add_text(self.owners, owner.as_str());
        }
        d.add_text(self.msg_id, doc.server_msg_id.to_hex());
        d.add_text(self.viewer, doc.viewer.as_str());
        d.add_text(
            self.conversation,
            stored_conversation(doc.conversation.kind, doc.conversation.id()),
        );
        if doc.conversation.kind == ConversationKind::Direct {
            // Both parties' views, whoever still owns it: the owner clause
            // of the query decides who may find it.
            let peer = UserId::new(doc.conversation.id());
            d.add_text(self.conversation_of, direct_view(&doc.viewer, &peer));
            d.add_text(self.conversation_of, direct_view(&peer, &doc.viewer));
        } else {
            d.add_text(
                self.conversation_of,
                stored_conversation(doc.conversation.kind, doc.conversation.id()),
            );
        }
        d.add_text(self.sender, doc.sender.as_str());
        d.add_i64(self.server_time, doc.server_time);
        d.add_text(self.text, &doc.text);
        d
    }

    /// Rebuilds the [`SearchDoc`] a stored document was made from.
    pub fn search_doc(&self, d: &TantivyDocument) -> Result<SearchDoc> {
        let text = |field: Field, name: &str| -> Result<String> {
            d.get_first(field)
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(|| corrupt(format!("a stored document has no {name}")))
        };
        let conversation = text(self.conversation, names::CONVERSATION)?;
        let (kind, id) = conversation
            .split_once('|')
            .ok_or_else(|| corrupt(format!("bad stored conversation {conversation:?}")))?;
        let kind = kind
            .parse::<u8>()
            .map_err(|_| corrupt(format!("bad stored conversation kind {kind:?}")))
            .and_then(ConversationKind::from_u8)?;
        let owners: Vec<UserId> = d
            .get_all(self.owners)
            .filter_map(|v| v.as_str().map(UserId::new))
            .collect();
        if owners.is_empty() {
            return Err(corrupt("a stored document has no owner".into()));
        }
        Ok(SearchDoc {
            app: text(self.app, names::APP)?.into(),
            server_msg_id: MsgId::from_hex(&text(self.msg_id, names::MSG_ID)?)?,
            owners,
            viewer: text(self.viewer, names::VIEWER)?.into(),
            conversation: Conversation::from_parts(kind, id),
            sender: text(self.sender, names::SENDER)?.into(),
            server_time: d
                .get_first(self.server_time)
                .and_then(|v| v.as_i64())
                .ok_or_else(|| corrupt("a stored document has no server_time".into()))?,
            text: text(self.text, names::TEXT)?,
        })
    }
}

fn key(app: &str, id: &MsgId) -> String {
    format!("{}|{app}|{}", app.len(), id.to_hex())
}

/// How a conversation is stored: `kind|id`.
fn stored_conversation(kind: ConversationKind, id: &str) -> String {
    format!("{}|{id}", kind as u8)
}

/// The 1:1 conversation with `peer` as `party` sees it; the length prefix
/// keeps it unambiguous whatever the ids hold.
fn direct_view(party: &UserId, peer: &UserId) -> String {
    format!(
        "{}|{}|{}|{}",
        ConversationKind::Direct as u8,
        party.as_str().len(),
        party.as_str(),
        peer.as_str()
    )
}

/// The filter term of `conversation` as `owner` sees it.
pub(crate) fn conversation_filter(owner: &UserId, conversation: &Conversation) -> String {
    if conversation.kind == ConversationKind::Direct {
        direct_view(owner, &UserId::new(conversation.id()))
    } else {
        stored_conversation(conversation.kind, conversation.id())
    }
}

fn corrupt(message: String) -> Error {
    Error::internal(format!(
        "{message}: the search index is damaged; move the directory away and run \
         `bubble-server reindex`"
    ))
}
