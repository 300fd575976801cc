//! The canonical form a record's hash covers, the hash itself, and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// Chains a serialized record (which must not hold `hash`): returns its hash and the JSON line.
#[cfg(test)]
pub(crate) fn seal_value(value: &Value) -> (String, String) {
    seal_bytes(canonical_json(value))
}

/// Hashes canonical bytes and appends `"hash"` as the last key: the JSON line.
pub(crate) fn seal_bytes(mut bytes: Vec<u8>) -> (String, String) {
    let hash = hash_hex(&bytes);
    if bytes.last() == Some(&b'}') {
        bytes.pop();
        if bytes.len() > 1 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(b"\"hash\":\"");
        bytes.extend_from_slice(hash.as_bytes());
        bytes.extend_from_slice(b"\"}");
    }
    let line = String::from_utf8(bytes).unwrap_or_default();
    (hash, line)
}

/// Writes a JSON value with its object keys sorted at every level.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, &Sorted(v))?;
                }
                m.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(s),
        }
    }
}

pub(crate) fn sorted_opt<S: serde::Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(Sorted).serialize(s)
}

pub(crate) fn sorted_vec<S: serde::Serializer>(v: &[Value], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(Sorted))
}

pub use crate::digest::{canonical_json, hash_hex};

/// RFC 3339 in UTC with microseconds: `2026-11-24T13:45:01.123456Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_795_959_901_123_456);
        assert_eq!(rfc3339(t), "2026-11-29T13:45:01.123456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_level() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":2}],"c":"x\n"}}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":"x\n","d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn sealed_line_reparses_to_the_same_hash() {
        let v: Value = serde_json::from_str(r#"{"x":1.25,"id":"a"}"#).unwrap();
        let (hash, line) = seal_value(&v);
        let mut back: Value = serde_json::from_str(&line).unwrap();
        let stored = back.as_object_mut().unwrap().remove("hash").unwrap();
        assert_eq!(stored, Value::String(hash.clone()));
        assert_eq!(hash_hex(&canonical_json(&back)), hash);
    }
}
