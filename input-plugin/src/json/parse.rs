//! A strict JSON parser (RFC 8259: no trailing commas, no comments, escapes and numbers
//! checked) that appends nodes to a tape. Objects and arrays nest at most [`MAX_DEPTH`] deep,
//! as with serde_json, so hostile nesting costs an error, not the stack. An item's depth counts
//! from its own root, so it is the same item in a page as alone.

use super::text::{Escape, Str, escape_len, find_special};
use super::{Mark, Node, Tape, after, name_hash};

/// Objects and arrays one inside another: serde_json's limit.
pub const MAX_DEPTH: u32 = 127;
const TOO_DEEP: &str = "nested too deeply";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {at}: {what}")]
pub struct JsonError {
    pub at: usize,
    pub what: &'static str,
}

/// Errors inside the parser are boxed: the hot path then returns a `Result` that fits in a
/// register, and only an invalid page pays for the allocation.
type Fail = Box<JsonError>;

/// A page's envelope. Items were handed to the caller while parsing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    pub cursor: Option<String>,
    pub has_more: bool,
    /// Elements of `items`, whatever their type.
    pub items: usize,
}

/// Parses `text` as exactly one JSON value onto `tape`.
pub(super) fn parse_value<'a>(text: &'a str, tape: &mut Tape<'a>) -> Result<(), JsonError> {
    let mut p = Parser::new(text);
    p.value(tape, 0).and_then(|()| p.end()).map_err(|e| *e)?;
    p.deferred.take().map_or(Ok(()), Err)
}

/// Parses an Events API page `{"cursor", "has_more", "items": [...]}`, calling `on_item` with
/// each item alone on `tape` (root at node 0) as soon as it is parsed, or with the error of an
/// item that is well-formed but unusable (nested too deeply, a number beyond f64, a lone
/// surrogate), which is skipped, so that one hostile item costs only itself. Unknown
/// envelope members are checked and ignored. On error the caller must discard whatever
/// `on_item` produced: the page as a whole is invalid.
pub fn parse_page<'a>(
    text: &'a str,
    tape: &mut Tape<'a>,
    on_item: impl FnMut(Result<&mut Tape<'a>, JsonError>),
) -> Result<Envelope, JsonError> {
    page(text, tape, on_item).map_err(|e| *e)
}

