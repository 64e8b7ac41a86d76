//! The aggregate spilled to disk (`--memory-limit`): when the clients counted outgrow
//! the limit, an aggregate writes its clients, sorted by key, as one *run* into a
//! temporary folder and starts afresh ([`crate::engine::aggregate::Budget`]); at the
//! end the runs and what is still in memory are merged client by client
//! ([`merged`]), so that billing sees each client once, in key order, with all its
//! buckets, as it would without a limit.
//!
//! The folder is a hidden `.scrapemeter-spill-*` inside the `--out` folder: on the
//! disk the reports go to (`/tmp` is often a `tmpfs`, that is memory), held by this
//! run's lock on that folder, and removed when the run ends (a folder a killed run
//! left behind is removed by the next run that takes the lock: [`remove_stale`]).
//!
//! A run file is a sequence of records, one per client in key order: the key's length
//! (u32, little-endian), the key, the series' length (u64, little-endian) and the
//! series as [`Series::encode`] wrote it (which [`Series::decode`] checks in full).

use crate::engine::aggregate::{Bucket, Series, Spill};
use crate::engine::text::{display_key, human_size};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A client's key and series, as runs hold them.
type Client = (Box<[u8]>, Series);

/// The name every spill folder starts with.
const PREFIX: &str = ".scrapemeter-spill-";
/// Runs merged at once; more are merged into fewer first (each open run holds a
/// file and a read buffer).
const MAX_OPEN: usize = 64;
/// Read and write buffers of a run file.
const BUFFER: usize = 256 * 1024;

/// Where a scan's aggregates spill: a temporary folder, created on the first spill.
pub struct SpillDir {
    /// The folder the temporary folder is made in.
    parent: PathBuf,
    dir: Mutex<Option<tempfile::TempDir>>,
    runs: Mutex<Vec<PathBuf>>,
    next: AtomicUsize,
    /// Set when spilling is not possible (nightly state): why, for the message that
    /// stops the run instead.
    refuse: Option<String>,
}

impl SpillDir {
    /// Spills into a temporary folder inside `parent` (made when first needed).
    pub fn new(parent: &Path) -> SpillDir {
        SpillDir {
            parent: parent.to_path_buf(),
            dir: Mutex::new(None),
            runs: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            refuse: None,
        }
    }

    /// Spills nothing: the first spill fails with `why`.
    pub fn refusing(why: String) -> SpillDir {
        SpillDir {
            refuse: Some(why),
            ..SpillDir::new(Path::new(""))
        }
    }

    /// Removes the folder and every run in it.
    pub fn remove(&self) {
        if let Ok(mut dir) = self.dir.lock() {
            if let Some(d) = dir.take() {
                let _ = d.close();
            }
        }
        if let Ok(mut runs) = self.runs.lock() {
            runs.clear();
        }
    }

    /// The runs written so far, in the order written.
    pub fn runs(&self) -> Vec<PathBuf> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// A new run file's path (the folder made if it is not yet).
    fn next_path(&self) -> Result<PathBuf, String> {
        let mut dir = self
            .dir
            .lock()
            .map_err(|_| "a spill failed on another thread".to_string())?;
        if dir.is_none() {
            let made = tempfile::Builder::new()
                .prefix(PREFIX)
                .tempdir_in(&self.parent)
                .map_err(|e| {
                    format!(
                        "cannot make a spill folder in {}: {e}",
                        self.parent.display()
                    )
                })?;
            *dir = Some(made);
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        Ok(dir
            .as_ref()
            .expect("made above")
            .path()
            .join(format!("run-{n:06}")))
    }

    /// Writes clients (in key order) as a new run file; returns its path.
    fn write_run(
        &self,
        clients: &mut dyn Iterator<Item = (&[u8], &mut Series)>,
    ) -> Result<PathBuf, String> {
        let mut run = RunWriter::create(self.next_path()?)?;
        for (key, series) in clients {
            run.push(key, series)?;
        }
        run.finish()
    }
}

/// A run file being written.
struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
    record: Vec<u8>,
}

