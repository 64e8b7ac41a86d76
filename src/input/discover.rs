//! Discovery: the paths, directories, globs and `-` of the command line → input files.
//!
//! Directories are walked recursively (following symlinks, but never round a loop);
//! a path reached twice, however spelled, is read once. A path that does not exist and
//! a glob that matches nothing are [`Problem`]s marked `missing`: the command decides
//! whether that stops the run (it does unless `--allow-missing`).

use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Stdin,
}

/// One input to read, with the name the reports give it.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub source: Source,
}

/// An input not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
    /// The input it duplicates.
    pub same_as: Option<String>,
}

/// A path that could not be turned into inputs.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: String,
    pub error: String,
    /// The path does not exist, or the glob matches nothing.
    pub missing: bool,
}

#[derive(Debug, Default)]
pub struct Discovery {
    /// Sorted by name.
    pub inputs: Vec<Input>,
    pub skipped: Vec<Skipped>,
    pub problems: Vec<Problem>,
    /// With nightly state: contents read by an earlier run, by SHA-256 (hex). Files
    /// are checked against them before the scan; standard input, which can be read
    /// only once, is checked when read, and skipped then.
    pub read_before: HashMap<String, ReadBefore>,
}

/// A content an earlier run read: why an input with it is skipped, and its name then.
#[derive(Debug, Clone)]
pub struct ReadBefore {
    pub reason: String,
    pub same_as: String,
}

/// What discovery leaves out of the folders it walks and the globs it expands.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `--exclude` globs: a file or folder whose path as found, or whose name, matches
    /// one is left out (and listed as skipped). Paths named on the command line are
    /// always read.
    pub exclude: Option<globset::GlobSet>,
    /// The patterns of `exclude`, in order (to say which one matched).
    pub patterns: Vec<String>,
    /// This run's own folders (canonical path, and what they are, e.g. "the output
    /// folder of this run (--out)"): never read, even when given.
    pub own: Vec<(PathBuf, String)>,
}

impl Filter {
    /// Why `path` is left out, if it is; `named` is true for a path given as such.
    fn leaves_out(&self, path: &std::path::Path, is_dir: bool, named: bool) -> Option<String> {
        if is_dir && !self.own.is_empty() {
            if let Ok(c) = std::fs::canonicalize(path) {
                if let Some((_, what)) = self.own.iter().find(|(p, _)| *p == c) {
                    return Some(what.clone());
                }
            }
        }
        let set = self.exclude.as_ref().filter(|_| !named)?;
        let mut hits = set.matches(path);
        if hits.is_empty() {
            if let Some(name) = path.file_name() {
                hits = set.matches(name);
            }
        }
        hits.first()
            .map(|&i| format!("excluded by --exclude {}", self.patterns[i]))
    }
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Where a walk found inputs, problems, and what it left out (links back to a folder
/// above them, excluded paths, the run's own folders).
struct Found {
    inputs: Vec<Input>,
    problems: Vec<Problem>,
    skipped: Vec<Skipped>,
}

fn add_path(path: PathBuf, named: bool, filter: &Filter, found: &mut Found) {
    let is_dir = path.is_dir();
    if let Some(reason) = filter.leaves_out(&path, is_dir, named) {
        found.skipped.push(Skipped {
            path: path.display().to_string(),
            reason,
            same_as: None,
        });
        return;
    }
    if is_dir {
        let mut left_out = Vec::new();
        let walk = walkdir::WalkDir::new(&path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 {
                    return true;
                }
                match filter.leaves_out(e.path(), e.file_type().is_dir(), false) {
                    Some(reason) => {
                        left_out.push(Skipped {
                            path: e.path().display().to_string(),
                            reason,
                            same_as: None,
                        });
                        false
                    }
                    None => true,
                }
            });
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_file() => found.inputs.push(Input {
                    name: e.path().display().to_string(),
                    source: Source::Path(e.into_path()),
                }),
                // A FIFO, socket or device in a folder is named in the manifest, not read
                // (a FIFO would wait for a writer; a device may never end).
                Ok(e) if !e.file_type().is_dir() => found.skipped.push(Skipped {
                    path: e.path().display().to_string(),
                    reason: "not a regular file (a FIFO, socket or device): not read from a folder; name it to read it once".into(),
                    same_as: None,
                }),
                Ok(_) => {}
                // A link to a folder above it: not followed, and not a problem.
                Err(e) if e.loop_ancestor().is_some() => found.skipped.push(Skipped {
                    path: e
                        .path()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    reason: "symbolic link to a folder above it (not followed)".into(),
                    same_as: e.loop_ancestor().map(|p| p.display().to_string()),
                }),
                Err(e) => found.problems.push(Problem {
                    path: e
                        .path()
                        .map_or_else(|| path.display().to_string(), |p| p.display().to_string()),
                    error: e.to_string(),
                    missing: false,
                }),
            }
        }
        found.skipped.extend(left_out);
    } else {
        found.inputs.push(Input {
            name: path.display().to_string(),
            source: Source::Path(path),
        });
    }
}

