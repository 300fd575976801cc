//! How a call ended, read from [`CallEnd::status`].
//!
//! The engine does not re-export its `EndStatus` type (it lives in a private module), so nothing
//! outside `engine` can name its variants. Until it does, this reads the derived `Debug` form
//! (`Answer`, `Default(Timeout)`, `Failed(InvalidOutput)`) into a stack buffer, without
//! allocating. Once `engine` has `pub use run::EndStatus;`, [`of`] becomes a plain `match`.

use std::fmt::Write as _;

use crate::contract::FailureClass;
use crate::engine::CallEnd;
use crate::outcome::ErrorKind;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Answer,
    Default(FailureClass),
    Escalated(FailureClass),
    Failed(ErrorKind),
}

/// Reads the status of a finished call.
pub(crate) fn of(end: &CallEnd<'_>) -> Ended {
    let mut buf = Buf::default();
    // A status's Debug form is at most 30 bytes; a longer one is an engine change we do not know.
    if write!(buf, "{:?}", end.status).is_err() {
        return Ended::Failed(ErrorKind::Config);
    }
    parse(buf.as_str()).unwrap_or(Ended::Failed(ErrorKind::Config))
}

fn parse(debug: &str) -> Option<Ended> {
    if debug == "Answer" {
        return Some(Ended::Answer);
    }
    let (variant, inner) = debug.strip_suffix(')')?.split_once('(')?;
    let class = || {
        FailureClass::ALL
            .into_iter()
            .find(|c| class_debug(*c) == inner)
    };
    match variant {
        "Default" => class().map(Ended::Default),
        "Escalated" => class().map(Ended::Escalated),
        "Failed" if inner == "Config" => Some(Ended::Failed(ErrorKind::Config)),
        "Failed" => class().map(|c| Ended::Failed(c.into())),
        _ => None,
    }
}

const fn class_debug(class: FailureClass) -> &'static str {
    match class {
        FailureClass::Timeout => "Timeout",
        FailureClass::RateLimited => "RateLimited",
        FailureClass::ProviderError => "ProviderError",
        FailureClass::InvalidOutput => "InvalidOutput",
        FailureClass::Refusal => "Refusal",
        FailureClass::LowConfidence => "LowConfidence",
    }
}

#[derive(Default)]
struct Buf {
    bytes: [u8; 32],
    len: usize,
}

impl Buf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_debug_form_parses() {
        assert_eq!(parse("Answer"), Some(Ended::Answer));
        assert_eq!(
            parse("Default(Timeout)"),
            Some(Ended::Default(FailureClass::Timeout))
        );
        assert_eq!(
            parse("Escalated(LowConfidence)"),
            Some(Ended::Escalated(FailureClass::LowConfidence))
        );
        assert_eq!(
            parse("Failed(InvalidOutput)"),
            Some(Ended::Failed(ErrorKind::InvalidOutput))
        );
        assert_eq!(
            parse("Failed(Config)"),
            Some(Ended::Failed(ErrorKind::Config))
        );
        assert_eq!(parse("Failed(Nope)"), None);
    }
}