fn page<'a>(
    text: &'a str,
    tape: &mut Tape<'a>,
    mut on_item: impl FnMut(Result<&mut Tape<'a>, JsonError>),
) -> Result<Envelope, Fail> {
    let mut p = Parser::new(text);
    let mut env = Envelope::default();
    let (mut cursor, mut has_more, mut items) = (false, false, false);
    p.ws();
    p.expect(b'{', "expected the page object")?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.pos += 1;
        return p.end().map(|()| env);
    }
    loop {
        let name = p.key()?.decoded();
        let seen = match &*name {
            "cursor" => Some(&mut cursor),
            "has_more" => Some(&mut has_more),
            "items" => Some(&mut items),
            _ => None,
        };
        if let Some(seen) = seen
            && std::mem::replace(seen, true)
        {
            return Err(p.err("envelope member appears twice"));
        }
        p.ws();
        match &*name {
            "cursor" => {
                env.cursor = match p.peek() {
                    Some(b'n') => p.literal(b"null").map(|()| None)?,
                    Some(b'"') => Some(p.string()?.decoded().into_owned()),
                    _ => return Err(p.err("`cursor` is not a string")),
                };
                if let Some(e) = p.deferred.take() {
                    return Err(Box::new(e));
                }
            }
            "has_more" => {
                env.has_more = match p.peek() {
                    Some(b't') => p.literal(b"true").map(|()| true)?,
                    Some(b'f') => p.literal(b"false").map(|()| false)?,
                    _ => return Err(p.err("`has_more` is not a boolean")),
                }
            }
            "items" if p.peek() == Some(b'n') => p.literal(b"null")?,
            "items" => {
                p.expect(b'[', "`items` is not an array")?;
                p.ws();
                if p.peek() == Some(b']') {
                    p.pos += 1;
                } else {
                    loop {
                        tape.clear();
                        p.ws();
                        let start = p.pos;
                        match p.value(tape, 0) {
                            Ok(()) => match p.deferred.take() {
                                None => on_item(Ok(tape)),
                                Some(e) => on_item(Err(e)),
                            },
                            Err(e) if e.what == TOO_DEEP => {
                                p.pos = start;
                                p.skip_nested()?;
                                p.deferred = None;
                                on_item(Err(*e));
                            }
                            Err(e) => return Err(e),
                        }
                        env.items += 1;
                        if !p.more(b']', "expected `,` or `]` in `items`")? {
                            break;
                        }
                    }
                }
            }
            _ => {
                let mut scratch = Tape::default();
                p.value(&mut scratch, 1)?;
                p.deferred = None;
            }
        }
        if !p.more(b'}', "expected `,` or `}` in the page object")? {
            break;
        }
    }
    p.end().map(|()| env)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// What makes the value being parsed unusable without making the text invalid: reported
    /// once the value is complete.
    deferred: Option<JsonError>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            deferred: None,
        }
    }

    #[cold]
    fn defer(&mut self, at: usize, what: &'static str) {
        self.deferred.get_or_insert(JsonError { at, what });
    }

    #[cold]
    fn err(&self, what: &'static str) -> Fail {
        Box::new(JsonError { at: self.pos, what })
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Fail> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// Only whitespace may follow the value.
    fn end(&mut self) -> Result<(), Fail> {
        self.ws();
        if self.pos < self.text.len() {
            return Err(self.err("trailing characters after the value"));
        }
        Ok(())
    }

    fn value(&mut self, tape: &mut Tape<'a>, depth: u32) -> Result<(), Fail> {
        let node = match self.peek() {
            Some(b' ' | b'\n' | b'\r' | b'\t') => {
                self.ws();
                return self.value(tape, depth);
            }
            Some(b'{') => return self.object(tape, depth),
            Some(b'[') => return self.array(tape, depth),
            Some(b'"') => Node::Str(self.string()?),
            Some(b't') => self.literal(b"true").map(|()| Node::Bool(true))?,
            Some(b'f') => self.literal(b"false").map(|()| Node::Bool(false))?,
            Some(b'n') => self.literal(b"null").map(|()| Node::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.err("expected a value")),
            None => return Err(self.err("unexpected end of input")),
        };
        tape.nodes.push(node);
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Fail> {
        if self.text.as_bytes()[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("expected true, false or null"))
        }
    }

    fn enter(&self, depth: u32) -> Result<u32, Fail> {
        if depth >= MAX_DEPTH {
            return Err(self.err(TOO_DEEP));
        }
        Ok(depth + 1)
    }

    /// Steps over a container of any depth without recursion or nodes, checking its tokens and
    /// brackets (not every comma and colon: the value is only being skipped).
    fn skip_nested(&mut self) -> Result<(), Fail> {
        let mut closers = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b'[') => closers.push(b']'),
                Some(b'{') => closers.push(b'}'),
                Some(c @ (b']' | b'}')) => {
                    if closers.pop() != Some(c) {
                        return Err(self.err("mismatched bracket"));
                    }
                }
                Some(b',' | b':') => {}
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                    continue;
                }
                Some(b't' | b'f' | b'n') => {
                    let word: &[u8] = match self.peek() {
                        Some(b't') => b"true",
                        Some(b'f') => b"false",
                        _ => b"null",
                    };
                    self.literal(word)?;
                    continue;
                }
                _ => return Err(self.err("expected a value")),
            }
            self.pos += 1; // the bracket or separator matched above
            if closers.is_empty() {
                return Ok(());
            }
        }
    }

    fn array(&mut self, tape: &mut Tape<'a>, depth: u32) -> Result<(), Fail> {
        let depth = self.enter(depth)?;
        self.pos += 1;
        let at = tape.nodes.len();
        tape.nodes.push(Node::Null);
        let mut len = 0u32;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.value(tape, depth)?;
                len += 1;
                if !self.more(b']', "expected `,` or `]`")? {
                    break;
                }
            }
        }
        tape.nodes[at] = Node::Array {
            len,
            end: end_index(&tape.nodes)?,
        };
        Ok(())
    }

    /// A member name and its colon, whitespace allowed before both; the whitespace after the
    /// colon is the value's to skip. Pages are compact, so each whitespace check is made only
    /// when the expected byte is not there (a tenth of the parser's instructions otherwise).
    #[inline(always)]
    fn key(&mut self) -> Result<Str<'a>, Fail> {
        if self.peek() != Some(b'"') {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a member name"));
            }
        }
        let name = self.string()?;
        if self.peek() != Some(b':') {
            self.ws();
        }
        self.expect(b':', "expected `:` after a member name")?;
        Ok(name)
    }

    /// After a container's element: whether a `,` (another one follows) or `close` (the end)
    /// comes next, whitespace allowed before it.
    #[inline(always)]
    fn more(&mut self, close: u8, what: &'static str) -> Result<bool, Fail> {
        let mut next = self.peek();
        if next != Some(b',') && next != Some(close) {
            self.ws();
            next = self.peek();
        }
        self.pos += 1;
        match next {
            Some(b',') => Ok(true),
            Some(c) if c == close => Ok(false),
            _ => Err(self.err(what)),
        }
    }

    fn object(&mut self, tape: &mut Tape<'a>, depth: u32) -> Result<(), Fail> {
        let depth = self.enter(depth)?;
        self.pos += 1;
        let at = tape.nodes.len();
        tape.nodes.push(Node::Null);
        let mut len = 0u32;
        // A cheap filter for repeated names: 128 bits, one per name hash; only a hit, or an
        // escaped name, costs a scan of the members so far.
        let (mut seen, mut escapes) = ([0u64; 2], false);
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                let name = self.key()?;
                let hash = name_hash(name.raw().as_bytes());
                let (word, bit) = (&mut seen[(hash >> 6) & 1], 1u64 << (hash & 63));
                escapes |= name.is_escaped();
                if (*word & bit != 0 || escapes) && shadow(&mut tape.nodes, at, &name) {
                    len -= 1;
                    if at == 0 {
                        tape.root.disable();
                    }
                }
                *word |= bit;
                if at == 0 && !name.is_escaped() {
                    tape.root.add(tape.nodes.len(), hash);
                } else if at == 0 {
                    tape.root.disable();
                }
                tape.nodes.push(Node::Key {
                    name,
                    mark: Mark::Fresh,
                });
                // Most values are strings: no need for the general dispatch.
                if self.peek() == Some(b'"') {
                    let s = self.string()?;
                    tape.nodes.push(Node::Str(s));
                } else {
                    self.value(tape, depth)?;
                }
                len += 1;
                if !self.more(b'}', "expected `,` or `}`")? {
                    break;
                }
            }
        }
        tape.nodes[at] = Node::Object {
            len,
            end: end_index(&tape.nodes)?,
        };
        Ok(())
    }

    #[inline(always)]
    fn string(&mut self) -> Result<Str<'a>, Fail> {
        let start = self.pos + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            at = find_special(self.text.as_bytes(), at);
            match self.text.as_bytes().get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(Str::new(&self.text[start..at], escaped));
                }
                Some(b'\\') => {
                    let len = match escape_len(self.text.as_bytes(), at + 1) {
                        Some(Escape::Valid(len)) => len,
                        Some(Escape::LoneSurrogate) => {
                            self.defer(at, "lone surrogate in a string");
                            5
                        }
                        None => {
                            self.pos = at;
                            return Err(self.err("invalid escape in a string"));
                        }
                    };
                    escaped = true;
                    at += 1 + len;
                }
                Some(_) => {
                    self.pos = at;
                    return Err(self.err("control character in a string"));
                }
                None => {
                    self.pos = at;
                    return Err(self.err("unterminated string"));
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Node<'a>, Fail> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_digits = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        };
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            exponent = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let text = &self.text[start..self.pos];
        // Only an exponent or a very long integer part can leave f64's range.
        if (exponent || int_digits > 300) && !text.parse::<f64>().is_ok_and(f64::is_finite) {
            self.defer(start, "number out of range");
        }
        Ok(Node::Num(text))
    }
}

