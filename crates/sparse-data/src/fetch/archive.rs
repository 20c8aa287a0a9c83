//! Cutting the wanted files out of a downloaded artefact.
//!
//! The archive is read once; every entry is offered to each requested
//! [`Extraction`], which takes it when it lies directly in its `inside`
//! directory and matches its [`FileSelection`]. Only the file name of an
//! entry is used to build the output path, so archive paths such as
//! `../x` cannot escape the destination.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::FetchError;
use super::client::{self, Clients};
use super::pins::{ArchiveFormat, Pin};
use crate::catalogue::{Extraction, FileSelection};

/// Where one extraction writes, and what it has written so far.
pub(crate) struct Target<'a> {
    pub(crate) extraction: &'a Extraction,
    pub(crate) dir: PathBuf,
    pub(crate) written: Vec<String>,
}

impl Target<'_> {
    /// The file name to write `entry` to, when this target wants it.
    fn wants(&self, entry: &str) -> Option<String> {
        let entry = entry.trim_start_matches("./");
        let name = entry.strip_prefix(self.extraction.inside)?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let wanted = match self.extraction.files {
            FileSelection::Names(names) => names.contains(&name),
            FileSelection::Suffix(suffix) => name.ends_with(suffix),
        };
        wanted.then(|| name.to_string())
    }

    fn take(&mut self, entry: &str, reader: &mut dyn Read) -> Result<bool, FetchError> {
        let Some(name) = self.wants(entry) else {
            return Ok(false);
        };
        let path = self.dir.join(&name);
        let mut out = File::create(&path).map_err(|err| io_error("creating", &path, err))?;
        io::copy(reader, &mut out).map_err(|err| io_error("writing", &path, err))?;
        self.written.push(name);
        Ok(true)
    }

    /// Checks that every file the selection names was found.
    pub(crate) fn check_complete(&self, pin: &Pin) -> Result<(), FetchError> {
        let missing: Vec<String> = match self.extraction.files {
            FileSelection::Names(names) => names
                .iter()
                .filter(|name| !self.written.iter().any(|written| written == *name))
                .map(|name| format!("{}{name}", self.extraction.inside))
                .collect(),
            FileSelection::Suffix(suffix) if self.written.is_empty() => {
                vec![format!("{}*{suffix}", self.extraction.inside)]
            }
            FileSelection::Suffix(_) => Vec::new(),
        };
        if missing.is_empty() {
            Ok(())
        } else {
            Err(FetchError::NotInArtefact {
                file: pin.file.clone(),
                missing,
            })
        }
    }
}

/// Extracts the wanted files of `artefact` into each target's directory.
pub(crate) fn extract(
    pin: &Pin,
    artefact: &Path,
    targets: &mut [Target<'_>],
    clients: &Clients,
    scratch: &Path,
) -> Result<(), FetchError> {
    match pin.format {
        ArchiveFormat::TarGz => {
            let file = File::open(artefact).map_err(|err| io_error("opening", artefact, err))?;
            let gz = flate2::read::GzDecoder::new(BufReader::new(file));
            let mut archive = tar::Archive::new(gz);
            let entries = archive.entries().map_err(|err| corrupt(artefact, err))?;
            for entry in entries {
                let mut entry = entry.map_err(|err| corrupt(artefact, err))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let path = entry
                    .path()
                    .map_err(|err| corrupt(artefact, err))?
                    .to_string_lossy()
                    .into_owned();
                offer(targets, &path, &mut entry)?;
            }
        }
        ArchiveFormat::Zip => {
            let file = File::open(artefact).map_err(|err| io_error("opening", artefact, err))?;
            let mut archive = zip::ZipArchive::new(BufReader::new(file))
                .map_err(|err| corrupt(artefact, io::Error::other(err)))?;
            for index in 0..archive.len() {
                let mut entry = archive
                    .by_index(index)
                    .map_err(|err| corrupt(artefact, io::Error::other(err)))?;
                if !entry.is_file() {
                    continue;
                }
                let path = entry
                    .name()
                    .map_err(|err| corrupt(artefact, io::Error::other(err)))?
                    .into_owned();
                offer(targets, &path, &mut entry)?;
            }
        }
        ArchiveFormat::Deb => {
            let unpacked = scratch.join("deb");
            std::fs::create_dir_all(&unpacked)
                .map_err(|err| io_error("creating", &unpacked, err))?;
            client::dpkg_extract(artefact, &unpacked, clients, pin)?;
            for target in targets.iter_mut() {
                let dir = unpacked.join(target.extraction.inside);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|entry| entry.ok())
                    .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    let source = dir.join(&name);
                    let mut reader =
                        File::open(&source).map_err(|err| io_error("opening", &source, err))?;
                    let entry = format!("{}{name}", target.extraction.inside);
                    target.take(&entry, &mut reader)?;
                }
            }
        }
    }
    for target in targets.iter_mut() {
        target.written.sort();
    }
    Ok(())
}

fn offer(targets: &mut [Target<'_>], path: &str, reader: &mut dyn Read) -> Result<(), FetchError> {
    // An entry is read once; the first target that wants it gets it. Two data
    // sets never share files, so that is enough.
    for target in targets.iter_mut() {
        if target.take(path, reader)? {
            break;
        }
    }
    Ok(())
}

fn io_error(action: &str, path: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        context: format!("{action} {}", path.display()),
        source,
    }
}

fn corrupt(artefact: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        context: format!("reading archive {}", artefact.display()),
        source,
    }
}
