//! The graphs: Planetoid data sets found through sparse-data's catalogue, turned
//! into the tensors the models multiply with.
//!
//! Every graph operator is a constant sparse matrix, multiplied with dense
//! activations by sparse-core's [`SparseMatrix`] (one CSR pass, backward through
//! the transpose). The node features are sparse too (Cora: 1.3 % non-zero), so the
//! first layer's `X Wᵀ` is the same kind of product. GAT's attention coefficients
//! are not constants: that product goes through the COO tensors of sparse-data's
//! [`CsrMatrix::coo_tensors`] (`index_select` + `index_add`, both differentiable).
//! Measured on Cora (hidden 256, a loaded 2-core machine): `X Wᵀ` 130 ms through
//! `index_select`/`index_add`, a few ms through [`SparseMatrix`].

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sparse_core::SparseMatrix;
use sparse_data::catalogue;
use sparse_data::data::{CsrMatrix, Planetoid};
use sparse_data::location::{DataLocation, find_workspace_root};

use crate::error::{Error, Result};
use crate::ood::ClassSplit;

/// The graphs this crate runs on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    /// Cora, public Planetoid split (shared data).
    Cora,
    /// Citeseer, public Planetoid split (shared data).
    Citeseer,
    /// The 10-node test fixture committed under `datasets/fixtures/planetoid`.
    Fixture,
}

