//! The default tokenizer: CJK text as overlapping bigrams plus unigrams,
//! everything else as whole lowercased words (letters and digits apart).
//!
//! Chinese has no spaces between words, so a search for "大家" must find
//! "大家好" without knowing where words end. Indexing every pair of adjacent
//! CJK characters (and every single one) lets a query of any length match:
//! one character is a unigram term, two are one bigram, longer ones are a
//! phrase of bigrams at adjacent positions. No dictionary is needed, new words
//! and names are found, and the cost is an index about twice as large for CJK
//! text plus a few hits where a query spans a word boundary (measured in
//! `docs/storage/tantivy.md`).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The name this tokenizer is registered under; stored in the index schema,
/// so an index remembers which tokenizer built it.
pub(crate) const CJK_BIGRAM: &str = "bubble_cjk_bigram";

/// What a token is for: the index gets unigrams and bigrams, a query only
/// what it needs to match (bigrams, or one unigram for a lone character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every unigram and bigram: what documents are indexed with.
    Index,
    /// Bigrams for CJK runs of two or more characters, a unigram for a lone one.
    Query,
}

/// Whether `c` is written without spaces between words (Chinese, Japanese
/// kana, Korean Hangul), so it is split into n-grams rather than words.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3100..=0x312F   // Bopomofo
        | 0x31F0..=0x31FF   // Katakana phonetic extensions
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0x20000..=0x3134F // CJK Extensions B..G
    )
}

/// Folds full-width ASCII (what Chinese input methods type: "ＡＢＣ１２３")
/// to plain ASCII, so "abc123" finds it.
fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Splits `text` into tokens for `mode`. Positions count words and CJK
/// characters, so the bigrams of a CJK run sit at adjacent positions (a
/// phrase query over them matches only the same run of characters).
pub(crate) fn tokenize(text: &str, mode: Mode) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut position = 0;
    // (byte offset, folded char) of the run being read.
    let mut word: Vec<(usize, char)> = Vec::new();
    let mut cjk: Vec<(usize, char)> = Vec::new();
    for (offset, raw) in text.char_indices() {
        let c = fold_width(raw);
        if is_cjk(c) {
            flush_word(text, &mut word, &mut position, &mut tokens);
            cjk.push((offset, c));
        } else if c.is_alphanumeric() {
            flush_cjk(text, &mut cjk, mode, &mut position, &mut tokens);
            // Letters and digits are separate words ("iPhone15" is "iphone"
            // then "15"), so "iphone" finds it; "iPhone15" still does, as a
            // phrase of both.
            if word
                .last()
                .is_some_and(|&(_, l)| l.is_numeric() != c.is_numeric())
            {
                flush_word(text, &mut word, &mut position, &mut tokens);
            }
            word.push((offset, c));
        } else {
            flush_word(text, &mut word, &mut position, &mut tokens);
            flush_cjk(text, &mut cjk, mode, &mut position, &mut tokens);
        }
    }
    flush_word(text, &mut word, &mut position, &mut tokens);
    flush_cjk(text, &mut cjk, mode, &mut position, &mut tokens);
    tokens
}

fn end_of(text: &str, (offset, _): (usize, char)) -> usize {
    // The raw char's length: folding may change the width in bytes.
    offset + text[offset..].chars().next().map_or(0, char::len_utf8)
}

fn flush_word(
    text: &str,
    word: &mut Vec<(usize, char)>,
    position: &mut usize,
    out: &mut Vec<Token>,
) {
    let (Some(&first), Some(&last)) = (word.first(), word.last()) else {
        return;
    };
    let mut s = String::with_capacity(word.len());
    for &(_, c) in word.iter() {
        s.extend(c.to_lowercase());
    }
    out.push(Token {
        offset_from: first.0,
        offset_to: end_of(text, last),
        position: *position,
        text: s,
        position_length: 1,
    });
    *position += 1;
    word.clear();
}

fn flush_cjk(
    text: &str,
    run: &mut Vec<(usize, char)>,
    mode: Mode,
    position: &mut usize,
    out: &mut Vec<Token>,
) {
    let n = run.len();
    for i in 0..n {
        let (offset, c) = run[i];
        if mode == Mode::Index || n == 1 {
            out.push(Token {
                offset_from: offset,
                offset_to: end_of(text, run[i]),
                position: *position + i,
                text: c.to_string(),
                position_length: 1,
            });
        }
        if i + 1 < n {
            let next = run[i + 1];
            let mut s = String::with_capacity(8);
            s.push(c);
            s.push(next.1);
            out.push(Token {
                offset_from: offset,
                offset_to: end_of(text, next),
                position: *position + i,
                text: s,
                position_length: 2,
            });
        }
    }
    *position += n;
    run.clear();
}

/// [`tokenize`] in [`Mode::Index`] as a tantivy tokenizer.
#[derive(Debug, Clone, Default)]
pub(crate) struct CjkBigramTokenizer;

/// The tokens of one text, handed out one at a time.
pub(crate) struct VecTokenStream {
    tokens: Vec<Token>,
    // Index of the current token + 1 (0: before the first).
    next: usize,
}

impl Tokenizer for CjkBigramTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream {
            tokens: tokenize(text, Mode::Index),
            next: 0,
        }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, mode: Mode) -> Vec<(String, usize)> {
        tokenize(text, mode)
            .into_iter()
            .map(|t| (t.text, t.position))
            .collect()
    }

    fn owned(v: &[(&str, usize)]) -> Vec<(String, usize)> {
        v.iter().map(|(s, p)| (s.to_string(), *p)).collect()
    }

    #[test]
    fn a_cjk_run_is_indexed_as_unigrams_and_bigrams_at_adjacent_positions() {
        assert_eq!(
            texts("大家好", Mode::Index),
            owned(&[("大", 0), ("大家", 0), ("家", 1), ("家好", 1), ("好", 2)])
        );
    }

    #[test]
    fn a_query_run_is_only_bigrams_and_a_lone_character_a_unigram() {
        assert_eq!(
            texts("大家好", Mode::Query),
            owned(&[("大家", 0), ("家好", 1)])
        );
        assert_eq!(texts("好", Mode::Query), owned(&[("好", 0)]));
    }

    #[test]
    fn latin_words_are_whole_and_lowercased_and_punctuation_splits_runs() {
        assert_eq!(
            texts("用iPhone拍照，Hello!", Mode::Query),
            owned(&[("用", 0), ("iphone", 1), ("拍照", 2), ("hello", 4)])
        );
    }

    #[test]
    fn letters_and_digits_are_separate_words() {
        assert_eq!(
            texts("iPhone15到了 3pm", Mode::Query),
            owned(&[("iphone", 0), ("15", 1), ("到了", 2), ("3", 4), ("pm", 5)])
        );
    }

    #[test]
    fn full_width_letters_and_digits_fold_to_ascii() {
        assert_eq!(
            texts("ＡＢＣ１２３", Mode::Index),
            owned(&[("abc", 0), ("123", 1)])
        );
    }

    #[test]
    fn offsets_point_at_the_original_bytes() {
        let text = "ｗｉｆｉ坏了";
        let tokens = tokenize(text, Mode::Index);
        assert_eq!(
            &text[tokens[0].offset_from..tokens[0].offset_to],
            "ｗｉｆｉ"
        );
        let bigram = tokens.iter().find(|t| t.text == "坏了").unwrap();
        assert_eq!(&text[bigram.offset_from..bigram.offset_to], "坏了");
    }
}
