//! Parquet partials: `map` writes a scan's aggregate out, `reduce` reads any number of
//! them back and writes the same reports as `scan` would have over all their inputs.
//!
//! The aggregate is mergeable (summed per client and instant, split-independent), so a
//! scan over many machines is: one `map` per shard of the logs, then one `reduce` (or
//! one `reduce` per bucket of clients, then `reduce --merge`). The files are a stable
//! interface, described in `docs/beyond-one-machine.md`:
//!
//! - `DIR/bucket=NNN/part-<shard>.parquet`, bucket = [`bucket_of`] the client string;
//! - columns `client` (Utf8, dictionary-encoded, the key as written: non-UTF-8 bytes as
//!   `\xhh`), `client_raw` (Binary, null unless the key is not UTF-8: then its exact
//!   bytes, since `\xhh` is ambiguous), `t` (Int64, UTC epoch µs), `posts` and
//!   `requests` (Int64); sorted by (client, client_raw, t), one row per (client, t);
//! - key-value metadata under `scrapemeter.*` ([`META_*`](META_SETTINGS)): version,
//!   settings (canonical JSON) and its SHA-256 digest, shard id, input manifest.

use crate::engine::aggregate::{Aggregate, Bucket, Series};
use crate::engine::time::parse_rfc3339;
use crate::input::client::{ClientKind, Keyer};
use crate::input::decompress::Compression;
use crate::input::discover::Skipped;
use crate::input::format::{FieldSet, FormatChoice};
use crate::input::orgs::Orgs;
use crate::input::post_weight::Weigher;
use crate::input::reader::{FileReport, FileStatus, MalformedLine};
use crate::input::rules::RuleSet;
use crate::input::spec::ReadSpec;
use arrow_array::builder::{BinaryBuilder, Int64Builder, StringDictionaryBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayAccessor, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why partials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PartialsError {
    /// Partials (or settings for them) that cannot be read or reduced together: the
    /// message names the file and the reason (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// Partials that cannot be written (exit 3).
    #[error("{0}")]
    Write(String),
}

impl PartialsError {
    /// Whether this is a failure to write (exit 3) rather than bad partials (exit 2).
    pub fn is_output(&self) -> bool {
        matches!(self, PartialsError::Write(_))
    }
}

pub use crate::store::fingerprint::{OrgEntry, ReadSettings, PARTIALS_VERSION};
pub const META_VERSION: &str = "scrapemeter.version";
pub const META_PARTIALS: &str = "scrapemeter.partials";
/// Canonical JSON of [`ReadSettings`]: everything that changes the rows.
pub const META_SETTINGS: &str = "scrapemeter.settings";
/// SHA-256 (hex) of the bytes of [`META_SETTINGS`].
pub const META_DIGEST: &str = "scrapemeter.settings_sha256";
/// JSON of [`SettingsInfo`]: file names and the rules text (not digested).
pub const META_INFO: &str = "scrapemeter.settings_info";
pub const META_SHARD: &str = "scrapemeter.shard";
/// Unique per `map` run: two runs may not read the same input.
pub const META_RUN: &str = "scrapemeter.run";
/// JSON array: the shard's input manifest (one object per file, as in report.json).
pub const META_INPUTS: &str = "scrapemeter.inputs";
/// JSON array: inputs the shard skipped (duplicates), as in report.json.
pub const META_SKIPPED: &str = "scrapemeter.skipped";
pub const META_BUCKET: &str = "scrapemeter.bucket";
pub const META_BUCKETS: &str = "scrapemeter.buckets";
/// The number of rows the file holds, as `map` wrote them.
pub const META_ROWS: &str = "scrapemeter.rows";
/// SHA-256 (hex) of the rows as `map` wrote them ([`RowsDigest`]): `reduce` recomputes
/// it from what it decodes, so a damaged page that still decodes is refused.
pub const META_ROWS_SHA256: &str = "scrapemeter.rows_sha256";

/// The digest of a partial's rows, in file order: per row, the `client` string's
/// length (u64 little-endian) and bytes; `client_raw` as a byte 0 (null) or 1, then
/// its length and bytes; `t`, `posts`, `requests` as i64 little-endian.
#[derive(Default)]
pub struct RowsDigest {
    sha: Sha256,
    rows: u64,
}

impl RowsDigest {
    pub fn row(&mut self, client: &str, raw: Option<&[u8]>, t: i64, posts: i64, requests: i64) {
        self.sha.update((client.len() as u64).to_le_bytes());
        self.sha.update(client.as_bytes());
        match raw {
            None => self.sha.update([0u8]),
            Some(r) => {
                self.sha.update([1u8]);
                self.sha.update((r.len() as u64).to_le_bytes());
                self.sha.update(r);
            }
        }
        self.sha.update(t.to_le_bytes());
        self.sha.update(posts.to_le_bytes());
        self.sha.update(requests.to_le_bytes());
        self.rows += 1;
    }

    /// (rows, hex SHA-256).
    pub fn finish(self) -> (u64, String) {
        (self.rows, hex::encode(self.sha.finalize()))
    }
}

/// What a reduce read, beside its reports: the settings digest and the map runs, so that
/// `reduce --merge` can check its parts as `reduce` checks partials.
pub const SIDECAR: &str = "partials.json";

/// Buckets `map` spreads clients over unless told otherwise.
pub const DEFAULT_BUCKETS: u32 = 256;

/// The bucket of a client: the first 8 bytes of SHA-256 of the `client` column's UTF-8
/// bytes, read as a big-endian u64, modulo `buckets`. Stable across versions and easy
/// to compute anywhere (`int.from_bytes(hashlib.sha256(c.encode()).digest()[:8], "big") % n`).
pub fn bucket_of(client: &str, buckets: u32) -> u32 {
    let d = Sha256::digest(client.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(first) % u64::from(buckets.max(1))) as u32
}

/// The folder name of bucket `b` of `buckets`: `bucket=007` (at least three digits).
pub fn bucket_dir(b: u32, buckets: u32) -> String {
    let width = buckets.saturating_sub(1).to_string().len().max(3);
    format!("bucket={b:0width$}")
}

/// How `map` judged its inputs (`--strict`, `--strict-lines`, `--max-malformed`,
/// `--allow-missing`, `--exclude`): no row depends on it, so it is outside the digest;
/// kept so that a reduce's report.json says how the bad inputs it names were judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub strict: bool,
    pub strict_lines: bool,
    pub max_malformed: f64,
    pub allow_missing: bool,
    pub exclude: Vec<String>,
}

