//! SVG charts rasterised to PNG (resvg), with the system's fonts for the text.
//! Behind the default-on `png` cargo feature: resvg brings about 56 crates, and a
//! build without it (`--no-default-features`) refuses PNG output with a message.

use anyhow::{bail, Result};

/// Why a build without the `png` feature writes no PNG.
const NO_PNG: &str =
    "this lab was built without the `png` feature; use .svg or rebuild with --features png";

/// Whether this build can write PNG.
///
/// # Errors
/// Without the `png` cargo feature: says so, and what to do instead.
pub fn png_support() -> Result<()> {
    if cfg!(feature = "png") {
        Ok(())
    } else {
        bail!(NO_PNG)
    }
}

/// PNG bytes of `svg`, drawn at `scale` times its size.
///
/// # Errors
/// Without the `png` feature (see [`png_support`]).
#[cfg(not(feature = "png"))]
pub fn svg_to_png(_svg: &str, _scale: f32) -> Result<Vec<u8>> {
    bail!(NO_PNG)
}

/// PNG bytes of `svg`, drawn at `scale` times its size (pixels: the SVG's
/// width and height times `scale`).
///
/// # Errors
/// When `svg` does not parse, has no size, or the image cannot be allocated or
/// encoded.
#[cfg(feature = "png")]
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    use anyhow::{anyhow, Context};
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // The charts ask for "sans-serif": map it to a sans face this system has.
    let family = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .find(|name| name.contains("Sans") && !name.contains("Mono"))
        .or_else(|| {
            fonts
                .faces()
                .next()
                .and_then(|f| f.families.first())
                .map(|(n, _)| n.clone())
        });
    if let Some(family) = family {
        fonts.set_sans_serif_family(family.clone());
        options.font_family = family;
    }
    let tree = usvg::Tree::from_str(svg, &options).context("the chart is not valid SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .context("empty chart")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow!("cannot allocate a {}x{} image", size.width(), size.height()))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("cannot encode the PNG")
}
