//! Planetoid citation graphs (Cora, Citeseer) from the project's TSV files.
//!
//! A data set directory holds three tab-separated files, each with a header
//! line (see `shared/datasets/README.md`):
//!
//! - `nodes.tsv` — `node label split`: one row per node, ids `0..n` in order;
//!   `label` is a class id or `-1` (Citeseer's isolated nodes without data);
//!   `split` is `train`, `val`, `test` or `-`.
//! - `features.tsv` — `node feature value`: the non-zero feature entries.
//! - `edges.tsv` — `src dst`: undirected edges, each listed once.
//!
//! As in GCN, features are row-normalised (each non-empty row sums to 1) and
//! the adjacency is `D^-1/2 (A + I) D^-1/2`, `D` the degrees of `A + I`.

use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::error::{read_all, read_file, source_name};
use super::{CsrMatrix, DataError, text_lines};

/// A citation graph with node features, labels, the normalised adjacency and
/// the public train/val/test split.
#[derive(Debug, Clone)]
pub struct Planetoid {
    /// Number of nodes.
    pub num_nodes: usize,
    /// Feature dimension (largest feature index + 1).
    pub num_features: usize,
    /// Number of classes (largest label + 1).
    pub num_classes: usize,
    /// Row-normalised features, `num_nodes × num_features`.
    pub features: CsrMatrix,
    /// Class of each node; `None` for nodes without a label (Citeseer's `-1`).
    pub labels: Vec<Option<u32>>,
    /// The undirected edges as read, `(src, dst)`, self-loops dropped.
    pub edges: Vec<(u32, u32)>,
    /// `D^-1/2 (A + I) D^-1/2`, symmetric, `num_nodes × num_nodes`.
    pub adjacency: CsrMatrix,
    /// Training node ids, in file order.
    pub train: Vec<usize>,
    /// Validation node ids, in file order.
    pub val: Vec<usize>,
    /// Test node ids, in file order.
    pub test: Vec<usize>,
}

impl Planetoid {
    /// Loads `dir/{nodes,features,edges}.tsv`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let path = dir.join(name);
            Ok::<_, DataError>((read_file(&path)?, source_name(&path)))
        };
        let (nodes, features, edges) = (
            read("nodes.tsv")?,
            read("features.tsv")?,
            read("edges.tsv")?,
        );
        Self::parse(
            (&nodes.0, &nodes.1),
            (&features.0, &features.1),
            (&edges.0, &edges.1),
        )
    }

    /// Reads the three files from readers; each comes with its source name.
    pub fn from_readers(
        nodes: (impl Read, &str),
        features: (impl Read, &str),
        edges: (impl Read, &str),
    ) -> Result<Self, DataError> {
        let nodes_bytes = read_all(nodes.0, nodes.1)?;
        let features_bytes = read_all(features.0, features.1)?;
        let edges_bytes = read_all(edges.0, edges.1)?;
        Self::parse(
            (&nodes_bytes, nodes.1),
            (&features_bytes, features.1),
            (&edges_bytes, edges.1),
        )
    }

    /// Parses the three files from memory; each comes with its source name.
    pub fn parse(
        nodes: (&[u8], &str),
        features: (&[u8], &str),
        edges: (&[u8], &str),
    ) -> Result<Self, DataError> {
        let parsed = parse_nodes(nodes.0, nodes.1)?;
        let num_nodes = parsed.labels.len();
        let (features, num_features) = parse_features(features.0, features.1, num_nodes)?;
        let edges = parse_edges(edges.0, edges.1, num_nodes)?;
        let adjacency = normalized_adjacency(num_nodes, &edges)?;
        let num_classes = parsed
            .labels
            .iter()
            .flatten()
            .max()
            .map_or(0, |&m| m as usize + 1);
        Ok(Self {
            num_nodes,
            num_features,
            num_classes,
            features,
            labels: parsed.labels,
            edges,
            adjacency,
            train: parsed.train,
            val: parsed.val,
            test: parsed.test,
        })
    }

    /// Dense features as an `f32` tensor `(num_nodes, num_features)`.
    pub fn features_tensor(&self, device: &Device) -> Result<Tensor, DataError> {
        self.features.to_dense_tensor(device)
    }

    /// The labels of `nodes` as a `u32` tensor; fails for an unlabelled node
    /// or an id out of range.
    pub fn labels_tensor(&self, nodes: &[usize], device: &Device) -> Result<Tensor, DataError> {
        let mut labels = Vec::with_capacity(nodes.len());
        for &node in nodes {
            match self.labels.get(node) {
                Some(Some(label)) => labels.push(*label),
                Some(None) => {
                    return Err(DataError::argument(
                        "nodes",
                        format!("node {node} has no label"),
                    ));
                }
                None => {
                    return Err(DataError::argument(
                        "nodes",
                        format!("node {node} is out of range for {} nodes", self.num_nodes),
                    ));
                }
            }
        }
        Ok(Tensor::from_vec(labels, nodes.len(), device)?)
    }

    /// Number of nodes that have a label.
    pub fn num_labelled(&self) -> usize {
        self.labels.iter().flatten().count()
    }
}

