// The analytics dashboard: reads /v1/analytics/*, /v1/batches and /v1/stream/lag with an analyst token and draws
// Vega-Lite charts (vendored libraries, SVG renderer, no eval: `ast: true` runs Vega's expression interpreter, so
// the page works under a script-src 'self' Content-Security-Policy).
//
// The token: from the URL fragment (#token=..., never sent to a server; removed from the address bar at once) or
// typed into the form; kept in sessionStorage for this tab only. A 401 forgets it and asks again.
"use strict";

(() => {
  const TOKEN_KEY = "claims.dashboard.token";
  const MAX_PAGES = 50;
  const TOP_REASONS = 10;
  const EMBED_OPTIONS = { renderer: "svg", actions: false, ast: true, mode: "vega-lite" };
  // What the page read and drew, for people debugging it and for the browser test (compared with the API).
  const state = { rows: {}, views: {}, errors: [] };
  window.claimsDashboard = state;

  class ApiError extends Error {
    constructor(status, detail, path) {
      super(`${path}: ${status} ${detail}`);
      this.status = status;
      this.detail = detail;
    }
  }

  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function takeTokenFromFragment() {
    const match = /(?:^|&)token=([^&]+)/.exec(window.location.hash.slice(1));
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  }

  function filters() {
    const params = new URLSearchParams(window.location.search);
    const chosen = new URLSearchParams();
    for (const name of ["from", "to"]) {
      const value = params.get(name);
      if (value) {
        chosen.set(name, value);
        $(name).value = value;
      }
    }
    return chosen;
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        // not a problem document: keep the status text
      }
      throw new ApiError(response.status, detail, path.split("?")[0]);
    }
    return response.json();
  }

  async function allRows(path) {
    const rows = [];
    let url = path;
    for (let page = 0; url && page < MAX_PAGES; page += 1) {
      const answer = await api(url);
      rows.push(...answer.rows);
      url = answer.next;
    }
    return rows;
  }

  async function chart(id, rows, spec) {
    const element = $(id);
    state.rows[id] = rows;
    element.dataset.rows = String(rows.length);
    if (!rows.length) {
      element.innerHTML = '<p class="empty">no data for these days</p>';
      return;
    }
    const full = { width: "container", height: 200, datasets: { rows }, data: { name: "rows" }, ...spec };
    const result = await vegaEmbed(element, full, EMBED_OPTIONS);
    state.views[id] = result.view;
  }

  const day = { field: "intake_date", type: "temporal", timeUnit: "utcyearmonthdate", title: "intake day" };

  function drawSummary(rows) {
    return Promise.all([
      chart("chart-claims", rows, {
        mark: { type: "bar", tooltip: true },
        encoding: { x: day, y: { aggregate: "sum", field: "claims", type: "quantitative", title: "claims" },
                    color: { field: "claim_type", type: "nominal", title: "claim type" } },
      }),
      chart("chart-billed", rows, {
        mark: { type: "line", point: true, tooltip: true },
        encoding: { x: day, y: { aggregate: "sum", field: "billed_amount", type: "quantitative",
                                 title: "billed (USD)", axis: { format: "~s" } } },
      }),
    ]);
  }

  function drawQuality(rows) {
    const ratios = rows.filter((row) => row.valid_ratio !== null);
    // Each (day, source format) row carries its own top reasons; the chart sums them and keeps the TOP_REASONS most
    // frequent codes, so it stays readable over many days.
    const totals = new Map();
    for (const row of rows) {
      for (const reason of row.top_reasons) {
        totals.set(reason.reason_code, (totals.get(reason.reason_code) || 0) + reason.claim_count);
      }
    }
    const reasons = [...totals.entries()].map(([reason_code, claim_count]) => ({ reason_code, claim_count }))
      .sort((a, b) => b.claim_count - a.claim_count || a.reason_code.localeCompare(b.reason_code))
      .slice(0, TOP_REASONS);
    return Promise.all([
      chart("chart-valid", ratios, {
        mark: { type: "line", point: true, tooltip: true },
        encoding: { x: day, y: { field: "valid_ratio", type: "quantitative", title: "valid ratio",
                                 scale: { zero: false }, axis: { format: "%" } },
                    color: { field: "source_format", type: "nominal", title: "source format" } },
      }),
      chart("chart-reasons", reasons, {
        mark: { type: "bar", tooltip: true },
        encoding: { y: { field: "reason_code", type: "nominal", sort: "-x", title: "reason code" },
                    x: { field: "claim_count", type: "quantitative", title: "quarantined claims" } },
      }),
    ]);
  }

  function drawFraud(rows) {
    return chart("chart-fraud", rows, {
      mark: { type: "bar", tooltip: true },
      encoding: { x: { field: "rule", type: "nominal", sort: "-y", title: "rule", axis: { labelAngle: -30 } },
                  y: { aggregate: "sum", field: "alerts", type: "quantitative", title: "alerted claims" } },
    });
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function fillTable(id, rows, columns, emptyText) {
    const body = $(id).querySelector("tbody");
    body.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const [key, className] of columns) tr.append(cell(typeof key === "function" ? key(row) : row[key], className));
      body.append(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(emptyText, "empty");
      td.colSpan = columns.length;
      tr.append(td);
      body.append(tr);
    }
  }

  function drawBatches(answer) {
    const rows = [
      ...answer.jobs.map((job) => ({ batch_run_id: job.batch_run_id || job.job_id, run_date: job.run_date,
                                     status: job.status, started_at: job.started_at,
                                     duration_seconds: null, valid_rows: null, quarantined_rows: null })),
      ...(answer.ledger || []),
    ];
    state.rows.batches = rows;
    fillTable("batches", rows, [["batch_run_id"], ["run_date"], ["status"], ["started_at"],
      [(row) => (row.duration_seconds === null ? "" : row.duration_seconds.toFixed(1)), "num"],
      ["valid_rows", "num"], ["quarantined_rows", "num"]], answer.ledger_note || "no batch runs yet");
    for (const tr of $("batches").querySelectorAll("tbody tr")) {
      const status = tr.children[2];
      if (status) status.className = `status-${status.textContent}`;
    }
  }

  function drawProviders(rows) {
    state.rows.providers = rows;
    const money = (row) => row.billed_amount.toLocaleString("en-US", { style: "currency", currency: "USD" });
    fillTable("providers", rows, [["npi"], ["specialty"], ["claims", "num"], [money, "num"],
      ["alerted_claims", "num"], ["alerts", "num"]], "no billing providers for these days");
  }

  function drawLag(lag) {
    state.rows.lag = lag;
    const tile = $("stream-lag");
    tile.replaceChildren();
    const detail = document.createElement("small");
    detail.textContent = lag.detail;
    if (lag.available) {
      tile.append(`${lag.lag_messages.toLocaleString("en-US")} messages behind`);
      tile.dataset.lag = String(lag.lag_messages);
    } else {
      tile.append("no stream metrics");
      tile.dataset.lag = "none";
    }
    tile.append(detail);
  }

  function askForToken(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token-panel").hidden = false;
    $("status").textContent = message || "";
    document.body.dataset.state = "needs-token";
  }

  async function load() {
    if (!token()) {
      askForToken("");
      return;
    }
    $("token-panel").hidden = true;
    document.body.dataset.state = "loading";
    const query = filters().toString();
    const withFilters = (path, extra) => `${path}?${[query, extra].filter(Boolean).join("&")}`;
    const tasks = [
      allRows(withFilters("/v1/analytics/summary", "limit=1000")).then(drawSummary),
      allRows(withFilters("/v1/analytics/quality", "limit=1000&top=5")).then(drawQuality),
      allRows(withFilters("/v1/analytics/fraud", "limit=1000")).then(drawFraud),
      api(withFilters("/v1/analytics/providers", "limit=10")).then((answer) => drawProviders(answer.rows)),
      api("/v1/batches").then(drawBatches),
      api("/v1/stream/lag").then(drawLag),
    ];
    const results = await Promise.allSettled(tasks);
    const failures = results.filter((result) => result.status === "rejected").map((result) => result.reason);
    state.errors = failures.map((failure) => String(failure.message || failure));
    if (failures.some((failure) => failure.status === 401)) {
      askForToken("The token was refused (401): paste a fresh analyst token.");
      return;
    }
    const forbidden = failures.find((failure) => failure.status === 403);
    const first = forbidden || failures[0];
    $("status").textContent = first ? (first.detail || String(first)) : "";
    document.body.dataset.state = failures.length ? "partial" : "ready";
  }

  function start() {
    takeTokenFromFragment();
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      $("token-input").value = "";
      load();
    });
    $("forget-token").addEventListener("click", () => askForToken("Token forgotten."));
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      for (const name of ["from", "to"]) if ($(name).value) params.set(name, $(name).value);
      history.replaceState(null, "", `${window.location.pathname}${params.toString() ? `?${params}` : ""}`);
      load();
    });
    load();
  }

  start();
})();
