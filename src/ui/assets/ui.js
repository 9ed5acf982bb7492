// lab ui: live regions, sortable tables, tags, notes and copy buttons.
// No framework: the server renders every chart; this only swaps fragments.
"use strict";

const POLL_MS = 1500;
const sorts = {}; // table key -> {col, dir}, re-applied after each refresh

function tableKey(table, i) {
  return (table.className || "table") + ":" + i;
}

function cellValue(row, col) {
  const cell = row.cells[col];
  if (!cell) return "";
  const text = cell.textContent.trim();
  const num = parseFloat(text.replace(/^[^0-9+\-.]*/, ""));
  return Number.isFinite(num) && /^[^a-zA-Z]*[0-9]/.test(text) ? num : text.toLowerCase();
}

function sortTable(table, col, dir) {
  const rows = [...table.rows].filter(r => !r.querySelector("th"));
  rows.sort((a, b) => {
    const x = cellValue(a, col), y = cellValue(b, col);
    if (x === y) return 0;
    if (x === "" || x === "-") return 1;
    if (y === "" || y === "-") return -1;
    const c = typeof x === typeof y ? (x < y ? -1 : 1) : (typeof x === "number" ? -1 : 1);
    return dir === "ascending" ? c : -c;
  });
  const parent = rows.length ? rows[0].parentNode : null;
  rows.forEach(r => parent.appendChild(r));
  table.querySelectorAll("th").forEach((th, i) => {
    if (i === col) th.setAttribute("aria-sort", dir); else th.removeAttribute("aria-sort");
  });
}

function setUpSorting(root) {
  root.querySelectorAll("table.sortable, table.leaderboard").forEach((table, i) => {
    const key = tableKey(table, i);
    const header = table.rows[0];
    if (!header) return;
    [...header.cells].forEach((th, col) => {
      th.addEventListener("click", () => {
        const dir = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
        sorts[key] = { col, dir };
        sortTable(table, col, dir);
      });
    });
    if (sorts[key]) sortTable(table, sorts[key].col, sorts[key].dir);
  });
}

async function poll(region) {
  try {
    const r = await fetch(region.dataset.stampSrc, { cache: "no-store" });
    if (r.ok) {
      const stamp = (await r.json()).stamp;
      if (stamp !== region.dataset.stamp) {
        const page = await fetch(region.dataset.live, { cache: "no-store" });
        if (page.ok) {
          region.innerHTML = await page.text();
          region.dataset.stamp = stamp;
          region.dataset.refreshed = String(Number(region.dataset.refreshed || 0) + 1);
          setUpSorting(region);
        }
      }
    }
  } catch (e) {
    // The server may be restarting: try again on the next tick.
  }
  setTimeout(() => poll(region), POLL_MS);
}

async function send(method, url, body) {
  const r = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(json.error || r.statusText);
  return json;
}

function showStatus(el, text, ok) {
  el.textContent = text;
  el.classList.toggle("err", !ok);
}

function renderTags(box, tags) {
  const list = box.querySelector(".tag-list");
  list.replaceChildren(...tags.map(t => {
    const span = document.createElement("span");
    span.className = "tag";
    span.dataset.tag = t;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "remove";
    button.title = "remove";
    button.textContent = "×";
    span.append(t + " ", button);
    return span;
  }));
}

function setUpTags(box) {
  const status = box.querySelector(".status");
  box.querySelector("form.add-tag").addEventListener("submit", async ev => {
    ev.preventDefault();
    const input = ev.target.elements.tag;
    try {
      const r = await send("POST", box.dataset.api + "/tags", { tag: input.value });
      renderTags(box, r.tags);
      input.value = "";
      showStatus(status, "saved", true);
    } catch (e) {
      showStatus(status, e.message, false);
    }
  });
  box.addEventListener("click", async ev => {
    if (!ev.target.classList.contains("remove")) return;
    const tag = ev.target.closest(".tag").dataset.tag;
    try {
      const r = await send("DELETE", box.dataset.api + "/tags/" + encodeURIComponent(tag));
      renderTags(box, r.tags);
      showStatus(status, "removed", true);
    } catch (e) {
      showStatus(status, e.message, false);
    }
  });
}

function setUpNote(form) {
  const status = form.querySelector(".status");
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    try {
      await send("PUT", form.dataset.api + "/note", { note: form.elements.note.value });
      showStatus(status, "saved", true);
    } catch (e) {
      showStatus(status, e.message, false);
    }
  });
}

async function loadLazy(div) {
  try {
    const r = await fetch(div.dataset.src, { cache: "no-store" });
    div.innerHTML = r.ok ? await r.text() : "<p class=\"error\">" + r.statusText + "</p>";
  } catch (e) {
    div.textContent = "Could not load: " + e.message;
  }
  div.dataset.loaded = "true";
}

document.addEventListener("click", async ev => {
  const b = ev.target.closest("button.copy");
  if (!b) return;
  try {
    await navigator.clipboard.writeText(b.dataset.copy);
    b.textContent = "Copied";
  } catch (e) {
    // Clipboard refused (no HTTPS, no permission): select the text to copy by hand.
    const code = b.parentNode.querySelector("code");
    const range = document.createRange();
    range.selectNodeContents(code);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    b.textContent = "Selected: press Ctrl-C";
  }
});

setUpSorting(document);
document.querySelectorAll("div.tags[data-api]").forEach(setUpTags);
document.querySelectorAll("form.note[data-api]").forEach(setUpNote);
document.querySelectorAll("div.lazy[data-src]").forEach(loadLazy);
document.querySelectorAll("[data-live]").forEach(r => setTimeout(() => poll(r), POLL_MS));
