//! A folder of images → a thumbnail of each → the edges of each thumbnail → one collage.
//!
//! `thumbnail` and `edges` are per-item stages: one cached call per image, keyed by the
//! image's path and content, never by its position in the folder. Add an image to
//! `examples/data/photos` (any 8-bit binary PGM) and run again: one thumbnail, one edge
//! image and the collage are computed; every other image is read from the cache.
//!
//! ```sh
//! cargo run --example collage        # writes target/collage.pgm
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use stage::{Items, stage};

/// A grayscale image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Gray levels, row after row.
    pub pixels: Vec<u8>,
}

impl Image {
    /// Reads an 8-bit binary PGM (`P5`) file.
    ///
    /// # Errors
    /// When the file cannot be read or is not such a file.
    pub fn read_pgm(path: &Path) -> Result<Image, Box<dyn std::error::Error + Send + Sync>> {
        let bytes = std::fs::read(path)?;
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let start = at;
            while bytes.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
                at += 1;
            }
            fields.push(std::str::from_utf8(
                bytes.get(start..at).ok_or("short header")?,
            )?);
        }
        if fields[0] != "P5" || fields[3] != "255" {
            return Err(format!("{}: not an 8-bit binary PGM", path.display()).into());
        }
        let (width, height): (usize, usize) = (fields[1].parse()?, fields[2].parse()?);
        let pixels = bytes
            .get(at + 1..at + 1 + width * height)
            .ok_or_else(|| format!("{}: too few pixels", path.display()))?
            .to_vec();
        Ok(Image {
            width,
            height,
            pixels,
        })
    }

    /// The image as an 8-bit binary PGM file.
    #[must_use]
    pub fn to_pgm(&self) -> Vec<u8> {
        let mut out = format!("P5\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }

    fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y.min(self.height - 1) * self.width + x.min(self.width - 1)]
    }
}

/// Half the size: each pixel the mean of a 2×2 block.
#[stage(photo = each("examples/data/photos"), cache = bincode)]
pub fn thumbnail(photo: &Path) -> Result<Image, Box<dyn std::error::Error + Send + Sync>> {
    let image = Image::read_pgm(photo)?;
    let (width, height) = (image.width / 2, image.height / 2);
    let pixels = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| {
            let sum: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                .iter()
                .map(|(dx, dy)| u32::from(image.at(2 * x + dx, 2 * y + dy)))
                .sum();
            u8::try_from(sum / 4).unwrap_or(u8::MAX)
        })
        .collect();
    Ok(Image {
        width,
        height,
        pixels,
    })
}

/// The edges of a thumbnail: the gradient's magnitude, scaled by `strength`.
#[stage(thumb = each(thumbnail), cache = bincode)]
pub fn edges(thumb: &Image, strength: u32) -> Image {
    let pixels = (0..thumb.height)
        .flat_map(|y| (0..thumb.width).map(move |x| (x, y)))
        .map(|(x, y)| {
            let dx = i32::from(thumb.at(x + 1, y)) - i32::from(thumb.at(x.saturating_sub(1), y));
            let dy = i32::from(thumb.at(x, y + 1)) - i32::from(thumb.at(x, y.saturating_sub(1)));
            let magnitude = dx.unsigned_abs() + dy.unsigned_abs();
            u8::try_from((magnitude * strength / 2).min(255)).unwrap_or(u8::MAX)
        })
        .collect();
    Image {
        pixels,
        ..thumb.clone()
    }
}

/// Every edge image side by side, in the order of the photos' names. The items are read
/// one at a time.
#[stage(all = edges(strength), cache = bincode)]
pub fn collage(all: &Items<Image>, strength: u32) -> Result<Image, stage::Error> {
    let _ = strength;
    let mut tiles = Vec::with_capacity(all.len());
    for tile in all.iter() {
        tiles.push(tile?);
    }
    let height = tiles.iter().map(|t| t.height).max().unwrap_or(0);
    let width: usize = tiles.iter().map(|t| t.width).sum();
    let mut pixels = vec![0; width * height];
    let mut left = 0;
    for tile in &tiles {
        for y in 0..tile.height {
            let row = &tile.pixels[y * tile.width..(y + 1) * tile.width];
            pixels[y * width + left..y * width + left + tile.width].copy_from_slice(row);
        }
        left += tile.width;
    }
    Ok(Image {
        width,
        height,
        pixels,
    })
}

#[allow(
    dead_code,
    reason = "also compiled into tests/examples.rs, which has its own main"
)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (image, log) = stage::observe(|| collage(3));
    let image = image?;
    std::fs::create_dir_all("target")?;
    std::fs::write("target/collage.pgm", image.to_pgm())?;
    print!("{log}");
    println!(
        "collage: {}x{} pixels from {} photos, in target/collage.pgm",
        image.width,
        image.height,
        thumbnail()?.len()
    );
    Ok(())
}
