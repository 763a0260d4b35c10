//! Object keys and MIME types: keys are made by the server, never chosen by
//! a client, and every key the HTTP routes accept must have that shape.

use bubble_core::{AppSettings, Error, ErrorKind, Result};

/// Longest MIME type accepted (RFC 6838 allows 127 + 1 + 127).
const MAX_MIME_LEN: usize = 255;

/// Checks a client's upload against its app's limits: a `type/subtype` MIME
/// type (returned lowercased) among `media_types`, and a size of 1 to
/// `max_media_bytes` bytes.
///
/// A size over the limit is [`ErrorKind::TooLarge`]; an empty file, a
/// malformed type or a type the app does not take is
/// [`ErrorKind::InvalidInput`] naming what the app allows.
pub fn check_upload(settings: &AppSettings, mime: &str, size: u64) -> Result<String> {
    let mime = parse_mime(mime)?;
    if size == 0 {
        return Err(Error::invalid(
            "size is 0: declare the file's length in bytes (an empty file needs no upload)",
        ));
    }
    if size > settings.max_media_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "the file is {size} bytes; this app takes uploads of at most {} bytes (max_media_bytes)",
                settings.max_media_bytes
            ),
        ));
    }
    if !mime_allowed(&settings.media_types, &mime) {
        let allowed = if settings.media_types.is_empty() {
            "none: this app takes no uploads".to_owned()
        } else {
            settings.media_types.join(", ")
        };
        return Err(Error::invalid(format!(
            "this app does not take {mime} uploads; allowed types (media_types): {allowed}"
        )));
    }
    Ok(mime)
}

/// A MIME type as `type/subtype` in lowercase, or why not. Parameters
/// (`; charset=…`) are refused: the type is compared with the upload's
/// `Content-Type` exactly.
pub fn parse_mime(mime: &str) -> Result<String> {
    let mime = mime.trim().to_ascii_lowercase();
    let (kind, sub) = mime.split_once('/').unwrap_or(("", ""));
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    if mime.len() > MAX_MIME_LEN || !token(kind) || !token(sub) {
        return Err(Error::invalid(format!(
            "mime {mime:?} is not a MIME type of the form type/subtype (image/jpeg), without parameters"
        )));
    }
    Ok(mime)
}

/// Whether `mime` (lowercase) is allowed by `types`: an entry ending in `/`
/// is a prefix, any other entry one exact type.
pub fn mime_allowed(types: &[String], mime: &str) -> bool {
    types.iter().any(|t| {
        if t.ends_with('/') {
            mime.starts_with(t.as_str())
        } else {
            mime == t
        }
    })
}

/// A new key for a file of `mime` uploaded to `app` at `now_ms`:
/// `<app>/<yyyy>/<mm>/<dd>/<32 hex digits>.<ext>`. The 128 random bits come
/// from the operating system: a key is the file's capability, it cannot be
/// guessed or enumerated. The extension follows the type (else the client's
/// file name, else `bin`).
pub fn new_key(app: &str, mime: &str, file_name: &str, now_ms: i64) -> Result<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the operating system's random number generator failed: {e}"),
        )
    })?;
    let (y, m, d) = civil_date(now_ms);
    Ok(format!(
        "{}/{y:04}/{m:02}/{d:02}/{}.{}",
        app_segment(app),
        hex::encode(random),
        extension(mime, file_name)
    ))
}

/// The first segment of an app's keys: the app id when it is made of
/// letters, digits, `_`, `-` and `.` (not first), else `x-` and its hex, so
/// no app id can make a path that climbs out of the store (`..`) or needs
/// escaping in a URL.
pub fn app_segment(app: &str) -> String {
    let plain = !app.is_empty()
        && !app.starts_with('.')
        && !app.starts_with("x-")
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        app.to_owned()
    } else {
        format!("x-{}", hex::encode(app))
    }
}

/// Whether `key` has the shape [`new_key`] makes. The HTTP routes serve and
/// accept nothing else: no `..`, no hidden upload directory, no listing.
pub fn is_media_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let [app, y, m, d, file] = parts.as_slice() else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some((name, ext)) = file.split_once('.') else {
        return false;
    };
    !app.is_empty()
        && !app.starts_with('.')
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && digits(y, 4)
        && digits(m, 2)
        && digits(d, 2)
        && name.len() == 32
        && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !ext.is_empty()
        && ext.len() <= 8
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Extensions of the common types, both ways.
const TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
    ("image/heif", "heif"),
    ("image/avif", "avif"),
    ("image/bmp", "bmp"),
    ("image/svg+xml", "svg"),
    ("video/mp4", "mp4"),
    ("video/webm", "webm"),
    ("video/quicktime", "mov"),
    ("video/3gpp", "3gp"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/aac", "aac"),
    ("audio/ogg", "ogg"),
    ("audio/opus", "opus"),
    ("audio/wav", "wav"),
    ("audio/webm", "weba"),
    ("audio/amr", "amr"),
    ("application/pdf", "pdf"),
    ("application/zip", "zip"),
    ("text/plain", "txt"),
];

