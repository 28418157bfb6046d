//! `distsoc vectors`: the golden vector files in `conformance/vectors/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use distsoc_conformance::vectors::{generate_all, VectorFile};

/// Vector subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum VectorsCommand {
    /// List the vector files with their record counts.
    List {
        /// Directory holding the JSON files.
        #[arg(long, default_value_os_t = default_dir())]
        dir: PathBuf,
    },
    /// Regenerate every computed vector file (deterministic).
    Generate {
        /// Directory to write the JSON files to.
        #[arg(long, default_value_os_t = default_dir())]
        dir: PathBuf,
    },
}

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors")
}

pub(crate) fn run(cmd: VectorsCommand) -> anyhow::Result<()> {
    match cmd {
        VectorsCommand::List { dir } => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            let mut total = 0;
            for f in files {
                let text = std::fs::read_to_string(&f)?;
                let v: VectorFile = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a vector file", f.display()))?;
                let valid = v.records.iter().filter(|r| r.valid).count();
                outln!(
                    "{:<24} {:>4} records ({} valid, {} invalid)",
                    v.file,
                    v.records.len(),
                    valid,
                    v.records.len() - valid
                );
                total += v.records.len();
            }
            outln!("{:<24} {:>4} records", "total", total);
        }
        VectorsCommand::Generate { dir } => {
            for v in generate_all() {
                let path = dir.join(&v.file);
                let mut text = serde_json::to_string_pretty(&v)?;
                text.push('\n');
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                outln!("wrote {} ({} records)", path.display(), v.records.len());
            }
        }
    }
    Ok(())
}