struct Nodes {
    labels: Vec<Option<u32>>,
    train: Vec<usize>,
    val: Vec<usize>,
    test: Vec<usize>,
}

/// Splits a data line into exactly `N` tab- or space-separated fields.
fn fields<'a, const N: usize>(
    line: &'a str,
    number: usize,
    source: &str,
) -> Result<[&'a str; N], DataError> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    parts.try_into().map_err(|parts: Vec<&str>| {
        DataError::line(
            source,
            number,
            format!("expected {N} columns, found {}", parts.len()),
        )
    })
}

fn parse_index(
    field: &str,
    what: &str,
    limit: usize,
    number: usize,
    source: &str,
) -> Result<u32, DataError> {
    let value: u32 = field.parse().map_err(|_| {
        DataError::line(
            source,
            number,
            format!("{what} {field:?} is not a non-negative integer"),
        )
    })?;
    if value as usize >= limit {
        return Err(DataError::line(
            source,
            number,
            format!("{what} {value} is out of range (there are {limit} nodes)"),
        ));
    }
    Ok(value)
}

/// Data lines (after the header line), skipping blank ones.
fn data_lines<'a>(
    bytes: &'a [u8],
    source: &'a str,
    header: &'a str,
) -> Result<impl Iterator<Item = Result<(usize, &'a str), DataError>> + 'a, DataError> {
    let mut lines = text_lines(bytes, source);
    match lines.next() {
        Some(Ok((_, first))) if first.split_whitespace().eq(header.split_whitespace()) => {}
        Some(Ok((_, first))) => {
            return Err(DataError::line(
                source,
                1,
                format!("expected the header {header:?}, found {first:?}"),
            ));
        }
        Some(Err(e)) => return Err(e),
        None => {
            return Err(DataError::line(
                source,
                1,
                format!("empty file, expected the header {header:?}"),
            ));
        }
    }
    Ok(lines.filter(|line| !matches!(line, Ok((_, text)) if text.trim().is_empty())))
}

fn parse_nodes(bytes: &[u8], source: &str) -> Result<Nodes, DataError> {
    let mut nodes = Nodes {
        labels: Vec::new(),
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
    };
    for line in data_lines(bytes, source, "node label split")? {
        let (number, line) = line?;
        let [node, label, split] = fields::<3>(line, number, source)?;
        let id = nodes.labels.len();
        if node.parse::<usize>().ok() != Some(id) {
            return Err(DataError::line(
                source,
                number,
                format!("node ids must be 0, 1, 2, ... in order: expected {id}, found {node:?}"),
            ));
        }
        let label = match label {
            "-1" => None,
            _ => Some(label.parse::<u32>().map_err(|_| {
                DataError::line(
                    source,
                    number,
                    format!("label {label:?} is neither a class id nor -1"),
                )
            })?),
        };
        match split {
            "train" => nodes.train.push(id),
            "val" => nodes.val.push(id),
            "test" => nodes.test.push(id),
            "-" => {}
            _ => {
                return Err(DataError::line(
                    source,
                    number,
                    format!("split {split:?} is not train, val, test or -"),
                ));
            }
        }
        if label.is_none() && split != "-" {
            return Err(DataError::line(
                source,
                number,
                format!("unlabelled node {id} is in the {split} split"),
            ));
        }
        nodes.labels.push(label);
    }
    Ok(nodes)
}

fn parse_features(
    bytes: &[u8],
    source: &str,
    num_nodes: usize,
) -> Result<(CsrMatrix, usize), DataError> {
    let mut triples = Vec::new();
    let mut num_features = 0usize;
    for line in data_lines(bytes, source, "node feature value")? {
        let (number, line) = line?;
        let [node, feature, value] = fields::<3>(line, number, source)?;
        let node = parse_index(node, "node", num_nodes, number, source)?;
        let feature: u32 = feature.parse().map_err(|_| {
            DataError::line(
                source,
                number,
                format!("feature {feature:?} is not a non-negative integer"),
            )
        })?;
        let value: f32 = value
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                DataError::line(
                    source,
                    number,
                    format!("value {value:?} is not a finite non-negative number"),
                )
            })?;
        num_features = num_features.max(feature as usize + 1);
        triples.push((node, feature, value));
    }
    let raw = CsrMatrix::from_triples(num_nodes, num_features, triples)
        .map_err(|e| DataError::invalid(source, e.to_string()))?;
    // Row-normalise as GCN does; an all-zero row (isolated Citeseer node) stays zero.
    let mut values = raw.values().to_vec();
    for r in 0..num_nodes {
        let range = raw.row_ptr()[r]..raw.row_ptr()[r + 1];
        let sum: f32 = values[range.clone()].iter().sum();
        if sum > 0.0 {
            values[range].iter_mut().for_each(|v| *v /= sum);
        }
    }
    let features = CsrMatrix::new(
        num_nodes,
        num_features,
        raw.row_ptr().to_vec(),
        raw.col_indices().to_vec(),
        values,
    )
    .map_err(|e| DataError::invalid(source, e.to_string()))?;
    Ok((features, num_features))
}

