//! A hash-chained ledger of nightly runs, beside the state, so that a state rolled
//! back, replaced or deleted is noticed rather than continued silently.
//!
//! Each run that writes the state appends one entry to `STATE_DIR/scrapemeter.ledger`
//! (JSON lines): its run number, the SHA-256 of the state it wrote, when it started,
//! and the hash of the previous entry; the entry's own `hash` covers all of these
//! (as git commits and certificate-transparency logs chain theirs). The run also
//! writes the chain head into its output folder (`ledger-head.json`, committed with the
//! reports). The next run into that folder refuses (exit 2, unless `--state-reset`):
//! - a ledger whose chain does not verify, or whose last entry is not the state there;
//! - a state whose run number is older than the head recorded in the output folder,
//!   or whose chain does not hold that head (a restored or replaced state);
//! - no ledger at all where the output folder records one (a deleted state).
//!
//! What it proves: an edit of the state or the ledger that is not re-chained is
//! detected, and so is any rollback to a state older than the reports in the folder.
//! What it does not: someone who rewrites the ledger, the state and `ledger-head.json`
//! together, or runs into a fresh output folder.
//!
//! With a key file (`--ledger-key`), each entry also carries an HMAC-SHA256 of its
//! hash under the key (`hmac`), verified by the next run given the key: an edit
//! re-chained without the key is refused (its tags do not match, or are missing where
//! the ledger or `ledger-head.json` shows the history was signed). Whoever holds the
//! key can still re-sign an edit.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const LEDGER: &str = "scrapemeter.ledger";
pub const HEAD: &str = "ledger-head.json";

/// A file to commit: folder, name, bytes.
pub type File = (PathBuf, &'static str, Vec<u8>);

/// One run, chained to the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub run: u64,
    /// The previous entry's hash; empty for the first entry.
    pub prev: String,
    pub state_sha256: String,
    pub started_at: String,
    pub hash: String,
    /// HMAC-SHA256 of `hash` under the ledger key (hex), when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<String>,
}

/// The chain head as the output folder records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub run: u64,
    pub head: String,
    /// The run signed its entry with a ledger key (absent, not `false`, when it did
    /// not: the file stays as it was before keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signed: bool,
}

/// The HMAC-SHA256 of an entry's hash under `key`, before it is finalised.
fn entry_mac(key: &[u8], hash: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"scrapemeter-ledger-hmac 1\n");
    mac.update(hash.as_bytes());
    mac
}

/// The HMAC-SHA256 of an entry's hash under `key`, in hex.
fn entry_hmac(key: &[u8], hash: &str) -> String {
    hex::encode(entry_mac(key, hash).finalize().into_bytes())
}

/// Whether `tag` (lowercase hex, as [`entry_hmac`] writes it) is the entry's HMAC
/// under `key`, compared in constant time: how long the check takes tells nothing of
/// how much of a forged tag was right.
fn tag_matches(key: &[u8], hash: &str, tag: &str) -> bool {
    let lowercase_hex = tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    lowercase_hex
        && hex::decode(tag).is_ok_and(|tag| entry_mac(key, hash).verify_slice(&tag).is_ok())
}

/// Checks the entries' tags under `key`: every tag must match, and once an entry is
/// signed every later one must be (entries from before the key was first given carry
/// none). Without a key, a signed ledger is refused: its next entry could not be.
fn verify_tags(entries: &[Entry], key: Option<&[u8]>) -> Result<(), String> {
    let Some(key) = key else {
        return match entries.iter().find(|e| e.hmac.is_some()) {
            Some(e) => Err(format!(
                "its entries are signed (from run {} on): give the key with --ledger-key",
                e.run
            )),
            None => Ok(()),
        };
    };
    let mut signed_from = None;
    for e in entries {
        match &e.hmac {
            Some(tag) if tag_matches(key, &e.hash, tag) => {
                signed_from.get_or_insert(e.run);
            }
            Some(_) => {
                return Err(format!(
                    "the signature of run {} does not match the key in --ledger-key (a wrong key, or an entry re-signed without it)",
                    e.run
                ))
            }
            None => {
                if let Some(from) = signed_from {
                    return Err(format!(
                        "the entry of run {} is not signed, though the ledger is from run {from} on",
                        e.run
                    ));
                }
            }
        }
    }
    Ok(())
}

