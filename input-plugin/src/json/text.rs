//! JSON string contents as they appear in the page, escapes and all. Most API strings have no
//! escapes, so they are used in place; the rare escaped one is decoded only where its value
//! matters (comparisons, msgpack output). The parser has checked every escape, so decoding
//! cannot fail.

use std::borrow::Cow;

/// The text between a string's quotes. No raw control characters; escapes are valid, with
/// surrogates paired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> Str<'a> {
    /// Callers guarantee what the parser checked: `raw` is valid JSON string contents, and
    /// `escaped` tells whether it has a backslash.
    pub(super) fn new(raw: &'a str, escaped: bool) -> Self {
        Self { raw, escaped }
    }

    /// The contents as written in JSON (what NDJSON output copies between quotes).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    pub fn is_escaped(&self) -> bool {
        self.escaped
    }

    /// The decoded value; borrowed unless the string has escapes.
    pub fn decoded(&self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(self.chars().collect())
        } else {
            Cow::Borrowed(self.raw)
        }
    }

    /// Byte length of the decoded value.
    pub fn decoded_len(&self) -> usize {
        if self.escaped {
            self.chars().map(char::len_utf8).sum()
        } else {
            self.raw.len()
        }
    }

    pub fn chars(&self) -> Chars<'a> {
        Chars {
            rest: self.raw.chars(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Compares the decoded value with `s` without allocating.
    #[inline]
    pub fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.chars().eq(s.chars())
        } else {
            self.raw == s
        }
    }

    pub fn same(&self, other: &Str) -> bool {
        if self.escaped || other.escaped {
            self.chars().eq(other.chars())
        } else {
            self.raw == other.raw
        }
    }
}

/// Decodes escapes on the fly.
pub struct Chars<'a> {
    rest: std::str::Chars<'a>,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        if c != '\\' {
            return Some(c);
        }
        Some(match self.rest.next()? {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = hex4(&mut self.rest);
                let mut ahead = self.rest.clone();
                let paired = (0xD800..0xDC00).contains(&hi)
                    && ahead.next() == Some('\\')
                    && ahead.next() == Some('u');
                let lo = if paired { hex4(&mut ahead) } else { 0 };
                if (0xDC00..0xE000).contains(&lo) {
                    self.rest = ahead;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                } else {
                    // A lone surrogate (the parser reports the item; this only keeps decoding total).
                    char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
            }
            other => other, // `"`, `\`, `/`
        })
    }
}

fn hex4(chars: &mut std::str::Chars) -> u32 {
    (0..4).fold(0, |acc, _| {
        acc * 16 + chars.next().and_then(|c| c.to_digit(16)).unwrap_or(0)
    })
}

/// One escape, after its backslash.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Escape {
    /// This many bytes long.
    Valid(usize),
    /// A `\uXXXX` surrogate without its other half: grammatical, but no character (5 bytes).
    LoneSurrogate,
}

/// Checks one escape starting after the backslash at `bytes[at]`; `None` when it is not JSON.
pub(super) fn escape_len(bytes: &[u8], at: usize) -> Option<Escape> {
    match *bytes.get(at)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(Escape::Valid(1)),
        b'u' => {
            let unit = hex_at(bytes, at + 1)?;
            Some(match unit {
                0xD800..=0xDBFF => {
                    let low = (bytes.get(at + 5..at + 7) == Some(b"\\u"))
                        .then(|| hex_at(bytes, at + 7))
                        .flatten();
                    match low {
                        Some(0xDC00..=0xDFFF) => Escape::Valid(11),
                        _ => Escape::LoneSurrogate,
                    }
                }
                0xDC00..=0xDFFF => Escape::LoneSurrogate,
                _ => Escape::Valid(5),
            })
        }
        _ => None,
    }
}

fn hex_at(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |acc, b| Some(acc * 16 + char::from(*b).to_digit(16)?))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Index of the first `"`, `\` or control character at or after `at` (or `bytes.len()`).
/// Strings are most of a page's bytes: 16 bytes a step with SSE2 (every x86-64 has it), then
/// 8 a step in a 64-bit word.
#[inline(always)]
pub(super) fn find_special(bytes: &[u8], mut at: usize) -> usize {
    #[cfg(target_feature = "sse2")]
    while let Some(chunk) = bytes.get(at..at + 16) {
        use safe_arch::{
            bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, max_u8_m128i,
            move_mask_i8_m128i, set_splat_i8_m128i,
        };
        let v = load_unaligned_m128i(chunk.try_into().unwrap_or(&[0; 16]));
        let quote = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'"' as i8));
        let backslash = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'\\' as i8));
        let low = set_splat_i8_m128i(0x1f);
        let control = cmp_eq_mask_i8_m128i(max_u8_m128i(v, low), low);
        let found = move_mask_i8_m128i(bitor_m128i(bitor_m128i(quote, backslash), control));
        if found != 0 {
            return at + found.trailing_zeros() as usize;
        }
        at += 16;
    }
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        let found = zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if found != 0 {
            // The lowest flagged byte is always a real match (borrows only run upwards).
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(bytes.len() - at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_special_agrees_with_a_byte_loop() {
        let texts = [
            "plain ascii text without anything",
            "abc\"def",
            "0123456789abcdef\\x",
            "tab\there",
            "éèà\"",
            "",
            "1234567",
            "12345678\u{1}",
            "sixteen+ bytes of text, then a quote: \" and more",
            "control after twenty:\u{1f} and a backslash after thirty-two \\",
        ];
        for t in texts {
            let bytes = t.as_bytes();
            for start in 0..=bytes.len() {
                let expected = (start..bytes.len())
                    .find(|&i| matches!(bytes[i], b'"' | b'\\') || bytes[i] < 0x20)
                    .unwrap_or(bytes.len());
                assert_eq!(find_special(bytes, start), expected, "{t:?} from {start}");
            }
        }
    }

    #[test]
    fn escapes_decode_like_serde_json() {
        let raw = r#"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00z"#;
        let s = Str::new(raw, true);
        let expected: String = serde_json::from_str(&format!("\"{raw}\"")).unwrap();
        assert_eq!(s.decoded(), expected);
        assert_eq!(s.decoded_len(), expected.len());
        assert!(s.eq_str(&expected));
        assert!(Str::new(r"\u0061", true).same(&Str::new("a", false)));
        assert!(!s.same(&Str::new("a", false)));
    }

    #[test]
    fn escape_validation() {
        let ok = |s: &str| escape_len(s.as_bytes(), 0);
        assert_eq!(ok("n"), Some(Escape::Valid(1)));
        assert_eq!(ok("u00e9"), Some(Escape::Valid(5)));
        assert_eq!(ok(r"ud83d\ude00"), Some(Escape::Valid(11)));
        assert_eq!(ok("ud83d"), Some(Escape::LoneSurrogate));
        assert_eq!(ok(r"ud83d\u0041"), Some(Escape::LoneSurrogate));
        assert_eq!(ok("ude00"), Some(Escape::LoneSurrogate));
        assert_eq!(
            Str::new(r"\ud83dA\ude00", true).decoded(),
            "\u{fffd}A\u{fffd}"
        );
        assert_eq!(ok("u12"), None);
        assert_eq!(ok("x"), None);
        assert_eq!(ok(""), None);
    }
}
