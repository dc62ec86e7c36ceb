//! Finding the sale files of a directory, for imports and the client.
//!
//! Ids come from paths (see [`crate::import::file_id`]), so the walk must
//! name every file the same way whatever order the file system lists
//! entries in. Real directories are walked first and symbolic links
//! followed only afterwards: a link to a directory or file that the real
//! walk already reached is an alias and is passed over, so the sales behind
//! it are read once, under their real path. Two links that reach the same
//! files from outside the root name them after the link first in name
//! order, breadth first; adding a link that comes earlier renames them.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::import::ImportError;

/// What a directory holds for an import.
#[derive(Debug, Default)]
pub struct Listing {
    /// The sale files, sorted by path.
    pub files: Vec<PathBuf>,
    /// Entries passed over: anything but a regular `.json` or `.ndjson`
    /// file, and links to files or directories already reached.
    pub skipped: Vec<PathBuf>,
    /// Subdirectories that could not be listed, and why. The rest of the
    /// directory is still imported.
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// Lists the sale files below `dir`. Only `dir` itself failing to be
/// listed is an error.
pub fn list_sale_files(dir: &Path) -> Result<Listing, ImportError> {
    let read_error = |source| ImportError::Read {
        path: dir.display().to_string(),
        source,
    };
    let root = fs::canonicalize(dir).map_err(read_error)?;
    let mut walk = Walk::default();
    let entries = fs::read_dir(dir).map_err(read_error)?;
    walk.visited_directories.insert(root.clone());
    walk.entries(dir, &root, entries);
    while let Some(link) = walk.links.pop_front() {
        walk.follow(link);
    }
    walk.listing.files.sort();
    Ok(walk.listing)
}

/// True for the files an import reads.
pub fn is_sale_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "json" || ext == "ndjson")
}

/// Opens a file found by a directory walk, refusing anything but a regular
/// file: a FIFO put in place of a file after the listing would otherwise
/// block the open until some writer came along.
pub fn open_regular(path: &Path) -> io::Result<fs::File> {
    // Non-blocking only matters for the open of a FIFO; reads of a
    // regular file ignore it.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    Ok(file)
}

#[derive(Default)]
struct Walk {
    listing: Listing,
    /// Canonical paths of the directories and files reached so far.
    visited_directories: HashSet<PathBuf>,
    visited_files: HashSet<PathBuf>,
    /// Symbolic links met, followed once the real walk is done.
    links: VecDeque<PathBuf>,
}

impl Walk {
    /// Walks a directory whose canonical path is `real`, once.
    fn directory(&mut self, dir: &Path, real: PathBuf) {
        if !self.visited_directories.insert(real.clone()) {
            self.listing.skipped.push(dir.to_path_buf());
            return;
        }
        match fs::read_dir(dir) {
            Ok(entries) => self.entries(dir, &real, entries),
            Err(error) => self.listing.unreadable.push((dir.to_path_buf(), error)),
        }
    }

