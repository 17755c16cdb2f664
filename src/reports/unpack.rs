//! Finds the report documents in what a receiver sent: bare XML or JSON, gzip (RFC 1952),
//! zip (PKWARE APPNOTE; stored and deflate entries only), or a mail carrying one of those
//! (RFC 7489 §7.2.1.1: gzip or zip attachment; RFC 8460 §5.3: `application/tlsrpt+gzip` or
//! `application/tlsrpt+json`).
//!
//! Compressed data is recognised by its magic bytes, not by a name or a media type (reporters
//! send gzip as `application/octet-stream`). Decompression stops past the shared budget of
//! [`MAX_DECOMPRESSED_BYTES`]: a bomb costs at most that much memory, never its full output.
//!
//! A zip's central directory is read whole by the zip crate before anything else, one entry
//! struct per declared file: a 32 MiB archive can declare 700,000 of them (183 MB of memory).
//! So the end-of-central-directory records (APPNOTE 4.3.16, and the ZIP64 ones of 4.3.14 and
//! 4.3.15) are read first, here: every record the crate could settle on must declare at most
//! [`MAX_FILES`] entries and a central directory of at most [`MAX_ZIP_DIRECTORY_BYTES`].

use std::io::{Cursor, Read};

use super::{
    MAX_DECOMPRESSED_BYTES, MAX_FILES, ReportError, ReportKind, Unpacked, attachments, check_input,
};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// The largest central directory a zip of reports may declare. One entry is 46 bytes plus its
/// name, extra field and comment: [`MAX_FILES`] reports named as reporters name them take a
/// few KiB; 1 MiB leaves room for long names and extra fields, and refuses a directory meant
/// to exhaust memory.
pub const MAX_ZIP_DIRECTORY_BYTES: u64 = 1024 * 1024;

/// Compressions we recognise by name or magic bytes but do not read.
const UNSUPPORTED: &[(&str, &[u8])] = &[
    (".bz2", b"BZh"),
    (".xz", &[0xfd, b'7', b'z', b'X', b'Z', 0]),
    (".zst", &[0x28, 0xb5, 0x2f, 0xfd]),
    (".7z", &[b'7', b'z', 0xbc, 0xaf]),
];

/// Finds and decompresses the reports in `bytes`; `name_hint` is the file name it came
/// under, if known. Fails when none is found.
pub fn unpack(name_hint: Option<&str>, bytes: &[u8]) -> Result<Vec<Unpacked>, ReportError> {
    check_input(bytes)?;
    let mut unpacker = Unpacker {
        budget: MAX_DECOMPRESSED_BYTES,
        found: Vec::new(),
    };
    if !unpacker.file(name_hint, bytes)? {
        let fields = crate::verdict::headers::split(bytes).map_err(|_| ReportError::NotAReport)?;
        for part in attachments::attachments(&fields, bytes)? {
            unpacker.attachment(&part)?;
        }
    }
    if unpacker.found.is_empty() {
        return Err(ReportError::NotAReport);
    }
    Ok(unpacker.found)
}

struct Unpacker {
    /// Bytes that may still be decompressed.
    budget: usize,
    found: Vec<Unpacked>,
}

impl Unpacker {
    /// Takes `bytes` when it is a report or an archive of reports; `false` when it is neither
    /// (a mail, perhaps).
    fn file(&mut self, name: Option<&str>, bytes: &[u8]) -> Result<bool, ReportError> {
        if bytes.starts_with(GZIP_MAGIC) {
            let inner = self.gunzip(bytes)?;
            let inner_name = name.map(|name| name.strip_suffix(".gz").unwrap_or(name));
            return self.document(inner_name, inner);
        }
        if bytes.starts_with(ZIP_MAGIC) {
            self.unzip(bytes)?;
            return Ok(true);
        }
        for (suffix, magic) in UNSUPPORTED {
            if bytes.starts_with(magic) || name.is_some_and(|name| name.ends_with(suffix)) {
                return Err(ReportError::UnsupportedCompression {
                    what: suffix.trim_start_matches('.').to_string(),
                });
            }
        }
        self.document(name, bytes.to_vec())
    }

