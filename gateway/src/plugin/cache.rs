//! The on-disk cache of compiled components, so a restart does not
//! recompile. Entries live at `<dir>/<engine hash>/<sha256>.cwasm`: the
//! engine hash changes with wasmtime's version and compilation settings,
//! the sha256 with the component's bytes.

use super::error::LoadError;
use super::runtime::compile;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components on disk, for one engine configuration.
#[derive(Debug, Clone)]
pub(super) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(super) fn new(root: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: root.join(format!("{:016x}", hasher.finish())),
        }
    }

    /// Loads the compiled form of `bytes` (whose sha256 is `version`),
    /// compiling and storing it on a miss. A cache that cannot be read or
    /// written only costs time: the component is compiled.
    pub(super) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        version: &str,
    ) -> Result<Component, LoadError> {
        let path = self.dir.join(format!("{version}.cwasm"));
        // Read into memory rather than mmap the file: a file changed in place
        // under a live mapping would crash the process (SIGBUS).
        if let Ok(serialized) = std::fs::read(&path) {
            // SAFETY: `Component::deserialize` trusts its input to be
            // wasmtime's own output. These files are written only by
            // `store` below, into a directory that belongs to the gateway,
            // under a name that binds them to this engine's compatibility
            // hash and the source's sha256; wasmtime checks the header and
            // the engine settings again on load.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize(engine, &serialized) };
            match loaded {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "compiled plugin cache entry unusable; recompiling");
                }
            }
        }
        let component = compile(engine, bytes)?;
        if let Err(error) = self.store(&component, &path) {
            tracing::warn!(path = %path.display(), %error, "could not write the compiled plugin cache");
        }
        Ok(component)
    }

    fn store(&self, component: &Component, path: &std::path::Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let serialized = component.serialize()?;
        // Write aside and rename, so a reader never sees half a file.
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::fs::write(tmp.path(), serialized)?;
        tmp.persist(path)?;
        Ok(())
    }
}