/// What a reduce needs to describe the settings in report.json, outside the digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsInfo {
    pub rules_path: Option<String>,
    /// The rules file itself (small; its digest is in the settings), so that a reduce
    /// can name the rules in report.json.
    pub rules_text: Option<String>,
    pub orgs_path: Option<String>,
    pub orgs_rows: Option<usize>,
    #[serde(default)]
    pub orgs_size: Option<u64>,
    /// Absent in partials written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<Judged>,
}

/// The reading settings partials were made with, rebuilt from their metadata: enough
/// to name, group and exempt clients and to describe the rules in the reports (a reduce
/// reads no log line).
pub fn read_spec(settings: &ReadSettings, info: &SettingsInfo) -> Result<ReadSpec, PartialsError> {
    let invalid = |e: &dyn std::fmt::Display| PartialsError::Invalid(e.to_string());
    let client = ClientKind::parse(
        &settings.client,
        settings.subnet_ipv4_prefix.unwrap_or(24),
        settings.subnet_ipv6_prefix.unwrap_or(64),
    )
    .map_err(|e| invalid(&e))?;
    let mut fields = FieldSet::default();
    let mut keyer = Keyer::new(client.clone(), &mut fields);
    if let Some(sha) = &settings.orgs_sha256 {
        let mut orgs = Orgs::from_names(
            settings.orgs.iter().map(|o| o.name.clone()).collect(),
            settings.orgs.iter().map(|o| o.exempt).collect(),
        );
        orgs.sha256 = sha.clone();
        orgs.path = info.orgs_path.clone().unwrap_or_default();
        orgs.rows = info.orgs_rows.unwrap_or(0);
        orgs.size = info.orgs_size.unwrap_or(0);
        keyer.orgs = Some(Arc::new(orgs));
    }
    let weigher = match &settings.rules_sha256 {
        None => Weigher::Default,
        Some(sha) => {
            let path = info.rules_path.clone().unwrap_or_default();
            let text = match &info.rules_text {
                Some(text) if hex::encode(Sha256::digest(text.as_bytes())) == *sha => text,
                _ => "",
            };
            let mut rules = RuleSet::parse(text, &path, &mut fields).map_err(|e| invalid(&e))?;
            rules.sha256 = sha.clone();
            rules.path = path;
            Weigher::Rules(Arc::new(rules))
        }
    };
    Ok(ReadSpec {
        format: settings
            .format
            .parse::<FormatChoice>()
            .map_err(|e| invalid(&e))?,
        json: settings.json.clone(),
        client,
        fields,
        keyer,
        weigher,
        since: settings.since,
        until: settings.until,
        late_before: None,
        also_by: Vec::new(),
        memory: None,
    })
}

