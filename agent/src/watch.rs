//! Waking the tailer when watched directories change. inotify can overflow and misses
//! network filesystems, so the tailer also polls and rescans; this only makes it quick.

use crate::tailer::Wake;
use garonne_common::config::InputConfig;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

/// Watches the fixed directory part of every input pattern. The returned watcher must
/// be kept alive; `None` if inotify is unavailable (polling still works).
pub(crate) fn watch_inputs(
    inputs: &[InputConfig],
    wake: Sender<Wake>,
) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        // An error (such as a full event queue) may hide anything: look again.
        if let Some(reason) = event.as_ref().map_or(Some(Wake::Files), wake_for) {
            let _ = wake.send(reason);
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

/// What an event may mean for the tailer, if anything. Opening and reading a file,
/// which the tailer itself does, must not wake it: each wake-up would read the files
/// again and cause the next one, and an idle agent would never rest. Written data needs
/// only a read; anything else (creation, rename, removal) may bring new files.
fn wake_for(event: &notify::Event) -> Option<Wake> {
    use notify::EventKind;
    use notify::event::ModifyKind;
    match event.kind {
        EventKind::Access(_) => None,
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_)) => Some(Wake::Lines),
        _ => Some(Wake::Files),
    }
}

/// Input patterns whose fixed directory does not exist, each with that directory:
/// nothing is read from them until it is created. `check-config` and the agent's start
/// warn of each, since a mistyped directory otherwise ships nothing in silence.
pub(crate) fn missing_directories(inputs: &[InputConfig]) -> Vec<(String, PathBuf)> {
    inputs
        .iter()
        .flat_map(|input| input.paths.iter())
        .map(|pattern| (pattern.clone(), fixed_directory(pattern)))
        .filter(|(_, directory)| !directory.is_dir())
        .collect()
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
    fn reading_wakes_nobody_writing_wakes_a_read_and_renaming_a_rescan() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
            RenameMode,
        };
        use notify::{Event, EventKind};
        let expected = [
            (EventKind::Access(AccessKind::Open(AccessMode::Read)), None),
            (EventKind::Access(AccessKind::Close(AccessMode::Read)), None),
            (EventKind::Access(AccessKind::Read), None),
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                Some(Wake::Lines),
            ),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
                Some(Wake::Lines),
            ),
            (EventKind::Create(CreateKind::File), Some(Wake::Files)),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                Some(Wake::Files),
            ),
            (EventKind::Remove(RemoveKind::File), Some(Wake::Files)),
            (EventKind::Modify(ModifyKind::Any), Some(Wake::Files)),
            (EventKind::Any, Some(Wake::Files)),
        ];
        for (kind, wake) in expected {
            assert_eq!(wake_for(&Event::new(kind)), wake, "{kind:?}");
        }
    }

    #[test]
    fn a_pattern_under_a_missing_directory_is_named_with_that_directory() {
        let existing = tempfile::tempdir().unwrap();
        let present = format!("{}/*.log", existing.path().display());
        let absent = format!("{}/apach2/*.log", existing.path().display());
        let input = InputConfig {
            paths: vec![present, absent.clone()],
            module: garonne_common::Module::Plain,
            exclude: Vec::new(),
            max_line_bytes: garonne_common::config::DEFAULT_MAX_LINE_BYTES,
        };
        assert_eq!(
            missing_directories(&[input]),
            vec![(absent, existing.path().join("apach2"))]
        );
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
