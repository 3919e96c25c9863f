// fieldledger console: live board and operations (server-sent events), commands
// sent with If-Match. Hand-written, no dependencies; pages work without it.
"use strict";

function liveBoard() {
  const table = document.getElementById("board");
  if (!table || !table.dataset.stream) return;
  const body = document.getElementById("board-rows");
  const state = document.getElementById("live-state");
  let fetching = null;
  async function refresh(position) {
    // One fetch per change announced by the server; never a timer.
    const url = table.dataset.rows + (table.dataset.rows.includes("?") ? "&" : "?") +
      "min_position=" + encodeURIComponent(position);
    const response = await fetch(url, {headers: {"Accept": "text/html"}, credentials: "same-origin"});
    if (response.status === 401) { window.location.reload(); return; }
    if (!response.ok) return;
    // Keep the keyboard where it was: the same row's link, if it is still there.
    const focused = document.activeElement;
    const row = focused && body.contains(focused) ? focused.closest("tr[data-key]") : null;
    const key = row ? row.dataset.key : null;
    body.innerHTML = await response.text();
    if (key) {
      const again = body.querySelector(`tr[data-key="${CSS.escape(key)}"] a`);
      if (again) again.focus();
    }
    const counts = JSON.parse(response.headers.get("X-Counts") || "{}");
    for (const [status, count] of Object.entries(counts)) {
      const cell = document.querySelector(`#counts [data-status="${status}"]`);
      if (cell) cell.textContent = count;
    }
    if (state) state.textContent = state.dataset.liveText.replace("%(position)s", position);
    table.dataset.position = position;
  }
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("changed", (e) => {
    const position = JSON.parse(e.data).position;
    fetching = (fetching || Promise.resolve()).then(() => refresh(position));
  });
  source.addEventListener("signed-out", () => { source.close(); window.location.reload(); });
}

function liveOperations() {
  const table = document.getElementById("operations");
  if (!table || !table.dataset.stream) return;
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("status", (e) => {
    const snapshot = JSON.parse(e.data);
    const head = document.getElementById("ops-head");
    if (head) head.textContent = head.dataset.text.replace("%(head)s", snapshot.head);
    for (const p of snapshot.projections) {
      const row = table.querySelector(`tr[data-name="${p.name}"]`);
      if (!row) continue;
      row.querySelector(".position").textContent = p.position;
      row.querySelector(".lag").textContent = p.lag;
      row.querySelector(".generation").textContent = p.generation;
      row.querySelector(".error").textContent = p.error || "";
      if (p.building && !p.run) {  // a rebuild started elsewhere (CLI, another worker)
        row.querySelector(".progress").value = snapshot.head
          ? Math.min(99, Math.floor(p.building.position * 100 / snapshot.head)) : 0;
        row.querySelector(".run").textContent = `${p.building.position} / ${snapshot.head}`;
      }
      if (p.run) {
        row.querySelector(".progress").value = p.run.percent;
        row.querySelector(".run").textContent = p.run.finished
          ? (p.run.error || ("✓ g" + p.run.generation))
          : `${p.run.position} / ${p.run.head} (${p.run.rate}/s)`;
      }
    }
  });
}

function commandsWithIfMatch() {
  for (const form of document.querySelectorAll("form[data-if-match]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: {"If-Match": `"${form.dataset.ifMatch}"`},
        credentials: "same-origin",
      });
      if (response.redirected) { window.location.assign(response.url); return; }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const main = page.getElementById("main");
      if (main) {
        document.getElementById("main").replaceWith(main);
        commandsWithIfMatch();
        const alert = main.querySelector("[role=alert]");
        (alert || main).setAttribute("tabindex", "-1");
        (alert || main).focus();
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  liveBoard();
  liveOperations();
  commandsWithIfMatch();
});
