// promopool admin: a job's page follows the job until it ends. No framework, no build step.
"use strict";

function groupDigits(n) {
  return n.toLocaleString("en-US").replace(/,/g, "\u202f");
}

async function follow(card) {
  const bar = card.querySelector("progress");
  const field = (name) => card.querySelector(`[data-field="${name}"]`);
  while (card.dataset.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let job;
    try {
      const response = await fetch(card.dataset.progress, { headers: { Accept: "application/json" } });
      if (!response.ok) continue;
      job = await response.json();
    } catch (_) {
      continue; // offline for a moment: the next round tries again
    }
    bar.value = job.done;
    field("done").textContent = groupDigits(job.done);
    const state = field("state");
    state.textContent = job.state;
    state.className = `badge job-${job.state}`;
    if (job.error) {
      field("error").textContent = job.error;
      field("error").hidden = false;
    }
    card.dataset.state = job.state;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const card = document.getElementById("job");
  if (card) follow(card);
});
