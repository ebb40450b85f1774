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

#[cfg(test)]
mod tests {
    use super::*;

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