fn entry_hash(run: u64, prev: &str, state_sha256: &str, started_at: &str) -> String {
    let text = format!("scrapemeter-ledger 1\n{run}\n{prev}\n{state_sha256}\n{started_at}\n");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The ledger of a state folder, checked against it and against an output folder.
#[derive(Debug)]
pub struct Ledger {
    state_dir: PathBuf,
    out_dir: PathBuf,
    entries: Vec<Entry>,
    /// The ledger key (`--ledger-key`): new entries are signed with it.
    key: Option<Vec<u8>>,
}

/// Checks a chain: each entry's hash is its own, its `prev` the previous hash, and
/// run numbers follow one another.
fn verify(entries: &[Entry]) -> Result<(), String> {
    let mut prev: Option<&Entry> = None;
    for e in entries {
        if e.hash != entry_hash(e.run, &e.prev, &e.state_sha256, &e.started_at) {
            return Err(format!("entry of run {} does not match its hash", e.run));
        }
        match prev {
            Some(p) if e.prev != p.hash || e.run != p.run + 1 => {
                return Err(format!(
                    "entry of run {} does not follow run {}",
                    e.run, p.run
                ));
            }
            None if !e.prev.is_empty() && e.run == 1 => {
                return Err("the first entry names a previous one".into());
            }
            _ => {}
        }
        prev = Some(e);
    }
    Ok(())
}

/// A run killed while it committed (the ledger renamed into place, the state not yet)
/// leaves the new state in its temporary file beside the old one (see
/// `report::commit`: every file is written and synced before any is renamed). When
/// such a file holds exactly the state the ledger's last entry names, the commit is
/// finished here (renamed into place) instead of the history being refused. Returns
/// whether it was.
fn finish_cut_commit(state_dir: &Path, last: &Entry) -> bool {
    let name = crate::store::nightly::FILE_NAME;
    let prefix = format!(".{name}.tmp");
    let Ok(dir) = std::fs::read_dir(state_dir) else {
        return false;
    };
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        if !file_name.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        if hex::encode(Sha256::digest(&bytes)) == last.state_sha256
            && std::fs::rename(entry.path(), state_dir.join(name)).is_ok()
        {
            if let Ok(d) = std::fs::File::open(state_dir) {
                let _ = d.sync_all();
            }
            eprintln!(
                "scrapemeter: note: the run {} that wrote {} was stopped while committing its state: its state, complete and the one its ledger names, is now in place",
                last.run,
                crate::engine::text::terminal_safe(&state_dir.join(name).display().to_string())
            );
            return true;
        }
    }
    false
}

