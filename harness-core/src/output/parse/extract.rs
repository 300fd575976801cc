//! Where the JSON might be: the whole answer, every code fence, every bracketed span in prose.
//!
//! One linear pass per kind, no recursion, and at most [`MAX_CANDIDATES`] candidates, so a long
//! hostile answer costs time in proportion to its length.

/// At most this many candidates are tried per answer.
pub(super) const MAX_CANDIDATES: usize = 32;

/// How often a span the text ends inside is searched again for complete spans within it.
const MAX_RESCANS: usize = 4;

/// Where a candidate was found; this decides the extraction [`Repair`](super::Repair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// The whole answer, trimmed.
    Whole,
    /// The body of a Markdown code fence.
    Fence,
    /// A `{...}` or `[...]` span inside prose.
    Prose,
}

/// A piece of the answer that may be the JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Candidate<'a> {
    /// The text to read.
    pub text: &'a str,
    /// Where it came from.
    pub origin: Origin,
    /// For a span found inside a span the text ends inside: that span's index. If that one is a
    /// cut-off value, this one is a piece of it, not an answer.
    pub within: Option<usize>,
    /// Whether it is a run of top-level values (`{..} {..}`, JSON Lines) to read as one list.
    pub sequence: bool,
}

/// The candidates, in the order they are preferred on a tie.
#[derive(Debug, Default)]
pub(super) struct Extracted<'a> {
    pub candidates: Vec<Candidate<'a>>,
    /// Whether some span nested deeper than the limit (and was skipped).
    pub too_deep: bool,
}

impl<'a> Extracted<'a> {
    /// Adds a candidate unless it is empty or known; returns the index of the candidate.
    fn push(&mut self, text: &'a str, origin: Origin, within: Option<usize>) -> Option<usize> {
        self.add(text, origin, within, false)
    }

    fn add(
        &mut self,
        text: &'a str,
        origin: Origin,
        within: Option<usize>,
        sequence: bool,
    ) -> Option<usize> {
        let text = text.trim_matches(is_blank);
        if text.is_empty() {
            return None;
        }
        if let Some(i) = self
            .candidates
            .iter()
            .position(|c| c.text == text && c.sequence == sequence)
        {
            return Some(i);
        }
        if self.full() {
            return None;
        }
        self.candidates.push(Candidate {
            text,
            origin,
            within,
            sequence,
        });
        Some(self.candidates.len() - 1)
    }

    fn full(&self) -> bool {
        self.candidates.len() >= MAX_CANDIDATES
    }
}

/// Every candidate in `text`: the whole text, then fences, then prose spans. With `collect` (the
/// schema asks for a list), a run of spans with only whitespace or commas between them is one
/// sequence candidate instead of one candidate per span.
pub(super) fn candidates(text: &str, max_depth: usize, collect: bool) -> Extracted<'_> {
    let mut out = Extracted::default();
    out.push(text, Origin::Whole, None);
    fences(text, &mut out);
    spans(text, max_depth, collect, &mut out);
    out
}

fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// The body of every ```` ``` ```` fence; an unclosed last fence runs to the end of the text.
fn fences<'a>(text: &'a str, out: &mut Extracted<'a>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while !out.full() {
        let Some(open) = find(&bytes[from..], b"```").map(|i| from + i) else {
            return;
        };
        let mut start = open;
        while bytes.get(start) == Some(&b'`') {
            start += 1;
        }
        // The info string: `json`, `JSON5`, `jsonc`, ...
        while bytes
            .get(start)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(b))
        {
            start += 1;
        }
        match find(&bytes[start..], b"```").map(|i| start + i) {
            Some(close) => {
                out.push(&text[start..close], Origin::Fence, None);
                from = close + 3;
                while bytes.get(from) == Some(&b'`') {
                    from += 1;
                }
            }
            None => {
                out.push(&text[start..], Origin::Fence, None);
                return;
            }
        }
    }
}

/// How a span starting at an opening bracket ends.
enum Span {
    /// Balanced; ends before this byte.
    Closed(usize),
    /// A closing bracket of the wrong kind at this byte ends it.
    Broken(usize),
    /// The text ends inside it.
    Open,
    /// It nests deeper than the limit at this byte (the opening bracket that is one too many).
    TooDeep(usize),
}

/// Every outermost `{...}` or `[...]` span, plus spans the text ends inside.
fn spans<'a>(text: &'a str, max_depth: usize, collect: bool, out: &mut Extracted<'a>) {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut rescans = 0;
    let mut within = None;
    while !out.full() {
        let Some(start) = bytes[pos..]
            .iter()
            .position(|&b| b == b'{' || b == b'[')
            .map(|i| pos + i)
        else {
            return;
        };
        match span(bytes, start, max_depth) {
            Span::Closed(end) => {
                let (run_end, members) = if collect {
                    run(bytes, end, max_depth)
                } else {
                    (end, 1)
                };
                if members > 1 {
                    let whole = text.trim_matches(is_blank);
                    let piece = text[start..run_end].trim_matches(is_blank);
                    let origin = if piece == whole {
                        Origin::Whole
                    } else {
                        Origin::Prose
                    };
                    out.add(piece, origin, within, true);
                    pos = run_end;
                } else {
                    out.push(&text[start..end], Origin::Prose, within);
                    pos = end;
                }
            }
            Span::Broken(end) => {
                out.push(&text[start..=end], Origin::Prose, within);
                pos = end + 1;
            }
            Span::Open => {
                within = out.push(&text[start..], Origin::Prose, within).or(within);
                // A stray bracket in prose may hide a complete value after it.
                rescans += 1;
                if rescans > MAX_RESCANS {
                    return;
                }
                pos = start + 1;
            }
            Span::TooDeep(at) => {
                // Spans inside it are pieces of a value too deep to read: skip to its end.
                out.too_deep = true;
                match skip(bytes, at + 1, max_depth + 1) {
                    Some(end) => pos = end,
                    None => return,
                }
            }
        }
    }
}

