//! A Rust source file split into the two things the layer invariants look at: its code
//! with comments and literals blanked out, and the text of its string literals.
//!
//! A regular expression over the raw file would see `crate::push` in a doc comment, or
//! `select` in a sentence, and flag it; a full parser (syn) would be heavier than the
//! question needs. This lexer knows exactly enough Rust to tell code, comments, strings
//! (plain, byte, raw with any number of `#`), char literals and lifetimes apart.

/// One source file, lexed.
pub(crate) struct Source {
    /// The code, with every comment and literal replaced by a space, so that what is left
    /// is only paths, identifiers and punctuation.
    pub(crate) code: String,
    /// Each string literal's contents, with the line it starts on (1-based).
    pub(crate) strings: Vec<(usize, String)>,
}

impl Source {
    /// Lexes `text`.
    pub(crate) fn lex(text: &str) -> Source {
        let chars: Vec<char> = text.chars().collect();
        let mut code = String::with_capacity(text.len());
        let mut strings = Vec::new();
        let mut line = 1;
        let mut i = 0;
        let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
        while i < chars.len() {
            let c = chars[i];
            if c == '/' && at(i + 1) == '/' {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && at(i + 1) == '*' {
                let mut depth = 0;
                while i < chars.len() {
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
                            code.push('\n');
                        }
                        i += 1;
                    }
                }
                code.push(' ');
            } else if let Some(hashes) = raw_string_start(&chars, i) {
                // r"..", r#".."#, br#".."#: no escapes; ends at a quote and as many hashes.
                let start_line = line;
                i += hashes.prefix;
                let mut text = String::new();
                while i < chars.len() {
                    if chars[i] == '"' && (1..=hashes.count).all(|k| at(i + k) == '#') {
                        i += 1 + hashes.count;
                        break;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                        code.push('\n');
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                strings.push((start_line, text));
                code.push(' ');
            } else if c == '"' || (c == 'b' && at(i + 1) == '"' && !ident_before(&chars, i)) {
                let start_line = line;
                i += if c == 'b' { 2 } else { 1 };
                let mut text = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        // `\` + newline continues the literal, skipping leading whitespace.
                        if at(i + 1) == '\n' {
                            line += 1;
                            code.push('\n');
                            i += 2;
                            while i < chars.len() && chars[i].is_whitespace() {
                                if chars[i] == '\n' {
                                    line += 1;
                                    code.push('\n');
                                }
                                i += 1;
                            }
                            continue;
                        }
                        text.push(at(i + 1));
                        i += 2;
                        continue;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                        code.push('\n');
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                i += 1;
                strings.push((start_line, text));
                code.push(' ');
            } else if c == '\'' {
                // A char literal ('x', '\n', '\u{1F600}', '"') or a lifetime ('a, 'static).
                if at(i + 1) == '\\' {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                    code.push(' ');
                } else if at(i + 2) == '\'' {
                    i += 3;
                    code.push(' ');
                } else {
                    code.push(c);
                    i += 1;
                }
            } else {
                if c == '\n' {
                    line += 1;
                }
                code.push(c);
                i += 1;
            }
        }
        Source { code, strings }
    }

    /// The 1-based line of byte offset `offset` in [`Source::code`] (newlines are kept, so
    /// lines in `code` are lines in the file).
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.code[..offset].matches('\n').count() + 1
    }
}

struct RawStart {
    /// Characters before the contents: `r`, `br`, the hashes and the quote.
    prefix: usize,
    /// Hashes that close it.
    count: usize,
}

fn raw_string_start(chars: &[char], i: usize) -> Option<RawStart> {
    if ident_before(chars, i) {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut count = 0;
    while chars.get(j) == Some(&'#') {
        count += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(RawStart {
        prefix: j + 1 - i,
        count,
    })
}

/// True when `chars[i]` continues an identifier (`bar"` in `foobar"` is not a prefix).
fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn separates_code_comments_and_strings() {
        let src = Source::lex(
            "use crate::store; // crate::push in a comment\n\
             /* crate::http /* nested */ */ let q = \"select 1\";\n\
             let r = r#\"insert \"into\" x\"#; let c = '\"'; fn f<'a>(x: &'a str) {}\n",
        );
        assert!(src.code.contains("crate::store"));
        assert!(!src.code.contains("crate::push"));
        assert!(!src.code.contains("crate::http"));
        assert!(!src.code.contains("select"));
        assert!(src.code.contains("fn f<'a>(x: &'a str)"));
        let strings: Vec<&str> = src.strings.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(strings, ["select 1", "insert \"into\" x"]);
        assert_eq!((src.strings[0].0, src.strings[1].0), (2, 3));
        assert_eq!(src.line_of(src.code.find("fn f").unwrap()), 3);
    }

    #[test]
    fn continued_strings_keep_their_words_apart_and_lines_counted() {
        let src = Source::lex("let q = \"select a \\\n      from b\";\nlet x = crate::db;\n");
        assert_eq!(src.strings[0].1, "select a from b");
        assert_eq!(src.line_of(src.code.find("crate::db").unwrap()), 3);
    }
}
