/**
 * The page's style and script, served from memory under /.fsd/ (nothing
 * comes from the network: the pages work in a lab without internet). The
 * script only adds to a page that works without it: filtering as you type,
 * and uploading chosen or dropped files with fetch, showing what each
 * became without a reload.
 */

export const APP_CSS = `
body { font: 18px/1.5 system-ui, sans-serif; margin: 0 auto; padding: 0 1rem; max-width: 60rem; color: #111; background: #fff; }
header { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 1rem; padding: .5rem 0; border-bottom: 1px solid #ccc; }
h1 { font-size: 1.6rem; word-break: break-all; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #eee; }
td:nth-child(2), th:nth-child(2) { text-align: right; white-space: nowrap; }
td:first-child { word-break: break-all; }
caption { text-align: left; color: #555; }
a { color: #0645ad; }
a:focus, button:focus, input:focus, .drop:focus { outline: 3px solid #f90; }
.filter, .upload form { margin: 1rem 0; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.drop { border: 2px dashed #888; padding: 1rem; width: 100%; text-align: center; }
.drop.over { background: #eef; }
.ok { color: #060; } .refused { color: #a00; }
.live { font-size: 1.4rem; } .live table { font-size: 1.3rem; }
progress { width: 10rem; height: 1.2rem; }
#ladder { font: 1.1rem/1.3 ui-monospace, monospace; white-space: pre; overflow-x: auto; }
@media (max-width: 40rem) { body { font-size: 16px; } td:nth-child(3), th:nth-child(3) { display: none; } }
`;

export const APP_JS = `"use strict";
(() => {
  const filter = document.getElementById("filter");
  const rows = [...document.querySelectorAll("#listing tbody tr[data-name]")];
  if (filter) filter.addEventListener("input", () => {
    const text = filter.value.toLowerCase();
    for (const row of rows) row.hidden = !row.dataset.name.includes(text);
  });
  const form = document.getElementById("upload");
  const results = document.getElementById("results");
  const show = (name, ok, message) => {
    const item = document.createElement("li");
    item.className = ok ? "ok" : "refused";
    item.textContent = name + ": " + message;
    results.append(item);
  };
  const send = async (files) => {
    const csrf = form.querySelector("[name=csrf]").value;
    for (const file of files) {
      const body = new FormData();
      body.append("csrf", csrf);
      body.append("file", file, file.name);
      try {
        const reply = await fetch(location.pathname, { method: "POST", body, headers: { accept: "application/json" } });
        const answer = await reply.json();
        for (const r of answer.results ?? [{ name: file.name, status: reply.status, message: answer.error }]) {
          show(r.name, r.status < 300, r.message);
        }
      } catch (error) {
        show(file.name, false, String(error));
      }
    }
  };
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send([...document.getElementById("files").files]);
    });
    const drop = document.getElementById("drop");
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      send([...event.dataTransfer.files]);
    });
  }
})();
`;
