//! The HTML pages: a shared layout, the tag and note editors, and the page
//! script. Each page module renders one page and its live fragment.

pub mod compare;
pub mod experiment;
pub mod experiments;
pub mod trial;

use super::Failure;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = include_str!("../assets/ui.css");
const JS: &str = include_str!("../assets/ui.js");

/// `GET /assets/ui.js`: the page script (live regions, sorting, tags, notes, copy).
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
        .into_response()
}

/// A whole page: `title` in the tab, a breadcrumb `nav`, then `body`.
pub fn layout(title: &str, crumbs: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · lab ui" }
                style { (PreEscaped(crate::report::STYLE)) (PreEscaped(CSS)) }
            }
            body {
                nav.crumbs { a href="/" { "lab" } (crumbs) }
                (body)
                script src="/assets/ui.js" {}
            }
        }
    }
}

/// A rendered page, or its failure as a page.
pub fn respond(result: Result<Markup, Failure>) -> Response {
    match result {
        Ok(markup) => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(markup.into_string()),
        )
            .into_response(),
        Err(f) => f.page(),
    }
}

/// A live fragment (HTML without the layout), or its failure as JSON.
pub fn fragment(result: Result<Markup, Failure>) -> Response {
    match result {
        Ok(markup) => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(markup.into_string()),
        )
            .into_response(),
        Err(f) => f.into_response(),
    }
}

/// The tags of a trial or experiment with remove buttons, and a field to add
/// one; `api` is the target's JSON path (`/api/trials/3`).
pub fn tag_editor(api: &str, tags: &[String]) -> Markup {
    html! {
        div.tags data-api=(api) {
            span.label { "Tags:" }
            span.tag-list {
                @for t in tags {
                    span.tag data-tag=(t) { (t) " " button.remove type="button" title="remove" { "×" } }
                }
            }
            form.add-tag {
                input name="tag" placeholder="add a tag" maxlength="64" required;
                button type="submit" { "Add" }
            }
            span.status {}
        }
    }
}

/// The note of a trial or experiment, editable.
pub fn note_editor(api: &str, note: Option<&str>) -> Markup {
    html! {
        form.note data-api=(api) {
            label { "Note" br; textarea name="note" rows="3" cols="70" { (note.unwrap_or("")) } }
            br;
            button type="submit" { "Save note" }
            span.status {}
        }
    }
}

/// A command with a button that copies it.
pub fn copy_command(command: &str) -> Markup {
    html! {
        div.command {
            code { (command) }
            button.copy type="button" data-copy=(command) { "Copy" }
        }
    }
}

/// An SVG chart or another fragment `report` rendered (escaped there).
pub fn raw(html: String) -> PreEscaped<String> {
    PreEscaped(html)
}

/// The five status counts as coloured labels.
pub fn counts(c: &crate::store::StatusCounts) -> Markup {
    html! {
        span.counts {
            span.st.done { (c.done) " done" } " "
            span.st.running { (c.running) " running" } " "
            span.st.pending { (c.pending) " pending" } " "
            span.st.failed { (c.failed) " failed" } " "
            span.st.pruned { (c.pruned) " pruned" }
        }
    }
}
