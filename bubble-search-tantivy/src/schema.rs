//! The index schema: one tantivy document per (app, owner, message).

use bubble_core::ports::SearchDoc;
use bubble_core::{ConversationKind, Error, MsgId, Result};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{TantivyDocument, Term};

use crate::error::missing_field;

/// Field names, in one place: they are the on-disk format.
pub(crate) mod names {
    pub const KEY: &str = "key";
    pub const APP: &str = "app";
    pub const OWNER: &str = "owner";
    pub const MSG_ID: &str = "msg_id";
    pub const CONVERSATION: &str = "conversation";
    pub const SENDER: &str = "sender";
    pub const SERVER_TIME: &str = "server_time";
    pub const TEXT: &str = "text";
}

/// The schema's fields, resolved once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `len(app)|app|owner|msgid-hex`: the unique key that makes re-indexing
    /// replace. The length prefix keeps it unambiguous even for ids that
    /// contain `|` (which `bubble_core::validate_id` already refuses).
    pub key: Field,
    /// Raw app id: every query must match it.
    pub app: Field,
    /// Raw owner id: every query must match it.
    pub owner: Field,
    /// Message id, lowercase hex (stored only).
    pub msg_id: Field,
    /// `kind|id` of the conversation from the owner's view (raw).
    pub conversation: Field,
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
        b.add_text_field(names::OWNER, STRING | STORED);
        b.add_text_field(names::MSG_ID, STORED);
        b.add_text_field(names::CONVERSATION, STRING | STORED);
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
            owner: get(names::OWNER)?,
            msg_id: get(names::MSG_ID)?,
            conversation: get(names::CONVERSATION)?,
            sender: get(names::SENDER)?,
            server_time: get(names::SERVER_TIME)?,
            text: get(names::TEXT)?,
        })
    }

    /// The term that identifies one owner's copy of a message.
    pub fn key_term(&self, app: &str, owner: &str, id: &MsgId) -> Term {
        Term::from_field_text(self.key, &key(app, owner, id))
    }

    /// The tantivy document for `doc`.
    pub fn document(&self, doc: &SearchDoc) -> TantivyDocument {
        let mut d = TantivyDocument::new();
        d.add_text(
            self.key,
            key(doc.app.as_str(), doc.owner.as_str(), &doc.server_msg_id),
        );
        d.add_text(self.app, doc.app.as_str());
        d.add_text(self.owner, doc.owner.as_str());
        d.add_text(self.msg_id, doc.server_msg_id.to_hex());
        d.add_text(
            self.conversation,
            conversation_value(doc.conversation.kind, doc.conversation.id()),
        );
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
        Ok(SearchDoc {
            app: text(self.app, names::APP)?.into(),
            owner: text(self.owner, names::OWNER)?.into(),
            server_msg_id: MsgId::from_hex(&text(self.msg_id, names::MSG_ID)?)?,
            conversation: bubble_core::Conversation::from_parts(kind, id),
            sender: text(self.sender, names::SENDER)?.into(),
            server_time: d
                .get_first(self.server_time)
                .and_then(|v| v.as_i64())
                .ok_or_else(|| corrupt("a stored document has no server_time".into()))?,
            text: text(self.text, names::TEXT)?,
        })
    }
}

fn key(app: &str, owner: &str, id: &MsgId) -> String {
    format!("{}|{app}|{owner}|{}", app.len(), id.to_hex())
}

/// How a conversation is stored and filtered: `kind|id`.
pub(crate) fn conversation_value(kind: ConversationKind, id: &str) -> String {
    format!("{}|{id}", kind as u8)
}

fn corrupt(message: String) -> Error {
    Error::internal(format!(
        "{message}: the search index is damaged; move the directory away and re-index"
    ))
}
