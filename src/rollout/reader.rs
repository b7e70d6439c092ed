//! Opening a rollout for reading, plain (`.jsonl`) or zstd-compressed (`.jsonl.zst`, the form
//! Codex compresses old rollouts to). Readers see the same lines either way; nothing here
//! ever writes, so a compressed rollout is never rewritten.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::layout::is_compressed_rollout;

/// A line reader over the rollout's (decompressed) bytes.
pub fn open_rollout(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    if is_compressed_rollout(path) {
        Ok(Box::new(BufReader::new(zstd::Decoder::new(file)?)))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn compressed_and_plain_read_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"a\":1}\n{\"b\":2}\n";
        let plain = dir.path().join("rollout-x.jsonl");
        let packed = dir.path().join("rollout-x.jsonl.zst");
        std::fs::write(&plain, text).unwrap();
        std::fs::write(&packed, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
        for path in [plain, packed] {
            let mut out = String::new();
            open_rollout(&path)
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, text, "{}", path.display());
        }
    }

    #[test]
    fn a_damaged_compressed_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let packed = dir.path().join("rollout-x.jsonl.zst");
        std::fs::write(&packed, b"not zstd at all").unwrap();
        let mut out = String::new();
        let result = open_rollout(&packed).and_then(|mut r| r.read_to_string(&mut out));
        assert!(result.is_err());
    }
}
