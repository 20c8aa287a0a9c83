//! The error type shared by every loader in [`crate::data`].

use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading a data set.
///
/// Every variant names the file (or in-memory source) it came from, and,
/// where it makes sense, the 1-based line of a text file or the byte offset
/// of a binary file, so that a user can open the file and look.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file's path or source name.
        file: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A text file holds something malformed on a given line.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file's path or source name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A binary file holds something malformed at a given byte offset.
    #[error("{file}: at byte {offset}: {message}")]
    Byte {
        /// The file's path or source name.
        file: String,
        /// 0-based byte offset (of the decompressed stream for gzipped files).
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The file is well formed piece by piece but inconsistent as a whole
    /// (e.g. 10 images but 9 labels), or a required file is missing.
    #[error("{file}: {message}")]
    Invalid {
        /// The file's path, source name or directory.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// An argument passed to a loader or batch builder is out of range.
    #[error("invalid argument `{parameter}`: {message}")]
    Argument {
        /// The parameter's name.
        parameter: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Building a candle tensor failed.
    #[error("building a tensor: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl DataError {
    pub(crate) fn io(file: impl Into<String>, source: std::io::Error) -> Self {
        DataError::Io {
            file: file.into(),
            source,
        }
    }

    pub(crate) fn line(file: &str, line: usize, message: impl Into<String>) -> Self {
        DataError::Line {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn byte(file: &str, offset: usize, message: impl Into<String>) -> Self {
        DataError::Byte {
            file: file.to_owned(),
            offset: offset as u64,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(file: &str, message: impl Into<String>) -> Self {
        DataError::Invalid {
            file: file.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn argument(parameter: &'static str, message: impl Into<String>) -> Self {
        DataError::Argument {
            parameter,
            message: message.into(),
        }
    }
}

/// Reads a whole file into memory, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path.display().to_string(), e))
}

/// Reads a whole reader into memory, naming the source in the error.
pub(crate) fn read_all(mut reader: impl std::io::Read, source: &str) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(source, e))?;
    Ok(bytes)
}

/// The display name used for a path in error messages.
pub(crate) fn source_name(path: &Path) -> String {
    path.display().to_string()
}

/// Lists the entries of a directory, sorted by file name, naming it in errors.
pub(crate) fn sorted_dir_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let name = source_name(dir);
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(&name, e))? {
        paths.push(entry.map_err(|e| DataError::io(&name, e))?.path());
    }
    paths.sort();
    Ok(paths)
}