impl DatasetName {
    /// `cora`, `citeseer` or `fixture`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cora => "cora",
            Self::Citeseer => "citeseer",
            Self::Fixture => "fixture",
        }
    }

    /// The data set called `name` (`cora`, `citeseer` or `fixture`, as
    /// [`DatasetName::as_str`] spells it); any other name is an
    /// [`Error::UnknownDataset`] naming it.
    pub fn from_name(name: &str) -> Result<Self> {
        [Self::Cora, Self::Citeseer, Self::Fixture]
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| Error::UnknownDataset {
                name: name.to_string(),
            })
    }

    /// The catalogue data sets it needs: none for the committed fixture.
    pub fn catalogue_names(self) -> Vec<String> {
        match self {
            Self::Fixture => Vec::new(),
            Self::Cora | Self::Citeseer => vec![self.as_str().to_string()],
        }
    }

    /// The official repeat seeds of the data set (`base_options.py`); the fixture
    /// uses Cora's.
    pub fn official_seeds(self) -> [u64; 5] {
        match self {
            Self::Cora | Self::Fixture => [5300, 2100, 100, 900, 3500],
            Self::Citeseer => [3300, 5200, 5700, 4900, 5000],
        }
    }

    /// The seed of repeat `index`: the official list, then `index` itself beyond it.
    pub fn seed(self, index: usize) -> u64 {
        self.official_seeds()
            .get(index)
            .copied()
            .unwrap_or(index as u64)
    }

    /// The directory holding the data set's TSV files.
    pub fn resolve(self, location: &DataLocation) -> Result<PathBuf> {
        match self {
            Self::Fixture => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                Ok(fixture_dir(&find_workspace_root(&cwd)))
            }
            Self::Cora | Self::Citeseer => {
                let entry = catalogue::find(self.as_str()).map_err(|e| Error::MissingData {
                    name: self.as_str().into(),
                    reason: e.to_string(),
                })?;
                match entry.resolve(location) {
                    Ok(catalogue::Presence::OnDisk(dir)) => Ok(dir),
                    Ok(other) => Err(Error::MissingData {
                        name: self.as_str().into(),
                        reason: format!("unexpected storage {other:?}"),
                    }),
                    Err(e) => Err(Error::MissingData {
                        name: self.as_str().into(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }

    /// Loads the graph found through `location`.
    pub fn load(self, location: &DataLocation, device: &Device) -> Result<GraphData> {
        let dir = self.resolve(location)?;
        GraphData::from_planetoid(self.as_str(), &Planetoid::load(&dir)?, device)
    }
}

/// `datasets/fixtures/planetoid` under a workspace root.
pub fn fixture_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join("datasets/fixtures/planetoid")
}

/// A constant sparse `rows × cols` matrix: a CSR [`SparseMatrix`] for products with
/// constant entries, and COO tensors for products with per-entry weights that need
/// a gradient (attention).
#[derive(Debug, Clone)]
pub struct SparseOperator {
    matrix: SparseMatrix,
    rows: usize,
    cols: usize,
    row: Tensor,
    col: Tensor,
    value: Tensor,
}

impl SparseOperator {
    /// From a CSR matrix.
    pub fn from_csr(m: &CsrMatrix, device: &Device) -> Result<Self> {
        let (row, col, value) = m.coo_tensors(device)?;
        let matrix = SparseMatrix::from_csr(
            m.rows(),
            m.cols(),
            m.row_ptr().to_vec(),
            m.col_indices().to_vec(),
            m.values().to_vec(),
        )?;
        Ok(Self {
            matrix,
            rows: m.rows(),
            cols: m.cols(),
            row,
            col,
            value: value.unsqueeze(1)?,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.value.dims()[0]
    }
    /// Row (destination) index of every entry, `u32 (nnz,)`.
    pub fn row(&self) -> &Tensor {
        &self.row
    }
    /// Column (source) index of every entry, `u32 (nnz,)`.
    pub fn col(&self) -> &Tensor {
        &self.col
    }
    /// The entries, `f32 (nnz, 1)`.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The CSR matrix.
    pub fn matrix(&self) -> &SparseMatrix {
        &self.matrix
    }

    /// `self × dense`, `dense` of shape `(cols, k)`, with the entries `values`
    /// (`(nnz, 1)`, COO order = CSR order) instead of the stored ones; differentiable
    /// with respect to both `values` and `dense` (attention).
    pub fn matmul_with(&self, values: &Tensor, dense: &Tensor) -> Result<Tensor> {
        let k = dense.dim(1)?;
        let gathered = dense.index_select(&self.col, 0)?.broadcast_mul(values)?;
        let zeros = Tensor::zeros((self.rows, k), dense.dtype(), dense.device())?;
        Ok(zeros.index_add(&self.row, &gathered, 0)?)
    }

    /// `self × dense` (differentiable with respect to `dense`).
    pub fn matmul(&self, dense: &Tensor) -> Result<Tensor> {
        Ok(self.matrix.matmul(dense)?)
    }
}

/// One graph as the models use it.
#[derive(Debug, Clone)]
pub struct GraphData {
    /// The data set's name.
    pub name: String,
    /// Number of nodes.
    pub num_nodes: usize,
    /// Feature dimension.
    pub num_features: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Row-normalised features, sparse `(nodes, features)`.
    pub features: SparseOperator,
    /// GCN's `D^-1/2 (A + I) D^-1/2` (also GAT's edge set: every edge and self-loop).
    pub gcn_adjacency: SparseOperator,
    /// GIN's mean over neighbours `D^-1 A` (no self-loops; isolated nodes get 0).
    pub mean_adjacency: SparseOperator,
    /// Class of each node, `None` for unlabelled nodes.
    pub labels: Vec<Option<u32>>,
    /// Training nodes (public split).
    pub train: Vec<usize>,
    /// Validation nodes.
    pub val: Vec<usize>,
    /// Test nodes.
    pub test: Vec<usize>,
}

impl GraphData {
    /// Builds the operators of a loaded Planetoid graph.
    pub fn from_planetoid(name: &str, g: &Planetoid, device: &Device) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            num_nodes: g.num_nodes,
            num_features: g.num_features,
            num_classes: g.num_classes,
            features: SparseOperator::from_csr(&g.features, device)?,
            gcn_adjacency: SparseOperator::from_csr(&g.adjacency, device)?,
            mean_adjacency: SparseOperator::from_csr(
                &mean_adjacency(g.num_nodes, &g.edges)?,
                device,
            )?,
            labels: g.labels.clone(),
            train: g.train.clone(),
            val: g.val.clone(),
            test: g.test.clone(),
        })
    }

    /// The labelled nodes of `nodes` whose class is in distribution under `classes`,
    /// with the model's labels for them.
    pub fn nodes_in(&self, nodes: &[usize], classes: &ClassSplit) -> (Vec<usize>, Vec<u32>) {
        nodes
            .iter()
            .filter_map(|&n| {
                let class = self.labels.get(n).copied().flatten()?;
                Some((n, classes.label(class)?))
            })
            .unzip()
    }

    /// The labelled nodes of `nodes` whose class is held out under `classes`.
    pub fn nodes_held_out(&self, nodes: &[usize], classes: &ClassSplit) -> Vec<usize> {
        nodes
            .iter()
            .copied()
            .filter(|&n| {
                matches!(self.labels.get(n).copied().flatten(), Some(c) if classes.is_held_out(c))
            })
            .collect()
    }
}

/// Node ids as a `u32` index tensor.
pub fn index_tensor(nodes: &[usize], device: &Device) -> Result<Tensor> {
    let ids: Vec<u32> = nodes.iter().map(|&n| n as u32).collect();
    Ok(Tensor::from_vec(ids, nodes.len(), device)?)
}

/// Labels as a `u32` tensor.
pub fn label_tensor(labels: &[u32], device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(labels, labels.len(), device)?.to_dtype(DType::U32)?)
}

/// `D^-1 A` over the undirected `edges` (each listed once): row `i` averages the
/// neighbours of `i` (DGL's `mean` aggregator); rows of isolated nodes are empty.
pub fn mean_adjacency(num_nodes: usize, edges: &[(u32, u32)]) -> Result<CsrMatrix> {
    let mut degree = vec![0f32; num_nodes];
    let mut triples = Vec::with_capacity(2 * edges.len());
    for &(a, b) in edges {
        if a == b {
            continue;
        }
        triples.push((a, b, 1.0f32));
        triples.push((b, a, 1.0f32));
    }
    // Duplicate edges count once, as in a simple graph.
    triples.sort_unstable_by_key(|&(r, c, _)| (r, c));
    triples.dedup_by_key(|t| (t.0, t.1));
    for &(r, _, _) in &triples {
        if let Some(d) = degree.get_mut(r as usize) {
            *d += 1.0;
        }
    }
    for t in &mut triples {
        t.2 = 1.0 / degree[t.0 as usize];
    }
    Ok(CsrMatrix::from_triples(num_nodes, num_nodes, triples)?)
}
