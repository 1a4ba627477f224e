//! Text helpers shared by the views.

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// `text` made safe for a terminal (control characters, including escape sequences, become
/// spaces) and cut to `max` characters.
pub(crate) fn clean(text: &str, max: usize) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

pub(crate) fn width(text: &str) -> usize {
    text.chars().count()
}

pub(crate) fn pad(text: &str, to: usize, align: Align) -> String {
    let fill = " ".repeat(to.saturating_sub(width(text)));
    match align {
        Align::Left => format!("{text}{fill}"),
        Align::Right => format!("{fill}{text}"),
    }
}

/// Milliseconds with one decimal.
pub(crate) fn format_ms(ms: f64) -> String {
    format!("{ms:.1}")
}

/// Nanoseconds as milliseconds with one decimal.
pub(crate) fn ns_to_ms(ns: u64) -> f64 {
    // Trace durations are far below 2^53 ns.
    #[allow(clippy::cast_precision_loss)]
    let ms = ns as f64 / 1e6;
    ms
}

/// US dollars with two significant digits (`$0.0000021`), at least two decimals.
pub fn format_usd(usd: f64) -> String {
    if !usd.is_finite() || usd <= 0.0 {
        return "$0".to_owned();
    }
    // A small positive exponent.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let decimals = (1.0 - usd.log10().floor()).clamp(2.0, 15.0) as usize;
    format!("${usd:.decimals$}")
}

/// A table with a header, a rule under it, and a rule before row `rule_before` if given.
pub(crate) fn table(header: &[String], rows: &[Vec<String>], align: &[Align], rule_before: Option<usize>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| pad(c, widths.get(i).copied().unwrap_or(0), align.get(i).copied().unwrap_or(Align::Left)))
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let rule = format!("{}\n", "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)));
    let mut out = line(header);
    out.push_str(&rule);
    for (i, row) in rows.iter().enumerate() {
        if rule_before == Some(i) {
            out.push_str(&rule);
        }
        out.push_str(&line(row));
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_has_two_significant_digits() {
        assert_eq!(format_usd(0.000_002_083_4), "$0.0000021");
        assert_eq!(format_usd(0.000_000_408_3), "$0.00000041");
        assert_eq!(format_usd(1.234), "$1.23");
        assert_eq!(format_usd(12.5), "$12.50");
        assert_eq!(format_usd(0.0), "$0");
        assert_eq!(format_usd(f64::NAN), "$0");
    }

    #[test]
    fn clean_strips_escapes_and_truncates() {
        assert_eq!(clean("a\u{1b}[31mb\n", 20), "a [31mb ");
        assert_eq!(clean("abcdef", 4), "abc…");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }
}
