//! The one parser for SCIM filter expressions (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2), for
//! the subset Gatehouse serves: `eq` comparisons joined by `and`, parentheses, and value paths
//! (`emails[type eq "work"]`, with or without a `.value` after them). Every other operator is
//! recognised only to be refused by name. Hand-written recursive descent over a token list; the
//! input is at most [`MAX_FILTER_LEN`] bytes and nesting at most [`MAX_DEPTH`], so it is bounded.

use super::consts::{ENTERPRISE_SCHEMA, MAX_FILTER_LEN, USER_SCHEMA};
use super::error::ScimError;

/// Deepest nesting of parentheses and brackets.
pub(crate) const MAX_DEPTH: usize = 8;

/// Comparison operators SCIM defines that Gatehouse does not evaluate.
const UNSUPPORTED_OPERATORS: [&str; 9] = ["ne", "co", "sw", "ew", "gt", "lt", "ge", "le", "pr"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Number(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Dot,
}

/// Which schema an attribute path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema {
    /// The core User schema (no URN, or `urn:…:core:2.0:User:`).
    Core,
    /// The enterprise extension (`urn:…:extension:enterprise:2.0:User:`).
    Enterprise,
}

/// A comparison value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lit {
    Str(String),
    Bool(bool),
}

/// An attribute path as written, its schema URN resolved: `name.givenName`,
/// `emails[type eq "work"].value`, `urn:…:enterprise:2.0:User:manager`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawPath {
    pub(crate) schema: Schema,
    /// `None`: the schema URN alone (the whole extension).
    pub(crate) attr: Option<String>,
    pub(crate) sub: Option<String>,
    /// A value filter in brackets.
    pub(crate) filter: Option<Vec<RawCmp>>,
    /// The path as written, for messages.
    pub(crate) text: String,
}

/// `path eq value`; inside a filter also a bare value path (`emails[type eq "work"]`), whose
/// value is `None`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawCmp {
    pub(crate) path: RawPath,
    pub(crate) value: Option<Lit>,
}

fn lex(s: &str, error: fn(String) -> ScimError) -> Result<Vec<Tok>, ScimError> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'(' | b')' | b'[' | b']' | b'.' => {
                toks.push(match c {
                    b'(' => Tok::Open,
                    b')' => Tok::Close,
                    b'[' => Tok::OpenBracket,
                    b']' => Tok::CloseBracket,
                    _ => Tok::Dot,
                });
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(error(format!("unterminated string at {start}"))),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                let literal = s.get(start..i).unwrap_or_default();
                let value: String = serde_json::from_str(literal)
                    .map_err(|_| error(format!("malformed string {literal}")))?;
                toks.push(Tok::Str(value));
            }
            b'0'..=b'9' | b'-' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                toks.push(Tok::Number(s[start..i].to_owned()));
            }
            c if c.is_ascii_alphabetic() || c == b'$' => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || matches!(b[i], b'_' | b'-' | b':' | b'.' | b'$'))
                {
                    i += 1;
                }
                toks.push(Tok::Word(s[start..i].to_owned()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(error(format!("unexpected character `{ch}` at {i}")));
            }
        }
    }
    Ok(toks)
}

/// Splits a written attribute into its schema and the part after the URN: `None` for the URN
/// alone. URNs compare without case.
pub(crate) fn split_schema(word: &str) -> Result<(Schema, Option<&str>), String> {
    for (urn, schema) in [
        (ENTERPRISE_SCHEMA, Schema::Enterprise),
        (USER_SCHEMA, Schema::Core),
    ] {
        if let Some(head) = word.get(..urn.len())
            && head.eq_ignore_ascii_case(urn)
        {
            let rest = &word[urn.len()..];
            if rest.is_empty() {
                return Ok((schema, None));
            }
            if let Some(rest) = rest.strip_prefix(':') {
                return Ok((schema, Some(rest)));
            }
        }
    }
    if word.contains(':') {
        return Err(format!("`{word}` names no schema this endpoint serves"));
    }
    Ok((Schema::Core, Some(word)))
}

fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// Reads `word` as `[URN ":"] name ["." sub]`.
pub(crate) fn attr_path(word: &str) -> Result<RawPath, String> {
    let (schema, rest) = split_schema(word)?;
    let (attr, sub) = match rest {
        None => (None, None),
        Some(rest) => {
            let (name, sub) = match rest.split_once('.') {
                Some((name, sub)) => (name, Some(sub)),
                None => (rest, None),
            };
            if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
                return Err(format!("`{word}` is not an attribute path"));
            }
            (Some(name.to_owned()), sub.map(str::to_owned))
        }
    };
    Ok(RawPath {
        schema,
        attr,
        sub,
        filter: None,
        text: word.to_owned(),
    })
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
    /// The error kind for syntax errors (`invalidFilter` or `invalidPath`).
    error: fn(String) -> ScimError,
}