/// Expands the command-line inputs.
pub fn discover(args: &[String]) -> Discovery {
    discover_with(args, &Filter::default())
}

/// Expands the command-line inputs, leaving out what `filter` says.
pub fn discover_with(args: &[String], filter: &Filter) -> Discovery {
    let mut found = Found {
        inputs: Vec::new(),
        problems: Vec::new(),
        skipped: Vec::new(),
    };
    for arg in args {
        if arg == "-" {
            found.inputs.push(Input {
                name: "-".into(),
                source: Source::Stdin,
            });
            continue;
        }
        let path = PathBuf::from(arg);
        if path.exists() {
            add_path(path, true, filter, &mut found);
            continue;
        }
        if !has_glob_chars(arg) {
            // A dangling symbolic link is there, but cannot be read: it is unreadable.
            let (missing, error) = match std::fs::symlink_metadata(&path) {
                Ok(_) => (false, "symbolic link to nothing".to_string()),
                Err(_) => (true, "no such file or directory".to_string()),
            };
            found.problems.push(Problem {
                path: arg.clone(),
                error,
                missing,
            });
            continue;
        }
        match glob::glob(arg) {
            Ok(paths) => {
                let mut any = false;
                for p in paths {
                    match p {
                        Ok(p) => {
                            any = true;
                            add_path(p, false, filter, &mut found)
                        }
                        Err(e) => found.problems.push(Problem {
                            path: e.path().display().to_string(),
                            error: e.error().to_string(),
                            missing: false,
                        }),
                    }
                }
                if !any {
                    found.problems.push(Problem {
                        path: arg.clone(),
                        error: "no file matches this pattern".into(),
                        missing: true,
                    });
                }
            }
            Err(e) => found.problems.push(Problem {
                path: arg.clone(),
                error: format!("invalid glob pattern: {e}"),
                missing: false,
            }),
        }
    }
    // Sort first so that, of two spellings of one file, the same one is kept whatever
    // the order of the arguments.
    let Found {
        inputs: mut found,
        mut problems,
        mut skipped,
    } = found;
    // A folder given twice meets what it leaves out twice.
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.dedup();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen: HashMap<Source, String> = HashMap::new();
    let mut inputs = Vec::new();
    for input in found {
        let identity = match &input.source {
            Source::Path(p) => Source::Path(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
            Source::Stdin => Source::Stdin,
        };
        if let Some(first) = seen.get(&identity) {
            skipped.push(Skipped {
                path: input.name.clone(),
                reason: "the same file was given more than once".into(),
                same_as: Some(first.clone()),
            });
        } else {
            seen.insert(identity, input.name.clone());
            inputs.push(input);
        }
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    Discovery {
        inputs,
        skipped,
        problems,
        read_before: HashMap::new(),
    }
}

impl Discovery {
    /// The paths that do not exist and the globs that match nothing, with why.
    pub fn missing(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.missing)
    }
}

impl std::hash::Hash for Source {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Source::Path(p) => p.hash(state),
            Source::Stdin => 0u8.hash(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_globs_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("a.log"), "x").unwrap();
        std::fs::write(sub.join("b.log"), "y").unwrap();
        let d = dir.path().display().to_string();
        let args = vec![
            d.clone(),
            format!("{d}/a.log"),
            format!("{d}/*.log"),
            format!("{d}/nothing*.gz"),
            format!("{d}/nosuch.log"),
        ];
        let found = discover(&args);
        let names: Vec<_> = found.inputs.iter().map(|i| i.name.clone()).collect();
        assert_eq!(names, [format!("{d}/a.log"), format!("{d}/sub/b.log")]);
        assert_eq!(found.skipped.len(), 2);
        assert_eq!(found.problems.len(), 2);
        let errors: Vec<_> = found.problems.iter().map(|p| p.error.as_str()).collect();
        assert_eq!(
            errors,
            ["no such file or directory", "no file matches this pattern"]
        );
        assert_eq!(found.missing().count(), 2);
    }
}
