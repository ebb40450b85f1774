//! Text from AWS resources and events (descriptions, aliases, tag values, ARNs, error
//! messages) made safe for messages and logs: one line, control characters escaped, bounded.

/// Longest single value shown in a message: enough for any ARN, short enough that one field
/// cannot crowd out the rest.
pub const MAX_VALUE_CHARS: usize = 256;

/// `text` on one line: newlines, tabs and other control characters escaped (`\n`, `\u{7}`),
/// cut to `max_chars` characters with `...`. A description cannot forge a "Changed by:" line.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (count, c) in text.chars().enumerate() {
        if count >= max_chars {
            out.push_str("...");
            return out;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Bidirectional overrides can make a line read differently from what it says.
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// A value from AWS as it appears in a message: one line, at most [`MAX_VALUE_CHARS`].
pub fn value(text: &str) -> String {
    one_line(text, MAX_VALUE_CHARS)
}

/// `"text"` bounded to `max_chars`, for error messages that name a bad input.
pub fn quoted(text: &str, max_chars: usize) -> String {
    format!("\"{}\"", one_line(text, max_chars))
}

/// URL-decoded text (`%XX` escapes, `+` as a space): IAM returns trust policies this way, and
/// query-protocol request bodies are written this way.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_text_is_decoded_and_stray_percents_kept() {
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D+x"), r#"{"a":1} x"#);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn a_description_cannot_forge_a_line() {
        let forged = "app data\nChanged by:  arn:aws:iam::111122223333:user/trusted";
        let safe = value(forged);
        assert!(!safe.contains('\n'));
        assert_eq!(
            safe,
            "app data\\nChanged by:  arn:aws:iam::111122223333:user/trusted"
        );
    }

    #[test]
    fn control_and_bidi_characters_are_escaped_and_length_bounded() {
        assert_eq!(
            one_line("a\u{7}b\u{202e}c\td", 100),
            "a\\u{7}b\\u{202e}c\\td"
        );
        let long = one_line(&"é".repeat(1000), 10);
        assert_eq!(long, format!("{}...", "é".repeat(10)));
        assert_eq!(quoted("x\ny", 80), "\"x\\ny\"");
    }
}