/// The key's extension for `mime`: the common one, else the client's file
/// name's (letters and digits, at most 8), else `bin`.
fn extension(mime: &str, file_name: &str) -> String {
    if let Some((_, ext)) = TYPES.iter().find(|(m, _)| *m == mime) {
        return (*ext).to_owned();
    }
    let from_name = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| {
            !ext.is_empty() && ext.len() <= 8 && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    from_name.unwrap_or_else(|| "bin".to_owned())
}

/// The type a stored key is served as: the common type of its extension,
/// else `application/octet-stream`.
pub fn mime_of_key(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map_or("", |(_, ext)| ext);
    TYPES
        .iter()
        .find(|(_, e)| *e == ext)
        .map_or("application/octet-stream", |(m, _)| m)
}

/// The UTC date of `ms` since the epoch (Howard Hinnant's `civil_from_days`).
fn civil_date(ms: i64) -> (i64, u32, u32) {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_in_a_key_is_the_utc_day() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        // 2024-02-29T23:59:59.999Z, a leap day.
        assert_eq!(civil_date(1_709_251_199_999), (2024, 2, 29));
        assert_eq!(civil_date(1_709_251_200_000), (2024, 3, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
    }

    #[test]
    fn a_new_key_has_the_app_the_date_128_random_bits_and_an_extension() {
        let key = new_key("shop", "image/jpeg", "cat.JPEG", 1_709_251_200_000).unwrap();
        assert!(key.starts_with("shop/2024/03/01/"), "{key}");
        assert!(key.ends_with(".jpg"), "{key}");
        assert!(is_media_key(&key), "{key}");
        let other = new_key("shop", "image/jpeg", "cat.JPEG", 1_709_251_200_000).unwrap();
        assert_ne!(key, other, "every key is new");
    }

    #[test]
    fn an_unknown_type_takes_the_file_names_extension_or_bin() {
        let key = new_key("a", "application/x-thing", "notes.Thing", 0).unwrap();
        assert!(key.ends_with(".thing"), "{key}");
        let key = new_key("a", "application/x-thing", "../../etc/pa$$wd", 0).unwrap();
        assert!(key.ends_with(".bin"), "{key}");
    }

    #[test]
    fn an_app_id_that_could_climb_or_needs_escaping_is_hex_encoded() {
        assert_eq!(app_segment("shop-1.eu"), "shop-1.eu");
        assert_eq!(app_segment(".."), "x-2e2e");
        assert_eq!(app_segment("a b"), "x-612062");
        assert_eq!(
            app_segment("x-2e2e"),
            "x-782d32653265",
            "no two apps share a segment"
        );
        assert!(is_media_key(&new_key("..", "image/png", "", 0).unwrap()));
    }

    #[test]
    fn only_keys_of_the_servers_shape_are_media_keys() {
        let good = "shop/2024/03/01/0123456789abcdef0123456789abcdef.jpg";
        assert!(is_media_key(good));
        for bad in [
            "../2024/03/01/0123456789abcdef0123456789abcdef.jpg",
            ".uploads/2024/03/01/0123456789abcdef0123456789abcdef.jpg",
            "shop/2024/03/01/0123456789abcdef0123456789abcdef",
            "shop/2024/03/01/0123456789ABCDEF0123456789abcdef.jpg",
            "shop/2024/3/01/0123456789abcdef0123456789abcdef.jpg",
            "shop/2024/03/01/extra/0123456789abcdef0123456789abcdef.jpg",
            "shop/2024/03/01/0123456789abcdef0123456789abcdef.j/g",
            "",
        ] {
            assert!(!is_media_key(bad), "{bad}");
        }
    }

    #[test]
    fn a_mime_type_is_lowercased_and_must_be_type_slash_subtype() {
        assert_eq!(parse_mime(" Image/JPEG ").unwrap(), "image/jpeg");
        assert_eq!(parse_mime("image/svg+xml").unwrap(), "image/svg+xml");
        for bad in [
            "image",
            "image/",
            "/jpeg",
            "text/plain; charset=utf-8",
            "a/b/c",
            "",
        ] {
            assert_eq!(
                parse_mime(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_prefix_entry_allows_a_family_and_any_other_entry_one_type() {
        let types = ["image/".to_owned(), "application/pdf".to_owned()];
        assert!(mime_allowed(&types, "image/png"));
        assert!(mime_allowed(&types, "application/pdf"));
        assert!(!mime_allowed(&types, "application/pdfx"));
        assert!(!mime_allowed(&types, "text/html"));
    }

    #[test]
    fn an_upload_over_the_apps_limit_is_too_large_and_a_type_it_does_not_take_names_the_allowed_ones()
     {
        let settings = AppSettings::default();
        assert_eq!(
            check_upload(&settings, "image/png", 300_000).unwrap(),
            "image/png"
        );
        let err = check_upload(&settings, "image/png", 100 * 1024 * 1024 + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert!(err.message().contains("104857600"), "{err}");
        let err = check_upload(&settings, "text/html", 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.message()
                .contains("image/, video/, audio/, application/pdf"),
            "{err}"
        );
        let err = check_upload(&settings, "image/png", 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
