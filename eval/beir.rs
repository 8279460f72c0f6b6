//! Reader for retrieval datasets in BEIR's layout: `corpus.jsonl`,
//! `queries.jsonl` and `qrels/<split>.tsv` in one directory.
//!
//! Owns parsing and the checks that make a malformed file fail with its path
//! and line number. It does not embed, index or score anything, and it keeps
//! only the fields retrieval needs (ids, title, text): BEIR's `metadata`
//! objects are ignored.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// One corpus document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub id: String,
    pub title: String,
    pub text: String,
}

impl Doc {
    /// The text to embed: `title + " " + text`, as MTEB builds it, trimmed
    /// so an empty title leaves no leading space.
    pub fn embed_text(&self) -> String {
        format!("{} {}", self.title, self.text).trim().to_string()
    }
}

/// One query of the chosen split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// A loaded dataset. `queries` holds only the queries judged in the split,
/// in `queries.jsonl` order; `qrels` maps query id → doc id → grade.
#[derive(Debug, Clone, PartialEq)]
pub struct BeirDataset {
    /// The directory's name, e.g. `scifact`.
    pub name: String,
    pub split: String,
    pub docs: Vec<Doc>,
    pub queries: Vec<Query>,
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

/// Ids are strings in most BEIR files, but some exports write numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Text(String),
    Number(serde_json::Number),
}

impl RawId {
    fn into_string(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct RawDoc {
    #[serde(rename = "_id")]
    id: RawId,
    #[serde(default)]
    title: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "_id")]
    id: RawId,
    text: String,
}

/// Removes hits whose id equals the query's, as BEIR's evaluator does by
/// default (`ignore_identical_ids`): in datasets whose queries are also
/// corpus documents (ArguAna, Quora) the query would otherwise find itself.
pub fn drop_identical_ids(query_id: &str, ranked: &mut Vec<String>) {
    ranked.retain(|id| id != query_id);
}

/// Loads `dir` for `split` (e.g. `test`).
pub fn load(dir: &Path, split: &str) -> anyhow::Result<BeirDataset> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    let qrels = read_qrels(&qrels_path)?;
    let docs = read_docs(&dir.join("corpus.jsonl"))?;
    let queries_path = dir.join("queries.jsonl");
    let mut queries = read_queries(&queries_path)?;
    let known: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
    if let Some(missing) = qrels.keys().filter(|id| !known.contains(id.as_str())).min() {
        bail!("{}: query id {missing:?} is judged but not in {}", qrels_path.display(), queries_path.display());
    }
    queries.retain(|q| qrels.contains_key(&q.id));
    Ok(BeirDataset { name, split: split.to_string(), docs, queries, qrels })
}

/// Non-empty lines of a file with their 1-based line numbers.
fn lines(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(usize, String)>>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let shown: PathBuf = path.to_path_buf();
    Ok(BufReader::new(file).lines().enumerate().filter_map(move |(i, line)| match line {
        Ok(l) if l.trim().is_empty() => None,
        Ok(l) => Some(Ok((i + 1, l))),
        Err(e) => Some(Err(anyhow::Error::new(e).context(format!("{}:{}: cannot read", shown.display(), i + 1)))),
    }))
}

fn read_docs(path: &Path) -> anyhow::Result<Vec<Doc>> {
    let mut docs = Vec::new();
    let mut seen = HashSet::new();
    for line in lines(path)? {
        let (n, line) = line?;
        let raw: RawDoc =
            serde_json::from_str(&line).with_context(|| format!("{}:{n}: not a corpus record", path.display()))?;
        let id = raw.id.into_string();
        if id.is_empty() {
            bail!("{}:{n}: empty \"_id\"", path.display());
        }
        if !seen.insert(id.clone()) {
            bail!("{}:{n}: duplicate document id {id:?}", path.display());
        }
        let text = raw.text.with_context(|| format!("{}:{n}: document {id:?} has no \"text\"", path.display()))?;
        docs.push(Doc { id, title: raw.title.unwrap_or_default(), text });
    }
    Ok(docs)
}

fn read_queries(path: &Path) -> anyhow::Result<Vec<Query>> {
    let mut queries = Vec::new();
    let mut seen = HashSet::new();
    for line in lines(path)? {
        let (n, line) = line?;
        let raw: RawQuery =
            serde_json::from_str(&line).with_context(|| format!("{}:{n}: not a query record", path.display()))?;
        let id = raw.id.into_string();
        if !seen.insert(id.clone()) {
            bail!("{}:{n}: duplicate query id {id:?}", path.display());
        }
        queries.push(Query { id, text: raw.text });
    }
    Ok(queries)
}

