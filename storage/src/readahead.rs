//! Walking a list of files in order while a few threads read the next ones
//! ahead.
//!
//! An import of the seed's layout opens ten thousand tiny files. When they
//! are not in the page cache (a fresh container, a cold disk) each one
//! costs a disk round trip, and one after the other they took 0.9 s for
//! the sample data. Readers that touch the next files in parallel turn
//! those round trips into a few overlapping ones; the files are then
//! parsed, in order, from memory.

use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Threads reading ahead. They mostly wait for the disk, not for a core.
const READERS: usize = 8;

/// How many files the readers may run ahead of the visitor, which bounds
/// what they pull into the page cache before it is used.
const WINDOW: usize = 64;

/// Bytes read ahead of each file: all of a seed file, and enough of a
/// large one for the kernel's own read-ahead to take over.
const READ_AHEAD_BYTES: usize = 128 * 1024;

/// Calls `visit` on each file in order, while reader threads fetch the
/// following files from the disk. Stops at the first `Break` and returns
/// its value.
pub fn visit_files<B>(
    files: &[PathBuf],
    mut visit: impl FnMut(&Path) -> ControlFlow<B>,
) -> Option<B> {
    let progress = Progress::default();
    std::thread::scope(|scope| {
        for _ in 0..READERS.min(files.len().saturating_sub(1)) {
            scope.spawn(|| read_ahead(files, &progress));
        }
        // Dropped when the visit ends, even by a panic, so that the
        // readers never wait for a visitor that is gone.
        let _stop_readers = StopReaders(&progress);
        let mut stopped = None;
        for (index, path) in files.iter().enumerate() {
            if let ControlFlow::Break(value) = visit(path) {
                stopped = Some(value);
                break;
            }
            // Readers are woken a quarter window at a time, not for every
            // file: waking eight threads ten thousand times cost more than
            // the reading when the files were already cached.
            if (index + 1) % (WINDOW / 4) == 0 {
                progress.visited(index + 1);
            }
        }
        stopped
    })
}

struct StopReaders<'a>(&'a Progress);

impl Drop for StopReaders<'_> {
    fn drop(&mut self) {
        self.0.visited(usize::MAX);
    }
}

/// Shared between the visitor and the readers.
#[derive(Default)]
struct Progress {
    /// The next file a reader takes.
    next: AtomicUsize,
    /// Files the visitor is done with; `usize::MAX` once it stops.
    visited: Mutex<usize>,
    moved: Condvar,
}

impl Progress {
    fn visited(&self, count: usize) {
        // A poisoned lock only means a reader panicked; the count is valid.
        let mut visited = self.visited.lock().unwrap_or_else(|e| e.into_inner());
        *visited = count;
        self.moved.notify_all();
    }

    /// Waits until file `index` is within the window, and says what to
    /// do with it.
    fn turn_of(&self, index: usize) -> Turn {
        let mut visited = self.visited.lock().unwrap_or_else(|e| e.into_inner());
        while *visited != usize::MAX && index >= *visited + WINDOW {
            visited = self.moved.wait(visited).unwrap_or_else(|e| e.into_inner());
        }
        if *visited == usize::MAX {
            Turn::Stop
        } else if index < *visited {
            Turn::Skip
        } else {
            Turn::Read
        }
    }
}

enum Turn {
    /// The file is ahead of the visitor: fetch it.
    Read,
    /// The visitor has already passed it.
    Skip,
    /// The visitor has stopped.
    Stop,
}

fn read_ahead(files: &[PathBuf], progress: &Progress) {
    let mut buffer = vec![0; READ_AHEAD_BYTES];
    loop {
        let index = progress.next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = files.get(index) else {
            return;
        };
        match progress.turn_of(index) {
            Turn::Stop => return,
            Turn::Skip => continue,
            Turn::Read => {}
        }
        // Errors are the visitor's to report when it opens the file.
        if let Ok(file) = crate::listing::open_regular(path) {
            let _ = file.take(READ_AHEAD_BYTES as u64).read(&mut buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_file_in_order_and_stops_at_a_break() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..300)
            .map(|n| {
                let path = dir.path().join(format!("{n:05}.json"));
                std::fs::write(&path, n.to_string()).unwrap();
                path
            })
            .collect();

        let mut seen = Vec::new();
        let none: Option<()> = visit_files(&files, |path| {
            seen.push(std::fs::read_to_string(path).unwrap());
            ControlFlow::Continue(())
        });
        assert_eq!(none, None);
        let expected: Vec<String> = (0..300).map(|n: i32| n.to_string()).collect();
        assert_eq!(seen, expected);

        let mut count = 0;
        let stopped = visit_files(&files, |path| {
            count += 1;
            if path.ends_with("00120.json") {
                ControlFlow::Break("stopped at 120")
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(stopped, Some("stopped at 120"));
        assert_eq!(count, 121);
    }

    #[test]
    fn a_panicking_visitor_does_not_leave_the_readers_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> =
            (0..200).map(|n| dir.path().join(format!("{n}"))).collect();

        let visit = std::panic::catch_unwind(|| {
            visit_files::<()>(&files, |_| panic!("a bug in the visitor"))
        });

        assert!(visit.is_err());
    }

    #[test]
    fn missing_files_are_left_to_the_visitor() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            dir.path().join("gone.json"),
            dir.path().join("also-gone.json"),
        ];

        let mut errors = 0;
        let none: Option<()> = visit_files(&files, |path| {
            errors += usize::from(std::fs::File::open(path).is_err());
            ControlFlow::Continue(())
        });

        assert_eq!(none, None);
        assert_eq!(errors, 2);
    }
}