/// How far a run of spans that starts with a span ending at `end` goes: each next span starts
/// after nothing but whitespace and commas. Returns its end and how many spans it holds; a span
/// the text ends inside is the last member, and the run then runs to the end.
fn run(bytes: &[u8], mut end: usize, max_depth: usize) -> (usize, usize) {
    let mut members = 1;
    loop {
        let mut next = end;
        while bytes
            .get(next)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
        {
            next += 1;
        }
        if !matches!(bytes.get(next), Some(b'{' | b'[')) {
            return (end, members);
        }
        match span(bytes, next, max_depth) {
            Span::Closed(e) => {
                end = e;
                members += 1;
            }
            Span::Open => return (bytes.len(), members + 1),
            Span::Broken(_) | Span::TooDeep(_) => return (end, members),
        }
    }
}

/// Matches the bracket at `start`, skipping brackets inside strings.
fn span(bytes: &[u8], start: usize, max_depth: usize) -> Span {
    let mut closers: Vec<u8> = Vec::new();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    // The last byte outside strings that is not whitespace: a `'` only opens a string where a
    // key or value may start, so an apostrophe in prose does not.
    let mut prev = b'[';
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == q {
                quote = None;
                prev = b;
            }
            continue;
        }
        match b {
            b'"' => quote = Some(b'"'),
            b'\'' if matches!(prev, b'{' | b'[' | b',' | b':') => quote = Some(b'\''),
            b'{' | b'[' => {
                closers.push(if b == b'{' { b'}' } else { b']' });
                if closers.len() > max_depth {
                    return Span::TooDeep(i);
                }
            }
            b'}' | b']' => {
                if closers.last() != Some(&b) {
                    return Span::Broken(i);
                }
                closers.pop();
                if closers.is_empty() {
                    return Span::Closed(i + 1);
                }
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            prev = b;
        }
    }
    Span::Open
}

/// Where a span that is `depth` brackets deep just before `from` closes; `None` if it does not.
/// Counts depth only, so it uses no memory whatever the depth.
fn skip(bytes: &[u8], from: usize, mut depth: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The first index of `needle` in `hay`.
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(&str, Origin)> {
        candidates(text, 64, false)
            .candidates
            .iter()
            .map(|c| (c.text, c.origin))
            .collect()
    }

    #[test]
    fn whole_text_comes_first() {
        assert_eq!(texts(" {\"a\": 1} "), vec![("{\"a\": 1}", Origin::Whole)]);
    }

    #[test]
    fn every_fence_is_a_candidate() {
        let t = "one:\n```json\n{\"a\": 1}\n```\ntwo:\n```\n[2]\n```";
        let got = texts(t);
        assert!(got.contains(&("{\"a\": 1}", Origin::Fence)));
        assert!(got.contains(&("[2]", Origin::Fence)));
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end() {
        let got = texts("```json\n{\"a\": [1,");
        assert!(got.contains(&("{\"a\": [1,", Origin::Fence)));
    }

    #[test]
    fn every_outermost_span_in_prose_is_a_candidate() {
        let got = texts("Set {x} to [1, 2], then {\"a\": {\"b\": \"}\"}} done.");
        let spans: Vec<_> = got
            .iter()
            .filter(|(_, o)| *o == Origin::Prose)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(spans, vec!["{x}", "[1, 2]", "{\"a\": {\"b\": \"}\"}}"]);
    }

    #[test]
    fn an_apostrophe_in_prose_does_not_open_a_string() {
        let got = texts("I don't know [it's here] {'a': 'b'}");
        assert!(got.contains(&("[it's here]", Origin::Prose)));
        assert!(got.contains(&("{'a': 'b'}", Origin::Prose)));
    }

    #[test]
    fn a_stray_bracket_does_not_hide_a_value() {
        let ex = candidates("1) see [notes: {\"a\": 1}", 64, false);
        let c = ex.candidates.last().unwrap();
        assert_eq!((c.text, c.origin), ("{\"a\": 1}", Origin::Prose));
        assert_eq!(ex.candidates[c.within.unwrap()].text, "[notes: {\"a\": 1}");
    }

    #[test]
    fn deep_spans_are_skipped_in_linear_time() {
        let text = "[".repeat(100_000);
        let ex = candidates(&text, 64, false);
        assert!(ex.too_deep);
        assert!(ex.candidates.len() <= MAX_CANDIDATES);
    }

    #[test]
    fn a_run_of_values_is_one_candidate_when_a_list_is_wanted() {
        let text = "Here: {\"k\": 1}\n{\"k\": 2}, {\"k\": 3} and {\"k\": 4}";
        let ex = candidates(text, 64, true);
        let got: Vec<_> = ex.candidates[1..]
            .iter()
            .map(|c| (c.text, c.sequence))
            .collect();
        assert_eq!(
            got,
            vec![
                ("{\"k\": 1}\n{\"k\": 2}, {\"k\": 3}", true),
                ("{\"k\": 4}", false)
            ]
        );
        let ex = candidates("{\"k\": 1} {\"k\": 2}", 64, true);
        assert_eq!(ex.candidates[1].origin, Origin::Whole);
        assert!(ex.candidates[1].sequence);
        // Without `collect`, every span stands alone.
        assert_eq!(candidates(text, 64, false).candidates.len(), 5);
    }

    #[test]
    fn candidates_are_capped() {
        let text: String = (0..10_000).map(|i| format!("{{\"a\": {i}}} ")).collect();
        assert_eq!(
            candidates(&text, 64, false).candidates.len(),
            MAX_CANDIDATES
        );
    }
}
