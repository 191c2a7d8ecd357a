//! placeholder until the stat index lands
#![allow(missing_docs)]
use std::path::{Path, PathBuf};
pub struct StatIndex;
impl StatIndex {
    pub fn open(_: PathBuf) -> StatIndex { StatIndex }
    pub fn hash(&self, path: &Path) -> std::io::Result<blake3::Hash> { Ok(blake3::hash(&std::fs::read(path)?)) }
    pub fn save(&self) -> std::io::Result<()> { Ok(()) }
}
