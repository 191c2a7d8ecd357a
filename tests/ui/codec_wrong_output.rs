use std::io::Write;

use stage::{BoxError, Codec, Payload, stage};

/// Keeps lines of text, and nothing else.
struct Lines;

impl Codec<Vec<String>> for Lines {
    const ID: &'static str = "lines/1";
    const EXTENSION: &'static str = "txt";

    fn encode<W: Write + Send>(value: &Vec<String>, out: &mut W, _: &str) -> Result<(), BoxError> {
        Ok(out.write_all(value.join("\n").as_bytes())?)
    }

    fn decode(payload: Payload) -> Result<Vec<String>, BoxError> {
        let text = String::from_utf8(payload.into_bytes()?.to_vec())?;
        Ok(text.lines().map(str::to_owned).collect())
    }
}

#[stage(cache = Lines)]
fn numbers() -> Vec<u32> {
    vec![1, 2, 3]
}

fn main() {}