impl Parser {
    fn new(s: &str, error: fn(String) -> ScimError) -> Result<Self, ScimError> {
        if s.len() > MAX_FILTER_LEN {
            return Err(error(format!(
                "longer than {MAX_FILTER_LEN} bytes ({} bytes)",
                s.len()
            )));
        }
        Ok(Parser {
            toks: lex(s, error)?,
            at: 0,
            depth: 0,
            error,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.at).cloned();
        self.at += 1;
        tok
    }

    fn fail<T>(&self, detail: String) -> Result<T, ScimError> {
        Err((self.error)(detail))
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    /// `term *("and" term)`, flattened.
    fn conjunction(&mut self, out: &mut Vec<RawCmp>) -> Result<(), ScimError> {
        self.term(out)?;
        loop {
            if self.is_word("and") {
                self.at += 1;
                self.term(out)?;
            } else if self.is_word("or") {
                return Err(ScimError::invalid_filter(
                    "operator `or` is not supported (only `eq` joined by `and`)",
                ));
            } else {
                return Ok(());
            }
        }
    }

    /// `"(" conjunction ")"` or a comparison.
    fn term(&mut self, out: &mut Vec<RawCmp>) -> Result<(), ScimError> {
        match self.peek() {
            Some(Tok::Open) => {
                self.at += 1;
                self.enter()?;
                self.conjunction(out)?;
                if self.next() != Some(Tok::Close) {
                    return self.fail("`(` without its `)`".to_owned());
                }
                self.depth -= 1;
                Ok(())
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => Err(ScimError::invalid_filter(
                "operator `not` is not supported (only `eq` and `and`)",
            )),
            _ => {
                let path = self.path()?;
                // A bare value path (`emails[type eq "work"]`) is a whole condition.
                let value = if path.filter.is_some() && path.sub.is_none() {
                    None
                } else {
                    Some(self.comparison(&path)?)
                };
                out.push(RawCmp { path, value });
                Ok(())
            }
        }
    }

    /// `op value` after `path`: `eq` only.
    fn comparison(&mut self, path: &RawPath) -> Result<Lit, ScimError> {
        let text = &path.text;
        match self.next() {
            Some(Tok::Word(op)) if op.eq_ignore_ascii_case("eq") => {}
            Some(Tok::Word(op))
                if UNSUPPORTED_OPERATORS
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(&op)) =>
            {
                return Err(ScimError::invalid_filter(format!(
                    "operator `{}` (on `{text}`) is not supported (only `eq` and `and`)",
                    op.to_ascii_lowercase()
                )));
            }
            Some(other) => {
                return self.fail(format!(
                    "expected an operator after `{text}`, found {}",
                    describe(&other)
                ));
            }
            None => return self.fail(format!("expected an operator after `{text}`")),
        }
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Ok(Lit::Bool(w == "true")),
            Some(Tok::Word(w)) if w == "null" => Err(ScimError::invalid_filter(format!(
                "comparing `{text}` with null is not supported"
            ))),
            Some(Tok::Number(n)) => Err(ScimError::invalid_filter(format!(
                "comparing `{text}` with the number {n} is not supported"
            ))),
            Some(other) => self.fail(format!(
                "expected a value after `{text} eq`, found {}",
                describe(&other)
            )),
            None => self.fail(format!("expected a value after `{text} eq`")),
        }
    }

    /// `attrPath` or `attrPath "[" conjunction "]" ["." subAttr]`.
    fn path(&mut self) -> Result<RawPath, ScimError> {
        let word = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(other) => {
                return self.fail(format!("expected an attribute, found {}", describe(&other)));
            }
            None => return self.fail("expected an attribute, found the end".to_owned()),
        };
        let mut path = attr_path(&word).map_err(self.error)?;
        if self.peek() == Some(&Tok::OpenBracket) {
            if path.sub.is_some() || path.attr.is_none() {
                return self.fail(format!("`{word}` cannot take a value filter"));
            }
            self.at += 1;
            self.enter()?;
            let mut inner = Vec::new();
            self.conjunction(&mut inner)?;
            if inner.iter().any(|c| c.path.filter.is_some()) {
                return self.fail(format!("value filters nest in `{word}[…]`"));
            }
            if self.next() != Some(Tok::CloseBracket) {
                return self.fail(format!("`{word}[` without its `]`"));
            }
            self.depth -= 1;
            path.filter = Some(inner);
            path.text.push_str("[…]");
            if self.peek() == Some(&Tok::Dot) {
                self.at += 1;
                match self.next() {
                    Some(Tok::Word(sub)) if is_attr_name(&sub) => {
                        path.text.push('.');
                        path.text.push_str(&sub);
                        path.sub = Some(sub);
                    }
                    _ => return self.fail(format!("expected a sub-attribute after `{word}[…].`")),
                }
            }
        }
        Ok(path)
    }

    fn end(&self) -> Result<(), ScimError> {
        match self.peek() {
            None => Ok(()),
            Some(tok) => self.fail(format!("unexpected {} after the expression", describe(tok))),
        }
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Str(s) => format!("the string {s:?}"),
        Tok::Number(n) => format!("the number {n}"),
        Tok::Open => "`(`".to_owned(),
        Tok::Close => "`)`".to_owned(),
        Tok::OpenBracket => "`[`".to_owned(),
        Tok::CloseBracket => "`]`".to_owned(),
        Tok::Dot => "`.`".to_owned(),
    }
}

/// A filter expression: its comparisons, all of which must hold.
pub(crate) fn parse_conjunction(s: &str) -> Result<Vec<RawCmp>, ScimError> {
    let mut parser = Parser::new(s, ScimError::invalid_filter)?;
    if parser.peek().is_none() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let mut out = Vec::new();
    parser.conjunction(&mut out)?;
    parser.end()?;
    Ok(out)
}

/// A PATCH path.
pub(crate) fn parse_path(s: &str) -> Result<RawPath, ScimError> {
    let mut parser = Parser::new(s, ScimError::invalid_path)?;
    let path = parser.path()?;
    parser.end()?;
    Ok(path)
}
