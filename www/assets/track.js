// Conversion buttons: POST the button's metric (and value) to the edge's first-party endpoint,
// which attaches the visitor's unit and forwards it signed to the collector. The event id makes a
// double click or a retried request count once.
for (const button of /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll("button.convert"))) {
  button.addEventListener("click", async () => {
    // Each button names the element its outcome is shown in (data-status); the pages have it.
    const status = /** @type {HTMLElement} */ (document.getElementById(String(button.dataset.status)));
    const event = { metric: button.dataset.metric, id: crypto.randomUUID() };
    if (button.dataset.value) event.value = Number(button.dataset.value);
    button.disabled = true;
    try {
      const response = await fetch("/_cohort/track", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(event),
      });
      status.textContent = response.ok ? (button.dataset.thanks ?? "") : `Could not record that (${response.status}).`;
    } catch (error) {
      status.textContent = `Could not record that (${/** @type {Error} */ (error).message}).`;
    } finally {
      button.disabled = false;
    }
  });
}
