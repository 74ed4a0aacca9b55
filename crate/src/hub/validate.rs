//! A downloaded file's format, checked before it enters the cache: a mirror's HTML error page
//! or a truncated file is refused under any name.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// `Err(reason)` when the file at `path` is not what `name` says it is: JSON for `.json`,
/// a safetensors file whose header parses and covers the file, a PyTorch checkpoint (zip
/// archive or pickle) for `.pt`/`.bin`, UTF-8 text for `.txt`; never an HTML page.
pub(super) fn check_format(name: &str, path: &Path) -> Result<(), String> {
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "json" => json(path),
        "safetensors" => safetensors(path),
        "pt" | "bin" | "pth" => pytorch(path),
        "txt" => text(path),
        _ => {
            let head = read_head(path, 1024)?;
            if looks_like_html(&head) {
                Err(html())
            } else {
                Ok(())
            }
        }
    }
}

fn io_error(e: std::io::Error) -> String {
    format!("cannot read the download ({e})")
}

fn read_head(path: &Path, n: usize) -> Result<Vec<u8>, String> {
    let mut head = Vec::with_capacity(n);
    File::open(path)
        .and_then(|f| f.take(n as u64).read_to_end(&mut head))
        .map_err(io_error)?;
    Ok(head)
}

fn html() -> String {
    "the server sent an HTML page (an error or login page of a mirror or proxy?) instead of \
     the file"
        .into()
}

/// An HTML document: `<!doctype html`, `<html`, `<head` or `<body` near the start of text that
/// begins with `<`.
pub(super) fn looks_like_html(bytes: &[u8]) -> bool {
    let start = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(start).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with('<')
        && ["<!doctype html", "<html", "<head", "<body"]
            .iter()
            .any(|tag| text.contains(tag))
}

fn json(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(io_error)?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err("not a JSON object".into()),
        Err(_) if looks_like_html(&bytes) => Err(html()),
        Err(e) => Err(format!("not valid JSON ({e})")),
    }
}

fn safetensors(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(io_error)?;
    // SAFETY: the file is this process's own download, which nothing else writes while it is
    // being checked (the blob's lock is held).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
    match safetensors::SafeTensors::read_metadata(&map) {
        Ok(_) => Ok(()),
        Err(_) if looks_like_html(&map) => Err(html()),
        Err(e) => Err(format!("not a valid safetensors file ({e:?})")),
    }
}

fn pytorch(path: &Path) -> Result<(), String> {
    let head = read_head(path, 1024)?;
    if head.starts_with(b"PK\x03\x04") {
        // torch.save's zip archive: its end-of-central-directory record must be there (the
        // last 22 bytes, or up to 64 KiB more with an archive comment).
        let mut file = File::open(path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let tail_len = len.min(22 + 65_535);
        let mut tail = Vec::with_capacity(tail_len as usize);
        file.seek(SeekFrom::Start(len - tail_len))
            .and_then(|_| file.take(tail_len).read_to_end(&mut tail))
            .map_err(io_error)?;
        if tail.windows(4).any(|w| w == b"PK\x05\x06") {
            Ok(())
        } else {
            Err("a zip archive without its end (truncated PyTorch checkpoint)".into())
        }
    } else if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        // The legacy torch.save format: pickles from the first byte.
        Ok(())
    } else if looks_like_html(&head) {
        Err(html())
    } else {
        Err("neither a zip archive nor a pickle (not a PyTorch checkpoint)".into())
    }
}

fn text(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(io_error)?;
    if looks_like_html(&bytes) {
        return Err(html());
    }
    if bytes.is_empty() {
        return Err("empty".into());
    }
    std::str::from_utf8(&bytes)
        .map(|_| ())
        .map_err(|e| format!("not UTF-8 text ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, bytes: &[u8]) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("download.incomplete");
        std::fs::write(&path, bytes).unwrap();
        check_format(name, &path)
    }

    const PAGE: &[u8] =
        b"\n<!DOCTYPE html>\n<html><head><title>502</title></head><body>Bad gateway</body></html>";

    #[test]
    fn html_pages_are_refused_under_every_name() {
        for name in [
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "list_transformer.pt",
            "pytorch_model.bin",
            "vocab.txt",
            "README.md",
        ] {
            let err = check(name, PAGE).unwrap_err();
            assert!(err.contains("HTML"), "{name}: {err}");
        }
    }

    #[test]
    fn good_files_pass_and_broken_ones_say_why() {
        assert!(check("config.json", br#"{"hidden_size": 8}"#).is_ok());
        assert!(check("config.json", b"[1]").unwrap_err().contains("object"));
        assert!(
            check("config.json", br#"{"a": 1"#)
                .unwrap_err()
                .contains("JSON")
        );
        assert!(check("vocab.txt", "[PAD]\n[UNK]\n中\n".as_bytes()).is_ok());
        assert!(
            check("vocab.txt", b"\xff\xfe")
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(check("list_transformer.pt", b"\x80\x02}q\x00.").is_ok());
        assert!(check("list_transformer.pt", b"garbage").is_err());
        let mut zip = b"PK\x03\x04rest of the archive".to_vec();
        assert!(
            check("list_transformer.pt", &zip)
                .unwrap_err()
                .contains("truncated")
        );
        zip.extend_from_slice(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert!(check("list_transformer.pt", &zip).is_ok());

        let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut st = (header.len() as u64).to_le_bytes().to_vec();
        st.extend_from_slice(header);
        st.extend_from_slice(&[0u8; 8]);
        assert!(check("model.safetensors", &st).is_ok());
        let err = check("model.safetensors", &st[..st.len() - 4]).unwrap_err();
        assert!(err.contains("safetensors"), "{err}");
    }
}
