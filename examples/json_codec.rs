//! A format of your own: `cache = Json` keeps a stage's output as JSON, which people and
//! other tools can read in the cache folder.
//!
//! ```sh
//! cargo run --example json_codec   # computes both stages, writes two JSON entries
//! cargo run --example json_codec   # reads `frequent` back from its JSON entry
//! ```
//!
//! A codec is a type that implements [`stage::Codec<T>`] for the outputs it keeps: a name
//! and version (`ID`, part of every key), a file extension, how it writes a value and how
//! it reads one back. Naming it in `cache = ...` is all a stage needs.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde::de::DeserializeOwned;
use stage::{BoxError, Codec, Payload, Reads, stage};

/// `cache = Json`: any serde value, as JSON.
pub struct Json;

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Codec<T> for Json {
    /// Part of every key: change it when the bytes written change, so that old entries are
    /// never read as new ones.
    const ID: &'static str = "json/1";
    /// Payloads are `<key>.json` in the stage's folder.
    const EXTENSION: &'static str = "json";
    /// JSON is read front to back: the payload arrives a checked segment at a time.
    const READS: Reads = Reads::Stream;

    fn encode<W: Write + Send>(value: &T, out: &mut W, _settings: &str) -> Result<(), BoxError> {
        serde_json::to_writer(out, value)?;
        Ok(())
    }

    /// A payload from the cache is exactly what `encode` wrote; an error here only comes
    /// from bytes of another origin (`Payload::unchecked`), and must never be a panic.
    fn decode(payload: Payload) -> Result<T, BoxError> {
        Ok(serde_json::from_reader(payload.into_reader())?)
    }
}

/// How often each word of `text` occurs.
#[stage(cache = Json)]
pub fn counts(text: String) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// The words that occur at least `min` times, most frequent first.
#[stage(c = counts(text), cache = Json)]
pub fn frequent(c: &BTreeMap<String, usize>, text: String, min: usize) -> Vec<(String, usize)> {
    let mut words: Vec<(String, usize)> = c
        .iter()
        .filter(|&(_, &n)| n >= min)
        .map(|(w, &n)| (w.clone(), n))
        .collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words
}

/// The text the example counts.
pub const TEXT: &str = "A stage is a function. A stage reads what it names, and a stage \
    keeps what it returns: in Parquet, in Arrow, in bincode, or in a format of its own.";

fn main() -> Result<(), stage::Error> {
    let (words, log) = stage::observe(|| frequent(TEXT.to_owned(), 2));
    for (word, n) in words? {
        println!("{n:>3}  {word}");
    }
    print!("{log}");
    println!(
        "the entries are JSON: look in {}",
        stage::Config::current().cache_dir().display()
    );
    Ok(())
}