impl RunWriter {
    fn create(path: PathBuf) -> Result<RunWriter, String> {
        let file =
            File::create(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(RunWriter {
            path,
            out: BufWriter::with_capacity(BUFFER, file),
            record: Vec::new(),
        })
    }

    fn push(&mut self, key: &[u8], series: &mut Series) -> Result<(), String> {
        self.record.clear();
        series.encode(&mut self.record);
        let out = &mut self.out;
        out.write_all(&(key.len() as u32).to_le_bytes())
            .and_then(|()| out.write_all(key))
            .and_then(|()| out.write_all(&(self.record.len() as u64).to_le_bytes()))
            .and_then(|()| out.write_all(&self.record))
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// Flushes the run to disk (a full disk shows here at the latest).
    fn finish(self) -> Result<PathBuf, String> {
        let path = self.path.clone();
        let file = self
            .out
            .into_inner()
            .map_err(|e| format!("cannot write {}: {}", path.display(), e.into_error()))?;
        file.sync_data()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Spill for SpillDir {
    fn write(&self, clients: &mut dyn Iterator<Item = (&[u8], &mut Series)>) -> Result<(), String> {
        if let Some(why) = &self.refuse {
            return Err(why.clone());
        }
        let path = self.write_run(clients)?;
        self.runs
            .lock()
            .map_err(|_| "a spill failed on another thread".to_string())?
            .push(path);
        Ok(())
    }
}

/// Removes spill folders that a run killed before it could clean up left in `dir`
/// (call only while holding `dir`'s lock, so that none is another run's).
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(PREFIX)
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// One run file, read a client at a time.
struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl RunReader {
    fn open(path: &Path) -> Result<RunReader, String> {
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(RunReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(BUFFER, file),
        })
    }

    /// The next client, `None` at the end.
    fn next_client(&mut self) -> Result<Option<Client>, String> {
        let damaged =
            |what: &str| format!("spilled run {} is damaged: {what}", self.path.display());
        let at_end = self
            .input
            .fill_buf()
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?
            .is_empty();
        if at_end {
            return Ok(None);
        }
        let mut len4 = [0u8; 4];
        self.input
            .read_exact(&mut len4)
            .map_err(|_| damaged("cut in a key's length"))?;
        let mut key = vec![0u8; u32::from_le_bytes(len4) as usize];
        self.input
            .read_exact(&mut key)
            .map_err(|_| damaged("cut in a key"))?;
        let mut len8 = [0u8; 8];
        self.input
            .read_exact(&mut len8)
            .map_err(|_| damaged("cut in a series' length"))?;
        let n = usize::try_from(u64::from_le_bytes(len8)).map_err(|_| damaged("a length"))?;
        let mut record = Vec::new();
        (&mut self.input)
            .take(n as u64)
            .read_to_end(&mut record)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        if record.len() != n {
            return Err(damaged("cut in a series"));
        }
        let series =
            Series::decode(&record).ok_or_else(|| damaged("a series that does not decode"))?;
        Ok(Some((key.into(), series)))
    }
}

/// Where merged clients come from: a run file, or the clients still in memory.
enum Source<'a> {
    Run(RunReader),
    Memory(Box<dyn Iterator<Item = (Box<[u8]>, Series)> + 'a>),
}

impl Source<'_> {
    fn next_client(&mut self) -> Result<Option<Client>, String> {
        match self {
            Source::Run(r) => r.next_client(),
            Source::Memory(m) => Ok(m.next()),
        }
    }
}

/// Clients of several sources (each in key order) as one stream in key order, the
/// series of one key merged.
pub struct Merged<'a> {
    sources: Vec<Source<'a>>,
    /// Each source's next client: its key (the heap's order) and its series.
    heap: BinaryHeap<Reverse<(Box<[u8]>, usize)>>,
    heads: Vec<Option<Series>>,
    /// Billing decodes one client's buckets at a time: a client whose buckets alone
    /// would take more than this stops the merge.
    limit: usize,
    failed: bool,
}

impl Merged<'_> {
    fn advance(&mut self, i: usize) -> Result<(), String> {
        if let Some((key, series)) = self.sources[i].next_client()? {
            self.heads[i] = Some(series);
            self.heap.push(Reverse((key, i)));
        }
        Ok(())
    }

    fn next_client(&mut self) -> Result<Option<Client>, String> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let mut series = self.heads[i].take().unwrap_or_default();
        self.advance(i)?;
        while self.heap.peek().is_some_and(|Reverse((k, _))| *k == key) {
            let Some(Reverse((_, j))) = self.heap.pop() else {
                break;
            };
            series.merge(self.heads[j].take().unwrap_or_default());
            self.advance(j)?;
        }
        let bytes = series.len().saturating_mul(std::mem::size_of::<Bucket>());
        if bytes > self.limit {
            return Err(format!(
                "client {} alone has {} distinct instants ({} once decoded for billing), more than --memory-limit ({}) allows: raise it",
                display_key(&key),
                series.len(),
                human_size(bytes as u64),
                human_size(self.limit as u64)
            ));
        }
        Ok(Some((key, series)))
    }
}

impl Iterator for Merged<'_> {
    type Item = Result<Client, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_client();
        self.failed = next.is_err();
        next.transpose()
    }
}

fn merge_of<'a>(sources: Vec<Source<'a>>, limit: usize) -> Result<Merged<'a>, String> {
    let mut m = Merged {
        heads: (0..sources.len()).map(|_| None).collect(),
        sources,
        heap: BinaryHeap::new(),
        limit,
        failed: false,
    };
    for i in 0..m.sources.len() {
        m.advance(i)?;
    }
    Ok(m)
}

/// Every client of `spill`'s runs and of `memory` (the clients still in memory, in key
/// order), merged, in key order; a client whose buckets alone would take more than
/// `limit` bytes once decoded is an error. More than [`MAX_OPEN`] runs are first
/// merged into fewer.
pub fn merged<'a>(
    spill: &SpillDir,
    memory: impl Iterator<Item = (Box<[u8]>, Series)> + 'a,
    limit: usize,
) -> Result<Merged<'a>, String> {
    let mut runs = spill.runs();
    while runs.len() > MAX_OPEN {
        let group: Vec<PathBuf> = runs.drain(..MAX_OPEN).collect();
        let sources = group
            .iter()
            .map(|p| RunReader::open(p).map(Source::Run))
            .collect::<Result<Vec<_>, _>>()?;
        let mut run = RunWriter::create(spill.next_path()?)?;
        for client in merge_of(sources, usize::MAX)? {
            let (key, mut series) = client?;
            run.push(&key, &mut series)?;
        }
        runs.push(run.finish()?);
        for p in group {
            let _ = std::fs::remove_file(p);
        }
    }
    let mut sources: Vec<Source<'a>> = runs
        .iter()
        .map(|p| RunReader::open(p).map(Source::Run))
        .collect::<Result<_, _>>()?;
    sources.push(Source::Memory(Box::new(memory)));
    merge_of(sources, limit)
}