impl Ledger {
    /// Reads and checks the ledger of `state_dir` before a run that writes into
    /// `out_dir`; with `reset` (`--state-reset`) a new history starts. With `key`
    /// (`--ledger-key`), the entries' signatures are checked and the new one signed.
    pub fn open(
        state_dir: &Path,
        out_dir: &Path,
        reset: bool,
        key: Option<Vec<u8>>,
    ) -> Result<Ledger, String> {
        let path = state_dir.join(LEDGER);
        let mut ledger = Ledger {
            state_dir: state_dir.to_path_buf(),
            out_dir: out_dir.to_path_buf(),
            entries: Vec::new(),
            key,
        };
        if reset {
            return Ok(ledger);
        }
        let refused = |why: String| {
            format!(
                "state folder {} refused: {why}; if this is intended, start a new history with --state-reset",
                state_dir.display()
            )
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
                    let e: Entry = serde_json::from_str(line)
                        .map_err(|e| refused(format!("{} line {}: {e}", path.display(), i + 1)))?;
                    ledger.entries.push(e);
                }
                verify(&ledger.entries).map_err(|e| {
                    refused(format!("its ledger {} is broken: {e}", path.display()))
                })?;
                verify_tags(&ledger.entries, ledger.key.as_deref()).map_err(|e| {
                    refused(format!("its ledger {} is refused: {e}", path.display()))
                })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(refused(format!("cannot read {}: {e}", path.display()))),
        }
        // The last entry is the state there (an unreadable state is the state's own
        // loader's to refuse).
        let state = state_dir.join(crate::store::nightly::FILE_NAME);
        match (ledger.entries.last(), std::fs::read(&state)) {
            (Some(last), Ok(bytes))
                if hex::encode(Sha256::digest(&bytes)) != last.state_sha256
                    && !finish_cut_commit(state_dir, last) =>
            {
                return Err(refused(format!(
                    "{} is not the state its ledger's run {} wrote (edited, or restored from elsewhere)",
                    state.display(),
                    last.run
                )));
            }
            (None, Ok(_)) if std::fs::metadata(&state).is_ok_and(|m| m.is_file()) => {
                // A state from before the ledger: its history starts now.
            }
            _ => {}
        }
        if let Ok(text) = std::fs::read(out_dir.join(HEAD)) {
            if let Ok(head) = serde_json::from_slice::<Head>(&text) {
                let ours = ledger.head();
                let held = ledger
                    .entries
                    .iter()
                    .find(|e| e.run == head.run && e.hash == head.head);
                // A signed history stripped of its signatures (and re-chained).
                if let Some(e) = held.filter(|e| head.signed && e.hmac.is_none()) {
                    return Err(refused(format!(
                        "{} in {} records that run {} signed its entry, but the ledger's entry of run {} is not signed",
                        HEAD,
                        out_dir.display(),
                        head.run,
                        e.run
                    )));
                }
                if held.is_none() {
                    let what = match &ours {
                        None => "there is no ledger (the state was deleted or replaced)".to_string(),
                        Some(h) if h.run < head.run => format!(
                            "its ledger ends at run {} but the reports were written by run {} (a state rolled back)",
                            h.run, head.run
                        ),
                        Some(h) => format!(
                            "its ledger (run {}, head {}) does not hold the run that wrote the reports",
                            h.run, h.head
                        ),
                    };
                    return Err(refused(format!(
                        "{} in {} records run {} with chain head {}, but {what}",
                        HEAD,
                        out_dir.display(),
                        head.run,
                        head.head
                    )));
                }
            }
        }
        Ok(ledger)
    }

    /// The last entry, as run number and hash.
    pub fn head(&self) -> Option<Head> {
        self.entries.last().map(|e| Head {
            run: e.run,
            head: e.hash.clone(),
            signed: e.hmac.is_some(),
        })
    }

    /// The files to commit with the reports when run `run` writes `state`: the ledger
    /// with its new entry (in the state folder) and the new head (in the output
    /// folder). Returns them and the new head.
    pub fn append(&mut self, run: u64, state: &[u8], started_at: &str) -> (Vec<File>, Head) {
        let prev = self
            .entries
            .last()
            .map(|e| e.hash.clone())
            .unwrap_or_default();
        let state_sha256 = hex::encode(Sha256::digest(state));
        let hash = entry_hash(run, &prev, &state_sha256, started_at);
        let hmac = self.key.as_deref().map(|k| entry_hmac(k, &hash));
        let signed = hmac.is_some();
        self.entries.push(Entry {
            run,
            prev,
            state_sha256,
            started_at: started_at.to_string(),
            hash: hash.clone(),
            hmac,
        });
        let mut ledger = Vec::new();
        for e in &self.entries {
            ledger.extend(serde_json::to_vec(e).expect("json"));
            ledger.push(b'\n');
        }
        let head = Head {
            run,
            head: hash,
            signed,
        };
        let mut head_bytes = serde_json::to_vec_pretty(&head).expect("json");
        head_bytes.push(b'\n');
        (
            vec![
                (self.state_dir.clone(), LEDGER, ledger),
                (self.out_dir.clone(), HEAD, head_bytes),
            ],
            head,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries of runs 1 and 2 whose states are `one` and `two`.
    fn two_runs(one: &[u8], two: &[u8]) -> Vec<u8> {
        let first = Entry {
            run: 1,
            prev: String::new(),
            state_sha256: hex::encode(Sha256::digest(one)),
            started_at: "t1".into(),
            hash: String::new(),
            hmac: None,
        };
        let first = Entry {
            hash: entry_hash(1, "", &first.state_sha256, "t1"),
            ..first
        };
        let sha2 = hex::encode(Sha256::digest(two));
        let second = Entry {
            run: 2,
            prev: first.hash.clone(),
            hash: entry_hash(2, &first.hash, &sha2, "t2"),
            state_sha256: sha2,
            started_at: "t2".into(),
            hmac: None,
        };
        let mut text = Vec::new();
        for e in [first, second] {
            text.extend(serde_json::to_vec(&e).unwrap());
            text.push(b'\n');
        }
        text
    }

    #[test]
    fn a_commit_cut_after_the_ledger_is_finished_and_a_rollback_is_not() {
        let state_name = crate::store::nightly::FILE_NAME;
        let tmp = tempfile::tempdir().unwrap();
        let (state_dir, out) = (tmp.path().join("state"), tmp.path().join("out"));
        std::fs::create_dir_all(&state_dir).unwrap();
        std::fs::write(state_dir.join(LEDGER), two_runs(b"night 1", b"night 2")).unwrap();
        // Killed between the ledger's rename and the state's: the old state in place,
        // the new one in its temporary file.
        std::fs::write(state_dir.join(state_name), b"night 1").unwrap();
        let temp = state_dir.join(format!(".{state_name}.tmpAbC123"));
        std::fs::write(&temp, b"night 2").unwrap();
        let ledger = Ledger::open(&state_dir, &out, false, None).expect("the commit is finished");
        assert_eq!(ledger.head().unwrap().run, 2);
        assert_eq!(
            std::fs::read(state_dir.join(state_name)).unwrap(),
            b"night 2"
        );
        assert!(!temp.exists());
        // A state put back by hand (no temporary file of the state the ledger names)
        // is still refused, and so is a temporary file that holds something else.
        std::fs::write(state_dir.join(state_name), b"night 1").unwrap();
        let err = Ledger::open(&state_dir, &out, false, None).unwrap_err();
        assert!(
            err.contains("is not the state its ledger's run 2 wrote"),
            "{err}"
        );
        std::fs::write(&temp, b"night 2, edited").unwrap();
        assert!(Ledger::open(&state_dir, &out, false, None).is_err());
        assert_eq!(
            std::fs::read(state_dir.join(state_name)).unwrap(),
            b"night 1"
        );
    }

    #[test]
    fn a_chain_verifies_and_an_edit_does_not() {
        let mut entries = Vec::new();
        let mut prev = String::new();
        for run in 1..=3 {
            let hash = entry_hash(run, &prev, "s", "t");
            entries.push(Entry {
                run,
                prev: prev.clone(),
                state_sha256: "s".into(),
                started_at: "t".into(),
                hash: hash.clone(),
                hmac: None,
            });
            prev = hash;
        }
        assert!(verify(&entries).is_ok());
        let mut edited = entries.clone();
        edited[1].state_sha256 = "x".into();
        assert!(verify(&edited).is_err());
        let mut dropped = entries.clone();
        dropped.remove(1);
        assert!(verify(&dropped).is_err());
    }

    #[test]
    fn a_tag_matches_only_as_written_under_its_key() {
        let key = b"k";
        let entries: Vec<Entry> = (1..=2)
            .map(|run| {
                let hash = entry_hash(run, "", "s", "t");
                Entry {
                    run,
                    prev: String::new(),
                    state_sha256: "s".into(),
                    started_at: "t".into(),
                    hmac: Some(entry_hmac(key, &hash)),
                    hash,
                }
            })
            .collect();
        assert_eq!(verify_tags(&entries, Some(key)), Ok(()));
        let tag = entries[1].hmac.clone().unwrap();
        let last = if tag.ends_with('0') { "1" } else { "0" };
        for forged in [
            format!("{}{last}", &tag[..63]),
            tag.to_uppercase(),
            tag[..62].to_string(),
            format!("{tag}00"),
            format!("{}zz", &tag[..62]),
            String::new(),
        ] {
            let mut e = entries.clone();
            e[1].hmac = Some(forged.clone());
            let err = verify_tags(&e, Some(key)).unwrap_err();
            assert!(
                err.starts_with("the signature of run 2 does not match"),
                "{forged}: {err}"
            );
        }
        assert!(verify_tags(&entries, Some(b"other")).is_err());
    }
}
