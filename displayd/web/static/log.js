// The rotation log page: filters live in this page's own URL (a plain GET form), the rows
// come from GET /api/v1/rotations with the same filters, "Tải CSV" asks the API for CSV,
// and "Trang sau" follows next_cursor.
"use strict";

(() => {
  const PAGE_SIZE = 100;
  const VN_OFFSET = "+07:00";  // Việt Nam has no daylight saving time
  const params = new URLSearchParams(location.search);
  const form = document.getElementById("filters");
  const rows = document.getElementById("rows");
  const status = document.getElementById("status");
  const csv = document.getElementById("csv");
  const next = document.getElementById("next");
  const first = document.getElementById("first");
  const names = {boards: new Map(), campaigns: new Map(), zones: new Map(), slogans: new Map()};

  function nextDay(day) {
    const [y, m, d] = day.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
  }

  // The API's filters from the form's: dates become instants on Việt Nam's wall clock.
  function filters() {
    const query = new URLSearchParams();
    for (const name of ["board_id", "campaign_id", "slogan_id", "status"]) {
      const value = params.get(name);
      if (value) query.set(name, value);
    }
    const from = params.get("from");
    const to = params.get("to");
    if (/^\d{4}-\d{2}-\d{2}$/.test(from || "")) query.set("from", `${from}T00:00:00${VN_OFFSET}`);
    if (/^\d{4}-\d{2}-\d{2}$/.test(to || "")) query.set("to", `${nextDay(to)}T00:00:00${VN_OFFSET}`);
    return query;
  }

  function fill(select, items, label) {
    const chosen = params.get(select.name) || "";
    for (const item of items) {
      const option = ui.el("option", label(item));
      option.value = String(item.id);
      select.append(option);
    }
    select.value = chosen;
    if (select.value !== chosen) {  // a filter naming something deleted or retired still shows
      const option = ui.el("option", `#${chosen}`);
      option.value = chosen;
      select.append(option);
      select.value = chosen;
    }
  }

  async function loadChoices() {
    const [boards, campaigns, slogans] = await Promise.all([
      ui.api("/api/v1/boards?limit=1000"), ui.api("/api/v1/campaigns?limit=1000"),
      ui.api("/api/v1/slogans?limit=1000"),
    ]);
    for (const b of boards.items) names.boards.set(b.id, b.name);
    for (const c of campaigns.items) { names.campaigns.set(c.id, c.name); names.zones.set(c.id, c.timezone); }
    for (const s of slogans.items) names.slogans.set(s.id, s.text);
    fill(document.getElementById("f-board"), boards.items, (b) => `${b.name} (${b.id})`);
    fill(document.getElementById("f-campaign"), campaigns.items, (c) => c.name);
    fill(document.getElementById("f-slogan"), slogans.items,
      (s) => `#${s.id} ${s.text.length > 60 ? s.text.slice(0, 59) + "…" : s.text}`);
  }

  function row(item) {
    const tr = document.createElement("tr");
    tr.className = `st-${item.push_status}`;
    tr.dataset.board = item.board_id;
    const zone = names.zones.get(item.campaign_id) || ui.ZONE;
    const cells = [
      ui.time(item.starts_at, zone), ui.clock(item.ends_at, zone),
      names.boards.get(item.board_id) || item.board_id,
      names.campaigns.get(item.campaign_id) || `#${item.campaign_id}`,
      item.slot_index,
      names.slogans.get(item.slogan_id) || `#${item.slogan_id}`,
      ui.PUSH_STATUS[item.push_status] || item.push_status,
      item.attempts ?? "", item.revisions ?? "", item.http_status ?? "",
      item.latency_ms != null ? `${item.latency_ms} ms` : "",
      ui.time(item.delivered_at, zone), ui.time(item.first_polled_at, zone), item.error || "",
    ];
    const classes = ["", "", "board", "", "n", "slogan", "status", "n", "n", "n", "n", "", "", "error"];
    cells.forEach((value, i) => tr.append(ui.el("td", value, classes[i])));
    return tr;
  }

  async function load(cursor) {
    const query = filters();
    query.set("limit", String(PAGE_SIZE));
    if (cursor) query.set("cursor", cursor);
    status.textContent = "Đang tải…";
    try {
      const page = await ui.api(`/api/v1/rotations?${query}`);
      rows.replaceChildren(...page.items.map(row));
      if (!page.items.length) {
        const td = ui.el("td", "Không có dòng nào khớp bộ lọc.", "empty");
        td.colSpan = 14;
        const tr = document.createElement("tr");
        tr.append(td);
        rows.replaceChildren(tr);
      }
      next.hidden = !page.next_cursor;
      next.dataset.cursor = page.next_cursor || "";
      first.hidden = !cursor;
      status.textContent = `${page.items.length} dòng${page.next_cursor ? " (còn tiếp)" : ""}`;
    } catch (error) {
      if (!(error instanceof ui.SignedOut)) status.textContent = `Không đọc được nhật ký: ${error.message}`;
    }
  }

  const csvQuery = filters();
  csvQuery.set("format", "csv");
  csv.href = `/api/v1/rotations?${csvQuery}`;
  // The airtime report takes only the campaign and the dates: the figures the office reports upward.
  const airtimeQuery = new URLSearchParams({format: "csv", by: "slogan"});
  for (const name of ["campaign_id", "from", "to"]) if (csvQuery.has(name)) airtimeQuery.set(name, csvQuery.get(name));
  document.getElementById("airtime").href = `/api/v1/reports/airtime?${airtimeQuery}`;
  document.getElementById("f-status").value = params.get("status") || "";
  document.getElementById("f-from").value = params.get("from") || "";
  document.getElementById("f-to").value = params.get("to") || "";
  next.addEventListener("click", () => load(next.dataset.cursor));
  first.addEventListener("click", () => load(null));
  form.addEventListener("change", () => form.requestSubmit());  // a choice filters at once

  loadChoices().catch((error) => {
    if (!(error instanceof ui.SignedOut)) status.textContent = `Không đọc được danh mục: ${error.message}`;
  }).finally(() => load(null));
})();