    fn entries(&mut self, dir: &Path, real: &Path, entries: fs::ReadDir) {
        // In name order, not the file system's: which of two links to the
        // same place names the files must not change while the tree does
        // not.
        let mut sorted = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => sorted.push(entry),
                Err(error) => {
                    self.listing.unreadable.push((dir.to_path_buf(), error));
                    return;
                }
            }
        }
        sorted.sort_by_key(|entry| entry.file_name());
        for entry in sorted {
            let path = entry.path();
            // The entry's own type: a symbolic link is not followed here.
            match entry.file_type() {
                Ok(kind) if kind.is_symlink() => self.links.push_back(path),
                Ok(kind) if kind.is_dir() => {
                    self.directory(&path, real.join(entry.file_name()))
                }
                Ok(kind) if kind.is_file() && is_sale_file(&path) => {
                    self.visited_files.insert(real.join(entry.file_name()));
                    self.listing.files.push(path);
                }
                Ok(_) => self.listing.skipped.push(path),
                Err(error) => self.listing.unreadable.push((path, error)),
            }
        }
    }

    /// Follows a symbolic link to whatever the walk has not reached yet.
    fn follow(&mut self, link: PathBuf) {
        let target = fs::canonicalize(&link)
            .and_then(|real| fs::metadata(&real).map(|metadata| (real, metadata)));
        match target {
            Ok((real, metadata)) if metadata.is_dir() => self.directory(&link, real),
            Ok((real, metadata)) if metadata.is_file() && is_sale_file(&link) => {
                if self.visited_files.insert(real) {
                    self.listing.files.push(link);
                } else {
                    self.listing.skipped.push(link);
                }
            }
            // A dangling link named like a sale file is kept, so that
            // reading it reports it as unreadable, by name.
            Err(_) if is_sale_file(&link) => self.listing.files.push(link),
            _ => self.listing.skipped.push(link),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn names(root: &Path, paths: &[PathBuf]) -> Vec<String> {
        let mut names: Vec<String> = paths
            .iter()
            .map(|path| path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn links_to_what_the_walk_reaches_anyway_are_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("2024-03")).unwrap();
        fs::create_dir_all(root.join("b")).unwrap();
        fs::write(root.join("2024-03/sales.ndjson"), "").unwrap();
        fs::write(root.join("good.json"), "").unwrap();
        fs::write(root.join("notes.txt"), "").unwrap();
        // Sorted before the real directory, and from inside another one.
        symlink("2024-03", root.join("0-latest")).unwrap();
        symlink("../2024-03", root.join("b/march")).unwrap();
        symlink("good.json", root.join("alias.json")).unwrap();
        symlink(".", root.join("loop")).unwrap();
        symlink("gone.json", root.join("dangling.json")).unwrap();

        let listing = list_sale_files(root).unwrap();

        assert_eq!(
            names(root, &listing.files),
            ["2024-03/sales.ndjson", "dangling.json", "good.json"]
        );
        assert_eq!(
            names(root, &listing.skipped),
            ["0-latest", "alias.json", "b/march", "loop", "notes.txt"]
        );
        assert!(listing.unreadable.is_empty());
    }

    #[test]
    fn a_link_to_a_directory_outside_is_walked_under_the_link_name() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("sales.json"), "").unwrap();
        let dir = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("shop2")).unwrap();

        let listing = list_sale_files(dir.path()).unwrap();

        assert_eq!(names(dir.path(), &listing.files), ["shop2/sales.json"]);
    }

    #[test]
    fn two_links_to_the_same_files_name_them_by_name_order_not_creation_order() {
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(outside.path().join("sub")).unwrap();
        fs::write(outside.path().join("sub/x.json"), "").unwrap();
        fs::write(outside.path().join("y.json"), "").unwrap();
        let links = [
            ("shop", outside.path().to_path_buf()),
            ("cur", outside.path().join("sub")),
        ];

        for order in [[0, 1], [1, 0]] {
            let dir = tempfile::tempdir().unwrap();
            for index in order {
                let (name, target) = &links[index];
                symlink(target, dir.path().join(name)).unwrap();
            }

            let listing = list_sale_files(dir.path()).unwrap();

            assert_eq!(
                names(dir.path(), &listing.files),
                ["cur/x.json", "shop/y.json"]
            );
        }
    }

    #[test]
    fn special_files_are_skipped_and_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("00001.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());

        let listing = list_sale_files(dir.path()).unwrap();
        assert!(listing.files.is_empty());
        assert_eq!(listing.skipped, std::slice::from_ref(&fifo));

        // Had it been listed before it became a FIFO, opening it would be
        // refused at once instead of waiting for a writer.
        let error = open_regular(&fifo).unwrap_err();
        assert_eq!(error.to_string(), "is not a regular file");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = list_sale_files(&dir.path().join("nowhere")).unwrap_err();
        assert!(error.to_string().contains("nowhere"), "{error}");
    }
}