/// Marks an earlier member of the object being built at `obj` named `name` as shadowed;
/// returns whether there was one.
fn shadow(out: &mut [Node], obj: usize, name: &Str) -> bool {
    let mut at = obj + 1;
    while at < out.len() {
        let next = after(out, at + 1);
        if let Node::Key { name: prev, mark } = &mut out[at]
            && *mark != Mark::Shadowed
            && prev.same(name)
        {
            *mark = Mark::Shadowed;
            return true;
        }
        at = next;
    }
    false
}

fn end_index(out: &[Node]) -> Result<u32, Fail> {
    u32::try_from(out.len()).map_err(|_| {
        Box::new(JsonError {
            at: 0,
            what: "too many values",
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// Back to serde_json, through the tape's own navigation.
    fn to_value(tape: &Tape, at: usize) -> Value {
        match tape.node(at) {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Num(n) => serde_json::from_str(n).unwrap(),
            Node::Str(s) => Value::String(s.decoded().into_owned()),
            Node::Array { .. } => {
                let mut out = Vec::new();
                let mut i = at + 1;
                while i < tape.skip(at) {
                    out.push(to_value(tape, i));
                    i = tape.skip(i);
                }
                Value::Array(out)
            }
            Node::Object { len, .. } => {
                let map: serde_json::Map<_, _> = tape
                    .members(at)
                    .map(|(k, name, _)| (name.decoded().into_owned(), to_value(tape, k + 1)))
                    .collect();
                assert_eq!(map.len(), len as usize);
                Value::Object(map)
            }
            Node::Key { .. } => panic!("a key is not a value"),
        }
    }

    fn same_as_serde(text: &str) {
        let ours = Tape::parse(text).map(|t| to_value(&t, 0));
        let theirs = serde_json::from_str::<Value>(text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text:?}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
        }
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        for text in [
            "{}",
            "[]",
            " {\"a\" : [1, -2, 3.5e2, true, false, null, \"x\"] } ",
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"b":{"c":[]},"a":{"d":3}}"#,
            r#"{"\u0061":1,"a":2}"#,
            r#""\ud83d\ude00\n\"""#,
            "-0",
            "1e400",
            "12345678901234567890123",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "tru",
            "nul",
            "\"\t\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "[1] 2",
            "",
            "{\"a\" 1}",
            "{1:2}",
        ] {
            same_as_serde(text);
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(Tape::parse(&deep).unwrap_err().what, TOO_DEEP);
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(Tape::parse(&ok).is_ok());
        // The deepest item serde_json reads, and one level more, alone and in a page.
        for levels in [MAX_DEPTH, MAX_DEPTH + 1] {
            let item =
                "{\"a\":".repeat(levels as usize - 1) + "[]" + &"}".repeat(levels as usize - 1);
            same_as_serde(&item);
            let page = format!(r#"{{"items":[{item}],"cursor":"c"}}"#);
            let mut seen = None;
            parse_page(&page, &mut Tape::default(), |t| seen = Some(t.is_ok())).unwrap();
            assert_eq!(seen, Some(levels == MAX_DEPTH), "{levels} levels in a page");
        }
        // In a page, the deep item alone is skipped.
        let deep = "[".repeat(200) + "null,false,1e400,\"]\",true" + &"]".repeat(200);
        let page = format!(r#"{{"items":[{{"x":{deep}}},{{"a":"]"}}],"cursor":"c"}}"#);
        let mut seen = Vec::new();
        let env = parse_page(&page, &mut Tape::default(), |t| {
            seen.push(t.map(|t| to_value(t, 0)).map_err(|e| e.what))
        })
        .unwrap();
        assert_eq!(env.items, 2);
        assert_eq!(seen, [Err(TOO_DEEP), Ok(serde_json::json!({"a":"]"}))]);
        // So are numbers beyond f64 and lone surrogates; the page goes on.
        let odd = r#"{"items":[{"n":1e400},{"s":"\ud800"},{"ok":1}],"cursor":"c"}"#;
        let mut seen = Vec::new();
        parse_page(odd, &mut Tape::default(), |t| {
            seen.push(t.map(|_| ()).map_err(|e| e.what))
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                Err("number out of range"),
                Err("lone surrogate in a string"),
                Ok(())
            ]
        );
        assert!(parse_page(r#"{"cursor":"\udc00"}"#, &mut Tape::default(), |_| {}).is_err());
        let unbalanced = format!(r#"{{"items":[{{"x":{}}}]}}"#, "[".repeat(200));
        assert!(parse_page(&unbalanced, &mut Tape::default(), |_| {}).is_err());
    }

    #[test]
    fn pages_hand_over_each_item_and_check_the_envelope() {
        let text = r#"{"extra":{"x":[1]},"items":[{"uuid":"a"},7,{"uuid":"b"}],"has_more":true,"cursor":"c\u0031"}"#;
        let mut tape = Tape::default();
        let mut seen = Vec::new();
        let env = parse_page(text, &mut tape, |t| seen.push(to_value(t.unwrap(), 0))).unwrap();
        assert_eq!(
            env,
            Envelope {
                cursor: Some("c1".into()),
                has_more: true,
                items: 3
            }
        );
        assert_eq!(
            seen,
            [
                serde_json::json!({"uuid":"a"}),
                7.into(),
                serde_json::json!({"uuid":"b"})
            ]
        );
        for bad in [
            r#"{"cursor":1}"#,
            r#"{"has_more":"yes"}"#,
            r#"{"items":{}}"#,
            r#"{"items":[1,}"#,
            r#"{"cursor":"a","cursor":"b"}"#,
            r#"{"items":[]"#,
            "[]",
        ] {
            assert!(parse_page(bad, &mut tape, |_| {}).is_err(), "{bad}");
        }
        let empty = parse_page(r#"{"cursor":null,"items":null}"#, &mut tape, |_| {}).unwrap();
        assert_eq!(empty, Envelope::default());
    }

    /// Whitespace is checked for only where the expected byte is missing: every place JSON
    /// allows it must still take it, and a page pretty-printed gives the compact page's items.
    #[test]
    fn whitespace_is_allowed_wherever_json_allows_it() {
        for ws in [" ", "\n", "\r\n\t "] {
            let text = r#"_{_"a"_:_[_1_,_"x"_,_{_}_,_[_]_,_null_]_,_"b"_:_{_"c"_:_true_}_}_"#;
            same_as_serde(&text.replace('_', ws));
        }
        let page = serde_json::json!({
            "cursor": "c",
            "has_more": false,
            "items": [{"uuid": "a", "n": [1, {"x": null}]}, {"uuid": "b"}],
        });
        let items = |text: &str| {
            let mut seen = Vec::new();
            let env = parse_page(text, &mut Tape::default(), |t| {
                seen.push(to_value(t.unwrap(), 0))
            })
            .unwrap();
            (env, seen)
        };
        let pretty = serde_json::to_string_pretty(&page).unwrap();
        assert!(pretty.contains("\n    "));
        assert_eq!(items(&pretty), items(&page.to_string()));
        assert_eq!(items(&page.to_string()).1.len(), 2);
    }

    proptest! {
        #[test]
        fn arbitrary_text_parses_exactly_when_serde_json_does(text in "[\\[\\]{}\",:0-9a-z.eE+\\\\ -]{0,40}") {
            same_as_serde(&text);
        }

        #[test]
        fn arbitrary_values_round_trip(v in any_json()) {
            let text = v.to_string();
            let tape = Tape::parse(&text).unwrap();
            prop_assert_eq!(to_value(&tape, 0), v);
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
