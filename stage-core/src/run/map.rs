//! Items of per-item stages in the cache: their keys, the list of a call (and the latest
//! list of the same arguments, which the next call starts from), and reading an item back.

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{Payload, Reads};
use crate::key::{Digest, Element, Ingredients};
use crate::run::items::{ItemInfo, ItemList, ItemSource};
use crate::run::plan::Node;
use crate::run::stage::{Call, Value};
use crate::store::{
    Entry, INLINE_MAX, Layered, ListedItem, LocalStore, Store, decode_items, payload_name,
};
use crate::{BoxError, Error};

/// The items already in the cache: from the previous list of the same stage and
/// arguments, else each from its own entry.
pub(crate) fn cached_items(
    local: &LocalStore,
    node: &Node,
    base: &Ingredients,
    keys: &[Digest],
    elements: &[(Digest, String)],
) -> Vec<Option<ListedItem>> {
    let previous: HashMap<Digest, ListedItem> = previous_list(local, node, base)
        .into_iter()
        .map(|item| (item.identity, item))
        .collect();
    keys.iter()
        .zip(elements)
        .map(|(key, (identity, label))| {
            // An item kept apart must still be there, at its size (a `stat`).
            let kept = |item: &ListedItem| {
                item.inline.is_some()
                    || std::fs::metadata(item_path(local, node, key))
                        .is_ok_and(|m| m.len() == item.bytes)
            };
            if let Some(item) = previous.get(identity).filter(|item| kept(item)) {
                return Some(ListedItem {
                    label: label.clone(),
                    ..item.clone()
                });
            }
            let entry = local.find_item(&node.path, key)?;
            listed(local, &entry, label)
        })
        .collect()
}

/// The items of the latest list written for these arguments, if it is intact.
fn previous_list(local: &LocalStore, node: &Node, base: &Ingredients) -> Vec<ListedItem> {
    let pointer = local
        .stage_dir(&node.path)
        .join(format!("{}.list", base.key().to_hex()));
    let Some(key) = std::fs::read_to_string(pointer)
        .ok()
        .and_then(|hex| hex.trim().parse::<Digest>().ok())
    else {
        return Vec::new();
    };
    let Some(entry) = local.find(&node.path, &key) else {
        return Vec::new();
    };
    local
        .with_payload(&entry, Reads::Whole, Payload::into_bytes)
        .ok()
        .and_then(Result::ok)
        .and_then(|bytes| decode_items(&bytes))
        .map(|(_, items)| items)
        .unwrap_or_default()
}

/// The key of the item of `base` for an element.
pub(crate) fn item_key(base: &Ingredients, identity: &Digest, label: &str) -> Digest {
    let mut ingredients = base.clone();
    ingredients.element = Some(Element {
        label: label.to_owned(),
        identity: *identity,
    });
    ingredients.key()
}

/// What a file's item key takes from it: its relative path and its content.
pub(crate) fn file_identity(rel: &str, hash: blake3::Hash) -> Digest {
    let mut hasher = blake3::Hasher::new_derive_key("stage item file v1");
    hasher.update(&(rel.len() as u64).to_le_bytes());
    hasher.update(rel.as_bytes());
    hasher.update(hash.as_bytes());
    Digest::from(hasher.finalize())
}

/// The listed form of an item entry, its payload inline when small.
pub(crate) fn listed(local: &LocalStore, entry: &Entry, label: &str) -> Option<ListedItem> {
    let inline = if entry.bytes <= INLINE_MAX {
        Some(entry.read_payload(&local.payload_path(entry)).ok()?)
    } else if local.has_payload(entry) {
        None
    } else {
        return None;
    };
    Some(ListedItem {
        label: label.to_owned(),
        identity: entry.ingredients.element.as_ref()?.identity,
        output: entry.blake3,
        bytes: entry.bytes,
        inline,
    })
}

/// Remembers `key` as the latest list of these arguments, for the next list to start from.
pub(crate) fn point_to_list(local: &LocalStore, node: &Node, base: &Ingredients, key: &Digest) {
    let pointer = local
        .stage_dir(&node.path)
        .join(format!("{}.list", base.key().to_hex()));
    let _ = std::fs::write(pointer, key.to_hex());
}

pub(crate) fn item_list(
    node: &Node,
    base: &Ingredients,
    files: bool,
    items: Vec<ListedItem>,
) -> ItemList {
    ItemList {
        stage: node.path.clone(),
        files,
        items: items
            .into_iter()
            .map(|item| ItemInfo {
                key: item_key(base, &item.identity, &item.label),
                label: item.label,
                output: item.output,
                bytes: item.bytes,
                inline: item.inline,
            })
            .collect(),
    }
}

pub(crate) fn item_path(local: &LocalStore, node: &Node, key: &Digest) -> std::path::PathBuf {
    local
        .item_dir(&node.path)
        .join(payload_name(key, node.codec.extension))
}

/// What reads the items of `node` for [`crate::Items`].
pub(crate) fn loader(store: &Layered, node: &Node) -> Arc<dyn ItemSource> {
    Arc::new(Loader {
        store: store.clone(),
        call: Arc::clone(&node.call),
        reads: node.codec.reads,
        extension: node.codec.extension,
    })
}

/// Reads items for [`crate::Items`], from the local folder or the remote store behind it.
struct Loader {
    store: Layered,
    call: Arc<dyn Call>,
    reads: Reads,
    extension: &'static str,
}

impl ItemSource for Loader {
    fn load(&self, list: &ItemList, i: usize) -> Result<Value, Error> {
        let item = &list.items[i];
        let failed = |source: BoxError| Error::Item {
            stage: list.stage.clone(),
            item: item.label.clone(),
            source,
        };
        if let Some(bytes) = &item.inline {
            return self
                .call
                .decode(Payload::checked(bytes.clone()))
                .map_err(failed);
        }
        let (entry, found) = self
            .store
            .lookup(&list.stage, &item.key)
            .filter(|(e, _)| e.blake3 == item.output && e.bytes == item.bytes)
            .ok_or_else(|| failed("its entry is missing: the next call recomputes it".into()))?;
        let read = self
            .store
            .with_payload(&entry, found, self.reads, |payload| {
                self.call.decode(payload)
            });
        match read {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(e)),
            Err(e) => {
                // A damaged item is removed, and its list with it: the next call
                // recomputes exactly that item.
                let _ = Store::remove(self.store.local(), &list.stage, &item.key, true);
                let _ = self.extension;
                Err(failed(
                    format!("{e}; it was removed, and the next call recomputes it").into(),
                ))
            }
        }
    }
}