impl SettingsInfo {
    /// The paths and the rules text behind `spec`'s settings. Reads the rules file
    /// again, and refuses it if it changed since it was compiled.
    pub fn of(spec: &ReadSpec) -> Result<SettingsInfo, PartialsError> {
        Self::read(spec).map_err(PartialsError::Invalid)
    }

    fn read(spec: &ReadSpec) -> Result<SettingsInfo, String> {
        let mut info = SettingsInfo::default();
        if let Weigher::Rules(r) = &spec.weigher {
            let bytes = std::fs::read(&r.path)
                .map_err(|e| format!("cannot read rules file {}: {e}", r.path))?;
            if hex::encode(Sha256::digest(&bytes)) != r.sha256 {
                return Err(format!("rules file {} changed while it was read", r.path));
            }
            info.rules_path = Some(r.path.clone());
            info.rules_text = Some(
                String::from_utf8(bytes)
                    .map_err(|_| format!("rules file {} is not UTF-8", r.path))?,
            );
        }
        if let Some(o) = spec.keyer.orgs.as_deref() {
            info.orgs_path = Some(o.path.clone());
            info.orgs_rows = Some(o.rows);
            info.orgs_size = Some(o.size);
        }
        Ok(info)
    }
}

/// One client's rows, ready to write.
struct ClientRows {
    client: String,
    raw: Option<Box<[u8]>>,
    buckets: Vec<Bucket>,
}

pub struct Written {
    pub clients: usize,
    pub rows: usize,
    pub files: usize,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(
            "client",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("client_raw", DataType::Binary, true),
        Field::new("t", DataType::Int64, false),
        Field::new("posts", DataType::Int64, false),
        Field::new("requests", DataType::Int64, false),
    ]))
}

fn to_i64(n: u64, what: &str) -> Result<i64, String> {
    i64::try_from(n).map_err(|_| format!("{what} {n} does not fit an Int64 column"))
}

/// Rows of at most this many go into one record batch.
const BATCH_ROWS: usize = 1 << 16;

/// Writes `aggregate` as the partials of shard `shard` into `out_dir`, one file per
/// bucket of clients, with `files` and `skipped` as the input manifest.
#[allow(clippy::too_many_arguments)]
pub fn write_partials(
    out_dir: &Path,
    settings: &ReadSettings,
    info: &SettingsInfo,
    shard: &str,
    buckets: u32,
    files: &[FileReport],
    skipped: &[Skipped],
    aggregate: Aggregate,
) -> Result<Written, PartialsError> {
    write_partials_inner(
        out_dir, settings, info, shard, buckets, files, skipped, aggregate,
    )
    .map_err(PartialsError::Write)
}

