//! The web page served at `/`: one self-contained HTML file (no external assets).

pub const PAGE: &str = include_str!("page.html");
