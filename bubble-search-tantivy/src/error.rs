//! The one place tantivy's errors (and the file system's, for the index
//! directory) become core error kinds.

use bubble_core::{Error, ErrorKind};
use tantivy::TantivyError;

/// Converts a tantivy error into a core error saying what to do, with the
/// tantivy error kept as the source.
pub(crate) fn map_err(what: &str, e: TantivyError) -> Error {
    let (kind, hint) = match &e {
        // Another writer (this process or another) holds the directory.
        TantivyError::LockFailure(..) => (
            ErrorKind::Unavailable,
            "another process (or another TantivySearch in this one) has the index open for \
             writing; stop it or use another path",
        ),
        TantivyError::IoError(_)
        | TantivyError::OpenDirectoryError(_)
        | TantivyError::OpenReadError(_)
        | TantivyError::OpenWriteError(_) => (
            ErrorKind::Unavailable,
            "check that the index directory exists, is writable and the disk is not full",
        ),
        TantivyError::SchemaError(_) | TantivyError::IncompatibleIndex(_) => (
            ErrorKind::InvalidInput,
            "the directory holds an index this version or configuration cannot use; point \
             `path` elsewhere or move the directory away and re-index",
        ),
        TantivyError::InvalidArgument(_) => (ErrorKind::InvalidInput, "check the settings"),
        TantivyError::DataCorruption(_) => (
            ErrorKind::Internal,
            "the index is damaged; move the directory away and re-index",
        ),
        _ => (ErrorKind::Internal, "see the cause"),
    };
    Error::new(kind, format!("search index: {what} failed; {hint}")).with_source(e)
}

/// A blocking task that did not finish (panicked or was cancelled).
pub(crate) fn join_err(what: &str, e: tokio::task::JoinError) -> Error {
    Error::internal(format!("search index: {what} did not finish")).with_source(e)
}

/// The index directory could not be created.
pub(crate) fn cannot_create_dir(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::unavailable(format!(
        "path: cannot create the index directory {}; check permissions",
        path.display()
    ))
    .with_source(e)
}

/// The index's schema lacks a field this version needs.
pub(crate) fn missing_field(name: &str, e: TantivyError) -> Error {
    Error::internal(format!(
        "the search index has no field {name:?}: it was not made by this version \
         of bubble; move the directory away and re-index"
    ))
    .with_source(e)
}
