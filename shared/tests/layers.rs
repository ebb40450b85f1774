//! The shape of `shared/src`: folders in layers that import only downward, and no import
//! circle between any two files. Read from the source text, so a new `use` that breaks the
//! shape fails here with the file and the path that broke it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top to bottom as `lib.rs` lists them: a layer may use those before it, never after.
const LAYERS: &[&str] = &[
    "base", "policy", "triggers", "config", "aws", "desired", "notify", "pipeline", "runtime",
    "testing",
];

/// A file of the crate as a module path: `pipeline/sweep`, `pipeline/mod`, `config`.
type Node = String;

fn layer_of(node: &str) -> usize {
    let top = node.split('/').next().unwrap_or(node);
    LAYERS
        .iter()
        .position(|l| *l == top)
        .unwrap_or_else(|| panic!("{node}: a module outside the layers; add it to LAYERS"))
}

/// Every file of `shared/src` but `lib.rs`, with its text up to its test module (tests may
/// reach anywhere).
fn files() -> BTreeMap<Node, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("shared/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).expect("under src");
            let node = rel.with_extension("").to_string_lossy().replace('\\', "/");
            // Test modules in files of their own may reach anywhere, as inline ones do.
            if node == "lib" || node.ends_with("/tests") || node.ends_with("/properties") {
                continue;
            }
            let text = fs::read_to_string(&path).expect("a source file");
            let product = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            out.insert(node, product);
        }
    }
    out
}

/// The files a path such as `crate::pipeline::sweep::Deadline` names.
fn resolve(path: &[&str], nodes: &BTreeMap<Node, String>) -> Option<Node> {
    let first = *path.first()?;
    if nodes.contains_key(first) {
        return Some(first.to_string());
    }
    if let Some(second) = path.get(1) {
        let file = format!("{first}/{second}");
        if nodes.contains_key(&file) {
            return Some(file);
        }
    }
    let module = format!("{first}/mod");
    nodes.contains_key(&module).then_some(module)
}

/// Each file's imports of other files: `crate::` paths, and in a folder, `super::` paths and
/// the `use child::` of a `mod.rs`.
fn edges(nodes: &BTreeMap<Node, String>) -> BTreeMap<Node, BTreeSet<Node>> {
    let mut out: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    for (node, text) in nodes {
        let folder = node.rsplit_once('/').map(|(f, _)| f);
        let mut found = BTreeSet::new();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .collect();
                found.extend(resolve(&path, nodes));
            }
            let Some(folder) = folder else { continue };
            let relative = line
                .strip_prefix("use super::")
                .or_else(|| line.strip_prefix("pub use super::"))
                .or_else(|| {
                    node.ends_with("/mod")
                        .then(|| line.strip_prefix("pub use ").or(line.strip_prefix("use ")))
                        .flatten()
                });
            if let Some(rel) = relative {
                let child = rel.split("::").next().unwrap_or("");
                let file = format!("{folder}/{child}");
                if nodes.contains_key(&file) {
                    found.insert(file);
                } else if line.contains("super::") {
                    found.insert(format!("{folder}/mod"));
                }
            }
        }
        found.remove(node);
        out.insert(node.clone(), found);
    }
    out
}

#[test]
fn every_folder_imports_only_the_layers_above_it() {
    let nodes = files();
    let mut wrong = Vec::new();
    for (from, targets) in edges(&nodes) {
        for to in targets {
            if layer_of(&to) > layer_of(&from) {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn no_file_imports_itself_through_others() {
    let nodes = files();
    let graph = edges(&nodes);
    // Depth-first search; a back edge closes a circle, reported with the path.
    fn visit(
        node: &str,
        graph: &BTreeMap<Node, BTreeSet<Node>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let circle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "import circle: {}",
            circle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn the_checker_sees_a_circle_and_a_wrong_layer() {
    // The two checks above pass vacuously if the reader misses imports; these do not.
    let nodes: BTreeMap<Node, String> = [
        ("base/text", "use crate::policy::model::Policy;"),
        ("policy/model", "use crate::base::text;"),
        ("pipeline/mod", "pub use audit::Audit;"),
        ("pipeline/audit", "use super::Guard;"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    let graph = edges(&nodes);
    assert!(graph["base/text"].contains("policy/model"));
    assert!(graph["policy/model"].contains("base/text"));
    assert!(graph["pipeline/mod"].contains("pipeline/audit"));
    assert!(graph["pipeline/audit"].contains("pipeline/mod"));
    assert!(layer_of("base/text") < layer_of("policy/model"));
}