#[allow(clippy::too_many_arguments)]
fn write_partials_inner(
    out_dir: &Path,
    settings: &ReadSettings,
    info: &SettingsInfo,
    shard: &str,
    buckets: u32,
    files: &[FileReport],
    skipped: &[Skipped],
    aggregate: Aggregate,
) -> Result<Written, String> {
    let (settings_text, digest) = settings.canonical();
    let inputs = serde_json::to_string(files).map_err(|e| e.to_string())?;
    let skipped = serde_json::to_string(skipped).map_err(|e| e.to_string())?;
    let info = serde_json::to_string(info).map_err(|e| e.to_string())?;
    let run = {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!("{shard}\n{nanos}\n{}\n{digest}", std::process::id());
        hex::encode(Sha256::digest(seed.as_bytes()))[..16].to_string()
    };
    let mut by_bucket: BTreeMap<u32, Vec<ClientRows>> = BTreeMap::new();
    let mut clients = 0;
    let mut rows = 0;
    for (key, series) in aggregate.into_sorted() {
        let (client, raw) = crate::store::key::encode(&key);
        let raw: Option<Box<[u8]>> = raw.map(Into::into);
        clients += 1;
        rows += series.len();
        by_bucket
            .entry(bucket_of(&client, buckets))
            .or_default()
            .push(ClientRows {
                client,
                raw,
                buckets: series,
            });
    }
    // A shard without a single row still leaves its manifest behind.
    if by_bucket.is_empty() {
        by_bucket.insert(0, Vec::new());
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let files = by_bucket.len();
    for (b, mut list) in by_bucket {
        list.sort_by(|x, y| x.client.cmp(&y.client).then_with(|| x.raw.cmp(&y.raw)));
        let dir = out_dir.join(bucket_dir(b, buckets));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta = vec![
            KeyValue::new(META_VERSION.into(), env!("CARGO_PKG_VERSION").to_string()),
            KeyValue::new(META_PARTIALS.into(), PARTIALS_VERSION.to_string()),
            KeyValue::new(META_SETTINGS.into(), settings_text.clone()),
            KeyValue::new(META_DIGEST.into(), digest.clone()),
            KeyValue::new(META_INFO.into(), info.clone()),
            KeyValue::new(META_SHARD.into(), shard.to_string()),
            KeyValue::new(META_RUN.into(), run.clone()),
            KeyValue::new(META_INPUTS.into(), inputs.clone()),
            KeyValue::new(META_SKIPPED.into(), skipped.clone()),
            KeyValue::new(META_BUCKET.into(), b.to_string()),
            KeyValue::new(META_BUCKETS.into(), buckets.to_string()),
        ];
        let mut meta = meta;
        let mut digest = RowsDigest::default();
        for c in &list {
            for b in &c.buckets {
                digest.row(
                    &c.client,
                    c.raw.as_deref(),
                    b.t,
                    to_i64(b.posts, "posts")?,
                    to_i64(b.requests, "requests")?,
                );
            }
        }
        let (n, sha) = digest.finish();
        meta.push(KeyValue::new(META_ROWS.into(), n.to_string()));
        meta.push(KeyValue::new(META_ROWS_SHA256.into(), sha));
        let target = dir.join(format!("part-{shard}.parquet"));
        write_file(&dir, &target, &list, meta)?;
    }
    Ok(Written {
        clients,
        rows,
        files,
    })
}

/// Writes one partial file: a temporary file beside the target, synced, renamed.
fn write_file(
    dir: &Path,
    target: &Path,
    list: &[ClientRows],
    meta: Vec<KeyValue>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", target.display());
    let props = WriterProperties::builder()
        .set_compression(ParquetCompression::ZSTD(
            ZstdLevel::try_new(3).map_err(|e| err(&e))?,
        ))
        .set_key_value_metadata(Some(meta))
        .build();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".part-").suffix(".tmp");
    // An ordinary file once renamed (the umask decides), like the reports: other users
    // (an rsync, a Spark executor) may need to read it.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder.tempfile_in(dir).map_err(|e| err(&e))?;
    let schema = schema();
    let mut writer = ArrowWriter::try_new(
        tmp.as_file().try_clone().map_err(|e| err(&e))?,
        schema.clone(),
        Some(props),
    )
    .map_err(|e| err(&e))?;
    let mut client = StringDictionaryBuilder::<Int32Type>::new();
    let mut raw = BinaryBuilder::new();
    let (mut t, mut posts, mut requests) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let mut n = 0;
    let mut flush = |client: &mut StringDictionaryBuilder<Int32Type>,
                     raw: &mut BinaryBuilder,
                     t: &mut Int64Builder,
                     posts: &mut Int64Builder,
                     requests: &mut Int64Builder|
     -> Result<(), String> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(client.finish()),
            Arc::new(raw.finish()),
            Arc::new(t.finish()),
            Arc::new(posts.finish()),
            Arc::new(requests.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
        writer.write(&batch).map_err(|e| err(&e))
    };
    for c in list {
        for b in &c.buckets {
            client.append_value(&c.client);
            match &c.raw {
                Some(r) => raw.append_value(r),
                None => raw.append_null(),
            }
            t.append_value(b.t);
            posts.append_value(to_i64(b.posts, "posts")?);
            requests.append_value(to_i64(b.requests, "requests")?);
            n += 1;
            if n == BATCH_ROWS {
                flush(&mut client, &mut raw, &mut t, &mut posts, &mut requests)?;
                n = 0;
            }
        }
    }
    if n > 0 || list.is_empty() {
        flush(&mut client, &mut raw, &mut t, &mut posts, &mut requests)?;
    }
    writer.close().map_err(|e| err(&e))?;
    tmp.as_file().sync_all().map_err(|e| err(&e))?;
    tmp.persist(target).map_err(|e| err(&e.error))?;
    Ok(())
}