    /// Takes a decompressed document if it is XML or JSON.
    fn document(&mut self, name: Option<&str>, bytes: Vec<u8>) -> Result<bool, ReportError> {
        let Some(kind) = kind_of(&bytes) else {
            return Ok(false);
        };
        if self.found.len() >= MAX_FILES {
            return Err(ReportError::TooMany {
                what: "reports in one input",
                limit: MAX_FILES,
            });
        }
        self.found.push(Unpacked {
            name: name.map(str::to_string),
            kind,
            bytes,
        });
        Ok(true)
    }

    /// A MIME part that may hold a report.
    fn attachment(&mut self, part: &attachments::Attachment) -> Result<(), ReportError> {
        let name = part.filename.as_deref();
        let compressed = part.body.starts_with(GZIP_MAGIC) || part.body.starts_with(ZIP_MAGIC);
        // A part that announces a report but holds neither XML nor JSON is skipped; when no
        // part holds one, `unpack` fails with `NotAReport`.
        if compressed || part.is_report_type() {
            self.file(name, &part.body)?;
        }
        Ok(())
    }

    fn gunzip(&mut self, bytes: &[u8]) -> Result<Vec<u8>, ReportError> {
        let decoder = flate2::read::MultiGzDecoder::new(bytes);
        self.read_bounded(decoder, "gzip")
    }

    fn unzip(&mut self, bytes: &[u8]) -> Result<(), ReportError> {
        check_zip_directory(bytes)?;
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
        if archive.len() > MAX_FILES {
            return Err(ReportError::TooMany {
                what: "files in a zip",
                limit: MAX_FILES,
            });
        }
        for index in 0..archive.len() {
            let file = archive.by_index(index).map_err(zip_error)?;
            if file.is_dir() {
                continue;
            }
            let name = file.name().map_err(zip_error)?.into_owned();
            let inner = self.read_bounded(file, "zip")?;
            self.document(Some(&name), inner)?;
        }
        Ok(())
    }

    /// Reads all of `reader`, refusing past the budget: at most budget + 1 bytes are ever held.
    fn read_bounded(
        &mut self,
        reader: impl Read,
        format: &'static str,
    ) -> Result<Vec<u8>, ReportError> {
        let mut out = Vec::new();
        reader
            .take(self.budget as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|err| ReportError::Corrupt {
                format,
                detail: err.to_string(),
            })?;
        if out.len() > self.budget {
            return Err(ReportError::TooLarge {
                what: "the decompressed data",
                limit: MAX_DECOMPRESSED_BYTES,
            });
        }
        self.budget -= out.len();
        Ok(out)
    }
}

/// The end-of-central-directory record (APPNOTE 4.3.16): signature, then at these offsets the
/// entries on this disk (u16), all entries (u16), the directory's size (u32).
const EOCD_MAGIC: &[u8] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
/// The ZIP64 end-of-central-directory locator (4.3.15), 20 bytes right before the record
/// above: signature, disk (u32), offset of the ZIP64 record (u64), disks (u32).
const ZIP64_LOCATOR_MAGIC: &[u8] = b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: usize = 20;
/// The ZIP64 end-of-central-directory record (4.3.14): signature, its size after the first 12
/// bytes (u64), then at these offsets the entries on this disk (u64 at 24), all entries (u64
/// at 32), the directory's size (u64 at 40).
const ZIP64_EOCD_MAGIC: &[u8] = b"PK\x06\x06";
const ZIP64_EOCD_MIN_LEN: usize = 56;

