//! The chosen tokenizer, on both sides: how documents are indexed and how a
//! query word becomes terms that match them.

use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

use crate::config::TokenizerKind;
use crate::tokenizer::{self, CjkBigramTokenizer, Mode};

/// The tokenizer of one index.
#[derive(Clone)]
pub(crate) enum Analyzer {
    /// [`TokenizerKind::CjkBigram`].
    CjkBigram,
    /// [`TokenizerKind::Jieba`]: the index side (search mode) and the query
    /// side (default mode: the coarse words, each of which the search-mode
    /// index holds as a term).
    #[cfg(feature = "jieba")]
    Jieba,
}

/// Shortest Latin query word that also matches as a prefix ("a" would
/// match nearly everything).
const MIN_PREFIX_CHARS: usize = 2;

/// How many index terms a prefix may stand for. The term dictionary is
/// shared by every owner, so this is generous: a prefix that has more
/// completions across the whole index may miss some of an owner's words.
const MAX_PREFIX_EXPANSIONS: u32 = 2_000;

#[cfg(feature = "jieba")]
const JIEBA: &str = "bubble_jieba";

impl Analyzer {
    /// The analyzer for `kind`; `None` when this build does not have it
    /// (the config's check refuses such a `tokenizer` first).
    pub fn new(kind: TokenizerKind) -> Option<Analyzer> {
        match kind {
            TokenizerKind::CjkBigram => Some(Analyzer::CjkBigram),
            #[cfg(feature = "jieba")]
            TokenizerKind::Jieba => Some(Analyzer::Jieba),
            #[cfg(not(feature = "jieba"))]
            TokenizerKind::Jieba => None,
        }
    }

    /// The kind this analyzer implements.
    pub fn kind(&self) -> TokenizerKind {
        match self {
            Analyzer::CjkBigram => TokenizerKind::CjkBigram,
            #[cfg(feature = "jieba")]
            Analyzer::Jieba => TokenizerKind::Jieba,
        }
    }

    /// The name the tokenizer is registered under (and recorded in the schema).
    pub fn name(&self) -> &'static str {
        match self {
            Analyzer::CjkBigram => tokenizer::CJK_BIGRAM,
            #[cfg(feature = "jieba")]
            Analyzer::Jieba => JIEBA,
        }
    }

    /// Which kind built an index whose text field names `tokenizer_name`.
    pub fn kind_of(tokenizer_name: &str) -> Option<TokenizerKind> {
        match tokenizer_name {
            tokenizer::CJK_BIGRAM => Some(TokenizerKind::CjkBigram),
            "bubble_jieba" => Some(TokenizerKind::Jieba),
            _ => None,
        }
    }

    /// The index-side analyzer to register.
    pub fn text_analyzer(&self) -> TextAnalyzer {
        match self {
            Analyzer::CjkBigram => TextAnalyzer::from(CjkBigramTokenizer),
            #[cfg(feature = "jieba")]
            Analyzer::Jieba => TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new())
                .filter(tantivy::tokenizer::LowerCaser)
                .build(),
        }
    }

    /// What one whitespace-separated query word must match in `field`, or
    /// `None` when the word has no searchable characters (punctuation only).
    ///
    /// The query is built from terms, never parsed: no query syntax in the
    /// user's words can reach another field.
    pub fn word_query(&self, field: Field, word: &str) -> Option<Box<dyn Query>> {
        match self {
            Analyzer::CjkBigram => {
                let tokens = tokenizer::tokenize(word, Mode::Query);
                let first = tokens.first()?.position;
                let terms: Vec<(usize, Term)> = tokens
                    .iter()
                    .map(|t| (t.position - first, Term::from_field_text(field, &t.text)))
                    .collect();
                // Adjacent bigrams (and words) in order: "大家好" matches only
                // where 大家 and 家好 overlap, not wherever both occur.
                let exact: Box<dyn Query> = match terms.len() {
                    1 => term_query(field, &tokens[0].text),
                    _ => Box::new(PhraseQuery::new_with_offset(terms.clone())),
                };
                // A Latin word at the end also matches as a prefix, as people
                // type in a chat search box ("meet" finds "meetings"); exact
                // matches score higher. Bigrams already find any CJK substring.
                let last = &tokens[tokens.len() - 1].text;
                let latin = last.chars().count() >= MIN_PREFIX_CHARS
                    && !last.chars().any(tokenizer::is_cjk);
                if !latin {
                    return Some(exact);
                }
                let mut prefix = PhrasePrefixQuery::new_with_offset(terms);
                prefix.set_max_expansions(MAX_PREFIX_EXPANSIONS);
                Some(Box::new(BooleanQuery::new(vec![
                    (Occur::Should, exact),
                    (Occur::Should, Box::new(prefix)),
                ])))
            }
            #[cfg(feature = "jieba")]
            Analyzer::Jieba => {
                use tantivy::tokenizer::{TokenStream, Tokenizer};
                let mut words = Vec::new();
                let mut t = tantivy_jieba::JiebaTokenizer::with_search_mode(false);
                let mut stream = t.token_stream(word);
                while let Some(token) = stream.next() {
                    if token.text.chars().any(char::is_alphanumeric) {
                        let w = token.text.to_lowercase();
                        if !words.contains(&w) {
                            words.push(w);
                        }
                    }
                }
                match words.len() {
                    0 => None,
                    1 => Some(term_query(field, &words[0])),
                    _ => Some(Box::new(BooleanQuery::new(
                        words
                            .iter()
                            .map(|w| (Occur::Must, term_query(field, w)))
                            .collect(),
                    ))),
                }
            }
        }
    }
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    ))
}