/// The metadata of one partial file.
#[derive(Debug, Clone)]
pub struct PartialMeta {
    pub path: PathBuf,
    pub settings: String,
    pub digest: String,
    pub info: String,
    pub shard: String,
    pub run: String,
    pub bucket: String,
    /// How many buckets the map run split clients into (`--buckets`).
    pub buckets: String,
    pub inputs: String,
    pub skipped: String,
    pub rows: i64,
}

/// Partial files under `paths`, sorted.
pub fn partial_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PartialsError> {
    partial_files_inner(paths).map_err(PartialsError::Invalid)
}

fn partial_files_inner(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in walkdir::WalkDir::new(p).follow_links(true) {
                let entry = entry.map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                let name = entry.file_name().to_string_lossy();
                if entry.file_type().is_file()
                    && name.ends_with(".parquet")
                    && !name.starts_with('.')
                    && !entry.path().strip_prefix(p).ok().is_some_and(|r| {
                        r.components()
                            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
                    })
                {
                    files.push(entry.into_path());
                }
            }
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    // One file named twice (a folder and a file in it, two spellings) is read once.
    let mut named = files
        .into_iter()
        .map(|f| match std::fs::canonicalize(&f) {
            Ok(c) => Ok((c, f)),
            Err(e) => Err(format!("{}: {e}", f.display())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    named.sort();
    named.dedup_by(|a, b| a.0 == b.0);
    let files: Vec<PathBuf> = named.into_iter().map(|(_, f)| f).collect();
    if files.is_empty() {
        return Err("no partial files (.parquet) found".into());
    }
    Ok(files)
}

fn read_meta(path: &Path) -> Result<PartialMeta, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("{}: not a Parquet file: {e}", path.display()))?;
    let md = builder.metadata().file_metadata();
    let kv: HashMap<&str, &str> = md
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter_map(|k| k.value.as_deref().map(|v| (k.key.as_str(), v)))
                .collect()
        })
        .unwrap_or_default();
    let get = |k: &str| {
        kv.get(k).map(|v| v.to_string()).ok_or_else(|| {
            format!(
                "{}: not a scrapemeter partial (no {k} in its metadata)",
                path.display()
            )
        })
    };
    let version = get(META_PARTIALS)?;
    if version != PARTIALS_VERSION {
        return Err(format!(
            "{}: partials version {version}; this scrapemeter reads version {PARTIALS_VERSION}",
            path.display()
        ));
    }
    let settings = get(META_SETTINGS)?;
    let digest = get(META_DIGEST)?;
    if hex::encode(Sha256::digest(settings.as_bytes())) != digest {
        return Err(format!(
            "{}: the settings digest does not match the settings in its metadata",
            path.display()
        ));
    }
    Ok(PartialMeta {
        path: path.to_path_buf(),
        settings,
        digest,
        info: kv.get(META_INFO).unwrap_or(&"{}").to_string(),
        shard: get(META_SHARD)?,
        run: get(META_RUN)?,
        bucket: get(META_BUCKET)?,
        buckets: kv.get(META_BUCKETS).unwrap_or(&"?").to_string(),
        inputs: kv.get(META_INPUTS).unwrap_or(&"[]").to_string(),
        skipped: kv.get(META_SKIPPED).unwrap_or(&"[]").to_string(),
        rows: md.num_rows(),
    })
}