/// Refuses a zip whose end-of-central-directory records declare more than [`MAX_FILES`]
/// entries or a central directory over [`MAX_ZIP_DIRECTORY_BYTES`], before the zip crate reads
/// the directory. The crate tries every record signature in the last 64 KiB + 22 bytes (a
/// record may be followed by a comment of up to 65,535 bytes), and for a ZIP64 one every
/// ZIP64 record that ends at its locator: so every one of those is checked here. A record that
/// declares few entries bounds what the crate reads; one it cannot use, it refuses itself.
fn check_zip_directory(bytes: &[u8]) -> Result<(), ReportError> {
    // As far back as the crate looks: the record, its signature's length, a 64 KiB comment.
    let tail_start = bytes.len().saturating_sub(EOCD_LEN + 4 + (1 << 16));
    for at in find_all(bytes, EOCD_MAGIC, tail_start, bytes.len()) {
        let Some(record) = bytes.get(at..at + EOCD_LEN) else {
            continue;
        };
        let entries = u64::from(le_u16(record, 8).max(le_u16(record, 10)));
        let size = u64::from(le_u32(record, 12));
        // 0xFFFF and 0xFFFFFFFF say "see the ZIP64 record" (APPNOTE 4.4.1.4), found through
        // the locator right before this record; without a locator the crate takes them as
        // they are.
        let zip64 = le_u16(record, 10) == 0xFFFF
            || size == 0xFFFF_FFFF
            || le_u32(record, 16) == 0xFFFF_FFFF;
        let locator = at
            .checked_sub(ZIP64_LOCATOR_LEN)
            .filter(|&l| bytes[l..].starts_with(ZIP64_LOCATOR_MAGIC));
        if let Some(locator) = locator {
            check_zip64(bytes, locator)?;
        }
        if !(zip64 && locator.is_some()) {
            check_declared(entries, size)?;
        }
    }
    Ok(())
}

/// The ZIP64 records a locator at `locator` may lead to: every ZIP64 record signature before
/// it whose declared length ends at the locator (the crate tries each of them).
fn check_zip64(bytes: &[u8], locator: usize) -> Result<(), ReportError> {
    for at in find_all(bytes, ZIP64_EOCD_MAGIC, 0, locator) {
        let Some(record) = bytes.get(at..at + ZIP64_EOCD_MIN_LEN) else {
            continue;
        };
        let ends_at = (at as u64)
            .checked_add(12)
            .and_then(|end| end.checked_add(le_u64(record, 4)));
        if ends_at != Some(locator as u64) {
            continue;
        }
        let entries = le_u64(record, 24).max(le_u64(record, 32));
        check_declared(entries, le_u64(record, 40))?;
    }
    Ok(())
}

/// One record's declared entries and directory size against the limits.
fn check_declared(entries: u64, directory_bytes: u64) -> Result<(), ReportError> {
    if entries > MAX_FILES as u64 {
        return Err(ReportError::TooMany {
            what: "files declared by the zip's end-of-central-directory record",
            limit: MAX_FILES,
        });
    }
    if directory_bytes > MAX_ZIP_DIRECTORY_BYTES {
        return Err(ReportError::TooLarge {
            what: "the zip's central directory",
            limit: MAX_ZIP_DIRECTORY_BYTES as usize,
        });
    }
    Ok(())
}

/// The positions of `needle` in `bytes[start..end]`, last first.
fn find_all<'a>(
    bytes: &'a [u8],
    needle: &'a [u8],
    start: usize,
    end: usize,
) -> impl Iterator<Item = usize> + 'a {
    let window = bytes.get(start..end).unwrap_or_default();
    window
        .windows(needle.len())
        .enumerate()
        .rev()
        .filter(move |(_, w)| *w == needle)
        .map(move |(i, _)| start + i)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// XML (DMARC) or JSON (TLS-RPT), by the first byte that is not white space or a BOM.
fn kind_of(bytes: &[u8]) -> Option<ReportKind> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'<') => Some(ReportKind::Dmarc),
        Some(b'{') => Some(ReportKind::Tlsrpt),
        _ => None,
    }
}

fn zip_error(err: zip::result::ZipError) -> ReportError {
    match err {
        zip::result::ZipError::UnsupportedArchive(what) => ReportError::UnsupportedCompression {
            what: format!("zip: {what}"),
        },
        zip::result::ZipError::CompressionMethodNotSupported(method) => {
            ReportError::UnsupportedCompression {
                what: format!("zip compression method {method}"),
            }
        }
        other => ReportError::Corrupt {
            format: "zip",
            detail: other.to_string(),
        },
    }
}
