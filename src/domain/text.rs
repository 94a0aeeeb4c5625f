//! Text from outside (Finch's messages, a callback's `error_description`) made safe to keep and
//! show as data: no control characters (no line breaks to forge log lines or rows with), bounded.

/// Control characters become spaces; at most `max_chars` characters are kept.
pub fn sanitize(text: &str, max_chars: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect()
}

/// [`sanitize`]d, trimmed, and ending in `…` when it was cut: a piece of someone else's message
/// quoted in a sentence of ours.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut clean = sanitize(text, max_chars);
    if text.chars().count() > max_chars {
        clean.push('…');
    }
    clean.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_spaces_and_length_is_capped() {
        assert_eq!(sanitize("a\nb\tc\u{1b}d", 100), "a b c d");
        assert_eq!(sanitize("abcdef", 3), "abc");
        assert_eq!(sanitize("ßßßß", 2), "ßß");
    }

    #[test]
    fn an_excerpt_says_when_it_was_cut() {
        assert_eq!(excerpt("  short  ", 100), "short");
        assert_eq!(excerpt(&"m".repeat(10), 4), "mmmm…");
        assert_eq!(excerpt("line\nbreak", 100), "line break");
    }
}