/// What the metadata of a set of partials says, once checked.
pub struct Checked {
    pub metas: Vec<PartialMeta>,
    pub settings: ReadSettings,
    pub info: SettingsInfo,
    /// How the inputs were judged, when every partial says and they all say the same.
    pub judged: Option<Judged>,
    pub files: Vec<FileReport>,
    pub manifest: Vec<Value>,
    pub skipped: Vec<Skipped>,
    /// One entry per map run: its shard id and the SHA-256s of its non-empty inputs.
    pub runs: Vec<MapRun>,
}

/// One `map` run, as a reduce saw it; `reduce --merge` checks these across parts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MapRun {
    /// Unique per `map` run (a shard mapped twice is two runs).
    pub run: String,
    pub shard: String,
    /// (path, SHA-256) of each input that holds at least one line.
    pub inputs: Vec<(String, String)>,
}

/// Refuses an input (by SHA-256) read by two different runs; `label` names a run's source.
pub fn no_input_twice<'a>(
    runs: impl Iterator<Item = (&'a MapRun, String)>,
) -> Result<(), PartialsError> {
    no_input_twice_inner(runs).map_err(PartialsError::Invalid)
}

fn no_input_twice_inner<'a>(
    runs: impl Iterator<Item = (&'a MapRun, String)>,
) -> Result<(), String> {
    let mut seen: HashMap<&str, (&MapRun, &str, String)> = HashMap::new();
    for (run, label) in runs {
        for (path, sha) in &run.inputs {
            if let Some((prev, prev_path, prev_label)) = seen.get(sha.as_str()) {
                if prev.run != run.run {
                    return Err(format!(
                        "the same input is in two partials: {prev_path} (shard {}, {prev_label}) and {path} (shard {}, {label}) have SHA-256 {sha}",
                        prev.shard, run.shard
                    ));
                }
            }
            seen.insert(sha, (run, path, label.clone()));
        }
    }
    Ok(())
}

/// Reads every partial's metadata and checks it: one settings digest, and no input
/// (by SHA-256) in two different shards.
pub fn check(files: &[PathBuf]) -> Result<Checked, PartialsError> {
    check_inner(files).map_err(PartialsError::Invalid)
}

fn check_inner(files: &[PathBuf]) -> Result<Checked, String> {
    let metas = files
        .iter()
        .map(|f| read_meta(f))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &metas[0];
    if let Some(other) = metas.iter().find(|m| m.digest != first.digest) {
        return Err(format!(
            "partials made with different settings: {} has settings digest {} but {} has {}",
            first.path.display(),
            first.digest,
            other.path.display(),
            other.digest
        ));
    }
    let settings: ReadSettings = serde_json::from_str(&first.settings)
        .map_err(|e| format!("{}: unreadable settings: {e}", first.path.display()))?;
    let info: SettingsInfo = serde_json::from_str(&first.info).unwrap_or_default();
    let judged_by = |m: &PartialMeta| {
        serde_json::from_str::<SettingsInfo>(&m.info)
            .ok()
            .and_then(|i| i.judged)
    };
    let judged =
        judged_by(first).filter(|j| metas.iter().all(|m| judged_by(m).as_ref() == Some(j)));
    // One manifest per map run (shard id + manifest), however many buckets it wrote.
    // A file of one run and bucket, twice (a copy of the folder, say), would count its
    // rows twice.
    let mut parts: HashMap<(&str, &str), &PartialMeta> = HashMap::new();
    for m in &metas {
        if let Some(prev) = parts.insert((&m.run, &m.bucket), m) {
            return Err(format!(
                "{} and {} are the same partial (shard {}, map run {}, bucket {}): it would be counted twice",
                prev.path.display(),
                m.path.display(),
                m.shard,
                m.run,
                m.bucket
            ));
        }
    }
    let mut runs: BTreeMap<&str, &PartialMeta> = BTreeMap::new();
    for m in &metas {
        match runs.get(m.run.as_str()) {
            Some(prev) if prev.inputs != m.inputs => {
                return Err(format!(
                    "{} and {} claim the same map run {} but list different inputs",
                    prev.path.display(),
                    m.path.display(),
                    m.run
                ))
            }
            Some(_) => {}
            None => {
                runs.insert(&m.run, m);
            }
        }
    }
    let mut manifest = Vec::new();
    let mut skipped = Vec::new();
    let mut run_list: Vec<(MapRun, String)> = Vec::new();
    for m in runs.values() {
        let inputs: Vec<Value> = serde_json::from_str(&m.inputs)
            .map_err(|e| format!("{}: unreadable input manifest: {e}", m.path.display()))?;
        let run = MapRun {
            run: m.run.clone(),
            shard: m.shard.clone(),
            inputs: inputs
                .iter()
                .filter(|f| {
                    // An empty input adds nothing: the same empty file in two shards is harmless.
                    f["size"].as_u64() != Some(0) && f["lines"].as_u64() != Some(0)
                })
                .filter_map(|f| {
                    Some((
                        f["path"].as_str().unwrap_or("?").to_string(),
                        f["sha256"].as_str()?.to_string(),
                    ))
                })
                .collect(),
        };
        run_list.push((run, m.path.display().to_string()));
        manifest.extend(inputs);
        let s: Vec<Value> = serde_json::from_str(&m.skipped).unwrap_or_default();
        skipped.extend(s.iter().map(|s| Skipped {
            path: s["path"].as_str().unwrap_or_default().to_string(),
            reason: s["reason"].as_str().unwrap_or_default().to_string(),
            same_as: s["same_as"].as_str().map(str::to_string),
        }));
    }
    no_input_twice_inner(run_list.iter().map(|(r, l)| (r, l.clone())))?;
    let mut files: Vec<FileReport> = manifest.iter().map(file_report).collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Checked {
        metas,
        settings,
        info,
        judged,
        files,
        manifest,
        skipped,
        runs: run_list.into_iter().map(|(r, _)| r).collect(),
    })
}

