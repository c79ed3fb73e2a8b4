//! Waking the tailer when watched directories change. inotify can overflow and misses
//! network filesystems, so the tailer also polls and rescans; this only makes it quick.

use garonne_common::config::InputConfig;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

/// Watches the fixed directory part of every input pattern. The returned watcher must
/// be kept alive; `None` if inotify is unavailable (polling still works).
pub(crate) fn watch_inputs(
    inputs: &[InputConfig],
    wake: Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        if event.as_ref().map_or(true, wakes_tailer) {
            let _ = wake.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "file change notifications unavailable, polling only");
            return None;
        }
    };
    let directories: BTreeSet<PathBuf> = inputs
        .iter()
        .flat_map(|input| input.paths.iter())
        .map(|p| fixed_directory(p))
        .collect();
    for directory in directories {
        if let Err(error) = watcher.watch(&directory, RecursiveMode::NonRecursive) {
            tracing::debug!(directory = %directory.display(), %error, "cannot watch directory");
        }
    }
    Some(watcher)
}

/// Whether an event may mean new lines or files. Opening and reading a file, which the
/// tailer itself does, must not wake it: each wake-up would read the files again and
/// cause the next one, and an idle agent would never rest.
fn wakes_tailer(event: &notify::Event) -> bool {
    !matches!(event.kind, notify::EventKind::Access(_))
}

/// The directory holding a pattern's matches, when its wildcards are in the file name
/// only; otherwise the deepest directory without wildcards.
fn fixed_directory(pattern: &str) -> PathBuf {
    let mut fixed = PathBuf::new();
    for component in Path::new(pattern)
        .parent()
        .into_iter()
        .flat_map(Path::components)
    {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            break;
        }
        fixed.push(component);
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_file_wakes_nobody_writing_or_renaming_does() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
        use notify::{Event, EventKind};
        let quiet = [
            EventKind::Access(AccessKind::Open(AccessMode::Read)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ];
        for kind in quiet {
            assert!(!wakes_tailer(&Event::new(kind)), "{kind:?}");
        }
        let waking = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(notify::event::RemoveKind::File),
            EventKind::Any,
        ];
        for kind in waking {
            assert!(wakes_tailer(&Event::new(kind)), "{kind:?}");
        }
    }

    #[test]
    fn watches_the_directory_before_the_first_wildcard() {
        assert_eq!(
            fixed_directory("/var/log/apache2/*.log"),
            Path::new("/var/log/apache2")
        );
        assert_eq!(fixed_directory("/srv/*/logs/access.log"), Path::new("/srv"));
    }
}
