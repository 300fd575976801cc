//! The syntax of a tool's scope (`orders:write`), of a grant (`orders:*`) and of a rate limit
//! (`10/min`): checked by `#[llm_tool]` at compile time and by harness-core's `tools` at run time,
//! with the same words.

/// Why `text` is not a scope a tool can require: `None` when it is one. A scope is two or more
/// segments joined by `:`, each of lower-case ASCII letters, digits, `_` or `-` (`orders:read`,
/// `billing:refunds:write`). Grants may end in `*`; a tool's scope may not.
pub const fn scope_error(text: &str) -> Option<&'static str> {
    scope_syntax(text, false)
}

/// Why `text` is not a grant: `None` when it is one. A grant is a scope, or a scope prefix
/// ending in the segment `*` (`orders:*` grants `orders:read` and `orders:refunds:write`), or `*`
/// alone (everything).
pub const fn grant_error(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    if b.len() == 1 && b[0] == b'*' {
        return None;
    }
    scope_syntax(text, true)
}

const fn scope_syntax(text: &str, grant: bool) -> Option<&'static str> {
    let b = text.as_bytes();
    if b.is_empty() {
        return Some("a scope cannot be empty; write it as `resource:action`, e.g. `orders:read`");
    }
    let mut segments = 1;
    let mut len = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b':' {
            if len == 0 {
                return Some("a scope has an empty segment; segments are joined by single `:`");
            }
            segments += 1;
            len = 0;
        } else if c == b'*' {
            if !grant {
                return Some("a tool's scope cannot hold `*`; wildcards belong to grants");
            }
            if len != 0 || i + 1 != b.len() {
                return Some("`*` can only be a grant's whole last segment, as in `orders:*`");
            }
            len += 1;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-' {
            len += 1;
        } else {
            return Some(
                "a scope segment holds only lower-case ASCII letters, digits, `_` and `-`",
            );
        }
        i += 1;
    }
    if len == 0 {
        return Some("a scope has an empty segment; segments are joined by single `:`");
    }
    if segments < 2 {
        return Some(
            "a scope names a resource and an action: `resource:action`, e.g. `orders:read`",
        );
    }
    None
}

/// A rate limit read from `N/unit`: `count` calls per `per_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// Calls allowed per period (at least 1).
    pub count: u32,
    /// The period in seconds.
    pub per_seconds: u64,
}

/// Reads a rate limit: `N/s`, `N/sec`, `N/second`, `N/min`, `N/minute`, `N/h`, `N/hour`,
/// `N/day`, with `N` from 1 to 1 000 000.
pub fn parse_rate(text: &str) -> Result<RateSpec, &'static str> {
    const HELP: &str =
        "a rate is `N/unit` with N ≥ 1 and unit `s`, `min`, `h` or `day`, e.g. `10/min`";
    let (n, unit) = text.split_once('/').ok_or(HELP)?;
    let count: u32 = n.trim().parse().map_err(|_| HELP)?;
    if count == 0 || count > 1_000_000 {
        return Err(HELP);
    }
    let per_seconds = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "day" => 86_400,
        _ => return Err(HELP),
    };
    Ok(RateSpec { count, per_seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        for ok in ["orders:read", "billing:refunds:write", "a-b:c_d9"] {
            assert_eq!(scope_error(ok), None, "{ok}");
        }
        for bad in [
            "",
            "orders",
            "orders:",
            ":read",
            "Orders:read",
            "orders::read",
            "orders:*",
            "or ders:x",
        ] {
            assert!(scope_error(bad).is_some(), "{bad}");
        }
        for ok in ["orders:*", "*", "orders:read", "billing:refunds:*"] {
            assert_eq!(grant_error(ok), None, "{ok}");
        }
        for bad in ["orders:r*", "*:read", "orders*", "**"] {
            assert!(grant_error(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("10/min"),
            Ok(RateSpec {
                count: 10,
                per_seconds: 60
            })
        );
        assert_eq!(
            parse_rate("3 / s"),
            Ok(RateSpec {
                count: 3,
                per_seconds: 1
            })
        );
        for bad in ["", "10", "0/min", "x/min", "10/week", "-1/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