fn parse_edges(bytes: &[u8], source: &str, num_nodes: usize) -> Result<Vec<(u32, u32)>, DataError> {
    let mut edges = Vec::new();
    for line in data_lines(bytes, source, "src dst")? {
        let (number, line) = line?;
        let [src, dst] = fields::<2>(line, number, source)?;
        let src = parse_index(src, "node", num_nodes, number, source)?;
        let dst = parse_index(dst, "node", num_nodes, number, source)?;
        // Self-loops are added once by the normalisation; keeping them would count them twice.
        if src != dst {
            edges.push((src, dst));
        }
    }
    Ok(edges)
}

/// `D^-1/2 (A + I) D^-1/2` for the symmetric, unweighted `A` of `edges`
/// (a pair listed twice, in either direction, counts once).
fn normalized_adjacency(num_nodes: usize, edges: &[(u32, u32)]) -> Result<CsrMatrix, DataError> {
    let mut triples: Vec<(u32, u32, f32)> = Vec::with_capacity(2 * edges.len() + num_nodes);
    for &(a, b) in edges {
        triples.push((a, b, 1.0));
        triples.push((b, a, 1.0));
    }
    triples.extend((0..num_nodes as u32).map(|i| (i, i, 1.0)));
    triples.sort_unstable_by_key(|&(r, c, _)| (r, c));
    triples.dedup_by_key(|&mut (r, c, _)| (r, c));
    let mut degree = vec![0f32; num_nodes];
    for &(r, _, _) in &triples {
        degree[r as usize] += 1.0;
    }
    let inv_sqrt: Vec<f32> = degree.iter().map(|d| 1.0 / d.sqrt()).collect();
    for (r, c, v) in &mut triples {
        *v = inv_sqrt[*r as usize] * inv_sqrt[*c as usize];
    }
    CsrMatrix::from_triples(num_nodes, num_nodes, triples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/fixtures/planetoid"
    );
    const SHARED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/planetoid"
    );

    #[test]
    fn fixture_graph_is_normalised_like_gcn() {
        let g = Planetoid::load(FIXTURE).unwrap();
        assert_eq!((g.num_nodes, g.num_features, g.num_classes), (10, 5, 3));
        assert_eq!(g.edges.len(), 9);
        assert_eq!(
            (g.train.clone(), g.val.clone(), g.test.clone()),
            (vec![0, 1, 2], vec![3, 4], vec![5, 6, 7])
        );
        assert_eq!(g.labels[9], None);
        assert_eq!(g.num_labelled(), 9);
        // Node 0 has features 0 and 3 (value 1 each) -> 0.5 each.
        assert_eq!(g.features.row(0), (&[0u32, 3][..], &[0.5f32, 0.5][..]));
        // Node 9 is isolated: no features, only its self-loop with weight 1.
        assert_eq!(g.features.row(9).0.len(), 0);
        assert_eq!(g.adjacency.row(9), (&[9u32][..], &[1.0f32][..]));
        // Edge 0-1: deg(0) = 3 (1, 2, self), deg(1) = 2 (0, self).
        let expected = 1.0 / (3.0f32 * 2.0).sqrt();
        assert!((g.adjacency.get(0, 1) - expected).abs() < 1e-6);
        assert_eq!(g.adjacency.get(0, 1), g.adjacency.get(1, 0));
        assert!((g.adjacency.get(0, 0) - 1.0 / 3.0).abs() < 1e-6);
        // 9 edges both ways + 10 self loops.
        assert_eq!(g.adjacency.nnz(), 28);
        let labels = g.labels_tensor(&g.train, &Device::Cpu).unwrap();
        assert_eq!(labels.to_vec1::<u32>().unwrap(), vec![0, 1, 2]);
        assert!(g.labels_tensor(&[9], &Device::Cpu).is_err());
    }

    #[test]
    fn out_of_range_node_names_file_and_line() {
        let nodes = b"node label split\n0 0 train\n1 1 -\n";
        let features = b"node feature value\n0 0 1\n";
        let edges = b"src dst\n0 1\n1 2\n";
        let err =
            Planetoid::parse((nodes, "n.tsv"), (features, "f.tsv"), (edges, "e.tsv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "e.tsv:3: node 2 is out of range (there are 2 nodes)"
        );
        let features = b"node feature value\n0 x 1\n";
        let err = Planetoid::parse(
            (nodes, "n.tsv"),
            (features, "f.tsv"),
            (b"src dst\n", "e.tsv"),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("f.tsv:2: feature \"x\""),
            "{err}"
        );
        let nodes = b"node label split\n0 0 train\n2 1 -\n";
        let err = Planetoid::parse(
            (nodes, "n.tsv"),
            (b"node feature value\n", "f.tsv"),
            (b"src dst\n", "e.tsv"),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("n.tsv:3: node ids"), "{err}");
    }

    fn check_shared(name: &str, expected: [usize; 8]) {
        let dir = format!("{SHARED}/{name}");
        if !Path::new(&dir).is_dir() {
            println!("skipped: {dir} not found");
            return;
        }
        let g = Planetoid::load(&dir).unwrap();
        let got = [
            g.num_nodes,
            g.num_labelled(),
            g.num_features,
            g.num_classes,
            g.edges.len(),
            g.train.len(),
            g.val.len(),
            g.test.len(),
        ];
        assert_eq!(got, expected, "{name}");
        assert_eq!(g.adjacency.nnz(), 2 * g.edges.len() + g.num_nodes);
        // Symmetric normalisation: A_hat[i][j] == A_hat[j][i].
        for r in (0..g.num_nodes).step_by(97) {
            let (cols, values) = g.adjacency.row(r);
            for (&c, &v) in cols.iter().zip(values) {
                assert!((g.adjacency.get(c as usize, r) - v).abs() < 1e-7);
            }
        }
        // Every non-empty feature row sums to one.
        for r in 0..g.num_nodes {
            let sum: f32 = g.features.row(r).1.iter().sum();
            assert!(sum == 0.0 || (sum - 1.0).abs() < 1e-5, "row {r}: {sum}");
        }
    }

    #[test]
    fn shared_cora_matches_check_values() {
        check_shared("cora", [2708, 2708, 1433, 7, 5278, 140, 500, 1000]);
    }

    #[test]
    fn shared_citeseer_matches_check_values() {
        check_shared("citeseer", [3327, 3312, 3703, 6, 4552, 120, 500, 1000]);
    }

    proptest! {
        #[test]
        fn random_text_never_panics(nodes in "node label split\n([0-9]{1,2} -?[0-9] (train|val|test|-|x)\n){0,8}",
                                     features in "node feature value\n([0-9]{1,2} [0-9]{1,3} [0-9.]{1,3}\n){0,8}",
                                     edges in "src dst\n([0-9]{1,2}[ \t][0-9]{1,2}\n){0,8}",
                                     junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Planetoid::parse((nodes.as_bytes(), "n"), (features.as_bytes(), "f"), (edges.as_bytes(), "e"));
            let _ = Planetoid::parse((&junk, "n"), (&junk, "f"), (&junk, "e"));
        }
    }
}
