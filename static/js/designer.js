// The card designer's live preview: whenever the form changes, the draft (uploads included) is
// sent to the preview endpoints and both pictures are replaced. Nothing is saved until the form
// is submitted. Each picture's data-version counts the previews shown, for tests.
"use strict";

(function () {
  const form = document.getElementById("design-form");
  if (!form) {
    return;
  }
  let TEXT = {};
  try {
    TEXT = JSON.parse((document.getElementById("designer-text") || {}).textContent || "{}");
  } catch (ignored) {
    TEXT = {};
  }
  const t = (message, values) =>
    Object.entries(values || {}).reduce(
      (text, [name, value]) => text.split("{" + name + "}").join(String(value)),
      TEXT[message] || message
    );
  const status = document.getElementById("preview-status");
  const problems = document.getElementById("preview-errors");
  const pictures = {
    apple: document.getElementById("preview-apple"),
    google: document.getElementById("preview-google"),
  };
  let timer = null;
  let generation = 0;

  function asDataUrl(blob) {
    // The site's policy allows data: images, not blob: ones.
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  function showProblems(list) {
    problems.replaceChildren(
      ...list.map((problem) => {
        const item = document.createElement("li");
        item.textContent = (problem.field || t("design")) + ": " + problem.message;
        return item;
      })
    );
  }

  async function refresh() {
    const mine = ++generation;
    status.textContent = t("Updating the preview\u2026");
    const body = new FormData(form);
    try {
      for (const [wallet, picture] of Object.entries(pictures)) {
        const response = await fetch(form.dataset["preview" + wallet[0].toUpperCase() + wallet.slice(1)], {
          method: "POST",
          body: body,
          credentials: "same-origin",
        });
        if (mine !== generation) {
          return; // a newer change is on its way
        }
        if (response.status === 422) {
          showProblems((await response.json()).errors);
          status.textContent = t("The preview shows the last valid design.");
          return;
        }
        if (!response.ok) {
          throw new Error("preview failed: " + response.status);
        }
        picture.src = await asDataUrl(await response.blob());
        picture.dataset.version = String(Number(picture.dataset.version || "0") + 1);
      }
      showProblems([]);
      status.textContent = t("Preview of a sample member's card (not saved yet).");
    } catch (error) {
      status.textContent = t("The preview could not be updated: {error}", { error: error.message });
    }
  }

  function changed() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.dataset.live = "true"; // previews follow the form from now on
})();