/// A manifest entry (a [`FileReport`] as report.json writes it) read back.
fn file_report(v: &Value) -> FileReport {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let t = |k: &str| v[k].as_str().and_then(|s| parse_rfc3339(s.as_bytes()));
    FileReport {
        status: match v["status"].as_str() {
            Some("unreadable") => FileStatus::Unreadable,
            Some("unrecognised") => FileStatus::Unrecognised,
            _ => FileStatus::Read,
        },
        size: v["size"].as_u64(),
        sha256: s("sha256"),
        compression: serde_json::from_value::<Compression>(v["compression"].clone()).ok(),
        format: s("format"),
        lines: n("lines"),
        blank: n("blank"),
        comments: n("comments"),
        requests: n("requests"),
        posts: n("posts"),
        no_client: n("no_client"),
        malformed: n("malformed"),
        malformed_examples: v["malformed_examples"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| MalformedLine {
                        line: m["line"].as_u64().unwrap_or(0),
                        reason: m["reason"].as_str().unwrap_or_default().to_string(),
                        text: m["text"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        out_of_range: n("out_of_range"),
        complete: v["complete"].as_bool().unwrap_or(true),
        dropped_partial_line: v["dropped_partial_line"].as_bool().unwrap_or(false),
        error: s("error"),
        bad: s("bad"),
        looks_like: s("looks_like"),
        first_request: t("first_request"),
        last_request: t("last_request"),
        ..FileReport::new(v["path"].as_str().unwrap_or("?"))
    }
}

/// Strings of a `client` column, however the writer typed it.
enum Strings<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Dict(arrow_array::TypedDictionaryArray<'a, Int32Type, arrow_array::StringArray>),
}

impl<'a> Strings<'a> {
    fn of(a: &'a dyn Array) -> Option<Strings<'a>> {
        if let Some(s) = a.as_string_opt::<i32>() {
            return Some(Strings::Utf8(s));
        }
        if let Some(s) = a.as_string_opt::<i64>() {
            return Some(Strings::Large(s));
        }
        if let Some(s) = a.as_string_view_opt() {
            return Some(Strings::View(s));
        }
        a.as_dictionary_opt::<Int32Type>()
            .and_then(|d| d.downcast_dict::<arrow_array::StringArray>())
            .map(Strings::Dict)
    }
    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strings::Utf8(s) => (!s.is_null(i)).then(|| s.value(i)),
            Strings::Large(s) => (!s.is_null(i)).then(|| s.value(i)),
            Strings::View(s) => (!s.is_null(i)).then(|| s.value(i)),
            Strings::Dict(d) => (!d.is_null(i)).then(|| d.value(i)),
        }
    }
}

/// Bytes of a `client_raw` column (absent, or Binary, LargeBinary or BinaryView).
fn raw_at(a: Option<&dyn Array>, i: usize) -> Option<&[u8]> {
    let a = a?;
    if a.is_null(i) {
        return None;
    }
    if let Some(b) = a.as_binary_opt::<i32>() {
        return Some(b.value(i));
    }
    if let Some(b) = a.as_binary_opt::<i64>() {
        return Some(b.value(i));
    }
    a.as_binary_view_opt().map(|b| b.value(i))
}

/// Reads the rows of `path` into `agg`, summing equal (client, t).
pub fn read_rows(path: &Path, agg: &mut Aggregate) -> Result<u64, PartialsError> {
    read_rows_inner(path, agg).map_err(PartialsError::Invalid)
}

fn read_rows_inner(path: &Path, agg: &mut Aggregate) -> Result<u64, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| at(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| at(&e))?;
    let recorded = |k: &str| {
        builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == k))
            .and_then(|e| e.value.clone())
            .ok_or_else(|| {
                at(&format!(
                    "no {k} in its metadata (written by an older scrapemeter? map it again)"
                ))
            })
    };
    let (want_rows, want_sha) = (recorded(META_ROWS)?, recorded(META_ROWS_SHA256)?);
    let mut digest = RowsDigest::default();
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| at(&e))?;
    let mut rows = 0u64;
    let mut key: Vec<u8> = Vec::new();
    let mut run: Vec<Bucket> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| at(&e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| at(&format!("no column {name}")))
        };
        let clients = Strings::of(col("client")?.as_ref())
            .ok_or_else(|| at(&"column client is not a string column"))?;
        let raw = batch.column_by_name("client_raw").map(|a| a.as_ref());
        let int = |name: &str| -> Result<arrow_array::Int64Array, String> {
            col(name)?
                .as_primitive_opt::<Int64Type>()
                .cloned()
                .ok_or_else(|| at(&format!("column {name} is not Int64")))
        };
        let (t, posts, requests) = (int("t")?, int("posts")?, int("requests")?);
        for i in 0..batch.num_rows() {
            let text = clients.get(i).ok_or_else(|| at(&"a row has no client"))?;
            let raw_bytes = raw_at(raw, i);
            let k: &[u8] = crate::store::key::decode(text, raw_bytes);
            if t.is_null(i) || posts.is_null(i) || requests.is_null(i) {
                return Err(at(&"a row has a null t, posts or requests"));
            }
            let (p, r) = (posts.value(i), requests.value(i));
            digest.row(text, raw_bytes, t.value(i), p, r);
            if p < 0 || r < 0 {
                return Err(at(&"a row has negative posts or requests"));
            }
            // A request without a client is never billed: a partial cannot bring one in.
            if k.is_empty() || k == b"-" {
                return Err(at(&format!(
                    "row {} has the client {text:?}, which belongs to no client",
                    rows + 1
                )));
            }
            if !crate::engine::limits::printable(t.value(i)) {
                return Err(at(&format!(
                    "row {} (client {text}) has t = {}, outside the years 0000-9999",
                    rows + 1,
                    t.value(i)
                )));
            }
            if k != key.as_slice() {
                if !run.is_empty() {
                    agg.series_mut(&key)
                        .merge(Series::from_buckets(std::mem::take(&mut run)));
                }
                key.clear();
                key.extend_from_slice(k);
            }
            run.push(Bucket {
                t: t.value(i),
                posts: p as u64,
                requests: r as u64,
            });
            rows += 1;
        }
    }
    let (n, sha) = digest.finish();
    if n.to_string() != want_rows || sha != want_sha {
        return Err(at(&format!(
            "its rows do not match what map recorded ({n} rows with SHA-256 {sha}; map wrote {want_rows} rows with SHA-256 {want_sha}): the file is damaged or was edited"
        )));
    }
    if !run.is_empty() {
        agg.series_mut(&key).merge(Series::from_buckets(run));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_hash_is_stable() {
        // SHA-256("198.51.100.7") starts 0x…; pinned so the layout cannot drift.
        let b = bucket_of("198.51.100.7", 256);
        assert_eq!(b, bucket_of("198.51.100.7", 256));
        assert!(b < 256);
        assert_eq!(bucket_of("x", 1), 0);
        assert_eq!(bucket_dir(7, 256), "bucket=007");
        assert_eq!(bucket_dir(7, 5000), "bucket=0007");
    }
}