/// `query-id<TAB>corpus-id<TAB>score`, with an optional header line.
fn read_qrels(path: &Path) -> anyhow::Result<HashMap<String, HashMap<String, u32>>> {
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for line in lines(path)? {
        let (n, line) = line?;
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if n == 1 && fields.first() == Some(&"query-id") {
            continue;
        }
        let [query, doc, score] = fields[..] else {
            bail!(
                "{}:{n}: expected 3 tab-separated fields (query-id, corpus-id, score), got {}",
                path.display(),
                fields.len()
            );
        };
        // Graded judgements are non-negative integers; "1.0" style floats
        // appear in some exports and mean the same grade.
        let grade = score
            .parse::<u32>()
            .ok()
            .or_else(|| score.parse::<f64>().ok().filter(|g| g.fract() == 0.0 && *g >= 0.0).map(|g| g as u32))
            .with_context(|| format!("{}:{n}: score {score:?} is not a non-negative integer", path.display()))?;
        if query.is_empty() || doc.is_empty() {
            bail!("{}:{n}: empty query or corpus id", path.display());
        }
        qrels.entry(query.to_string()).or_default().insert(doc.to_string(), grade);
    }
    if qrels.is_empty() {
        bail!("{}: no judgements", path.display());
    }
    Ok(qrels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, corpus: &str, queries: &str, qrels: &str) {
        std::fs::create_dir_all(dir.join("qrels")).unwrap();
        std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
        std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
        std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
    }

    const CORPUS: &str = concat!(
        r#"{"_id": "d1", "title": "Boots", "text": "Waterproof leather.", "metadata": {}}"#,
        "\n",
        r#"{"_id": 42, "title": "", "text": "No title here."}"#,
        "\n\n",
        r#"{"_id": "d3", "text": "Title missing entirely."}"#,
        "\n",
    );
    const QUERIES: &str = concat!(
        r#"{"_id": "q2", "text": "second", "metadata": {}}"#,
        "\n",
        r#"{"_id": "q1", "text": "first"}"#,
        "\n",
        r#"{"_id": "q9", "text": "not judged"}"#,
        "\n",
    );

    #[test]
    fn loads_a_small_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tiny");
        write(&dir, CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t42\t0\nq2\td3\t1\n");
        let data = load(&dir, "test").unwrap();
        assert_eq!(data.name, "tiny");
        assert_eq!(data.docs.len(), 3);
        assert_eq!(data.docs[0].embed_text(), "Boots Waterproof leather.");
        assert_eq!(data.docs[1].id, "42");
        assert_eq!(data.docs[1].embed_text(), "No title here.");
        assert_eq!(data.docs[2].embed_text(), "Title missing entirely.");
        // Judged queries only, in file order.
        let ids: Vec<&str> = data.queries.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["q2", "q1"]);
        assert_eq!(data.qrels["q1"]["d1"], 2);
        assert_eq!(data.qrels["q1"]["42"], 0);
        assert_eq!(data.qrels["q2"].len(), 1);
    }

    #[test]
    fn header_is_optional() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), CORPUS, QUERIES, "q1\td1\t1.0\n");
        assert_eq!(load(tmp.path(), "test").unwrap().qrels["q1"]["d1"], 1);
    }

    fn error_of(corpus: &str, queries: &str, qrels: &str) -> String {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), corpus, queries, qrels);
        format!("{:#}", load(tmp.path(), "test").unwrap_err())
    }

    #[test]
    fn malformed_input_names_file_and_line() {
        let bad_json = format!("{CORPUS}{{not json\n");
        let e = error_of(&bad_json, QUERIES, "q1\td1\t1\n");
        assert!(e.contains("corpus.jsonl:5: not a corpus record"), "{e}");

        let e = error_of(CORPUS, QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\n");
        assert!(e.contains("test.tsv:2: expected 3 tab-separated fields"), "{e}");

        let e = error_of(CORPUS, QUERIES, "q1\td1\thigh\n");
        assert!(e.contains("test.tsv:1: score \"high\""), "{e}");

        let e = error_of(CORPUS, QUERIES, "q7\td1\t1\n");
        assert!(e.contains("query id \"q7\" is judged but not in"), "{e}");

        let dup = format!("{CORPUS}{}\n", r#"{"_id": "d1", "text": "again"}"#);
        let e = error_of(&dup, QUERIES, "q1\td1\t1\n");
        assert!(e.contains("corpus.jsonl:5: duplicate document id \"d1\""), "{e}");

        let tmp = tempfile::tempdir().unwrap();
        let e = format!("{:#}", load(tmp.path(), "dev").unwrap_err());
        assert!(e.contains("dev.tsv"), "{e}");
    }

    #[test]
    fn identical_ids_are_dropped() {
        let mut ranked: Vec<String> = ["q1", "d1", "q1", "d2"].iter().map(|s| s.to_string()).collect();
        drop_identical_ids("q1", &mut ranked);
        assert_eq!(ranked, ["d1", "d2"]);
    }

    /// The real SciFact copy, when this checkout has it next door.
    #[test]
    fn scifact_when_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/scifact");
        if !dir.exists() {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {} not found", dir.display());
            return;
        }
        let data = load(&dir, "test").unwrap();
        assert_eq!((data.docs.len(), data.queries.len()), (5183, 300));
        assert_eq!(data.qrels.values().map(HashMap::len).sum::<usize>(), 339);
    }
}
