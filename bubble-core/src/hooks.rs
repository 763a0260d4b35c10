//! Send hooks: a product's own code that sees messages. A before-send hook
//! may allow, refuse or rewrite a message before anything is stored; an
//! after-send hook receives every stored message at least once, in order,
//! from a durable queue.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{AppId, Content, Conversation, DeviceId, MsgId, UserId};

/// A message about to be stored, as a before-send hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The app.
    pub app: AppId,
    /// Who sends it.
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// Where to (as the sender sees it: the peer, or the group).
    pub conversation: Conversation,
    /// The sender's dedup id.
    pub client_msg_id: String,
    /// What it says.
    pub content: Content,
}

/// A before-send hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store it as sent.
    Allow,
    /// Do not store it; the sender gets PERMISSION_DENIED with `reason`.
    Refuse {
        /// Shown to the sender.
        reason: String,
    },
    /// Store `content` instead (a masked word, a rewritten link).
    Replace(Content),
}

/// Sees every message before it is stored. An error means the hook could
/// not answer (down, too slow); the app's failure policy then allows or
/// refuses the message.
#[async_trait]
pub trait BeforeSendHook: Send + Sync + 'static {
    /// Judges one message.
    async fn review(&self, message: &OutgoingMessage) -> Result<Verdict>;
}

/// A stored message, as an after-send hook receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The app.
    pub app: AppId,
    /// The server's id for it.
    pub server_msg_id: MsgId,
    /// Who sent it.
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// Where to, as the sender sees it.
    pub conversation: Conversation,
    /// The sender's dedup id.
    pub client_msg_id: String,
    /// When the server took it (ms).
    pub server_time: i64,
    /// What it says.
    pub content: Content,
}

/// Receives stored messages. An error means try the same batch again
/// later (nothing after it is sent first).
#[async_trait]
pub trait AfterSendHook: Send + Sync + 'static {
    /// Takes a batch, in the order the messages were stored.
    async fn deliver(&self, messages: &[SentMessage]) -> Result<()>;
}

/// What the word filter does with a message that holds a listed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordAction {
    /// Refuse the message (the sender is told which rule).
    #[default]
    Refuse,
    /// Store it with each listed word replaced by asterisks.
    Mask,
}

/// The built-in before-send hook: refuses or masks text messages holding
/// any listed word. Matching ignores case and finds words inside longer
/// text (so it works for languages written without spaces).
#[derive(Debug, Clone)]
pub struct WordFilter {
    /// Lowercased, longest first (a longer word is masked whole).
    words: Vec<String>,
    action: WordAction,
}

impl WordFilter {
    /// A filter of `words` (empty entries are ignored).
    pub fn new(words: impl IntoIterator<Item = impl AsRef<str>>, action: WordAction) -> WordFilter {
        let mut words: Vec<String> = words
            .into_iter()
            .map(|w| w.as_ref().trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
        words.dedup();
        WordFilter { words, action }
    }

    /// The `(start, end)` character ranges of listed words in `text`,
    /// leftmost first, not overlapping.
    fn matches(&self, text: &str) -> Vec<(usize, usize)> {
        let lower: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        // Lowercasing may change the length (rare: 'İ'); then match on the
        // original characters' own lowercase one by one instead.
        let chars: Vec<char> = if lower.len() == text.chars().count() {
            lower
        } else {
            text.chars()
                .map(|c| c.to_lowercase().next().unwrap_or(c))
                .collect()
        };
        let words: Vec<Vec<char>> = self.words.iter().map(|w| w.chars().collect()).collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match words.iter().find(|w| chars[i..].starts_with(w)) {
                Some(w) => {
                    found.push((i, i + w.len()));
                    i += w.len();
                }
                None => i += 1,
            }
        }
        found
    }
}

#[async_trait]
impl BeforeSendHook for WordFilter {
    async fn review(&self, message: &OutgoingMessage) -> Result<Verdict> {
        if message.content.kind != crate::types::ContentType::Text || self.words.is_empty() {
            return Ok(Verdict::Allow);
        }
        let Ok(text) = std::str::from_utf8(&message.content.body) else {
            return Ok(Verdict::Allow);
        };
        let found = self.matches(text);
        if found.is_empty() {
            return Ok(Verdict::Allow);
        }
        Ok(match self.action {
            WordAction::Refuse => Verdict::Refuse {
                reason: "it contains a word this app does not allow".to_owned(),
            },
            WordAction::Mask => {
                let mut masked = String::with_capacity(text.len());
                let mut next = found.iter().peekable();
                for (i, c) in text.chars().enumerate() {
                    while next.peek().is_some_and(|(_, end)| *end <= i) {
                        next.next();
                    }
                    let hidden = next
                        .peek()
                        .is_some_and(|(start, end)| *start <= i && i < *end);
                    masked.push(if hidden { '*' } else { c });
                }
                Verdict::Replace(Content::text(masked))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ConversationKind;

    fn message(text: &str) -> OutgoingMessage {
        OutgoingMessage {
            app: AppId::new("a"),
            sender: UserId::new("ann"),
            sender_device: DeviceId::new("d"),
            conversation: Conversation {
                kind: ConversationKind::Direct,
                id: "bob".into(),
            },
            client_msg_id: "c".into(),
            content: Content::text(text),
        }
    }

    #[tokio::test]
    async fn a_listed_word_refuses_the_message_whatever_its_case() {
        let filter = WordFilter::new(["spam"], WordAction::Refuse);
        assert!(matches!(
            filter.review(&message("buy SPAM now")).await.unwrap(),
            Verdict::Refuse { .. }
        ));
        assert_eq!(
            filter.review(&message("all good")).await.unwrap(),
            Verdict::Allow
        );
    }

    #[tokio::test]
    async fn masking_hides_each_listed_word_and_keeps_the_rest() {
        let filter = WordFilter::new(["bad", "坏蛋"], WordAction::Mask);
        assert_eq!(
            filter
                .review(&message("Bad idea, 你这个坏蛋!"))
                .await
                .unwrap(),
            Verdict::Replace(Content::text("*** idea, 你这个**!"))
        );
    }

    #[tokio::test]
    async fn the_longer_of_two_overlapping_words_is_masked_whole() {
        let filter = WordFilter::new(["ab", "abc"], WordAction::Mask);
        assert_eq!(
            filter.review(&message("xabcx")).await.unwrap(),
            Verdict::Replace(Content::text("x***x"))
        );
    }

    #[tokio::test]
    async fn content_other_than_text_passes() {
        let filter = WordFilter::new(["spam"], WordAction::Refuse);
        let mut m = message("spam");
        m.content.kind = crate::types::ContentType::Custom;
        assert_eq!(filter.review(&m).await.unwrap(), Verdict::Allow);
    }
}
