// promopool admin: live counts and the upload with progress. No framework, no build step.
"use strict";

function formatNumber(n) {
  return n.toLocaleString("en-US").replace(/,/g, "\u202f");
}

function showCounts(root, counts) {
  for (const [name, value] of Object.entries(counts)) {
    const cell = root.querySelector(`[data-count="${name}"]`);
    if (!cell) continue;
    const text = formatNumber(value);
    if (cell.textContent !== text) {
      cell.textContent = text;
      cell.classList.add("changed");
      setTimeout(() => cell.classList.remove("changed"), 1500);
    }
  }
}

async function refresh(live) {
  try {
    const response = await fetch(live.dataset.live, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const body = await response.json();
    if (body.pools) {
      for (const pool of body.pools) {
        const row = live.querySelector(`[data-pool="${pool.id}"]`);
        if (row) showCounts(row, pool);
      }
    } else {
      showCounts(live, body);
    }
  } catch (_) { /* offline for a moment: the next round tries again */ }
}

function upload(form) {
  const file = form.elements.file.files[0];
  const bar = form.querySelector("progress");
  const result = form.querySelector(".result");
  if (!file) return;
  const csrf = document.querySelector("main").dataset.csrf;
  const skip = form.elements.skip_invalid.checked ? "?skip_invalid=1" : "";
  const type = /\.csv$/i.test(file.name) || file.type === "text/csv" ? "text/csv" : "text/plain";
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.url + skip);
  xhr.setRequestHeader("Content-Type", type);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.setRequestHeader("X-CSRF-Token", csrf);
  bar.hidden = false;
  bar.value = 0;
  result.className = "result";
  result.textContent = `Uploading ${file.name}…`;
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
  };
  xhr.upload.onload = () => { bar.removeAttribute("value"); result.textContent = "Importing…"; };
  xhr.onload = () => {
    bar.hidden = true;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 200) {
      result.textContent = `Imported ${formatNumber(body.inserted)} new codes` +
        ` (${formatNumber(body.duplicates)} duplicates, ${formatNumber(body.invalid)} invalid skipped).`;
      const live = document.querySelector(".counts[data-live]");
      if (live) showCounts(live, body.counts);
      form.reset();
    } else {
      result.className = "result error";
      result.textContent = (body.error && body.error.message) || `Upload failed (HTTP ${xhr.status}).`;
    }
  };
  xhr.onerror = () => {
    bar.hidden = true;
    result.className = "result error";
    result.textContent = "Upload failed: the server could not be reached.";
  };
  xhr.send(file);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const live of document.querySelectorAll("[data-live]")) {
    setInterval(() => refresh(live), 5000);
  }
  const form = document.getElementById("upload");
  if (form) {
    form.addEventListener("submit", (event) => { event.preventDefault(); upload(form); });
  }
});
