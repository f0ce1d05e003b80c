// The board grid: every 5 s, GET /api/v1/boards and /api/v1/campaigns, and update each tile
// in place (a tile is rebuilt only when its content changes, so pages do not flicker).
// GET /api/v1/emergency-stop too: when a stop starts or is lifted the page is loaded again,
// so its banner (rendered by the server) appears or goes without anyone reloading.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const PAGE_MS = 3000;
  const DAY_MS = 86400e3;
  const POLL_STALE_MS = 10 * 60e3;
  const grid = document.getElementById("grid");
  const status = document.getElementById("status");
  const summary = document.getElementById("summary");
  const template = document.getElementById("tile-template");
  const tiles = new Map();  // board id → {node, hash, pages, page}
  const DELIVERY = {push: "đẩy", poll: "tự lấy", stream: "luồng", both: "đẩy + tự lấy"};
  const NOT_PUSHED = {poll: "không đẩy (bảng tự lấy)", stream: "không đẩy (bảng nhận luồng)"};
  const banner = document.querySelector("section.estop");  // while an emergency stop holds
  const shownStop = banner ? banner.dataset.stop : "";

  function badge(board) {
    const h = board.health || {};
    const now = Date.now();
    if (h.last_incident_at && now - Date.parse(h.last_incident_at) < DAY_MS) return ["integrity", "Sự cố toàn vẹn"];
    if (h.plan_error) return ["plan", "Lỗi kế hoạch"];
    if (!h.reachable) return ["down", "Mất liên lạc"];
    if (h.consecutive_failures > 0 || h.last_push_status === "failed") return ["warn", "Lỗi gần đây"];
    if (board.delivery === "poll" && board.enabled &&
        (!h.last_poll_at || now - Date.parse(h.last_poll_at) > POLL_STALE_MS)) return ["warn", "Chưa lấy tin"];
    return ["ok", "Ổn"];
  }

  function drawPage(tile) {
    const led = tile.node.querySelector(".led");
    const lines = tile.pages.length ? tile.pages[tile.page % tile.pages.length] : [];
    led.replaceChildren(...lines.map((line) => ui.el("div", line, "led-line")));
    tile.node.querySelector(".pager").textContent =
      tile.pages.length > 1 ? `trang ${tile.page % tile.pages.length + 1}/${tile.pages.length}` : "";
  }

  function update(board, zones) {
    let tile = tiles.get(board.id);
    if (!tile) {
      const node = template.content.firstElementChild.cloneNode(true);
      node.dataset.board = board.id;
      tile = {node, hash: undefined, pages: [], page: 0};
      tiles.set(board.id, tile);
    }
    const node = tile.node;
    const current = board.current || {state: "idle"};
    const zone = (current.slot && zones.get(current.slot.campaign_id)) || ui.ZONE;
    const h = board.health || {};
    const [kind, label] = badge(board);
    node.querySelector(".name").textContent = board.name;
    const badgeNode = node.querySelector(".badge");
    badgeNode.className = `badge ${kind}`;
    badgeNode.textContent = label;
    node.querySelector(".id").textContent = board.id;
    node.querySelector(".location").textContent = board.location || "—";
    node.querySelector(".delivery").textContent = (DELIVERY[board.delivery] || board.delivery) +
      (board.lead_seconds ? ` · gửi trước ${board.lead_seconds} giây` : "");
    const led = node.querySelector(".led");
    led.style.setProperty("--cols", board.max_chars);
    led.style.setProperty("--rows", board.lines);
    node.classList.toggle("disabled", !board.enabled);

    const hash = current.state === "showing" ? current.content_hash : `idle:${board.enabled}`;
    if (hash !== tile.hash) {
      tile.hash = hash;
      tile.pages = current.state === "showing" ? current.content.pages : [];
      tile.page = 0;
      drawPage(tile);
      node.dataset.slogan = current.state === "showing" ? current.content.slogan_id : "";
    }
    const caption = node.querySelector(".caption");
    const slot = node.querySelector(".slot");
    if (current.state === "showing") {
      caption.textContent = current.content.text;
      const campaign = zones.name(current.slot.campaign_id);
      slot.textContent = `${campaign} · lượt ${current.slot.index} · ` +
        `${ui.clock(current.slot.starts_at, zone)}–${ui.clock(current.slot.ends_at, zone)}`;
    } else {
      caption.textContent = !board.enabled ? "(bảng đã tắt)"
        : shownStop ? "(trống — đang dừng khẩn cấp)" : "(trống — không có đợt nào đang chạy)";
      slot.textContent = "—";
    }
    const push = node.querySelector(".push");
    if (NOT_PUSHED[board.delivery]) {
      push.textContent = NOT_PUSHED[board.delivery];
    } else {
      const result = h.last_push_status ? ` · ${ui.PUSH_STATUS[h.last_push_status] || h.last_push_status}` : "";
      const error = h.last_push_error ? ` · ${h.last_push_error}` : "";
      const failures = h.consecutive_failures ? ` · ${h.consecutive_failures} lượt lỗi liên tiếp` : "";
      push.textContent = ui.time(h.last_push_at, zone) + result + failures + error;
    }
    node.querySelector(".poll").textContent = ui.time(h.last_poll_at, zone);
    const planError = node.querySelector(".plan-error");
    planError.textContent = h.plan_error || "";
    planError.hidden = !h.plan_error;
    node.querySelector(".incidents").textContent = h.integrity_incidents
      ? `${h.integrity_incidents} (gần nhất ${ui.time(h.last_incident_at, zone)})` : "0";
    return node;
  }

  async function refresh() {
    try {
      const [boards, campaigns, stop] = await Promise.all([
        ui.api("/api/v1/boards?limit=1000"), ui.api("/api/v1/campaigns?limit=1000"),
        ui.api("/api/v1/emergency-stop"),
      ]);
      if ((stop.active ? String(stop.id) : "") !== shownStop) {
        location.reload();
        return;
      }
      const byId = new Map(campaigns.items.map((c) => [c.id, c]));
      const zones = new Map(campaigns.items.map((c) => [c.id, c.timezone]));
      zones.name = (id) => (byId.has(id) ? byId.get(id).name : `đợt #${id}`);
      const seen = new Set();
      const nodes = boards.items.map((board) => { seen.add(board.id); return update(board, zones); });
      for (const id of [...tiles.keys()]) if (!seen.has(id)) tiles.delete(id);
      // Re-append only when the order or membership changed, so focus and selection survive.
      const same = nodes.length === grid.children.length && nodes.every((n, i) => grid.children[i] === n);
      if (!same) grid.replaceChildren(...nodes);
      if (!nodes.length) grid.replaceChildren(ui.el("p", "Chưa có bảng điện tử nào.", "empty"));
      const showing = boards.items.filter((b) => b.current && b.current.state === "showing").length;
      summary.textContent = `${boards.items.length} bảng · ${showing} đang hiển thị`;
      status.textContent = `Cập nhật lúc ${ui.clock(new Date().toISOString())}`;
      status.classList.remove("offline");
    } catch (error) {
      if (error instanceof ui.SignedOut) return;
      status.textContent = `Không đọc được dữ liệu (${error.message}); sẽ thử lại…`;
      status.classList.add("offline");
    }
  }

  setInterval(() => {
    for (const tile of tiles.values()) {
      if (tile.pages.length > 1) { tile.page += 1; drawPage(tile); }
    }
  }, PAGE_MS);

  async function loop() {
    await refresh();
    setTimeout(loop, REFRESH_MS);
  }
  loop();
})();
