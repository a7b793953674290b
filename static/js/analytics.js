// Draws the analytics page's charts from the figures it carries as JSON (the same tables the page
// shows and offers as CSV). Each canvas gets data-drawn="true" once its chart is drawn. The
// charts' words are looked up by their English text in the translations the page hands over
// (passes/web/script_text.py, ANALYTICS_TEXT).
"use strict";

(function () {
  const source = document.getElementById("figures");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  let TEXT = {};
  try {
    TEXT = JSON.parse((document.getElementById("analytics-text") || {}).textContent || "{}");
  } catch (ignored) {
    TEXT = {};
  }
  const t = (message) => TEXT[message] || message;
  const figures = JSON.parse(source.textContent);
  const column = (table, name) => {
    const index = table.columns.indexOf(name);
    return table.rows.map((row) => row[index]);
  };
  const overview = Object.fromEntries(figures.overview.rows);
  const common = { animation: false, responsive: true, maintainAspectRatio: false };

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    new Chart(canvas, { ...config, options: { ...common, ...(config.options || {}) } });
    canvas.dataset.drawn = "true";
  }

  const days = column(figures.daily, "day");
  draw("members-chart", {
    type: "line",
    data: {
      labels: days,
      datasets: [
        { label: t("Members in all"), data: column(figures.daily, "members"), borderColor: "#1f6feb" },
        { label: t("New members"), data: column(figures.daily, "joined"), borderColor: "#2da44e" },
      ],
    },
  });
  draw("purchases-chart", {
    type: "bar",
    data: {
      labels: days,
      datasets: [
        { label: t("Purchases"), data: column(figures.daily, "purchases"), backgroundColor: "#bf8700" },
      ],
    },
  });
  draw("wallets-chart", {
    type: "bar",
    data: {
      labels: [t("Members in all"), "Apple Wallet", "Google Wallet", t("Offered to Google")],
      datasets: [
        {
          label: t("Cards"),
          data: [
            overview.members,
            overview.cards_in_apple_wallet,
            overview.cards_in_google_wallet,
            overview.cards_offered_to_google_wallet,
          ],
          backgroundColor: ["#57606a", "#000000", "#1a73e8", "#8ab4f8"],
        },
      ],
    },
    options: { plugins: { legend: { display: false } } },
  });
  draw("tiers-chart", {
    type: "doughnut",
    data: {
      labels: column(figures.tiers, "tier"),
      datasets: [
        {
          data: column(figures.tiers, "members"),
          backgroundColor: ["#8c959f", "#bf8700", "#1f6feb", "#8250df", "#cf222e", "#2da44e"],
        },
      ],
    },
  });
  draw("campaigns-chart", {
    type: "bar",
    data: {
      labels: column(figures.campaigns, "campaign"),
      datasets: [
        { label: t("Reach"), data: column(figures.campaigns, "targeted"), backgroundColor: "#8c959f" },
        { label: t("Delivered"), data: column(figures.campaigns, "delivered"), backgroundColor: "#2da44e" },
      ],
    },
    options: { indexAxis: "y" },
  });
})();
