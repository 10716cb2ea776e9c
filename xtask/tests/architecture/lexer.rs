//! Just enough of Rust's lexer to read paths: identifiers, `::` and punctuation, with line
//! numbers. Comments (doc comments too), string literals (byte, C and raw strings too), character
//! literals, lifetimes and numbers leave no token that could be mistaken for a path.

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword (`r#name` is `name`; `$crate` is `crate`).
    Ident(String),
    /// `::`
    PathSep,
    /// Any other single punctuation character.
    Punct(char),
    /// A string, character or number literal, or a lifetime: nothing a path is made of.
    Literal,
}

/// A token and the line (from 1) it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

impl Token {
    pub fn is_ident(&self, name: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s == name)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// The tokens of `src`; an error names the line of an unterminated comment or literal.
pub fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            loop {
                if i >= chars.len() {
                    return Err(format!("line {start_line}: unterminated block comment"));
                }
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, &mut line)
                .ok_or_else(|| format!("line {start_line}: unterminated string literal"))?;
            out.push(Token {
                tok: Tok::Literal,
                line: start_line,
            });
        } else if c == '\'' {
            i = skip_quote(&chars, i);
            out.push(Token {
                tok: Tok::Literal,
                line: start_line,
            });
        } else if c.is_ascii_digit() {
            i += 1;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == '.' && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Literal,
                line: start_line,
            });
        } else if c == '_' || c.is_alphabetic() {
            let word_start = i;
            while i < chars.len() && (chars[i] == '_' || chars[i].is_alphanumeric()) {
                i += 1;
            }
            let word: String = chars[word_start..i].iter().collect();
            let prefixed = matches!(word.as_str(), "b" | "c" | "br" | "cr" | "r");
            if prefixed && word.ends_with('r') && (at(i) == '#' || at(i) == '"') {
                // A raw string (`r"…"`, `r#"…"#`, `br##"…"##`) or a raw identifier (`r#name`).
                let mut hashes = 0;
                while at(i + hashes) == '#' {
                    hashes += 1;
                }
                if at(i + hashes) == '"' {
                    i = skip_raw_string(&chars, i + hashes + 1, hashes, &mut line).ok_or_else(
                        || format!("line {start_line}: unterminated raw string literal"),
                    )?;
                    out.push(Token {
                        tok: Tok::Literal,
                        line: start_line,
                    });
                } else if word == "r" && hashes == 1 {
                    let name_start = i + 1;
                    i = name_start;
                    while i < chars.len() && (chars[i] == '_' || chars[i].is_alphanumeric()) {
                        i += 1;
                    }
                    out.push(Token {
                        tok: Tok::Ident(chars[name_start..i].iter().collect()),
                        line: start_line,
                    });
                } else {
                    out.push(Token {
                        tok: Tok::Ident(word),
                        line: start_line,
                    });
                }
            } else if prefixed && word != "r" && at(i) == '"' {
                // `b"…"`, `c"…"`
                i = skip_string(&chars, i + 1, &mut line)
                    .ok_or_else(|| format!("line {start_line}: unterminated string literal"))?;
                out.push(Token {
                    tok: Tok::Literal,
                    line: start_line,
                });
            } else if word == "b" && at(i) == '\'' {
                i = skip_quote(&chars, i);
                out.push(Token {
                    tok: Tok::Literal,
                    line: start_line,
                });
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line: start_line,
                });
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::PathSep,
                line: start_line,
            });
            i += 2;
        } else if c == '$'
            && chars[i + 1..].starts_with(&['c', 'r', 'a', 't', 'e'])
            && !(at(i + 6) == '_' || at(i + 6).is_alphanumeric())
        {
            // `$crate` in a macro body: the defining crate, which is this one.
            out.push(Token {
                tok: Tok::Ident("crate".into()),
                line: start_line,
            });
            i += 6;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line: start_line,
            });
            i += 1;
        }
    }
    Ok(out)
}

/// Past the closing quote of a string whose body starts at `i` (escapes honoured).
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> Option<usize> {
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if chars.get(i + 1) == Some(&'\n') {
                    *line += 1;
                }
                i += 2;
            }
            '"' => return Some(i + 1),
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Past the closing `"` and `hashes` hashes of a raw string whose body starts at `i`.
fn skip_raw_string(chars: &[char], mut i: usize, hashes: usize, line: &mut usize) -> Option<usize> {
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        if chars[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    None
}

/// Past a character literal (`'a'`, `'\n'`, `'\u{1F600}'`) or a lifetime or label (`'a`,
/// `'static`) starting at the quote at `i`.
fn skip_quote(chars: &[char], i: usize) -> usize {
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        // An escape: up to the closing quote.
        let mut k = i + 3;
        while k < chars.len() && chars[k] != '\'' && chars[k] != '\n' {
            k += 1;
        }
        return k + 1;
    }
    if at(i + 2) == '\'' {
        return i + 3;
    }
    // A lifetime or a label.
    let mut k = i + 1;
    while k < chars.len() && (chars[k] == '_' || chars[k].is_alphanumeric()) {
        k += 1;
    }
    k
}
