/**
 * The directory page: breadcrumbs, a table of name, size and modified
 * time whose column headers sort it, a filter box, download links, and
 * (where uploads are allowed) an upload form, a drop zone and a form that
 * makes a directory. It works without JavaScript (sorting and filtering go
 * through the query); the page's one script (assets.ts) filters as you
 * type and uploads dropped files without a reload. Every name is escaped.
 */

import type { ListingEntry } from "../store/listing.ts";
import { encodePath } from "./target.ts";

export interface PageOptions {
  /** The directory's name ("" is the root). */
  name: string;
  entries: ListingEntry[];
  query: URLSearchParams;
  /** Uploads and new directories are allowed here: show the forms. */
  writable: boolean;
  /** The token a form must carry (CSRF). */
  csrf: string;
  /** Who is logged in (a server with accounts); "" for anonymous. */
  user?: string;
  /** The server has accounts: show a login or logout form. */
  accounts: boolean;
}

/** Text safe inside HTML elements and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** 1234567 → "1.2 MiB". */
export function humanSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[unit]}`;
}

type SortKey = "name" | "size" | "mtime";

/** The page's HTML. */
export function directoryPage(o: PageOptions): string {
  const sort = (["name", "size", "mtime"] as const).find((k) => k === o.query.get("sort")) ??
    "name";
  const descending = o.query.get("order") === "desc";
  const filter = o.query.get("filter") ?? "";
  const shown = sorted(o.entries, sort, descending).filter((e) =>
    e.name.toLowerCase().includes(filter.toLowerCase())
  );
  const title = `/${o.name}${o.name ? "/" : ""}`;
  const header = (key: SortKey, label: string) => {
    const order = sort === key && !descending ? "desc" : "asc";
    const aria = sort === key ? ` aria-sort="${descending ? "descending" : "ascending"}"` : "";
    const q = new URLSearchParams({ sort: key, order, ...(filter && { filter }) });
    return `<th scope="col"${aria}><a href="?${escapeHtml(q.toString())}">${label}</a></th>`;
  };
  const rows = shown.map((e) => {
    const href = encodePath(e.name) + (e.kind === "d" ? "/" : "");
    const label = escapeHtml(e.name) + (e.kind === "d" ? "/" : "");
    const link = e.kind === "d"
      ? `<a href="${escapeHtml(href)}">${label}</a>`
      : `<a href="${escapeHtml(href)}" download>${label}</a>`;
    return `<tr data-name="${escapeHtml(e.name.toLowerCase())}"><td>${link}</td>` +
      `<td data-value="${e.size}">${e.kind === "d" ? "—" : humanSize(e.size)}</td>` +
      `<td><time datetime="${e.mtime.toISOString()}">${
        e.mtime.toISOString().slice(0, 16).replace("T", " ")
      }</time></td></tr>`;
  }).join("\n");
  const parent = o.name === "" ? "" : `<tr><td><a href="../">../</a></td><td></td><td></td></tr>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — fsd</title>
<link rel="stylesheet" href="/.fsd/app.css">
<script src="/.fsd/app.js" defer></script>
</head>
<body>
<header>
<nav aria-label="Breadcrumbs">${breadcrumbs(o.name)}</nav>
${account(o)}
</header>
<main>
<h1>${escapeHtml(title)}</h1>
<form method="get" role="search" class="filter">
<label for="filter">Filter</label>
<input id="filter" name="filter" type="search" value="${escapeHtml(filter)}" autocomplete="off">
<input type="hidden" name="sort" value="${sort}">
<input type="hidden" name="order" value="${descending ? "desc" : "asc"}">
<button type="submit">Filter</button>
</form>
<table id="listing">
<caption>${shown.length} of ${o.entries.length} entries</caption>
<thead><tr>${header("name", "Name")}${header("size", "Size")}${
    header("mtime", "Modified (UTC)")
  }</tr></thead>
<tbody>
${parent}
${rows}
</tbody>
</table>
${o.writable ? uploadForms(o.csrf) : ""}
</main>
</body>
</html>
`;
}

function sorted(entries: ListingEntry[], key: SortKey, descending: boolean): ListingEntry[] {
  const by = {
    name: (a: ListingEntry, b: ListingEntry) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    size: (a: ListingEntry, b: ListingEntry) => a.size - b.size,
    mtime: (a: ListingEntry, b: ListingEntry) => a.mtime.getTime() - b.mtime.getTime(),
  }[key];
  const out = [...entries].sort((a, b) => by(a, b) || (a.name < b.name ? -1 : 1));
  return descending ? out.reverse() : out;
}

function breadcrumbs(name: string): string {
  const parts = name === "" ? [] : name.split("/");
  const links = [`<a href="/">root</a>`];
  parts.forEach((part, i) => {
    const href = "/" + encodePath(parts.slice(0, i + 1).join("/")) + "/";
    const current = i === parts.length - 1 ? ` aria-current="page"` : "";
    links.push(`<a href="${escapeHtml(href)}"${current}>${escapeHtml(part)}</a>`);
  });
  return links.join(" / ");
}

function account(o: PageOptions): string {
  if (!o.accounts) return "";
  if (o.user) {
    return `<form method="post" action="/.fsd/logout" class="account">Signed in as <strong>${
      escapeHtml(o.user)
    }</strong> <input type="hidden" name="csrf" value="${o.csrf}"><button type="submit">Sign out</button></form>`;
  }
  return loginForm(o.csrf, "");
}

/** The login form (the page of a 401 for browsers, and the header of an anonymous page). */
export function loginForm(csrf: string, message: string): string {
  return `<form method="post" action="/.fsd/login" class="account" id="login">
${message ? `<p role="alert">${escapeHtml(message)}</p>` : ""}
<label for="user">User</label> <input id="user" name="user" autocomplete="username" required>
<label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="csrf" value="${csrf}">
<button type="submit">Sign in</button>
</form>`;
}

/** A whole page that asks for a login. */
export function loginPage(csrf: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — fsd</title><link rel="stylesheet" href="/.fsd/app.css"></head>
<body><main><h1>Sign in</h1>
${loginForm(csrf, message)}
</main></body></html>
`;
}

function uploadForms(csrf: string): string {
  return `<section aria-labelledby="upload-title" class="upload">
<h2 id="upload-title">Upload</h2>
<form method="post" enctype="multipart/form-data" id="upload">
<input type="hidden" name="csrf" value="${csrf}">
<label for="files">Files</label>
<input id="files" name="file" type="file" multiple required>
<button type="submit">Upload</button>
<p id="drop" class="drop" tabindex="0">…or drop files here</p>
</form>
<form method="post" enctype="multipart/form-data" id="mkdir">
<input type="hidden" name="csrf" value="${csrf}">
<label for="dirname">New directory</label>
<input id="dirname" name="mkdir" required>
<button type="submit">Create</button>
</form>
<ul id="results" aria-live="polite"></ul>
</section>`;
}

/** The page a form upload without script answers: what each file became. */
export function resultsPage(results: { name: string; status: number; message: string }[]): string {
  const items = results.map((r) =>
    `<li class="${r.status < 300 ? "ok" : "refused"}">${escapeHtml(r.name)}: ${
      escapeHtml(r.message)
    }</li>`
  ).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upload — fsd</title><link rel="stylesheet" href="/.fsd/app.css"></head>
<body><main><h1>Upload</h1><ul id="results">${items}</ul>
<p><a href="./">Back to the directory</a></p></main></body></html>
`;
}
