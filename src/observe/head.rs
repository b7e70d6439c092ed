//! The harness's own head reader: the `payload.id` of a file's first line when that line
//! is a `session_meta` record (decompressed first for a `.zst` file); nothing else counts
//! as a claim.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// A first line longer than this is not a head this reader trusts.
const MAX_HEAD: u64 = 1 << 20;

/// The id the file's first line claims, or `None` (missing, empty, garbled, not a
/// `session_meta` record, or no string id).
pub fn claimed_id(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    // A zstd-compressed rollout (`….jsonl.zst`) claims what its decompressed first line does.
    if path.extension().is_some_and(|e| e == "zst") {
        let decoder = zstd::stream::read::Decoder::new(file).ok()?;
        BufReader::new(decoder.take(MAX_HEAD))
            .read_line(&mut line)
            .ok()?;
    } else {
        BufReader::new(file.take(MAX_HEAD))
            .read_line(&mut line)
            .ok()?;
    }
    claimed_id_of_line(&line)
}

pub fn claimed_id_of_line(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).ok()?;
    if v.get("type")?.as_str()? != "session_meta" {
        return None;
    }
    v.get("payload")?.get("id")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_session_meta_first_line_claims() {
        let ok = r#"{"type":"session_meta","payload":{"id":"abc"}}"#;
        assert_eq!(claimed_id_of_line(ok).as_deref(), Some("abc"));
        for bad in [
            r#"{"type":"response_item","payload":{"id":"abc"}}"#,
            r#"{"type":"session_meta","payload":{}}"#,
            r#"{"type":"session_meta","payload":{"id":7}}"#,
            "garbage",
            "",
        ] {
            assert_eq!(claimed_id_of_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_only_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        std::fs::write(
            &p,
            "{\"type\":\"turn_context\",\"payload\":{}}\n{\"type\":\"session_meta\",\"payload\":{\"id\":\"x\"}}\n",
        )
        .unwrap();
        assert_eq!(claimed_id(&p), None);
        assert_eq!(claimed_id(&dir.path().join("missing")), None);
    }

    #[test]
    fn a_compressed_rollout_claims_its_decompressed_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rollout-x.jsonl.zst");
        let plain = "{\"type\":\"session_meta\",\"payload\":{\"id\":\"z\"}}\n";
        std::fs::write(&p, zstd::encode_all(plain.as_bytes(), 3).unwrap()).unwrap();
        assert_eq!(claimed_id(&p).as_deref(), Some("z"));
        std::fs::write(&p, plain).unwrap();
        assert_eq!(
            claimed_id(&p),
            None,
            "a .zst that is not zstd claims nothing"
        );
    }
}
